//! Depth-first walk of a snapshot tree, in name order.

use crate::kloset::error::Result;
use crate::kloset::importer::join;
use crate::kloset::repo::Repository;
use crate::kloset::tree::Entry;

/// Calls `f(path, entry)` for `entry` and everything below it. `f` returning false skips
/// a directory's children.
pub fn walk(
    repo: &Repository,
    entry: &Entry,
    path: &[u8],
    f: &mut dyn FnMut(&[u8], &Entry) -> Result<bool>,
) -> Result<()> {
    if !f(path, entry)? {
        return Ok(());
    }
    if let Some(sub) = entry.subtree {
        for c in repo.tree(&sub)?.entries {
            walk(repo, &c, &join(path, &c.name), f)?;
        }
    }
    Ok(())
}
