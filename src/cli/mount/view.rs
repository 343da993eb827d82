//! The mounted view, by path and without FUSE: the top directory holds one directory per
//! snapshot, named by its short id, a `by-date/` directory of links named by each
//! snapshot's time, and a `latest` link. A snapshot's directory holds the snapshot from
//! `/` (paths are the absolute source paths, as in `ls`), or the path named on the
//! command line (`SNAP:PATH`).
//!
//! Everything is read-only and read on demand: a directory is one tree blob (the last few
//! decoded are kept), a file's bytes come from the chunks that cover the asked range
//! (`kloset::ranged`), through one cache of decoded chunks bounded in bytes for the whole
//! mount. FUSE (fuse.rs) puts inode numbers on top; the HTTP view (http.rs) walks paths.

use crate::kloset::importer::{FileInfo, FileKind};
use crate::kloset::ranged::{ChunkCache, RangedFile};
use crate::kloset::snapshot::Header;
use crate::kloset::tree::{Entry, Tree};
use crate::kloset::{BlobId, Repository};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

pub const BY_DATE: &[u8] = b"by-date";
pub const LATEST: &[u8] = b"latest";
const CACHED_TREES: usize = 64;
const SHORT_ID: usize = 8;

/// Why a path cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    NotFound,
    NotDir,
    NotFile,
    /// The store could not give what the snapshot names (missing, damaged): said on
    /// stderr, EIO to the reader.
    Store(String),
}

impl Fail {
    pub fn errno(&self) -> i32 {
        match self {
            Fail::NotFound => libc::ENOENT,
            Fail::NotDir => libc::ENOTDIR,
            Fail::NotFile => libc::EISDIR,
            Fail::Store(_) => libc::EIO,
        }
    }
}

fn store_fail(e: crate::kloset::Error) -> Fail {
    let msg = e.to_string();
    eprintln!("plakar mount: {msg}");
    Fail::Store(msg)
}

pub type Res<T> = std::result::Result<T, Fail>;

/// One thing in the view.
#[derive(Clone)]
pub enum Node {
    Top,
    ByDate,
    /// `by-date/<time>` and `latest`: links to a snapshot's directory.
    Link {
        target: Vec<u8>,
        mtime_ns: i64,
    },
    /// A snapshot's directory, or anything in it.
    Entry(Arc<EntryNode>),
}

pub struct EntryNode {
    pub entry: Entry,
    /// Made on first read and kept while the node lives, with the chunk offsets learned.
    file: OnceLock<RangedFile>,
}

impl EntryNode {
    fn new(entry: Entry) -> Arc<Self> {
        Arc::new(Self { entry, file: OnceLock::new() })
    }
}

/// What `ls -l` and HTTP listings show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub kind: FileKind,
    /// Full st_mode, type bits included.
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
}

struct Snap {
    name: Vec<u8>,
    date: Vec<u8>,
    header: Header,
    top: Arc<EntryNode>,
}

pub struct View {
    repo: Arc<Repository>,
    snaps: Vec<Snap>,
    trees: Mutex<VecDeque<(BlobId, Arc<Tree>)>>,
    chunks: ChunkCache,
    /// Owner of what the view makes up (the top directories and links): whoever mounts.
    uid: u32,
    gid: u32,
}

