//! A store in a bucket, under an optional prefix, with the fs store's layout. Objects are
//! single PUTs (atomic on S3) or, past `MULTIPART_THRESHOLD`, completed multipart uploads.
//! Reads use ranged GETs. Garage ignores conditional PUTs, so `create` checks for CONFIG
//! first rather than relying on If-None-Match.

use super::client::Client;
use super::config::S3Config;
use super::errors::classify;
use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind as K, StoreResult};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};

pub const MULTIPART_THRESHOLD: usize = 64 << 20;
pub const PART_SIZE: usize = 16 << 20;

pub struct S3Store {
    c: Client,
}

impl S3Store {
    pub fn new(cfg: S3Config) -> std::io::Result<Self> {
        Ok(Self { c: Client::new(cfg)? })
    }

    fn rel(res: Resource, id: &[u8; 32]) -> String {
        if res.sharded() {
            format!("{}/{}/{}", res.dir(), hex::encode(&id[..1]), hex::encode(id))
        } else {
            format!("{}/{}", res.dir(), hex::encode(id))
        }
    }

    fn ensure_bucket(&self) -> StoreResult<()> {
        let c = &self.c;
        match super::bucket::check(c, "checking the bucket") {
            Ok(_) => Ok(()),
            Err(err) => {
                if err.kind != K::NotFound {
                    return Err(err);
                }
                match c.block_on(c.s3.create_bucket().bucket(&c.cfg.bucket).send()) {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err = classify(e, &c.cfg, &format!("creating bucket {}", c.cfg.bucket));
                        if err.kind == K::AlreadyExists {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
        }
    }

    fn get_key(&self, key: &str, range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let c = &self.c;
        if range.is_some_and(|(_, len)| len == 0) {
            return Ok(Vec::new());
        }
        let mut req = c.s3.get_object().bucket(&c.cfg.bucket).key(key);
        if let Some((off, len)) = range {
            req = req.range(format!("bytes={}-{}", off, off + len - 1));
        }
        c.block_on(async {
            let out = req.send().await.map_err(|e| classify(e, &c.cfg, &format!("reading {key}")))?;
            let body =
                out.body.collect().await.map_err(|e| {
                    StoreError::new(K::Transient, format!("reading {key} from {}: {e}", c.cfg.endpoint))
                })?;
            Ok(body.into_bytes().to_vec())
        })
    }

    /// Writes an object; `bulk` objects (packfiles, restored files) take the configured
    /// storage class, the small ones read often (CONFIG, states, locks) stay STANDARD.
    pub fn put_key(c: &Client, key: &str, data: &[u8], bulk: bool) -> StoreResult<()> {
        let class = storage_class(c, bulk);
        if data.len() < MULTIPART_THRESHOLD {
            let req =
                c.s3.put_object()
                    .bucket(&c.cfg.bucket)
                    .key(key)
                    .storage_class(class)
                    .body(ByteStream::from(data.to_vec()));
            return c.block_on(req.send()).map(|_| ()).map_err(|e| classify(e, &c.cfg, &format!("writing {key}")));
        }
        let mut parts = data.chunks(PART_SIZE).map(|p| Ok(p.to_vec()));
        multipart(c, key, &mut parts, bulk)
    }
}

fn storage_class(c: &Client, bulk: bool) -> StorageClass {
    StorageClass::from(if bulk { c.cfg.storage_class.as_str() } else { "STANDARD" })
}

/// Uploads `parts` as one object; aborts the upload on any failure so no part lingers.
pub fn multipart(
    c: &Client,
    key: &str,
    parts: &mut dyn Iterator<Item = std::io::Result<Vec<u8>>>,
    bulk: bool,
) -> StoreResult<()> {
    let what = format!("writing {key}");
    let class = storage_class(c, bulk);
    let up = c
        .block_on(c.s3.create_multipart_upload().bucket(&c.cfg.bucket).key(key).storage_class(class).send())
        .map_err(|e| classify(e, &c.cfg, &what))?;
    let upload_id = up.upload_id().unwrap_or_default().to_string();
    let res: StoreResult<()> = (|| {
        let mut done = Vec::new();
        for (i, part) in parts.enumerate() {
            let part = part.map_err(|e| StoreError::new(K::Other, format!("{what}: reading the source: {e}")))?;
            let n = i as i32 + 1;
            let out = c
                .block_on(
                    c.s3.upload_part()
                        .bucket(&c.cfg.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(n)
                        .body(ByteStream::from(part))
                        .send(),
                )
                .map_err(|e| classify(e, &c.cfg, &what))?;
            done.push(CompletedPart::builder().part_number(n).set_e_tag(out.e_tag().map(str::to_string)).build());
        }
        let parts = CompletedMultipartUpload::builder().set_parts(Some(done)).build();
        c.block_on(
            c.s3.complete_multipart_upload()
                .bucket(&c.cfg.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(parts)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| classify(e, &c.cfg, &what))
    })();
    if res.is_err() {
        let _ = c.block_on(c.s3.abort_multipart_upload().bucket(&c.cfg.bucket).key(key).upload_id(&upload_id).send());
    }
    res
}

impl Store for S3Store {
    fn location(&self) -> String {
        self.c.cfg.display()
    }

    fn remote(&self) -> bool {
        true
    }

    fn create(&self, config: &[u8]) -> StoreResult<()> {
        self.ensure_bucket()?;
        match self.open() {
            Ok(_) => {
                return Err(StoreError::new(
                    K::AlreadyExists,
                    format!("{}: bucket already initialized", self.location()),
                ))
            }
            Err(e) if e.kind == K::NotFound => {}
            Err(e) => return Err(e),
        }
        Self::put_key(&self.c, &self.c.key("CONFIG"), config, false)
    }

    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        // One PUT replaces an object atomically.
        Self::put_key(&self.c, &self.c.key("CONFIG"), config, false)
    }

    fn open(&self) -> StoreResult<Vec<u8>> {
        self.get_key(&self.c.key("CONFIG"), None)
    }

    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        let c = &self.c;
        let prefix = c.key(&format!("{}/", res.dir()));
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req =
                c.s3.list_objects_v2().bucket(&c.cfg.bucket).prefix(&prefix).set_continuation_token(token.clone());
            let page = c.block_on(req.send()).map_err(|e| classify(e, &c.cfg, &format!("listing {prefix}")))?;
            for o in page.contents() {
                let name = o.key().unwrap_or_default().rsplit('/').next().unwrap_or_default();
                if let Some(id) = hex::decode(name).ok().and_then(|v| <[u8; 32]>::try_from(v).ok()) {
                    out.push(id);
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        self.get_key(&self.c.key(&Self::rel(res, id)), range)
    }

    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        Self::put_key(&self.c, &self.c.key(&Self::rel(res, id)), data, res == Resource::Packfile)
    }

    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        let c = &self.c;
        let key = c.key(&Self::rel(res, id));
        match c.block_on(c.s3.delete_object().bucket(&c.cfg.bucket).key(&key).send()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = classify(e, &c.cfg, &format!("deleting {key}"));
                if err.kind == K::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let c = &self.c;
        let key = c.key(&Self::rel(res, id));
        let out = c
            .block_on(c.s3.head_object().bucket(&c.cfg.bucket).key(&key).send())
            .map_err(|e| classify(e, &c.cfg, &format!("reading {key}")))?;
        Ok(out.content_length().unwrap_or(0).max(0) as u64)
    }
}
