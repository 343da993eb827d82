//! Reads a file's content back, one verified chunk at a time.

use crate::kloset::blob::BlobType;
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
