//! Drill: prove that a snapshot can be restored. The snapshot (or a reproducible random
//! sample of its files) is restored through an exporter, then read back through an
//! importer over the same place and checked against what the snapshot recorded:
//!
//! - every chunk is authenticated and its id checked as it is fetched (as restore does);
//! - every restored file is read back and each stretch of it is MAC-ed again and compared
//!   with the chunk id recorded at backup time: the ordered chunk ids are the file's digest,
//!   so this proves the bytes on the target are the bytes that were backed up, whatever
//!   chunking the store uses;
//! - size, kind, permission bits, mtime and symlink targets are compared with the record.
//!
//! Optionally the snapshot is compared with a live tree (another importer): files changed,
//! deleted or added since the snapshot are reported apart from damage, and never fail the
//! drill. Which files a sample holds depends only on the seed and their paths.
//!
//! The engine neither creates nor removes the target: the caller does.

use crate::kloset::error::Result;
use crate::kloset::exporter::Exporter;
use crate::kloset::id::BlobId;
use crate::kloset::importer::{join, FileInfo, FileKind, Importer};
use crate::kloset::ops::restore::dir_unreadable;
use crate::kloset::progress::Progress;
use crate::kloset::reader::ChunkReader;
use crate::kloset::repo::Repository;
use crate::kloset::snapshot::Header;
use crate::kloset::tree::{safe_name, Entry};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// Restore this percentage of the files (rounded up; None: all of them).
    pub percent: Option<f64>,
    /// Restore files, picked at random, whose sizes add up to at most this.
    pub max_bytes: Option<u64>,
    /// Picks the sample: the same seed picks the same files of the same snapshot.
    pub seed: u64,
    /// Modes were restored, so they are checked.
    pub permissions: bool,
}

impl DrillOptions {
    pub fn sampled(&self) -> bool {
        self.percent.is_some() || self.max_bytes.is_some()
    }
}

/// Where a drill restores: the exporter that writes there and an importer that reads the
/// same place back, rooted at the same directory.
pub struct Target<'a> {
    pub exporter: &'a dyn Exporter,
    pub readback: &'a dyn Importer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Not restored as recorded: damaged data, or a wrong restore. Fails the drill.
    Failed(String),
    /// Not in the snapshot: it could not be read at backup time.
    Unreadable(String),
}

/// One checked path.
#[derive(Debug, Clone)]
pub struct Item {
    /// Absolute path in the snapshot.
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    pub micros: u64,
    pub status: Status,
    /// How the live tree differs from the snapshot here, when it was compared and differs.
    pub changed: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DrillReport {
    /// The drilled path in the snapshot.
    pub root: String,
    /// Files in the drilled tree and their size, sampled or not.
    pub files_total: u64,
    pub bytes_total: u64,
    /// Every path checked, sorted.
    pub items: Vec<Item>,
    /// Chunks fetched and verified (a run of one chunk counts once).
    pub chunks_verified: u64,
    /// Content bytes restored and read back intact.
    pub bytes_verified: u64,
    /// Paths of the live tree the snapshot does not hold (full drills with a live tree).
    pub added: Vec<String>,
}

impl DrillReport {
    pub fn failures(&self) -> impl Iterator<Item = (&Item, &str)> {
        self.items.iter().filter_map(|i| match &i.status {
            Status::Failed(m) => Some((i, m.as_str())),
            _ => None,
        })
    }
    pub fn unreadable(&self) -> impl Iterator<Item = (&Item, &str)> {
        self.items.iter().filter_map(|i| match &i.status {
            Status::Unreadable(m) => Some((i, m.as_str())),
            _ => None,
        })
    }
    pub fn changed(&self) -> impl Iterator<Item = (&Item, &str)> {
        self.items.iter().filter_map(|i| i.changed.as_deref().map(|c| (i, c)))
    }
    /// Items of one kind.
    pub fn count(&self, kind: FileKind) -> u64 {
        self.items.iter().filter(|i| i.kind == kind).count() as u64
    }
    pub fn ok(&self) -> bool {
        self.failures().next().is_none()
    }
}

/// A path of the drilled tree.
struct Node {
    /// Absolute path in the snapshot.
    abs: Vec<u8>,
    /// Path under the target; empty for the drilled directory itself.
    rel: Vec<u8>,
    entry: Entry,
    /// Found wrong while walking: an unreadable tree node, an unsafe name.
    broken: Option<String>,
}

struct Drill<'a> {
    repo: &'a Repository,
    opts: &'a DrillOptions,
    target: &'a Target<'a>,
    live: Option<&'a dyn Importer>,
    progress: &'a dyn Progress,
    /// The drilled path is a file, restored under its name; the live tree, if any, is that
    /// file itself.
    single: bool,
    chunks: AtomicU64,
    bytes: AtomicU64,
    /// Children of live-tree directories, listed once each (by path under the root).
    live_dirs: Mutex<HashMap<Vec<u8>, Arc<LiveDir>>>,
}

