//! Blobs fetched ahead of the files that need them, within a budget of bytes held.
//!
//! A planner reserves every use of a blob (a chunk at one position of one file) in the order
//! the files will be written; ranged reads fill the blobs in (`fill`); each file's writer
//! takes its uses in turn (`take`), and a blob leaves memory with its last use. A blob
//! needed by several files or offsets while it is held is fetched once.
//!
//! Invariants that keep this from deadlocking: the planner sends every read for what it
//! reserved before it waits (for room, or for anything else), so a reserved blob is always
//! on its way; writers take files in the order they were planned, so the bytes held belong
//! to files being written or to files that writers reach before any later one. A writer
//! that stops early (a failed file, a refused target) `release`s the uses it did not take.
//! A blob whose read failed is handed out as `None`, and the writer reads it alone.

use crate::kloset::id::BlobId;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

enum Fill {
    Pending,
    /// A slice of the read that brought it: the blobs of one read share its buffer (one
    /// allocation per read, not per blob), which lives until the last of them is taken.
    Ready(Bytes),
    Failed,
}

struct Slot {
    uses: u32,
    len: u64,
    fill: Fill,
}

#[derive(Default)]
struct Table {
    blobs: HashMap<BlobId, Slot>,
    /// Bytes of the blobs reserved and not yet taken for the last time.
    held: u64,
    /// Files being planned or written: how many of their chunks are reserved so far.
    /// A file missing here was released by its writer (or never opened).
    jobs: HashMap<u64, usize>,
    /// No more fills will come (the readers are gone): a writer waiting for one reads alone.
    closed: bool,
    /// Bytes the planner waits to fit, if it waits: freeing wakes it only once they do.
    wanted: Option<u64>,
}

/// What `reserve` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserve {
    /// A new blob: the caller must have it read and `fill` it.
    Fetch,
    /// The blob was already held: one more use of it.
    Shared,
    /// Not enough room: nothing was reserved. Send the reads planned so far, `wait_room`,
    /// and ask again.
    Full,
    /// The file's writer gave up on it: plan no more of it.
    Released,
}

pub struct Prefetch {
    t: Mutex<Table>,
    /// Writers wait here for their blobs; the planner waits on `room`. Apart, so that
    /// freeing each blob wakes nobody who has nothing to do yet.
    ready: Condvar,
    room: Condvar,
    budget: u64,
}

impl Prefetch {
    pub fn new(budget: u64) -> Self {
        Self { t: Mutex::default(), ready: Condvar::new(), room: Condvar::new(), budget }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.t.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts planning file `job`.
    pub fn open(&self, job: u64) {
        self.lock().jobs.insert(job, 0);
    }

    /// Reserves the next use of `id` (`len` bytes as stored) for `job`. A blob larger than
    /// the whole budget is let in when nothing else is held.
    pub fn reserve(&self, job: u64, id: &BlobId, len: u64) -> Reserve {
        let mut t = self.lock();
        let t = &mut *t;
        let Some(planned) = t.jobs.get_mut(&job) else { return Reserve::Released };
        if let Some(s) = t.blobs.get_mut(id) {
            s.uses += 1;
            *planned += 1;
            return Reserve::Shared;
        }
        if t.held > 0 && t.held + len > self.budget {
            return Reserve::Full;
        }
        t.blobs.insert(*id, Slot { uses: 1, len, fill: Fill::Pending });
        t.held += len;
        *planned += 1;
        Reserve::Fetch
    }

    /// Reserves a use of `id` that no read will fill (it is not in the index): the writer
    /// reads it alone, and gets the error that says why.
    pub fn reserve_failed(&self, job: u64, id: &BlobId) {
        let mut t = self.lock();
        let t = &mut *t;
        let Some(planned) = t.jobs.get_mut(&job) else { return };
        *planned += 1;
        let s = t.blobs.entry(*id).or_insert(Slot { uses: 0, len: 0, fill: Fill::Failed });
        s.uses += 1;
    }

    /// Waits until `len` more bytes fit in the budget (or nothing is held).
    pub fn wait_room(&self, len: u64) {
        let mut t = self.lock();
        while t.held > 0 && t.held + len > self.budget {
            t.wanted = Some(len);
            t = self.room.wait(t).unwrap_or_else(|p| p.into_inner());
        }
        t.wanted = None;
    }

    /// Wakes the writers: what was reserved as `Shared` is theirs to take.
    pub fn wake(&self) {
        self.ready.notify_all();
    }

    /// What a read brought: each blob's bytes, or `None` when its read failed.
    pub fn fill(&self, got: Vec<(BlobId, Option<Bytes>)>) {
        let mut t = self.lock();
        for (id, data) in got {
            if let Some(s) = t.blobs.get_mut(&id) {
                s.fill = data.map_or(Fill::Failed, Fill::Ready);
            }
        }
        drop(t);
        self.ready.notify_all();
    }

    /// No more fills will come.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.room.notify_all();
    }

