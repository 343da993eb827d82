//! The in-memory index: where every blob lives, built from the union of states. A blob is
//! named by its type and id together: a chunk and a tree node with the same bytes have the
//! same keyed id, and must not stand in for each other.
//!
//! Packfiles that a maintenance marked for deletion ("doomed", see docs/LOCKING.md) are
//! still readable, but a writer never deduplicates against a blob held only there: the pack
//! may be gone before the writer commits.
//!
//! Layout: one array of entries sorted by (type, id), 48 bytes each, allocated once at its
//! final size, with pack ids interned; a fan-out table on the first two bytes of the id
//! (as git's pack .idx) narrows a lookup to a dozen entries of a million. A hash map of the
//! same entries took twice the memory, and as much again while it grew (docs/PERFORMANCE.md,
//! "Memory").

use crate::kloset::blob::BlobType;
use crate::kloset::id::{BlobId, PackId, SnapshotId, StateId};
use crate::kloset::state::State;
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

/// Fan-out buckets per blob type: the first two bytes of an id.
const FANOUT: usize = 1 << 16;
const KINDS: [BlobType; 3] = [BlobType::Chunk, BlobType::Tree, BlobType::Snapshot];

fn bucket(kind: BlobType, id: &BlobId) -> usize {
    (kind as usize - 1) * FANOUT + ((id.0[0] as usize) << 8 | id.0[1] as usize)
}

#[derive(Default)]
pub struct Index {
    packs: Vec<PackId>,
    /// Sorted by key, one entry per key.
    entries: Vec<(BlobKey, Slot)>,
    /// `fanout[b]` is the first entry of bucket `b` or later; empty until built.
    fanout: Vec<u32>,
    deleted: HashSet<SnapshotId>,
    doomed: HashSet<PackId>,
    /// The states this index was read from that no other names as a parent: what the
    /// next state is built on (lineage.rs).
    pub heads: Vec<StateId>,
}

impl Index {
    /// Builds the index of a set of states, taking their records (what is left of each
    /// state is what lineage needs: parents, flags, deletions). A blob recorded more than
    /// once is found in a packfile no maintenance doomed, if any holds it, whatever order
    /// the states come in.
    pub fn from_states(states: &mut [State]) -> Index {
        let mut index = Index::default();
        for s in states.iter() {
            index.doomed.extend(s.doomed.iter().copied());
            index.deleted.extend(s.deleted.iter().copied());
        }
        let total = states.iter().map(|s| s.blobs.len()).sum();
        let mut entries = Vec::with_capacity(total);
        let mut pack_pos: HashMap<PackId, u32> = HashMap::new();
        for s in states.iter_mut() {
            for r in std::mem::take(&mut s.blobs) {
                let next = index.packs.len() as u32;
                let pack = *pack_pos.entry(r.pack).or_insert(next);
                if pack == next {
                    index.packs.push(r.pack);
                }
                entries.push(((r.kind, r.id), Slot { pack, offset: r.offset, length: r.length }));
            }
        }
        // Among records of one key, those in live packfiles first; the first one stays.
        let doomed: Vec<bool> = index.packs.iter().map(|p| index.doomed.contains(p)).collect();
        entries.sort_unstable_by(|a: &(BlobKey, Slot), b: &(BlobKey, Slot)| {
            a.0.cmp(&b.0).then(doomed[a.1.pack as usize].cmp(&doomed[b.1.pack as usize]))
        });
        entries.dedup_by(|a, b| a.0 == b.0);
        entries.shrink_to_fit();
        // Only packfiles some entry still points into: one whose every blob is held in
        // another as well is no index's, and maintenance sees it as an orphan.
        let mut renumber = vec![u32::MAX; index.packs.len()];
        let mut packs = Vec::new();
        for (_, slot) in entries.iter_mut() {
            let n = &mut renumber[slot.pack as usize];
            if *n == u32::MAX {
                *n = packs.len() as u32;
                packs.push(index.packs[slot.pack as usize]);
            }
            slot.pack = *n;
        }
        index.packs = packs;
        index.entries = entries;
        index.build_fanout();
        index
    }

    fn build_fanout(&mut self) {
        let mut fanout = vec![0u32; KINDS.len() * FANOUT + 1];
        // Count per bucket, then turn counts into starts.
        for ((kind, id), _) in &self.entries {
            fanout[bucket(*kind, id) + 1] += 1;
        }
        for b in 1..fanout.len() {
            fanout[b] += fanout[b - 1];
        }
        self.fanout = fanout;
    }

    fn slot(&self, kind: BlobType, id: &BlobId) -> Option<&Slot> {
        if self.entries.is_empty() {
            return None;
        }
        let b = bucket(kind, id);
        let range = &self.entries[self.fanout[b] as usize..self.fanout[b + 1] as usize];
        let key = (kind, *id);
        range.binary_search_by(|(k, _)| k.cmp(&key)).ok().map(|i| &range[i].1)
    }

    fn location(&self, kind: BlobType, s: &Slot) -> Location {
        Location { kind, pack: self.packs[s.pack as usize], offset: s.offset, length: s.length }
    }

    pub fn get(&self, kind: BlobType, id: &BlobId) -> Option<Location> {
        self.slot(kind, id).map(|s| self.location(kind, s))
    }

    /// True when the blob can be read (it may sit in a doomed packfile).
    pub fn contains(&self, kind: BlobType, id: &BlobId) -> bool {
        self.slot(kind, id).is_some()
    }

