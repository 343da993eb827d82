//! Packs blobs into packfiles during a backup. Encoding runs on the caller's thread; full
//! packs go through a bounded channel to uploader threads, so memory stays at a few
//! packfiles whatever the input size and slow storage slows the producers down.

use crate::kloset::blob::{self, BlobType};
use crate::kloset::cache::Cache;
use crate::kloset::crypto::Keys;
use crate::kloset::error::{Error, Result};
use crate::kloset::id::BlobId;
use crate::kloset::id::StateId;
use crate::kloset::index::Index;
use crate::kloset::keyset::KeySet;
use crate::kloset::lock::Lease;
use crate::kloset::packfile::PackBuilder;
use crate::kloset::state::{Record, State};
use crate::kloset::store::{Content, Resource, Store, StoreError, StoreErrorKind};
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A checkpoint is also written once this many records wait (76 bytes each in memory, and
/// as much again while the state is sealed): what a run keeps of the packfiles it stored
/// is bounded (10 MiB), not its length. A million files make 16 checkpoint states.
pub const CHECKPOINT_RECORDS: usize = 1 << 16;

/// The smallest a data packfile is cut at when several writers share the packfile size:
/// large enough that an object store is not sent many small objects. The number of data
/// packfiles being filled is capped so that together they are cut at the packfile size.
const MIN_DATA_PACK: usize = 4 << 20;

/// Records of uploaded packfiles, and the checkpoints that publish them early.
struct Shared {
    records: Mutex<Vec<Record>>,
    failed: Mutex<Option<StoreError>>,
    /// Packfiles handed to uploaders and not yet stored (or failed).
    in_flight: Mutex<usize>,
    landed: Condvar,
    /// When set, uploaders write a state of what they stored at most this often, so an
    /// interrupted run leaves its packfiles indexed and the next run does not send them again.
    checkpoint_every: Option<Duration>,
    /// ... or as soon as this many records wait.
    checkpoint_records: AtomicUsize,
    last_checkpoint: Mutex<Instant>,
    checkpoints: Mutex<Vec<StateId>>,
    /// The parents of checkpoint states: the heads of the index the writer read.
    heads: Vec<StateId>,
    /// Set when an upload stopped because the lock was lost.
    lost: AtomicBool,
    /// The writer's lock: checkpoints are published through it, and uploads stop once it
    /// is lost.
    lease: Option<Lease>,
}

impl Shared {
    fn maybe_checkpoint(&self, store: &dyn Store, keys: &Keys) {
        let Some(every) = self.checkpoint_every else { return };
        // One uploader checkpoints at a time; the others go on uploading.
        let Ok(mut last) = self.last_checkpoint.try_lock() else { return };
        let waiting = self.records.lock().expect("lock").len();
        if last.elapsed() < every && waiting < self.checkpoint_records.load(Ordering::Relaxed) {
            return;
        }
        // A checkpoint lets the next run skip what arrived; it never commits a snapshot.
        // A header's packfile may land before the data packfiles its snapshot needs (sync
        // adds headers while data is still in flight), and the run may yet fail: only the
        // final state, written once every upload landed, lists snapshot headers.
        let batch: Vec<Record> = {
            // In place: the records are the largest thing a checkpoint holds.
            let mut records = self.records.lock().expect("lock");
            let mut batch = std::mem::take(&mut *records);
            *records = batch.extract_if(.., |r| r.kind == BlobType::Snapshot).collect();
            batch
        };
        if batch.is_empty() {
            return;
        }
        let state = State {
            created: chrono::Utc::now().timestamp(),
            blobs: batch,
            parents: self.heads.clone(),
            ..Default::default()
        };
        let published = match &self.lease {
            Some(lease) => lease.publish(keys, &state).map_err(|e| e.to_string()),
            None => {
                let id = StateId::random();
                store.put(Resource::State, &id.0, &state.encode(keys, &id)).map(|_| id).map_err(|e| e.to_string())
            }
        };
        match published {
            Ok(id) => {
                self.checkpoints.lock().expect("lock").push(id);
                *last = Instant::now();
            }
            // Not fatal: the records go into the final state instead (which fails in turn
            // if the lock was lost).
            Err(_) => self.records.lock().expect("lock").extend(state.blobs),
        }
    }

    /// Stores one full packfile and records where its blobs went.
    fn upload(&self, store: &dyn Store, keys: &Keys, stored: &AtomicU64, pack: PackBuilder) {
        if self.failed.lock().expect("lock").is_some() {
            return; // after a failure, drain so producers never block on a dead uploader
        }
        if let Some(lease) = self.lease.as_ref().filter(|l| l.lost()) {
            let e = lease.check().expect_err("a lost lease fails its check");
            self.failed.lock().expect("lock").get_or_insert(StoreError::new(StoreErrorKind::Other, e.to_string()));
            self.lost.store(true, Ordering::SeqCst);
            return;
        }
        let (id, bytes, entries) = pack.finish(keys);
        // Only a packfile of file content alone may go to a cold tier (see `Content`).
        let content = if entries.iter().all(|e| e.kind == BlobType::Chunk) { Content::Data } else { Content::Metadata };
        match store.put_hinted(Resource::Packfile, &id.0, &bytes, content) {
            Ok(()) => {
                stored.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                self.records.lock().expect("lock").extend(entries.iter().map(|e| Record {
                    kind: e.kind,
                    id: e.id,
                    pack: id,
                    offset: e.offset,
                    length: e.length,
                }));
                self.maybe_checkpoint(store, keys);
            }
            Err(e) => {
                self.failed.lock().expect("lock").get_or_insert(e);
            }
        }
    }
}

pub struct Packer<'a> {
    index: &'a Index,
    keys: Arc<Keys>,
    level: Option<i32>,
    max_size: usize,
    /// Metadata (trees, snapshot headers) being packed, apart from file content so that a
    /// walk of the trees reads a few dense packfiles, not every one.
    meta: Mutex<PackBuilder>,
    /// File content being packed: one packfile per worker thread (`writers`), so that a
    /// packfile holds what one thread read in turn, not the files of directories far apart
    /// interleaved (a restore in tree order would read each stretch once per directory).
    data: Vec<Mutex<PackBuilder>>,
    /// Size at which a data packfile is sent: the slots share `max_size` between them, so
    /// memory held by packfiles being filled does not grow with the threads.
    data_max: usize,
    seen: Mutex<KeySet>,
    /// Inline mode (no uploader threads): the store and keys the caller uploads with.
    inline: Option<(Arc<dyn Store>, Arc<Keys>)>,
    /// Inline under a seeded harness (the simulation): one full packfile is held back and
    /// the seed picks which of two goes up first, as two uploader threads would race, so
    /// the simulation sees a run's packfiles land out of order.
    held: Option<Mutex<Option<PackBuilder>>>,
    tx: Option<Sender<PackBuilder>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    pub stored_bytes: Arc<AtomicU64>,
    pub new_blobs: AtomicU64,
    /// Where new trees and headers also go, so that the next run reads them locally.
    cache: Option<Arc<Cache>>,
}

