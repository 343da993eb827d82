//! Digest: SHA-256 or BLAKE3 of the files of a snapshot, computed from their chunks as they
//! are read from the store (each authenticated on the way), without restoring anything.
//! The digests are of the files' plain content, so they compare with `sha256sum` and
//! `b3sum` run on the originals; they have nothing to do with the store's keyed ids.

use crate::kloset::error::Result;
use crate::kloset::importer::FileKind;
use crate::kloset::reader::{engine_error, ChunkReader, Exact};
use crate::kloset::repo::Repository;
use crate::kloset::tree::Entry;
use crate::kloset::walk::walk;
use sha2::Digest as _;
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    Sha256,
    Blake3,
}

impl Hashing {
    /// The names `parse` takes, as Plakar spells them.
    pub const NAMES: &'static str = "SHA256, BLAKE3";

    /// Plakar's names in any case (`SHA-256` too).
    pub fn parse(s: &str) -> Option<Hashing> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA256" => Some(Hashing::Sha256),
            "BLAKE3" => Some(Hashing::Blake3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Hashing::Sha256 => "SHA256",
            Hashing::Blake3 => "BLAKE3",
        }
    }
}

enum Hasher {
    Sha256(sha2::Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(h: Hashing) -> Self {
        match h {
            Hashing::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Hashing::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Blake3(h) => {
                h.update(b);
            }
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        }
    }
}

/// What `digest` found for one regular file: its digest, or why it has none (the backup
/// could not read the file in full, so its stored content is not the file's).
pub type FileDigest = std::result::Result<Vec<u8>, String>;

/// Calls `f(path, digest)` for each regular file at or below `path` (the path of `entry`
/// in its snapshot), in path order. Directories are walked, other kinds skipped, as
/// Plakar's `digest` does.
pub fn digest(
    repo: &Repository,
    entry: &Entry,
    path: &[u8],
    hashing: Hashing,
    f: &mut dyn FnMut(&[u8], FileDigest),
) -> Result<()> {
    walk(repo, entry, path, &mut |p, e| {
        if e.kind() != FileKind::File {
            return Ok(true);
        }
        match &e.error {
            Some(why) => f(p, Err(format!("not read in full at backup time, so no digest: {why}"))),
            None => f(p, Ok(file(repo, e, hashing)?)),
        }
        Ok(true)
    })
}

fn file(repo: &Repository, e: &Entry, hashing: Hashing) -> Result<Vec<u8>> {
    let mut h = Hasher::new(hashing);
    let mut r = Exact::new(ChunkReader::new(repo, &e.chunks), e.info.size);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf).map_err(|err| engine_error(err, "cannot read a file of the snapshot"))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::{Hasher, Hashing};

    #[test]
    fn names_and_known_answers() {
        assert_eq!(Hashing::parse("sha-256"), Some(Hashing::Sha256));
        assert_eq!(Hashing::parse("Blake3"), Some(Hashing::Blake3));
        assert_eq!(Hashing::parse("md5"), None);
        let of = |h, parts: &[&[u8]]| {
            let mut x = Hasher::new(h);
            parts.iter().for_each(|p| x.update(p));
            hex::encode(x.finish())
        };
        // Fed in pieces, as chunks are: the digest of the whole.
        assert_eq!(
            of(Hashing::Sha256, &[b"ab", b"c"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(of(Hashing::Blake3, &[b"", b"abc"]), blake3::hash(b"abc").to_hex().to_string());
    }
}
