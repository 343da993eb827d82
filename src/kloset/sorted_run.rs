//! A sorted run: fixed-size records (blob keys, or index entries that start with one)
//! written in key order to an unnamed temporary file, found again with one read of 4 KiB.
//! What stays in memory is the first key of each page (a third of a byte a record) and a
//! blocked Bloom filter (10 bits a record), which answers most lookups of keys the run does
//! not hold without reading the file. A miss costs one cache line; a hit, or the one false
//! positive in a hundred, one `pread` (of a page the page cache most likely holds: the file
//! is written once and only read after, and page-cache pages are the kernel's to drop,
//! never the process's resident memory).
//!
//! The file lives in the system's temporary directory ($TMPDIR, else /tmp) and is unlinked
//! as soon as it is created: nothing is left behind by a run that is killed.

use crate::kloset::blob::BlobType;
use crate::kloset::id::BlobId;
use crate::kloset::index::BlobKey;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;

const KEY: usize = 33;
/// Bloom filter: bits a key, bits set a key, bits a block (one 64-byte cache line).
const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 6;
const BLOCK_WORDS: usize = 8;

/// What a run holds: a record of `LEN` bytes whose first 33 are its key, encoded so that
/// bytes sort as keys do (the type's byte, in the order of its variants, then the id).
pub trait RunRecord: Copy {
    const LEN: usize;
    fn key(&self) -> BlobKey;
    fn encode(&self, out: &mut [u8]);
    fn decode(b: &[u8]) -> Option<Self>;
}

pub fn encode_key(k: &BlobKey, out: &mut [u8]) {
    out[0] = k.0 as u8;
    out[1..KEY].copy_from_slice(&k.1 .0);
}

pub fn decode_key(b: &[u8]) -> Option<BlobKey> {
    let kind = BlobType::from_u8(b[0])?;
    Some((kind, BlobId(b[1..KEY].try_into().ok()?)))
}

impl RunRecord for BlobKey {
    const LEN: usize = KEY;
    fn key(&self) -> BlobKey {
        *self
    }
    fn encode(&self, out: &mut [u8]) {
        encode_key(self, out)
    }
    fn decode(b: &[u8]) -> Option<Self> {
        decode_key(b)
    }
}

fn damaged() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "a sorted run in the temporary directory was damaged")
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

pub struct SortedRun<R: RunRecord = BlobKey> {
    file: File,
    len: usize,
    /// The first key of each page.
    fences: Vec<BlobKey>,
    bloom: Bloom,
    record: PhantomData<R>,
}

