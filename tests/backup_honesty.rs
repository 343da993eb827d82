//! Backup's rule: every entry a source lists ends in the snapshot exactly, or in a KO line
//! (`<id>: KO ✘ <path>: <why>`) and exit 3. Each test here is a way a source can list,
//! change or deliver something that used to be stored wrong or dropped with exit 0: names no
//! file can have, the same name twice, a file rewritten while it is read, fewer bytes than
//! announced. Engine tests use in-memory importers; the FTP ones a pyftpdlib server that
//! lies (scripts/ftp-hostile.py).
use crate::engine::{new_repo, reopen};
use crate::util::*;
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::importer::{DirEntry, FileInfo, FileKind, Importer};
use plakar::kloset::ops::backup::{self, BackupOptions};
use plakar::kloset::progress::NoProgress;
use plakar::kloset::reader::ChunkReader;
use plakar::kloset::snapshot::Header;
use plakar::kloset::tree::Entry;
use plakar::kloset::Repository;
use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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
}

impl Fake {
    fn new() -> Self {
        Fake::default()
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
    let out = restored(&env, "out");
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