    /// True when a writer may reference the blob without storing it again: it is indexed
    /// in a packfile no maintenance is about to delete.
    pub fn usable(&self, kind: BlobType, id: &BlobId) -> bool {
        self.slot(kind, id).is_some_and(|s| !self.doomed.contains(&self.packs[s.pack as usize]))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live snapshots: snapshot blobs not deleted by a later state.
    pub fn snapshots(&self) -> Vec<SnapshotId> {
        let first = self.entries.partition_point(|((kind, _), _)| *kind < BlobType::Snapshot);
        self.entries[first..]
            .iter()
            .map(|((_, id), _)| SnapshotId(id.0))
            .filter(|id| !self.deleted.contains(id))
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
        self.entries.iter().map(|((kind, id), s)| (*id, self.location(*kind, s)))
    }

    /// Packfiles some record points into.
    pub fn packs(&self) -> &[PackId] {
        &self.packs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kloset::state::Record;

    fn rec(kind: BlobType, id: [u8; 32], pack: u8, offset: u32) -> Record {
        Record { kind, id: BlobId(id), pack: PackId([pack; 32]), offset, length: 10 }
    }

    fn id(first: u8, second: u8, last: u8) -> [u8; 32] {
        let mut b = [7u8; 32];
        (b[0], b[1], b[31]) = (first, second, last);
        b
    }

    fn state(blobs: Vec<Record>, doomed: &[u8]) -> State {
        State { blobs, doomed: doomed.iter().map(|p| PackId([*p; 32])).collect(), ..Default::default() }
    }

    #[test]
    fn finds_every_blob_by_type_and_id_at_the_edges_of_its_bucket() {
        let ids = [id(0, 0, 0), id(0, 0, 1), id(0, 1, 0), id(0xff, 0xff, 0xff), id(0x80, 0, 5), id(0x7f, 0xff, 5)];
        let mut blobs = Vec::new();
        for (n, i) in ids.iter().enumerate() {
            blobs.push(rec(BlobType::Chunk, *i, 1, n as u32));
            blobs.push(rec(BlobType::Tree, *i, 2, 100 + n as u32));
        }
        blobs.push(rec(BlobType::Snapshot, id(0xff, 0xff, 0xfe), 3, 0));
        let index = Index::from_states(&mut [state(blobs, &[])]);
        assert_eq!(index.len(), 13);
        for (n, i) in ids.iter().enumerate() {
            let c = index.get(BlobType::Chunk, &BlobId(*i)).unwrap();
            assert_eq!((c.pack, c.offset, c.kind), (PackId([1; 32]), n as u32, BlobType::Chunk));
            assert_eq!(index.get(BlobType::Tree, &BlobId(*i)).unwrap().offset, 100 + n as u32);
            assert!(!index.contains(BlobType::Snapshot, &BlobId(*i)));
        }
        assert!(index.get(BlobType::Chunk, &BlobId(id(0, 0, 2))).is_none());
        assert!(index.get(BlobType::Chunk, &BlobId(id(0xff, 0xfe, 0))).is_none());
        assert_eq!(index.snapshots(), vec![SnapshotId(id(0xff, 0xff, 0xfe))]);
        assert!(Index::default().get(BlobType::Chunk, &BlobId(ids[0])).is_none());
    }

    #[test]
    fn a_blob_in_a_live_and_a_doomed_packfile_is_found_in_the_live_one_in_any_order() {
        let x = id(3, 4, 5);
        for doomed_first in [true, false] {
            let doomed = state(vec![rec(BlobType::Chunk, x, 9, 1)], &[]);
            let live = state(vec![rec(BlobType::Chunk, x, 8, 2)], &[]);
            let merge = state(vec![], &[9]);
            let mut states = if doomed_first { vec![doomed, merge, live] } else { vec![live, doomed, merge] };
            let index = Index::from_states(&mut states);
            assert_eq!(index.len(), 1);
            assert_eq!(index.get(BlobType::Chunk, &BlobId(x)).unwrap().pack, PackId([8; 32]));
            assert!(index.usable(BlobType::Chunk, &BlobId(x)));
            assert!(states.iter().all(|s| s.blobs.is_empty()), "records taken");
        }
        // Held only in a doomed packfile: readable, never used for dedup.
        let index = Index::from_states(&mut [state(vec![rec(BlobType::Chunk, x, 9, 1)], &[9])]);
        assert!(index.contains(BlobType::Chunk, &BlobId(x)) && !index.usable(BlobType::Chunk, &BlobId(x)));
    }

    #[test]
    fn a_packfile_whose_every_blob_is_held_elsewhere_is_not_listed() {
        let x = id(3, 4, 5);
        let (a, b) = (state(vec![rec(BlobType::Chunk, x, 1, 0)], &[]), state(vec![rec(BlobType::Chunk, x, 2, 0)], &[]));
        let index = Index::from_states(&mut [a, b]);
        assert_eq!(index.packs().len(), 1);
        assert_eq!(index.get(BlobType::Chunk, &BlobId(x)).unwrap().pack, index.packs()[0]);
    }

    #[test]
    fn deleted_snapshots_are_not_listed() {
        let (a, b) = (id(1, 1, 1), id(2, 2, 2));
        let mut s = state(vec![rec(BlobType::Snapshot, a, 1, 0), rec(BlobType::Snapshot, b, 1, 10)], &[]);
        s.deleted = vec![SnapshotId(a)];
        let index = Index::from_states(&mut [s]);
        assert_eq!(index.snapshots(), vec![SnapshotId(b)]);
        assert!(index.has_snapshot_blob(&SnapshotId(a)));
    }
}
