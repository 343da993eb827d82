//! Sync: copy snapshots from one store to another. Ids are keyed per store, so every blob
//! is decoded with the source's keys and re-encoded (and re-identified) with the
//! destination's; chunks the destination already has are not stored again. Snapshot ids
//! are kept, so a snapshot is recognisable in both stores; a snapshot that was removed from
//! the destination is copied again only when asked for by name, under a new id (a removal
//! is final for its id).

use crate::kloset::blob::BlobType;
use crate::kloset::error::Result;
use crate::kloset::id::{BlobId, SnapshotId};
use crate::kloset::packer::Packer;
use crate::kloset::progress::Progress;
use crate::kloset::repo::Repository;
use crate::kloset::state::State;
use crate::kloset::tree::Tree;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

struct Copier<'a> {
    src: &'a Repository,
    packer: Packer<'a>,
    /// Source (type, id) -> destination blob id.
    memo: Mutex<HashMap<(BlobType, BlobId), BlobId>>,
    progress: &'a dyn Progress,
}

#[derive(Debug, Default)]
pub struct SyncReport {
    /// (id in the source, id in the destination): the same unless copied again after a
    /// removal.
    pub copied: Vec<(SnapshotId, SnapshotId)>,
    /// Snapshots removed from the destination and not copied again.
    pub removed_there: Vec<SnapshotId>,
}

/// Copies the given snapshots that `dst` lacks. A snapshot removed from `dst` is copied
/// again under a new id when `revive` (the user named it), else left out and reported.
pub fn sync(
    src: &Repository,
    dst: &Repository,
    ids: &[SnapshotId],
    revive: bool,
    progress: &dyn Progress,
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let have: std::collections::HashSet<SnapshotId> = dst.index.snapshots().into_iter().collect();
    let mut todo: Vec<(SnapshotId, SnapshotId)> = Vec::new();
    for id in ids.iter().filter(|id| !have.contains(id)) {
        if dst.index.deleted().contains(id) {
            if !revive {
                report.removed_there.push(*id);
                continue;
            }
            todo.push((*id, SnapshotId::random()));
        } else {
            todo.push((*id, *id));
        }
    }
    if todo.is_empty() {
        return Ok(report);
    }
    let c = Copier {
        src,
        packer: Packer::with_checkpoints(
            dst.store.clone(),
            dst.keys.clone(),
            &dst.index,
            dst.compression_level(),
            dst.config.packfile_max_size,
            dst.uploaders,
            dst.checkpoint_every,
            dst.lease.clone(),
        )
        .checkpoint_records(dst.checkpoint_records),
        memo: Mutex::new(HashMap::new()),
        progress,
    };
    let mut headers = Vec::with_capacity(todo.len());
    for (id, new_id) in &todo {
        let mut h = src.header(id)?;
        h.id = *new_id;
        h.root = c.tree(&h.root)?;
        headers.push(h);
    }
    // Headers go into a packfile only once every data packfile has landed, as a backup's
    // does: a header never sits in the store beside chunks that never arrived (a repair
    // that lists unlisted packfiles would otherwise bring back a snapshot missing data).
    c.packer.flush_data()?;
    for h in &headers {
        c.packer.add(BlobType::Snapshot, h.id.as_blob(), &h.encode())?;
    }
    let blobs = c.packer.finish()?;
    dst.write_state(State { created: chrono::Utc::now().timestamp(), blobs, ..Default::default() })?;
    report.copied = todo;
    Ok(report)
}

impl Copier<'_> {
    fn known(&self, kind: BlobType, id: &BlobId) -> Option<BlobId> {
        self.memo.lock().expect("lock").get(&(kind, *id)).copied()
    }

    fn chunk(&self, id: &BlobId) -> Result<BlobId> {
        if let Some(n) = self.known(BlobType::Chunk, id) {
            return Ok(n);
        }
        let data = self.src.get_blob(BlobType::Chunk, id)?;
        let nid = self.packer.keys().mac(&data);
        self.packer.add(BlobType::Chunk, nid, &data)?;
        self.progress.bytes(data.len() as u64);
        self.memo.lock().expect("lock").insert((BlobType::Chunk, *id), nid);
        Ok(nid)
    }

    fn tree(&self, id: &BlobId) -> Result<BlobId> {
        if let Some(n) = self.known(BlobType::Tree, id) {
            return Ok(n);
        }
        let mut t: Tree = self.src.tree(id)?;
        t.entries.par_iter_mut().try_for_each(|e| -> Result<()> {
            for c in e.chunks.iter_mut() {
                *c = self.chunk(c)?;
            }
            if let Some(s) = e.subtree {
                e.subtree = Some(self.tree(&s)?);
            }
            self.progress.item(&e.name, e.info.size);
            Ok(())
        })?;
        let bytes = t.encode();
        let nid = self.packer.keys().mac(&bytes);
        self.packer.add(BlobType::Tree, nid, &bytes)?;
        self.memo.lock().expect("lock").insert((BlobType::Tree, *id), nid);
        Ok(nid)
    }
}
