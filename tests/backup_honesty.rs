//! Backup's rule: every entry a source lists ends in the snapshot exactly, or in a KO line
//! (`<id>: KO ✘ <path>: <why>`) and exit 3. Each test here is a way a source can list,
//! change or deliver something that used to be stored wrong or dropped with exit 0: names no
//! file can have, the same name twice, a file rewritten while it is read, fewer bytes than
//! announced. Engine tests use in-memory importers; the FTP ones a pyftpdlib server that
//! lies (scripts/ftp-hostile.py).
use crate::engine::{new_repo, reopen};
use crate::util::*;
use plakar::connectors::fs::FsImporter;
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::importer::{DirEntry, FileInfo, FileKind, Importer};
use plakar::kloset::ops::backup::{self, BackupOptions};
use plakar::kloset::progress::NoProgress;
use plakar::kloset::reader::ChunkReader;
use plakar::kloset::snapshot::Header;
use plakar::kloset::tree::Entry;
use plakar::kloset::Repository;
use predicates::prelude::*;
use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------- in-memory sources

fn file_info(size: u64, mtime_ns: i64) -> FileInfo {
    FileInfo { kind: Some(FileKind::File), mode: 0o100644, size, mtime_ns, nlink: 1, ..Default::default() }
}

fn dir_info() -> FileInfo {
    FileInfo { kind: Some(FileKind::Dir), mode: 0o040755, nlink: 1, ..Default::default() }
}

/// A directory's entries, as `read_dir` gives them.
type Listing = Vec<(Vec<u8>, Result<FileInfo, String>)>;

/// A source described in memory, rooted at /src: each directory's listing as given
/// (duplicates and errors included), and for each file what successive opens deliver and
/// what successive stats say (the last one repeats).
#[derive(Default)]
struct Fake {
    listings: HashMap<Vec<u8>, Listing>,
    reads: Mutex<HashMap<Vec<u8>, Vec<Vec<u8>>>>,
    stats: Mutex<HashMap<Vec<u8>, Vec<FileInfo>>>,
    opens: AtomicUsize,
    /// Whether the engine may stat a file again to see if it changed.
    restat: bool,
}

impl Fake {
    fn new() -> Self {
        Fake { restat: true, ..Default::default() }
    }
    fn list(mut self, dir: &str, entries: Vec<(&str, Result<FileInfo, String>)>) -> Self {
        let e = entries.into_iter().map(|(n, i)| (n.as_bytes().to_vec(), i)).collect();
        self.listings.insert(dir.as_bytes().to_vec(), e);
        self
    }
    /// What successive opens of `path` deliver.
    fn reads(self, path: &str, contents: &[&[u8]]) -> Self {
        self.reads.lock().unwrap().insert(path.as_bytes().to_vec(), contents.iter().map(|c| c.to_vec()).collect());
        self
    }
    /// What successive stats of `path` say.
    fn stats(self, path: &str, infos: Vec<FileInfo>) -> Self {
        self.stats.lock().unwrap().insert(path.as_bytes().to_vec(), infos);
        self
    }
}

/// Takes the next of a queue whose last element repeats.
fn next<T: Clone>(q: &mut Vec<T>) -> Option<T> {
    if q.len() > 1 {
        Some(q.remove(0))
    } else {
        q.first().cloned()
    }
}

