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
//! One SQLite file per store and passphrase key, named by a MAC of the store's id under the
//! store's keys (a store that merely copies another's id shares nothing with it).

use crate::kloset::blob::BlobType;
use crate::kloset::crypto::Keys;
use crate::kloset::id::{BlobId, StateId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Bytes of blobs (headers, trees) kept; past it the oldest entries go first.
pub const DEFAULT_BLOB_BUDGET: u64 = 512 << 20;

/// Told (states fetched so far, states to fetch) while an open fills the cache.
pub type FillProgress = Box<dyn Fn(usize, usize) + Send + Sync>;

pub struct Cache {
    db: Mutex<Connection>,
    path: PathBuf,
    blob_budget: u64,
    on_fill: Option<FillProgress>,
}

impl Cache {
    /// Opens (creating if needed) the cache of the store whose id is `repository_id`
    /// under `dir`. None when it cannot be used: the command then reads the store.
    pub fn open(dir: &Path, keys: &Keys, repository_id: &str) -> Option<Cache> {
        let name = keys.mac(format!("plakar local cache v1 {repository_id}").as_bytes());
        let path = dir.join(format!("{}.sqlite", hex::encode(&name.0[..16])));
        Self::open_at(&path).ok()
    }

    fn open_at(path: &Path) -> rusqlite::Result<Cache> {
        if let Some(parent) = path.parent() {
            create_private_dir(parent).map_err(|_| rusqlite::Error::InvalidPath(parent.to_path_buf()))?;
        }
        let db = Connection::open(path)?;
        db.busy_timeout(Duration::from_secs(5))?;
        // Losing the last writes on a power cut costs a re-read, never correctness.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "OFF")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS states (id BLOB PRIMARY KEY, sealed BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS blobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind INTEGER NOT NULL, id BLOB NOT NULL, sealed BLOB NOT NULL, UNIQUE (kind, id));",
        )?;
        Ok(Cache { db: Mutex::new(db), path: path.to_path_buf(), blob_budget: DEFAULT_BLOB_BUDGET, on_fill: None })
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

    /// The sealed bytes of a state, if cached.
    pub fn state(&self, id: &StateId) -> Option<Vec<u8>> {
        let db = self.db.lock().ok()?;
        db.query_row("SELECT sealed FROM states WHERE id = ?1", [&id.0[..]], |r| r.get(0)).optional().ok()?
    }

    pub fn put_state(&self, id: &StateId, sealed: &[u8]) {
        if let Ok(db) = self.db.lock() {
            let _ =
                db.execute("INSERT OR REPLACE INTO states (id, sealed) VALUES (?1, ?2)", params![&id.0[..], sealed]);
        }
    }

    /// Drops every cached state the store's listing no longer names (maintenance merged
    /// or deleted them); returns how many.
    pub fn keep_states(&self, listed: &HashSet<StateId>) -> usize {
        let Ok(db) = self.db.lock() else { return 0 };
        let stale: Vec<Vec<u8>> = match db.prepare("SELECT id FROM states") {
            Ok(mut q) => q
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .map(|rows| {
                    rows.flatten().filter(|id| StateId::from_slice(id).is_none_or(|s| !listed.contains(&s))).collect()
                })
                .unwrap_or_default(),
            Err(_) => return 0,
        };
        for id in &stale {
            let _ = db.execute("DELETE FROM states WHERE id = ?1", [id]);
        }
        stale.len()
    }

    /// The sealed bytes of a blob, if cached.
    pub fn blob(&self, kind: BlobType, id: &BlobId) -> Option<Vec<u8>> {
        let db = self.db.lock().ok()?;
        db.query_row("SELECT sealed FROM blobs WHERE kind = ?1 AND id = ?2", params![kind as u8, &id.0[..]], |r| {
            r.get(0)
        })
        .optional()
        .ok()?
    }

    pub fn put_blob(&self, kind: BlobType, id: &BlobId, sealed: &[u8]) {
        if let Ok(db) = self.db.lock() {
            let _ = db.execute(
                "INSERT OR REPLACE INTO blobs (kind, id, sealed) VALUES (?1, ?2, ?3)",
                params![kind as u8, &id.0[..], sealed],
            );
        }
    }

    /// Drops cached blobs the index no longer locates (`live` says), then the oldest ones
    /// past the byte budget.
    pub fn keep_blobs(&self, live: impl Fn(BlobType, &BlobId) -> bool) {
        let Ok(db) = self.db.lock() else { return };
        let rows: Vec<(i64, u8, Vec<u8>, i64)> = match db.prepare("SELECT seq, kind, id, length(sealed) FROM blobs") {
            Ok(mut q) => {
                q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map(|it| it.flatten().collect())
            }
            Err(_) => return,
        }
        .unwrap_or_default();
        let mut stale = Vec::new();
        let mut kept = Vec::new();
        for (seq, kind, id, len) in rows {
            let alive = BlobType::from_u8(kind).zip(BlobId::from_slice(&id)).is_some_and(|(k, id)| live(k, &id));
            if alive {
                kept.push((seq, len as u64));
            } else {
                stale.push(seq);
            }
        }
        let mut total: u64 = kept.iter().map(|k| k.1).sum();
        for (seq, len) in kept {
            if total <= self.blob_budget {
                break;
            }
            stale.push(seq);
            total -= len;
        }
        if stale.is_empty() {
            return;
        }
        let _ = db.execute_batch("BEGIN");
        for seq in stale {
            let _ = db.execute("DELETE FROM blobs WHERE seq = ?1", [seq]);
        }
        let _ = db.execute_batch("COMMIT");
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}
