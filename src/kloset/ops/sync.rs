//! Sync: copy snapshots from one store to another. Ids are keyed per store, so every blob
//! is decoded with the source's keys and re-encoded (and re-identified) with the
//! destination's; chunks the destination already has are not stored again. Snapshot ids
//! are kept, so a snapshot is recognisable in both stores.

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
    /// Source blob id -> destination blob id.
    memo: Mutex<HashMap<BlobId, BlobId>>,
    progress: &'a dyn Progress,
}

/// Copies the given snapshots that `dst` lacks; returns how many were copied.
pub fn sync(src: &Repository, dst: &Repository, ids: &[SnapshotId], progress: &dyn Progress) -> Result<usize> {
    let have: std::collections::HashSet<SnapshotId> = dst.index.snapshots().into_iter().collect();
    let todo: Vec<SnapshotId> = ids.iter().copied().filter(|id| !have.contains(id)).collect();
    if todo.is_empty() {
        return Ok(0);
    }
    let c = Copier {
        src,
        packer: Packer::with_checkpoints(
            dst.store.clone(),
            dst.keys.clone(),
            &dst.index,
            dst.compression_level(),
            dst.config.packfile_max_size,
            2,
            dst.checkpoint_every,
        ),
        memo: Mutex::new(HashMap::new()),
        progress,
    };
    for id in &todo {
        let mut h = src.header(id)?;
        h.root = c.tree(&h.root)?;
        c.packer.add(BlobType::Snapshot, id.as_blob(), &h.encode())?;
    }
    let blobs = c.packer.finish()?;
    dst.write_state(&State { created: chrono::Utc::now().timestamp(), blobs, deleted: vec![] })?;
    Ok(todo.len())
}

impl Copier<'_> {
    fn known(&self, id: &BlobId) -> Option<BlobId> {
        self.memo.lock().expect("lock").get(id).copied()
    }

    fn chunk(&self, id: &BlobId) -> Result<BlobId> {
        if let Some(n) = self.known(id) {
            return Ok(n);
        }
        let data = self.src.get_blob(BlobType::Chunk, id)?;
        let nid = self.packer.keys().mac(&data);
        self.packer.add(BlobType::Chunk, nid, &data)?;
        self.progress.bytes(data.len() as u64);
        self.memo.lock().expect("lock").insert(*id, nid);
        Ok(nid)
    }

    fn tree(&self, id: &BlobId) -> Result<BlobId> {
        if let Some(n) = self.known(id) {
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
        self.memo.lock().expect("lock").insert(*id, nid);
        Ok(nid)
    }
}