impl Importer for Fake {
    fn kind(&self) -> &str {
        "fake"
    }
    fn origin(&self) -> String {
        "memory".into()
    }
    fn root(&self) -> Vec<u8> {
        b"/src".to_vec()
    }
    fn stat(&self, p: &[u8]) -> io::Result<FileInfo> {
        if let Some(info) = self.stats.lock().unwrap().get_mut(p).and_then(next) {
            return Ok(info);
        }
        match self.listings.contains_key(p) {
            true => Ok(dir_info()),
            false => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
    fn read_dir(&self, p: &[u8]) -> io::Result<Vec<DirEntry>> {
        let l = self.listings.get(p).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(l.iter().map(|(n, i)| DirEntry { name: n.clone(), info: i.clone() }).collect())
    }
    fn open(&self, p: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let mut reads = self.reads.lock().unwrap();
        let data = reads.get_mut(p).and_then(next).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(io::Cursor::new(data)))
    }
    fn restat_after_read(&self) -> bool {
        self.restat
    }
}

fn run(imp: &dyn Importer, opts: &BackupOptions) -> (Repository, Header) {
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let h = backup::backup(&repo, imp, opts, &NoProgress).unwrap();
    (reopen(repo.store.clone()), h)
}

fn content(repo: &Repository, e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    ChunkReader::new(repo, &e.chunks).read_to_end(&mut out).unwrap();
    out
}

fn errors_about<'a>(h: &'a Header, path: &str) -> Vec<&'a str> {
    h.errors.iter().filter(|(p, _)| p == path).map(|(_, e)| e.as_str()).collect()
}

#[test]
fn duplicate_names_keep_the_first_entry_and_report_the_others() {
    let imp = Fake::new()
        .list(
            "/src",
            vec![
                ("x", Ok(file_info(1, 1))),
                ("y", Ok(file_info(1, 1))),
                ("x", Ok(dir_info())),
                ("y", Ok(file_info(1, 2))),
                ("y", Ok(dir_info())),
            ],
        )
        .list("/src/x", vec![("inner", Ok(file_info(5, 1)))])
        .reads("/src/x", &[b"x"])
        .reads("/src/y", &[b"y"])
        .stats("/src/x", vec![file_info(1, 1)])
        .stats("/src/y", vec![file_info(1, 1)]);
    let (repo, h) = run(&imp, &Default::default());
    let dropped_x = errors_about(&h, "/src/x");
    let dropped_y = errors_about(&h, "/src/y");
    assert_eq!(dropped_x.len(), 1, "{:?}", h.errors);
    assert_eq!(dropped_y.len(), 2, "{:?}", h.errors);
    assert!(dropped_x[0].contains("listed more than once") && dropped_x[0].contains("directory"), "{dropped_x:?}");
    assert_eq!(h.summary.errors, 3);
    let root = repo.tree(&repo.lookup(&h, b"/src").unwrap().subtree.unwrap()).unwrap();
    let names: Vec<&[u8]> = root.entries.iter().map(|e| e.name.as_slice()).collect();
    assert_eq!(names, [&b"x"[..], b"y"]);
    let x = &root.entries[0];
    assert_eq!((x.kind(), x.info.mtime_ns, content(&repo, x)), (FileKind::File, 1, b"x".to_vec()));
    assert_eq!(root.entries[1].info.mtime_ns, 1, "the first y is kept");
}

#[test]
fn listing_problems_are_reported_against_the_directory() {
    let imp = Fake::new()
        .list(
            "/src",
            vec![
                ("", Err("cannot read the listing line \"junk\"".into())),
                ("ok", Ok(file_info(2, 1))),
                ("a/b", Ok(file_info(2, 1))),
            ],
        )
        .reads("/src/ok", &[b"ok"])
        .stats("/src/ok", vec![file_info(2, 1)]);
    let (_, h) = run(&imp, &Default::default());
    assert!(errors_about(&h, "/src").iter().any(|e| e.contains("\"junk\"")), "{:?}", h.errors);
    assert_eq!(errors_about(&h, "/src/a/b").len(), 1, "{:?}", h.errors);
    assert_eq!(h.summary.errors, 2);
}

