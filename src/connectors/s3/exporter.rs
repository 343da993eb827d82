//! Restores into a bucket (or a prefix of it): each regular file becomes one object, large
//! ones by multipart upload, several at a time (restore calls from its worker threads).
//! Directories and modes have no meaning in S3 and are skipped, as Plakar does; symlinks
//! are skipped too, hard links become copies.

use super::client::Client;
use super::config::S3Config;
use super::errors::classify;
use super::importer::to_io;
use super::store::{multipart, S3Store, PART_SIZE};
use crate::kloset::exporter::Exporter;
use crate::kloset::importer::FileInfo;
use crate::kloset::store::StoreErrorKind as K;
use std::io::{self, Read};

pub struct S3Exporter {
    c: Client,
}

impl S3Exporter {
    pub fn new(cfg: S3Config) -> io::Result<Self> {
        let c = Client::new(cfg)?;
        if let Err(err) = super::bucket::check(&c, "checking the bucket") {
            // A put-only key may not look at the bucket: its writes will tell.
            if err.kind == K::PermissionDenied {
                return Ok(Self { c });
            }
            if err.kind != K::NotFound {
                return Err(to_io(err));
            }
            if let Err(e) = c.block_on(c.s3.create_bucket().bucket(&c.cfg.bucket).send()) {
                let err = classify(e, &c.cfg, &format!("creating bucket {}", c.cfg.bucket));
                if err.kind != K::AlreadyExists {
                    return Err(to_io(err));
                }
            }
        }
        Ok(Self { c })
    }

    fn key(&self, path: &[u8]) -> String {
        self.c.key(String::from_utf8_lossy(path).trim_start_matches('/'))
    }
}

fn read_part(r: &mut dyn Read, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(PART_SIZE));
    r.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Exporter for S3Exporter {
    fn create_dir(&self, _path: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn store_file(&self, path: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        let key = self.key(path);
        if size < PART_SIZE as u64 {
            let buf = read_part(data, size as usize + 1)?;
            if buf.len() as u64 != size {
                return Err(io::Error::other(format!("expected {size} bytes, read {}", buf.len())));
            }
            return S3Store::put_key(&self.c, &key, &buf, true).map_err(to_io);
        }
        let mut parts = std::iter::from_fn(|| match read_part(data, PART_SIZE) {
            Ok(b) if b.is_empty() => None,
            other => Some(other),
        });
        multipart(&self.c, &key, &mut parts, true).map_err(to_io)
    }

    fn symlink(&self, _path: &[u8], _target: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()> {
        let c = &self.c;
        let source = format!("{}/{}", c.cfg.bucket, self.key(existing));
        c.block_on(c.s3.copy_object().bucket(&c.cfg.bucket).key(self.key(path)).copy_source(source).send())
            .map(|_| ())
            .map_err(|e| to_io(classify(e, &c.cfg, "copying a hard-linked file")))
    }

    fn set_metadata(&self, _path: &[u8], _info: &FileInfo) -> io::Result<()> {
        Ok(())
    }

    fn finish(&self) -> io::Result<()> {
        Ok(())
    }

    fn parallelism(&self) -> usize {
        super::importer::REMOTE_PARALLELISM
    }
}
