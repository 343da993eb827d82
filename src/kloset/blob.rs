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

/// The largest plaintext a blob of type `t` may decode to: a bound on what a crafted or
/// damaged blob can make a reader allocate (zstd expands a few bytes into gigabytes).
/// Chunks are cut by FastCDC, which never makes them larger than its maximum; tree nodes
/// grow with directory size and get a generous bound; snapshot headers are small.
pub fn max_plain_len(t: BlobType) -> usize {
    match t {
        BlobType::Chunk => fastcdc::v2020::MAXIMUM_MAX as usize,
        BlobType::Tree => MAX_TREE_LEN,
        BlobType::Snapshot => MAX_HEADER_LEN,
    }
}

const MAX_TREE_LEN: usize = 1 << 30;
const MAX_HEADER_LEN: usize = 16 << 20;

pub fn decode(keys: &Keys, t: BlobType, id: &BlobId, sealed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let body = keys.open(&ad(t, id), sealed).map_err(|_| DecodeError::Auth)?;
    let plain = decompress(&body, max_plain_len(t))?;
    if t != BlobType::Snapshot && keys.mac(&plain) != *id {
        return Err(DecodeError::Mismatch);
    }
    Ok(plain)
}

/// Decodes an opened (authenticated and decrypted) blob body: one byte saying how it is
/// compressed, then the data. Fails rather than produce more than `max` bytes. Public so
/// that a fuzzer can reach it without the key.
pub fn decompress(body: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    match body.split_first() {
        Some((&RAW, data)) if data.len() <= max => Ok(data.to_vec()),
        Some((&ZSTD, data)) => unzstd(data, max).ok_or(DecodeError::Decompress),
        _ => Err(DecodeError::Decompress),
    }
}

thread_local! {
    /// One decompression context per thread, reused: creating one costs more than
    /// decompressing a small chunk (10% of a restore's CPU when made for every blob).
    static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { std::cell::RefCell::new(None) };
}

/// Decompresses zstd frames into at most `max` bytes. The output is allocated once at the
/// size a frame declares (refused at once when over `max`), else grown, never past `max`.
fn unzstd(data: &[u8], max: usize) -> Option<Vec<u8>> {
    use zstd::zstd_safe::{get_frame_content_size, DCtx, InBuffer, OutBuffer, ResetDirective};
    let declared = get_frame_content_size(data).ok().flatten();
    if declared.is_some_and(|n| n > max as u64) {
        return None;
    }
    DCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(DCtx::try_create()?),
        };
        // A frame that says its size is decoded in one call, straight into its buffer (no
        // window buffer kept by the context); it fails only if more frames follow.
        if let Some(n) = declared {
            let mut plain: Vec<u8> = Vec::with_capacity(n as usize);
            if dctx.decompress(&mut plain, data).is_ok() {
                return Some(plain);
            }
        }
        // A context left mid-frame by an earlier failure starts over.
        dctx.reset(ResetDirective::SessionOnly).ok()?;
        let mut plain: Vec<u8> = Vec::with_capacity(declared.map_or(data.len() * 4, |n| n as usize).min(max) + 1);
        let mut input = InBuffer::around(data);
        loop {
            if plain.len() == plain.capacity() {
                if plain.len() > max {
                    return None;
                }
                plain.reserve((plain.len().max(64 << 10)).min(max + 1 - plain.len()));
            }
            let len = plain.len();
            let mut out = OutBuffer::around_pos(&mut plain, len);
            let left = dctx.decompress_stream(&mut out, &mut input).ok()?;
            let done = left == 0 && input.pos() == data.len();
            if plain.len() > max {
                return None;
            }
            if done {
                return Some(plain);
            }
            // Out of input with a frame unfinished: truncated.
            if input.pos() == data.len() && plain.len() < plain.capacity() {
                return None;
            }
        }
    })
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

    /// A zstd frame of 201 RLE blocks of 128 KiB each: 810 bytes that expand to 25 MiB,
    /// more than any chunk. Decoding used to inflate it whole (a decompression bomb).
    fn bomb() -> Vec<u8> {
        // Compression byte, zstd magic, frame header without content size, 128 KiB window.
        let mut b = vec![ZSTD, 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
        for i in 0..201 {
            // RLE block of 128 KiB of zeros; the last one ends the frame.
            b.extend_from_slice(&[0x02 | u8::from(i == 200), 0x00, 0x10, 0x00]);
        }
        b
    }

    #[test]
    fn decompression_is_bounded() {
        let b = bomb();
        assert_eq!(decompress(&b, 32 << 20).unwrap().len(), 201 << 17, "a well-formed frame");
        assert!(matches!(decompress(&b, max_plain_len(BlobType::Chunk)), Err(DecodeError::Decompress)));
        assert!(matches!(decompress(&b, (201 << 17) - 1), Err(DecodeError::Decompress)));
        assert_eq!(decompress(&b, 201 << 17).unwrap().len(), 201 << 17);
        assert!(matches!(decompress(&[RAW, 1, 2, 3], 2), Err(DecodeError::Decompress)));
        let keys = Keys::new(&[3u8; 32], false);
        let id = BlobId([1; 32]);
        let sealed = keys.seal(&ad(BlobType::Snapshot, &id), &b);
        assert!(matches!(decode(&keys, BlobType::Snapshot, &id, &sealed), Err(DecodeError::Decompress)));
    }
}