#[test]
fn a_file_that_keeps_changing_is_read_three_times_then_reported() {
    let fake = || {
        Fake::new()
            .list("/src", vec![("f", Ok(file_info(4, 1)))])
            .reads("/src/f", &[b"aaaa", b"bbbb", b"cccc", b"dddd"])
            .stats("/src/f", vec![file_info(4, 2), file_info(4, 3), file_info(4, 4), file_info(4, 5)])
    };
    let imp = fake();
    let (repo, h) = run(&imp, &Default::default());
    assert_eq!(imp.opens.load(Ordering::SeqCst), 3);
    let why = errors_about(&h, "/src/f");
    assert!(why.len() == 1 && why[0].contains("file changed while it was read"), "{:?}", h.errors);
    let f = repo.lookup(&h, b"/src/f").unwrap();
    assert_eq!(content(&repo, &f), b"cccc", "the last read is stored");
    assert!(f.error.is_some(), "marked, so the next backup reads it again");

    // -no-changed-check: one read, stored as read, nothing reported.
    let imp = fake();
    let (repo, h) = run(&imp, &BackupOptions { no_changed_check: true, ..Default::default() });
    assert_eq!((imp.opens.load(Ordering::SeqCst), h.summary.errors), (1, 0), "{:?}", h.errors);
    assert_eq!(content(&repo, &repo.lookup(&h, b"/src/f").unwrap()), b"aaaa");
}

#[test]
fn a_file_replaced_by_a_directory_while_read_is_reported() {
    let imp = Fake::new()
        .list("/src", vec![("f", Ok(file_info(4, 1)))])
        .reads("/src/f", &[b"aaaa"])
        .stats("/src/f", vec![dir_info()]);
    let (repo, h) = run(&imp, &Default::default());
    assert_eq!(imp.opens.load(Ordering::SeqCst), 1, "a directory is not read");
    let why = errors_about(&h, "/src/f");
    assert!(why.len() == 1 && why[0].contains("file changed while it was read"), "{:?}", h.errors);
    let f = repo.lookup(&h, b"/src/f").unwrap();
    assert_eq!((f.kind(), content(&repo, &f)), (FileKind::File, b"aaaa".to_vec()));
}

#[test]
fn a_file_that_settles_is_stored_as_its_last_version() {
    // Changed between the listing and the first read, then left alone.
    let imp = Fake::new()
        .list("/src", vec![("f", Ok(file_info(4, 1)))])
        .reads("/src/f", &[b"aaaa", b"bbbbbb"])
        .stats("/src/f", vec![file_info(6, 2)]);
    let (repo, h) = run(&imp, &Default::default());
    assert_eq!((imp.opens.load(Ordering::SeqCst), h.summary.errors), (2, 0), "{:?}", h.errors);
    let f = repo.lookup(&h, b"/src/f").unwrap();
    assert_eq!((content(&repo, &f), f.info.size, f.info.mtime_ns), (b"bbbbbb".to_vec(), 6, 2));
    assert!(f.error.is_none());
}

#[test]
fn fewer_bytes_than_announced_are_stored_and_reported() {
    for restat in [true, false] {
        let mut imp = Fake::new()
            .list("/src", vec![("f", Ok(file_info(1_000_000, 1)))])
            .reads("/src/f", &[b"sixsix"])
            .stats("/src/f", vec![file_info(1_000_000, 1)]);
        imp.restat = restat;
        let (repo, h) = run(&imp, &Default::default());
        let why = errors_about(&h, "/src/f");
        assert!(why.len() == 1 && why[0].contains("1000000") && why[0].contains(" 6 "), "{:?}", h.errors);
        let f = repo.lookup(&h, b"/src/f").unwrap();
        assert_eq!((content(&repo, &f), f.info.size), (b"sixsix".to_vec(), 6), "what was read is kept");
        assert_eq!(imp.opens.load(Ordering::SeqCst), 1, "a source that lies is not read again");
    }
}

/// Reads real files, and truncates a file to 6 bytes once `after` bytes of it have been
/// read (once in the run), as a program rewriting it would.
struct ShrinkingFs {
    fs: FsImporter,
    after: usize,
    done: Arc<AtomicBool>,
}