impl<'a> Packer<'a> {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        index: &'a Index,
        level: Option<i32>,
        max_size: u64,
        uploaders: usize,
    ) -> Self {
        Self::with_checkpoints(store, keys, index, level, max_size, uploaders, None, None)
    }

    /// Same, writing a checkpoint state of the stored packfiles at most every `every`,
    /// through the writer's lock when it has one. `uploaders` 0 uploads on the caller's
    /// thread (a deterministic simulation needs one thread per operation).
    #[allow(clippy::too_many_arguments)]
    pub fn with_checkpoints(
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        index: &'a Index,
        level: Option<i32>,
        max_size: u64,
        uploaders: usize,
        every: Option<Duration>,
        lease: Option<Lease>,
    ) -> Self {
        // A rendezvous channel: a full packfile waits for a free uploader, so at most
        // `uploaders + 2` packfiles are in memory at once.
        let (tx, rx) = bounded::<PackBuilder>(0);
        let shared = Arc::new(Shared {
            records: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
            in_flight: Mutex::new(0),
            landed: Condvar::new(),
            checkpoint_every: every,
            checkpoint_records: AtomicUsize::new(CHECKPOINT_RECORDS),
            last_checkpoint: Mutex::new(Instant::now()),
            checkpoints: Mutex::new(Vec::new()),
            heads: index.heads.clone(),
            lease,
            lost: AtomicBool::new(false),
        });
        let stored_bytes = Arc::new(AtomicU64::new(0));
        let workers = (0..uploaders)
            .map(|_| {
                let (rx, store, keys) = (rx.clone(), store.clone(), keys.clone());
                let (sh, stored) = (shared.clone(), stored_bytes.clone());
                crate::kloset::rng::spawn(move || {
                    for pack in rx {
                        sh.upload(store.as_ref(), &keys, &stored, pack);
                        *sh.in_flight.lock().expect("lock") -= 1;
                        sh.landed.notify_all();
                    }
                })
            })
            .collect();
        let inline = (uploaders == 0).then(|| (store.clone(), keys.clone()));
        let held = (uploaders == 0 && crate::kloset::rng::current().is_some()).then(|| Mutex::new(None));
        Self {
            index,
            keys,
            level,
            max_size: max_size as usize,
            meta: Mutex::new(PackBuilder::new()),
            data: vec![Mutex::new(PackBuilder::new())],
            data_max: max_size as usize,
            seen: Mutex::new(KeySet::new()),
            inline,
            held,
            tx: Some(tx),
            workers,
            shared,
            stored_bytes,
            new_blobs: AtomicU64::new(0),
            cache: None,
        }
    }

    /// Puts the trees and snapshot headers this run stores into the local cache too. An
    /// entry of a run that never commits is never read: the cache serves only blobs the
    /// index locates (docs/CACHE.md).
    pub fn caching(mut self, cache: Option<Arc<Cache>>) -> Self {
        self.cache = cache;
        self
    }

    /// One data packfile per thread of a pool of `n` (rayon's thread index picks it), as
    /// many as `max_size` holds of MIN_DATA_PACK (threads beyond share them); each is sent
    /// at `max_size` divided among them.
    pub fn writers(mut self, n: usize) -> Self {
        let slots = n.clamp(1, (self.max_size / MIN_DATA_PACK).max(1));
        self.data = (0..slots).map(|_| Mutex::new(PackBuilder::new())).collect();
        self.data_max = self.max_size / slots;
        self
    }

    /// Sends the data packfiles being filled, the partly filled ones merged while they fit
    /// in `max_size`: the end of a small backup makes one packfile, not one per thread.
    fn send_data(&self) -> Result<()> {
        let mut cur: Option<PackBuilder> = None;
        for slot in &self.data {
            let next = std::mem::take(&mut *slot.lock().expect("lock"));
            if next.is_empty() {
                continue;
            }
            cur = Some(match cur.take() {
                Some(mut c) if c.len() + next.len() <= self.max_size => {
                    c.append(next);
                    c
                }
                Some(c) => {
                    self.send(c)?;
                    next
                }
                None => next,
            });
        }
        match cur {
            Some(c) => self.send(c),
            None => Ok(()),
        }
    }

    /// Checkpoints (when on) also once `n` records wait, however recent the last one.
    pub fn checkpoint_records(self, n: usize) -> Self {
        self.shared.checkpoint_records.store(n.max(1), Ordering::Relaxed);
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// True when the store has the blob where a writer may use it, or this run already
    /// packed it.
    pub fn known(&self, kind: BlobType, id: &BlobId) -> bool {
        self.index.usable(kind, id) || self.seen.lock().expect("lock").contains(&(kind, *id))
    }

    /// Stores a blob unless it is already known (as the same type: a chunk never stands in
    /// for a tree node with the same bytes). Returns whether it was new.
    pub fn add(&self, kind: BlobType, id: BlobId, plain: &[u8]) -> Result<bool> {
        if self.index.usable(kind, &id) || !self.seen.lock().expect("lock").insert((kind, id)) {
            return Ok(false);
        }
        let encoded = blob::encode(&self.keys, kind, &id, plain, self.level);
        self.add_encoded(kind, id, &encoded)?;
        if let Some(c) = self.cache.as_ref().filter(|_| kind != BlobType::Chunk) {
            c.put_blob(kind, &id, &encoded);
        }
        Ok(true)
    }

    /// Stores an already encoded blob (maintenance and sync copy blobs without decoding).
    pub fn add_encoded(&self, kind: BlobType, id: BlobId, encoded: &[u8]) -> Result<()> {
        self.check_failed()?;
        self.seen.lock().expect("lock").insert((kind, id));
        self.new_blobs.fetch_add(1, Ordering::Relaxed);
        let full = {
            let (mut cur, max) = if kind == BlobType::Chunk {
                let slot = rayon::current_thread_index().unwrap_or(0) % self.data.len();
                (self.data[slot].lock().expect("lock"), self.data_max)
            } else {
                (self.meta.lock().expect("lock"), self.max_size)
            };
            cur.add(kind, id, encoded);
            if cur.len() >= max {
                Some(std::mem::take(&mut *cur))
            } else {
                None
            }
        };
        if let Some(pack) = full {
            self.send(pack)?;
        }
        Ok(())
    }

    fn send(&self, pack: PackBuilder) -> Result<()> {
        if let Some((store, keys)) = &self.inline {
            let pack = match &self.held {
                None => pack,
                Some(held) => {
                    let mut held = held.lock().expect("lock");
                    let Some(old) = held.take() else {
                        *held = Some(pack);
                        return self.check_failed();
                    };
                    let (now, later) =
                        if crate::kloset::rng::u64().is_multiple_of(2) { (old, pack) } else { (pack, old) };
                    *held = Some(later);
                    now
                }
            };
            self.shared.upload(store.as_ref(), keys, &self.stored_bytes, pack);
            return self.check_failed();
        }
        if let Some(tx) = &self.tx {
            *self.shared.in_flight.lock().expect("lock") += 1;
            if tx.send(pack).is_err() {
                *self.shared.in_flight.lock().expect("lock") -= 1;
                return Err(Error::Other("packfile uploaders stopped".into()));
            }
        }
        Ok(())
    }

    /// Sends the data packfiles being filled and waits until every upload so far is done,
    /// so that `stored_bytes` counts all of them. Metadata keeps filling its packfile: see
    /// `pending_bytes`.
    pub fn flush_data(&self) -> Result<()> {
        self.send_data()?;
        self.upload_held()?;
        let mut n = self.shared.in_flight.lock().expect("lock");
        while *n > 0 {
            n = self.shared.landed.wait(n).expect("lock");
        }
        drop(n);
        self.check_failed()
    }

    /// Uploads the packfile held back under a seeded harness, if any.
    fn upload_held(&self) -> Result<()> {
        let held = self.held.as_ref().and_then(|h| h.lock().expect("lock").take());
        if let (Some(pack), Some((store, keys))) = (held, &self.inline) {
            self.shared.upload(store.as_ref(), keys, &self.stored_bytes, pack);
        }
        self.check_failed()
    }

    /// Bytes packed and not yet handed to an uploader.
    pub fn pending_bytes(&self) -> u64 {
        self.data.iter().chain([&self.meta]).map(|c| c.lock().expect("lock").len() as u64).sum()
    }

    /// Checkpoint states written so far: they hold part of this run's records.
    pub fn checkpoints(&self) -> Vec<StateId> {
        self.shared.checkpoints.lock().expect("lock").clone()
    }

    fn check_failed(&self) -> Result<()> {
        if self.shared.lost.load(Ordering::SeqCst) {
            if let Some(l) = &self.shared.lease {
                l.check()?;
            }
        }
        match &*self.shared.failed.lock().expect("lock") {
            Some(e) => Err(Error::Store(StoreError::new(e.kind, e.message.clone()))),
            None => Ok(()),
        }
    }

    /// Flushes the last packfile, waits for every upload and returns where each blob went
    /// (but for blobs already published by a checkpoint state).
    pub fn finish(mut self) -> Result<Vec<Record>> {
        self.send_data()?;
        let last = std::mem::take(&mut *self.meta.lock().expect("lock"));
        if !last.is_empty() {
            self.send(last)?;
        }
        self.upload_held()?;
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            w.join().map_err(|_| Error::Other("a packfile uploader panicked".into()))?;
        }
        self.check_failed()?;
        Ok(std::mem::take(&mut *self.shared.records.lock().expect("lock")))
    }
}

impl Drop for Packer<'_> {
    fn drop(&mut self) {
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
