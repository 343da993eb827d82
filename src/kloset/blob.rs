//! Blob encoding: compress (zstd, kept raw when that does not help), then seal with the
//! blob's type and id as associated data. Decoding authenticates, decompresses, and for
//! content-addressed types checks that the plaintext still has the id it was stored under.

use crate::kloset::crypto::Keys;
use crate::kloset::id::BlobId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum BlobType {
    Chunk = 1,
    Tree = 2,
    Snapshot = 3,
}

impl BlobType {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(BlobType::Chunk),
            2 => Some(BlobType::Tree),
            3 => Some(BlobType::Snapshot),
            _ => None,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            BlobType::Chunk => "chunk",
            BlobType::Tree => "tree",
            BlobType::Snapshot => "snapshot",
        }
    }
}

thread_local! {
    // One compression context per thread: creating one per blob costs more than
    // compressing a small file.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

const RAW: u8 = 0;
const ZSTD: u8 = 1;

fn ad(t: BlobType, id: &BlobId) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[0] = t as u8;
    a[1..].copy_from_slice(&id.0);
    a
}

/// Encodes a blob. `level` None disables compression.
pub fn encode(keys: &Keys, t: BlobType, id: &BlobId, plain: &[u8], level: Option<i32>) -> Vec<u8> {
    let mut body = Vec::with_capacity(plain.len() + 1);
    if let Some(level) = level {
        body.push(ZSTD);
        let ok = COMPRESSOR.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_none_or(|(l, _)| *l != level) {
                *c = zstd::bulk::Compressor::new(level).ok().map(|z| (level, z));
            }
            let Some((_, z)) = c.as_mut() else {
                return false;
            };
            let bound = zstd::zstd_safe::compress_bound(plain.len());
            body.reserve(bound);
            let start = body.len();
            body.resize(start + bound, 0);
            match z.compress_to_buffer(plain, &mut body[start..]) {
                Ok(n) => {
                    body.truncate(start + n);
                    true
                }
                Err(_) => false,
            }
        });
        if !ok || body.len() > plain.len() {
            body.clear();
        }
    }
    if body.is_empty() {
        body.push(RAW);
        body.extend_from_slice(plain);
    }
    keys.seal(&ad(t, id), &body)
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("failed authentication (damaged or tampered data)")]
    Auth,
    #[error("cannot be decompressed")]
    Decompress,
    #[error("content does not match its id")]
    Mismatch,
}

pub fn decode(keys: &Keys, t: BlobType, id: &BlobId, sealed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let body = keys.open(&ad(t, id), sealed).map_err(|_| DecodeError::Auth)?;
    let plain = match body.first() {
        Some(&RAW) => body[1..].to_vec(),
        Some(&ZSTD) => zstd::stream::decode_all(&body[1..]).map_err(|_| DecodeError::Decompress)?,
        _ => return Err(DecodeError::Decompress),
    };
    if t != BlobType::Snapshot && keys.mac(&plain) != *id {
        return Err(DecodeError::Mismatch);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_compressible_and_not() {
        let keys = Keys::new(&[3u8; 32], true);
        for data in [vec![0u8; 100_000], (0..5000u32).flat_map(|i| i.to_le_bytes()).collect()] {
            let id = keys.mac(&data);
            let enc = encode(&keys, BlobType::Chunk, &id, &data, Some(3));
            assert_eq!(decode(&keys, BlobType::Chunk, &id, &enc).unwrap(), data);
            assert!(decode(&keys, BlobType::Tree, &id, &enc).is_err(), "type is bound");
        }
    }
}
