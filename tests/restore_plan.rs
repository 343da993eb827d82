//! The planned restore (src/kloset/ops/restore/planned.rs), through a store that says each
//! request costs a round trip: it counts and slows the reads, and fails the ones a test
//! asks it to. What the file-by-file restore promises holds, in fewer and concurrent reads.
use crate::engine::{new_repo, reopen};
use crate::util::*;
use plakar::connectors::fs::{FsExporter, FsImporter};
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::blob::BlobType;
use plakar::kloset::ops::restore::{Plan, Reads};
use plakar::kloset::ops::{backup, restore};
use plakar::kloset::progress::NoProgress;
use plakar::kloset::store::{Resource, Store, StoreError, StoreErrorKind, StoreResult};
use plakar::kloset::tree::Entry;
use plakar::kloset::Repository;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A memory store across a slow link: every packfile read takes `delay`, and the ranges
/// read are recorded. Reads of a packfile in `failing` fail as many times as it says; with
/// `panic_next` set, the next ranged packfile read shorter than a read-ahead window (a
/// planned read) panics, as a store with a bug would.
#[derive(Default)]
pub(crate) struct Remote {
    inner: MemoryStore,
    delay: Duration,
    ranges: Mutex<Vec<([u8; 32], u64, u64)>>,
    in_flight: AtomicU64,
    peak: AtomicU64,
    failing: Mutex<HashMap<[u8; 32], u32>>,
    /// Bytes of packfiles read.
    bytes: AtomicU64,
    pub(crate) panic_next: std::sync::atomic::AtomicBool,
}

impl Remote {
    fn reads(&self) -> Vec<([u8; 32], u64, u64)> {
        self.ranges.lock().unwrap().clone()
    }
    fn forget(&self) {
        self.ranges.lock().unwrap().clear();
        self.peak.store(0, Ordering::SeqCst);
        self.bytes.store(0, Ordering::SeqCst);
    }
}

impl Store for Remote {
    fn location(&self) -> String {
        "remote:".into()
    }
    fn remote(&self) -> bool {
        true
    }
    fn create(&self, config: &[u8]) -> StoreResult<()> {
        self.inner.create(config)
    }
    fn open(&self) -> StoreResult<Vec<u8>> {
        self.inner.open()
    }
    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        self.inner.list(res)
    }
    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        if res != Resource::Packfile {
            return self.inner.get(res, id, range);
        }
        let (off, len) = range.unwrap_or((0, u64::MAX));
        if len < 4 << 20 && self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("store bug in a reader");
        }
        self.ranges.lock().unwrap().push((*id, off, len));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(n) = self.failing.lock().unwrap().get_mut(id).filter(|n| **n > 0) {
            *n -= 1;
            return Err(StoreError::new(StoreErrorKind::Transient, "connection reset by peer"));
        }
        let got = self.inner.get(res, id, range)?;
        self.bytes.fetch_add(got.len() as u64, Ordering::SeqCst);
        Ok(got)
    }
    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        self.inner.put(res, id, data)
    }
    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        self.inner.delete(res, id)
    }
    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        self.inner.size(res, id)
    }
}

/// Backs `data` up into `store`; the repository is opened again (nothing of the backup
/// cached) and the snapshot's root returned.
fn backup(store: &Arc<Remote>, data: &Path) -> (Repository, Entry) {
    let repo = new_repo(store.clone());
    let h = backup::backup(&repo, &FsImporter::new(data).unwrap(), &Default::default(), &NoProgress).unwrap();
    let repo = reopen(store.clone());
    let root = repo.lookup(&h, data.to_str().unwrap().as_bytes()).unwrap();
    (repo, root)
}

/// Restores to `out` as `reads` says, counting only the restore's reads.
fn restore_as(store: &Remote, repo: &Repository, root: &Entry, out: &Path, reads: Reads) -> restore::RestoreReport {
    store.forget();
    let exp = FsExporter::new(out, true).unwrap();
    restore::restore_with(repo, root, b"", &exp, &NoProgress, reads).unwrap()
}

