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
use crate::kloset::tree::{safe_name, Entry};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    if !dest.is_empty() || entry.kind() == FileKind::Dir {
        run.entry(entry, dest);
    } else if safe_name(&entry.name) {
        run.entry(entry, &entry.name);
    } else {
        run.fail(&entry.name, "unsafe name in snapshot, not restored");
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
        if !e.info.xattrs.is_empty() && !path.is_empty() && !self.exp.keeps_xattrs() {
            self.xattrs_dropped.fetch_add(1, Ordering::Relaxed);
        }
        match e.kind() {
            FileKind::Dir => self.dir(e, path),
            // Not read at backup time (or not even described, then recorded without a kind):
            // nothing of it to restore. A file stored with a warning (changed while read, a
            // short delivery) has its content as read, and is restored as recorded.
            kind if e.error.is_some() && !stored_with_warning(e) => {
                if kind == FileKind::File {
                    self.files.fetch_add(1, Ordering::Relaxed);
                }
                let msg = e.error.as_deref().unwrap_or_default();
                self.fail(path, &format!("not in the snapshot: it could not be read at backup time ({msg})"));
            }
            FileKind::File => self.file(e, path),
            FileKind::Symlink => {
                self.links.fetch_add(1, Ordering::Relaxed);
                let r = self.exp.symlink(path, &e.info.target).and_then(|_| self.exp.set_metadata(path, &e.info));
                if let Err(err) = r {
                    self.fail(path, &err.to_string());
                }
            }
            FileKind::Special => {
                if let Err(err) = self.exp.special(path, &e.info) {
                    self.fail_io(path, &err);
                }
            }
        }
        self.progress.item(path, e.info.size);
    }

    fn dir(&self, e: &Entry, path: &[u8]) {
        self.dirs.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = self.exp.create_dir(path) {
            return self.fail_io(path, &err);
        }
        if let Some(msg) = &e.error {
            self.fail(path, &dir_unreadable(msg));
        }
        let Some(sub) = e.subtree else { return };
        let tree = match self.repo.tree(&sub) {
            Ok(t) => t,
            Err(err) => return self.fail(path, &err.to_string()),
        };
        // A crafted tree may name two entries alike (a symlink pointing out, then a
        // directory written through it): only the first of a name is restored.
        let mut seen = std::collections::HashSet::new();
        let dup: Vec<bool> = tree.entries.iter().map(|c| !seen.insert(c.name.as_slice())).collect();
        tree.entries.par_iter().zip(dup).for_each(|(c, dup)| {
            let p = join(path, &c.name);
            if dup {
                self.fail(&p, "duplicate name in snapshot, not restored");
            } else if safe_name(&c.name) {
                self.entry(c, if path.is_empty() { &c.name } else { &p });
            } else {
                self.fail(&p, "unsafe name in snapshot, not restored");
            }
        });
        if !path.is_empty() {
            if let Err(err) = self.exp.set_metadata(path, &e.info) {
                self.fail(path, &err.to_string());
            }
        }
    }

    fn file(&self, e: &Entry, path: &[u8]) {
        self.files.fetch_add(1, Ordering::Relaxed);
        if e.info.nlink > 1 && e.info.ino != 0 {
            let mut m = self.inodes.lock().expect("lock");
            if let Some(first) = m.get(&(e.info.dev, e.info.ino)) {
                self.deferred.lock().expect("lock").push((path.to_vec(), first.clone(), e.clone()));
                return;
            }
            m.insert((e.info.dev, e.info.ino), path.to_vec());
        }
        match store_file(self.repo, self.exp, path, e) {
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