impl View {
    /// `snaps`: each snapshot and the path in it its directory shows, oldest first.
    pub fn new(
        repo: Arc<Repository>,
        snaps: Vec<(Header, Vec<u8>)>,
        cache_bytes: usize,
    ) -> crate::kloset::Result<Self> {
        let names = short_names(&snaps.iter().map(|(h, _)| h.id.to_hex()).collect::<Vec<_>>());
        let mut taken = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(snaps.len());
        for ((header, path), name) in snaps.into_iter().zip(names) {
            let mut entry = repo.lookup(&header, &path)?;
            if tree_is_root(&path) {
                // The synthetic "/" has no recorded attributes: date it as the snapshot.
                entry.info.mtime_ns = header.timestamp_ns;
            }
            entry.name = name.clone().into_bytes();
            let stamp = crate::cli::format::rfc3339_ns(header.timestamp_ns - header.timestamp_ns % 1_000_000_000);
            let date = if taken.insert(stamp.clone()) { stamp } else { format!("{stamp}_{name}") };
            out.push(Snap { name: name.into_bytes(), date: date.into_bytes(), header, top: EntryNode::new(entry) });
        }
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Self { repo, snaps: out, trees: Mutex::default(), chunks: ChunkCache::new(cache_bytes), uid, gid })
    }

    pub fn chunk_cache(&self) -> &ChunkCache {
        &self.chunks
    }

    fn newest_ns(&self) -> i64 {
        self.snaps.iter().map(|s| s.header.timestamp_ns).max().unwrap_or(0)
    }

    fn tree(&self, id: &BlobId) -> Res<Arc<Tree>> {
        let lock = || self.trees.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, t)) = lock().iter().find(|(k, _)| k == id) {
            return Ok(t.clone());
        }
        let t = Arc::new(self.repo.tree(id).map_err(store_fail)?);
        let mut q = lock();
        q.retain(|(k, _)| k != id);
        q.push_front((*id, t.clone()));
        q.truncate(CACHED_TREES);
        Ok(t)
    }

    pub fn attr(&self, node: &Node) -> Attr {
        let synthetic =
            |kind, mode, size| Attr { kind, mode, size, mtime_ns: self.newest_ns(), uid: self.uid, gid: self.gid };
        match node {
            Node::Top | Node::ByDate => synthetic(FileKind::Dir, libc::S_IFDIR | 0o555, 0),
            Node::Link { target, mtime_ns } => {
                Attr { mtime_ns: *mtime_ns, ..synthetic(FileKind::Symlink, libc::S_IFLNK | 0o777, target.len() as u64) }
            }
            Node::Entry(n) => entry_attr(&n.entry.info),
        }
    }

    /// The child `name` of a directory node.
    pub fn child(&self, node: &Node, name: &[u8]) -> Res<Node> {
        match node {
            Node::Top if name == BY_DATE => Ok(Node::ByDate),
            Node::Top if name == LATEST => self.latest().ok_or(Fail::NotFound),
            Node::Top => {
                self.snaps.iter().find(|s| s.name == name).map(|s| Node::Entry(s.top.clone())).ok_or(Fail::NotFound)
            }
            Node::ByDate => self.snaps.iter().find(|s| s.date == name).map(|s| self.link(s)).ok_or(Fail::NotFound),
            Node::Link { .. } => Err(Fail::NotDir),
            Node::Entry(n) => {
                let Some(sub) = n.entry.subtree.filter(|_| n.entry.kind() == FileKind::Dir) else {
                    return Err(Fail::NotDir);
                };
                let t = self.tree(&sub)?;
                t.find(name).map(|e| Node::Entry(EntryNode::new(e.clone()))).ok_or(Fail::NotFound)
            }
        }
    }

    /// A directory's children, in name order.
    pub fn list(&self, node: &Node) -> Res<Vec<(Vec<u8>, Node)>> {
        match node {
            Node::Top => {
                let mut v: Vec<_> = self.snaps.iter().map(|s| (s.name.clone(), Node::Entry(s.top.clone()))).collect();
                v.push((BY_DATE.to_vec(), Node::ByDate));
                v.extend(self.latest().map(|l| (LATEST.to_vec(), l)));
                v.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(v)
            }
            Node::ByDate => {
                let mut v: Vec<_> = self.snaps.iter().map(|s| (s.date.clone(), self.link(s))).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(v)
            }
            Node::Link { .. } => Err(Fail::NotDir),
            Node::Entry(n) => {
                let Some(sub) = n.entry.subtree.filter(|_| n.entry.kind() == FileKind::Dir) else {
                    return Err(Fail::NotDir);
                };
                let t = self.tree(&sub)?;
                Ok(t.entries.iter().map(|e| (e.name.clone(), Node::Entry(EntryNode::new(e.clone())))).collect())
            }
        }
    }

    /// Calls `f` with each child's name and attributes from the `skip`th on, in name order,
    /// until it returns false; without making a node per child, so that listing a large
    /// directory page by page (as the kernel does) costs no more than reading it.
    pub fn each_child(&self, node: &Node, skip: usize, mut f: impl FnMut(&[u8], &Attr) -> bool) -> Res<()> {
        let Node::Entry(n) = node else {
            for (name, child) in self.list(node)?.iter().skip(skip) {
                if !f(name, &self.attr(child)) {
                    break;
                }
            }
            return Ok(());
        };
        let Some(sub) = n.entry.subtree.filter(|_| n.entry.kind() == FileKind::Dir) else {
            return Err(Fail::NotDir);
        };
        for e in self.tree(&sub)?.entries.iter().skip(skip) {
            if !f(&e.name, &entry_attr(&e.info)) {
                break;
            }
        }
        Ok(())
    }

    /// The node at a path from the top of the view ("" or "/" is the top). The view's own
    /// links (by-date/, latest) are followed on the way; the last component is not.
    pub fn resolve(&self, path: &[u8]) -> Res<Node> {
        let mut node = Node::Top;
        for comp in crate::kloset::tree::components(path) {
            if let Node::Link { target, .. } = &node {
                let name = target.strip_prefix(b"../").unwrap_or(target);
                node = self.child(&Node::Top, name)?;
            }
            node = self.child(&node, comp)?;
        }
        Ok(node)
    }

    pub fn readlink(&self, node: &Node) -> Res<Vec<u8>> {
        match node {
            Node::Link { target, .. } => Ok(target.clone()),
            Node::Entry(n) if n.entry.kind() == FileKind::Symlink => Ok(n.entry.info.target.clone()),
            _ => Err(Fail::NotFound),
        }
    }

    /// Up to `len` bytes of a file from `off`.
    pub fn read(&self, node: &Node, off: u64, len: usize) -> Res<Vec<u8>> {
        let Node::Entry(n) = node else { return Err(Fail::NotFile) };
        match n.entry.kind() {
            FileKind::File => {}
            FileKind::Dir => return Err(Fail::NotFile),
            // An entry whose kind was never learned (it could not be read at backup time).
            _ if n.entry.error.is_some() => return Err(Fail::Store(n.entry.error.clone().unwrap_or_default())),
            _ => return Ok(Vec::new()),
        }
        let f = n.file.get_or_init(|| RangedFile::new(&n.entry));
        f.read_at(&self.repo, &self.chunks, off, len).map_err(store_fail)
    }

    fn latest(&self) -> Option<Node> {
        self.snaps
            .iter()
            .max_by_key(|s| (s.header.timestamp_ns, s.header.id))
            .map(|s| Node::Link { target: s.name.clone(), mtime_ns: s.header.timestamp_ns })
    }

    fn link(&self, s: &Snap) -> Node {
        let mut target = b"../".to_vec();
        target.extend_from_slice(&s.name);
        Node::Link { target, mtime_ns: s.header.timestamp_ns }
    }
}

