//! Engine-level tests with fault-injecting importers and stores.
use crate::util::*;
use plakar::connectors::fs::{FsExporter, FsImporter};
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::config::{Chunking, CreateParams};
use plakar::kloset::crypto::KdfParams;
use plakar::kloset::importer::{DirEntry, FileInfo, Importer};
use plakar::kloset::ops::{backup, check, restore, sync};
use plakar::kloset::progress::NoProgress;
use plakar::kloset::store::{Content, Resource, Store, StoreError, StoreErrorKind, StoreResult};
use plakar::kloset::{repo, ErrorKind, Repository};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub fn fast_params() -> CreateParams {
    CreateParams {
        kdf: KdfParams { m_cost_kib: 1024, t_cost: 1, p_cost: 1 },
        chunking: Chunking { algorithm: "fastcdc-v2020".into(), min_size: 4096, avg_size: 16384, max_size: 65536 },
        packfile_max_size: 256 << 10,
        ..Default::default()
    }
}

pub fn new_repo(store: Arc<dyn Store>) -> Repository {
    let cfg = repo::create(store.as_ref(), &fast_params(), Some(b"pw")).unwrap();
    Repository::open(store, cfg, Some(b"pw")).unwrap()
}

pub fn reopen(store: Arc<dyn Store>) -> Repository {
    let cfg = repo::read_config(store.as_ref()).unwrap();
    Repository::open(store, cfg, Some(b"pw")).unwrap()
}

/// Fails to read files whose name contains "unreadable".
struct Flaky(FsImporter);

impl Importer for Flaky {
    fn kind(&self) -> &str {
        self.0.kind()
    }
    fn origin(&self) -> String {
        self.0.origin()
    }
    fn root(&self) -> Vec<u8> {
        self.0.root()
    }
    fn stat(&self, p: &[u8]) -> io::Result<FileInfo> {
        self.0.stat(p)
    }
    fn read_dir(&self, p: &[u8]) -> io::Result<Vec<DirEntry>> {
        let mut v = self.0.read_dir(p)?;
        if p.ends_with(b"/sub") {
            v.push(DirEntry { name: b"..".to_vec(), info: self.0.stat(p).map_err(|e| e.to_string()) });
            v.push(DirEntry { name: b"a/b".to_vec(), info: Ok(FileInfo::default()) });
        }
        Ok(v)
    }
    fn open(&self, p: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        if String::from_utf8_lossy(p).contains("unreadable") {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied"));
        }
        self.0.open(p)
    }
}

#[test]
fn unreadable_files_are_counted_and_backup_goes_on() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    std::fs::write(data.join("unreadable.txt"), "secret").unwrap();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let imp = Flaky(FsImporter::new(&data).unwrap());
    let h = backup::backup(&repo, &imp, &Default::default(), &NoProgress).unwrap();
    assert!(h.summary.errors >= 1);
    assert!(
        h.errors.iter().any(|(p, e)| p.ends_with("unreadable.txt") && e.contains("Permission denied")),
        "{:?}",
        h.errors
    );
    let repo = reopen(repo.store.clone());
    let root = repo.lookup(&h, data.to_str().unwrap().as_bytes()).unwrap();
    let out = env.path("out");
    let exp = FsExporter::new(&out, true).unwrap();
    let r = restore::restore(&repo, &root, b"", &exp, &NoProgress).unwrap();
    // Unsafe names from the source are refused at backup time.
    assert!(h.errors.iter().any(|(p, e)| p.ends_with("sub/..") && e.contains("unsafe")), "{:?}", h.errors);
    assert!(h.errors.iter().any(|(p, _)| p.ends_with("sub/a/b")), "{:?}", h.errors);
    assert!(r.errors.iter().any(|(p, _)| p.ends_with("unreadable.txt")), "{:?}", r.errors);
    assert_eq!(std::fs::read_to_string(out.join("hello.txt")).unwrap(), "hello world\n");
    assert!(!env.path("passwd").exists() && !out.join("unreadable.txt").exists());
}

/// A store that runs out of space after `budget` packfile writes.
struct FullDisk {
    inner: MemoryStore,
    budget: AtomicUsize,
    /// Packfiles stored so far.
    packs: AtomicUsize,
}