/// A live directory's children by name, or why it could not be listed.
type LiveDir = std::result::Result<HashMap<Vec<u8>, std::result::Result<FileInfo, String>>, (io::ErrorKind, String)>;

/// Drills `path` (absolute; None: the backed-up directory) of the snapshot `h`.
pub fn drill(
    repo: &Repository,
    h: &Header,
    path: Option<&[u8]>,
    opts: &DrillOptions,
    target: &Target,
    live: Option<&dyn Importer>,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    let root_path = path.map(<[u8]>::to_vec).unwrap_or_else(|| h.source.directory.as_bytes().to_vec());
    let root = repo.lookup(h, &root_path)?;
    // A snapshot of a single file is restored under the file's name, as restore does.
    let single = root.kind() != FileKind::Dir && safe_name(&root.name);
    let d = Drill {
        repo,
        opts,
        target,
        live,
        progress,
        single,
        chunks: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        live_dirs: Mutex::new(HashMap::new()),
    };
    let nodes = Mutex::new(Vec::new());
    let rel = if single { root.name.clone() } else { Vec::new() };
    d.collect(root, root_path.clone(), rel, &nodes);
    let mut nodes = nodes.into_inner().expect("lock");
    nodes.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut report = DrillReport { root: String::from_utf8_lossy(&root_path).into_owned(), ..Default::default() };
    for n in &nodes {
        if n.entry.kind() == FileKind::File {
            report.files_total += 1;
            report.bytes_total += n.entry.info.size;
        }
    }

    let (leaves, dirs) = d.select(&nodes);
    let mut items: Vec<Item> = Vec::new();
    // Directories first, parents before children (sorted by path). One found broken while
    // walking is reported, never created: its name may be unsafe.
    let mut dir_state: Vec<(usize, Status, u64)> = Vec::new();
    for &i in &dirs {
        let n = &nodes[i];
        let started = Instant::now();
        let st = match (&n.broken, &n.entry.error) {
            (Some(m), _) => Status::Failed(m.clone()),
            (None, e) => match d.target.exporter.create_dir(&n.rel) {
                Err(err) => Status::Failed(format!("cannot create the directory: {err}")),
                Ok(()) => match e {
                    Some(m) => Status::Unreadable(dir_unreadable(m)),
                    None => Status::Ok,
                },
            },
        };
        dir_state.push((i, st, started.elapsed().as_micros() as u64));
    }
    items.par_extend(leaves.par_iter().map(|&i| d.leaf(&nodes[i])));
    // Directory metadata last, deepest first, so their mtimes stick.
    for (i, st, micros) in dir_state.into_iter().rev() {
        let n = &nodes[i];
        let started = Instant::now();
        let mut st = st;
        if !matches!(st, Status::Failed(_)) && !n.rel.is_empty() {
            let r =
                d.target.exporter.set_metadata(&n.rel, &n.entry.info).map_err(|e| format!("cannot set metadata: {e}"));
            if let Err(m) = r.and_then(|_| d.check_meta(n)) {
                st = Status::Failed(m);
            }
        }
        let changed = if n.broken.is_none() { d.live.and_then(|l| d.compare_live(l, n, None)) } else { None };
        if let (Some(l), false, None) = (d.live, d.opts.sampled(), &n.broken) {
            report.added.extend(d.added(l, n, &nodes));
        }
        d.note(&n.abs, &st, 0);
        items.push(Item {
            path: String::from_utf8_lossy(&n.abs).into_owned(),
            kind: FileKind::Dir,
            size: 0,
            micros: micros + started.elapsed().as_micros() as u64,
            status: st,
            changed,
        });
    }
    // Files and links found broken while walking (unsafe names) are never picked, but count.
    for n in nodes.iter().filter(|n| n.broken.is_some() && n.entry.kind() != FileKind::Dir) {
        let st = Status::Failed(n.broken.clone().unwrap_or_default());
        d.note(&n.abs, &st, 0);
        items.push(Item {
            path: String::from_utf8_lossy(&n.abs).into_owned(),
            kind: n.entry.kind(),
            size: n.entry.info.size,
            micros: 0,
            status: st,
            changed: None,
        });
    }
    if let Err(e) = d.target.exporter.finish() {
        items.push(Item {
            path: report.root.clone(),
            kind: FileKind::Dir,
            size: 0,
            micros: 0,
            status: Status::Failed(format!("cannot finish the restore: {e}")),
            changed: None,
        });
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    report.items = items;
    report.added.sort();
    report.chunks_verified = d.chunks.into_inner();
    report.bytes_verified = d.bytes.into_inner();
    Ok(report)
}

/// The rank of a path in a sample: a hash of the seed and the path under the drilled
/// directory, so a sample depends neither on walk order, thread count or library versions,
/// nor on where the tree was when it was backed up.
fn rank(seed: u64, path: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"plakar drill sample\0");
    h.update(&seed.to_le_bytes());
    h.update(path);
    *h.finalize().as_bytes()
}