/// The records of several runs in key order (records of one key in the order of their
/// runs), read a few pages at a time from each.
pub fn merged<'a, R: RunRecord + 'a>(runs: &'a [SortedRun<R>]) -> impl Iterator<Item = io::Result<R>> + 'a {
    let mut readers: Vec<_> = runs.iter().map(|r| r.iter().peekable()).collect();
    std::iter::from_fn(move || {
        // A handful of runs: the smallest head by a scan, no heap needed.
        let mut best: Option<(usize, BlobKey)> = None;
        for (n, r) in readers.iter_mut().enumerate() {
            match r.peek() {
                Some(Ok(rec)) if best.is_none_or(|(_, b)| rec.key() < b) => best = Some((n, rec.key())),
                Some(Err(_)) => return r.next(),
                _ => {}
            }
        }
        best.map(|(n, _)| readers[n].next().expect("peeked"))
    })
}

impl<R: RunRecord> SortedRun<R> {
    /// Records a page holds (91 index entries of 45 bytes, 124 keys of 33).
    const PAGE_RECORDS: usize = 4096 / R::LEN;

    /// Sorts `records` by key (in place: records of one key in any order) and writes them
    /// to a new temporary file; `hash` is the caller's keyed hash of a key, for the filter.
    pub fn write(records: &mut [R], hash: impl Fn(&BlobKey) -> u64) -> io::Result<SortedRun<R>> {
        records.sort_unstable_by_key(|r| r.key());
        Self::from_sorted(records.len(), records.iter().map(|r| Ok(*r)), hash)
    }

    /// Writes records that come in key order; `most` is how many there may be (it sizes
    /// the filter).
    pub fn from_sorted(
        most: usize,
        records: impl Iterator<Item = io::Result<R>>,
        hash: impl Fn(&BlobKey) -> u64,
    ) -> io::Result<SortedRun<R>> {
        let file = tempfile::tempfile()?;
        let mut out = BufWriter::with_capacity(16 * 4096, &file);
        let mut bloom = Bloom::new(most);
        let mut fences = Vec::with_capacity(most.div_ceil(Self::PAGE_RECORDS));
        let mut buf = vec![0u8; R::LEN];
        let mut written = 0;
        for r in records {
            let r = r?;
            let k = r.key();
            if written % Self::PAGE_RECORDS == 0 {
                fences.push(k);
            }
            r.encode(&mut buf);
            out.write_all(&buf)?;
            bloom.insert(hash(&k));
            written += 1;
        }
        out.flush()?;
        drop(out);
        fences.shrink_to_fit();
        Ok(SortedRun { file, len: written, fences, bloom, record: PhantomData })
    }

    /// Merges runs into one.
    pub fn merge(runs: &[SortedRun<R>], hash: impl Fn(&BlobKey) -> u64) -> io::Result<SortedRun<R>> {
        let most = runs.iter().map(|r| r.len).sum();
        Self::from_sorted(most, merged(runs), hash)
    }

    /// The records in order, read a few pages at a time.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<R>> + '_ {
        self.iter_from(0)
    }

    /// The records from the `first`th on.
    fn iter_from(&self, first: usize) -> impl Iterator<Item = io::Result<R>> + '_ {
        let mut buf = Vec::new();
        let (mut pos, mut at) = (0usize, first);
        std::iter::from_fn(move || {
            if at >= self.len {
                return None;
            }
            if pos == buf.len() {
                let n = (16 * Self::PAGE_RECORDS).min(self.len - at);
                buf.resize(n * R::LEN, 0);
                if let Err(e) = self.file.read_exact_at(&mut buf, (at * R::LEN) as u64) {
                    at = self.len;
                    return Some(Err(e));
                }
                pos = 0;
            }
            let r = R::decode(&buf[pos..pos + R::LEN]);
            (pos, at) = (pos + R::LEN, at + 1);
            Some(r.ok_or_else(damaged))
        })
    }

    /// The records whose key is `from` or later, in order.
    pub fn iter_at(&self, from: &BlobKey) -> impl Iterator<Item = io::Result<R>> + '_ {
        let page = self.fences.partition_point(|f| f < from).saturating_sub(1);
        let from = *from;
        self.iter_from(page * Self::PAGE_RECORDS).filter(move |r| r.as_ref().map_or(true, |r| r.key() >= from))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record of key `k`, whose hash is `h` (the first one, if several share it).
    pub fn find(&self, k: &BlobKey, h: u64) -> io::Result<Option<R>> {
        if !self.bloom.may_hold(h) {
            return Ok(None);
        }
        // The first page that may hold `k`: records of one key may straddle pages.
        let page = self.fences.partition_point(|f| f < k).saturating_sub(1);
        let mut want = [0u8; KEY];
        encode_key(k, &mut want);
        let mut buf = vec![0u8; 4096];
        for page in page..self.fences.len() {
            if page > 0 && self.fences[page] > *k {
                return Ok(None);
            }
            let n = Self::PAGE_RECORDS.min(self.len - page * Self::PAGE_RECORDS);
            let bytes = &mut buf[..n * R::LEN];
            self.file.read_exact_at(bytes, (page * Self::PAGE_RECORDS * R::LEN) as u64)?;
            // The first record whose key is `k` or later.
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if bytes[mid * R::LEN..mid * R::LEN + KEY] < want[..] {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if lo < n {
                let at = &bytes[lo * R::LEN..(lo + 1) * R::LEN];
                return Ok(if at[..KEY] == want[..] { Some(R::decode(at).ok_or_else(damaged)?) } else { None });
            }
        }
        Ok(None)
    }

    /// Whether the run holds `k`, whose hash is `h`.
    pub fn contains(&self, k: &BlobKey, h: u64) -> io::Result<bool> {
        Ok(self.find(k, h)?.is_some())
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
        let n = SortedRun::<BlobKey>::PAGE_RECORDS as u32 * 40 + 7;
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
        let run: SortedRun = SortedRun::write(&mut [], |_| 5).unwrap();
        let k = key(1, BlobType::Chunk);
        assert!(!run.contains(&k, 5).unwrap() && run.is_empty() && run.iter().next().is_none());
    }
}
