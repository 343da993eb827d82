//! One suite every Store must pass.
use plakar::connectors::fs::FsStore;
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::store::{Resource, Store, StoreErrorKind};

pub fn suite(s: &dyn Store) {
    assert_eq!(s.open().unwrap_err().kind, StoreErrorKind::NotFound, "empty location has no store");
    s.create(b"config-bytes").unwrap();
    assert_eq!(s.create(b"other").unwrap_err().kind, StoreErrorKind::AlreadyExists);
    assert_eq!(s.open().unwrap(), b"config-bytes");
    for res in [Resource::Packfile, Resource::State, Resource::Lock] {
        assert!(s.list(res).unwrap().is_empty());
        let (a, b) = ([0xabu8; 32], [0x01u8; 32]);
        s.put(res, &a, b"0123456789").unwrap();
        s.put(res, &b, b"").unwrap();
        let mut l = s.list(res).unwrap();
        l.sort();
        assert_eq!(l, vec![b, a]);
        assert_eq!(s.get(res, &a, None).unwrap(), b"0123456789");
        assert_eq!(s.get(res, &a, Some((2, 3))).unwrap(), b"234");
        assert_eq!(s.get(res, &b, None).unwrap(), b"");
        assert_eq!(s.size(res, &a).unwrap(), 10);
        s.put(res, &a, b"replaced").unwrap();
        assert_eq!(s.get(res, &a, None).unwrap(), b"replaced");
        assert_eq!(s.get(res, &[9u8; 32], None).unwrap_err().kind, StoreErrorKind::NotFound);
        s.delete(res, &a).unwrap();
        s.delete(res, &a).unwrap();
        assert_eq!(s.list(res).unwrap(), vec![b]);
        s.delete(res, &b).unwrap();
    }
    let other = [Resource::State, Resource::Lock];
    s.put(Resource::Packfile, &[5u8; 32], b"p").unwrap();
    for r in other {
        assert!(s.list(r).unwrap().is_empty(), "resources are separate");
    }
}

#[test]
fn memory_store() {
    suite(&MemoryStore::new());
}

#[test]
fn fs_store() {
    let d = tempfile::tempdir().unwrap();
    suite(&FsStore::new(d.path().join("store")));
}

#[test]
fn sqlite_store() {
    let d = tempfile::tempdir().unwrap();
    suite(&plakar::connectors::sqlite::SqliteStore::new(&d.path().join("store.db")));
}

#[test]
fn fs_store_refuses_a_non_empty_directory() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("precious"), "x").unwrap();
    let s = FsStore::new(d.path());
    assert_eq!(s.create(b"c").unwrap_err().kind, StoreErrorKind::AlreadyExists);
    assert!(d.path().join("precious").exists());
}
