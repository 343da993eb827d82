//! A local cache of what every command reads at open and rarely changes: states, and the
//! snapshot headers and tree nodes they index. Without it a command on a remote store reads
//! every state at every open, one round trip each (issue 17: 200 snapshots over a 40 ms
//! link took 9 s before `ls` printed anything).
//!
//! Safety rests on three rules, none on timing (docs/CACHE.md):
//! - It holds objects exactly as the store sealed them, under the id the store names them
//!   by. Every read from it goes through the same authentication as a read from the store
//!   (the id and type are in the AEAD's associated data, tree ids are MACs of their
//!   content), so a damaged or planted entry fails to open and the store is read instead.
//! - It never says what exists: states are used only when the store's listing names them,
//!   blobs only when the index read from those states locates them. A state maintenance
//!   deleted, or a snapshot removed, is gone for the cache too, and dropped from it.
//! - It is disposable: any error opening or using it (a full disk, a corrupt file,
//!   another process holding it) makes the command read the store as it would without
//!   it. Deleting the directory is always safe. `check` never reads through it.
//!
//! One SQLite file per store location and master key, named by a MAC of the store's id and
//! location under the store's keys: a store elsewhere that copies another's CONFIG (which,
//! for a plaintext store, hands it the keys) shares nothing with it.

