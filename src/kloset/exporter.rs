//! The `Exporter` trait: a restore target. Paths are relative to the target, `/`-separated,
//! and already checked to hold no `..` or empty components. Directories get their metadata
//! after their children, so their mtimes stick.

use crate::kloset::importer::FileInfo;
use std::io::{self, Read};

/// The error inside an `io::Error` from an exporter when the target as a whole refuses
/// (credentials or write permission refused): restore stops at the first one rather than
/// reporting every file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetRefused(pub String);

/// Whether `e` says the whole target refused.
pub fn target_refused(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<TargetRefused>())
}

/// The error inside an `io::Error` from an exporter that read part of a file's content and
/// needs all of it again: its first way of writing failed in a way another avoids (an S3
/// server whose multipart replies cannot be read takes the file in one PUT). Restore gives
/// `store_file` a fresh reader once more; the exporter must not ask twice for one file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendAgain(pub String);

/// Whether `e` asks for the file's content again.
pub fn send_again(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<SendAgain>())
}

/// The error inside an `io::Error` from an exporter that left an entry out on purpose,
/// because the target cannot hold it (a socket anywhere, a fifo in a bucket): restore
/// reports it as a note, not as a failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Skipped(pub String);

/// An io::Error carrying `Skipped`.
pub fn skip(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, Skipped(why))
}

/// Whether `e` says the entry was left out on purpose.
pub fn skipped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Skipped>())
}

/// What a special file is, for messages: "named pipe", "socket"...
pub fn special_kind(info: &FileInfo) -> &'static str {
    match info.mode & 0o170000 {
        0o010000 => "named pipe",
        0o020000 => "character device",
        0o060000 => "block device",
        0o140000 => "socket",
        _ => "special file",
    }
}

pub trait Exporter: Send + Sync {
    fn create_dir(&self, path: &[u8]) -> io::Result<()>;
    /// Writes a whole file; the target sees the complete file or none of it.
    fn store_file(&self, path: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()>;
    /// Writes a whole file with its metadata. A target that can give a file its metadata
    /// before the file appears under its name (fs: through the temporary file's descriptor)
    /// does so, and nobody can swap the file in between; by default, `store_file` then
    /// `set_metadata`.
    fn store_file_with_metadata(&self, path: &[u8], data: &mut dyn Read, size: u64, info: &FileInfo) -> io::Result<()> {
        self.store_file(path, data, size)?;
        self.set_metadata(path, info)
    }
    fn symlink(&self, path: &[u8], target: &[u8]) -> io::Result<()>;
    /// Makes `path` another name for the already restored `existing`.
    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()>;
    fn set_metadata(&self, path: &[u8], info: &FileInfo) -> io::Result<()>;
    /// Makes a special file (a named pipe, a device node) with its metadata. A target that
    /// cannot hold one leaves it out with `Skipped`, which is the default.
    fn special(&self, _path: &[u8], info: &FileInfo) -> io::Result<()> {
        Err(skip(format!("{} not restored: this target cannot hold one", special_kind(info))))
    }
    /// Whether `set_metadata` and `store_file_with_metadata` give entries their extended
    /// attributes. Restore notes the entries whose attributes a target cannot keep.
    fn keeps_xattrs(&self) -> bool {
        false
    }
    /// What the target left out on purpose and counted, said once the restore is done
    /// (attributes only root may set, when not root).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    fn finish(&self) -> io::Result<()>;
    /// Files worth writing at once; 0 leaves the choice to the engine.
    fn parallelism(&self) -> usize {
        0
    }
}
