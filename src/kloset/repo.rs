//! An open repository: its CONFIG, keys and index over a `Store`. Operations live in
//! `ops/`, one file each; this type only reads and writes blobs, trees and states.

use crate::kloset::blob::{self, BlobType};
use crate::kloset::cache::Cache;
use crate::kloset::config::{CreateParams, KeySlot, RepoConfig, MAX_KEY_SLOTS_READ};
use crate::kloset::crypto::Keys;
use crate::kloset::error::{Error, Result};
use crate::kloset::id::{BlobId, SnapshotId, StateId};
use crate::kloset::index::{Index, IndexBuilder, Location};
use crate::kloset::inflight;
use crate::kloset::lineage::Lineage;
use crate::kloset::lock::{Fences, Lease};
use crate::kloset::snapshot::Header;
use crate::kloset::state::State;
use crate::kloset::store::{Resource, Store, StoreErrorKind};
use crate::kloset::tree::{self, Entry, Tree};
use rayon::prelude::*;
use std::sync::Arc;

pub struct Repository {
    pub store: Arc<dyn Store>,
    pub config: RepoConfig,
    pub keys: Arc<Keys>,
    pub index: Index,
    pub states: Vec<StateId>,
    /// States in the store that do not count: written under a lock that was taken over,
    /// after it was (docs/LOCKING.md). Maintenance deletes them.
    pub ignored_states: Vec<StateId>,
    /// States that counted states were built on and that are gone: damage (lineage.rs).
    pub lost_states: Vec<(StateId, StateId)>,
    /// What else maintenance needs of the lineage (lineage.rs): the states non-merge
    /// states name, and whether states without lineage count.
    pub lineage_named: Vec<StateId>,
    pub lineage_legacy: bool,
    /// Set for stores where a request costs a round trip.
    readahead: Option<crate::kloset::readahead::ReadAhead>,
    /// How often a backup or sync publishes what it has stored so far (a checkpoint
    /// state), so that an interrupted run is resumed rather than started over. None: never.
    pub checkpoint_every: Option<std::time::Duration>,
    /// A checkpoint is also written once this many records wait (packer.rs).
    pub checkpoint_records: usize,
    /// The lock this repository was loaded under, if any: states are published through it
    /// (docs/LOCKING.md).
    pub lease: Option<Lease>,
    /// Packfile uploader threads of writers; 0 uploads on the caller's thread.
    pub uploaders: usize,
    /// The local cache of states, headers and trees (cache.rs), for remote stores.
    cache: Option<Arc<Cache>>,
}

/// The fences, then the states, as a store lists them: what a repository is loaded from.
/// Needs no keys, so a reader takes it while its keys are derived (two or three round
/// trips that would otherwise come one after the other).
pub struct Listing {
    fences: Fences,
    states: Vec<[u8; 32]>,
}

impl Listing {
    /// A reader's listing: fences as they are (a reader finishes none), then the states.
    pub fn read(store: &dyn Store) -> Result<Self> {
        Self::read_as(store, false)
    }

    /// The fences are read before the states are listed, always (load_from relies on it:
    /// a fence written after its states were listed is found when it is read again).
    fn read_as(store: &dyn Store, writer: bool) -> Result<Self> {
        let fences = Fences::read(store, writer)?;
        let states = store.list(Resource::State)?;
        Ok(Self { fences, states })
    }
}

/// Requests in flight when a command reads many small objects of a remote store.
pub const REMOTE_IN_FLIGHT: usize = 32;

