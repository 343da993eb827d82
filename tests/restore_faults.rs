//! Faults in a planned restore (found by review): a panic in a reader or a writer ends
//! the restore instead of hanging it; a large tree node read through the read-ahead
//! comes whole.
use crate::engine::{new_repo, reopen};
use crate::util::*;
use plakar::connectors::fs::{FsExporter, FsImporter};
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::blob::BlobType;
use plakar::kloset::config::{Chunking, CreateParams};
use plakar::kloset::crypto::KdfParams;
use plakar::kloset::exporter::Exporter;
use plakar::kloset::importer::FileInfo;
use plakar::kloset::ops::restore::{Plan, Reads};
use plakar::kloset::ops::{backup, restore};
use plakar::kloset::progress::NoProgress;
use plakar::kloset::store::{Resource, Store};
use plakar::kloset::tree::Entry;
use plakar::kloset::{repo, Repository};
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::restore_plan::Remote;

fn backup_into(store: &Arc<Remote>, repo: Repository, data: &Path) -> (Repository, Entry) {
    let h = backup::backup(&repo, &FsImporter::new(data).unwrap(), &Default::default(), &NoProgress).unwrap();
    let repo = reopen(store.clone());
    let root = repo.lookup(&h, data.to_str().unwrap().as_bytes()).unwrap();
    (repo, root)
}

/// Runs a restore on its own thread; None if it has not ended within `secs`.
fn restore_within(
    repo: Repository,
    root: Entry,
    exp: Box<dyn Exporter>,
    reads: Reads,
    secs: u64,
) -> Option<Result<usize, String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            restore::restore_with(&repo, &root, b"", exp.as_ref(), &NoProgress, reads).unwrap().errors.len()
        }));
        let _ = tx.send(r.map_err(|_| "panicked".to_string()));
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

#[test]
fn a_panic_in_a_reader_ends_the_restore() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..20 {
        fs::write(data.join(format!("f{i}")), noise(3000, i)).unwrap();
    }
    let store = Arc::new(Remote::default());
    let (repo, root) = backup_into(&store, new_repo(store.clone()), &data);
    store.panic_next.store(true, Ordering::SeqCst);
    let exp = Box::new(FsExporter::new(&env.path("out"), true).unwrap());
    let r = restore_within(repo, root, exp, Reads::Auto, 30);
    assert!(!store.panic_next.load(Ordering::SeqCst), "no reader panicked");
    assert!(r.is_some(), "a reader panicked and the restore never ended");
}

struct PanicOn(FsExporter, &'static [u8]);
impl Exporter for PanicOn {
    fn create_dir(&self, p: &[u8]) -> io::Result<()> {
        self.0.create_dir(p)
    }
    fn store_file(&self, p: &[u8], d: &mut dyn Read, s: u64) -> io::Result<()> {
        self.0.store_file(p, d, s)
    }
    fn store_file_with_metadata(&self, p: &[u8], d: &mut dyn Read, s: u64, i: &FileInfo) -> io::Result<()> {
        if p == self.1 {
            panic!("exporter bug in a writer");
        }
        self.0.store_file_with_metadata(p, d, s, i)
    }
    fn symlink(&self, p: &[u8], t: &[u8]) -> io::Result<()> {
        self.0.symlink(p, t)
    }
    fn hardlink(&self, p: &[u8], e: &[u8]) -> io::Result<()> {
        self.0.hardlink(p, e)
    }
    fn set_metadata(&self, p: &[u8], i: &FileInfo) -> io::Result<()> {
        self.0.set_metadata(p, i)
    }
    fn finish(&self) -> io::Result<()> {
        self.0.finish()
    }
}

#[test]
fn a_panic_in_a_writer_of_a_file_larger_than_the_budget_ends_the_restore() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("big"), noise(8 << 20, 5)).unwrap();
    let store = Arc::new(Remote::default());
    let (repo, root) = backup_into(&store, new_repo(store.clone()), &data);
    let exp = Box::new(PanicOn(FsExporter::new(&env.path("out"), true).unwrap(), b"big"));
    let plan = Plan { budget: 1 << 20, ..Plan::default() };
    let r = restore_within(repo, root, exp, Reads::Planned(plan), 30);
    assert!(r.is_some(), "a writer panicked and the restore never ended");
}

/// A directory of `n` empty files with long random names: a tree node of a few MiB.
fn wide_dir(dir: &Path, n: usize, seed: u64) {
    fs::create_dir_all(dir).unwrap();
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    for _ in 0..n {
        let mut name = String::with_capacity(240);
        while name.len() < 240 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            name.push_str(&format!("{x:016x}"));
        }
        name.truncate(240);
        fs::File::create(dir.join(name)).unwrap();
    }
}

#[test]
fn a_directory_whose_tree_node_is_over_2_mib_restores_from_a_remote_store() {
    let env = Env::new();
    let data = env.path("data");
    wide_dir(&data.join("a"), 20_000, 1);
    wide_dir(&data.join("b"), 20_000, 2);
    let store = Arc::new(Remote::default());
    // Default packfile size (16 MiB): the trees of a and b share a packfile.
    let params = CreateParams {
        kdf: KdfParams { m_cost_kib: 1024, t_cost: 1, p_cost: 1 },
        chunking: Chunking { algorithm: "fastcdc-v2020".into(), min_size: 4096, avg_size: 16384, max_size: 65536 },
        ..Default::default()
    };
    let cfg = repo::create(store.as_ref(), &params, Some(b"pw")).unwrap();
    let repo = Repository::open(store.clone(), cfg, Some(b"pw")).unwrap();
    let (repo, root) = backup_into(&store, repo, &data);
    let tree = repo.tree(&root.subtree.unwrap()).unwrap();
    for e in &tree.entries {
        let l = repo.locate(BlobType::Tree, &e.subtree.unwrap()).unwrap();
        eprintln!("tree of {}: offset {} length {} in {:?}", e.name_lossy(), l.offset, l.length, &l.pack.0[..4]);
    }
    let out = env.path("out");
    let r =
        restore::restore_with(&repo, &root, b"", &FsExporter::new(&out, true).unwrap(), &NoProgress, Reads::FileByFile)
            .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

/// A tree's read-ahead window reaches back, but never so far that the tree's end falls out.
#[test]
fn a_tree_larger_than_half_a_readahead_window_is_read_whole() {
    use plakar::kloset::id::PackId;
    use plakar::kloset::readahead::ReadAhead;
    let store = MemoryStore::default();
    let pack = PackId([7; 32]);
    let bytes: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
    store.put(Resource::Packfile, &pack.0, &bytes).unwrap();
    let ra = ReadAhead::default();
    for (off, len) in [(3u64 << 20, 3u64 << 20), (1 << 20, (3 << 20) + 5), (5 << 20, 2 << 20), (0, 100)] {
        for back in [true, false] {
            let got = ra.read(&store, &pack, off, len, back).unwrap();
            assert_eq!(got, bytes[off as usize..(off + len) as usize], "{off} {len} {back}");
        }
    }
}
