//! Whether the bucket is there, creating it, and warning when it keeps old versions.
//! Whether the bucket is there: HeadBucket's answers have no body, so a refusal only the
//! body explains (a wrong region, a plain-HTTP request to a TLS port) comes back as a bare
//! 400; the same question is then asked with a one-key ListObjectsV2, whose error says why.

use super::client::Client;
use super::errors::classify;
use crate::connectors::notice;
use crate::kloset::store::{StoreErrorKind, StoreResult};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

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

/// Creates the bucket in the configured region. Outside us-east-1, AWS (and moto) refuse a
/// CreateBucket without a LocationConstraint naming the region the request is signed for.
/// A bucket that is already there, ours, is fine.
pub fn create(c: &Client) -> StoreResult<()> {
    let mut req = c.s3.create_bucket().bucket(&c.cfg.bucket);
    if c.cfg.region != "us-east-1" {
        let lc = BucketLocationConstraint::from(c.cfg.region.as_str());
        req = req.create_bucket_configuration(CreateBucketConfiguration::builder().location_constraint(lc).build());
    }
    match c.block_on(req.send()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = classify(e, &c.cfg, &format!("creating bucket {}", c.cfg.bucket));
            if err.kind == StoreErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// Warns when the bucket keeps old versions: there, deleting a packfile (`rm` then
/// `maintenance`) only adds a delete marker and the space is never freed. Servers without
/// versioning (or that do not answer) are taken as unversioned.
pub fn warn_if_versioned(c: &Client) {
    let status = super::versions::status(c);
    if status == "Enabled" || status == "Suspended" {
        notice::warn(&format!(
            "bucket {} has versioning {}: objects this store deletes (by rm and maintenance) are kept as old \
             versions behind delete markers, whose space is never freed on its own; run `maintenance \
             -purge-versions` to delete them (or add a lifecycle rule that expires noncurrent versions and delete \
             markers under {}), or use an unversioned bucket",
            c.cfg.bucket,
            status.to_lowercase(),
            if c.cfg.prefix.is_empty() { "the bucket".to_string() } else { c.cfg.prefix.clone() }
        ));
    }
}
