//! Locate: which snapshots hold a path whose name matches a glob.

use crate::kloset::error::Result;
use crate::kloset::id::SnapshotId;
use crate::kloset::repo::Repository;
use crate::kloset::snapshot::Header;
use crate::kloset::walk::walk;

pub fn locate(
    repo: &Repository,
    headers: &[Header],
    pattern: &globset::GlobMatcher,
) -> Result<Vec<(SnapshotId, String)>> {
    let mut out = Vec::new();
    for h in headers {
        let root = repo.lookup(h, b"/")?;
        walk(repo, &root, b"", &mut |path, e| {
            if pattern.is_match(e.name_lossy()) || pattern.is_match(String::from_utf8_lossy(path).as_ref()) {
                out.push((h.id, String::from_utf8_lossy(path).into_owned()));
            }
            Ok(true)
        })?;
    }
    Ok(out)
}
