//! Store locks and fences. Backups, syncs, `rm` and repairs take shared locks, maintenance
//! an exclusive one. The protocol, its assumptions and why each race is closed are in
//! docs/LOCKING.md; in short:
//!
//! - A lock is an object its holder rewrites every minute. Whether another holder's lock is
//!   abandoned is judged only by watching it: a lock seen unchanged for `LEASE` by this
//!   host's monotonic clock (kept across runs), or one left by a process of this very host,
//!   boot and pid namespace that no longer runs. No two hosts' clocks are ever compared.
//! - Taking over an abandoned lock first writes its *fence*, then lists the states its
//!   holder wrote (their ids start with the lock's), records them in the fence, and only
//!   then deletes the lock. States of a fenced lock that the fence does not list are
//!   ignored by everyone.
//! - A holder publishes a state, then looks for its fence: none there means whoever takes
//!   the lock over later will see the state; a fence means the publication may not count,
//!   so the holder deletes the state and fails. The refresher never brings a lock back
//!   once its fence exists.
//!
//! Taking a lock over early is therefore never unsafe: it only makes the holder fail.
//! Clocks decide how soon, never whether, data stays safe.

use crate::kloset::crypto::Keys;
use crate::kloset::error::{Error, Result};
use crate::kloset::host::{Holder, Host};
use crate::kloset::id::StateId;
use crate::kloset::state::State;
use crate::kloset::store::{Resource, Store, StoreErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a lock must be watched unchanged before it is taken for abandoned.
pub const LEASE: Duration = Duration::from_secs(600);
/// How often a holder rewrites its lock (and looks for its fence).
pub const REFRESH: Duration = Duration::from_secs(60);

/// First byte of a lock's id; the rest is random.
const LOCK_TAG: u8 = b'L';
/// First byte of a fence's id; the rest is its lock's.
const FENCE_TAG: u8 = b'F';
/// First byte of a lock's heartbeat, the object its holder rewrites every minute; the rest
/// is its lock's. The lock object itself is written once and never replaced, so it is
/// never missing while held, even on stores where a replace is an unlink and a rename
/// (SFTP): a heartbeat missing for a moment only looks like a change.
const BEAT_TAG: u8 = b'H';
/// How many bytes of a lock's id (after its tag) start the ids of the states it writes.
const PREFIX_LEN: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub version: u32,
    /// Shown to people; `holder` identifies.
    pub hostname: String,
    pub pid: u32,
    /// Unix seconds by the holder's clock when it last refreshed: for people only.
    pub time: i64,
    pub exclusive: bool,
    #[serde(default)]
    pub holder: Option<Holder>,
    /// Bumped at every refresh, so that a live lock keeps changing.
    #[serde(default)]
    pub seq: u64,
}

/// Written over an abandoned lock before it is deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FenceInfo {
    pub fence: u32,
    pub lock: String,
    pub by: Holder,
    pub time: i64,
    /// The fenced holder's states that count; None while the fence is being written.
    pub states: Option<Vec<String>>,
}

fn is_fence(id: &[u8; 32]) -> bool {
    id[0] == FENCE_TAG
}

fn beat_id(lock: &[u8; 32]) -> [u8; 32] {
    let mut f = *lock;
    f[0] = BEAT_TAG;
    f
}

pub fn fence_id(lock: &[u8; 32]) -> [u8; 32] {
    let mut f = *lock;
    f[0] = FENCE_TAG;
    f
}

fn prefix_of(lock: &[u8; 32]) -> [u8; PREFIX_LEN] {
    lock[1..1 + PREFIX_LEN].try_into().expect("prefix")
}

fn state_prefix(state: &StateId) -> [u8; PREFIX_LEN] {
    state.0[..PREFIX_LEN].try_into().expect("prefix")
}

/// Who holds a lock, in words.
pub fn holder(info: &LockInfo) -> String {
    let what = if info.exclusive { "maintenance" } else { "a backup" };
    format!("{what} on {} (pid {})", info.hostname, info.pid)
}

