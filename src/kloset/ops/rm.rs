//! Removes snapshots by writing a state that lists them as deleted. Their data stays until
//! `maintenance` finds it unreachable.

use crate::kloset::error::Result;
use crate::kloset::id::SnapshotId;
use crate::kloset::repo::Repository;
use crate::kloset::state::State;

pub fn rm(repo: &Repository, ids: &[SnapshotId]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    repo.write_state(State { created: chrono::Utc::now().timestamp(), deleted: ids.to_vec(), ..Default::default() })?;
    Ok(())
}