fn backup_then_restore(store: &Arc<Remote>, data: &Path, out: &Path) -> restore::RestoreReport {
    let (repo, root) = backup(store, data);
    restore_as(store, &repo, &root, out, Reads::Auto)
}

/// The packfile holding `file`'s chunk number `n`.
fn pack_of(repo: &Repository, root: &Entry, file: &str, n: usize) -> [u8; 32] {
    let tree = repo.tree(&root.subtree.unwrap()).unwrap();
    let e = tree.entries.iter().find(|e| e.name == file.as_bytes()).unwrap();
    repo.locate(BlobType::Chunk, &e.chunks[n]).unwrap().pack.0
}

/// Small files of distinct content, one chunk each: 2 KiB to 6 KiB of noise.
fn small_files(dir: &Path, n: usize) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        fs::write(dir.join(format!("f{i:04}")), noise(2048 + (i * 37) % 4096, i as u64)).unwrap();
    }
}

#[test]
fn restore_of_many_small_files_reads_each_packfile_in_a_few_ranged_gets() {
    let env = Env::new();
    let data = env.path("data");
    small_files(&data, 300);
    let store = Arc::new(Remote::default());
    let r = backup_then_restore(&store, &data, &env.path("out"));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&data, &env.path("out"));
    let reads = store.reads();
    let packs: std::collections::HashSet<_> = reads.iter().map(|r| r.0).collect();
    // 300 files of about 1.2 MB in 256 KiB packfiles: about 5 packfiles of data, plus the
    // one of trees. One read per file would be 300.
    assert!(reads.len() <= 2 * packs.len() + 4, "{} reads of {} packfiles: {reads:?}", reads.len(), packs.len());
    // And each byte about once.
    let stored: u64 = packs.iter().map(|p| store.size(Resource::Packfile, p).unwrap()).sum();
    let read = store.bytes.load(Ordering::SeqCst);
    assert!(read <= stored * 5 / 4, "{read} bytes read of {stored} in the packfiles read");
}

#[test]
fn a_restore_many_times_its_budget_reads_each_byte_about_once() {
    // The backup's threads read different directories side by side. When they filled one
    // packfile together, each stretch of it held files that a restore in tree order wants
    // at very different times, and a restore larger than its budget read the stretch once
    // for each (1.9x the bytes on the Linux tree over S3: bench/NOTES.md).
    let env = Env::new();
    let data = env.path("data");
    for d in 0..6u64 {
        let dir = data.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..150u64 {
            fs::write(dir.join(format!("f{i:03}")), noise(2048 + (i as usize * 37) % 4096, d * 1000 + i)).unwrap();
        }
    }
    let store = Arc::new(Remote::default());
    // Packfiles of 12 MiB: room for three threads' data packfiles of 4 MiB (packer.rs).
    let params = plakar::kloset::config::CreateParams { packfile_max_size: 12 << 20, ..crate::engine::fast_params() };
    plakar::kloset::repo::create(store.as_ref(), &params, Some(b"pw")).unwrap();
    let repo = reopen(store.clone());
    let opts = backup::BackupOptions { concurrency: 3, ..Default::default() };
    let h = backup::backup(&repo, &FsImporter::new(&data).unwrap(), &opts, &NoProgress).unwrap();
    let repo = reopen(store.clone());
    let root = repo.lookup(&h, data.to_str().unwrap().as_bytes()).unwrap();
    use plakar::kloset::coalesce::Limits;
    // About 3.6 MB of files through a budget of 256 KiB.
    let plan = Plan {
        budget: 256 << 10,
        batch: 64 << 10,
        limits: Limits { max_gap: 32 << 10, max_read: 256 << 10 },
        ..Plan::default()
    };
    let r = restore_as(&store, &repo, &root, &env.path("out"), Reads::Planned(plan));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&data, &env.path("out"));
    let packs: std::collections::HashSet<_> = store.reads().iter().map(|r| r.0).collect();
    let stored: u64 = packs.iter().map(|p| store.size(Resource::Packfile, p).unwrap()).sum();
    let read = store.bytes.load(Ordering::SeqCst);
    assert!(read <= stored * 5 / 4, "{read} bytes read of {stored} in the packfiles read");
}