impl Drill<'_> {
    /// Lists the tree under `e`, reading (and so verifying) every tree node on the way.
    fn collect(&self, e: Entry, abs: Vec<u8>, rel: Vec<u8>, out: &Mutex<Vec<Node>>) {
        let sub = (e.kind() == FileKind::Dir).then_some(e.subtree).flatten();
        let mut broken = None;
        let children = match sub.map(|s| self.repo.tree(&s)) {
            Some(Ok(t)) => t.entries,
            Some(Err(err)) => {
                broken = Some(format!("directory cannot be listed: {err}"));
                vec![]
            }
            None => vec![],
        };
        out.lock().expect("lock").push(Node { abs: abs.clone(), rel: rel.clone(), entry: e, broken });
        children.into_par_iter().for_each(|c| {
            let cabs = join(&abs, &c.name);
            let crel = if rel.is_empty() { c.name.clone() } else { join(&rel, &c.name) };
            if !safe_name(&c.name) {
                let broken = Some("unsafe name in snapshot, not restored".to_string());
                out.lock().expect("lock").push(Node { abs: cabs, rel: crel, entry: c, broken });
                return;
            }
            self.collect(c, cabs, crel, out);
        });
    }

    /// Picks what to restore: indexes of files and links, and of the directories to create.
    fn select(&self, nodes: &[Node]) -> (Vec<usize>, Vec<usize>) {
        let leaf = |n: &Node| {
            n.broken.is_none()
                && match n.entry.kind() {
                    FileKind::File | FileKind::Symlink => true,
                    // An entry whose stat failed at backup time is recorded without a kind.
                    FileKind::Special => n.entry.error.is_some(),
                    FileKind::Dir => false,
                }
        };
        let all: Vec<usize> = (0..nodes.len()).filter(|&i| leaf(&nodes[i])).collect();
        let is_dir = |n: &Node| n.entry.kind() == FileKind::Dir;
        if !self.opts.sampled() {
            return (all, (0..nodes.len()).filter(|&i| is_dir(&nodes[i])).collect());
        }
        let mut ranked: Vec<(usize, [u8; 32])> =
            all.iter().map(|&i| (i, rank(self.opts.seed, &nodes[i].rel))).collect();
        ranked.sort_by_key(|r| r.1);
        let want = match self.opts.percent {
            Some(p) => ((p / 100.0 * all.len() as f64).ceil() as usize).clamp(all.len().min(1), all.len()),
            None => all.len(),
        };
        let mut picked = Vec::new();
        let mut bytes = 0u64;
        for (i, _) in ranked {
            if picked.len() >= want {
                break;
            }
            let size = nodes[i].entry.info.size;
            if let Some(max) = self.opts.max_bytes {
                if bytes + size > max {
                    continue;
                }
            }
            bytes += size;
            picked.push(i);
        }
        picked.sort();
        // The directories on the way to each picked path, and the drilled root.
        let mut wanted: BTreeSet<&[u8]> = BTreeSet::new();
        wanted.insert(b"");
        for &i in &picked {
            let rel = &nodes[i].rel;
            for (k, &b) in rel.iter().enumerate() {
                if b == b'/' {
                    wanted.insert(&rel[..k]);
                }
            }
        }
        // Directories found broken are always reported, picked or not.
        let dirs = (0..nodes.len())
            .filter(|&i| is_dir(&nodes[i]) && (wanted.contains(nodes[i].rel.as_slice()) || nodes[i].broken.is_some()))
            .collect();
        (picked, dirs)
    }

    fn note(&self, path: &[u8], st: &Status, size: u64) {
        match st {
            Status::Ok => {}
            Status::Failed(m) => self.progress.error(path, m),
            Status::Unreadable(m) => self.progress.error(path, m),
        }
        self.progress.item(path, size);
    }

    /// Restores and checks one file or link.
    fn leaf(&self, n: &Node) -> Item {
        let started = Instant::now();
        let e = &n.entry;
        let mut lengths = None;
        let st = match e.kind() {
            _ if e.error.is_some() => Status::Unreadable(format!(
                "not in the snapshot: it could not be read at backup time ({})",
                e.error.as_deref().unwrap_or_default()
            )),
            FileKind::File => match self.file(n) {
                Ok(l) => {
                    lengths = Some(l);
                    self.bytes.fetch_add(e.info.size, Ordering::Relaxed);
                    Status::Ok
                }
                Err(m) => Status::Failed(m),
            },
            FileKind::Symlink => match self.symlink(n) {
                Ok(()) => Status::Ok,
                Err(m) => Status::Failed(m),
            },
            _ => Status::Ok,
        };
        let changed = match (&st, self.live) {
            (Status::Unreadable(_), _) | (_, None) => None,
            (_, Some(l)) => self.compare_live(l, n, lengths.as_deref()),
        };
        self.note(&n.abs, &st, e.info.size);
        if st == Status::Ok {
            self.progress.bytes(e.info.size);
        }
        Item {
            path: String::from_utf8_lossy(&n.abs).into_owned(),
            kind: e.kind(),
            size: e.info.size,
            micros: started.elapsed().as_micros() as u64,
            status: st,
            changed,
        }
    }

    /// Restores a file, reads it back, checks it; returns its chunks' lengths.
    fn file(&self, n: &Node) -> std::result::Result<Vec<u32>, String> {
        let e = &n.entry;
        let mut reader = ChunkReader::new(self.repo, &e.chunks);
        let written = self.target.exporter.store_file(&n.rel, &mut reader, e.info.size);
        self.chunks.fetch_add(reader.fetched, Ordering::Relaxed);
        written.map_err(|err| err.to_string())?;
        let lengths = reader.lengths;
        let back = self.readback_path(&n.rel);
        let f = self.target.readback.open(&back).map_err(|err| format!("cannot read the restored file back: {err}"))?;
        match digest_mismatch(self.repo, f, &e.chunks, &lengths, e.info.size) {
            Ok(None) => {}
            Ok(Some(m)) => return Err(format!("restored file {m}")),
            Err(err) => return Err(format!("cannot read the restored file back: {err}")),
        }
        self.target.exporter.set_metadata(&n.rel, &e.info).map_err(|err| format!("cannot set metadata: {err}"))?;
        self.check_meta(n)?;
        Ok(lengths)
    }

    fn symlink(&self, n: &Node) -> std::result::Result<(), String> {
        let x = self.target.exporter;
        x.symlink(&n.rel, &n.entry.info.target)
            .and_then(|_| x.set_metadata(&n.rel, &n.entry.info))
            .map_err(|e| e.to_string())?;
        self.check_meta(n)
    }

    fn readback_path(&self, rel: &[u8]) -> Vec<u8> {
        let root = self.target.readback.root();
        if rel.is_empty() {
            root
        } else {
            join(&root, rel)
        }
    }

    /// Compares what the target holds with what the snapshot recorded.
    fn check_meta(&self, n: &Node) -> std::result::Result<(), String> {
        let got = self
            .target
            .readback
            .stat(&self.readback_path(&n.rel))
            .map_err(|e| format!("cannot stat the restored copy: {e}"))?;
        let want = &n.entry.info;
        let mut wrong = Vec::new();
        if got.kind() != want.kind() {
            wrong.push(format!("restored as a {}, recorded as a {}", kind_name(got.kind()), kind_name(want.kind())));
        } else {
            wrong.extend(meta_differences(want, &got, self.opts.permissions));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("metadata differs: {}", wrong.join(", ")))
        }
    }

    /// How the live tree differs from the snapshot at this path, if it does.
    fn compare_live(&self, live: &dyn Importer, n: &Node, lengths: Option<&[u32]>) -> Option<String> {
        let rel: &[u8] = if self.single { b"" } else { &n.rel };
        let p = if rel.is_empty() { live.root() } else { join(&live.root(), rel) };
        let want = &n.entry.info;
        let got = match self.live_info(live, rel) {
            Ok(i) => i,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Some("deleted since the snapshot".into()),
            Err(e) => return Some(format!("cannot be read in the live tree: {e}")),
        };
        if got.kind() != want.kind() {
            return Some(format!("now a {}, a {} in the snapshot", kind_name(got.kind()), kind_name(want.kind())));
        }
        let mut what = Vec::new();
        match want.kind() {
            FileKind::File => {
                if got.size != want.size {
                    what.push(format!("size {} -> {}", want.size, got.size));
                }
                if got.mtime_ns != want.mtime_ns {
                    what.push("mtime changed".to_string());
                }
                if what.is_empty() {
                    // Same size and time: the content should be the same too.
                    if let Some(l) = lengths {
                        match live.open(&p).map(|f| digest_mismatch(self.repo, f, &n.entry.chunks, l, want.size)) {
                            Ok(Ok(None)) => {}
                            Ok(Ok(Some(_))) => what.push("content differs though size and mtime did not change".into()),
                            Ok(Err(e)) | Err(e) => return Some(format!("cannot be read in the live tree: {e}")),
                        }
                    }
                }
            }
            FileKind::Symlink if got.target != want.target => what.push(format!(
                "link target {} -> {}",
                String::from_utf8_lossy(&want.target),
                String::from_utf8_lossy(&got.target)
            )),
            _ => {}
        }
        if want.mode & 0o7777 != 0 && want.kind() != FileKind::Symlink && (got.mode ^ want.mode) & 0o7777 != 0 {
            what.push(format!("mode {:04o} -> {:04o}", want.mode & 0o7777, got.mode & 0o7777));
        }
        (!what.is_empty()).then(|| format!("changed since the snapshot: {}", what.join(", ")))
    }

    /// Lists a live directory once. Children are described by `read_dir`, as backup sees
    /// them: `stat` is only meaningful for an importer's root (S3 has no directories).
    fn live_dir(&self, live: &dyn Importer, rel: &[u8]) -> Arc<LiveDir> {
        if let Some(d) = self.live_dirs.lock().expect("lock").get(rel) {
            return d.clone();
        }
        let p = if rel.is_empty() { live.root() } else { join(&live.root(), rel) };
        let d = Arc::new(
            live.read_dir(&p)
                .map(|v| v.into_iter().map(|c| (c.name, c.info)).collect())
                .map_err(|e| (e.kind(), e.to_string())),
        );
        self.live_dirs.lock().expect("lock").insert(rel.to_vec(), d.clone());
        d
    }

    fn live_info(&self, live: &dyn Importer, rel: &[u8]) -> io::Result<FileInfo> {
        if rel.is_empty() {
            return live.stat(&live.root());
        }
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        match &*self.live_dir(live, parent) {
            Err((io::ErrorKind::NotFound, _)) => Err(io::ErrorKind::NotFound.into()),
            Err((k, m)) => Err(io::Error::new(*k, m.clone())),
            Ok(kids) => match kids.get(name) {
                None => Err(io::ErrorKind::NotFound.into()),
                Some(Ok(i)) => Ok(i.clone()),
                Some(Err(m)) => Err(io::Error::other(m.clone())),
            },
        }
    }

    /// Children of a directory in the live tree that the snapshot does not hold.
    fn added(&self, live: &dyn Importer, dir: &Node, nodes: &[Node]) -> Vec<String> {
        let Ok(children) = &*self.live_dir(live, &dir.rel) else { return vec![] };
        let known: HashSet<&[u8]> = nodes.iter().map(|n| n.rel.as_slice()).collect();
        let mut out: Vec<String> = children
            .keys()
            .filter_map(|name| {
                let rel = if dir.rel.is_empty() { name.clone() } else { join(&dir.rel, name) };
                (!known.contains(rel.as_slice())).then(|| String::from_utf8_lossy(&join(&dir.abs, name)).into_owned())
            })
            .collect();
        out.sort();
        out
    }
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Special => "special file",
    }
}

