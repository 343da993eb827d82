//! Snapshot trees. Each directory is one content-addressed blob holding its entries sorted
//! by name; a directory entry points at its child's blob. Listing a directory reads only
//! the blobs on its path, and two snapshots share every unchanged subtree.

use crate::kloset::id::BlobId;
use crate::kloset::importer::{FileInfo, FileKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub info: FileInfo,
    /// Files: content chunks in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<BlobId>,
    /// Files: each chunk's plaintext length, so that a byte range is found without reading
    /// the chunks before it (random access: mount). Empty in snapshots written before it
    /// was recorded, and for files carried over unchanged from such a snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lengths: Vec<u32>,
    /// Directories: the child tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<BlobId>,
    /// Why this entry could not be read in full, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Entry {
    pub fn kind(&self) -> FileKind {
        self.info.kind()
    }
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub version: u32,
    pub entries: Vec<Entry>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("tree serializes")
    }
    pub fn decode(b: &[u8]) -> Result<Tree, String> {
        rmp_serde::from_slice(b).map_err(|e| format!("tree node cannot be decoded: {e}"))
    }
    pub fn find(&self, name: &[u8]) -> Option<&Entry> {
        self.entries.binary_search_by(|e| e.name.as_slice().cmp(name)).ok().map(|i| &self.entries[i])
    }
}

/// Splits an absolute or relative path into its non-empty components.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

/// A name is safe to restore when it is one plain component.
pub fn safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}