fn tree_is_root(path: &[u8]) -> bool {
    crate::kloset::tree::components(path).next().is_none()
}

/// A recorded entry as stat shows it. Entries whose kind was never learned (unreadable at
/// backup time) show as empty files with no permissions.
pub fn entry_attr(info: &FileInfo) -> Attr {
    let kind = info.kind();
    let mut mode = info.mode;
    let type_bits = match kind {
        FileKind::File => libc::S_IFREG,
        FileKind::Dir => libc::S_IFDIR,
        FileKind::Symlink => libc::S_IFLNK,
        FileKind::Special => mode & libc::S_IFMT,
    };
    if type_bits == 0 {
        mode = libc::S_IFREG;
    } else {
        mode = type_bits | (mode & 0o7777);
    }
    let size = match kind {
        FileKind::Symlink => info.target.len() as u64,
        FileKind::File => info.size,
        _ => 0,
    };
    Attr { kind, mode, size, mtime_ns: info.mtime_ns, uid: info.uid, gid: info.gid }
}

/// Each id's shortest prefix of at least 8 hex digits that no other id shares.
fn short_names(ids: &[String]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut len = SHORT_ID;
    loop {
        counts.clear();
        for id in ids {
            *counts.entry(&id[..len.min(id.len())]).or_default() += 1;
        }
        if counts.values().all(|&c| c == 1) || len >= 64 {
            return ids.iter().map(|id| id[..len.min(id.len())].to_string()).collect();
        }
        len += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_grow_only_when_two_ids_share_a_prefix() {
        let a = "0123456789abcdef".repeat(4);
        let b = format!("0123456789{}", "f".repeat(54));
        let c = "fedcba9876543210".repeat(4);
        assert_eq!(short_names(&[a.clone(), c.clone()]), vec!["01234567", "fedcba98"]);
        assert_eq!(short_names(&[a, b, c]), vec!["0123456789ab", "0123456789ff", "fedcba987654"]);
    }

    #[test]
    fn attrs_keep_recorded_modes_and_fill_in_unknown_kinds() {
        let f = FileInfo { kind: Some(FileKind::File), mode: 0o100640, size: 7, ..Default::default() };
        assert_eq!(entry_attr(&f).mode, 0o100640);
        let fifo = FileInfo { kind: Some(FileKind::Special), mode: libc::S_IFIFO | 0o600, ..Default::default() };
        assert_eq!(entry_attr(&fifo).mode, libc::S_IFIFO | 0o600);
        let unknown = FileInfo::default();
        assert_eq!(entry_attr(&unknown).mode, libc::S_IFREG);
        let link =
            FileInfo { kind: Some(FileKind::Symlink), mode: 0o120777, target: b"abc".to_vec(), ..Default::default() };
        assert_eq!(entry_attr(&link).size, 3);
    }
}
