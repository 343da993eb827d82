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
//!
//! Beyond MEMORY_ENTRIES entries (a million and a half files or so) the index goes to disk: states
//! are read one at a time, their records sorted in runs of that many and written to
//! temporary files, then merged into one sorted run (sorted_run.rs) that lookups read a
//! page at a time, past a Bloom filter. Memory is then about 1.6 bytes an entry.

use crate::kloset::blob::BlobType;
use crate::kloset::id::{BlobId, PackId, SnapshotId, StateId};
use crate::kloset::sorted_run::{decode_key, encode_key, merged, RunRecord, SortedRun};
use crate::kloset::state::State;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

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

const KINDS: [BlobType; 3] = [BlobType::Chunk, BlobType::Tree, BlobType::Snapshot];

/// Entries an index keeps in memory (48 bytes each) before it goes to disk:
/// `PLAKAR_INDEX_MEMORY` entries, else this many (72 MiB, a million and a half files).
pub const MEMORY_ENTRIES: usize = 3 << 19;

/// Where the entries of each blob type start, by the first bits of their ids: about one
/// entry a bucket (ids are uniform), so that a lookup reads the bucket's start and the one
/// or two entries next to each other in it. A fixed 65,536 buckets a type left 15 entries
/// a bucket for a million chunks, searched in four steps. What is left is two cache misses
/// a lookup (a restore of a million small files: lookups 5.7 % -> 4.9 % of the samples).
#[derive(Default)]
struct Fanout {
    /// Bits of the id that pick a bucket, per type (`KINDS` order).
    bits: [u32; KINDS.len()],
    /// First bucket of each type in `starts`.
    base: [usize; KINDS.len()],
    /// `starts[b]`: the first entry of bucket `b`; one more at the end.
    starts: Vec<u32>,
}

fn kind_at(kind: BlobType) -> usize {
    kind as usize - 1
}

