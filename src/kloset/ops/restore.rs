//! Restore: walk the snapshot tree from the requested path and hand each entry to the
//! exporter, several files at a time. Every chunk is authenticated and its id checked as
//! it is read; a damaged file is reported and skipped, and the rest is still restored.
//! An entry recorded with a backup-time error (a directory that could not be listed, a file
//! that could not be read) is reported too: what the snapshot holds of it is restored (the
//! directory, empty), but the restore does not claim to be complete.
//! What the target leaves out on purpose because it cannot hold it (a socket, a named pipe
//! in a bucket, extended attributes on a server) is reported as a note: said and counted,
//! but not a failure.

use crate::kloset::error::Result;
use crate::kloset::exporter::{send_again, skipped, target_refused, Exporter};
use crate::kloset::importer::{join, FileKind};
use crate::kloset::progress::Progress;
use crate::kloset::reader::ChunkReader;
use crate::kloset::repo::Repository;
use crate::kloset::tree::{safe_name, Entry, Tree};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

mod planned;
pub use planned::Plan;

#[derive(Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub errors: Vec<(String, String)>,
    /// Some file failed because the target has no space left.
    pub target_full: bool,
    /// Files the target refused to take (permission denied), and files written.
    pub denied: u64,
    pub written: u64,
    /// The target refused as a whole (credentials, write permission): the restore stopped
    /// at that first refusal, reported once.
    pub refused: Option<String>,
    /// What was left out on purpose, with why (path, note); the path is empty for a note
    /// about the whole restore.
    pub notes: Vec<(String, String)>,
}

/// A hard link to make once its first path is restored: (path, first path, entry).
type Deferred = (Vec<u8>, Vec<u8>, Entry);

struct Run<'a> {
    repo: &'a Repository,
    exp: &'a dyn Exporter,
    progress: &'a dyn Progress,
    files: AtomicU64,
    dirs: AtomicU64,
    links: AtomicU64,
    bytes: AtomicU64,
    errors: Mutex<Vec<(String, String)>>,
    inodes: Mutex<HashMap<(u64, u64), Vec<u8>>>,
    deferred: Mutex<Vec<Deferred>>,
    full: std::sync::atomic::AtomicBool,
    denied: AtomicU64,
    written: AtomicU64,
    refused: Mutex<Option<String>>,
    notes: Mutex<Vec<(String, String)>>,
    /// Entries with extended attributes the target cannot keep.
    xattrs_dropped: AtomicU64,
}

/// A file whose backup-time error is a warning about content that was stored anyway: its
/// chunks hold what was read (a file that could not be read at all has none; one that
/// delivered nothing is reported as not stored, which errs on the side of saying so).
fn stored_with_warning(e: &Entry) -> bool {
    e.kind() == FileKind::File && !e.chunks.is_empty()
}

/// Why a directory recorded with a backup-time error is incomplete; drill says the same.
pub fn dir_unreadable(msg: &str) -> String {
    format!("directory could not be read at backup time, its contents are not in the snapshot ({msg})")
}

fn is_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// How a restore reads the store.
#[derive(Debug, Clone, Copy, Default)]
pub enum Reads {
    /// Planned where each request costs a round trip (`Store::remote`), else file by file.
    #[default]
    Auto,
    /// Each file's chunks read in turn, several files at a time.
    FileByFile,
    /// Planned per packfile (restore/planned.rs).
    Planned(Plan),
}

/// Restores `entry` at `dest` (relative to the exporter's root; empty means the root
/// itself, which receives the entry's children, or, when the entry is not a directory, a
/// snapshot of a single file, the entry under its own name).
pub fn restore(
    repo: &Repository,
    entry: &Entry,
    dest: &[u8],
    exp: &dyn Exporter,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    restore_with(repo, entry, dest, exp, progress, Reads::Auto)
}

