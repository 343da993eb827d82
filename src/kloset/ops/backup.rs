//! Backup: walk the importer directory by directory on a thread pool, chunk and pack new
//! content, reuse the parent snapshot's chunks for unchanged files, then write the
//! snapshot header and, last, the state that makes it visible.

use crate::kloset::blob::BlobType;
use crate::kloset::error::{Error, Result};
use crate::kloset::id::{BlobId, SnapshotId};
use crate::kloset::importer::{join, take_source_wide, DirEntry, FileInfo, FileKind, Importer};
use crate::kloset::packer::Packer;
use crate::kloset::progress::Progress;
use crate::kloset::repo::Repository;
use crate::kloset::snapshot::{Header, Source, Summary};
use crate::kloset::state::State;
use crate::kloset::tree::{Entry, Tree};
use rayon::prelude::*;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Decides whether a path is left out: (absolute path, is a directory) -> excluded.
pub type ExcludeFn = Arc<dyn Fn(&[u8], bool) -> bool + Send + Sync>;

#[derive(Default, Clone)]
pub struct BackupOptions {
    pub name: String,
    pub tags: Vec<String>,
    pub hostname: String,
    pub username: String,
    pub command_line: String,
    pub exclude: Option<ExcludeFn>,
    /// Read every file again even when the parent snapshot has it unchanged.
    pub no_parent: bool,
    /// Worker threads for reading and chunking; 0 picks from the core count.
    pub concurrency: usize,
    pub uploaders: usize,
    /// Store a file that changed while it was read as it was read, without reading it
    /// again or reporting it.
    pub no_changed_check: bool,
    /// The new snapshot's id, when the caller chose it (to name it in progress lines
    /// before the backup ends); random otherwise.
    pub id: Option<SnapshotId>,
    /// The snapshot's time (ns since the epoch, UTC) when the caller sets it (Plakar's
    /// `-force-timestamp`, used to lay out a history); the start of the run otherwise.
    pub timestamp_ns: Option<i64>,
}

const MAX_ERRORS_KEPT: usize = 1000;

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    others: AtomicU64,
    size: AtomicU64,
    errors: AtomicU64,
    files_read: AtomicU64,
}

struct Run<'a> {
    repo: &'a Repository,
    imp: &'a dyn Importer,
    opts: &'a BackupOptions,
    progress: &'a dyn Progress,
    packer: Packer<'a>,
    counters: Counters,
    errors: Mutex<Vec<(String, String)>>,
}

