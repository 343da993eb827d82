//! Whether the bucket is there. HeadBucket's answers have no body, so a refusal only the
//! body explains (a wrong region, a plain-HTTP request to a TLS port) comes back as a bare
//! 400; the same question is then asked with a one-key ListObjectsV2, whose error says why.

use super::client::Client;
use super::errors::classify;
use crate::kloset::store::StoreResult;

pub fn check(c: &Client, what: &str) -> StoreResult<()> {
    let Err(e) = c.block_on(c.s3.head_bucket().bucket(&c.cfg.bucket).send()) else {
        return Ok(());
    };
    let bare_400 = e.raw_response().is_some_and(|r| r.status().as_u16() == 400);
    let err = classify(e, &c.cfg, what);
    if !bare_400 {
        return Err(err);
    }
    match c.block_on(c.s3.list_objects_v2().bucket(&c.cfg.bucket).max_keys(1).send()) {
        Ok(_) => Err(err),
        Err(e) => Err(classify(e, &c.cfg, what)),
    }
}
