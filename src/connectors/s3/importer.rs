//! Backs up a bucket (or a prefix of it). Keys are read as paths: `a/b/c` is the file `c`
//! in directory `/a/b`; directories are listed with `/` as delimiter, every page. Each
//! object is streamed through the chunker, never written to a temporary file.

use super::client::Client;
use super::config::S3Config;
use super::errors::{classify, refuses_every_object};
use super::listed;
use super::sse::WithCustomerKey;
use crate::kloset::importer::{source_wide, DirEntry, FileInfo, FileKind, Importer, Opened};
use crate::kloset::store::{StoreError, StoreErrorKind as K};
use crate::kloset::Error;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;
use std::io::{self, Read};

/// Requests in flight for bucket sources and targets: each object costs a round trip, and
/// measured against Garage, 32 at once read a 5,700-object tree 8x faster than 3.
pub const REMOTE_PARALLELISM: usize = 32;

pub struct S3Importer {
    c: Client,
    root: Vec<u8>,
}

pub fn to_io(e: StoreError) -> io::Error {
    let kind = match e.kind {
        K::NotFound => io::ErrorKind::NotFound,
        K::PermissionDenied => io::ErrorKind::PermissionDenied,
        K::Unreachable => io::ErrorKind::NotConnected,
        K::Transient => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.message)
}

fn dir_info() -> FileInfo {
    FileInfo { kind: Some(FileKind::Dir), mode: 0o040755, nlink: 1, ..Default::default() }
}

impl S3Importer {
    pub fn new(cfg: S3Config) -> io::Result<Self> {
        let root = format!("/{}", cfg.prefix.trim_end_matches('/')).into_bytes();
        Ok(Self { c: Client::new(cfg)?, root })
    }

    /// The key prefix that lists the children of `path`.
    fn prefix_of(path: &[u8]) -> String {
        let p = String::from_utf8_lossy(path);
        let p = p.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    }
}

/// A listed key that is not UTF-8 once percent-decoded: no request can name it again.
fn undecodable_entry(raw: &str, bytes: &[u8]) -> DirEntry {
    let name = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    let msg = format!(
        "object {raw:?} (as listed, percent-encoded) not backed up: its key is not UTF-8 once decoded, so no \
         request can name it; the server lists keys S3 does not allow: rename it on the server"
    );
    DirEntry { name: name.to_vec(), info: Err(msg) }
}

/// A key segment no path can hold: empty, `.` or `..`.
fn odd_segment(name: &str) -> bool {
    matches!(name, "" | "." | "..")
}

/// An object whose key cannot be a path in a snapshot: recorded as an error (a KO line, and
/// the backup exits 3), never left out silently.
fn unmappable_entry(name: &str, key: &str, size: i64) -> DirEntry {
    let why = if key.ends_with('/') {
        format!("the key ends in '/' and holds {size} bytes")
    } else {
        "the key has an empty, '.' or '..' path segment".to_string()
    };
    let msg = format!(
        "object {key:?} not backed up: {why}, which no file path can hold; copy it to a key without them \
         (or back up a prefix that leaves it out)"
    );
    DirEntry { name: name.as_bytes().to_vec(), info: Err(msg) }
}

