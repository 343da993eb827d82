//! Maintenance: find the blobs no live snapshot reaches, rewrite packfiles that hold any,
//! replace every state by one, then delete what is no longer referenced. Runs under the
//! exclusive lock, so packfiles that no state names are leftovers of interrupted backups.
//!
//! Order matters for crash safety: new packfiles, then the new state (which carries every
//! tombstone forward), then old states, then old packfiles. A crash at any point leaves
//! every live blob reachable through some state whose packfile still exists.

use crate::kloset::blob::BlobType;
use crate::kloset::error::Result;
use crate::kloset::id::{BlobId, PackId};
use crate::kloset::packer::Packer;
use crate::kloset::repo::Repository;
use crate::kloset::state::{Record, State};
use crate::kloset::store::Resource;
use std::collections::{HashMap, HashSet};

/// (id, type, offset, length) of a blob still reachable.
type LiveBlob = (BlobId, BlobType, u32, u32);

#[derive(Debug, Default)]
pub struct MaintenanceReport {
    pub live_blobs: u64,
    pub dropped_blobs: u64,
    pub packs_rewritten: u64,
    pub packs_deleted: u64,
    pub states_merged: u64,
}

fn reachable(repo: &Repository) -> Result<HashSet<BlobId>> {
    let mut live = HashSet::new();
    let mut trees = Vec::new();
    for id in repo.index.snapshots() {
        live.insert(id.as_blob());
        trees.push(repo.header(&id)?.root);
    }
    while let Some(t) = trees.pop() {
        if !live.insert(t) {
            continue; // shared subtree, already walked
        }
        for e in repo.tree(&t)?.entries {
            live.extend(e.chunks.iter().copied());
            if let Some(s) = e.subtree {
                trees.push(s);
            }
        }
    }
    Ok(live)
}

pub fn maintenance(repo: &Repository) -> Result<MaintenanceReport> {
    let live = reachable(repo)?;
    // Per packfile: its live blobs and how many dead ones it holds.
    let mut by_pack: HashMap<PackId, (Vec<LiveBlob>, usize)> = HashMap::new();
    for (id, loc) in repo.index.entries() {
        let e = by_pack.entry(loc.pack).or_default();
        if live.contains(&id) {
            e.0.push((id, loc.kind, loc.offset, loc.length));
        } else {
            e.1 += 1;
        }
    }
    // Listed before any new packfile is written: the new ones are not orphans.
    let indexed: HashSet<PackId> = by_pack.keys().copied().collect();
    let orphans: Vec<PackId> =
        repo.store.list(Resource::Packfile)?.into_iter().map(PackId).filter(|p| !indexed.contains(p)).collect();
    let mut report = MaintenanceReport::default();
    let mut keep: Vec<Record> = Vec::new();
    let mut doomed: Vec<PackId> = Vec::new();
    let empty = crate::kloset::index::Index::default();
    let packer = Packer::new(repo.store.clone(), repo.keys.clone(), &empty, None, repo.config.packfile_max_size, 2);
    for (pack, (blobs, dead)) in &by_pack {
        report.dropped_blobs += *dead as u64;
        report.live_blobs += blobs.len() as u64;
        if *dead == 0 {
            keep.extend(blobs.iter().map(|&(id, kind, offset, length)| Record {
                kind,
                id,
                pack: *pack,
                offset,
                length,
            }));
            continue;
        }
        doomed.push(*pack);
        if blobs.is_empty() {
            continue;
        }
        report.packs_rewritten += 1;
        let data = repo.store.get(Resource::Packfile, &pack.0, None)?;
        for &(id, kind, offset, length) in blobs {
            let (s, e) = (offset as usize, offset as usize + length as usize);
            let bytes = data.get(s..e).ok_or_else(|| {
                crate::kloset::error::Error::Corrupt(format!("packfile {} is truncated; run check", pack.short()))
            })?;
            packer.add_encoded(kind, id, bytes)?;
        }
    }
    keep.extend(packer.finish()?);
    if doomed.is_empty() && orphans.is_empty() && repo.states.len() <= 1 {
        return Ok(report);
    }
    let deleted: Vec<_> = repo.index.deleted().iter().copied().collect();
    let new_state = repo.write_state(&State { created: chrono::Utc::now().timestamp(), blobs: keep, deleted })?;
    for s in &repo.states {
        if *s != new_state {
            repo.store.delete(Resource::State, &s.0)?;
            report.states_merged += 1;
        }
    }
    for p in doomed.iter().chain(&orphans) {
        repo.store.delete(Resource::Packfile, &p.0)?;
        report.packs_deleted += 1;
    }
    Ok(report)
}
