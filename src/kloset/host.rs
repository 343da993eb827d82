//! What the engine needs from the machine it runs on, behind one trait so that a
//! deterministic simulation can stand in for it: who this process is (for locks), its
//! clocks, sleeping, and whether another process of this host still runs.
//!
//! No safety property rests on these clocks (docs/LOCKING.md): the wall clock is only
//! recorded for people to read, and the monotonic clock only decides how soon a lock that
//! stopped changing is taken for abandoned.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Who holds a lock. A host is a random id kept in the user's config directory, the boot it
/// is in and its pid namespace: two containers that share a hostname, or two clones of one
/// VM, are different holders even when the pids match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Holder {
    /// Shown to people only.
    pub hostname: String,
    pub host_id: String,
    pub boot_id: String,
    pub pidns: String,
    pub pid: u32,
}

impl Holder {
    /// True when `other` is a process of this same host, boot and pid namespace, so that
    /// `Host::pid_alive` can answer for it.
    pub fn same_process_space(&self, other: &Holder) -> bool {
        !self.host_id.is_empty()
            && !self.boot_id.is_empty()
            && !self.pidns.is_empty()
            && self.host_id == other.host_id
            && self.boot_id == other.boot_id
            && self.pidns == other.pidns
    }
}

pub trait Host: Send + Sync {
    /// This process.
    fn holder(&self) -> Holder;
    /// Unix seconds by this host's wall clock (recorded, never compared across hosts).
    fn wall(&self) -> i64;
    /// Milliseconds of a clock that only moves forward, also while the machine sleeps,
    /// within one boot (`holder().boot_id`).
    fn monotonic_ms(&self) -> u64;
    fn sleep(&self, d: Duration);
    /// Whether process `pid` of this host (same boot and pid namespace) still runs. When in
    /// doubt: true.
    fn pid_alive(&self, pid: u32) -> bool;
    /// A file where observations of other holders' locks on the store at `location` are
    /// kept between runs (None: kept for this run only).
    fn lock_memory(&self, location: &str) -> Option<PathBuf>;
    /// Takes charge of refreshing a newly taken lock (a simulation calls
    /// `Lease::refresh` on its own schedule). False: a background thread refreshes it.
    fn drive_refresh(&self, _lease: &crate::kloset::lock::Lease) -> bool {
        false
    }
}

/// The real machine.
pub struct SystemHost {
    holder: Holder,
    memory_dir: Option<PathBuf>,
}

fn read_trimmed(p: &str) -> String {
    std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default()
}

impl SystemHost {
    /// `host_id`: this machine's random id (kept by the caller, e.g. in the config
    /// directory); empty when none could be kept, and then no lock is ever taken for a dead
    /// process of this host. `memory_dir`: where lock observations are kept between runs.
    pub fn new(host_id: String, memory_dir: Option<PathBuf>) -> Self {
        let pidns = std::fs::read_link("/proc/self/ns/pid").map(|p| p.display().to_string()).unwrap_or_default();
        let holder = Holder {
            hostname: crate::kloset::hostname(),
            host_id,
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pidns,
            pid: std::process::id(),
        };
        Self { holder, memory_dir }
    }

    /// A host with no kept id: locks of this process are never taken for dead by another.
    pub fn anonymous() -> Arc<dyn Host> {
        Arc::new(Self::new(String::new(), None))
    }
}

impl Host for SystemHost {
    fn holder(&self) -> Holder {
        self.holder.clone()
    }
    fn wall(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
    fn monotonic_ms(&self) -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // CLOCK_BOOTTIME goes on while suspended, unlike CLOCK_MONOTONIC.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if r != 0 {
            return 0;
        }
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
    fn pid_alive(&self, pid: u32) -> bool {
        if pid == 0 || pid > i32::MAX as u32 {
            return true;
        }
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        !(r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH))
    }
    fn lock_memory(&self, location: &str) -> Option<PathBuf> {
        let dir = self.memory_dir.as_ref()?;
        let name = hex::encode(&blake3::hash(location.as_bytes()).as_bytes()[..16]);
        Some(dir.join(format!("{name}.json")))
    }
}