/// Checkpoints cost one small state object each; a minute apart keeps their number low
/// while an interrupted run loses at most a minute of uploads.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads CONFIG, mapping "nothing there" to a message that says what to do.
/// The key slots are read while CONFIG is (one round trip less on a remote store); they
/// are used only if CONFIG says the store is encrypted.
pub fn read_config(store: &dyn Store) -> Result<RepoConfig> {
    let loc = store.location();
    let (config, slots) = if store.remote() {
        std::thread::scope(|s| {
            let slots = s.spawn(|| read_key_slots(store));
            let config = store.open();
            (config, slots.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        })
    } else {
        (store.open(), Ok(Vec::new()))
    };
    let mut cfg = match config {
        Ok(b) => RepoConfig::decode(&b, &loc)?,
        Err(e) if e.kind == StoreErrorKind::NotFound => {
            return Err(Error::NotAStore(format!(
                "failed to open the repository at {loc}: no store there (create one with: plakar at {loc} create)"
            )))
        }
        Err(e) => return Err(Error::Store(e)),
    };
    if cfg.encrypted() {
        cfg.extra_keys = if store.remote() { slots? } else { read_key_slots(store)? };
        cfg.check_slots().map_err(|e| {
            Error::Corrupt(format!(
                "the key slots of {loc} are damaged: {e}; remove it if no passphrase you use needs it"
            ))
        })?;
    }
    Ok(cfg)
}

/// The key slots added since the store was created (`keys/`), in id order. One removed
/// while listed is skipped; stores that keep none (ptar archives) have none. Bounded before
/// anything is read: how many (a store filled with objects by someone who can write to it
/// must not stall every command) and how big each is.
fn read_key_slots(store: &dyn Store) -> Result<Vec<([u8; 32], KeySlot)>> {
    const MAX_SLOT_BYTES: u64 = 4096;
    let loc = store.location();
    let ids = match store.list(Resource::Key) {
        Ok(ids) => ids,
        Err(e) if matches!(e.kind, StoreErrorKind::Unsupported | StoreErrorKind::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(Error::Store(e)),
    };
    if ids.len() > MAX_KEY_SLOTS_READ {
        return Err(Error::Corrupt(format!(
            "{loc} has {} key slots in keys/, more than the {MAX_KEY_SLOTS_READ} plakar reads: \
             remove those you did not add (each is one passphrase)",
            ids.len()
        )));
    }
    let mut out = Vec::new();
    for id in ids {
        let damaged = |why: String| {
            Error::Corrupt(format!(
                "key slot keys/{} of {loc} is damaged ({why}); remove it if no passphrase you use needs it",
                hex::encode(id)
            ))
        };
        match store.get(Resource::Key, &id, Some((0, MAX_SLOT_BYTES + 1))) {
            Ok(b) if b.len() as u64 > MAX_SLOT_BYTES => return Err(damaged("too large".into())),
            Ok(b) => out.push((id, KeySlot::decode(&b).map_err(damaged)?)),
            Err(e) if e.kind == StoreErrorKind::NotFound => {}
            Err(e) => return Err(Error::Store(e)),
        }
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

pub fn create(store: &dyn Store, params: &CreateParams, passphrase: Option<&[u8]>) -> Result<RepoConfig> {
    let loc = store.location();
    match store.open() {
        Ok(_) => return Err(Error::Exists(format!("a store already exists at {loc}; nothing was changed"))),
        Err(e) if e.kind == StoreErrorKind::NotFound => {}
        Err(e) => return Err(Error::Store(e)),
    }
    let (cfg, _) = RepoConfig::new(params, passphrase)?;
    store.create(&cfg.encode()).map_err(|e| match e.kind {
        StoreErrorKind::AlreadyExists => Error::Exists(format!("a store already exists at {loc}; nothing was changed")),
        _ => Error::Store(e),
    })?;
    Ok(cfg)
}

impl Repository {
    /// Unlocks the store and loads its index from every state.
    pub fn open(store: Arc<dyn Store>, config: RepoConfig, passphrase: Option<&[u8]>) -> Result<Self> {
        let keys = Self::unlock(&config, passphrase)?;
        Self::load(store, config, keys, None)
    }

    /// Derives the keys from the passphrase (the costly part of opening).
    pub fn unlock(config: &RepoConfig, passphrase: Option<&[u8]>) -> Result<Arc<Keys>> {
        let master = config.unlock(passphrase)?;
        Ok(Arc::new(Keys::new(&master, config.encrypted())))
    }

    /// The same repository with its index read again, to see states written since it was
    /// opened (without deriving the key again).
    pub fn reload(&self) -> Result<Self> {
        let mut r = Self::load_cached(
            self.store.clone(),
            self.config.clone(),
            self.keys.clone(),
            self.lease.clone(),
            self.cache.clone(),
        )?;
        r.uploaders = self.uploaders;
        r.checkpoint_every = self.checkpoint_every;
        r.checkpoint_records = self.checkpoint_records;
        Ok(r)
    }

    /// The same repository read again under a lock: its index is what the lock protects.
    pub fn reload_under(&self, lease: Lease) -> Result<Self> {
        Self::load_cached(self.store.clone(), self.config.clone(), self.keys.clone(), Some(lease), self.cache.clone())
    }

    /// The same repository, reading only from the store from now on (what `check` wants:
    /// the store's own bytes, not a copy of them). Call before `reload`.
    pub fn uncached(mut self) -> Self {
        self.cache = None;
        self
    }

    /// The local cache in use, if any.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_deref()
    }

    /// The local cache in use, shared (a backup puts the trees it writes there).
    pub fn cache_handle(&self) -> Option<Arc<Cache>> {
        self.cache.clone()
    }

    /// Loads the index from every state that counts (states of a lock that was taken over
    /// count only when its fence lists them). A writer (`lease` set) completes fences left
    /// half-written before it trusts anything.
    pub fn load(store: Arc<dyn Store>, config: RepoConfig, keys: Arc<Keys>, lease: Option<Lease>) -> Result<Self> {
        Self::load_cached(store, config, keys, lease, None)
    }

    /// Like `load`; states come from `cache` when it holds them (authenticated as the
    /// store's would be), else from the store, many at a time on a remote store.
    pub fn load_cached(
        store: Arc<dyn Store>,
        config: RepoConfig,
        keys: Arc<Keys>,
        lease: Option<Lease>,
        cache: Option<Arc<Cache>>,
    ) -> Result<Self> {
        Self::load_into(store, config, keys, lease, cache, IndexBuilder::from_env())
    }

    /// Like `load_cached`, for a reader, from a listing it took itself (`Listing::read`),
    /// for example while its keys were derived. `metadata_only`: an index of trees and
    /// snapshots only (no chunks), for commands that list snapshots and browse their trees
    /// (`ls`, `locate`), on a store of millions of chunks. Such a repository reads no file
    /// contents and writes nothing (the index stops a chunk lookup: index.rs).
    pub fn load_listed(
        store: Arc<dyn Store>,
        config: RepoConfig,
        keys: Arc<Keys>,
        cache: Option<Arc<Cache>>,
        listing: Listing,
        metadata_only: bool,
    ) -> Result<Self> {
        let builder = IndexBuilder::from_env();
        let builder = if metadata_only { builder.metadata_only() } else { builder };
        Self::load_from(store, config, keys, None, cache, builder, listing)
    }

    fn load_into(
        store: Arc<dyn Store>,
        config: RepoConfig,
        keys: Arc<Keys>,
        lease: Option<Lease>,
        cache: Option<Arc<Cache>>,
        builder: IndexBuilder,
    ) -> Result<Self> {
        // A writer lists under its lock, finishing fences; a reader only reads them.
        let listing = Listing::read_as(store.as_ref(), lease.is_some())?;
        Self::load_from(store, config, keys, lease, cache, builder, listing)
    }

    fn load_from(
        store: Arc<dyn Store>,
        config: RepoConfig,
        keys: Arc<Keys>,
        lease: Option<Lease>,
        cache: Option<Arc<Cache>>,
        mut builder: IndexBuilder,
        listing: Listing,
    ) -> Result<Self> {
        let Listing { fences, states: listed } = listing;
        let (mut ids, mut ignored): (Vec<StateId>, Vec<StateId>) =
            listed.into_iter().map(StateId).partition(|s| fences.counts(s));
        ids.sort();
        ignored.sort();
        // States are read one at a time and their records go into the index as they come
        // (index.rs: beyond a few million entries it is built on disk): a store of ten
        // million blobs never has all its decoded states in memory at once.
        let mut states: Vec<Option<State>> = Vec::with_capacity(ids.len());
        let mut missing: Vec<StateId> = Vec::new();
        for id in &ids {
            match cache.as_ref().and_then(|c| c.state(id)).and_then(|b| State::decode(&keys, id, &b).ok()) {
                Some(mut s) => {
                    builder.add(&mut s);
                    states.push(Some(s));
                }
                None => {
                    missing.push(*id);
                    states.push(None);
                }
            }
        }
        let fetched = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |id: &StateId| -> Result<State> {
            let b = store.get(Resource::State, &id.0, None)?;
            let s = State::decode(&keys, id, &b)
                .map_err(|e| Error::Corrupt(format!("state {} of {}: {e}", id.short(), store.location())))?;
            if let Some(c) = &cache {
                c.put_state(id, &b);
                c.filling(fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, missing.len());
            }
            Ok(s)
        };
        // Fetched a batch at a time, many requests in flight on a remote store.
        let batch = if store.remote() { 2 * REMOTE_IN_FLIGHT } else { 8 };
        for chunk in missing.chunks(batch) {
            let got: Vec<Result<State>> = if store.remote() {
                inflight::map(chunk, REMOTE_IN_FLIGHT, fetch)
            } else {
                chunk.par_iter().map(fetch).collect()
            };
            for (id, s) in chunk.iter().zip(got) {
                let mut s = s?;
                builder.add(&mut s);
                let at = ids.binary_search(id).expect("a listed state");
                states[at] = Some(s);
            }
        }
        let states: Vec<State> = states.into_iter().map(|s| s.expect("every state read")).collect();
        let mut index = builder.finish();
        let present: std::collections::HashSet<StateId> = ids.iter().chain(&ignored).copied().collect();
        let with_ids: Vec<(StateId, &State)> = ids.iter().copied().zip(&states).collect();
        // A state of a lock that was taken over may have been retracted by its writer (even
        // one the fence lists, when the listing came between its put and its deletion).
        let mut lineage = Lineage::of(&with_ids, &present, |s| fences.fenced(s));
        if !lineage.missing.is_empty() {
            // The fences were read before the states were listed: a run stopped between
            // the two may have missed a fence whose holder then retracted a state others
            // had built on. Such a fence was written before the retraction, so reading the
            // fences again now sees it (a reader does not finish fences; a writer did).
            let again = Fences::read(store.as_ref(), false)?;
            lineage = Lineage::of(&with_ids, &present, |s| fences.fenced(s) || again.fenced(s));
        }
        index.heads = lineage.heads;
        if let Some(c) = &cache {
            // Blobs die only with states: a state that deletes snapshots, or states gone.
            let lost = lineage.missing.iter().map(|(l, _)| *l).collect();
            if c.keep_states(&present, &lost) > 0 || !missing.is_empty() {
                // The cache holds trees and snapshot headers only (get_blob).
                c.keep_blobs(|kind, id| kind != BlobType::Chunk && index.get(kind, id).is_some());
            }
        }
        let readahead = store.remote().then(Default::default);
        Ok(Self {
            store,
            config,
            keys,
            index,
            states: ids,
            ignored_states: ignored,
            lost_states: lineage.missing,
            lineage_named: lineage.named,
            lineage_legacy: lineage.legacy,
            readahead,
            checkpoint_every: Some(CHECKPOINT_EVERY),
            checkpoint_records: crate::kloset::packer::CHECKPOINT_RECORDS,
            lease,
            uploaders: 2,
            cache,
        })
    }

    /// Whether a snapshot in a packfile no state lists may be a lost state's rather than
    /// what a commit that never finished left (lineage.rs).
    pub fn may_have_lost_states(&self) -> bool {
        !self.lost_states.is_empty() || self.lineage_legacy
    }

    pub fn location(&self) -> String {
        self.store.location()
    }

    pub fn compression_level(&self) -> Option<i32> {
        self.config.compression.as_ref().map(|c| c.level)
    }

    pub fn locate(&self, kind: BlobType, id: &BlobId) -> Result<Location> {
        self.index
            .get(kind, id)
            .ok_or_else(|| Error::Corrupt(format!("{} {} is missing from the store's index", kind.name(), id.short())))
    }

    /// Reads, authenticates and decodes one blob.
    pub fn get_blob(&self, kind: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate(kind, id)?;
        let cached = self.cache.as_ref().filter(|_| matches!(kind, BlobType::Tree | BlobType::Snapshot));
        if let Some(plain) =
            cached.and_then(|c| c.blob(kind, id)).and_then(|b| blob::decode(&self.keys, kind, id, &b).ok())
        {
            return Ok(plain);
        }
        let (off, len) = (loc.offset as u64, loc.length as u64);
        let raw = match &self.readahead {
            Some(ra) => ra.read(self.store.as_ref(), &loc.pack, off, len, kind == BlobType::Tree),
            None => self.store.get(Resource::Packfile, &loc.pack.0, Some((off, len))),
        }
        .map_err(|e| match e.kind {
            StoreErrorKind::NotFound => Error::Corrupt(format!(
                "packfile {} holding {} {} is missing",
                loc.pack.short(),
                kind.name(),
                id.short()
            )),
            _ => Error::Store(e),
        })?;
        let plain = self.open_blob(kind, id, &loc, &raw)?;
        if let Some(c) = cached {
            c.put_blob(kind, id, &raw);
        }
        Ok(plain)
    }

    /// Authenticates and decodes a blob read from `loc` (by `get_blob`, or by a restore
    /// that read many blobs at once).
    pub fn open_blob(&self, kind: BlobType, id: &BlobId, loc: &Location, raw: &[u8]) -> Result<Vec<u8>> {
        if raw.len() != loc.length as usize {
            return Err(Error::Corrupt(format!("packfile {} is truncated", loc.pack.short())));
        }
        blob::decode(&self.keys, kind, id, raw).map_err(|e| {
            Error::Corrupt(format!("{} {} in packfile {}: {e}", kind.name(), id.short(), loc.pack.short()))
        })
    }

    pub fn tree(&self, id: &BlobId) -> Result<Tree> {
        Tree::decode(&self.get_blob(BlobType::Tree, id)?).map_err(Error::Corrupt)
    }

    pub fn header(&self, id: &SnapshotId) -> Result<Header> {
        let b = self.get_blob(BlobType::Snapshot, &id.as_blob())?;
        Header::decode(&b).map_err(Error::Corrupt)
    }

    /// Live snapshots, oldest first.
    pub fn headers(&self) -> Result<Vec<Header>> {
        let mut ids = self.index.snapshots();
        ids.sort();
        let mut hs: Vec<Header> = if self.store.remote() {
            inflight::map(&ids, REMOTE_IN_FLIGHT, |id| self.header(id)).into_iter().collect::<Result<_>>()?
        } else {
            ids.par_iter().map(|id| self.header(id)).collect::<Result<_>>()?
        };
        hs.sort_by_key(|h| (h.timestamp_ns, h.id));
        Ok(hs)
    }

    /// Resolves a hex prefix to one live snapshot.
    pub fn resolve(&self, prefix: &str) -> Result<SnapshotId> {
        let p = prefix.to_ascii_lowercase();
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadReference(format!("invalid snapshot prefix: {prefix:?} (expected hex digits)")));
        }
        let hits: Vec<SnapshotId> = self.index.snapshots().into_iter().filter(|s| s.to_hex().starts_with(&p)).collect();
        match hits.len() {
            1 => Ok(hits[0]),
            0 => Err(Error::BadReference(format!(
                "no snapshot has prefix: {prefix} (list them with: plakar at {} ls)",
                self.location()
            ))),
            n => Err(Error::BadReference(format!(
                "snapshot ID is ambiguous: {prefix} (matches {n} snapshots; give more digits)"
            ))),
        }
    }

    /// Finds the entry at an absolute path in a snapshot. "/" gives a synthetic root entry.
    pub fn lookup(&self, h: &Header, path: &[u8]) -> Result<Entry> {
        let mut entry = Entry {
            name: b"/".to_vec(),
            info: crate::kloset::importer::FileInfo {
                kind: Some(crate::kloset::importer::FileKind::Dir),
                mode: libc_dir_mode(),
                ..Default::default()
            },
            chunks: vec![],
            lengths: vec![],
            subtree: Some(h.root),
            error: None,
        };
        for comp in tree::components(path) {
            let Some(sub) = entry.subtree else {
                return Err(not_found(h, path));
            };
            let t = self.tree(&sub)?;
            entry = t.find(comp).cloned().ok_or_else(|| not_found(h, path))?;
        }
        Ok(entry)
    }

    /// Makes `path` absolute: a relative path is taken from the snapshot's backed-up directory.
    pub fn absolute(h: &Header, path: &str) -> Vec<u8> {
        if path.starts_with('/') || path.is_empty() && h.source.directory.is_empty() {
            path.as_bytes().to_vec()
        } else if path.is_empty() {
            h.source.directory.as_bytes().to_vec()
        } else {
            crate::kloset::importer::join(h.source.directory.as_bytes(), path.as_bytes())
        }
    }

    /// Publishes a state: through the lease when loaded under a lock (checked before and
    /// after it lands), else as is (stores that take no locks, such as a ptar being written).
    /// Publishes a state (through the lock, if held). One that names no parents is built
    /// on the heads of the index this repository read.
    pub fn write_state(&self, mut state: State) -> Result<StateId> {
        if state.parents.is_empty() {
            state.parents = self.index.heads.clone();
        }
        if let Some(lease) = &self.lease {
            return lease.publish(&self.keys, &state);
        }
        let id = StateId::random();
        self.store.put(Resource::State, &id.0, &state.encode(&self.keys, &id))?;
        Ok(id)
    }
}

fn libc_dir_mode() -> u32 {
    0o040755
}

fn not_found(h: &Header, path: &[u8]) -> Error {
    Error::BadReference(format!(
        "{}:{}: no such file or directory in the snapshot",
        h.id.short(),
        String::from_utf8_lossy(path)
    ))
}
