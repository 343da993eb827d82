//! Diff: what changed between two entries of (possibly different) snapshots. Subtrees with
//! the same id are identical and are not opened.

use crate::kloset::error::Result;
use crate::kloset::importer::{join, FileKind};
use crate::kloset::repo::Repository;
use crate::kloset::tree::Entry;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    Modified(String),
}

pub fn diff(repo: &Repository, a: &Entry, b: &Entry, path: &[u8], out: &mut Vec<Change>) -> Result<()> {
    let show = || String::from_utf8_lossy(path).into_owned();
    if a.kind() != b.kind() {
        out.push(Change::Removed(show()));
        out.push(Change::Added(show()));
        return Ok(());
    }
    match a.kind() {
        FileKind::Dir => {
            if a.info.xattrs != b.info.xattrs {
                out.push(Change::Modified(show()));
            }
            if a.subtree == b.subtree {
                return Ok(());
            }
            let ta = a.subtree.map(|id| repo.tree(&id)).transpose()?.unwrap_or_default();
            let tb = b.subtree.map(|id| repo.tree(&id)).transpose()?.unwrap_or_default();
            let (mut i, mut j) = (0, 0);
            while i < ta.entries.len() || j < tb.entries.len() {
                let ord = match (ta.entries.get(i), tb.entries.get(j)) {
                    (Some(x), Some(y)) => x.name.cmp(&y.name),
                    (Some(_), None) => Ordering::Less,
                    _ => Ordering::Greater,
                };
                match ord {
                    Ordering::Less => {
                        out.push(Change::Removed(
                            String::from_utf8_lossy(&join(path, &ta.entries[i].name)).into_owned(),
                        ));
                        i += 1;
                    }
                    Ordering::Greater => {
                        out.push(Change::Added(String::from_utf8_lossy(&join(path, &tb.entries[j].name)).into_owned()));
                        j += 1;
                    }
                    Ordering::Equal => {
                        diff(repo, &ta.entries[i], &tb.entries[j], &join(path, &ta.entries[i].name), out)?;
                        i += 1;
                        j += 1;
                    }
                }
            }
        }
        _ => {
            let same = a.chunks == b.chunks
                && a.info.mode == b.info.mode
                && a.info.target == b.info.target
                && a.info.size == b.info.size
                && a.info.xattrs == b.info.xattrs
                && a.info.rdev == b.info.rdev;
            if !same {
                out.push(Change::Modified(show()));
            }
        }
    }
    Ok(())
}