#[test]
fn reads_of_many_packfiles_are_in_flight_at_once() {
    let env = Env::new();
    let data = env.path("data");
    // 40 x 64 KiB of noise: about 10 packfiles of 256 KiB.
    fs::create_dir_all(&data).unwrap();
    for i in 0..40 {
        fs::write(data.join(format!("f{i:02}")), noise(64 << 10, 100 + i)).unwrap();
    }
    let store = Arc::new(Remote { delay: Duration::from_millis(40), ..Default::default() });
    let r = backup_then_restore(&store, &data, &env.path("out"));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&data, &env.path("out"));
    // File by file, reads are in flight only as many as files being written (2-3 here).
    let peak = store.peak.load(Ordering::SeqCst);
    assert!(peak >= 6, "at most {peak} reads in flight");
}

#[test]
fn a_chunk_shared_by_files_and_offsets_is_read_once_and_restored_everywhere() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(data.join("b")).unwrap();
    // The test chunking cuts at 64 KiB at most: 1 MiB of zeros is 16 times one chunk.
    let block = noise(40 << 10, 7);
    fs::write(data.join("a.bin"), &block).unwrap();
    fs::write(data.join("b/copy.bin"), &block).unwrap();
    fs::write(data.join("zeros"), vec![0u8; 1 << 20]).unwrap();
    let mut twice = vec![0u8; 1 << 20];
    twice.extend_from_slice(&block);
    fs::write(data.join("b/zeros-then-block"), &twice).unwrap();
    let store = Arc::new(Remote::default());
    let (repo, root) = backup(&store, &data);
    let r = restore_as(&store, &repo, &root, &env.path("out"), Reads::Auto);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&data, &env.path("out"));
    // No byte of a packfile of chunks was read twice (trees are read apart, in their own).
    let trees = repo.locate(BlobType::Tree, &root.subtree.unwrap()).unwrap().pack.0;
    let mut reads: Vec<_> = store.reads().into_iter().filter(|r| r.0 != trees).collect();
    reads.sort();
    for w in reads.windows(2) {
        assert!(w[0].0 != w[1].0 || w[0].1 + w[0].2 <= w[1].1, "overlapping reads: {w:?}");
    }
}

#[test]
fn a_failed_read_is_read_again_alone_and_the_restore_completes() {
    let env = Env::new();
    let data = env.path("data");
    small_files(&data, 100);
    let store = Arc::new(Remote::default());
    let (repo, root) = backup(&store, &data);
    let pack = pack_of(&repo, &root, "f0050", 0);
    store.failing.lock().unwrap().insert(pack, 1);
    let r = restore_as(&store, &repo, &root, &env.path("out"), Reads::Auto);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&data, &env.path("out"));
    assert!(store.failing.lock().unwrap().values().all(|&n| n == 0), "no read failed: the test proved nothing");
}

#[test]
fn a_packfile_that_cannot_be_read_fails_its_files_and_leaves_nothing_half_written() {
    let env = Env::new();
    let data = env.path("data");
    small_files(&data.join("d"), 200);
    // A file larger than a packfile: its chunks span several of them.
    fs::write(data.join("large"), noise(1 << 20, 99)).unwrap();
    let store = Arc::new(Remote::default());
    let (repo, root) = backup(&store, &data);
    let pack = pack_of(&repo, &root, "large", 1);
    store.failing.lock().unwrap().insert(pack, u32::MAX);
    let out = env.path("out");
    let r = restore_as(&store, &repo, &root, &out, Reads::Auto);
    assert!(r.errors.iter().any(|(p, e)| p == "large" && e.contains("connection reset")), "{:?}", r.errors);
    assert_eq!(r.written + r.errors.len() as u64, 201, "every file is written or reported: {:?}", r.errors);
    // Every file restored is whole; the others are not there at all, not even in part.
    for p in walk(&out) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(!name.starts_with(".plakar-restore-"), "a temporary file was left: {p:?}");
        if p.is_file() {
            assert_eq!(fs::read(&p).unwrap(), fs::read(data.join(p.strip_prefix(&out).unwrap())).unwrap(), "{p:?}");
        }
    }
    for (p, _) in &r.errors {
        assert!(!out.join(p).exists(), "{p} failed and is there");
    }
}

