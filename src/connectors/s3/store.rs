//! A store in a bucket, under an optional prefix, with the fs store's layout. Objects are
//! single PUTs (atomic on S3) or, from `MULTIPART_THRESHOLD` on, completed multipart uploads.
//! Reads use ranged GETs. Garage ignores conditional PUTs, so `create` checks for CONFIG
//! first rather than relying on If-None-Match.

use super::class;
use super::client::Client;
use super::config::S3Config;
use super::errors::classify;
use super::sse::{WithCustomerKey, WithSse};
use crate::connectors::notice;
use crate::kloset::store::{Content, Purged, Resource, Store, StoreError, StoreErrorKind as K, StoreResult};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};

/// The one size from which objects (packfiles, and files restored into a bucket) go by
/// multipart upload; below it, one PUT.
pub const MULTIPART_THRESHOLD: usize = 64 << 20;
pub const PART_SIZE: usize = 16 << 20;
/// AWS's limit for one PUT: past it, a server whose multipart is broken cannot take the
/// object at all.
pub const SINGLE_PUT_MAX: u64 = 5 << 30;

pub struct S3Store {
    c: Client,
}

/// How many times one GET is sent when its body is cut part-way.
const BODY_ATTEMPTS: u32 = 5;

/// A GET whose reply started but whose body was cut: worth sending again.
struct BodyCut(StoreError);

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
                super::bucket::create(c)
            }
        }
    }

    /// Reads an object or a range of it. The SDK retries a request that fails before its
    /// reply starts; a body cut part-way (a reset connection, a proxy timing out) is retried
    /// here, a bounded number of times with backoff, since store objects never change. A
    /// body shorter than its Content-Length counts as cut.
    fn get_key(&self, key: &str, range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        if range.is_some_and(|(_, len)| len == 0) {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            match self.get_key_once(key, range) {
                Err(BodyCut(_)) if attempt + 1 < BODY_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
                }
                Err(BodyCut(e)) => return Err(e),
                Ok(r) => return r,
            }
        }
    }

    /// One GET: `Err(BodyCut)` when the reply started but its body could not be read whole.
    fn get_key_once(&self, key: &str, range: Option<(u64, u64)>) -> Result<StoreResult<Vec<u8>>, BodyCut> {
        let c = &self.c;
        let mut req = c.s3.get_object().bucket(&c.cfg.bucket).key(key).customer_key(&c.cfg.sse);
        if let Some((off, len)) = range {
            req = req.range(format!("bytes={}-{}", off, off + len - 1));
        }
        // The request runs as a task of the runtime, body included, and only its end wakes
        // this thread: blocking on it here instead would hand each frame of the body from
        // the runtime's threads to this one (a wake-up per frame, for every reader).
        let task = c.handle().spawn(async move {
            let out = req.send().await?;
            let expected = out.content_length().and_then(|n| u64::try_from(n).ok());
            Ok((expected, out.body.collect().await))
        });
        let (expected, body) = match c.block_on(task) {
            Ok(Ok(got)) => got,
            Ok(Err(e)) => return Ok(Err(classify(e, &c.cfg, &format!("reading {key}")))),
            Err(e) => match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(e) => return Ok(Err(StoreError::new(K::Transient, format!("reading {key}: {e}")))),
            },
        };
        let cut = |why: String| {
            BodyCut(StoreError::new(
                K::Transient,
                format!("reading {key} from {}: {why} (after {BODY_ATTEMPTS} attempts)", c.cfg.endpoint),
            ))
        };
        // Joined here, on the reader, rather than on one of the runtime's two threads; into
        // a Vec without a copy when the body came as one buffer (`From<Bytes>`).
        let body = Vec::from(body.map_err(|e| cut(e.to_string()))?.into_bytes());
        let got = body.len() as u64;
        if expected.is_some_and(|n| n != got) {
            return Err(cut(format!("the reply held {got} of {} bytes", expected.unwrap_or(0))));
        }
        // A server that ignores Range sends the whole object: its bytes are not the range's.
        if let Some((off, len)) = range.filter(|&(_, len)| got > len) {
            return Ok(Err(StoreError::new(
                K::Unsupported,
                format!(
                    "reading {key} from {}: asked for {len} bytes at {off}, the server sent {got}; it does not \
                     honour Range headers, which reading a store needs: use another S3 server or gateway",
                    c.cfg.endpoint
                ),
            )));
        }
        Ok(Ok(body))
    }

    /// Writes an object with a storage class: one PUT below `MULTIPART_THRESHOLD`, else a
    /// multipart upload; a server whose multipart replies cannot be read gets one PUT.
    pub fn put_key(c: &Client, key: &str, data: &[u8], class: StorageClass) -> StoreResult<()> {
        if data.len() < MULTIPART_THRESHOLD {
            return single_put(c, key, data.to_vec(), class);
        }
        let mut parts = data.chunks(PART_SIZE).map(|p| Ok(p.to_vec()));
        match multipart(c, key, &mut parts, class.clone()) {
            Err(Multipart::Malformed(e)) if data.len() as u64 <= SINGLE_PUT_MAX => {
                notice::warn(&format!("{e}; writing it with one PUT instead"));
                single_put(c, key, data.to_vec(), class)
            }
            Err(e) => Err(e.into()),
            Ok(()) => Ok(()),
        }
    }
}

