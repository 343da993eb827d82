//! Repair: list again what a lost state or a commit cut short left unlisted. Every
//! packfile carries its own sealed index, so the records of packfiles no state mentions can
//! be rebuilt from the store alone and published in a new state. Snapshots whose data is
//! incomplete then fail `check`, which names them, and can be removed with `rm`.

use crate::kloset::error::Result;
use crate::kloset::id::{PackId, SnapshotId};
use crate::kloset::packfile::{index_range, open_index, PackEntry, FOOTER_LEN};
use crate::kloset::repo::Repository;
use crate::kloset::state::{Record, State};
use crate::kloset::store::Resource;
use std::collections::HashSet;

/// A packfile's index, or why it cannot be read.
pub type PackIndex = std::result::Result<Vec<PackEntry>, String>;

/// Packfiles no state lists, with their index.
pub fn unlisted_packs(repo: &Repository) -> Result<Vec<(PackId, PackIndex)>> {
    let indexed: HashSet<PackId> = repo.index.packs().iter().copied().collect();
    let orphans: Vec<PackId> =
        repo.store.list(Resource::Packfile)?.into_iter().map(PackId).filter(|p| !indexed.contains(p)).collect();
    let store = &repo.store;
    let mut out = Vec::with_capacity(orphans.len());
    for pack in orphans {
        let size = store.size(Resource::Packfile, &pack.0)?;
        if size < FOOTER_LEN as u64 {
            out.push((pack, Err("truncated".to_string())));
            continue;
        }
        let footer = store.get(Resource::Packfile, &pack.0, Some((size - FOOTER_LEN as u64, FOOTER_LEN as u64)))?;
        let entries = match index_range(&footer, size) {
            Ok((off, len)) => open_index(&repo.keys, &pack, &store.get(Resource::Packfile, &pack.0, Some((off, len)))?),
            Err(e) => Err(e),
        };
        out.push((pack, entries));
    }
    Ok(out)
}

#[derive(Debug, Default)]
pub struct RepairReport {
    pub packs_relisted: usize,
    pub packs_unreadable: usize,
    pub snapshots_recovered: Vec<SnapshotId>,
}

/// Publishes the records of every readable unlisted packfile in one new state.
pub fn relist(repo: &Repository) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let mut blobs = Vec::new();
    for (pack, entries) in unlisted_packs(repo)? {
        let Ok(entries) = entries else {
            report.packs_unreadable += 1;
            continue;
        };
        report.packs_relisted += 1;
        for e in entries {
            if e.kind == crate::kloset::blob::BlobType::Snapshot {
                let id = SnapshotId(e.id.0);
                if !repo.index.contains(&e.id) && !repo.index.deleted().contains(&id) {
                    report.snapshots_recovered.push(id);
                }
            }
            blobs.push(Record { kind: e.kind, id: e.id, pack, offset: e.offset, length: e.length });
        }
    }
    if !blobs.is_empty() {
        repo.write_state(&State { created: chrono::Utc::now().timestamp(), blobs, deleted: vec![] })?;
    }
    Ok(report)
}
