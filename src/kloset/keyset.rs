//! A set of blob keys in about 45 bytes each: the keys in an append-only arena of fixed
//! blocks, and a hash table of 4-byte positions into it. A `HashSet<BlobKey>` took 71 MiB
//! for a million keys and 107 MiB while it grew (34-byte buckets, half of them empty after
//! each doubling); this takes 44 MiB and grows by 2 MiB blocks (docs/PERFORMANCE.md,
//! "Memory"). Keys are hashed with a per-process random key (SipHash): a plaintext store's
//! MAC key is readable, so whoever writes files into a backed-up tree could otherwise
//! choose ids that share a bucket.
//!
//! Memory stays flat however many keys a run adds: once `limit` keys are in memory they
//! are written out as a sorted run (sorted_run.rs: a temporary file, a page's first key and
//! a Bloom filter kept in memory, about 1.5 bytes a key) and memory starts again. Ten
//! million keys take about 15 MiB of filters and fences besides the keys in memory.

use crate::kloset::index::BlobKey;
use crate::kloset::sorted_run::SortedRun;
use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};

const BLOCK: usize = 1 << 16;
/// Keys kept in memory before they go to a sorted run: about 12 MiB.
pub const SPILL_KEYS: usize = 1 << 18;
/// Runs of one size that are merged into one run (size-tiered, as an LSM tree): a lookup
/// checks at most this many filters a tier, and each key is rewritten once a tier.
const FAN_IN: usize = 8;

pub struct KeySet {
    table: HashTable<u32>,
    blocks: Vec<Vec<BlobKey>>,
    /// Keys in memory.
    in_memory: usize,
    hasher: RandomState,
    /// Sorted runs, each with its tier: spilled runs are tier 0, a merge of FAN_IN runs
    /// of tier t is of tier t + 1.
    runs: Vec<(u32, SortedRun)>,
    /// Keys in memory that make a run; `usize::MAX` once writing one failed (the set then
    /// stays in memory: slower to fill the machine, never wrong).
    limit: usize,
    total: usize,
}

impl Default for KeySet {
    fn default() -> Self {
        Self::with_limit(SPILL_KEYS)
    }
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// A set that writes a sorted run every `limit` keys.
    pub fn with_limit(limit: usize) -> Self {
        KeySet {
            table: HashTable::new(),
            blocks: Vec::new(),
            in_memory: 0,
            hasher: RandomState::new(),
            runs: Vec::new(),
            limit: limit.max(1),
            total: 0,
        }
    }

    fn at(&self, pos: u32) -> &BlobKey {
        let pos = pos as usize;
        &self.blocks[pos / BLOCK][pos % BLOCK]
    }

    /// Whether `k` was added. A run that cannot be read back answers no: the caller then
    /// stores the blob once more, which costs space and loses nothing.
    pub fn contains(&self, k: &BlobKey) -> bool {
        let h = self.hasher.hash_one(k);
        self.table.find(h, |&p| self.at(p) == k).is_some()
            || self.runs.iter().any(|(_, r)| r.contains(k, h).unwrap_or(false))
    }

    /// Moves the keys in memory to a new sorted run, freeing each block as it is copied.
    fn spill(&mut self) {
        let mut keys = Vec::with_capacity(self.in_memory);
        for block in self.blocks.drain(..) {
            keys.extend_from_slice(&block);
        }
        self.table.clear();
        (self.in_memory, self.total) = (0, self.total - keys.len());
        let hasher = &self.hasher;
        match SortedRun::write(&mut keys, |k| hasher.hash_one(k)) {
            Ok(run) => {
                self.total += run.len();
                self.runs.push((0, run));
                self.compact();
            }
            Err(_) => {
                self.limit = usize::MAX;
                for k in keys {
                    self.insert(k);
                }
            }
        }
    }

    /// Merges the runs of a tier once it holds FAN_IN of them. A merge that fails keeps
    /// the runs as they are.
    fn compact(&mut self) {
        loop {
            let tier = self.runs.last().expect("a run").0;
            let of_tier: Vec<usize> = (0..self.runs.len()).filter(|&i| self.runs[i].0 == tier).collect();
            if of_tier.len() < FAN_IN {
                return;
            }
            let hasher = &self.hasher;
            let parts: Vec<(u32, SortedRun)> = self.runs.drain(of_tier[0]..).collect();
            let runs: Vec<SortedRun> = parts.into_iter().map(|(_, r)| r).collect();
            match SortedRun::merge(&runs, |k| hasher.hash_one(k)) {
                Ok(merged) => self.runs.push((tier + 1, merged)),
                Err(_) => {
                    self.runs.extend(runs.into_iter().map(|r| (tier + 1, r)));
                    return;
                }
            }
        }
    }

    /// Sorted runs kept now.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds `k`; false when it was there already.
    pub fn insert(&mut self, k: BlobKey) -> bool {
        if self.contains(&k) {
            return false;
        }
        if self.in_memory.is_multiple_of(BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        self.blocks.last_mut().expect("a block").push(k);
        let pos = u32::try_from(self.in_memory).expect("fewer than 4 billion blobs in one run");
        self.in_memory += 1;
        self.total += 1;
        let (blocks, hasher) = (&self.blocks, &self.hasher);
        self.table.insert_unique(hasher.hash_one(k), pos, |&p| {
            let p = p as usize;
            hasher.hash_one(blocks[p / BLOCK][p % BLOCK])
        });
        if self.in_memory >= self.limit {
            self.spill();
        }
        true
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
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

    #[test]
    fn keys_written_to_sorted_runs_are_still_found_once() {
        let mut s = KeySet::with_limit(1000);
        let key = |i: u32, kind| {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
            (kind, BlobId(id))
        };
        for i in 0..4500 {
            assert!(s.insert(key(i, BlobType::Chunk)), "key {i}");
            assert!(!s.insert(key(i / 2, BlobType::Chunk)), "key {} again", i / 2);
        }
        assert_eq!((s.runs(), s.len()), (4, 4500));
        for i in 0..4500 {
            assert!(s.contains(&key(i, BlobType::Chunk)) && !s.contains(&key(i, BlobType::Tree)), "key {i}");
        }
        assert!(!s.contains(&key(4500, BlobType::Chunk)));
        for i in 4500..9500 {
            assert!(s.insert(key(i, BlobType::Chunk)), "key {i}");
        }
        // Nine runs written: the first eight merged into one.
        assert_eq!((s.runs(), s.len()), (2, 9500));
        for i in 0..9500 {
            assert!(s.contains(&key(i, BlobType::Chunk)) && !s.contains(&key(i, BlobType::Tree)), "key {i}");
        }
        assert!(!s.contains(&key(9500, BlobType::Chunk)));
        assert!(s.insert(key(7, BlobType::Tree)));
    }
}