/// `restore`, reading the store as `reads` says.
pub fn restore_with(
    repo: &Repository,
    entry: &Entry,
    dest: &[u8],
    exp: &dyn Exporter,
    progress: &dyn Progress,
    reads: Reads,
) -> Result<RestoreReport> {
    let run = Run {
        repo,
        exp,
        progress,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        links: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
        inodes: Mutex::new(HashMap::new()),
        deferred: Mutex::new(Vec::new()),
        full: Default::default(),
        denied: AtomicU64::new(0),
        written: AtomicU64::new(0),
        refused: Mutex::new(None),
        notes: Mutex::new(Vec::new()),
        xattrs_dropped: AtomicU64::new(0),
    };
    let top = if !dest.is_empty() || entry.kind() == FileKind::Dir {
        Some(dest)
    } else if safe_name(&entry.name) {
        Some(entry.name.as_slice())
    } else {
        run.fail(&entry.name, "unsafe name in snapshot, not restored");
        None
    };
    if let Some(path) = top {
        match reads {
            Reads::Auto if planned::wanted(repo) => planned::restore(&run, entry, path, &Plan::default()),
            Reads::Planned(plan) => planned::restore(&run, entry, path, &plan),
            Reads::Auto | Reads::FileByFile => run.entry(entry, path),
        }
    }
    for (path, first, entry) in std::mem::take(&mut *run.deferred.lock().expect("lock")) {
        if run.stopped() {
            break;
        }
        if let Err(e) = exp.hardlink(&path, &first) {
            if target_refused(&e) {
                run.fail_io(&path, &e);
                break;
            }
            // A target that cannot link (or copy what it holds, as a put-only S3 key
            // cannot) gets the file's content again from the snapshot.
            if let Err(e2) = store_file(run.repo, exp, &path, &entry) {
                run.fail(&path, &format!("cannot create hard link: {e}; nor write it as a copy: {e2}"));
            }
        }
    }
    if let Err(e) = exp.finish() {
        run.fail(b"", &e.to_string());
    }
    let mut notes = run.notes.into_inner().expect("lock");
    let dropped = run.xattrs_dropped.into_inner();
    if dropped > 0 {
        let n = if dropped == 1 { "1 entry".to_string() } else { format!("{dropped} entries") };
        notes.push((String::new(), format!("extended attributes of {n} not restored: this target cannot hold them")));
    }
    notes.extend(exp.notes().into_iter().map(|n| (String::new(), n)));
    Ok(RestoreReport {
        files: run.files.into_inner(),
        directories: run.dirs.into_inner(),
        symlinks: run.links.into_inner(),
        bytes: run.bytes.into_inner(),
        errors: run.errors.into_inner().expect("lock"),
        target_full: run.full.into_inner(),
        denied: run.denied.into_inner(),
        written: run.written.into_inner(),
        refused: run.refused.into_inner().expect("lock"),
        notes,
    })
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.refused.lock().expect("lock").is_some()
    }

    fn fail_io(&self, path: &[u8], err: &std::io::Error) {
        if skipped(err) {
            let p = String::from_utf8_lossy(path).into_owned();
            self.notes.lock().expect("lock").push((p, err.to_string()));
            return;
        }
        if target_refused(err) {
            // Reported once; the files in flight that fail alike are not.
            let mut r = self.refused.lock().expect("lock");
            if r.is_some() {
                return;
            }
            *r = Some(err.to_string());
        }
        if is_full(err) {
            self.full.store(true, Ordering::Relaxed);
        }
        if err.kind() == std::io::ErrorKind::PermissionDenied {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        self.fail(path, &err.to_string())
    }

    fn fail(&self, path: &[u8], msg: &str) {
        self.progress.error(path, msg);
        self.errors.lock().expect("lock").push((String::from_utf8_lossy(path).into_owned(), msg.to_string()));
    }

    fn entry(&self, e: &Entry, path: &[u8]) {
        if self.stopped() {
            return;
        }
        self.count_xattrs(e, path);
        match e.kind() {
            FileKind::Dir => self.dir(e, path),
            // Not read at backup time (or not even described, then recorded without a kind):
            // nothing of it to restore. A file stored with a warning (changed while read, a
            // short delivery) has its content as read, and is restored as recorded.
            _ if e.error.is_some() && !stored_with_warning(e) => self.not_stored(e, path),
            FileKind::File => self.file(e, path),
            FileKind::Symlink => self.symlink(e, path),
            FileKind::Special => self.special(e, path),
        }
        self.progress.item(path, e.info.size);
    }

    fn not_stored(&self, e: &Entry, path: &[u8]) {
        if e.kind() == FileKind::File {
            self.files.fetch_add(1, Ordering::Relaxed);
        }
        let msg = e.error.as_deref().unwrap_or_default();
        self.fail(path, &format!("not in the snapshot: it could not be read at backup time ({msg})"));
    }

    /// Counts an entry whose extended attributes the exporter cannot keep (said once, at
    /// the end).
    fn count_xattrs(&self, e: &Entry, path: &[u8]) {
        if !e.info.xattrs.is_empty() && !path.is_empty() && !self.exp.keeps_xattrs() {
            self.xattrs_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn special(&self, e: &Entry, path: &[u8]) {
        if let Err(err) = self.exp.special(path, &e.info) {
            self.fail_io(path, &err);
        }
    }

    fn symlink(&self, e: &Entry, path: &[u8]) {
        self.links.fetch_add(1, Ordering::Relaxed);
        let r = self.exp.symlink(path, &e.info.target).and_then(|_| self.exp.set_metadata(path, &e.info));
        if let Err(err) = r {
            self.fail_io(path, &err);
        }
    }

    /// Makes a directory and reads its tree; None when it could not be made or its tree
    /// read (each failure reported).
    fn open_dir(&self, e: &Entry, path: &[u8]) -> Option<Tree> {
        self.dirs.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = self.exp.create_dir(path) {
            self.fail_io(path, &err);
            return None;
        }
        if let Some(msg) = &e.error {
            self.fail(path, &dir_unreadable(msg));
        }
        // A directory recorded without a tree (no backup writes one) is empty, as drill
        // takes it: it still gets its mode, owner and times.
        let Some(sub) = e.subtree else { return Some(Tree::default()) };
        self.repo.tree(&sub).map_err(|err| self.fail(path, &err.to_string())).ok()
    }

    fn dir(&self, e: &Entry, path: &[u8]) {
        let Some(tree) = self.open_dir(e, path) else { return };
        self.children(&tree, path).par_iter().for_each(|(c, p)| self.entry(c, p));
        if !path.is_empty() {
            if let Err(err) = self.exp.set_metadata(path, &e.info) {
                self.fail(path, &err.to_string());
            }
        }
    }

    /// The entries of a directory to restore, each with its path. A crafted tree may name
    /// two entries alike (a symlink pointing out, then a directory written through it):
    /// only the first of a name is restored; unsafe names are reported, not restored.
    fn children<'t>(&self, tree: &'t Tree, path: &[u8]) -> Vec<(&'t Entry, Vec<u8>)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(tree.entries.len());
        for c in &tree.entries {
            let p = join(path, &c.name);
            if !seen.insert(c.name.as_slice()) {
                self.fail(&p, "duplicate name in snapshot, not restored");
            } else if safe_name(&c.name) {
                out.push((c, if path.is_empty() { c.name.clone() } else { p }));
            } else {
                self.fail(&p, "unsafe name in snapshot, not restored");
            }
        }
        out
    }

    fn file(&self, e: &Entry, path: &[u8]) {
        self.files.fetch_add(1, Ordering::Relaxed);
        if self.link_later(e, path) {
            return;
        }
        self.file_done(e, path, store_file(self.repo, self.exp, path, e));
    }

    /// Whether `e` is another name of a file restored at an earlier path: it is then made
    /// a hard link to it once everything else is restored.
    fn link_later(&self, e: &Entry, path: &[u8]) -> bool {
        if e.info.nlink > 1 && e.info.ino != 0 {
            let mut m = self.inodes.lock().expect("lock");
            if let Some(first) = m.get(&(e.info.dev, e.info.ino)) {
                self.deferred.lock().expect("lock").push((path.to_vec(), first.clone(), e.clone()));
                return true;
            }
            m.insert((e.info.dev, e.info.ino), path.to_vec());
        }
        false
    }

    /// Counts a file written, or reports why it was not.
    fn file_done(&self, e: &Entry, path: &[u8], r: std::io::Result<()>) {
        match r {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(e.info.size, Ordering::Relaxed);
                self.progress.bytes(e.info.size);
            }
            Err(err) => self.fail_io(path, &err),
        }
    }
}

/// Writes a file from the snapshot; once more with a fresh reader when the exporter asks for
/// its content again (`SendAgain`).
fn store_file(repo: &Repository, exp: &dyn Exporter, path: &[u8], e: &Entry) -> std::io::Result<()> {
    let mut reader = ChunkReader::new(repo, &e.chunks);
    let r = exp.store_file_with_metadata(path, &mut reader, e.info.size, &e.info);
    if !r.as_ref().is_err_and(send_again) {
        return r;
    }
    let mut reader = ChunkReader::new(repo, &e.chunks);
    exp.store_file_with_metadata(path, &mut reader, e.info.size, &e.info)
}
