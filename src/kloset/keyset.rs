//! A set of blob keys in about 45 bytes each: the keys in an append-only arena of fixed
//! blocks, and a hash table of 4-byte positions into it. A `HashSet<BlobKey>` took 71 MiB
//! for a million keys and 107 MiB while it grew (34-byte buckets, half of them empty after
//! each doubling); this takes 44 MiB and grows by 2 MiB blocks (docs/PERFORMANCE.md,
//! "Memory"). Keys are hashed with a per-process random key (SipHash): a plaintext store's
//! MAC key is readable, so whoever writes files into a backed-up tree could otherwise
//! choose ids that share a bucket.

use crate::kloset::index::BlobKey;
use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};

const BLOCK: usize = 1 << 16;

#[derive(Default)]
pub struct KeySet {
    table: HashTable<u32>,
    blocks: Vec<Vec<BlobKey>>,
    len: usize,
    hasher: RandomState,
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    fn at(&self, pos: u32) -> &BlobKey {
        let pos = pos as usize;
        &self.blocks[pos / BLOCK][pos % BLOCK]
    }

    pub fn contains(&self, k: &BlobKey) -> bool {
        self.table.find(self.hasher.hash_one(k), |&p| self.at(p) == k).is_some()
    }

    /// Adds `k`; false when it was there already.
    pub fn insert(&mut self, k: BlobKey) -> bool {
        if self.contains(&k) {
            return false;
        }
        if self.len.is_multiple_of(BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        self.blocks.last_mut().expect("a block").push(k);
        let pos = u32::try_from(self.len).expect("fewer than 4 billion blobs in one run");
        self.len += 1;
        let (blocks, hasher) = (&self.blocks, &self.hasher);
        self.table.insert_unique(hasher.hash_one(k), pos, |&p| {
            let p = p as usize;
            hasher.hash_one(blocks[p / BLOCK][p % BLOCK])
        });
        true
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kloset::blob::BlobType;
    use crate::kloset::id::BlobId;

    #[test]
    fn holds_each_key_once_by_type_and_id_across_blocks() {
        let mut s = KeySet::new();
        let key = |i: u32, kind| {
            let mut id = [0u8; 32];
            id[28..].copy_from_slice(&i.to_le_bytes());
            // The first 50 share their first bytes (and so would share a bucket, hashed
            // by them).
            if i >= 50 {
                id[..4].copy_from_slice(&i.to_le_bytes());
            }
            (kind, BlobId(id))
        };
        let n = BLOCK as u32 * 2 + 17;
        for i in 0..n {
            assert!(s.insert(key(i, BlobType::Chunk)));
        }
        assert!(s.insert(key(5, BlobType::Tree)), "a tree with a chunk's id is another blob");
        for i in 0..n {
            assert!(s.contains(&key(i, BlobType::Chunk)));
            assert!(!s.insert(key(i, BlobType::Chunk)));
        }
        assert!(!s.contains(&key(n, BlobType::Chunk)));
        assert!(!s.contains(&key(6, BlobType::Tree)));
        assert_eq!(s.len(), n as usize + 1);
    }
}
