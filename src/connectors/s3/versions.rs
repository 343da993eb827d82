//! Old versions in a versioned bucket: whether the bucket keeps them, and deleting those of
//! this store's own objects (CONFIG, packfiles/, states/, locks/, keys/ under its prefix; never
//! another key of the bucket). Invariant: a current version is never deleted. Old versions
//! go first, then delete markers: a marker is deleted only once no old version of its key
//! that was listed remains behind it, so deleting it cannot bring an object back.

use super::client::Client;
use super::errors::classify;
use crate::kloset::store::{Purged, Resource, StoreErrorKind as K, StoreResult};

/// The bucket's versioning status as the server gives it ("Enabled", "Suspended", or empty
/// for a bucket that never had versioning, or a server without it).
pub fn status(c: &Client) -> String {
    match c.block_on(c.s3.get_bucket_versioning().bucket(&c.cfg.bucket).send()) {
        Ok(out) => out.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        // moto names the reply's root element GetBucketVersioningResponse, not AWS's
        // VersioningConfiguration, and the SDK refuses it: read <Status> from the body.
        Err(e) => e
            .raw_response()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.body().bytes())
            .map(|b| status_element(&String::from_utf8_lossy(b)))
            .unwrap_or_default(),
    }
}

fn status_element(body: &str) -> String {
    let Some(start) = body.find("<Status>").map(|i| i + "<Status>".len()) else { return String::new() };
    body[start..].split('<').next().unwrap_or_default().trim().to_string()
}

/// Enabled now, or suspended after it was: old versions may be there either way.
pub fn kept(c: &Client) -> bool {
    matches!(status(c).as_str(), "Enabled" | "Suspended")
}

/// One entry of ListObjectVersions.
struct Entry {
    key: String,
    version: String,
}

/// The old versions and the delete markers under `prefix` (keys equal to it only, when
/// `exact`).
fn list(c: &Client, prefix: &str, exact: bool) -> StoreResult<(Vec<Entry>, Vec<Entry>)> {
    let (mut old, mut markers) = (Vec::new(), Vec::new());
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    let ours = |k: &str| if exact { k == prefix } else { k.starts_with(prefix) };
    loop {
        let req =
            c.s3.list_object_versions()
                .bucket(&c.cfg.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take());
        let page =
            c.block_on(req.send()).map_err(|e| classify(e, &c.cfg, &format!("listing old versions under {prefix}")))?;
        for v in page.versions() {
            if let (Some(key), Some(version), Some(false)) = (v.key(), v.version_id(), v.is_latest()) {
                if ours(key) {
                    old.push(Entry { key: key.to_string(), version: version.to_string() });
                }
            }
        }
        for m in page.delete_markers() {
            if let (Some(key), Some(version)) = (m.key(), m.version_id()) {
                if ours(key) {
                    markers.push(Entry { key: key.to_string(), version: version.to_string() });
                }
            }
        }
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    Ok((old, markers))
}

fn delete(c: &Client, e: &Entry) -> StoreResult<()> {
    let req = c.s3.delete_object().bucket(&c.cfg.bucket).key(&e.key).version_id(&e.version);
    match c.block_on(req.send()) {
        Ok(_) => Ok(()),
        Err(err) => match classify(err, &c.cfg, &format!("deleting old version {} of {}", e.version, e.key)) {
            gone if gone.kind == K::NotFound => Ok(()),
            err => Err(err),
        },
    }
}

/// Deletes the old versions and delete markers of this store's objects.
pub fn purge(c: &Client) -> StoreResult<Purged> {
    let mut all_old = Vec::new();
    let mut all_markers = Vec::new();
    let (old, markers) = list(c, &c.key("CONFIG"), true)?;
    all_old.extend(old);
    all_markers.extend(markers);
    for res in [Resource::Packfile, Resource::State, Resource::Lock, Resource::Key] {
        let (old, markers) = list(c, &c.key(&format!("{}/", res.dir())), false)?;
        all_old.extend(old);
        all_markers.extend(markers);
    }
    // Any failure stops here, before a marker whose old versions are still there is deleted.
    for e in &all_old {
        delete(c, e)?;
    }
    for e in &all_markers {
        delete(c, e)?;
    }
    Ok(Purged { versions: all_old.len() as u64, markers: all_markers.len() as u64 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_is_read_from_either_root_element() {
        let moto = "<GetBucketVersioningResponse><Status>Enabled</Status></GetBucketVersioningResponse>";
        assert_eq!(super::status_element(moto), "Enabled");
        assert_eq!(super::status_element("<VersioningConfiguration/>"), "");
    }
}