pub fn backup(repo: &Repository, imp: &dyn Importer, opts: &BackupOptions, progress: &dyn Progress) -> Result<Header> {
    let started = Instant::now();
    let timestamp_ns =
        opts.timestamp_ns.unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
    let root = imp.root();
    let root_info = stat_root(imp)?;
    let source = source_of(imp);
    let parent = find_parent(repo, &source)?;
    let threads = if opts.concurrency > 0 { opts.concurrency } else { default_threads().max(imp.parallelism()) };
    let uploaders = if opts.uploaders > 0 { opts.uploaders } else { repo.uploaders };
    let run = Run {
        repo,
        imp,
        opts,
        progress,
        packer: Packer::with_checkpoints(
            repo.store.clone(),
            repo.keys.clone(),
            &repo.index,
            repo.compression_level(),
            repo.config.packfile_max_size,
            uploaders,
            repo.checkpoint_every,
            repo.lease.clone(),
        )
        .checkpoint_records(repo.checkpoint_records)
        .writers(threads)
        .caching(repo.cache_handle()),
        counters: Counters::default(),
        errors: Mutex::new(Vec::new()),
    };
    let rng = crate::kloset::rng::current();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| crate::kloset::rng::install(rng.clone()))
        .build()
        .map_err(|e| Error::Other(format!("cannot start worker threads: {e}")))?;
    let name = root.rsplit(|&b| b == b'/').find(|c| !c.is_empty()).unwrap_or(b"/").to_vec();
    let prev = parent.as_ref().and_then(|h| repo.lookup(h, &root).ok());
    let entry = pool.install(|| run.entry(&root, name, Ok(root_info), prev.as_ref()))?;
    let root_tree = run.wrap_in_ancestors(&root, entry)?;

    let c = &run.counters;
    let mut header = Header {
        version: 1,
        id: opts.id.unwrap_or_else(SnapshotId::random),
        timestamp_ns,
        duration_ms: 0,
        name: if opts.name.is_empty() { "default".into() } else { opts.name.clone() },
        tags: opts.tags.clone(),
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        command_line: opts.command_line.clone(),
        source,
        root: root_tree,
        summary: Summary {
            files: c.files.load(Ordering::Relaxed),
            directories: c.dirs.load(Ordering::Relaxed),
            symlinks: c.symlinks.load(Ordering::Relaxed),
            others: c.others.load(Ordering::Relaxed),
            size: c.size.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            files_read: c.files_read.load(Ordering::Relaxed),
            chunks_new: 0,
            bytes_stored: 0,
        },
        errors: std::mem::take(&mut *run.errors.lock().expect("lock")),
    };
    header.summary.chunks_new = run.packer.new_blobs.load(Ordering::Relaxed);
    // Every data packfile lands before the header is written, so it records what this
    // backup added to the store (its own packfile of trees and header included).
    run.packer.flush_data()?;
    header.summary.bytes_stored = run.packer.stored_bytes.load(Ordering::Relaxed) + run.packer.pending_bytes();
    header.duration_ms = started.elapsed().as_millis() as u64;
    run.packer.add(BlobType::Snapshot, header.id.as_blob(), &header.encode())?;
    let blobs = run.packer.finish()?;
    // The state is the commit point: until it exists, nothing of this backup is visible.
    repo.write_state(State { created: chrono::Utc::now().timestamp(), blobs, ..Default::default() })?;
    Ok(header)
}

pub fn default_threads() -> usize {
    // Reading is often I/O bound: one extra thread keeps the cores busy while one waits.
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) + 1
}

/// The root of the source, described; what a missing or unreadable one means.
pub(crate) fn stat_root(imp: &dyn Importer) -> Result<FileInfo> {
    let root = imp.root();
    imp.stat(&root).map_err(|e| {
        let msg = format!("cannot back up {}: {e}", String::from_utf8_lossy(&root));
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => Error::Auth(msg),
            std::io::ErrorKind::NotConnected | std::io::ErrorKind::TimedOut => Error::Unreachable(msg),
            _ => Error::SourceMissing(format!("{msg} (check the path and that you can read it)")),
        }
    })
}

/// The source as a snapshot header records it.
pub(crate) fn source_of(imp: &dyn Importer) -> Source {
    Source {
        kind: imp.kind().to_string(),
        origin: imp.origin(),
        directory: String::from_utf8_lossy(&imp.root()).into_owned(),
    }
}

/// Whether a file listed as `cur` is the parent snapshot's `prev`, unchanged: then its
/// chunks are reused and it is not read again.
pub(crate) fn unchanged(repo: &Repository, prev: &Entry, cur: &FileInfo) -> bool {
    prev.error.is_none()
        && prev.kind() == FileKind::File
        && prev.info.size == cur.size
        && prev.info.mtime_ns == cur.mtime_ns
        && prev.info.ino == cur.ino
        && prev.info.mode == cur.mode
        && prev.chunks.iter().all(|c| repo.index.usable(BlobType::Chunk, c))
}

/// The children of a directory as a snapshot holds them, in name order: excluded ones left
/// out, and those no snapshot can hold (problems with the listing itself, unsafe names, a
/// name listed twice) told to `report` and left out.
pub(crate) fn children(
    path: &[u8],
    mut children: Vec<DirEntry>,
    exclude: Option<&ExcludeFn>,
    report: &mut dyn FnMut(&[u8], &str),
) -> Vec<DirEntry> {
    // A nameless entry is a problem with the listing itself: said against the directory.
    children.retain(|c| match (&c.info, c.name.is_empty()) {
        (Err(msg), true) => {
            report(path, msg);
            false
        }
        _ => true,
    });
    // Stable: entries of the same name stay in listing order.
    children.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(ex) = exclude {
        children.retain(|c| {
            let is_dir = matches!(&c.info, Ok(i) if i.kind() == FileKind::Dir);
            !ex(&join(path, &c.name), is_dir)
        });
    }
    children.retain(|c| {
        let safe = crate::kloset::tree::safe_name(&c.name);
        if !safe {
            report(&join(path, &c.name), "unsafe file name from the source, skipped");
        }
        safe
    });
    // A tree holds one entry per name: the first listed is kept and each other one
    // reported. Renaming them instead would restore files the source never had
    // (docs/adr/0003-backup-honesty.md).
    children.dedup_by(|later, first| {
        let dup = later.name == first.name;
        if dup {
            let msg = format!(
                "listed more than once in its directory: this {} is skipped, the {} listed first is backed up",
                what(&later.info),
                what(&first.info)
            );
            report(&join(path, &later.name), &msg);
        }
        dup
    });
    children
}