/// One PUT, atomic on S3.
pub fn single_put(c: &Client, key: &str, data: Vec<u8>, class: StorageClass) -> StoreResult<()> {
    let req =
        c.s3.put_object()
            .bucket(&c.cfg.bucket)
            .key(key)
            .storage_class(class)
            .sse(&c.cfg.sse)
            .body(ByteStream::from(data));
    c.block_on(req.send()).map(|_| ()).map_err(|e| classify(e, &c.cfg, &format!("writing {key}")))
}

/// Why a multipart upload failed: `Malformed` when the server answered with success but a
/// reply the SDK could not read (rclone's CreateMultipartUpload): a single PUT may still work.
pub enum Multipart {
    Malformed(StoreError),
    Failed(StoreError),
}

impl From<Multipart> for StoreError {
    fn from(m: Multipart) -> StoreError {
        match m {
            Multipart::Malformed(e) | Multipart::Failed(e) => e,
        }
    }
}

fn sort<E>(e: SdkError<E, HttpResponse>, c: &Client, what: &str, step: &str) -> Multipart
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let ok_status = e.raw_response().is_some_and(|r| r.status().is_success());
    let err = classify(e, &c.cfg, what);
    if ok_status {
        let msg =
            format!("{what}: {} answered {step} with a reply that cannot be read ({})", c.cfg.endpoint, err.message);
        Multipart::Malformed(StoreError::new(K::Other, msg))
    } else {
        Multipart::Failed(err)
    }
}

/// Uploads `parts` as one object; aborts the upload on any failure so no part lingers.
pub fn multipart(
    c: &Client,
    key: &str,
    parts: &mut dyn Iterator<Item = std::io::Result<Vec<u8>>>,
    class: StorageClass,
) -> Result<(), Multipart> {
    let what = format!("writing {key}");
    let up = c
        .block_on(
            c.s3.create_multipart_upload().bucket(&c.cfg.bucket).key(key).storage_class(class).sse(&c.cfg.sse).send(),
        )
        .map_err(|e| sort(e, c, &what, "CreateMultipartUpload"))?;
    let Some(upload_id) = up.upload_id().filter(|u| !u.is_empty()).map(str::to_string) else {
        let msg = format!("{what}: {} answered CreateMultipartUpload without an upload id", c.cfg.endpoint);
        return Err(Multipart::Malformed(StoreError::new(K::Other, msg)));
    };
    let res: Result<(), Multipart> = (|| {
        let mut done = Vec::new();
        for (i, part) in parts.enumerate() {
            let part = part.map_err(|e| {
                Multipart::Failed(StoreError::new(K::Other, format!("{what}: reading the source: {e}")))
            })?;
            let n = i as i32 + 1;
            let out = c
                .block_on(
                    c.s3.upload_part()
                        .bucket(&c.cfg.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(n)
                        .customer_key(&c.cfg.sse)
                        .body(ByteStream::from(part))
                        .send(),
                )
                .map_err(|e| sort(e, c, &what, "UploadPart"))?;
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
        .map_err(|e| sort(e, c, &what, "CompleteMultipartUpload"))
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
        super::bucket::warn_if_versioned(&self.c);
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
        Self::put_key(&self.c, &self.c.key("CONFIG"), config, class::for_content("", Content::Metadata))
    }

    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        // One PUT replaces an object atomically.
        Self::put_key(&self.c, &self.c.key("CONFIG"), config, class::for_content("", Content::Metadata))
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
        self.put_hinted(res, id, data, Content::Metadata)
    }

    fn put_hinted(&self, res: Resource, id: &[u8; 32], data: &[u8], content: Content) -> StoreResult<()> {
        let class = class::for_content(&self.c.cfg.storage_class, content);
        Self::put_key(&self.c, &self.c.key(&Self::rel(res, id)), data, class)
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

    fn keeps_versions(&self) -> StoreResult<bool> {
        Ok(super::versions::kept(&self.c))
    }

    fn purge_versions(&self) -> StoreResult<Purged> {
        super::versions::purge(&self.c)
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let c = &self.c;
        let key = c.key(&Self::rel(res, id));
        let what = format!("reading {key}");
        match c.block_on(c.s3.head_object().bucket(&c.cfg.bucket).key(&key).customer_key(&c.cfg.sse).send()) {
            Ok(out) => Ok(out.content_length().unwrap_or(0).max(0) as u64),
            // HEAD replies have no body: a bare 400 (a missing or wrong SSE-C key on Garage)
            // says nothing, so ask with a one-byte GET, whose reply says why.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 400) => {
                let req = c.s3.get_object().bucket(&c.cfg.bucket).key(&key).range("bytes=0-0").customer_key(&c.cfg.sse);
                let out = c.block_on(req.send()).map_err(|e| classify(e, &c.cfg, &what))?;
                let total = out.content_range().and_then(|r| r.rsplit('/').next()).and_then(|n| n.parse().ok());
                total.ok_or_else(|| classify(e, &c.cfg, &what))
            }
            Err(e) => Err(classify(e, &c.cfg, &what)),
        }
    }
}
