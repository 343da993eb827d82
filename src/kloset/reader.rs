//! Reads a file's content back, one verified chunk at a time.

use crate::kloset::blob::BlobType;
use crate::kloset::error::Error;
use crate::kloset::id::BlobId;
use crate::kloset::repo::Repository;
use std::io::{self, Read};

pub struct ChunkReader<'a> {
    repo: &'a Repository,
    chunks: &'a [BlobId],
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    /// Plaintext length of each chunk handed out so far, in order.
    pub lengths: Vec<u32>,
    /// Chunks fetched from the store and verified (a run of one chunk counts once).
    pub fetched: u64,
}

impl<'a> ChunkReader<'a> {
    pub fn new(repo: &'a Repository, chunks: &'a [BlobId]) -> Self {
        Self { repo, chunks, next: 0, buf: Vec::new(), pos: 0, lengths: Vec::new(), fetched: 0 }
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(id) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            // Runs of one chunk (zeros in disk images) are fetched and verified once.
            if self.next == 0 || self.chunks[self.next - 1] != *id {
                self.buf = self.repo.get_blob(BlobType::Chunk, id).map_err(io::Error::other)?;
                self.fetched += 1;
            }
            self.lengths.push(self.buf.len() as u32);
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hands out exactly `size` bytes or fails: an archive entry whose header promised more
/// than the store gives back would silently shift every entry after it.
pub struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exact<R> {
    pub fn new(inner: R, size: u64) -> Self {
        Self { inner, left: size }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other(Error::Corrupt("a file is shorter in the store than recorded".into())));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The engine error an `io::Error` from a `ChunkReader` carries (a missing packfile, a
/// damaged blob), so that it keeps its kind; any other I/O error with `context`.
pub fn engine_error(e: io::Error, context: &str) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        let inner = e.into_inner().and_then(|b| b.downcast::<Error>().ok());
        return *inner.expect("checked to hold an engine error");
    }
    Error::io(context, e)
}