#[test]
fn a_file_many_times_the_budget_streams_through_it() {
    // A file of 8 budgets would deadlock the planner, or be cut short, if the planner
    // held a whole file.
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("big"), noise(8 << 20, 5)).unwrap();
    small_files(&data.join("after"), 20);
    let store = Arc::new(Remote::default());
    let (repo, root) = backup(&store, &data);
    let plan = Plan { budget: 1 << 20, ..Plan::default() };
    let r = restore_as(&store, &repo, &root, &env.path("out"), Reads::Planned(plan));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&data, &env.path("out"));
}

#[test]
fn planned_and_file_by_file_restores_are_the_same() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    small_files(&data.join("many"), 50);
    // A fifo and extended attributes go through both ways alike.
    let fifo = data.join("many/pipe");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o640), 0)
        .unwrap();
    xattr::set(data.join("many/f0003"), "user.note", b"kept").unwrap();
    xattr::set(data.join("many"), "user.dir", b"too").unwrap();
    // A hard link inside a directory: made last, it must leave the directory's times be.
    fs::hard_link(data.join("many/f0001"), data.join("many/f0001.link")).unwrap();
    let store = Arc::new(Remote::default());
    let (repo, root) = backup(&store, &data);
    for (n, reads) in [Reads::FileByFile, Reads::Planned(Plan::default())].into_iter().enumerate() {
        let out = env.path(&format!("out{n}"));
        let r = restore_as(&store, &repo, &root, &out, reads);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_same_tree(&data, &out);
        assert!(fs::symlink_metadata(out.join("many/pipe")).unwrap().file_type().is_fifo());
        assert_eq!(xattr::get(out.join("many/f0003"), "user.note").unwrap().as_deref(), Some(&b"kept"[..]));
        assert_eq!(xattr::get(out.join("many"), "user.dir").unwrap().as_deref(), Some(&b"too"[..]));
        // Directories get their times after their entries are written.
        for d in walk(&data).into_iter().filter(|p| p.is_dir() && !p.is_symlink()) {
            let t = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
            assert_eq!(t(&d), t(&out.join(d.strip_prefix(&data).unwrap())), "mtime of {d:?}");
        }
    }
}

/// The same over a real S3 server: the packfile GETs of a restore of many small files,
/// counted at a proxy in front of it.
#[test]
fn restore_from_s3_of_many_small_files_sends_a_few_packfile_gets() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    small_files(&data, 300);
    let proxy = crate::util::proxy::Proxy::start(&ep);
    let bucket = unique_bucket("plan");
    for (name, host) in [("direct", ep.as_str()), ("proxied", proxy.addr.as_str())] {
        let loc = format!("s3://{host}/{bucket}");
        let opts = [format!("access_key={ak}"), format!("secret_access_key={sk}"), "use_tls=false".into()];
        env.cmd().args(["store", "add", name, &loc]).args(&opts).assert().success();
    }
    env.cmd().args(["at", "@direct", "create"]).assert().success();
    env.cmd().args(["at", "@direct", "backup", data.to_str().unwrap()]).assert().success();
    let ls = env.cmd().args(["at", "@direct", "ls", "-uuid"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string();
    let out = env.path("out");
    env.cmd().args(["at", "@proxied", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);
    let sent = String::from_utf8_lossy(&proxy.captured()).to_string();
    let gets = sent.lines().filter(|l| l.starts_with("GET ") && l.contains("/packfiles/")).count();
    // One packfile of data, one of trees and one of the snapshot's header; one GET per
    // file would be 300.
    assert!((1..=8).contains(&gets), "{gets} packfile GETs:\n{sent}");
}
