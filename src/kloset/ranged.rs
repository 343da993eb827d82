//! Random access to a file's content: a byte range is served from the chunks that cover it
//! and no others, through a cache of decoded chunks bounded in bytes, so a reader that asks
//! for 128 KiB pieces of a 10 GB file in any order never holds more than the cache.
//!
//! Where each chunk starts comes from the lengths the tree records (`Entry::lengths`).
//! Files from snapshots written before lengths were recorded learn them as they are read:
//! the first read far into such a file decodes the chunks before it once, one at a time
//! through the cache, and later reads find them. Every chunk is authenticated when it is
//! decoded and its length checked against the recorded one, so a tree whose lengths are
//! wrong gives an error, never bytes from the wrong place.

use crate::kloset::blob::BlobType;
use crate::kloset::id::BlobId;
use crate::kloset::repo::Repository;
use crate::kloset::tree::Entry;
use crate::kloset::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Decoded chunks, least recently used dropped first once their bytes pass the budget.
pub struct ChunkCache {
    budget: usize,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    map: HashMap<BlobId, (Arc<Vec<u8>>, u64)>,
    bytes: usize,
    tick: u64,
    /// Chunks decoded from the store (misses), for tests and statistics.
    fetched: u64,
}

impl ChunkCache {
    pub fn new(budget: usize) -> Self {
        Self { budget, inner: Mutex::new(Lru::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves a consistent map: use it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A chunk, from the cache or else read, authenticated and decoded.
    pub fn get(&self, repo: &Repository, id: &BlobId) -> Result<Arc<Vec<u8>>> {
        {
            let mut l = self.lock();
            l.tick += 1;
            let tick = l.tick;
            if let Some((data, used)) = l.map.get_mut(id) {
                *used = tick;
                return Ok(data.clone());
            }
        }
        // Read outside the lock: other readers go on meanwhile. Two that miss the same
        // chunk at once both read it; the second insert replaces the first.
        let data = Arc::new(repo.get_blob(BlobType::Chunk, id)?);
        let mut l = self.lock();
        l.fetched += 1;
        l.tick += 1;
        let tick = l.tick;
        if let Some((old, _)) = l.map.insert(*id, (data.clone(), tick)) {
            l.bytes -= old.len();
        }
        l.bytes += data.len();
        while l.bytes > self.budget && l.map.len() > 1 {
            let oldest = l.map.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k);
            let Some(k) = oldest else { break };
            if let Some((old, _)) = l.map.remove(&k) {
                l.bytes -= old.len();
            }
        }
        Ok(data)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Chunks read from the store so far.
    pub fn fetched(&self) -> u64 {
        self.lock().fetched
    }
}

/// One file's chunks and where each ends, known for all of them when the tree recorded
/// their lengths, else for those read so far.
pub struct RangedFile {
    chunks: Vec<BlobId>,
    /// `ends[i]`: the offset just past chunk `i`, for a prefix of the chunks.
    ends: Mutex<Vec<u64>>,
    /// Whether `ends` came from the tree (then each chunk read must match it).
    recorded: bool,
}

impl RangedFile {
    pub fn new(e: &Entry) -> Self {
        let recorded = !e.chunks.is_empty() && e.lengths.len() == e.chunks.len();
        let ends = if recorded {
            e.lengths
                .iter()
                .scan(0u64, |end, &l| {
                    *end += l as u64;
                    Some(*end)
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { chunks: e.chunks.clone(), ends: Mutex::new(ends), recorded }
    }

    fn ends(&self) -> MutexGuard<'_, Vec<u64>> {
        self.ends.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `len` bytes from offset `off`; fewer at the end of the file.
    pub fn read_at(&self, repo: &Repository, cache: &ChunkCache, off: u64, len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len.min(16 << 20));
        let mut pos = off;
        while out.len() < len {
            let Some((i, start, end)) = self.locate(repo, cache, pos)? else { break };
            let data = cache.get(repo, &self.chunks[i])?;
            if data.len() as u64 != end - start {
                return Err(Error::Corrupt(format!(
                    "chunk {} is {} bytes where the tree records {}",
                    self.chunks[i].short(),
                    data.len(),
                    end - start
                )));
            }
            let from = (pos - start) as usize;
            let take = (len - out.len()).min(data.len() - from);
            out.extend_from_slice(&data[from..from + take]);
            pos += take as u64;
        }
        Ok(out)
    }

    /// The chunk holding byte `pos`, with where it starts and ends; None past the end.
    fn locate(&self, repo: &Repository, cache: &ChunkCache, pos: u64) -> Result<Option<(usize, u64, u64)>> {
        loop {
            let ends = self.ends();
            let i = ends.partition_point(|&e| e <= pos);
            if i < ends.len() {
                return Ok(Some((i, if i == 0 { 0 } else { ends[i - 1] }, ends[i])));
            }
            if ends.len() == self.chunks.len() || self.recorded {
                return Ok(None);
            }
            // Not known yet: learn the next chunk's length by decoding it (kept in the
            // cache, where a sequential reader finds it next).
            let next = ends.len();
            let start = ends.last().copied().unwrap_or(0);
            drop(ends);
            let data = cache.get(repo, &self.chunks[next])?;
            let mut ends = self.ends();
            if ends.len() == next {
                ends.push(start + data.len() as u64);
            }
        }
    }
}
