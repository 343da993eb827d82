//! Dup: snapshots copied under new ids in the same store. Only new headers are written: a
//! copy names the same tree, so no file data is read or stored again, and the copy stays
//! whole when its original is removed (maintenance keeps what any snapshot reaches). The
//! copies become visible together, through one state written under the caller's lock, as
//! a backup's snapshot does.

use crate::kloset::blob::BlobType;
use crate::kloset::error::Result;
use crate::kloset::id::SnapshotId;
use crate::kloset::packer::Packer;
use crate::kloset::repo::Repository;
use crate::kloset::state::State;

/// Copies each snapshot of `ids` under a new random id; returns (original, copy) pairs.
/// The copy's header is the original's (time, name, tags, source, summary) but its id.
pub fn dup(repo: &Repository, ids: &[SnapshotId]) -> Result<Vec<(SnapshotId, SnapshotId)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let packer = Packer::new(
        repo.store.clone(),
        repo.keys.clone(),
        &repo.index,
        repo.compression_level(),
        repo.config.packfile_max_size,
        repo.uploaders,
    );
    let mut copies = Vec::with_capacity(ids.len());
    for id in ids {
        let mut h = repo.header(id)?;
        h.id = SnapshotId::random();
        packer.add(BlobType::Snapshot, h.id.as_blob(), &h.encode())?;
        copies.push((*id, h.id));
    }
    let blobs = packer.finish()?;
    repo.write_state(State { created: chrono::Utc::now().timestamp(), blobs, ..Default::default() })?;
    Ok(copies)
}
