//! Maintenance: find the blobs no live snapshot reaches, rewrite packfiles that hold any,
//! replace every state by one, then delete what is no longer referenced. It runs under the
//! exclusive lock and follows the protocol of docs/LOCKING.md:
//!
//! 1. Packfiles no state lists are leftovers of runs that did not commit (a full disk, a
//!    kill, a lock taken over), unless a state was lost (lineage.rs): then those holding
//!    a snapshot nobody removed may be the lost state's, and are listed again
//!    (recovered), never deleted.
//! 2. Live blobs are copied out of packfiles that also hold dead ones, and out of
//!    packfiles an earlier maintenance marked for deletion (a rescue: a snapshot that
//!    references such a blob keeps it).
//! 3. One new state is published through the lock: every live record, every removal, and
//!    the packfiles to delete ("doomed"). From then on no writer deduplicates against a
//!    doomed packfile. The lock is checked after the state lands: if it was taken over,
//!    nothing is deleted and the run fails.
//! 4. Only then are the old states and the doomed packfiles deleted. A crash at any point
//!    leaves every live blob reachable through some state whose packfile still exists.

use crate::kloset::blob::BlobType;
use crate::kloset::error::{Error, Result};
use crate::kloset::id::{BlobId, PackId, SnapshotId, StateId};
use crate::kloset::index::BlobKey;
use crate::kloset::ops::repair;
use crate::kloset::packer::Packer;
use crate::kloset::repo::Repository;
use crate::kloset::state::{Record, State, MERGE};
use crate::kloset::store::Resource;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// (id, type, offset, length) of a blob still reachable.
type LiveBlob = (BlobId, BlobType, u32, u32);

#[derive(Debug, Default)]
pub struct MaintenanceReport {
    pub live_blobs: u64,
    pub dropped_blobs: u64,
    pub packs_rewritten: u64,
    pub packs_deleted: u64,
    pub states_merged: u64,
    /// Snapshots found in packfiles no state listed (a lost state), listed again.
    pub snapshots_recovered: Vec<SnapshotId>,
    /// Live blobs copied out of packfiles marked for deletion by an earlier run.
    pub blobs_rescued: u64,
    /// Blobs a live snapshot needs that no packfile holds (damage `check` reports).
    pub blobs_missing: u64,
    /// Deletion was left for the next run: states appeared that this run did not read.
    pub deletion_deferred: bool,
}