/// What a holder keeps of its lock: enough to name its states, publish them safely and
/// know whether the lock was taken over.
#[derive(Clone)]
pub struct Lease {
    store: Arc<dyn Store>,
    id: [u8; 32],
    exclusive: bool,
    host: Arc<dyn Host>,
    lost: Arc<AtomicBool>,
    /// Set when the guard is dropped: a released lock is never refreshed again.
    released: Arc<AtomicBool>,
    seq: Arc<AtomicU64>,
}

impl Lease {
    /// A new state id, marked as this lease's.
    pub fn state_id(&self) -> StateId {
        let mut id = StateId::random();
        id.0[..PREFIX_LEN].copy_from_slice(&prefix_of(&self.id));
        id
    }

    pub fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn lost_error(&self) -> Error {
        Error::Locked(format!(
            "this run's lock on {} was taken over by another run (it was stopped or cut off for longer \
             than the {}-minute lease), so nothing it wrote was committed; run the command again",
            self.store.location(),
            LEASE.as_secs() / 60
        ))
    }

    /// Fails when the lock was taken over (its fence exists).
    pub fn check(&self) -> Result<()> {
        if self.lost() {
            return Err(self.lost_error());
        }
        match self.store.get(Resource::Lock, &fence_id(&self.id), None) {
            Err(e) if e.kind == StoreErrorKind::NotFound => Ok(()),
            Ok(_) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(self.lost_error())
            }
            Err(e) => Err(Error::Store(e)),
        }
    }

    /// Publishes a state under this lease: the lock must still be ours before, and after,
    /// it lands. When the lock was taken over meanwhile, the run fails (exit 75) and
    /// claims nothing; the state stays (see below).
    pub fn publish(&self, keys: &Keys, state: &State) -> Result<StateId> {
        self.check()?;
        let id = self.state_id();
        self.store.put(Resource::State, &id.0, &state.encode(keys, &id))?;
        // Fenced after the put? The state is left in place, never deleted: other runs may
        // have read it before the fence existed and built on it (simulation seed 16322).
        // Whether it counts is the fence's list's business, and that list can be written
        // by more than one run (the last write wins), so this run cannot know: it claims
        // nothing and fails. A state that ends up not counting is ignored, and the next
        // maintenance rescues whatever snapshots still need from its packfiles.
        self.check()?;
        Ok(id)
    }

    fn body(&self) -> Vec<u8> {
        let h = self.host.holder();
        let info = LockInfo {
            version: 2,
            hostname: h.hostname.clone(),
            pid: h.pid,
            time: self.host.wall(),
            exclusive: self.exclusive,
            holder: Some(h),
            seq: self.seq.fetch_add(1, Ordering::SeqCst),
        };
        serde_json::to_vec(&info).expect("lock serializes")
    }

    /// Rewrites the lock so that watchers see it change, unless it was taken over: then it
    /// is marked lost and left alone (never brought back).
    pub fn refresh(&self) {
        if self.released.load(Ordering::SeqCst) || self.lost() || self.check().is_err() {
            return;
        }
        let _ = self.store.put(Resource::Lock, &beat_id(&self.id), &self.body());
    }
}

/// A held lock: refreshed in the background until dropped, then deleted.
pub struct LockGuard {
    lease: Lease,
    stop: Option<crossbeam_channel::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockGuard {
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.lease.released.store(true, Ordering::SeqCst);
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.lease.store.delete(Resource::Lock, &self.lease.id);
        let _ = self.lease.store.delete(Resource::Lock, &beat_id(&self.lease.id));
    }
}

/// What this host has seen of other holders' locks: since when each has stayed the same.
/// Kept in a file between runs, valid within one boot (the clock is CLOCK_BOOTTIME).
#[derive(Default, Serialize, Deserialize)]
struct Memory {
    boot_id: String,
    /// lock id (hex) -> (digest of its bytes (hex), monotonic ms when first seen so)
    seen: HashMap<String, (String, u64)>,
}

