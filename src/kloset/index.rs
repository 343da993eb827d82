//! The in-memory index: where every blob lives, built from the union of states. A blob is
//! named by its type and id together: a chunk and a tree node with the same bytes have the
//! same keyed id, and must not stand in for each other. Pack ids are interned so an entry
//! costs about 50 bytes.
//!
//! Packfiles that a maintenance marked for deletion ("doomed", see docs/LOCKING.md) are
//! still readable, but a writer never deduplicates against a blob held only there: the pack
//! may be gone before the writer commits.

use crate::kloset::blob::BlobType;
use crate::kloset::id::{BlobId, PackId, SnapshotId, StateId};
use crate::kloset::state::{Record, State};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
struct Slot {
    pack: u32,
    offset: u32,
    length: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub kind: BlobType,
    pub pack: PackId,
    pub offset: u32,
    pub length: u32,
}

/// A blob's name in the store: its type and its id.
pub type BlobKey = (BlobType, BlobId);

#[derive(Default)]
pub struct Index {
    packs: Vec<PackId>,
    pack_pos: HashMap<PackId, u32>,
    blobs: HashMap<BlobKey, Slot>,
    deleted: HashSet<SnapshotId>,
    doomed: HashSet<PackId>,
    /// The states this index was read from that no other names as a parent: what the
    /// next state is built on (lineage.rs).
    pub heads: Vec<StateId>,
}

impl Index {
    /// Builds the index of a set of states. Doomed packfiles are gathered first, so a blob
    /// recorded both in a doomed packfile and in a live one is found in the live one,
    /// whatever order the states are read in.
    pub fn from_states<'a>(states: impl IntoIterator<Item = &'a State> + Clone) -> Index {
        let mut index = Index::default();
        for s in states.clone() {
            index.doomed.extend(s.doomed.iter().copied());
        }
        for s in states {
            index.add_state(s);
        }
        index
    }

    pub fn add_state(&mut self, s: &State) {
        self.blobs.reserve(s.blobs.len());
        for r in &s.blobs {
            self.add(r);
        }
        self.deleted.extend(s.deleted.iter().copied());
        self.doomed.extend(s.doomed.iter().copied());
    }

    pub fn add(&mut self, r: &Record) {
        let key = (r.kind, r.id);
        if let Some(old) = self.blobs.get(&key) {
            // Keep a location in a live packfile over one in a doomed packfile.
            let old_doomed = self.doomed.contains(&self.packs[old.pack as usize]);
            if !old_doomed || self.doomed.contains(&r.pack) {
                return;
            }
        }
        let next = self.packs.len() as u32;
        let pack = *self.pack_pos.entry(r.pack).or_insert(next);
        if pack == next {
            self.packs.push(r.pack);
        }
        self.blobs.insert(key, Slot { pack, offset: r.offset, length: r.length });
    }

    fn location(&self, kind: BlobType, s: &Slot) -> Location {
        Location { kind, pack: self.packs[s.pack as usize], offset: s.offset, length: s.length }
    }

    pub fn get(&self, kind: BlobType, id: &BlobId) -> Option<Location> {
        self.blobs.get(&(kind, *id)).map(|s| self.location(kind, s))
    }

    /// True when the blob can be read (it may sit in a doomed packfile).
    pub fn contains(&self, kind: BlobType, id: &BlobId) -> bool {
        self.blobs.contains_key(&(kind, *id))
    }

    /// True when a writer may reference the blob without storing it again: it is indexed
    /// in a packfile no maintenance is about to delete.
    pub fn usable(&self, kind: BlobType, id: &BlobId) -> bool {
        self.blobs.get(&(kind, *id)).is_some_and(|s| !self.doomed.contains(&self.packs[s.pack as usize]))
    }

    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Live snapshots: snapshot blobs not deleted by a later state.
    pub fn snapshots(&self) -> Vec<SnapshotId> {
        self.blobs
            .keys()
            .filter(|(kind, id)| *kind == BlobType::Snapshot && !self.deleted.contains(&SnapshotId(id.0)))
            .map(|(_, id)| SnapshotId(id.0))
            .collect()
    }

    /// True when the snapshot blob is indexed (live or deleted).
    pub fn has_snapshot_blob(&self, id: &SnapshotId) -> bool {
        self.contains(BlobType::Snapshot, &id.as_blob())
    }

    pub fn deleted(&self) -> &HashSet<SnapshotId> {
        &self.deleted
    }

    /// Packfiles a maintenance marked for deletion.
    pub fn doomed(&self) -> &HashSet<PackId> {
        &self.doomed
    }

    /// Every (type, id, location), for maintenance.
    pub fn entries(&self) -> impl Iterator<Item = (BlobId, Location)> + '_ {
        self.blobs.iter().map(|((kind, id), s)| (*id, self.location(*kind, s)))
    }

    /// Packfiles some record points into.
    pub fn packs(&self) -> &[PackId] {
        &self.packs
    }
}