    /// Takes use `i` (the chunk at that position) of `job`, waiting for it to be planned
    /// and read. `None`: the read failed (or never will come); the caller reads it alone.
    pub fn take(&self, job: u64, i: usize, id: &BlobId) -> Option<Bytes> {
        let mut t = self.lock();
        loop {
            let planned = t.jobs.get(&job).is_some_and(|&p| p > i);
            let pending = planned && t.blobs.get(id).is_some_and(|s| matches!(s.fill, Fill::Pending));
            if planned && !pending {
                break;
            }
            if t.closed {
                // Never planned, or its read will not come: read alone, and count the use
                // as taken if it was reserved.
                if planned {
                    self.drop_use(&mut t, id);
                }
                return None;
            }
            t = self.ready.wait(t).unwrap_or_else(|p| p.into_inner());
        }
        let data = match &t.blobs.get(id)?.fill {
            Fill::Ready(d) => Some(d.clone()),
            _ => None,
        };
        self.drop_use(&mut t, id);
        data
    }

    fn drop_use(&self, t: &mut Table, id: &BlobId) {
        let Some(s) = t.blobs.get_mut(id) else { return };
        s.uses -= 1;
        if s.uses == 0 {
            let len = s.len;
            t.blobs.remove(id);
            t.held -= len;
            if t.wanted.is_some_and(|w| t.held == 0 || t.held + w <= self.budget) {
                self.room.notify_one();
            }
        }
    }

    /// Ends `job`: the uses of `chunks` from `taken` on that were reserved and not taken are
    /// dropped, and nothing more of it is planned.
    pub fn release(&self, job: u64, chunks: &[BlobId], taken: usize) {
        let mut t = self.lock();
        let Some(planned) = t.jobs.remove(&job) else { return };
        for id in chunks.iter().take(planned).skip(taken) {
            self.drop_use(&mut t, id);
        }
    }

    /// Bytes held now (tests).
    pub fn held(&self) -> u64 {
        self.lock().held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn id(n: u8) -> BlobId {
        BlobId([n; 32])
    }

    #[test]
    fn a_blob_used_twice_is_fetched_once_and_freed_with_its_last_use() {
        let p = Prefetch::new(100);
        p.open(1);
        p.open(2);
        assert_eq!(p.reserve(1, &id(1), 10), Reserve::Fetch);
        assert_eq!(p.reserve(2, &id(1), 10), Reserve::Shared);
        p.fill(vec![(id(1), Some(Bytes::from(vec![7; 10])))]);
        assert_eq!(p.take(1, 0, &id(1)).as_deref(), Some(&[7; 10][..]));
        assert_eq!(p.held(), 10);
        assert_eq!(p.take(2, 0, &id(1)).as_deref(), Some(&[7; 10][..]));
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn the_budget_holds_and_a_release_frees_what_was_not_taken() {
        let p = Prefetch::new(25);
        p.open(1);
        assert_eq!(p.reserve(1, &id(1), 10), Reserve::Fetch);
        assert_eq!(p.reserve(1, &id(2), 10), Reserve::Fetch);
        assert_eq!(p.reserve(1, &id(3), 10), Reserve::Full);
        p.fill(vec![(id(1), Some(Bytes::from(vec![1; 10]))), (id(2), Some(Bytes::from(vec![2; 10])))]);
        assert!(p.take(1, 0, &id(1)).is_some());
        assert_eq!(p.reserve(1, &id(3), 10), Reserve::Fetch);
        p.release(1, &[id(1), id(2), id(3)], 1);
        assert_eq!(p.held(), 0);
        assert_eq!(p.reserve(1, &id(4), 10), Reserve::Released);
        // Alone, a blob larger than the budget gets in.
        p.open(2);
        assert_eq!(p.reserve(2, &id(5), 1000), Reserve::Fetch);
    }

    #[test]
    fn a_failed_read_hands_out_none_and_a_writer_waits_for_its_blob() {
        let p = Arc::new(Prefetch::new(100));
        p.open(1);
        p.reserve_failed(1, &id(9));
        assert_eq!(p.take(1, 0, &id(9)), None);
        let w = {
            let p = p.clone();
            std::thread::spawn(move || p.take(1, 1, &id(2)))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(p.reserve(1, &id(2), 5), Reserve::Fetch);
        p.fill(vec![(id(2), None)]);
        assert_eq!(w.join().unwrap(), None);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn once_closed_a_writer_waiting_for_an_unplanned_chunk_reads_alone() {
        let p = Arc::new(Prefetch::new(100));
        p.open(1);
        let w = {
            let p = p.clone();
            std::thread::spawn(move || p.take(1, 0, &id(1)))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        p.close();
        assert_eq!(w.join().unwrap(), None);
    }
}
