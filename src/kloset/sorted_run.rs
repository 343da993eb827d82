//! A sorted run: blob keys written in order to an unnamed temporary file, found again with
//! one read of 4 KiB. What stays in memory is the first key of each page (a quarter of a
//! byte a key) and a blocked Bloom filter (10 bits a key), which answers most lookups of
//! keys the run does not hold without reading the file. A miss costs one cache line; a
//! hit, or the one false positive in a hundred, one `pread` (of a page the page cache most
//! likely holds: the file is written once and only read after, and page-cache pages are
//! the kernel's to drop, never the process's resident memory).
//!
//! The file lives in the system's temporary directory ($TMPDIR, else /tmp) and is unlinked
//! as soon as it is created: nothing is left behind by a run that is killed.

use crate::kloset::blob::BlobType;
use crate::kloset::id::BlobId;
use crate::kloset::index::BlobKey;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

const KEY: usize = 33;
/// Keys a page holds: 124 of 33 bytes fill 4,092 of a 4 KiB page.
const PAGE_KEYS: usize = 124;
const PAGE: usize = PAGE_KEYS * KEY;
/// Bloom filter: bits a key, bits set a key, bits a block (one 64-byte cache line).
const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 6;
const BLOCK_WORDS: usize = 8;

fn encode(k: &BlobKey) -> [u8; KEY] {
    let mut b = [0u8; KEY];
    b[0] = k.0 as u8;
    b[1..].copy_from_slice(&k.1 .0);
    b
}

fn decode(b: &[u8]) -> Option<BlobKey> {
    let kind = BlobType::from_u8(b[0])?;
    Some((kind, BlobId(b[1..KEY].try_into().ok()?)))
}

/// A blocked Bloom filter over 64-bit hashes (the caller's keyed hash of each key).
struct Bloom {
    blocks: Vec<[u64; BLOCK_WORDS]>,
}

impl Bloom {
    fn new(keys: usize) -> Bloom {
        let blocks = (keys * BITS_PER_KEY).div_ceil(BLOCK_WORDS * 64).max(1);
        Bloom { blocks: vec![[0; BLOCK_WORDS]; blocks] }
    }

    /// The block a hash falls in, and its probe bits: the high half picks the block, the
    /// whole hash, mixed again, gives six 9-bit positions in it.
    fn probes(&self, h: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        let block = (((h >> 32) * self.blocks.len() as u64) >> 32) as usize;
        let low = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 10;
        let bits = (0..PROBES).map(move |i| {
            let bit = (low >> (i * 9)) as usize & 511;
            (bit / 64, 1u64 << (bit % 64))
        });
        (block, bits)
    }

    fn insert(&mut self, h: u64) {
        let (b, bits) = self.probes(h);
        for (w, m) in bits {
            self.blocks[b][w] |= m;
        }
    }

    fn may_hold(&self, h: u64) -> bool {
        let (b, mut bits) = self.probes(h);
        bits.all(|(w, m)| self.blocks[b][w] & m != 0)
    }
}

pub struct SortedRun {
    file: File,
    len: usize,
    /// The first key of each page.
    fences: Vec<BlobKey>,
    bloom: Bloom,
}

impl SortedRun {
    /// Sorts `keys` and writes them to a new temporary file; `hash` is the caller's keyed
    /// hash, for the filter. The keys must be distinct.
    pub fn write(keys: &mut [BlobKey], hash: impl Fn(&BlobKey) -> u64) -> io::Result<SortedRun> {
        keys.sort_unstable();
        Self::from_sorted(keys.len(), keys.iter().map(|k| Ok(*k)), hash)
    }

    /// Writes `len` distinct keys that come in order.
    fn from_sorted(
        len: usize,
        keys: impl Iterator<Item = io::Result<BlobKey>>,
        hash: impl Fn(&BlobKey) -> u64,
    ) -> io::Result<SortedRun> {
        let file = tempfile::tempfile()?;
        let mut out = BufWriter::with_capacity(16 * PAGE, &file);
        let mut bloom = Bloom::new(len);
        let mut fences = Vec::with_capacity(len.div_ceil(PAGE_KEYS));
        let mut written = 0;
        for k in keys {
            let k = k?;
            if written % PAGE_KEYS == 0 {
                fences.push(k);
            }
            out.write_all(&encode(&k))?;
            bloom.insert(hash(&k));
            written += 1;
        }
        out.flush()?;
        drop(out);
        debug_assert_eq!(written, len);
        Ok(SortedRun { file, len: written, fences, bloom })
    }