impl S3Importer {
    /// One page of the listing under `prefix`, keys percent-encoded (see `listed`).
    fn page(&self, prefix: &str, delimiter: Option<&str>, token: &Option<String>) -> io::Result<ListObjectsV2Output> {
        let c = &self.c;
        let req =
            c.s3.list_objects_v2()
                .bucket(&c.cfg.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .encoding_type(EncodingType::Url)
                .set_continuation_token(token.clone());
        c.block_on(req.send()).map_err(|e| to_io(classify(e, &c.cfg, &format!("listing {prefix}"))))
    }

    /// Every object under `sub` (a common prefix that is no directory name), as errors
    /// named by their key relative to `prefix`.
    fn unmappable(&self, prefix: &str, sub: &str) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.page(sub, None, &token)?;
            for o in page.contents() {
                let raw = o.key().unwrap_or_default();
                match listed::key(raw, page.encoding_type()) {
                    Ok(key) => {
                        let name = key.strip_prefix(prefix).unwrap_or_default();
                        out.push(unmappable_entry(name, &key, o.size().unwrap_or(0)));
                    }
                    Err(bytes) => out.push(undecodable_entry(raw, &bytes)),
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }
}

impl Importer for S3Importer {
    fn kind(&self) -> &str {
        "s3"
    }

    fn origin(&self) -> String {
        format!("{}/{}", self.c.cfg.endpoint, self.c.cfg.bucket)
    }

    fn root(&self) -> Vec<u8> {
        self.root.clone()
    }

    fn parallelism(&self) -> usize {
        REMOTE_PARALLELISM
    }

    /// A GET returns one version of an object, whole: no read can tear. (A listed size
    /// that the GET does not deliver is still reported.)
    fn restat_after_read(&self) -> bool {
        false
    }

    fn stat(&self, path: &[u8]) -> io::Result<FileInfo> {
        if path == self.root.as_slice() {
            // Fails early, with a clear message, on a missing bucket or bad credentials.
            let c = &self.c;
            super::bucket::check(c, &format!("checking bucket {}", c.cfg.bucket)).map_err(|e| match e.kind {
                K::NotFound => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("bucket {} does not exist on {}", c.cfg.bucket, c.cfg.endpoint),
                ),
                _ => to_io(e),
            })?;
        }
        Ok(dir_info())
    }

    fn read_dir(&self, path: &[u8]) -> io::Result<Vec<DirEntry>> {
        let prefix = Self::prefix_of(path);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.page(&prefix, Some("/"), &token)?;
            let encoding = page.encoding_type();
            for p in page.common_prefixes() {
                let raw = p.prefix().unwrap_or_default();
                let common = match listed::key(raw, encoding) {
                    Ok(k) => k,
                    Err(bytes) => {
                        out.push(undecodable_entry(raw, bytes.strip_suffix(b"/").unwrap_or(&bytes)));
                        continue;
                    }
                };
                let name = common.strip_prefix(prefix.as_str()).unwrap_or_default().trim_end_matches('/');
                if odd_segment(name) {
                    // `a//b`, `/x`, `./x`, `../x`: no path holds them; each object is reported.
                    out.extend(self.unmappable(&prefix, &common)?);
                } else {
                    out.push(DirEntry { name: name.as_bytes().to_vec(), info: Ok(dir_info()) });
                }
            }
            for o in page.contents() {
                let raw = o.key().unwrap_or_default();
                let key = match listed::key(raw, encoding) {
                    Ok(k) => k,
                    Err(bytes) => {
                        out.push(undecodable_entry(raw, &bytes));
                        continue;
                    }
                };
                let name = key.strip_prefix(prefix.as_str()).unwrap_or_default();
                if (name.is_empty() || name.ends_with('/')) && o.size().unwrap_or(0) == 0 {
                    continue; // "directory marker" objects
                }
                if name.ends_with('/') || odd_segment(name) {
                    out.push(unmappable_entry(name, &key, o.size().unwrap_or(0)));
                    continue;
                }
                let mtime_ns =
                    o.last_modified().map(|t| t.secs() * 1_000_000_000 + t.subsec_nanos() as i64).unwrap_or(0);
                let mut extra = vec![];
                if let Some(e) = o.e_tag() {
                    extra.push(("etag".to_string(), e.trim_matches('"').to_string()));
                }
                if let Some(s) = o.storage_class() {
                    extra.push(("storage_class".to_string(), s.as_str().to_string()));
                }
                let info = FileInfo {
                    kind: Some(FileKind::File),
                    mode: 0o100644,
                    size: o.size().unwrap_or(0).max(0) as u64,
                    mtime_ns,
                    nlink: 1,
                    extra,
                    ..Default::default()
                };
                out.push(DirEntry { name: name.as_bytes().to_vec(), info: Ok(info) });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        Ok(self.open_with_info(path)?.0)
    }

    fn open_with_info(&self, path: &[u8]) -> io::Result<Opened> {
        let c = &self.c;
        let key = String::from_utf8_lossy(path).trim_start_matches('/').to_string();
        let what = format!("reading {key}");
        let out = c
            .block_on(c.s3.get_object().bucket(&c.cfg.bucket).key(&key).customer_key(&c.cfg.sse).send())
            .map_err(|e| {
                // A missing or wrong SSE-C key would fail every object alike: stop the backup (exit 77).
                let every = refuses_every_object(&e, &c.cfg, &what);
                let err = classify(e, &c.cfg, &what);
                if every {
                    source_wide(io::ErrorKind::PermissionDenied, Error::Auth(err.message))
                } else {
                    to_io(err)
                }
            })?;
        let mut extra = vec![];
        if let Some(ct) = out.content_type() {
            extra.push(("content_type".to_string(), ct.to_string()));
        }
        let reader = BodyReader { rt: c.handle(), body: out.body, buf: bytes::Bytes::new() };
        Ok((Box::new(reader), extra))
    }
}

/// Reads an object's body as it arrives.
struct BodyReader {
    rt: tokio::runtime::Handle,
    body: ByteStream,
    buf: bytes::Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rt.block_on(self.body.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("reading object body: {e}")))
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}