impl FullDisk {
    fn new() -> Arc<FullDisk> {
        Arc::new(FullDisk {
            inner: MemoryStore::new(),
            budget: AtomicUsize::new(usize::MAX),
            packs: AtomicUsize::new(0),
        })
    }
}

impl Store for FullDisk {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self, c: &[u8]) -> StoreResult<()> {
        self.inner.create(c)
    }
    fn open(&self) -> StoreResult<Vec<u8>> {
        self.inner.open()
    }
    fn list(&self, r: Resource) -> StoreResult<Vec<[u8; 32]>> {
        self.inner.list(r)
    }
    fn get(&self, r: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        self.inner.get(r, id, range)
    }
    fn put(&self, r: Resource, id: &[u8; 32], d: &[u8]) -> StoreResult<()> {
        if r == Resource::Packfile
            && self.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_err()
        {
            return Err(StoreError::new(StoreErrorKind::Full, "No space left on device"));
        }
        if r == Resource::Packfile {
            self.packs.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.put(r, id, d)
    }
    fn delete(&self, r: Resource, id: &[u8; 32]) -> StoreResult<()> {
        self.inner.delete(r, id)
    }
    fn size(&self, r: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        self.inner.size(r, id)
    }
}

#[test]
fn disk_full_leaves_a_valid_store() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let store = FullDisk::new();
    let repo = new_repo(store.clone());
    let imp = FsImporter::new(&data).unwrap();
    let first = backup::backup(&repo, &imp, &Default::default(), &NoProgress).unwrap();
    let noise = crate::util::noise(2_000_000, 88172645463325252);
    std::fs::write(data.join("more.bin"), noise).unwrap();
    store.budget.store(1, Ordering::SeqCst);
    let repo = reopen(store.clone());
    let err = backup::backup(&repo, &imp, &Default::default(), &NoProgress).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("No space"), "{err}");
    let repo = reopen(store.clone());
    assert_eq!(repo.index.snapshots(), vec![first.id], "the failed backup left no snapshot");
    let res = check::check(&repo, &[(first.id, None)], false, &NoProgress);
    assert!(res[0].ok(), "{:?}", res[0].errors);
    store.budget.store(usize::MAX, Ordering::SeqCst);
    backup::backup(&repo, &imp, &Default::default(), &NoProgress).unwrap();
    assert_eq!(reopen(store).index.snapshots().len(), 2, "the next backup simply works");
}

#[test]
fn ambiguous_and_unknown_prefixes() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let imp = FsImporter::new(&data).unwrap();
    for _ in 0..17 {
        backup::backup(&reopen(repo.store.clone()), &imp, &Default::default(), &NoProgress).unwrap();
    }
    let repo = reopen(repo.store.clone());
    let ids = repo.index.snapshots();
    let digit = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|d| ids.iter().filter(|i| i.to_hex().starts_with(d.as_str())).count() > 1)
        .unwrap();
    let e = repo.resolve(&digit).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadReference);
    assert!(e.to_string().contains("ambiguous"), "{e}");
    assert_eq!(repo.resolve(&ids[0].to_hex()[..12]).unwrap(), ids[0]);
}