use crate::kloset::blob::BlobType;
use crate::kloset::crypto::Keys;
use crate::kloset::id::{BlobId, StateId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Bytes of blobs (headers, trees) kept; past it the oldest trees go first, then headers.
pub const DEFAULT_BLOB_BUDGET: u64 = 512 << 20;

/// Told (states fetched so far, states to fetch) while an open fills the cache.
pub type FillProgress = Box<dyn Fn(usize, usize) + Send + Sync>;

pub struct Cache {
    db: Mutex<Connection>,
    path: PathBuf,
    blob_budget: u64,
    /// Bytes of blobs cached, as far as this process knows.
    blob_bytes: AtomicU64,
    /// Set at the first error (another process holding the file past the busy timeout, a
    /// full disk): the rest of the command reads the store and never waits on the cache.
    off: AtomicBool,
    on_fill: Option<FillProgress>,
}

impl Cache {
    /// Opens (creating if needed) the cache of the store at `location` (as the user named
    /// it) whose id is `repository_id`, under `dir`. None when it cannot be used: the
    /// command then reads the store.
    pub fn open(dir: &Path, keys: &Keys, repository_id: &str, location: &str) -> Option<Cache> {
        let name = keys.mac(format!("plakar local cache v1 {repository_id} {location}").as_bytes());
        let path = dir.join(format!("{}.sqlite", hex::encode(&name.0[..16])));
        private_dir(dir).ok()?;
        match Self::open_at(&path) {
            Ok(c) => Some(c),
            // A file a power cut (or anything) damaged is no cache: start anew.
            Err(e) if is_corrupt(&e) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Self::open_at(&path).ok()
            }
            Err(_) => None,
        }
    }

    fn open_at(path: &Path) -> rusqlite::Result<Cache> {
        let db = Connection::open(path)?;
        db.busy_timeout(Duration::from_secs(1))?;
        // Losing the last writes on a power cut costs a re-read, never correctness.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "OFF")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS states (id BLOB PRIMARY KEY, sealed BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS blobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind INTEGER NOT NULL, id BLOB NOT NULL, sealed BLOB NOT NULL, UNIQUE (kind, id));",
        )?;
        let bytes: i64 = db.query_row("SELECT coalesce(sum(length(sealed)), 0) FROM blobs", [], |r| r.get(0))?;
        Ok(Cache {
            db: Mutex::new(db),
            path: path.to_path_buf(),
            blob_budget: DEFAULT_BLOB_BUDGET,
            blob_bytes: AtomicU64::new(bytes.max(0) as u64),
            off: AtomicBool::new(false),
            on_fill: None,
        })
    }

    /// Calls `f` as states missing from the cache are fetched (a cold cache on a store
    /// with a long history takes a while: say so).
    pub fn on_fill(mut self, f: FillProgress) -> Self {
        self.on_fill = Some(f);
        self
    }

    pub fn filling(&self, done: usize, total: usize) {
        if let Some(f) = &self.on_fill {
            f(done, total)
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A smaller byte budget for blobs (tests).
    pub fn with_blob_budget(mut self, bytes: u64) -> Self {
        self.blob_budget = bytes;
        self
    }

    /// The connection, unless an earlier error turned the cache off.
    fn db(&self) -> Option<MutexGuard<'_, Connection>> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        self.db.lock().ok()
    }

    /// The outcome of a statement; the first error turns the cache off.
    fn ok<T>(&self, r: rusqlite::Result<T>) -> Option<T> {
        r.map_err(|_| self.off.store(true, Ordering::Relaxed)).ok()
    }

    /// The sealed bytes of a state, if cached.
    pub fn state(&self, id: &StateId) -> Option<Vec<u8>> {
        let db = self.db()?;
        let q = db.query_row("SELECT sealed FROM states WHERE id = ?1", [&id.0[..]], |r| r.get(0)).optional();
        self.ok(q)?
    }

    pub fn put_state(&self, id: &StateId, sealed: &[u8]) {
        let Some(db) = self.db() else { return };
        let put = db.execute("INSERT OR REPLACE INTO states (id, sealed) VALUES (?1, ?2)", params![&id.0[..], sealed]);
        self.ok(put);
    }

    /// Drops every cached state the store's listing no longer names (maintenance merged
    /// or deleted them) but those in `lost`: states others were built on that are gone
    /// from the store, of which the cache may hold the last authentic copy. Returns how
    /// many it dropped.
    pub fn keep_states(&self, listed: &HashSet<StateId>, lost: &HashSet<StateId>) -> usize {
        let Some(db) = self.db() else { return 0 };
        let ids = db
            .prepare("SELECT id FROM states")
            .and_then(|mut q| q.query_map([], |r| r.get::<_, Vec<u8>>(0))?.collect::<rusqlite::Result<Vec<_>>>());
        let Some(ids) = self.ok(ids) else { return 0 };
        let gone = |s: StateId| !listed.contains(&s) && !lost.contains(&s);
        let stale: Vec<Vec<u8>> = ids.into_iter().filter(|id| StateId::from_slice(id).is_none_or(gone)).collect();
        let n = stale.len();
        self.in_one_transaction(&db, |db| {
            for id in &stale {
                db.execute("DELETE FROM states WHERE id = ?1", [id])?;
            }
            Ok(())
        });
        n
    }

    /// The sealed bytes of a blob, if cached.
    pub fn blob(&self, kind: BlobType, id: &BlobId) -> Option<Vec<u8>> {
        let db = self.db()?;
        let q = db
            .query_row("SELECT sealed FROM blobs WHERE kind = ?1 AND id = ?2", params![kind as u8, &id.0[..]], |r| {
                r.get(0)
            })
            .optional();
        self.ok(q)?
    }

    /// Caches a blob, then keeps to the byte budget.
    pub fn put_blob(&self, kind: BlobType, id: &BlobId, sealed: &[u8]) {
        let Some(db) = self.db() else { return };
        let put = db.execute(
            "INSERT OR REPLACE INTO blobs (kind, id, sealed) VALUES (?1, ?2, ?3)",
            params![kind as u8, &id.0[..], sealed],
        );
        if self.ok(put).is_none() {
            return;
        }
        let total = self.blob_bytes.fetch_add(sealed.len() as u64, Ordering::Relaxed) + sealed.len() as u64;
        if total > self.blob_budget {
            self.trim(&db, self.blob_budget - self.blob_budget / 4);
        }
    }

    /// Deletes the oldest trees, then the oldest headers (every `ls` needs those), until
    /// the blobs take `target` bytes or less.
    fn trim(&self, db: &Connection, target: u64) {
        let mut total: i64 =
            match self.ok(db.query_row("SELECT coalesce(sum(length(sealed)), 0) FROM blobs", [], |r| r.get(0))) {
                Some(t) => t,
                None => return,
            };
        for kind in [BlobType::Tree, BlobType::Snapshot] {
            let rows =
                db.prepare("SELECT seq, length(sealed) FROM blobs WHERE kind = ?1 ORDER BY seq").and_then(|mut q| {
                    q.query_map([kind as u8], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                });
            let Some(rows) = self.ok(rows) else { return };
            let mut doomed = Vec::new();
            for (seq, len) in rows {
                if total <= target as i64 {
                    break;
                }
                doomed.push(seq);
                total -= len;
            }
            let deleted = self.in_one_transaction(db, |db| {
                for seq in &doomed {
                    db.execute("DELETE FROM blobs WHERE seq = ?1", [seq])?;
                }
                Ok(())
            });
            if !deleted {
                return;
            }
        }
        self.blob_bytes.store(total.max(0) as u64, Ordering::Relaxed);
    }

    /// Drops cached blobs the index no longer locates (`live` says): maintenance deleted
    /// them.
    pub fn keep_blobs(&self, live: impl Fn(BlobType, &BlobId) -> bool) {
        let Some(db) = self.db() else { return };
        let rows = db.prepare("SELECT seq, kind, id, length(sealed) FROM blobs").and_then(|mut q| {
            q.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, u8>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
        let Some(rows) = self.ok(rows) else { return };
        let (mut stale, mut kept) = (Vec::new(), 0u64);
        for (seq, kind, id, len) in rows {
            if BlobType::from_u8(kind).zip(BlobId::from_slice(&id)).is_some_and(|(k, id)| live(k, &id)) {
                kept += len as u64;
            } else {
                stale.push(seq);
            }
        }
        let deleted = self.in_one_transaction(&db, |db| {
            for seq in &stale {
                db.execute("DELETE FROM blobs WHERE seq = ?1", [seq])?;
            }
            Ok(())
        });
        if deleted {
            self.blob_bytes.store(kept, Ordering::Relaxed);
        }
    }

    /// Runs `f` in one transaction; false (and the cache off) if it failed.
    fn in_one_transaction(&self, db: &Connection, f: impl FnOnce(&Connection) -> rusqlite::Result<()>) -> bool {
        let r = db.execute_batch("BEGIN IMMEDIATE").and_then(|_| f(db)).and_then(|_| db.execute_batch("COMMIT"));
        if r.is_err() {
            let _ = db.execute_batch("ROLLBACK");
        }
        self.ok(r).is_some()
    }

    /// Bytes of blobs cached, as this process counts them.
    pub fn blob_bytes(&self) -> u64 {
        self.blob_bytes.load(Ordering::Relaxed)
    }
}

/// Creates `dir` mode 0700, or accepts it if it exists as a directory of this user that no
/// one else may write: a cache others can plant files in is no cache of ours.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let m = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !m.is_dir() || m.uid() != me || m.mode() & 0o022 != 0 {
        return Err(std::io::Error::other("the cache directory is not this user's alone"));
    }
    Ok(())
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8) -> (BlobId, Vec<u8>) {
        (BlobId([n; 32]), vec![n; 1000])
    }

    #[test]
    fn keeps_to_its_budget_trees_first() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(&[1; 32], true);
        let c = Cache::open(dir.path(), &keys, "id", "loc").unwrap().with_blob_budget(10_000);
        let (h, hb) = blob(200);
        c.put_blob(BlobType::Snapshot, &h, &hb);
        for n in 0..30 {
            let (id, b) = blob(n);
            c.put_blob(BlobType::Tree, &id, &b);
        }
        assert!(c.blob_bytes() <= 10_000, "{}", c.blob_bytes());
        assert_eq!(c.blob(BlobType::Snapshot, &h), Some(hb), "the header went before older trees");
        assert!(c.blob(BlobType::Tree, &blob(0).0).is_none());
        assert!(c.blob(BlobType::Tree, &blob(29).0).is_some());
        // Reopened, it counts what it holds.
        drop(c);
        let c = Cache::open(dir.path(), &keys, "id", "loc").unwrap();
        assert!(c.blob_bytes() > 0 && c.blob_bytes() <= 10_000);
    }

    #[test]
    fn another_location_or_key_shares_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(&[1; 32], true);
        let a = Cache::open(dir.path(), &keys, "id", "s3://a/b").unwrap();
        let b = Cache::open(dir.path(), &keys, "id", "s3://c/b").unwrap();
        let k = Cache::open(dir.path(), &Keys::new(&[2; 32], true), "id", "s3://a/b").unwrap();
        assert_ne!(a.path(), b.path());
        assert_ne!(a.path(), k.path());
    }

    #[test]
    fn refuses_a_directory_others_may_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Cache::open(dir.path(), &Keys::new(&[1; 32], true), "id", "loc").is_none());
    }

    #[test]
    fn a_damaged_file_is_started_anew() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(&[1; 32], true);
        let path = Cache::open(dir.path(), &keys, "id", "loc").unwrap().path().to_path_buf();
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let c = Cache::open(dir.path(), &keys, "id", "loc").expect("a new cache");
        c.put_state(&StateId([3; 32]), b"sealed");
        assert_eq!(c.state(&StateId([3; 32])).as_deref(), Some(&b"sealed"[..]));
    }
}
