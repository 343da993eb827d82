//! Repair: list again what a lost state or a commit cut short left unlisted. Every
//! packfile carries its own sealed index, so the records of packfiles no state mentions can
//! be rebuilt from the store alone and published in a new state. Snapshots whose data is
//! incomplete then fail `check`, which names them, and can be removed with `rm`.

use crate::kloset::error::Result;
use crate::kloset::id::{PackId, SnapshotId};
use crate::kloset::packfile::{index_range, open_index, PackEntry, FOOTER_LEN};
use crate::kloset::repo::Repository;
use crate::kloset::state::{Record, State, MERGE};
use crate::kloset::store::Resource;
use std::collections::HashSet;

/// A packfile's index, or why it cannot be read.
pub type PackIndex = std::result::Result<Vec<PackEntry>, String>;

/// Packfiles in the store that no state lists and no maintenance marked for deletion, in
/// id order.
pub fn unlisted(repo: &Repository) -> Result<Vec<PackId>> {
    let indexed: HashSet<PackId> = repo.index.packs().iter().chain(repo.index.doomed()).copied().collect();
    let mut orphans: Vec<PackId> =
        repo.store.list(Resource::Packfile)?.into_iter().map(PackId).filter(|p| !indexed.contains(p)).collect();
    orphans.sort();
    Ok(orphans)
}

/// Reads a packfile's own sealed index (footer, then index: two ranged reads).
/// Err(Store) when the store fails; Ok(Err(why)) when the packfile is damaged.
pub fn pack_index(repo: &Repository, pack: &PackId) -> Result<PackIndex> {
    let store = &repo.store;
    let size = store.size(Resource::Packfile, &pack.0)?;
    if size < FOOTER_LEN as u64 {
        return Ok(Err("truncated".to_string()));
    }
    let footer = store.get(Resource::Packfile, &pack.0, Some((size - FOOTER_LEN as u64, FOOTER_LEN as u64)))?;
    Ok(match index_range(&footer, size) {
        Ok((off, len)) => open_index(&repo.keys, pack, &store.get(Resource::Packfile, &pack.0, Some((off, len)))?),
        Err(e) => Err(e),
    })
}

/// Packfiles no state lists, with their index.
pub fn unlisted_packs(repo: &Repository) -> Result<Vec<(PackId, PackIndex)>> {
    unlisted(repo)?.into_iter().map(|p| Ok((p, pack_index(repo, &p)?))).collect()
}

#[derive(Debug, Default)]
pub struct RepairReport {
    pub packs_relisted: usize,
    pub packs_unreadable: usize,
    pub snapshots_recovered: Vec<SnapshotId>,
    /// Lost states (lineage.rs) this repair accounted for.
    pub lost_states: usize,
}

/// Publishes the records of every readable unlisted packfile in one new state.
pub fn relist(repo: &Repository) -> Result<RepairReport> {
    relist_packs(repo, unlisted_packs(repo)?)
}

/// Publishes the records of the given readable packfiles in one new state.
pub fn relist_packs(repo: &Repository, packs: Vec<(PackId, PackIndex)>) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let mut blobs = Vec::new();
    for (pack, entries) in packs {
        let Ok(entries) = entries else {
            report.packs_unreadable += 1;
            continue;
        };
        report.packs_relisted += 1;
        for e in entries {
            if e.kind == crate::kloset::blob::BlobType::Snapshot {
                let id = SnapshotId(e.id.0);
                if !repo.index.has_snapshot_blob(&id) && !repo.index.deleted().contains(&id) {
                    report.snapshots_recovered.push(id);
                }
            }
            blobs.push(Record { kind: e.kind, id: e.id, pack, offset: e.offset, length: e.length });
        }
    }
    if !blobs.is_empty() || !repo.lost_states.is_empty() {
        // It also accounts for the lost states (lineage.rs): what their packfiles still
        // held is listed again here, and they are no longer reported. It names only them,
        // so the heads stay heads, and a later loss of one is still seen.
        let parents: Vec<_> = repo.lost_states.iter().map(|(lost, _)| *lost).collect();
        let flags = if parents.is_empty() { 0 } else { MERGE };
        report.lost_states = parents.len();
        repo.write_state(State {
            created: chrono::Utc::now().timestamp(),
            blobs,
            parents,
            flags,
            ..Default::default()
        })?;
    }
    Ok(report)
}
