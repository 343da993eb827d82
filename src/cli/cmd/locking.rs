//! `-lock-timeout` and opening a store under a lock. A run that meets a conflicting lock
//! waits for it (bounded), so a backup started by cron while maintenance still runs goes
//! ahead once it is done instead of failing at once. A writer reads the index only once it
//! holds its lock (docs/LOCKING.md).

use crate::cli::{exit, time, Ctx};
use crate::kloset::lock::{self, LockGuard};
use crate::kloset::store::{Store, StoreErrorKind};
use crate::kloset::{Error, Repository};
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct LockArgs {
    /// How long to wait for a conflicting lock (0: fail at once; 30s, 5m, 1h)
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub lock_timeout: String,
}

impl LockArgs {
    pub fn timeout(&self) -> Result<Duration> {
        let s = self.lock_timeout.trim();
        if let Ok(secs) = s.parse::<u64>() {
            return Ok(Duration::from_secs(secs));
        }
        match time::parse_duration(s) {
            Some(ns) if ns >= 0 => Ok(Duration::from_nanos(ns as u64)),
            _ => Err(exit::coded(
                exit::USAGE,
                format!("invalid -lock-timeout {s:?}: use a number of seconds or a duration such as 30s, 5m, 1h"),
            )),
        }
    }
}

/// Takes a lock on `store`, waiting up to -lock-timeout; says once on stderr whom it waits
/// for. Returns the lock (None on a read-only store, which cannot be locked and needs no
/// lock) and whether it had to wait.
pub fn wait_lock(ctx: &Ctx, store: Arc<dyn Store>, exclusive: bool, a: &LockArgs) -> Result<(Option<LockGuard>, bool)> {
    let timeout = a.timeout()?;
    let silent = ctx.g.silent;
    let mut say = |info: &lock::LockInfo| {
        if !silent {
            eprintln!(
                "plakar: the store is locked by {}; waiting up to {}s for it",
                lock::holder(info),
                timeout.as_secs()
            );
        }
    };
    match lock::lock_wait(store, exclusive, timeout, ctx.host(), &mut say) {
        Ok((guard, waited)) => Ok((Some(guard), waited)),
        Err(Error::Store(e)) if e.kind == StoreErrorKind::Unsupported => Ok((None, false)),
        Err(e) => Err(e.into()),
    }
}

/// Opens the store and takes a lock on it, then reads its index: read before, it could
/// name blobs a maintenance deletes while this run waits for the lock.
pub fn open_locked(ctx: &Ctx, exclusive: bool, a: &LockArgs) -> Result<(Repository, Option<LockGuard>)> {
    load_locked(ctx, ctx.unlock()?, exclusive, a)
}

/// Like `open_locked`, reading only the store, never the local cache (docs/CACHE.md):
/// for commands whose answer is about the store's own bytes (`drill`).
pub fn open_locked_uncached(ctx: &Ctx, exclusive: bool, a: &LockArgs) -> Result<(Repository, Option<LockGuard>)> {
    load_locked(ctx, ctx.unlock()?.uncached(), exclusive, a)
}

/// Like `open_locked`, for a run that removes snapshots (rm, prune; maintenance does the
/// same uncached): a store that refuses deletes (a `plakar server` without
/// `-allow-delete`) stops it before it waits for a lock or writes anything.
pub fn open_locked_to_remove(ctx: &Ctx, exclusive: bool, a: &LockArgs) -> Result<(Repository, Option<LockGuard>)> {
    let u = ctx.unlock()?;
    u.store.can_delete().map_err(Error::from)?;
    load_locked(ctx, u, exclusive, a)
}

/// Takes a lock on an unlocked store, then reads its index under it.
pub fn load_locked(
    ctx: &Ctx,
    u: crate::cli::context::Unlocked,
    exclusive: bool,
    a: &LockArgs,
) -> Result<(Repository, Option<LockGuard>)> {
    let (guard, _) = wait_lock(ctx, u.store.clone(), exclusive, a)?;
    let repo = u.load(guard.as_ref().map(|g| g.lease().clone()))?;
    Ok((repo, guard))
}
