//! The in-memory index: where every blob lives, built from the union of states. Pack ids
//! are interned so an entry costs about 50 bytes.

use crate::kloset::blob::BlobType;
use crate::kloset::id::{BlobId, PackId, SnapshotId};
use crate::kloset::state::{Record, State};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
struct Slot {
    pack: u32,
    offset: u32,
    length: u32,
    kind: BlobType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub kind: BlobType,
    pub pack: PackId,
    pub offset: u32,
    pub length: u32,
}

#[derive(Default)]
pub struct Index {
    packs: Vec<PackId>,
    pack_pos: HashMap<PackId, u32>,
    blobs: HashMap<BlobId, Slot>,
    deleted: HashSet<SnapshotId>,
}

impl Index {
    pub fn add_state(&mut self, s: &State) {
        self.blobs.reserve(s.blobs.len());
        for r in &s.blobs {
            self.add(r);
        }
        self.deleted.extend(s.deleted.iter().copied());
    }

    pub fn add(&mut self, r: &Record) {
        let next = self.packs.len() as u32;
        let pack = *self.pack_pos.entry(r.pack).or_insert(next);
        if pack == next {
            self.packs.push(r.pack);
        }
        self.blobs.insert(r.id, Slot { pack, offset: r.offset, length: r.length, kind: r.kind });
    }

    pub fn get(&self, id: &BlobId) -> Option<Location> {
        self.blobs.get(id).map(|s| Location {
            kind: s.kind,
            pack: self.packs[s.pack as usize],
            offset: s.offset,
            length: s.length,
        })
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.blobs.contains_key(id)
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
            .iter()
            .filter(|(id, s)| s.kind == BlobType::Snapshot && !self.deleted.contains(&SnapshotId(id.0)))
            .map(|(id, _)| SnapshotId(id.0))
            .collect()
    }

    pub fn deleted(&self) -> &HashSet<SnapshotId> {
        &self.deleted
    }

    /// Every (id, location) pair, for maintenance.
    pub fn entries(&self) -> impl Iterator<Item = (BlobId, Location)> + '_ {
        self.blobs.iter().map(|(id, s)| {
            (*id, Location { kind: s.kind, pack: self.packs[s.pack as usize], offset: s.offset, length: s.length })
        })
    }

    pub fn packs(&self) -> &[PackId] {
        &self.packs
    }
}
