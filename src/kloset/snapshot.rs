//! Snapshot headers: who, when, what was backed up, and the root of the tree.

use crate::kloset::id::{BlobId, SnapshotId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Importer kind: fs, s3...
    pub kind: String,
    pub origin: String,
    /// The backed-up path, absolute.
    pub directory: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub others: u64,
    /// Bytes of file content in the snapshot.
    pub size: u64,
    pub errors: u64,
    /// Files read again (the rest were unchanged since the parent snapshot).
    pub files_read: u64,
    pub chunks_new: u64,
    /// Bytes written to the store (after compression and encryption).
    pub bytes_stored: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub id: SnapshotId,
    /// Start time, nanoseconds since the epoch, UTC.
    pub timestamp_ns: i64,
    pub duration_ms: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub hostname: String,
    pub username: String,
    pub command_line: String,
    pub source: Source,
    /// Tree of "/": the backed-up directory and its ancestors.
    pub root: BlobId,
    pub summary: Summary,
    /// First errors met, as (path, message); the count is in the summary.
    pub errors: Vec<(String, String)>,
}

impl Header {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("header serializes")
    }
    pub fn decode(b: &[u8]) -> Result<Header, String> {
        rmp_serde::from_slice(b).map_err(|e| format!("snapshot header cannot be decoded: {e}"))
    }
    pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.timestamp_ns)
    }
}