/// Restored metadata that differs from the record: size, permission bits, mtime, target.
/// Ownership is left out (only root restores it).
pub fn meta_differences(want: &FileInfo, got: &FileInfo, permissions: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    if want.kind() == FileKind::File && got.size != want.size {
        wrong.push(format!("size {} (recorded {})", got.size, want.size));
    }
    // Set-id bits may be dropped by the kernel for a user who is not root: compare rwx.
    if permissions && want.kind() != FileKind::Symlink && want.mode & 0o7777 != 0 && (got.mode ^ want.mode) & 0o777 != 0
    {
        wrong.push(format!("mode {:04o} (recorded {:04o})", got.mode & 0o7777, want.mode & 0o7777));
    }
    if !same_time(want.mtime_ns, got.mtime_ns) {
        wrong.push(format!("mtime {} (recorded {})", got.mtime_ns, want.mtime_ns));
    }
    if want.kind() == FileKind::Symlink && got.target != want.target {
        wrong.push(format!(
            "link target {} (recorded {})",
            String::from_utf8_lossy(&got.target),
            String::from_utf8_lossy(&want.target)
        ));
    }
    wrong
}

/// Times are equal, or equal at the coarser precision a target filesystem keeps
/// (microseconds or seconds).
fn same_time(want: i64, got: i64) -> bool {
    want == got
        || (got.rem_euclid(1000) == 0 && want.div_euclid(1000) == got.div_euclid(1000))
        || (got.rem_euclid(1_000_000_000) == 0 && want.div_euclid(1_000_000_000) == got.div_euclid(1_000_000_000))
}

