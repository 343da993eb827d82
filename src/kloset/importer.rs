//! The `Importer` trait: a backup source. Paths are absolute byte strings with `/`
//! separators, so names that are not UTF-8 (and S3 keys) pass through unchanged.
//!
//! Sources are walked directory by directory (`read_dir`) rather than as one flat stream:
//! that lets the engine build each directory's tree node as soon as its children are done,
//! reuse the previous snapshot's node for the same directory, and spread directories over
//! threads without a global sort (docs/adr/0001-importer-read-dir.md).
//!
//! The rule a backup keeps (docs/adr/0003-backup-honesty.md): every entry an importer lists
//! ends in the snapshot as it is, or is reported with its reason. So an importer lists what
//! it cannot represent too, as an entry whose `info` is the reason, and never drops an
//! entry silently.
//!
//! One kind of error is not about an entry but about the whole source: the server refuses
//! what every request carries (an SSE-C key that is missing or wrong), so every other file
//! would fail alike. An importer says so by putting an engine `Error` inside the io::Error
//! (`source_wide`); the backup then stops with it (exit 77 for `Error::Auth`) instead of
//! reporting each file and committing a snapshot of nothing.

use serde::{Deserialize, Serialize};
use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// Devices, fifos, sockets: recorded, not read; `mode` says which.
    Special,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileInfo {
    pub kind: Option<FileKind>,
    /// Full st_mode bits, file type included.
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    /// Last status change (ctime), where the source has one: with size and mtime, how the
    /// engine notices a file rewritten while it is read. Not stored in snapshots.
    #[serde(skip)]
    pub ctime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    #[serde(with = "serde_bytes", default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<u8>,
    /// Source-specific attributes (S3: etag, content type), as key/value pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(String, String)>,
    /// Character and block devices: the device they stand for (st_rdev), so that restore
    /// can make the node again (0 is a device number too: overlayfs whiteouts). None for
    /// everything else, and in snapshots written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    /// Extended attributes, sorted by name (absent when there are none, when the backup
    /// ran with `-no-xattr`, and in snapshots written before they were recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// What went wrong describing this entry without keeping it out of the snapshot (an
    /// extended attribute that could not be read): the engine reports each. Not stored.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One extended attribute: its full name (`user.mime_type`) and its value, both bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Xattr(#[serde(with = "serde_bytes")] pub Vec<u8>, #[serde(with = "serde_bytes")] pub Vec<u8>);

impl Xattr {
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl FileInfo {
    pub fn kind(&self) -> FileKind {
        self.kind.unwrap_or(FileKind::Special)
    }
}

/// One child of a directory: its name and what we learned of it, or why it cannot be
/// backed up (the engine reports it). An entry with an empty name and an error is a problem
/// with the listing itself, such as a line that cannot be read; it is reported against the
/// directory.
#[derive(Debug)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub info: Result<FileInfo, String>,
}

/// An open file and the attributes learned by opening it.
pub type Opened = (Box<dyn Read + Send>, Vec<(String, String)>);

pub trait Importer: Send + Sync {
    /// Short connector name: "fs", "s3"...
    fn kind(&self) -> &str;
    /// Where the data comes from: a hostname, or host/bucket.
    fn origin(&self) -> String;
    /// The absolute path that was asked for, as stored in the snapshot.
    fn root(&self) -> Vec<u8>;
    fn stat(&self, path: &[u8]) -> io::Result<FileInfo>;
    /// The children of a directory, in any order.
    fn read_dir(&self, path: &[u8]) -> io::Result<Vec<DirEntry>>;
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send>>;
    /// Files worth reading at once: above the core count when each open costs a network
    /// round trip. 0 leaves the choice to the engine.
    fn parallelism(&self) -> usize {
        0
    }
    /// Opens a file and returns attributes only known once it is open (S3: content type),
    /// to be merged into its `extra`.
    fn open_with_info(&self, path: &[u8]) -> io::Result<Opened> {
        Ok((self.open(path)?, Vec::new()))
    }
    /// Whether `stat` describes a file as `read_dir` does, cheaply enough to be called
    /// again after each file is read: the engine compares the two to notice a file that
    /// changed while it was read. False where a read cannot tear (an object store's GET
    /// returns one version) or where `stat` costs a directory listing.
    fn restat_after_read(&self) -> bool {
        true
    }
}

/// An io::Error that stops the backup with `e` (see the module doc).
pub fn source_wide(kind: io::ErrorKind, e: crate::kloset::Error) -> io::Error {
    io::Error::new(kind, e)
}

/// The engine error an importer put in `e` with `source_wide`, or `e` itself.
pub fn take_source_wide(e: io::Error) -> Result<crate::kloset::Error, io::Error> {
    if !e.get_ref().is_some_and(|inner| inner.is::<crate::kloset::Error>()) {
        return Err(e);
    }
    let inner = e.into_inner().expect("checked above");
    Ok(*inner.downcast::<crate::kloset::Error>().expect("checked above"))
}

/// Joins a directory path and a child name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + name.len() + 1);
    p.extend_from_slice(dir);
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}
