//! Packs blobs into packfiles during a backup. Encoding runs on the caller's thread; full
//! packs go through a bounded channel to uploader threads, so memory stays at a few
//! packfiles whatever the input size and slow storage slows the producers down.

use crate::kloset::blob::{self, BlobType};
use crate::kloset::crypto::Keys;
use crate::kloset::error::{Error, Result};
use crate::kloset::id::BlobId;
use crate::kloset::index::Index;
use crate::kloset::packfile::PackBuilder;
use crate::kloset::state::Record;
use crate::kloset::store::{Resource, Store, StoreError};
use crossbeam_channel::{bounded, Sender};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Packer<'a> {
    index: &'a Index,
    keys: Arc<Keys>,
    level: Option<i32>,
    max_size: usize,
    /// Packfiles being filled: file content, and metadata (trees, snapshot headers) kept
    /// apart so a walk of the trees reads a few dense packfiles, not every one.
    current: [Mutex<PackBuilder>; 2],
    seen: Mutex<HashSet<BlobId>>,
    tx: Option<Sender<PackBuilder>>,
    workers: Vec<JoinHandle<()>>,
    records: Arc<Mutex<Vec<Record>>>,
    failed: Arc<Mutex<Option<StoreError>>>,
    pub stored_bytes: Arc<AtomicU64>,
    pub new_blobs: AtomicU64,
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
        // A rendezvous channel: a full packfile waits for a free uploader, so at most
        // `uploaders + 2` packfiles are in memory at once.
        let (tx, rx) = bounded::<PackBuilder>(0);
        let records = Arc::new(Mutex::new(Vec::new()));
        let failed: Arc<Mutex<Option<StoreError>>> = Arc::new(Mutex::new(None));
        let stored_bytes = Arc::new(AtomicU64::new(0));
        let workers = (0..uploaders.max(1))
            .map(|_| {
                let (rx, store, keys) = (rx.clone(), store.clone(), keys.clone());
                let (records, failed, stored) = (records.clone(), failed.clone(), stored_bytes.clone());
                std::thread::spawn(move || {
                    for pack in rx {
                        if failed.lock().expect("lock").is_some() {
                            continue; // drain so producers never block on a dead uploader
                        }
                        let (id, bytes, entries) = pack.finish(&keys);
                        match store.put(Resource::Packfile, &id.0, &bytes) {
                            Ok(()) => {
                                stored.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                                let mut r = records.lock().expect("lock");
                                r.extend(entries.iter().map(|e| Record {
                                    kind: e.kind,
                                    id: e.id,
                                    pack: id,
                                    offset: e.offset,
                                    length: e.length,
                                }));
                            }
                            Err(e) => {
                                failed.lock().expect("lock").get_or_insert(e);
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            index,
            keys,
            level,
            max_size: max_size as usize,
            current: [Mutex::new(PackBuilder::new()), Mutex::new(PackBuilder::new())],
            seen: Mutex::new(HashSet::new()),
            tx: Some(tx),
            workers,
            records,
            failed,
            stored_bytes,
            new_blobs: AtomicU64::new(0),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// True when the store already has the blob or this run already packed it.
    pub fn known(&self, id: &BlobId) -> bool {
        self.index.contains(id) || self.seen.lock().expect("lock").contains(id)
    }

    /// Stores a blob unless it is already known. Returns whether it was new.
    pub fn add(&self, kind: BlobType, id: BlobId, plain: &[u8]) -> Result<bool> {
        if self.index.contains(&id) || !self.seen.lock().expect("lock").insert(id) {
            return Ok(false);
        }
        let encoded = blob::encode(&self.keys, kind, &id, plain, self.level);
        self.add_encoded(kind, id, &encoded)?;
        Ok(true)
    }

    /// Stores an already encoded blob (maintenance and sync copy blobs without decoding).
    pub fn add_encoded(&self, kind: BlobType, id: BlobId, encoded: &[u8]) -> Result<()> {
        self.check_failed()?;
        self.seen.lock().expect("lock").insert(id);
        self.new_blobs.fetch_add(1, Ordering::Relaxed);
        let full = {
            let mut cur = self.current[usize::from(kind != BlobType::Chunk)].lock().expect("lock");
            cur.add(kind, id, encoded);
            if cur.len() >= self.max_size {
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
        if let Some(tx) = &self.tx {
            tx.send(pack).map_err(|_| Error::Other("packfile uploaders stopped".into()))?;
        }
        Ok(())
    }

    fn check_failed(&self) -> Result<()> {
        match &*self.failed.lock().expect("lock") {
            Some(e) => Err(Error::Store(StoreError::new(e.kind, e.message.clone()))),
            None => Ok(()),
        }
    }

    /// Flushes the last packfile, waits for every upload and returns where each blob went.
    pub fn finish(mut self) -> Result<Vec<Record>> {
        for cur in &self.current {
            let last = std::mem::take(&mut *cur.lock().expect("lock"));
            if !last.is_empty() {
                self.send(last)?;
            }
        }
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            w.join().map_err(|_| Error::Other("a packfile uploader panicked".into()))?;
        }
        self.check_failed()?;
        Ok(std::mem::take(&mut *self.records.lock().expect("lock")))
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