/// The latest snapshot of the same source, whose unchanged files need not be read again.
pub(crate) fn find_parent(repo: &Repository, source: &Source) -> Result<Option<Header>> {
    let hs = repo.headers()?;
    Ok(hs.into_iter().rev().find(|h| &h.source == source))
}

impl Run<'_> {
    fn record_error(&self, path: &[u8], msg: &str) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.progress.error(path, msg);
        let mut e = self.errors.lock().expect("lock");
        if e.len() < MAX_ERRORS_KEPT {
            e.push((String::from_utf8_lossy(path).into_owned(), msg.to_string()));
        }
    }

    /// Builds the tree entry for one path; errors on the path itself are recorded in it.
    fn entry(
        &self,
        path: &[u8],
        name: Vec<u8>,
        info: std::result::Result<FileInfo, String>,
        prev: Option<&Entry>,
    ) -> Result<Entry> {
        let mut info = match info {
            Ok(i) => i,
            Err(msg) => {
                self.record_error(path, &msg);
                return Ok(Entry { name, error: Some(msg), ..Default::default() });
            }
        };
        let mut warnings = std::mem::take(&mut info.warnings);
        let mut e = Entry { name, info, ..Default::default() };
        match e.info.kind() {
            FileKind::Dir => {
                self.counters.dirs.fetch_add(1, Ordering::Relaxed);
                let prev_tree = prev.and_then(|p| p.subtree).and_then(|id| self.repo.tree(&id).ok());
                match self.dir(path, prev_tree.as_ref()) {
                    Ok(id) => e.subtree = Some(id),
                    Err(DirError::Fatal(err)) => return Err(err),
                    Err(DirError::Read(msg)) => {
                        self.record_error(path, &msg);
                        e.subtree = Some(self.store_tree(&Tree::default())?);
                        e.error = Some(msg);
                    }
                }
            }
            FileKind::File => {
                self.counters.files.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = prev.filter(|p| self.unchanged(p, &e.info)) {
                    e.chunks = p.chunks.clone();
                    e.lengths = p.lengths.clone();
                    e.info.size = p.info.size;
                    // Attributes learned when the file was read (S3 content type) carry over.
                    e.info.extra = p.info.extra.clone();
                } else {
                    self.counters.files_read.fetch_add(1, Ordering::Relaxed);
                    match self.file(path, &mut e.info) {
                        Ok(c) => {
                            e.chunks = c.chunks;
                            e.lengths = c.lengths;
                            e.info.size = c.size;
                            e.info.extra.extend(c.extra);
                            if let Some(msg) = c.warning {
                                self.record_error(path, &msg);
                                e.error = Some(msg);
                            }
                        }
                        Err(FileError::Fatal(err)) => return Err(err),
                        Err(FileError::Read(msg)) => {
                            self.record_error(path, &msg);
                            e.error = Some(msg);
                        }
                    }
                }
                self.counters.size.fetch_add(e.info.size, Ordering::Relaxed);
            }
            FileKind::Symlink => {
                self.counters.symlinks.fetch_add(1, Ordering::Relaxed);
            }
            FileKind::Special => {
                self.counters.others.fetch_add(1, Ordering::Relaxed);
            }
        }
        // A file read again takes the attributes of the version read, warnings included:
        // each problem is said once.
        warnings.append(&mut e.info.warnings);
        warnings.sort();
        warnings.dedup();
        for w in warnings {
            self.record_error(path, &w);
        }
        self.progress.item(path, e.info.size);
        Ok(e)
    }

    fn unchanged(&self, prev: &Entry, cur: &FileInfo) -> bool {
        !self.opts.no_parent && unchanged(self.repo, prev, cur)
    }

    fn dir(&self, path: &[u8], prev: Option<&Tree>) -> std::result::Result<BlobId, DirError> {
        let listed: Vec<DirEntry> = self.imp.read_dir(path).map_err(|e| match take_source_wide(e) {
            Ok(fatal) => DirError::Fatal(fatal),
            Err(e) => DirError::Read(e.to_string()),
        })?;
        let children = children(path, listed, self.opts.exclude.as_ref(), &mut |p, msg| self.record_error(p, msg));
        let entries: Vec<Entry> = children
            .into_par_iter()
            .map(|c| {
                let p = join(path, &c.name);
                let prev_entry = prev.and_then(|t| t.find(&c.name));
                self.entry(&p, c.name, c.info, prev_entry)
            })
            .collect::<Result<_>>()
            .map_err(DirError::Fatal)?;
        self.store_tree(&Tree { version: 1, entries }).map_err(DirError::Fatal)
    }

    /// Reads a file the listing described as `info`, and leaves in `info` the attributes of
    /// the version read. A stat after each read must match the one before it, else the file
    /// changed meanwhile and is read again, up to `MAX_READS` reads; and a file that did not
    /// change must deliver the size it announced. Otherwise what was read last is stored
    /// with a warning: reported, and read again by the next backup.
    fn file(&self, path: &[u8], info: &mut FileInfo) -> std::result::Result<FileContent, FileError> {
        let restat = self.imp.restat_after_read();
        let mut before = info.clone();
        let mut last: Option<FileContent> = None;
        let mut reads = 0;
        let (mut content, settled) = loop {
            reads += 1;
            let content = match self.read(path, before.size) {
                Ok(c) => c,
                Err(FileError::Read(msg)) if last.is_some() => {
                    let mut c = last.expect("an earlier read");
                    c.warning = Some(format!("file changed while it was read, then could not be read again: {msg}"));
                    return Ok(c);
                }
                Err(e) => return Err(e),
            };
            // A file gone or unreadable once read is kept as read: nothing says it tore.
            let Some(after) = restat.then(|| self.imp.stat(path).ok()).flatten() else {
                break (content, true);
            };
            if same_version(&before, &after) {
                before = after;
                break (content, true);
            }
            // No more reads when asked for none, after the last one, or when the path is no
            // longer a file (replaced by a directory or a link).
            if self.opts.no_changed_check || reads == MAX_READS || after.kind() != FileKind::File {
                break (content, false);
            }
            before = after;
            last = Some(content);
        };
        if !settled && !self.opts.no_changed_check {
            content.warning = Some(format!("file changed while it was read ({reads} reads); stored as last read"));
        } else if settled && content.size != before.size {
            content.warning = Some(format!(
                "the source announced {} bytes and delivered {} bytes; stored as delivered",
                before.size, content.size
            ));
        }
        // The attributes of the version read (unsettled: those seen before the last read,
        // so that the next backup does not take the file for unchanged).
        let extra = std::mem::take(&mut info.extra);
        *info = FileInfo { extra, ..before };
        Ok(content)
    }

    /// Reads and chunks a file once.
    fn read(&self, path: &[u8], size_hint: u64) -> std::result::Result<FileContent, FileError> {
        let read_err = |e: std::io::Error| match take_source_wide(e) {
            Ok(fatal) => FileError::Fatal(fatal),
            Err(e) => FileError::Read(e.to_string()),
        };
        let (mut reader, extra) = self.imp.open_with_info(path).map_err(read_err)?;
        let ch = &self.repo.config.chunking;
        let mut chunks = Vec::new();
        let mut lengths = Vec::new();
        let mut total = 0u64;
        // Small files are read whole: the streaming chunker allocates max_size up front.
        // Sized from stat so the buffer is allocated once, not grown by doubling.
        let mut buf = Vec::with_capacity(size_hint.min(ch.max_size as u64) as usize + 1);
        let n = (&mut reader).take(ch.max_size as u64 + 1).read_to_end(&mut buf).map_err(read_err)?;
        if n <= ch.max_size as usize {
            for c in fastcdc::v2020::FastCDC::new(&buf, ch.min_size, ch.avg_size, ch.max_size) {
                let data = &buf[c.offset..c.offset + c.length];
                chunks.push(self.chunk(data)?);
                lengths.push(data.len() as u32);
                total += data.len() as u64;
            }
            return Ok(FileContent { chunks, lengths, size: total, extra, warning: None });
        }
        let stream = fastcdc::v2020::StreamCDC::new(
            std::io::Cursor::new(buf).chain(reader),
            ch.min_size,
            ch.avg_size,
            ch.max_size,
        );
        for c in stream {
            let c = c.map_err(|e| FileError::Read(std::io::Error::from(e).to_string()))?;
            chunks.push(self.chunk(&c.data)?);
            lengths.push(c.data.len() as u32);
            total += c.data.len() as u64;
        }
        Ok(FileContent { chunks, lengths, size: total, extra, warning: None })
    }

    fn chunk(&self, data: &[u8]) -> std::result::Result<BlobId, FileError> {
        let id = self.packer.keys().mac(data);
        self.packer.add(BlobType::Chunk, id, data).map_err(FileError::Fatal)?;
        self.progress.bytes(data.len() as u64);
        Ok(id)
    }

    fn store_tree(&self, t: &Tree) -> Result<BlobId> {
        let bytes = t.encode();
        let id = self.packer.keys().mac(&bytes);
        self.packer.add(BlobType::Tree, id, &bytes)?;
        Ok(id)
    }

    /// Wraps the backed-up entry in one tree per ancestor directory, up to "/".
    fn wrap_in_ancestors(&self, root: &[u8], entry: Entry) -> Result<BlobId> {
        let comps: Vec<&[u8]> = crate::kloset::tree::components(root).collect();
        if comps.is_empty() {
            // The backup is of "/" itself: its tree is the root.
            return entry.subtree.ok_or_else(|| Error::Other("root is not a directory".into()));
        }
        let mut child = entry;
        for depth in (0..comps.len()).rev() {
            let t = self.store_tree(&Tree { version: 1, entries: vec![child] })?;
            if depth == 0 {
                return Ok(t);
            }
            let mut path = Vec::new();
            for c in &comps[..depth] {
                path.push(b'/');
                path.extend_from_slice(c);
            }
            let info = self.imp.stat(&path).unwrap_or(FileInfo {
                kind: Some(FileKind::Dir),
                mode: 0o040755,
                ..Default::default()
            });
            child = Entry { name: comps[depth - 1].to_vec(), info, subtree: Some(t), ..Default::default() };
        }
        unreachable!("the loop returns at depth 0")
    }
}