struct Shrinker {
    inner: fs::File,
    path: PathBuf,
    read: usize,
    after: usize,
    done: Arc<AtomicBool>,
}

impl Read for Shrinker {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.after && !self.done.swap(true, Ordering::SeqCst) {
            fs::OpenOptions::new().write(true).open(&self.path)?.set_len(6)?;
        }
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

impl Importer for ShrinkingFs {
    fn kind(&self) -> &str {
        self.fs.kind()
    }
    fn origin(&self) -> String {
        self.fs.origin()
    }
    fn root(&self) -> Vec<u8> {
        self.fs.root()
    }
    fn stat(&self, p: &[u8]) -> io::Result<FileInfo> {
        self.fs.stat(p)
    }
    fn read_dir(&self, p: &[u8]) -> io::Result<Vec<DirEntry>> {
        self.fs.read_dir(p)
    }
    fn open(&self, p: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(p));
        let inner = fs::File::open(&path)?;
        Ok(Box::new(Shrinker { inner, path, read: 0, after: self.after, done: self.done.clone() }))
    }
}

#[test]
fn a_local_file_that_shrinks_while_read_is_stored_as_one_version_or_reported() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    let original = noise(3 << 20, 5);
    fs::write(data.join("f"), &original).unwrap();
    let imp = ShrinkingFs { fs: FsImporter::new(&data).unwrap(), after: 1 << 20, done: Default::default() };
    let (repo, h) = run(&imp, &Default::default());
    let f = repo.lookup(&h, format!("{}/f", data.display()).as_bytes()).unwrap();
    let stored = content(&repo, &f);
    let now = fs::read(data.join("f")).unwrap();
    let consistent = (stored == original || stored == now) && f.info.size == stored.len() as u64;
    let reported = h.errors.iter().any(|(p, _)| p.ends_with("/f")) && f.error.is_some();
    assert!(consistent || reported, "stored {} bytes, unreported: {:?}", stored.len(), h.errors);
}

// ---------------------------------------------------------------- a local file rewritten

/// Rewrites `path` in place, all `a` then all `b`, until dropped. Each version is one
/// write call, so that the file is rarely seen half-written while the writer waits for
/// the processor: the backup could then read it whole and unchanged, mixed as it is.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: &Path, size: usize) -> Writer {
        use std::os::unix::fs::FileExt;
        fs::write(path, vec![b'a'; size]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let f = fs::OpenOptions::new().write(true).open(path).unwrap();
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let versions = [vec![b'a'; size], vec![b'b'; size]];
            for v in versions.iter().cycle() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                f.write_all_at(v, 0).unwrap();
            }
        });
        Writer { stop, thread: Some(thread) }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A scratch directory in memory when the machine has one: the writer then rewrites the
/// file far faster than the backup reads it.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

const BIG: usize = 24 << 20;

#[test]
fn a_file_rewritten_during_backup_is_consistent_or_reported() {
    let env = Env::new();
    env.create();
    let dir = scratch();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let writer = Writer::start(&src.join("busy.bin"), BIG);
    let out = env.at(&["backup", "-no-progress", src.to_str().unwrap()]).output().unwrap();
    drop(writer);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            let to = env.path("out");
            env.at(&["restore", "-to", to.to_str().unwrap(), &env.latest()[..8]]).assert().success();
            let got = fs::read(to.join("busy.bin")).unwrap();
            assert_eq!(got.len(), BIG);
            assert!(got.iter().all(|&b| b == got[0]), "exit 0, but the stored file mixes two versions");
        }
        Some(3) => assert!(
            stderr.contains("KO ✘") && stderr.contains("busy.bin") && stderr.contains("file changed while it was read"),
            "{stderr}"
        ),
        c => panic!("exit {c:?}: {stderr}"),
    }
}

