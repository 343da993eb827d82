//! ptar archives: the input is written to a file and opened as a store (trailer, table of
//! contents); then every object it lists is read, whole and by range.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::connectors::ptar::PtarStore;
use plakar::kloset::store::{Resource, Store};
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        dir.join(format!("plakar-fuzz-ptar-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).expect("write the archive");
    let Ok(store) = PtarStore::open(p) else {
        return;
    };
    let _ = store.open();
    for res in [Resource::Packfile, Resource::State, Resource::Lock] {
        for id in store.list(res).expect("list") {
            let size = store.size(res, &id).expect("listed objects have a size");
            let whole = store.get(res, &id, None).expect("listed objects can be read");
            assert_eq!(whole.len() as u64, size);
            for range in [(0, 1), (1, 4), (size.saturating_sub(1), 8), (u64::MAX, u64::MAX)] {
                let _ = store.get(res, &id, Some(range));
            }
        }
    }
});
