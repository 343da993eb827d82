//! Packfiles: many encoded blobs, then a sealed index of (type, id, offset, length), then a
//! fixed footer. Written once, never modified. The index lets a store be re-indexed from
//! packfiles alone; day-to-day reads use the locations recorded in states.

use crate::kloset::blob::BlobType;
use crate::kloset::crypto::Keys;
use crate::kloset::id::{BlobId, PackId};

pub const MAGIC: &[u8; 8] = b"PLKRPACK";
pub const FOOTER_MAGIC: &[u8; 4] = b"PKIX";
pub const FOOTER_LEN: usize = 16;
const ENTRY_LEN: usize = 41;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobType,
    pub id: BlobId,
    pub offset: u32,
    pub length: u32,
}

/// A packfile being filled in memory.
pub struct PackBuilder {
    pub id: PackId,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    pub fn new() -> Self {
        Self::with_id(PackId::random())
    }
    pub fn with_id(id: PackId) -> Self {
        Self { id, buf: MAGIC.to_vec(), entries: Vec::new() }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn add(&mut self, kind: BlobType, id: BlobId, encoded: &[u8]) -> PackEntry {
        let e = PackEntry { kind, id, offset: self.buf.len() as u32, length: encoded.len() as u32 };
        self.buf.extend_from_slice(encoded);
        self.entries.push(e);
        e
    }
    /// Moves every blob of `other` into this packfile (blobs are encoded independently of
    /// the packfile that holds them).
    pub fn append(&mut self, other: PackBuilder) {
        for e in &other.entries {
            let (start, end) = (e.offset as usize, (e.offset + e.length) as usize);
            self.add(e.kind, e.id, &other.buf[start..end]);
        }
    }
    /// Appends the sealed index and the footer; returns the bytes and the entries.
    pub fn finish(mut self, keys: &Keys) -> (PackId, Vec<u8>, Vec<PackEntry>) {
        let mut index = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            index.push(e.kind as u8);
            index.extend_from_slice(&e.id.0);
            index.extend_from_slice(&e.offset.to_le_bytes());
            index.extend_from_slice(&e.length.to_le_bytes());
        }
        let offset = self.buf.len() as u64;
        keys.seal_into(&index_ad(&self.id), &index, &mut self.buf);
        let len = (self.buf.len() as u64 - offset) as u32;
        self.buf.extend_from_slice(&offset.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(FOOTER_MAGIC);
        (self.id, self.buf, self.entries)
    }
}

fn index_ad(id: &PackId) -> Vec<u8> {
    let mut a = b"packfile index ".to_vec();
    a.extend_from_slice(&id.0);
    a
}

/// Reads the index of a whole packfile.
pub fn read_index(keys: &Keys, id: &PackId, data: &[u8]) -> Result<Vec<PackEntry>, String> {
    let (off, len) = index_span(data)?;
    open_index(keys, id, &data[off..off + len])
}

/// Where the sealed index of a whole packfile lies, as (offset, length), read from its
/// footer; the span is checked to lie inside `data`. Public so that it can be fuzzed alone.
pub fn index_span(data: &[u8]) -> Result<(usize, usize), String> {
    if data.len() < MAGIC.len() + FOOTER_LEN || &data[..8] != MAGIC {
        return Err("not a packfile or truncated".into());
    }
    let (off, len) = index_range(&data[data.len() - FOOTER_LEN..], data.len() as u64)?;
    Ok((off as usize, len as usize))
}

/// Where the sealed index lies, from the footer (the last FOOTER_LEN bytes) of a packfile
/// of `size` bytes: (offset, length), checked to lie inside the file.
pub fn index_range(footer: &[u8], size: u64) -> Result<(u64, u64), String> {
    if footer.len() != FOOTER_LEN || &footer[12..] != FOOTER_MAGIC {
        return Err("packfile footer is damaged or the file is truncated".into());
    }
    let off = u64::from_le_bytes(footer[..8].try_into().expect("8"));
    let len = u32::from_le_bytes(footer[8..12].try_into().expect("4")) as u64;
    let limit = size.saturating_sub(FOOTER_LEN as u64);
    off.checked_add(len).filter(|&e| e <= limit && off >= MAGIC.len() as u64).ok_or("packfile index out of bounds")?;
    Ok((off, len))
}

/// Authenticates and parses a packfile's sealed index.
pub fn open_index(keys: &Keys, id: &PackId, sealed: &[u8]) -> Result<Vec<PackEntry>, String> {
    let index = keys.open(&index_ad(id), sealed).map_err(|_| "packfile index fails authentication")?;
    parse_index(&index)
}

/// Parses a packfile index once opened (authenticated and decrypted). Public so that a
/// fuzzer can reach it without the key.
pub fn parse_index(index: &[u8]) -> Result<Vec<PackEntry>, String> {
    if !index.len().is_multiple_of(ENTRY_LEN) {
        return Err("packfile index has a partial record".into());
    }
    index
        .chunks(ENTRY_LEN)
        .map(|r| {
            Ok(PackEntry {
                kind: BlobType::from_u8(r[0]).ok_or("unknown blob type in packfile index")?,
                id: BlobId::from_slice(&r[1..33]).expect("32"),
                offset: u32::from_le_bytes(r[33..37].try_into().expect("4")),
                length: u32::from_le_bytes(r[37..41].try_into().expect("4")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_roundtrip_and_truncation() {
        let keys = Keys::new(&[9u8; 32], true);
        let mut b = PackBuilder::new();
        let e = b.add(BlobType::Chunk, BlobId([1; 32]), b"abc");
        let (id, data, entries) = b.finish(&keys);
        assert_eq!(entries, vec![e]);
        assert_eq!(read_index(&keys, &id, &data).unwrap(), entries);
        assert!(read_index(&keys, &id, &data[..data.len() - 1]).is_err());
        assert!(read_index(&keys, &PackId([0; 32]), &data).is_err(), "index is bound to the pack id");
    }

    #[test]
    fn appending_a_packfile_moves_its_blobs_after_ours() {
        let keys = Keys::new(&[9u8; 32], true);
        let mut a = PackBuilder::new();
        a.add(BlobType::Chunk, BlobId([1; 32]), b"first");
        let mut b = PackBuilder::new();
        b.add(BlobType::Chunk, BlobId([2; 32]), b"second");
        b.add(BlobType::Tree, BlobId([3; 32]), b"third!");
        a.append(b);
        let (id, data, entries) = a.finish(&keys);
        assert_eq!(read_index(&keys, &id, &data).unwrap(), entries);
        let blobs: Vec<_> =
            entries.iter().map(|e| (e.kind, e.id, &data[e.offset as usize..(e.offset + e.length) as usize])).collect();
        assert_eq!(
            blobs,
            vec![
                (BlobType::Chunk, BlobId([1; 32]), &b"first"[..]),
                (BlobType::Chunk, BlobId([2; 32]), &b"second"[..]),
                (BlobType::Tree, BlobId([3; 32]), &b"third!"[..]),
            ]
        );
    }
}