struct Observer {
    path: Option<PathBuf>,
    mem: Memory,
}

impl Observer {
    fn load(host: &dyn Host, location: &str) -> Observer {
        let path = host.lock_memory(location);
        let boot_id = host.holder().boot_id;
        let mem = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<Memory>(&b).ok())
            .filter(|m| m.boot_id == boot_id)
            .unwrap_or(Memory { boot_id, seen: HashMap::new() });
        Observer { path, mem }
    }

    /// How long the lock has been seen with exactly these bytes.
    fn unchanged_for(&mut self, host: &dyn Host, id: &[u8; 32], bytes: &[u8]) -> Duration {
        let now = host.monotonic_ms();
        let digest = blake3::hash(bytes).to_hex().to_string();
        let e = self.mem.seen.entry(hex::encode(id)).or_insert_with(|| (digest.clone(), now));
        if e.0 != digest {
            *e = (digest, now);
        }
        Duration::from_millis(now.saturating_sub(e.1))
    }

    fn forget_missing(&mut self, present: &HashSet<[u8; 32]>) {
        let keep: HashSet<String> = present.iter().map(hex::encode).collect();
        self.mem.seen.retain(|k, _| keep.contains(k));
    }

    /// Best effort: losing it only means watching again.
    fn save(&self) {
        let Some(p) = &self.path else { return };
        let Ok(b) = serde_json::to_vec(&self.mem) else { return };
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, b).is_ok() {
            let _ = std::fs::rename(&tmp, p);
        }
    }
}

