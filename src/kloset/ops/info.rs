//! Store-wide figures for `info`.

use crate::kloset::error::Result;
use crate::kloset::repo::Repository;
use crate::kloset::store::Resource;

#[derive(Debug, Default, serde::Serialize)]
pub struct StoreInfo {
    pub snapshots: usize,
    pub blobs: usize,
    pub packfiles: usize,
    pub states: usize,
    pub storage_size: u64,
    pub logical_size: u64,
}

pub fn info(repo: &Repository) -> Result<StoreInfo> {
    let packs = repo.store.list(Resource::Packfile)?;
    let mut storage_size = 0;
    for p in &packs {
        storage_size += repo.store.size(Resource::Packfile, p)?;
    }
    let logical_size = repo.headers()?.iter().map(|h| h.summary.size).sum();
    Ok(StoreInfo {
        snapshots: repo.index.snapshots().len(),
        blobs: repo.index.len(),
        packfiles: packs.len(),
        states: repo.states.len(),
        storage_size,
        logical_size,
    })
}
