//! Store locks. Backups take shared locks, maintenance an exclusive one. A lock is a lease:
//! it names its holder and the time it was last refreshed, and one not refreshed for
//! `LEASE` is ignored, so a killed process never blocks a store for long.

use crate::kloset::error::{Error, Result};
use crate::kloset::id::BlobId;
use crate::kloset::store::{Resource, Store};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const LEASE: Duration = Duration::from_secs(600);
const REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub version: u32,
    pub hostname: String,
    pub pid: u32,
    /// Unix seconds of the last refresh.
    pub time: i64,
    pub exclusive: bool,
}

/// True when the lock was taken on this host by a process that has since died.
fn dead_here(info: &LockInfo) -> bool {
    if info.hostname != crate::kloset::hostname() || info.pid == std::process::id() {
        return false;
    }
    let r = unsafe { libc::kill(info.pid as libc::pid_t, 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

pub struct LockGuard {
    store: Arc<dyn Store>,
    id: [u8; 32],
    stop: Arc<AtomicBool>,
    refresher: Option<JoinHandle<()>>,
}

fn body(exclusive: bool) -> Vec<u8> {
    let info = LockInfo {
        version: 1,
        hostname: crate::kloset::hostname(),
        pid: std::process::id(),
        time: chrono::Utc::now().timestamp(),
        exclusive,
    };
    serde_json::to_vec(&info).expect("lock serializes")
}

/// What taking a lock found: the lock, or the live lock it conflicts with.
enum Attempt {
    Taken([u8; 32]),
    Busy(LockInfo),
}

fn attempt(store: &dyn Store, exclusive: bool) -> Result<Attempt> {
    let id = BlobId::random().0;
    store.put(Resource::Lock, &id, &body(exclusive))?;
    let now = chrono::Utc::now().timestamp();
    for other in store.list(Resource::Lock)? {
        if other == id {
            continue;
        }
        let Ok(b) = store.get(Resource::Lock, &other, None) else {
            continue;
        };
        let Ok(info) = serde_json::from_slice::<LockInfo>(&b) else {
            continue;
        };
        let live = now - info.time < LEASE.as_secs() as i64 && !dead_here(&info);
        if !live {
            // Expired, or left by a process of this host that no longer runs.
            let _ = store.delete(Resource::Lock, &other);
            continue;
        }
        if exclusive || info.exclusive {
            let _ = store.delete(Resource::Lock, &id);
            return Ok(Attempt::Busy(info));
        }
    }
    Ok(Attempt::Taken(id))
}

/// Who holds a lock, in words.
pub fn holder(info: &LockInfo) -> String {
    let what = if info.exclusive { "maintenance" } else { "a backup" };
    format!("{what} on {} (pid {})", info.hostname, info.pid)
}

/// Takes a lock, or fails at once naming who holds the conflicting one.
pub fn lock(store: Arc<dyn Store>, exclusive: bool) -> Result<LockGuard> {
    lock_wait(store, exclusive, Duration::ZERO, &mut |_| {}).map(|(g, _)| g)
}

/// Takes a lock, waiting up to `timeout` for a conflicting one to go away: it is tried
/// again every second or so (with jitter, so two waiters do not keep colliding), and
/// `waiting` is told once who holds it. Returns the lock and whether it had to wait.
/// Locks of dead processes and expired leases are removed as they are met.
pub fn lock_wait(
    store: Arc<dyn Store>,
    exclusive: bool,
    timeout: Duration,
    waiting: &mut dyn FnMut(&LockInfo),
) -> Result<(LockGuard, bool)> {
    let started = std::time::Instant::now();
    let mut waited = false;
    let id = loop {
        match attempt(store.as_ref(), exclusive)? {
            Attempt::Taken(id) => break id,
            Attempt::Busy(info) => {
                let spent = started.elapsed();
                if spent >= timeout {
                    let waited_for =
                        if waited { format!(" after waiting {}s", spent.as_secs()) } else { String::new() };
                    return Err(Error::Locked(format!(
                        "the store is locked by {}{waited_for}; try again when it is done, or wait longer with -lock-timeout (a lock left by a killed process expires after {} minutes)",
                        holder(&info),
                        LEASE.as_secs() / 60
                    )));
                }
                if !waited {
                    waiting(&info);
                    waited = true;
                }
                let jitter = Duration::from_millis(rand::random::<u64>() % 500);
                std::thread::sleep((Duration::from_millis(750) + jitter).min(timeout - spent));
            }
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                waited += Duration::from_millis(200);
                if waited >= REFRESH {
                    waited = Duration::ZERO;
                    let _ = store.put(Resource::Lock, &id, &body(exclusive));
                }
            }
        })
    };
    Ok((LockGuard { store, id, stop, refresher: Some(refresher) }, waited))
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.store.delete(Resource::Lock, &self.id);
    }
}