/// Takes over an abandoned lock: fence, list its states into the fence, delete it.
fn fence(store: &dyn Store, host: &dyn Host, lock: &[u8; 32]) -> Result<()> {
    let fid = fence_id(lock);
    let mut info = FenceInfo { fence: 1, lock: hex::encode(lock), by: host.holder(), time: host.wall(), states: None };
    match store.get(Resource::Lock, &fid, None) {
        // Fenced already (by another run that may have stopped half-way): finish the job.
        Ok(_) => {}
        Err(e) if e.kind == StoreErrorKind::NotFound => {
            store.put(Resource::Lock, &fid, &serde_json::to_vec(&info).expect("fence serializes"))?;
        }
        Err(e) => return Err(Error::Store(e)),
    }
    complete_fence(store, lock, &mut info)?;
    for id in [*lock, beat_id(lock)] {
        match store.delete(Resource::Lock, &id) {
            Err(e) if e.kind != StoreErrorKind::NotFound => return Err(Error::Store(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Lists the fenced holder's states into its fence. Every state it published before the
/// fence was first written is in the listing; any later one its holder deletes itself.
fn complete_fence(store: &dyn Store, lock: &[u8; 32], info: &mut FenceInfo) -> Result<Vec<StateId>> {
    let prefix = prefix_of(lock);
    let states: Vec<StateId> =
        store.list(Resource::State)?.into_iter().map(StateId).filter(|s| state_prefix(s) == prefix).collect();
    info.states = Some(states.iter().map(|s| s.to_hex()).collect());
    store.put(Resource::Lock, &fence_id(lock), &serde_json::to_vec(info).expect("fence serializes"))?;
    Ok(states)
}

/// The fences of a store: for each fenced lock (by the prefix of its states' ids), the
/// states that count. `finish`: complete fences left half-written (a writer must, before it
/// trusts the index; a reader only reads, and counts every such state).
pub struct Fences(HashMap<[u8; PREFIX_LEN], Option<HashSet<StateId>>>);

impl Fences {
    pub fn read(store: &dyn Store, finish: bool) -> Result<Fences> {
        let ids = match store.list(Resource::Lock) {
            Ok(ids) => ids,
            Err(e) if e.kind == StoreErrorKind::Unsupported => return Ok(Fences(HashMap::new())),
            Err(e) => return Err(Error::Store(e)),
        };
        let mut out = HashMap::new();
        for fid in ids.into_iter().filter(is_fence) {
            let b = match store.get(Resource::Lock, &fid, None) {
                Ok(b) => b,
                Err(e) if e.kind == StoreErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Store(e)),
            };
            let Ok(mut info) = serde_json::from_slice::<FenceInfo>(&b) else { continue };
            let Some(lock) = hex::decode(&info.lock).ok().and_then(|v| <[u8; 32]>::try_from(v).ok()) else {
                continue;
            };
            let valid = match (&info.states, finish) {
                (Some(list), _) => Some(list.iter().filter_map(|h| StateId::from_hex(h)).collect()),
                (None, true) => Some(complete_fence(store, &lock, &mut info)?.into_iter().collect()),
                (None, false) => None,
            };
            out.insert(prefix_of(&lock), valid);
        }
        Ok(Fences(out))
    }

    /// Whether a state was written under a lock that was taken over. Such a state may have
    /// been deleted on purpose (not counting, by maintenance; by its own writer in older
    /// versions), even one a fence list names.
    pub fn fenced(&self, state: &StateId) -> bool {
        self.0.contains_key(&state_prefix(state))
    }

    /// Whether a state counts: not written under a fenced lock, or listed by its fence.
    pub fn counts(&self, state: &StateId) -> bool {
        match self.0.get(&state_prefix(state)) {
            None | Some(None) => true,
            Some(Some(valid)) => valid.contains(state),
        }
    }
}

/// What taking a lock found: the lock, or the live lock it conflicts with and how long
/// this host has seen it unchanged.
enum Attempt {
    Taken,
    Busy(LockInfo, Duration),
}

fn attempt(lease: &Lease, obs: &mut Observer) -> Result<Attempt> {
    let store = lease.store.as_ref();
    let host = lease.host.as_ref();
    let me = host.holder();
    store.put(Resource::Lock, &lease.id, &lease.body())?;
    let listed = store.list(Resource::Lock)?;
    let present: HashSet<[u8; 32]> = listed.iter().copied().collect();
    obs.forget_missing(&present);
    let mut busy: Option<(LockInfo, Duration)> = None;
    for other in listed {
        if other[0] == BEAT_TAG {
            // A heartbeat whose lock is gone (released, or taken over as it beat).
            let mut lock = other;
            lock[0] = LOCK_TAG;
            let ours = || {
                store
                    .get(Resource::Lock, &other, None)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok())
                    .is_some_and(|i| i.version >= 2)
            };
            if !present.contains(&lock) && ours() {
                let _ = store.delete(Resource::Lock, &other);
            }
            continue;
        }
        if other == lease.id || is_fence(&other) {
            continue;
        }
        let b = match store.get(Resource::Lock, &other, None) {
            Ok(b) => b,
            Err(e) if e.kind == StoreErrorKind::NotFound => continue,
            Err(e) => {
                let _ = store.delete(Resource::Lock, &lease.id);
                return Err(Error::Store(e));
            }
        };
        // A lock that cannot be read is taken for an exclusive one held by someone unknown.
        let info = serde_json::from_slice::<LockInfo>(&b).unwrap_or(LockInfo {
            version: 0,
            hostname: "an unknown host".into(),
            pid: 0,
            time: 0,
            exclusive: true,
            holder: None,
            seq: 0,
        });
        if !(lease.exclusive || info.exclusive) {
            continue; // shared locks do not conflict: leave them be
        }
        let dead_here =
            info.holder.as_ref().is_some_and(|h| me.same_process_space(h) && h.pid != me.pid && !host.pid_alive(h.pid));
        // What is watched: the lock and its heartbeat (absent counts as a state too).
        let mut seen = b.clone();
        if other[0] == LOCK_TAG {
            match store.get(Resource::Lock, &beat_id(&other), None) {
                Ok(beat) => seen.extend_from_slice(&beat),
                Err(e) if e.kind == StoreErrorKind::NotFound => seen.extend_from_slice(b"no heartbeat"),
                Err(e) => {
                    let _ = store.delete(Resource::Lock, &lease.id);
                    return Err(Error::Store(e));
                }
            }
        }
        let age = obs.unchanged_for(host, &other, &seen);
        if dead_here || age >= LEASE {
            if let Err(e) = fence(store, host, &other) {
                let _ = store.delete(Resource::Lock, &lease.id);
                return Err(e);
            }
            continue;
        }
        // Busy; the others are still watched (and taken over when abandoned), so that
        // two stale locks are not waited for one after the other.
        if busy.is_none() {
            busy = Some((info, age));
        }
    }
    match busy {
        Some((info, age)) => {
            let _ = store.delete(Resource::Lock, &lease.id);
            Ok(Attempt::Busy(info, age))
        }
        None => Ok(Attempt::Taken),
    }
}

fn new_lock_id() -> [u8; 32] {
    let mut id = crate::kloset::id::BlobId::random().0;
    id[0] = LOCK_TAG;
    id
}

/// Takes a lock, waiting up to `timeout` for a conflicting one to go away: it is tried
/// again every second or so (with jitter, so two waiters do not keep colliding), and
/// `waiting` is told once who holds it. Returns the lock and whether it had to wait.
pub fn lock_wait(
    store: Arc<dyn Store>,
    exclusive: bool,
    timeout: Duration,
    host: Arc<dyn Host>,
    waiting: &mut dyn FnMut(&LockInfo),
) -> Result<(LockGuard, bool)> {
    let started = host.monotonic_ms();
    let mut obs = Observer::load(host.as_ref(), &store.location());
    let lease = Lease {
        store: store.clone(),
        id: new_lock_id(),
        exclusive,
        host: host.clone(),
        lost: Arc::new(AtomicBool::new(false)),
        released: Arc::new(AtomicBool::new(false)),
        seq: Arc::new(AtomicU64::new(0)),
    };
    let mut waited = false;
    loop {
        let r = attempt(&lease, &mut obs);
        obs.save();
        match r? {
            Attempt::Taken => break,
            Attempt::Busy(info, age) => {
                let spent = Duration::from_millis(host.monotonic_ms().saturating_sub(started));
                if spent >= timeout {
                    let waited_for =
                        if waited { format!(" after waiting {}s", spent.as_secs()) } else { String::new() };
                    return Err(Error::Locked(format!(
                        "the store is locked by {}{waited_for}; try again when it is done, or wait longer with \
                         -lock-timeout (a lock that stops changing is taken for abandoned once it has been \
                         watched unchanged for {} minutes{})",
                        holder(&info),
                        LEASE.as_secs() / 60,
                        if age.as_secs() >= 60 {
                            format!("; this machine has watched this one for {} minutes", age.as_secs() / 60)
                        } else {
                            String::new()
                        }
                    )));
                }
                if !waited {
                    waiting(&info);
                    waited = true;
                }
                let jitter = Duration::from_millis(crate::kloset::rng::u64() % 500);
                host.sleep((Duration::from_millis(750) + jitter).min(timeout - spent));
            }
        }
    }
    let (stop, refresher) = if !host.drive_refresh(&lease) {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let l = lease.clone();
        let t = crate::kloset::rng::spawn(move || {
            // Wakes every REFRESH, or at once when the guard is dropped (the sender goes).
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = rx.recv_timeout(REFRESH) {
                l.refresh();
            }
        });
        (Some(tx), Some(t))
    } else {
        (None, None)
    };
    Ok((LockGuard { lease, stop, refresher }, waited))
}

/// Takes a lock, or fails at once naming who holds the conflicting one.
pub fn lock(store: Arc<dyn Store>, exclusive: bool, host: Arc<dyn Host>) -> Result<LockGuard> {
    lock_wait(store, exclusive, Duration::ZERO, host, &mut |_| {}).map(|(g, _)| g)
}
