//! One suite every Store must pass.
use plakar::connectors::fs::{FsExporter, FsImporter, FsStore};
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::exporter::Exporter;
use plakar::kloset::importer::{join, FileInfo, FileKind, Importer};
use plakar::kloset::store::{Resource, Store, StoreErrorKind};
use std::io::Read;

pub fn suite(s: &dyn Store) {
    assert_eq!(s.open().unwrap_err().kind, StoreErrorKind::NotFound, "empty location has no store");
    s.create(b"config-bytes").unwrap();
    assert_eq!(s.create(b"other").unwrap_err().kind, StoreErrorKind::AlreadyExists);
    assert_eq!(s.open().unwrap(), b"config-bytes");
    s.replace_config(b"config-bytes, new key slot").unwrap();
    assert_eq!(s.open().unwrap(), b"config-bytes, new key slot");
    s.replace_config(b"config-bytes").unwrap();
    assert_eq!(s.open().unwrap(), b"config-bytes");
    for res in [Resource::Packfile, Resource::State, Resource::Lock, Resource::Key] {
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
    let other = [Resource::State, Resource::Lock, Resource::Key];
    s.put(Resource::Packfile, &[5u8; 32], b"p").unwrap();
    for r in other {
        assert!(s.list(r).unwrap().is_empty(), "resources are separate");
    }
}

/// What a connector can represent, for the importer/exporter suite.
pub struct Caps {
    pub symlinks: bool,
    /// Modes and mtimes set by the exporter come back through the importer.
    pub metadata: bool,
    /// Names that are not UTF-8 (S3 keys must be UTF-8).
    pub raw_names: bool,
}

/// One suite every Exporter/Importer pair over the same place must pass: what the exporter
/// writes, the importer lists and reads back.
pub fn io_suite(exp: &dyn Exporter, imp: &dyn Importer, caps: Caps) {
    let big = crate::util::noise(3_000_000, 5);
    let mtime_ns = 1_600_000_000_000_000_000i64;
    exp.create_dir(b"d").unwrap();
    exp.create_dir(b"d/e").unwrap();
    exp.store_file(b"a.txt", &mut &b"first"[..], 5).unwrap();
    exp.store_file(b"a.txt", &mut &b"hello"[..], 5).unwrap(); // replaces
    exp.store_file(b"d/empty", &mut &b""[..], 0).unwrap();
    exp.store_file(b"d/e/big.bin", &mut &big[..], big.len() as u64).unwrap();
    let mut names = vec![b"a.txt".to_vec(), b"d".to_vec()];
    if caps.raw_names {
        exp.store_file(b"latin1-\xe9", &mut &b"x"[..], 1).unwrap();
        names.push(b"latin1-\xe9".to_vec());
    }
    if caps.symlinks {
        exp.symlink(b"link", b"a.txt").unwrap();
        names.push(b"link".to_vec());
    }
    if caps.metadata {
        let info = FileInfo { kind: Some(FileKind::File), mode: 0o100640, mtime_ns, ..Default::default() };
        exp.set_metadata(b"a.txt", &info).unwrap();
    }
    exp.finish().unwrap();

    let root = imp.root();
    assert_eq!(imp.stat(&root).unwrap().kind(), FileKind::Dir);
    let mut listed = imp.read_dir(&root).unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    names.sort();
    assert_eq!(listed.iter().map(|e| e.name.clone()).collect::<Vec<_>>(), names);
    let a = listed.iter().find(|e| e.name == b"a.txt").unwrap().info.clone().unwrap();
    assert_eq!((a.kind(), a.size), (FileKind::File, 5));
    if caps.metadata {
        assert_eq!((a.mode & 0o7777, a.mtime_ns), (0o640, mtime_ns));
    }
    let read = |p: &[u8]| {
        let mut v = Vec::new();
        imp.open(&join(&root, p)).unwrap().read_to_end(&mut v).unwrap();
        v
    };
    assert_eq!(read(b"a.txt"), b"hello");
    assert_eq!(read(b"d/e/big.bin"), big);
    assert_eq!(read(b"d/empty"), b"");
    let d = imp.read_dir(&join(&root, b"d")).unwrap();
    let kinds: std::collections::BTreeMap<Vec<u8>, FileKind> =
        d.iter().map(|e| (e.name.clone(), e.info.as_ref().unwrap().kind())).collect();
    assert_eq!(kinds.get(&b"e"[..]), Some(&FileKind::Dir));
    assert_eq!(kinds.get(&b"empty"[..]), Some(&FileKind::File));
    if caps.symlinks {
        let l = listed.iter().find(|e| e.name == b"link").unwrap().info.clone().unwrap();
        assert_eq!((l.kind(), l.target.as_slice()), (FileKind::Symlink, &b"a.txt"[..]));
    }
    if caps.raw_names {
        assert_eq!(read(b"latin1-\xe9"), b"x");
    }
    assert!(imp.open(&join(&root, b"missing")).is_err());
}

#[test]
fn fs_importer_and_exporter() {
    let d = tempfile::tempdir().unwrap();
    let exp = FsExporter::new(d.path(), true).unwrap();
    let imp = FsImporter::new(d.path()).unwrap();
    io_suite(&exp, &imp, Caps { symlinks: true, metadata: true, raw_names: true });
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