#[test]
fn no_changed_check_accepts_a_file_rewritten_during_backup() {
    let env = Env::new();
    env.create();
    let dir = scratch();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let writer = Writer::start(&src.join("busy.bin"), BIG);
    env.at(&["backup", "-no-progress", "-no-changed-check", src.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicate::str::contains("KO").not());
    drop(writer);
}

// ---------------------------------------------------------------- an FTP server that lies

/// scripts/ftp-hostile.py on a free port, serving `home` with the listings of `spec`;
/// killed on drop.
struct HostileFtp {
    child: std::process::Child,
    endpoint: String,
}

impl HostileFtp {
    /// None when the FTP test server is not set up (its venv is the one used here).
    fn start(home: &Path, spec: serde_json::Value) -> Option<HostileFtp> {
        ftp_server()?;
        let spec_path = home.with_extension("spec.json");
        fs::write(&spec_path, spec.to_string()).unwrap();
        let mut child = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ftp-server.sh"))
            .arg("hostile")
            .arg(home)
            .arg(&spec_path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("no port from ftp-hostile.py: {line:?}"));
        Some(HostileFtp { child, endpoint: format!("127.0.0.1:{port}") })
    }

    /// Names `path` on the server as source @NAME.
    fn add_source(&self, env: &Env, name: &str, path: &str) {
        env.cmd()
            .args([
                "source",
                "add",
                name,
                &format!("ftp://{}/{path}", self.endpoint),
                "username=hostile",
                "password=hostile-password",
            ])
            .assert()
            .success();
    }
}

impl Drop for HostileFtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The facts of a file as the hostile listings give them.
fn facts(size: u64) -> String {
    format!("type=file;size={size};modify=20240101000000;")
}

/// Backs up @NAME; returns (exit code, stderr).
fn backup_source(env: &Env, name: &str) -> (Option<i32>, String) {
    let out = env.at(&["backup", "-no-progress", &format!("@{name}")]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Restores a snapshot that holds entries recorded as not backed up: they are reported
/// (exit 3), the rest restored.
fn restored_with_reports(env: &Env, to: &str) -> PathBuf {
    let out = env.path(to);
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()[..8]]).assert().code(3);
    out
}

fn restored(env: &Env, to: &str) -> PathBuf {
    let out = env.path(to);
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    out
}

#[test]
fn ftp_names_a_listing_cannot_hold_are_reported() {
    let env = Env::new();
    let home = env.path("ftp");
    fs::create_dir_all(home.join("names")).unwrap();
    fs::write(home.join("names/ok.txt"), "ok\n").unwrap();
    let spec = serde_json::json!({ "mlsd": { "/names": [
        "this is no listing line",
        "type=cdir;modify=20240101000000; /names",
        "type=pdir;modify=20240101000000; /",
        "type=dir;modify=20240101000000; .",
        "type=dir;modify=20240101000000; ..",
        format!("{} a/b.txt", facts(5)),
        format!("{} /abs.txt", facts(5)),
        format!("{} ../../escape.txt", facts(5)),
        format!("{} ..", facts(5)),
        format!("{} ", facts(5)),
        format!("{} ok.txt", facts(3)),
    ]}});
    let Some(srv) = HostileFtp::start(&home, spec) else { return };
    env.create();
    srv.add_source(&env, "names", "names");
    let (code, stderr) = backup_source(&env, "names");
    assert_eq!(code, Some(3), "{stderr}");
    for what in
        ["/names/a/b.txt", "/names//abs.txt", "/names/../../escape.txt", "/names/..: ", "this is no listing line"]
    {
        assert!(stderr.lines().any(|l| l.contains("KO ✘") && l.contains(what)), "no KO for {what}:\n{stderr}");
    }
    assert_eq!(stderr.lines().filter(|l| l.contains("KO ✘")).count(), 6, "{stderr}");
    // KO lines name the snapshot they belong to, as Plakar's do: `<8hex>: KO ✘ <path>: <why>`.
    let id = env.latest();
    let prefix = format!("{}: KO ✘ ", &id[..8]);
    assert!(stderr.lines().filter(|l| l.contains("KO ✘")).all(|l| l.starts_with(&prefix)), "{prefix}\n{stderr}");
    let out = restored(&env, "out");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
    assert_eq!(fs::read_to_string(out.join("ok.txt")).unwrap(), "ok\n");
}

#[test]
fn ftp_a_name_with_a_line_break_is_reported_not_split() {
    let env = Env::new();
    let home = env.path("ftp");
    fs::create_dir_all(home.join("nl")).unwrap();
    fs::write(home.join("nl/new\nline.txt"), "two lines of name\n").unwrap();
    fs::write(home.join("nl/new"), "the real new\n").unwrap();
    let Some(srv) = HostileFtp::start(&home, serde_json::json!({})) else { return };
    env.create();
    srv.add_source(&env, "nl", "nl");
    let (code, stderr) = backup_source(&env, "nl");
    assert_eq!(code, Some(3), "{stderr}");
    let ko: Vec<&str> = stderr.lines().filter(|l| l.contains("KO ✘")).collect();
    assert!(ko.len() == 1 && ko[0].contains("/nl/new line.txt") && ko[0].contains("line break"), "{stderr}");
    let out = restored_with_reports(&env, "out");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
    assert_eq!(fs::read_to_string(out.join("new")).unwrap(), "the real new\n");
}

#[test]
fn ftp_duplicate_names_are_reported() {
    let env = Env::new();
    let home = env.path("ftp");
    fs::create_dir_all(home.join("dups/x")).unwrap();
    fs::write(home.join("dups/x/inner"), "inner\n").unwrap();
    fs::write(home.join("dups/y"), "y").unwrap();
    let spec = serde_json::json!({ "mlsd": { "/dups": [
        "type=dir;modify=20240101000000; x",
        format!("{} y", facts(1)),
        format!("{} x", facts(5)),
        format!("{} y", facts(1)),
        format!("{} y", facts(1)),
    ]}});
    let Some(srv) = HostileFtp::start(&home, spec) else { return };
    env.create();
    srv.add_source(&env, "dups", "dups");
    let (code, stderr) = backup_source(&env, "dups");
    assert_eq!(code, Some(3), "{stderr}");
    let ko: Vec<&str> = stderr.lines().filter(|l| l.contains("KO ✘")).collect();
    assert_eq!(ko.iter().filter(|l| l.contains("/dups/x: ")).count(), 1, "{stderr}");
    assert_eq!(ko.iter().filter(|l| l.contains("/dups/y: ")).count(), 2, "{stderr}");
    assert_eq!(ko.len(), 3, "{stderr}");
    env.at(&["check", &env.latest()[..8]]).assert().success();
    let out = restored(&env, "out");
    assert_eq!(fs::read_to_string(out.join("x/inner")).unwrap(), "inner\n");
    assert_eq!(fs::read_to_string(out.join("y")).unwrap(), "y");
}

#[test]
fn ftp_short_transfer_is_reported() {
    let env = Env::new();
    let home = env.path("ftp");
    fs::create_dir_all(home.join("short")).unwrap();
    fs::write(home.join("short/f.bin"), "sixsix").unwrap();
    let spec = serde_json::json!({
        "mlsd": { "/short": [format!("{}unique=1; f.bin", facts(1_000_000))] },
        "mlst": { "/short/f.bin": format!("{}unique=1;", facts(1_000_000)) },
    });
    let Some(srv) = HostileFtp::start(&home, spec) else { return };
    env.create();
    srv.add_source(&env, "short", "short");
    let (code, stderr) = backup_source(&env, "short");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains("KO ✘ /short/f.bin") && l.contains("1000000") && l.contains(" 6 ")),
        "{stderr}"
    );
    let out = restored(&env, "out");
    assert_eq!(fs::read_to_string(out.join("f.bin")).unwrap(), "sixsix", "what arrived is kept");
}