/// A snapshot whose tree holds hostile names (as a tampered or foreign store could) never
/// makes restore write outside its target.
#[test]
fn restore_never_writes_outside_the_target() {
    use plakar::kloset::blob::BlobType;
    use plakar::kloset::importer::FileKind;
    use plakar::kloset::packer::Packer;
    use plakar::kloset::state::State;
    use plakar::kloset::tree::{Entry, Tree};
    let env = Env::new();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let packer = Packer::new(repo.store.clone(), repo.keys.clone(), &repo.index, None, 1 << 20, 1);
    let chunk = repo.keys.mac(b"evil");
    packer.add(BlobType::Chunk, chunk, b"evil").unwrap();
    let file = |name: &[u8]| Entry {
        name: name.to_vec(),
        info: FileInfo { kind: Some(FileKind::File), mode: 0o100644, size: 4, ..Default::default() },
        chunks: vec![chunk],
        lengths: vec![],
        subtree: None,
        error: None,
    };
    // A symlink pointing out, then a directory of the same name with a file in it: written
    // through the link, the file would land outside.
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let inner = Tree { version: 1, entries: vec![file(b"planted")] };
    let inner_id = repo.keys.mac(&inner.encode());
    packer.add(BlobType::Tree, inner_id, &inner.encode()).unwrap();
    let link = Entry {
        name: b"s".to_vec(),
        info: FileInfo {
            kind: Some(FileKind::Symlink),
            mode: 0o120777,
            target: outside.as_os_str().as_encoded_bytes().to_vec(),
            ..Default::default()
        },
        chunks: vec![],
        lengths: vec![],
        subtree: None,
        error: None,
    };
    let dir = Entry {
        name: b"s".to_vec(),
        info: FileInfo { kind: Some(FileKind::Dir), mode: 0o040755, ..Default::default() },
        chunks: vec![],
        lengths: vec![],
        subtree: Some(inner_id),
        error: None,
    };
    let tree =
        Tree { version: 1, entries: vec![file(b".."), file(b"../escape"), file(b"/abs"), file(b"ok"), link, dir] };
    let tid = repo.keys.mac(&tree.encode());
    packer.add(BlobType::Tree, tid, &tree.encode()).unwrap();
    let blobs = packer.finish().unwrap();
    repo.write_state(State { created: 0, blobs, ..Default::default() }).unwrap();
    let repo = reopen(repo.store.clone());
    let root = Entry {
        name: b"x".to_vec(),
        info: FileInfo { kind: Some(FileKind::Dir), mode: 0o040755, ..Default::default() },
        chunks: vec![],
        lengths: vec![],
        subtree: Some(tid),
        error: None,
    };
    let out = env.path("deep/out");
    let exp = FsExporter::new(&out, true).unwrap();
    let r = restore::restore(&repo, &root, b"", &exp, &NoProgress).unwrap();
    assert_eq!(r.errors.len(), 4, "{:?}", r.errors);
    assert!(r.errors.iter().any(|(_, e)| e.contains("duplicate name")), "{:?}", r.errors);
    assert_eq!(std::fs::read(out.join("ok")).unwrap(), b"evil");
    assert!(!env.path("deep/escape").exists() && !env.path("escape").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing written through the symlink");
    assert_eq!(std::fs::read_dir(env.path("deep")).unwrap().count(), 1, "only out/ was written");
}

/// A directory recorded without a tree (no backup writes one; a foreign store could)
/// restores empty with its own mode, not left as the private directory restore makes.
#[test]
fn a_directory_without_a_tree_restores_empty_with_its_mode() {
    use plakar::kloset::blob::BlobType;
    use plakar::kloset::importer::FileKind;
    use plakar::kloset::packer::Packer;
    use plakar::kloset::state::State;
    use plakar::kloset::tree::{Entry, Tree};
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let packer = Packer::new(repo.store.clone(), repo.keys.clone(), &repo.index, None, 1 << 20, 1);
    let dir = |name: &[u8], mode: u32, subtree| Entry {
        name: name.to_vec(),
        info: FileInfo { kind: Some(FileKind::Dir), mode, mtime_ns: 1_000_000_000_000_000_000, ..Default::default() },
        chunks: vec![],
        lengths: vec![],
        subtree,
        error: None,
    };
    let tree = Tree { version: 1, entries: vec![dir(b"bare", 0o040755, None)] };
    let tid = repo.keys.mac(&tree.encode());
    packer.add(BlobType::Tree, tid, &tree.encode()).unwrap();
    let blobs = packer.finish().unwrap();
    repo.write_state(State { created: 0, blobs, ..Default::default() }).unwrap();
    let repo = reopen(repo.store.clone());
    let out = env.path("out");
    let exp = FsExporter::new(&out, true).unwrap();
    let r = restore::restore(&repo, &dir(b"x", 0o040755, Some(tid)), b"", &exp, &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let m = std::fs::metadata(out.join("bare")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::read_dir(out.join("bare")).unwrap().count(), 0);
}

/// Packfiles a clean run of `f` stores into a fresh store.
fn clean_run(f: impl Fn(&Repository)) -> usize {
    let store = FullDisk::new();
    f(&new_repo(store.clone()));
    store.packs.load(Ordering::SeqCst)
}

/// An interrupted run (here: the store fills up after 4 packfiles), run again, sends only
/// what had not arrived: checkpoint states made the first packfiles part of the index.
fn assert_resumes(run: impl Fn(&Repository) -> plakar::kloset::Result<()>) {
    let clean = clean_run(|r| run(r).unwrap());
    assert!(clean >= 8, "the data should fill several packfiles, not {clean}");
    let store = FullDisk::new();
    let mut repo = new_repo(store.clone());
    repo.checkpoint_every = Some(std::time::Duration::ZERO);
    store.budget.store(4, Ordering::SeqCst);
    assert!(run(&repo).is_err(), "the first run must fail");
    let arrived = store.packs.load(Ordering::SeqCst);
    assert_eq!(arrived, 4);
    store.budget.store(usize::MAX, Ordering::SeqCst);
    store.packs.store(0, Ordering::SeqCst);
    let repo = reopen(store.clone());
    run(&repo).unwrap();
    let resent = store.packs.load(Ordering::SeqCst);
    assert!(
        resent + arrived <= clean + 1,
        "{resent} packfiles sent again after {arrived} had arrived (clean run: {clean})"
    );
    let repo = reopen(store);
    for id in repo.index.snapshots() {
        let res = check::check(&repo, &[(id, None)], false, &NoProgress);
        assert!(res[0].ok(), "{:?}", res[0].errors);
    }
}

fn big_tree(env: &Env) -> std::path::PathBuf {
    let data = env.path("data");
    sample_tree(&data);
    for i in 0..4 {
        std::fs::write(data.join(format!("noise{i}.bin")), crate::util::noise(600_000, 7 + i)).unwrap();
    }
    data
}

#[test]
fn interrupted_backup_resumes_without_resending() {
    let env = Env::new();
    let data = big_tree(&env);
    assert_resumes(|repo| {
        let imp = FsImporter::new(&data).unwrap();
        backup::backup(repo, &imp, &Default::default(), &NoProgress).map(|_| ())
    });
}

/// A run keeps in memory the records of the packfiles it stored only until a checkpoint
/// publishes them; a checkpoint comes after a count of records, not only after a time, so
/// a fast run over many small files does not keep them all (docs/PERFORMANCE.md, "Memory").
#[test]
fn a_backup_checkpoints_once_enough_records_wait_however_recent_the_last() {
    let env = Env::new();
    let data = big_tree(&env);
    let states = |records: usize| {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut repo = new_repo(store.clone());
        repo.checkpoint_every = Some(std::time::Duration::from_secs(3600));
        repo.checkpoint_records = records;
        backup::backup(&repo, &FsImporter::new(&data).unwrap(), &Default::default(), &NoProgress).unwrap();
        let repo = reopen(store.clone());
        let snaps = repo.index.snapshots();
        assert_eq!(snaps.len(), 1);
        let res = check::check(&repo, &[(snaps[0], None)], false, &NoProgress);
        assert!(res[0].ok(), "{:?}", res[0].errors);
        store.list(Resource::State).unwrap().len()
    };
    assert_eq!(states(usize::MAX), 1, "one state when nothing asks for a checkpoint");
    let packs = clean_run(|r| {
        backup::backup(r, &FsImporter::new(&data).unwrap(), &Default::default(), &NoProgress).unwrap();
    });
    // One packfile's records are enough: checkpoints as packfiles land (one uploader
    // skips its checkpoint while the other writes one, so some carry two packfiles; how
    // files fall into packfiles varies from run to run with the threads).
    let n = states(1);
    assert!(n >= packs / 2 && n <= 2 * packs, "{n} states for {packs} packfiles");
}

#[test]
fn interrupted_sync_resumes_without_resending() {
    let env = Env::new();
    let data = big_tree(&env);
    let src_store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let imp = FsImporter::new(&data).unwrap();
    let snap = backup::backup(&new_repo(src_store.clone()), &imp, &Default::default(), &NoProgress).unwrap();
    let src = reopen(src_store);
    assert_resumes(|dst| sync::sync(&src, dst, &[snap.id], false, &NoProgress).map(|r| assert_eq!(r.copied.len(), 1)));
}

/// A store whose last data packfile of a sync (the small one) is slow and then fails,
/// while `fail` is set: the metadata packfile with the snapshot header lands first.
#[derive(Default)]
struct SlowLastData {
    inner: MemoryStore,
    fail: std::sync::atomic::AtomicBool,
}

impl Store for SlowLastData {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self, c: &[u8]) -> StoreResult<()> {
        self.inner.create(c)
    }
    fn open(&self) -> StoreResult<Vec<u8>> {
        self.inner.open()
    }
    fn list(&self, r: Resource) -> StoreResult<Vec<[u8; 32]>> {
        self.inner.list(r)
    }
    fn get(&self, r: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        self.inner.get(r, id, range)
    }
    fn put(&self, r: Resource, id: &[u8; 32], d: &[u8]) -> StoreResult<()> {
        self.inner.put(r, id, d)
    }
    fn put_hinted(&self, r: Resource, id: &[u8; 32], d: &[u8], content: Content) -> StoreResult<()> {
        if r == Resource::Packfile
            && content == Content::Data
            && d.len() < 256 << 10
            && self.fail.load(Ordering::SeqCst)
        {
            std::thread::sleep(std::time::Duration::from_millis(500));
            return Err(StoreError::new(StoreErrorKind::Other, "connection reset"));
        }
        self.inner.put(r, id, d)
    }
    fn delete(&self, r: Resource, id: &[u8; 32]) -> StoreResult<()> {
        self.inner.delete(r, id)
    }
    fn size(&self, r: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        self.inner.size(r, id)
    }
}

/// A checkpoint never commits a snapshot: a sync whose last data packfile fails after
/// the header's packfile landed (and was checkpointed) lists nothing, and the next sync
/// copies the snapshot whole. Before, the first sync failed with the snapshot already
/// listed, and the next one skipped it and said so with success, over missing chunks.
#[test]
fn a_failed_sync_commits_no_snapshot_through_a_checkpoint() {
    let env = Env::new();
    let data = big_tree(&env);
    std::fs::write(data.join("last.bin"), crate::util::noise(70_000, 99)).unwrap();
    let src_store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let imp = FsImporter::new(&data).unwrap();
    let snap = backup::backup(&new_repo(src_store.clone()), &imp, &Default::default(), &NoProgress).unwrap();
    let src = reopen(src_store);
    let store = Arc::new(SlowLastData::default());
    let mut dst = new_repo(store.clone());
    dst.checkpoint_every = Some(std::time::Duration::from_secs(3600));
    dst.checkpoint_records = 1;
    store.fail.store(true, Ordering::SeqCst);
    assert!(sync::sync(&src, &dst, &[snap.id], false, &NoProgress).is_err());
    assert!(reopen(store.clone()).index.snapshots().is_empty(), "a failed sync listed its snapshot");
    store.fail.store(false, Ordering::SeqCst);
    let again = sync::sync(&src, &reopen(store.clone()), &[snap.id], false, &NoProgress).unwrap();
    assert_eq!(again.copied.len(), 1);
    let dst = reopen(store);
    let res = check::check(&dst, &[(dst.index.snapshots()[0], None)], false, &NoProgress);
    assert!(res[0].ok(), "{:?}", res[0].errors);
}

/// Reads half of each file, then asks for it again (`SendAgain`), as the S3 exporter does
/// when a server's UploadPart or CompleteMultipartUpload reply cannot be read; files named
/// "always" ask every time.
struct Restarts(FsExporter, std::sync::Mutex<std::collections::HashSet<Vec<u8>>>);

impl plakar::kloset::exporter::Exporter for Restarts {
    fn create_dir(&self, p: &[u8]) -> io::Result<()> {
        self.0.create_dir(p)
    }
    fn store_file(&self, p: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        if self.1.lock().unwrap().insert(p.to_vec()) || p.ends_with(b"always") {
            data.take(size / 2).read_to_end(&mut Vec::new())?;
            return Err(io::Error::other(plakar::kloset::exporter::SendAgain("multipart reply unreadable".into())));
        }
        self.0.store_file(p, data, size)
    }
    fn symlink(&self, p: &[u8], t: &[u8]) -> io::Result<()> {
        self.0.symlink(p, t)
    }
    fn hardlink(&self, p: &[u8], e: &[u8]) -> io::Result<()> {
        self.0.hardlink(p, e)
    }
    fn set_metadata(&self, p: &[u8], info: &FileInfo) -> io::Result<()> {
        self.0.set_metadata(p, info)
    }
    fn finish(&self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_exporter_that_asks_for_a_file_again_gets_it_whole_once_more() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("big"), noise(300_000, 5)).unwrap();
    std::fs::write(data.join("always"), noise(1000, 6)).unwrap();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let h = backup::backup(&repo, &FsImporter::new(&data).unwrap(), &Default::default(), &NoProgress).unwrap();
    let repo = reopen(repo.store.clone());
    let root = repo.lookup(&h, data.to_str().unwrap().as_bytes()).unwrap();
    let out = env.path("out");
    let exp = Restarts(FsExporter::new(&out, true).unwrap(), Default::default());
    let r = restore::restore(&repo, &root, b"", &exp, &NoProgress).unwrap();
    assert_eq!(std::fs::read(out.join("big")).unwrap(), std::fs::read(data.join("big")).unwrap());
    // Asked twice: reported, not asked forever.
    assert!(r.errors.iter().any(|(p, e)| p.ends_with("always") && e.contains("unreadable")), "{:?}", r.errors);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
}

/// Chunks added by the threads of a pool of `threads` into a packer of `writers` with
/// packfiles of `max`: each thread adds `per_thread` chunks of `size` bytes. Returns, for
/// each packfile, which threads' chunks it holds.
fn packed_by_thread(max: u64, writers: usize, threads: usize, per_thread: usize, size: usize) -> Vec<Vec<usize>> {
    use plakar::kloset::blob::BlobType;
    use plakar::kloset::packer::Packer;
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let packer = Packer::new(repo.store.clone(), repo.keys.clone(), &repo.index, None, max, 1).writers(writers);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.broadcast(|ctx| {
        for i in 0..per_thread {
            let data = noise(size, (ctx.index() * 100_000 + i) as u64);
            packer.add(BlobType::Chunk, repo.keys.mac(&data), &data).unwrap();
            assert!(packer.pending_bytes() <= max + (writers * size) as u64);
        }
    });
    let mut by_pack: std::collections::BTreeMap<_, std::collections::BTreeSet<usize>> = Default::default();
    let owner: std::collections::HashMap<_, usize> = (0..threads)
        .flat_map(|t| (0..per_thread).map(move |i| (t, i)))
        .map(|(t, i)| (repo.keys.mac(&noise(size, (t * 100_000 + i) as u64)), t))
        .collect();
    for r in packer.finish().unwrap() {
        by_pack.entry(r.pack).or_default().insert(owner[&r.id]);
    }
    by_pack.into_values().map(|s| s.into_iter().collect()).collect()
}

#[test]
fn each_backup_thread_fills_its_own_data_packfile_and_the_ends_are_merged() {
    // Three threads, packfiles of 12 MiB: three data packfiles of 4 MiB being filled. Each
    // thread adds 5 MiB: a full packfile of its own chunks each, then the three ends (about
    // 1 MiB each) go out as one packfile, not three.
    let packs = packed_by_thread(12 << 20, 3, 3, 80, 64 << 10);
    let mut alone: Vec<_> = packs.iter().filter(|p| p.len() == 1).map(|p| p[0]).collect();
    alone.sort();
    assert_eq!(alone, vec![0, 1, 2], "{packs:?}");
    assert_eq!(packs.iter().filter(|p| p.len() > 1).count(), 1, "{packs:?}");
    assert_eq!(packs.len(), 4, "{packs:?}");
    // A small backup: one data packfile.
    assert_eq!(packed_by_thread(12 << 20, 3, 3, 2, 1000), vec![vec![0, 1, 2]]);
}

#[test]
fn many_threads_share_as_many_data_packfiles_as_the_packfile_size_holds() {
    // 32 threads (an S3 source), packfiles of 16 MiB: four data packfiles of 4 MiB being
    // filled, not 32 (memory held would grow with the threads); threads share them.
    let packs = packed_by_thread(16 << 20, 32, 32, 40, 16 << 10);
    assert!(packs.iter().all(|p| p.len() >= 2), "{packs:?}");
    // Packfiles of 4 MiB or less: one data packfile, as before writers.
    assert_eq!(packed_by_thread(4 << 20, 3, 3, 10, 1000).len(), 1);
}