impl Fanout {
    /// For `entries`, sorted by key.
    fn build(entries: &[(BlobKey, Slot)]) -> Fanout {
        let mut counts = [0usize; KINDS.len()];
        for ((kind, _), _) in entries {
            counts[kind_at(*kind)] += 1;
        }
        let mut f = Fanout::default();
        let mut buckets = 0;
        for (k, n) in counts.iter().enumerate() {
            f.bits[k] = n.max(&1).ilog2().clamp(8, 22);
            f.base[k] = buckets;
            buckets += 1 << f.bits[k];
        }
        let mut starts = vec![0u32; buckets + 1];
        // Count per bucket, then turn counts into starts.
        for ((kind, id), _) in entries {
            starts[f.bucket(*kind, id) + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        f.starts = starts;
        f
    }

    fn bucket(&self, kind: BlobType, id: &BlobId) -> usize {
        let k = kind_at(kind);
        let prefix = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
        self.base[k] + (prefix >> (64 - self.bits[k])) as usize
    }

    /// The entries whose key may be `(kind, id)`.
    fn range(&self, kind: BlobType, id: &BlobId) -> std::ops::Range<usize> {
        let b = self.bucket(kind, id);
        self.starts[b] as usize..self.starts[b + 1] as usize
    }
}

/// One entry, as a sorted run holds it: the key, then pack number, offset and length.
#[derive(Debug, Clone, Copy)]
struct Entry(BlobKey, Slot);

impl RunRecord for Entry {
    const LEN: usize = 33 + 12;
    fn key(&self) -> BlobKey {
        self.0
    }
    fn encode(&self, out: &mut [u8]) {
        encode_key(&self.0, out);
        out[33..37].copy_from_slice(&self.1.pack.to_le_bytes());
        out[37..41].copy_from_slice(&self.1.offset.to_le_bytes());
        out[41..45].copy_from_slice(&self.1.length.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Option<Self> {
        let u = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        Some(Entry(decode_key(b)?, Slot { pack: u(33), offset: u(37), length: u(41) }))
    }
}

enum Table {
    /// Sorted by key, one entry per key; `fanout` finds a key's few candidates.
    Memory { entries: Vec<(BlobKey, Slot)>, fanout: Fanout },
    /// The same, in a sorted run on disk (sorted_run.rs), with the snapshot entries (a
    /// few thousand) also in memory for listing.
    Disk { run: SortedRun<Entry>, hasher: RandomState, snapshots: Vec<SnapshotId> },
}

impl Default for Table {
    fn default() -> Self {
        Table::Memory { entries: Vec::new(), fanout: Fanout::default() }
    }
}

/// An index that cannot read its own temporary file stops the process: answering "not
/// there" instead could make maintenance delete what is still used.
fn unreadable(e: std::io::Error) -> ! {
    panic!("the index's temporary file cannot be read ({e}); run the command again")
}

#[derive(Default)]
pub struct Index {
    packs: Vec<PackId>,
    table: Table,
    deleted: HashSet<SnapshotId>,
    doomed: HashSet<PackId>,
    /// Built without its chunks (IndexBuilder::metadata_only): good for listing, never
    /// for reading file contents, writing or maintenance.
    metadata_only: bool,
    /// The states this index was read from that no other names as a parent: what the
    /// next state is built on (lineage.rs).
    pub heads: Vec<StateId>,
}

/// Builds an index from states one at a time: in memory up to a number of entries, in
/// sorted runs on disk beyond, merged at the end.
pub struct IndexBuilder {
    packs: Vec<PackId>,
    pack_pos: HashMap<PackId, u32>,
    deleted: HashSet<SnapshotId>,
    doomed: HashSet<PackId>,
    pending: Vec<Entry>,
    runs: Vec<SortedRun<Entry>>,
    /// Entries kept in memory; `usize::MAX` once writing a run failed (the index then
    /// stays in memory).
    limit: usize,
    hasher: RandomState,
    metadata_only: bool,
}

impl IndexBuilder {
    pub fn new(limit: usize) -> Self {
        IndexBuilder {
            packs: Vec::new(),
            pack_pos: HashMap::new(),
            deleted: HashSet::new(),
            doomed: HashSet::new(),
            pending: Vec::new(),
            runs: Vec::new(),
            limit: limit.max(1),
            hasher: RandomState::new(),
            metadata_only: false,
        }
    }

    /// Keeps tree and snapshot records only: what listing snapshots and browsing their
    /// trees needs. A store of ten million files has ten million chunk records and a
    /// hundred thousand trees; `ls` should not sort the first to read the second. Reading
    /// a chunk through such an index is a bug, and panics (Index::slot).
    pub fn metadata_only(mut self) -> Self {
        self.metadata_only = true;
        self
    }

    /// The limit `PLAKAR_INDEX_MEMORY` sets, else MEMORY_ENTRIES.
    pub fn from_env() -> Self {
        let limit = std::env::var("PLAKAR_INDEX_MEMORY").ok().and_then(|v| v.parse().ok());
        Self::new(limit.unwrap_or(MEMORY_ENTRIES))
    }

    /// Takes a state's records (what is left of it is what lineage needs: parents, flags,
    /// deletions).
    pub fn add(&mut self, s: &mut State) {
        self.doomed.extend(s.doomed.iter().copied());
        self.deleted.extend(s.deleted.iter().copied());
        for r in std::mem::take(&mut s.blobs) {
            if self.metadata_only && r.kind == BlobType::Chunk {
                continue;
            }
            let next = self.packs.len() as u32;
            let pack = *self.pack_pos.entry(r.pack).or_insert(next);
            if pack == next {
                self.packs.push(r.pack);
            }
            self.pending.push(Entry((r.kind, r.id), Slot { pack, offset: r.offset, length: r.length }));
            if self.pending.len() >= self.limit {
                self.spill();
            }
        }
    }

    fn spill(&mut self) {
        let hasher = &self.hasher;
        match SortedRun::write(&mut self.pending, |k| hasher.hash_one(k)) {
            Ok(run) => {
                self.runs.push(run);
                self.pending = Vec::new();
            }
            Err(_) => self.limit = usize::MAX,
        }
    }

    /// The index. A blob recorded more than once is found in a packfile no maintenance
    /// doomed, if any holds it, whatever order the states came in.
    pub fn finish(mut self) -> Index {
        if !self.runs.is_empty() && !self.pending.is_empty() {
            self.spill();
        }
        let IndexBuilder { packs: all_packs, doomed, deleted, pending, runs, hasher, metadata_only, .. } = self;
        let is_doomed: Vec<bool> = all_packs.iter().map(|p| doomed.contains(p)).collect();
        let mut index = Index { doomed, deleted, metadata_only, ..Default::default() };
        // Only packfiles some entry still points into: one whose every blob is held in
        // another as well is no index's, and maintenance sees it as an orphan.
        let mut renumber = vec![u32::MAX; all_packs.len()];
        let mut packs = Vec::new();
        let mut renumbered = |slot: &mut Slot| {
            let n = &mut renumber[slot.pack as usize];
            if *n == u32::MAX {
                *n = packs.len() as u32;
                packs.push(all_packs[slot.pack as usize]);
            }
            slot.pack = *n;
        };
        if runs.is_empty() || !pending.is_empty() {
            // In memory (or a run could not be written: everything goes back to memory).
            let mut entries: Vec<(BlobKey, Slot)> = pending.into_iter().map(|e| (e.0, e.1)).collect();
            for run in &runs {
                entries.extend(run.iter().map(|e| e.unwrap_or_else(|e| unreadable(e))).map(|e| (e.0, e.1)));
            }
            // Among records of one key, those in live packfiles first; the first one stays.
            entries.sort_unstable_by(|a: &(BlobKey, Slot), b: &(BlobKey, Slot)| {
                a.0.cmp(&b.0).then(is_doomed[a.1.pack as usize].cmp(&is_doomed[b.1.pack as usize]))
            });
            entries.dedup_by(|a, b| a.0 == b.0);
            entries.shrink_to_fit();
            for (_, slot) in entries.iter_mut() {
                renumbered(slot);
            }
            index.packs = packs;
            index.table = Table::Memory { fanout: Fanout::build(&entries), entries };
            return index;
        }
        let mut all = merged(&runs).peekable();
        let mut snapshots = Vec::new();
        let deduped = std::iter::from_fn(|| {
            let mut best = match all.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(e)),
            };
            while let Some(Ok(next)) = all.peek() {
                if next.0 != best.0 {
                    break;
                }
                if is_doomed[best.1.pack as usize] && !is_doomed[next.1.pack as usize] {
                    best = *next;
                }
                all.next();
            }
            renumbered(&mut best.1);
            if best.0 .0 == BlobType::Snapshot {
                snapshots.push(SnapshotId(best.0 .1 .0));
            }
            Some(Ok(best))
        });
        let most = runs.iter().map(|r| r.len()).sum();
        let run = SortedRun::from_sorted(most, deduped, |k| hasher.hash_one(k)).unwrap_or_else(|e| {
            panic!(
                "cannot write the index to the temporary directory ({e}): free space in $TMPDIR \
                 (else /tmp), point TMPDIR elsewhere, or raise PLAKAR_INDEX_MEMORY"
            )
        });
        index.packs = packs;
        index.table = Table::Disk { run, hasher, snapshots };
        index
    }
}

impl Index {
    /// Builds the index of a set of states, taking their records (see IndexBuilder).
    pub fn from_states(states: &mut [State]) -> Index {
        Self::from_states_with(states, MEMORY_ENTRIES)
    }

    /// The same, going to disk beyond `limit` entries.
    pub fn from_states_with(states: &mut [State], limit: usize) -> Index {
        let mut b = IndexBuilder::new(limit);
        for s in states.iter_mut() {
            b.add(s);
        }
        b.finish()
    }

    /// True when the index is in sorted runs on disk rather than in memory.
    pub fn on_disk(&self) -> bool {
        matches!(self.table, Table::Disk { .. })
    }

    /// True when the index was built without chunks (IndexBuilder::metadata_only).
    pub fn metadata_only(&self) -> bool {
        self.metadata_only
    }

    fn slot(&self, kind: BlobType, id: &BlobId) -> Option<Slot> {
        // "Not there" would be a lie: a check or a restore through such an index would
        // report every chunk missing.
        assert!(
            !(self.metadata_only && kind == BlobType::Chunk),
            "a chunk was looked up in an index built without chunks"
        );
        match &self.table {
            Table::Memory { entries, fanout } => {
                if entries.is_empty() {
                    return None;
                }
                let range = &entries[fanout.range(kind, id)];
                let key = (kind, *id);
                range.binary_search_by(|(k, _)| k.cmp(&key)).ok().map(|i| range[i].1)
            }
            Table::Disk { run, hasher, .. } => {
                let key = (kind, *id);
                run.find(&key, hasher.hash_one(key)).unwrap_or_else(|e| unreadable(e)).map(|e| e.1)
            }
        }
    }

    fn location(&self, kind: BlobType, s: &Slot) -> Location {
        Location { kind, pack: self.packs[s.pack as usize], offset: s.offset, length: s.length }
    }

    pub fn get(&self, kind: BlobType, id: &BlobId) -> Option<Location> {
        self.slot(kind, id).map(|s| self.location(kind, &s))
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

    /// Stops at a use that needs every blob of an index built without chunks (a
    /// maintenance would see every data packfile as unused).
    fn whole(&self, what: &str) {
        assert!(!self.metadata_only, "{what} of an index built without chunks");
    }

    pub fn len(&self) -> usize {
        self.whole("len");
        match &self.table {
            Table::Memory { entries, .. } => entries.len(),
            Table::Disk { run, .. } => run.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live snapshots: snapshot blobs not deleted by a later state.
    pub fn snapshots(&self) -> Vec<SnapshotId> {
        let all: Vec<SnapshotId> = match &self.table {
            Table::Memory { entries, .. } => {
                let first = entries.partition_point(|((kind, _), _)| *kind < BlobType::Snapshot);
                entries[first..].iter().map(|((_, id), _)| SnapshotId(id.0)).collect()
            }
            Table::Disk { snapshots, .. } => snapshots.clone(),
        };
        all.into_iter().filter(|id| !self.deleted.contains(id)).collect()
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

    /// Every (type, id, location), for maintenance, in key order.
    pub fn entries(&self) -> Box<dyn Iterator<Item = (BlobId, Location)> + '_> {
        self.whole("entries");
        match &self.table {
            Table::Memory { entries, .. } => {
                Box::new(entries.iter().map(|((kind, id), s)| (*id, self.location(*kind, s))))
            }
            Table::Disk { run, .. } => Box::new(run.iter().map(|e| {
                let Entry((kind, id), s) = e.unwrap_or_else(|e| unreadable(e));
                (id, self.location(kind, &s))
            })),
        }
    }

    /// Packfiles some record points into.
    pub fn packs(&self) -> &[PackId] {
        self.whole("packs");
        &self.packs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kloset::state::Record;

    /// In memory, and on disk with runs of one, two and three entries (pending entries
    /// and runs mixed).
    const LIMITS: [usize; 4] = [MEMORY_ENTRIES, 1, 2, 3];

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

    fn metadata_index(limit: usize) -> (Index, [u8; 32]) {
        let mut blobs: Vec<Record> = (0..20).map(|n| rec(BlobType::Chunk, id(n, 0, 0), 1, n as u32)).collect();
        blobs.push(rec(BlobType::Tree, id(5, 0, 0), 2, 7));
        blobs.push(rec(BlobType::Snapshot, id(9, 9, 9), 3, 0));
        let mut b = IndexBuilder::new(limit).metadata_only();
        b.add(&mut state(blobs, &[]));
        (b.finish(), id(5, 0, 0))
    }

    #[test]
    fn a_metadata_index_keeps_trees_and_snapshots_and_no_chunk() {
        for limit in LIMITS {
            let (index, tree) = metadata_index(limit);
            assert!(index.metadata_only());
            // Twenty chunks and one tree and one snapshot: only the last two are kept, so
            // a limit of three entries stays in memory.
            assert_eq!(index.on_disk(), limit <= 2, "limit {limit}");
            assert_eq!(index.get(BlobType::Tree, &BlobId(tree)).unwrap().offset, 7);
            assert_eq!(index.snapshots(), vec![SnapshotId(id(9, 9, 9))]);
        }
    }

    #[test]
    #[should_panic(expected = "without chunks")]
    fn a_metadata_index_refuses_a_chunk_lookup_rather_than_say_it_is_missing() {
        metadata_index(MEMORY_ENTRIES).0.contains(BlobType::Chunk, &BlobId(id(5, 0, 0)));
    }

    #[test]
    #[should_panic(expected = "without chunks")]
    fn a_metadata_index_refuses_to_list_packfiles_for_maintenance() {
        metadata_index(MEMORY_ENTRIES).0.packs();
    }

    #[test]
    fn finds_every_blob_by_type_and_id_at_the_edges_of_its_bucket() {
        for limit in LIMITS {
            let ids = [id(0, 0, 0), id(0, 0, 1), id(0, 1, 0), id(0xff, 0xff, 0xff), id(0x80, 0, 5), id(0x7f, 0xff, 5)];
            let mut blobs = Vec::new();
            for (n, i) in ids.iter().enumerate() {
                blobs.push(rec(BlobType::Chunk, *i, 1, n as u32));
                blobs.push(rec(BlobType::Tree, *i, 2, 100 + n as u32));
            }
            blobs.push(rec(BlobType::Snapshot, id(0xff, 0xff, 0xfe), 3, 0));
            let index = Index::from_states_with(&mut [state(blobs, &[])], limit);
            assert_eq!((index.len(), index.on_disk()), (13, limit < 13));
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
    }

    #[test]
    fn finds_every_one_of_many_uniform_ids_and_none_that_is_not_there() {
        // Enough chunks for buckets of their own size (2^17 of them), a few trees, one
        // snapshot: each type's buckets are sized to its count.
        let uniform = |n: u32| *blake3::hash(&n.to_le_bytes()).as_bytes();
        let mut blobs: Vec<Record> = (0..200_000).map(|n| rec(BlobType::Chunk, uniform(n), 1, n)).collect();
        blobs.extend((0..300).map(|n| rec(BlobType::Tree, uniform(n), 2, n)));
        blobs.push(rec(BlobType::Snapshot, uniform(7), 3, 0));
        let index = Index::from_states(&mut [state(blobs, &[])]);
        assert!(!index.on_disk());
        for n in 0..200_000 {
            assert_eq!(index.get(BlobType::Chunk, &BlobId(uniform(n))).map(|l| l.offset), Some(n));
        }
        for n in 0..300 {
            assert_eq!(index.get(BlobType::Tree, &BlobId(uniform(n))).map(|l| l.offset), Some(n));
        }
        for n in 200_000..210_000 {
            assert!(!index.contains(BlobType::Chunk, &BlobId(uniform(n))));
        }
        assert!(!index.contains(BlobType::Tree, &BlobId(uniform(300))));
        assert!(index.contains(BlobType::Snapshot, &BlobId(uniform(7))));
        assert!(!index.contains(BlobType::Snapshot, &BlobId(uniform(8))));
    }

    #[test]
    fn a_blob_in_a_live_and_a_doomed_packfile_is_found_in_the_live_one_in_any_order() {
        for limit in LIMITS {
            let x = id(3, 4, 5);
            for doomed_first in [true, false] {
                let doomed = state(vec![rec(BlobType::Chunk, x, 9, 1)], &[]);
                let live = state(vec![rec(BlobType::Chunk, x, 8, 2)], &[]);
                let merge = state(vec![], &[9]);
                let mut states = if doomed_first { vec![doomed, merge, live] } else { vec![live, doomed, merge] };
                let index = Index::from_states_with(&mut states, limit);
                assert_eq!(index.len(), 1);
                assert_eq!(index.get(BlobType::Chunk, &BlobId(x)).unwrap().pack, PackId([8; 32]));
                assert!(index.usable(BlobType::Chunk, &BlobId(x)));
                assert!(states.iter().all(|s| s.blobs.is_empty()), "records taken");
            }
            // Held only in a doomed packfile: readable, never used for dedup.
            let index = Index::from_states_with(&mut [state(vec![rec(BlobType::Chunk, x, 9, 1)], &[9])], limit);
            assert!(index.contains(BlobType::Chunk, &BlobId(x)) && !index.usable(BlobType::Chunk, &BlobId(x)));
        }
    }

    #[test]
    fn a_packfile_whose_every_blob_is_held_elsewhere_is_not_listed() {
        for limit in LIMITS {
            let x = id(3, 4, 5);
            let (a, b) =
                (state(vec![rec(BlobType::Chunk, x, 1, 0)], &[]), state(vec![rec(BlobType::Chunk, x, 2, 0)], &[]));
            let index = Index::from_states_with(&mut [a, b], limit);
            assert_eq!(index.packs().len(), 1);
            assert_eq!(index.get(BlobType::Chunk, &BlobId(x)).unwrap().pack, index.packs()[0]);
        }
    }

    #[test]
    fn deleted_snapshots_are_not_listed() {
        for limit in LIMITS {
            let (a, b) = (id(1, 1, 1), id(2, 2, 2));
            let mut s = state(vec![rec(BlobType::Snapshot, a, 1, 0), rec(BlobType::Snapshot, b, 1, 10)], &[]);
            s.deleted = vec![SnapshotId(a)];
            let index = Index::from_states_with(&mut [s], limit);
            assert_eq!(index.snapshots(), vec![SnapshotId(b)]);
            assert!(index.has_snapshot_blob(&SnapshotId(a)));
        }
    }

    #[test]
    fn on_disk_it_answers_as_in_memory_across_pages_runs_and_duplicates() {
        // 3,000 records of 2,000 keys in 40 packfiles over 7 states, some keys in several
        // packfiles (a doomed one among them); runs of 250 entries.
        let key = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
            b
        };
        let mut states: Vec<State> = (0..7).map(|_| state(Vec::new(), &[])).collect();
        for n in 0..3000u32 {
            let kind = [BlobType::Chunk, BlobType::Tree, BlobType::Snapshot][(n % 2000 % 3) as usize];
            let pack = if n < 2000 { n % 40 } else { (n + 1) % 40 };
            states[(n % 7) as usize].blobs.push(rec(kind, key(n % 2000), pack as u8, n));
        }
        states[3].doomed = vec![PackId([5; 32])];
        states[4].deleted = vec![SnapshotId(key(3))];
        let copy = |states: &[State]| -> Vec<State> {
            states
                .iter()
                .map(|s| State {
                    blobs: s.blobs.clone(),
                    doomed: s.doomed.clone(),
                    deleted: s.deleted.clone(),
                    ..Default::default()
                })
                .collect()
        };
        let memory = Index::from_states(&mut copy(&states));
        let disk = Index::from_states_with(&mut copy(&states), 250);
        assert!(disk.on_disk() && !memory.on_disk());
        assert_eq!(disk.len(), 2000);
        // Where a key has records in two live packfiles, either may stand: the same keys,
        // each at one of its records, in a live packfile when it has one.
        let keys = |i: &Index| i.entries().map(|(id, l)| (l.kind, id)).collect::<Vec<_>>();
        assert_eq!(keys(&disk), keys(&memory));
        let records: Vec<Record> = states.iter().flat_map(|s| s.blobs.clone()).collect();
        let mut referenced = HashSet::new();
        for (id, l) in disk.entries() {
            let of_key: Vec<&Record> = records.iter().filter(|r| r.id == id && r.kind == l.kind).collect();
            assert!(of_key.iter().any(|r| r.pack == l.pack && r.offset == l.offset), "{id:?}");
            assert!(l.pack != PackId([5; 32]) || of_key.iter().all(|r| r.pack == l.pack), "{id:?} in a doomed pack");
            assert_eq!(disk.get(l.kind, &id), Some(l));
            referenced.insert(l.pack);
        }
        assert_eq!(disk.packs().iter().copied().collect::<HashSet<_>>(), referenced);
        assert_eq!(disk.snapshots(), memory.snapshots());
        assert!(!disk.snapshots().contains(&SnapshotId(key(3))));
        for n in 0..2100u32 {
            for kind in KINDS {
                let id = BlobId(key(n));
                assert_eq!(disk.contains(kind, &id), memory.contains(kind, &id), "key {n}");
                assert_eq!(disk.usable(kind, &id), memory.usable(kind, &id), "key {n}");
            }
        }
        // A key in the doomed packfile 5 and a live one is usable.
        for both in [5u32, 45, 85] {
            let kind = [BlobType::Chunk, BlobType::Tree, BlobType::Snapshot][(both % 3) as usize];
            assert_eq!(disk.get(kind, &BlobId(key(both))).expect("indexed").pack, PackId([6; 32]));
            assert!(disk.usable(kind, &BlobId(key(both))));
        }
    }
}
