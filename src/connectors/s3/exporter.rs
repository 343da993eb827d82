//! Restores into a bucket (or a prefix of it): each regular file becomes one object, large
//! ones by multipart upload, several at a time (restore calls from its worker threads).
//! Directories and modes have no meaning in S3 and are skipped, as Plakar does; symlinks
//! are skipped too, hard links become server-side copies (CopyObject). Files go by one PUT
//! below the store's `MULTIPART_THRESHOLD`, by multipart upload from it on; a server whose
//! multipart replies cannot be read (at any step) gets one PUT for files up to `FALLBACK_MAX`
//! (held in memory), that file and every later one; when parts were already read, the
//! upload is aborted and restore sends the file again (`SendAgain`). Credentials or a write permission refused stop the restore at the first file
//! (`TargetRefused`): every other file would be refused alike.

use super::class;
use super::client::Client;
use super::config::S3Config;
use super::errors::classify;
use super::importer::to_io;
use super::sse::{copy_source_key, WithSse};
use super::store::{multipart, single_put, Multipart, S3Store, MULTIPART_THRESHOLD, PART_SIZE};
use crate::connectors::notice;
use crate::kloset::exporter::{skip, Exporter, SendAgain, TargetRefused};
use crate::kloset::importer::FileInfo;
use crate::kloset::store::Content;
use crate::kloset::store::StoreErrorKind as K;
use aws_sdk_s3::types::StorageClass;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct S3Exporter {
    c: Client,
    /// Set once a multipart reply could not be read: later files skip multipart.
    one_put: AtomicBool,
}

impl S3Exporter {
    pub fn new(cfg: S3Config) -> io::Result<Self> {
        let c = Client::new(cfg)?;
        if let Err(err) = super::bucket::check(&c, "checking the bucket") {
            // A put-only key may not look at the bucket: its writes will tell.
            if err.kind == K::PermissionDenied {
                return Ok(Self { c, one_put: AtomicBool::new(false) });
            }
            if err.kind != K::NotFound {
                return Err(to_io(err));
            }
            super::bucket::create(&c).map_err(to_io)?;
        }
        Ok(Self { c, one_put: AtomicBool::new(false) })
    }

    fn key(&self, path: &[u8]) -> String {
        self.c.key(String::from_utf8_lossy(path).trim_start_matches('/'))
    }
}

/// The largest file a restore holds in memory to send with one PUT when the server's
/// multipart replies cannot be read.
pub const FALLBACK_MAX: u64 = 1 << 30;

/// A refused write concerns the whole target, not one file.
fn refused(e: crate::kloset::store::StoreError) -> io::Error {
    if e.kind == K::PermissionDenied {
        io::Error::new(io::ErrorKind::PermissionDenied, TargetRefused(e.message))
    } else {
        to_io(e)
    }
}

/// `x-amz-copy-source` is `bucket/key`, URL-encoded: AWS and moto look up a key with a space
/// or a `%` sent raw as another key, and answer 404.
pub fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_part(r: &mut dyn Read, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(PART_SIZE));
    r.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl S3Exporter {
    /// Sends `buf` and what is left of `data` (`size` bytes in all) with one PUT.
    fn one_put(
        &self,
        key: &str,
        mut buf: Vec<u8>,
        data: &mut dyn Read,
        size: u64,
        class: StorageClass,
    ) -> io::Result<()> {
        data.take(size + 1 - buf.len() as u64).read_to_end(&mut buf)?;
        if buf.len() as u64 != size {
            return Err(io::Error::other(format!("expected {size} bytes, read {}", buf.len())));
        }
        single_put(&self.c, key, buf, class).map_err(refused)
    }
}

impl Exporter for S3Exporter {
    fn create_dir(&self, _path: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn store_file(&self, path: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        let key = self.key(path);
        let class = class::for_content(&self.c.cfg.storage_class, Content::Data);
        if size < MULTIPART_THRESHOLD as u64 {
            let buf = read_part(data, size as usize + 1)?;
            if buf.len() as u64 != size {
                return Err(io::Error::other(format!("expected {size} bytes, read {}", buf.len())));
            }
            return S3Store::put_key(&self.c, &key, &buf, class).map_err(refused);
        }
        if self.one_put.load(Ordering::Relaxed) && size <= FALLBACK_MAX {
            return self.one_put(&key, Vec::new(), data, size, class);
        }
        let mut first = Some(read_part(data, PART_SIZE)?);
        let mut parts =
            std::iter::from_fn(|| match first.take().map(Ok).unwrap_or_else(|| read_part(data, PART_SIZE)) {
                Ok(b) if b.is_empty() => None,
                other => Some(other),
            });
        match multipart(&self.c, &key, &mut parts, class.clone()) {
            Ok(()) => Ok(()),
            Err(Multipart::Malformed(e)) if size <= FALLBACK_MAX => {
                notice::warn(&format!("{e}; writing it with one PUT instead"));
                self.one_put.store(true, Ordering::Relaxed);
                match first.take() {
                    // The server could not even start the upload: nothing was read past the
                    // first part, so the rest of the reader is all that is needed.
                    Some(buf) => self.one_put(&key, buf, data, size, class),
                    // UploadPart or CompleteMultipartUpload: the parts sent are gone from the
                    // reader (the upload was aborted); restore sends the file again.
                    None => Err(io::Error::other(SendAgain(e.message))),
                }
            }
            Err(e) => Err(refused(e.into())),
        }
    }
    /// A bucket holds no links: left out, and said as a note (never dropped in silence).
    fn symlink(&self, _path: &[u8], target: &[u8]) -> io::Result<()> {
        Err(skip(format!(
            "symbolic link not restored: a bucket cannot hold one (it pointed to {})",
            String::from_utf8_lossy(target)
        )))
    }

    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()> {
        let c = &self.c;
        let source = copy_source(&c.cfg.bucket, &self.key(existing));
        let req = c.s3.copy_object().bucket(&c.cfg.bucket).key(self.key(path)).copy_source(source).sse(&c.cfg.sse);
        c.block_on(copy_source_key(req, &c.cfg.sse).send())
            .map(|_| ())
            // Not `refused`: a put-only key may not read the source; restore then PUTs a copy.
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