/// Reads `f` and compares it with a file's recorded digest, its chunk ids: each stretch of
/// `lengths[i]` bytes must MAC to `chunks[i]`, and nothing may follow. Returns what is
/// wrong, if anything.
fn digest_mismatch(
    repo: &Repository,
    mut f: Box<dyn Read + Send>,
    chunks: &[BlobId],
    lengths: &[u32],
    size: u64,
) -> io::Result<Option<String>> {
    if chunks.len() != lengths.len() {
        return Ok(Some(format!("has {} of its {} chunks", lengths.len(), chunks.len())));
    }
    let mut buf = Vec::new();
    let mut offset = 0u64;
    for (i, (id, &len)) in chunks.iter().zip(lengths).enumerate() {
        buf.resize(len as usize, 0);
        let mut got = 0;
        while got < buf.len() {
            match f.read(&mut buf[got..]) {
                Ok(0) => return Ok(Some(format!("is {} bytes, recorded {size}", offset + got as u64))),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if repo.keys.mac(&buf) != *id {
            return Ok(Some(format!(
                "does not match its recorded digest: chunk {i} ({} bytes at offset {offset}) differs",
                len
            )));
        }
        offset += len as u64;
    }
    let mut extra = [0u8; 1];
    loop {
        match f.read(&mut extra) {
            Ok(0) => break,
            Ok(_) => return Ok(Some(format!("is longer than the {size} bytes recorded"))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if offset != size {
        return Ok(Some(format!("is {offset} bytes, recorded {size}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_at_coarser_precision_are_equal() {
        assert!(same_time(1_700_000_000_123_456_789, 1_700_000_000_123_456_789));
        assert!(same_time(1_700_000_000_123_456_789, 1_700_000_000_123_456_000));
        assert!(same_time(1_700_000_000_123_456_789, 1_700_000_000_000_000_000));
        assert!(!same_time(1_700_000_000_123_456_789, 1_700_000_001_000_000_000));
        assert!(!same_time(1_700_000_000_123_456_789, 1_700_000_000_123_457_000));
    }

    #[test]
    fn sample_ranks_depend_on_seed_and_path_only() {
        assert_eq!(rank(1, b"/a"), rank(1, b"/a"));
        assert_ne!(rank(1, b"/a"), rank(2, b"/a"));
        assert_ne!(rank(1, b"/a"), rank(1, b"/b"));
    }
}