enum DirError {
    Read(String),
    Fatal(Error),
}

/// Reads of a file that keeps changing before it is stored as last read, with a warning.
const MAX_READS: u32 = 3;

/// A file as stored: its chunks, its size as read, attributes learned when opening it, and
/// what is wrong with it, if anything (reported, and the file is read again next time).
struct FileContent {
    chunks: Vec<BlobId>,
    lengths: Vec<u32>,
    size: u64,
    extra: Vec<(String, String)>,
    warning: Option<String>,
}

/// Whether two stats describe the same version of a file.
fn same_version(a: &FileInfo, b: &FileInfo) -> bool {
    (a.kind, a.size, a.mtime_ns, a.ctime_ns, a.dev, a.ino) == (b.kind, b.size, b.mtime_ns, b.ctime_ns, b.dev, b.ino)
}

/// What a listed entry is, for messages.
fn what(info: &std::result::Result<FileInfo, String>) -> &'static str {
    match info.as_ref().map(FileInfo::kind) {
        Ok(FileKind::File) => "file",
        Ok(FileKind::Dir) => "directory",
        Ok(FileKind::Symlink) => "symbolic link",
        Ok(FileKind::Special) => "special file",
        Err(_) => "unreadable entry",
    }
}

enum FileError {
    Read(String),
    Fatal(Error),
}