fn reachable(repo: &Repository, missing: &mut u64) -> Result<HashSet<BlobKey>> {
    let mut live = HashSet::new();
    let mut trees = Vec::new();
    let mut snaps = repo.index.snapshots();
    snaps.sort();
    for id in snaps {
        live.insert((BlobType::Snapshot, id.as_blob()));
        trees.push(repo.header(&id)?.root);
    }
    while let Some(t) = trees.pop() {
        if !live.insert((BlobType::Tree, t)) {
            continue; // shared subtree, already walked
        }
        let tree = match repo.tree(&t) {
            Ok(tree) => tree,
            // A damaged or missing tree: what it reaches cannot be known, so nothing that
            // could be it is dropped (its packfile is kept: see `maintenance`).
            Err(Error::Corrupt(_)) => {
                *missing += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        for e in tree.entries {
            live.extend(e.chunks.iter().map(|c| (BlobType::Chunk, *c)));
            if let Some(s) = e.subtree {
                trees.push(s);
            }
        }
    }
    Ok(live)
}

/// When a state was lost (a counted state names it, and it is gone), unlisted packfiles
/// that hold a snapshot no state lists and nobody removed may be its: they are listed
/// again before anything else is decided. Without a lost state, they are what a commit
/// that did not finish left, and are deleted like any leftover.
fn recover_lost_states(repo: &Repository, report: &mut MaintenanceReport) -> Result<Option<Repository>> {
    if !repo.may_have_lost_states() {
        return Ok(None);
    }
    let mut recover = Vec::new();
    for (pack, entries) in repair::unlisted_packs(repo)? {
        let Ok(list) = &entries else { continue };
        let holds_live_snapshot = list.iter().any(|e| {
            let id = SnapshotId(e.id.0);
            e.kind == BlobType::Snapshot && !repo.index.deleted().contains(&id) && !repo.index.has_snapshot_blob(&id)
        });
        if holds_live_snapshot {
            recover.push((pack, entries));
        }
    }
    if recover.is_empty() {
        return Ok(None);
    }
    let r = repair::relist_packs(repo, recover)?;
    report.snapshots_recovered = r.snapshots_recovered;
    Ok(Some(repo.reload()?))
}

/// The records of live blobs left where they are.
fn records(pack: PackId, blobs: &[LiveBlob]) -> impl Iterator<Item = Record> + '_ {
    blobs.iter().map(move |&(id, kind, offset, length)| Record { kind, id, pack, offset, length })
}

/// Deletes an object; one already gone (another maintenance got there first) is fine.
fn delete(repo: &Repository, res: Resource, id: &[u8; 32]) -> Result<()> {
    match repo.store.delete(res, id) {
        Err(e) if e.kind != crate::kloset::store::StoreErrorKind::NotFound => Err(Error::Store(e)),
        _ => Ok(()),
    }
}

pub fn maintenance(repo: &Repository) -> Result<MaintenanceReport> {
    let mut report = MaintenanceReport::default();
    let reloaded = recover_lost_states(repo, &mut report)?;
    let repo = reloaded.as_ref().unwrap_or(repo);
    let present: BTreeSet<PackId> = repo.store.list(Resource::Packfile)?.into_iter().map(PackId).collect();
    let doomed_before: BTreeSet<PackId> = repo.index.doomed().iter().filter(|p| present.contains(p)).copied().collect();
    let indexed: HashSet<PackId> = repo.index.packs().iter().copied().collect();
    // Leftovers of interrupted runs (lost states were recovered above).
    let orphans: Vec<PackId> =
        present.iter().filter(|p| !indexed.contains(p) && !doomed_before.contains(p)).copied().collect();
    let live = reachable(repo, &mut report.blobs_missing)?;

    // Per packfile: its live blobs and how many dead ones it holds.
    let mut by_pack: BTreeMap<PackId, (Vec<LiveBlob>, usize)> = BTreeMap::new();
    for (id, loc) in repo.index.entries() {
        let e = by_pack.entry(loc.pack).or_default();
        if live.contains(&(loc.kind, id)) {
            e.0.push((id, loc.kind, loc.offset, loc.length));
        } else {
            e.1 += 1;
        }
    }
    // Blobs a snapshot reaches that the index has nowhere, or only in a doomed packfile:
    // look for them in the own indexes of doomed and unlisted packfiles (a recovered
    // snapshot's data) and copy them out.
    let mut wanted: HashSet<BlobKey> = live.iter().filter(|(k, id)| !repo.index.usable(*k, id)).copied().collect();
    let mut rescue: BTreeMap<PackId, Vec<LiveBlob>> = BTreeMap::new();
    if !wanted.is_empty() {
        for pack in doomed_before.iter().chain(&orphans) {
            let Ok(Ok(entries)) = repair::pack_index(repo, pack) else { continue };
            for e in entries {
                if wanted.remove(&(e.kind, e.id)) {
                    rescue.entry(*pack).or_default().push((e.id, e.kind, e.offset, e.length));
                }
            }
        }
        report.blobs_missing += wanted.len() as u64;
    }
    let mut keep: Vec<Record> = Vec::new();
    let mut doomed: BTreeSet<PackId> = doomed_before.clone();
    let empty = crate::kloset::index::Index::default();
    let packer =
        Packer::new(repo.store.clone(), repo.keys.clone(), &empty, None, repo.config.packfile_max_size, repo.uploaders);
    let mut copies: BTreeMap<PackId, Vec<LiveBlob>> = rescue.clone();
    for (pack, (blobs, dead)) in &by_pack {
        if doomed_before.contains(pack) {
            // Marked by an earlier run: live blobs there were rescued above.
            report.dropped_blobs += (blobs.len() + dead) as u64;
            continue;
        }
        if !present.contains(pack) {
            // Already gone (damage): live records are kept, so that `check` keeps naming
            // the missing packfile; dead ones are dropped.
            report.blobs_missing += blobs.len() as u64;
            report.dropped_blobs += *dead as u64;
            keep.extend(records(*pack, blobs));
            continue;
        }
        report.dropped_blobs += *dead as u64;
        report.live_blobs += blobs.len() as u64;
        if *dead == 0 {
            keep.extend(records(*pack, blobs));
            continue;
        }
        doomed.insert(*pack);
        if !blobs.is_empty() {
            report.packs_rewritten += 1;
            copies.entry(*pack).or_default().extend(blobs.iter().copied());
        }
    }
    report.blobs_rescued = rescue.values().map(|v| v.len() as u64).sum();
    for (pack, blobs) in copies.iter_mut() {
        // In packfile order: one sequential read, and the same new packfiles every time.
        blobs.sort_by_key(|b| b.2);
        let blobs = &*blobs;
        let data = repo.store.get(Resource::Packfile, &pack.0, None)?;
        for &(id, kind, offset, length) in blobs {
            let (s, e) = (offset as usize, offset as usize + length as usize);
            let bytes = data
                .get(s..e)
                .ok_or_else(|| Error::Corrupt(format!("packfile {} is truncated; run check", pack.short())))?;
            packer.add_encoded(kind, id, bytes)?;
        }
    }
    keep.extend(packer.finish()?);
    doomed.extend(orphans.iter().copied());
    if report.blobs_missing > 0 {
        // Something a snapshot needs could not be found: keep every packfile that might
        // hold it (dropping nothing is always safe); `check` names the damage.
        doomed.retain(|p| by_pack.get(p).is_none_or(|(_, dead)| *dead == 0) && !orphans.contains(p));
    }
    if doomed.is_empty()
        && repo.states.len() <= 1
        && repo.ignored_states.is_empty()
        && report.snapshots_recovered.is_empty()
    {
        return Ok(report);
    }
    let mut deleted: Vec<SnapshotId> = repo.index.deleted().iter().copied().collect();
    deleted.sort();
    let state = State {
        created: chrono::Utc::now().timestamp(),
        blobs: keep,
        deleted,
        doomed: doomed.iter().copied().collect(),
        // It replaces every state it read, and accounts for every state those name (but
        // lost ones): all deleted on purpose, not lost, even if this sweep is cut short.
        parents: {
            let mut p: Vec<StateId> = repo.states.iter().chain(&repo.lineage_named).copied().collect();
            p.sort();
            p.dedup();
            p
        },
        flags: MERGE,
    };
    // The commit point: published through the lock and checked after it lands.
    let new_state = repo.write_state(state)?;
    // States that appeared since this run read the index (a run that took this one's lock
    // over after the check above) were written by runs that saw the doomed list; still,
    // when any appeared, deleting is left for the next run.
    let read: HashSet<StateId> = repo.states.iter().chain(&repo.ignored_states).copied().chain([new_state]).collect();
    let now: Vec<StateId> = repo.store.list(Resource::State)?.into_iter().map(StateId).collect();
    if now.iter().any(|s| !read.contains(s)) {
        report.deletion_deferred = true;
        return Ok(report);
    }
    // Old states, and states of runs whose lock was taken over that do not count.
    for s in repo.states.iter().chain(&repo.ignored_states) {
        if *s != new_state {
            delete(repo, Resource::State, &s.0)?;
            report.states_merged += 1;
        }
    }
    for p in &doomed {
        delete(repo, Resource::Packfile, &p.0)?;
        report.packs_deleted += 1;
    }
    Ok(report)
}