    /// Merges runs (of distinct keys) into one, reading each in order, a few pages at a time.
    pub fn merge(runs: &[SortedRun], hash: impl Fn(&BlobKey) -> u64) -> io::Result<SortedRun> {
        let mut readers: Vec<_> = runs.iter().map(|r| r.iter().peekable()).collect();
        let len = runs.iter().map(|r| r.len).sum();
        let next = std::iter::from_fn(|| {
            // A handful of runs: the smallest head by a scan, no heap needed.
            let mut best: Option<(usize, BlobKey)> = None;
            for (n, r) in readers.iter_mut().enumerate() {
                match r.peek() {
                    Some(Ok(k)) if best.is_none_or(|(_, b)| *k < b) => best = Some((n, *k)),
                    Some(Err(_)) => return r.next(),
                    _ => {}
                }
            }
            best.map(|(n, _)| readers[n].next().expect("peeked"))
        });
        Self::from_sorted(len, next, hash)
    }

    /// The keys in order, read a few pages at a time.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<BlobKey>> + '_ {
        let mut buf = Vec::new();
        let (mut pos, mut at) = (0usize, 0usize);
        std::iter::from_fn(move || {
            if at == self.len {
                return None;
            }
            if pos == buf.len() {
                let n = (16 * PAGE_KEYS).min(self.len - at);
                buf.resize(n * KEY, 0);
                if let Err(e) = self.file.read_exact_at(&mut buf, (at * KEY) as u64) {
                    at = self.len;
                    return Some(Err(e));
                }
                pos = 0;
            }
            let k = decode(&buf[pos..pos + KEY]);
            (pos, at) = (pos + KEY, at + 1);
            Some(k.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a sorted run was damaged")))
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the run holds `k`, whose hash is `h`.
    pub fn contains(&self, k: &BlobKey, h: u64) -> io::Result<bool> {
        if !self.bloom.may_hold(h) {
            return Ok(false);
        }
        let page = self.fences.partition_point(|f| f <= k);
        if page == 0 {
            return Ok(false);
        }
        let page = page - 1;
        let keys = PAGE_KEYS.min(self.len - page * PAGE_KEYS);
        let mut buf = [0u8; PAGE];
        self.file.read_exact_at(&mut buf[..keys * KEY], (page * PAGE) as u64)?;
        // Bytes sort as keys do: the type's byte (in the order of its variants), then the id.
        let want = encode(k);
        let (mut lo, mut hi) = (0, keys);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match buf[mid * KEY..(mid + 1) * KEY].cmp(&want[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(true),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, RandomState};

    fn key(i: u32, kind: BlobType) -> BlobKey {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        id[28..].copy_from_slice(&i.to_le_bytes());
        (kind, BlobId(id))
    }

    #[test]
    fn finds_every_key_it_holds_and_almost_never_reads_for_others() {
        let hasher = RandomState::new();
        let n = PAGE_KEYS as u32 * 40 + 7;
        let mut keys: Vec<_> = (0..n).map(|i| key(i, BlobType::Chunk)).collect();
        let run = SortedRun::write(&mut keys, |k| hasher.hash_one(k)).unwrap();
        assert_eq!(run.len(), n as usize);
        for i in 0..n {
            let k = key(i, BlobType::Chunk);
            assert!(run.contains(&k, hasher.hash_one(k)).unwrap(), "key {i}");
        }
        let mut maybe = 0;
        for i in n..n * 3 {
            for k in [key(i, BlobType::Chunk), key(i - n, BlobType::Tree)] {
                assert!(!run.contains(&k, hasher.hash_one(k)).unwrap(), "key {i}");
                maybe += usize::from(run.bloom.may_hold(hasher.hash_one(k)));
            }
        }
        // 10 bits a key in one cache line: about 1% false positives.
        assert!(maybe < (n as usize * 4) / 40, "{maybe} false positives of {}", n * 4);
        let all: Vec<_> = run.iter().collect::<io::Result<_>>().unwrap();
        assert!(all.windows(2).all(|w| w[0] < w[1]) && all.len() == n as usize);
    }

    #[test]
    fn merged_runs_hold_every_key_of_each_in_order() {
        let hasher = RandomState::new();
        let h = |k: &BlobKey| hasher.hash_one(k);
        let mut runs = Vec::new();
        for r in 0..5u32 {
            // Interleaved keys, runs of different lengths, one empty.
            let mut keys: Vec<_> = (0..r * 300).map(|i| key(i * 5 + r, BlobType::Chunk)).collect();
            runs.push(SortedRun::write(&mut keys, h).unwrap());
        }
        let merged = SortedRun::merge(&runs, h).unwrap();
        assert_eq!(merged.len(), 300 * (1 + 2 + 3 + 4));
        let all: Vec<_> = merged.iter().collect::<io::Result<_>>().unwrap();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for r in 1..5u32 {
            for i in 0..r * 300 {
                let k = key(i * 5 + r, BlobType::Chunk);
                assert!(merged.contains(&k, h(&k)).unwrap());
            }
        }
        assert!(!merged.contains(&key(0, BlobType::Chunk), h(&key(0, BlobType::Chunk))).unwrap());
    }

    #[test]
    fn an_empty_run_holds_nothing() {
        let run = SortedRun::write(&mut [], |_| 5).unwrap();
        let k = key(1, BlobType::Chunk);
        assert!(!run.contains(&k, 5).unwrap() && run.is_empty() && run.iter().next().is_none());
    }
}
