//! A store in one SQLite database file: CONFIG in its own table, every other object a row
//! keyed by (resource, id). WAL journal with synchronous=FULL, so a killed process (or a
//! power cut) loses at most the transaction in flight and never corrupts the file.

use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind as K, StoreResult};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

fn res_code(r: Resource) -> i64 {
    match r {
        Resource::Packfile => 1,
        Resource::State => 2,
        Resource::Lock => 3,
        Resource::Key => 4,
    }
}

impl SqliteStore {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), conn: Mutex::new(None) }
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                rusqlite::ErrorCode::DiskFull => K::Full,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => K::Transient,
                rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::ReadOnly => K::PermissionDenied,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt => K::Corrupt,
                rusqlite::ErrorCode::CannotOpen => K::NotFound,
                _ => K::Other,
            },
            rusqlite::Error::QueryReturnedNoRows => K::NotFound,
            _ => K::Other,
        };
        StoreError::new(kind, format!("{}: {e}", self.path.display()))
    }

    fn connect(&self, create: bool) -> StoreResult<Connection> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        } else if !self.path.exists() {
            return Err(StoreError::new(K::NotFound, format!("{} does not exist", self.path.display())));
        }
        let c = Connection::open_with_flags(&self.path, flags).map_err(|e| self.err(e))?;
        c.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| self.err(e))?;
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS configuration (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS objects (resource INTEGER NOT NULL, id BLOB NOT NULL, data BLOB NOT NULL,
                                                 PRIMARY KEY (resource, id)) WITHOUT ROWID;",
        )
        .map_err(|e| self.err(e))?;
        Ok(c)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut g = self.conn.lock().expect("lock");
        if g.is_none() {
            *g = Some(self.connect(false)?);
        }
        f(g.as_ref().expect("just set")).map_err(|e| self.err(e))
    }
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn create(&self, config: &[u8]) -> StoreResult<()> {
        let c = self.connect(true)?;
        let done = c.execute("INSERT INTO configuration (id, data) VALUES (1, ?1)", params![config]);
        match done {
            Ok(_) => {
                *self.conn.lock().expect("lock") = Some(c);
                Ok(())
            }
            Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::new(K::AlreadyExists, format!("{} already holds a store", self.location())))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        let n = self.with(|c| c.execute("UPDATE configuration SET data = ?1 WHERE id = 1", params![config]))?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::new(K::NotFound, format!("{} holds no store", self.location())))
        }
    }

    fn open(&self) -> StoreResult<Vec<u8>> {
        let v =
            self.with(|c| c.query_row("SELECT data FROM configuration WHERE id = 1", [], |r| r.get(0)).optional())?;
        v.ok_or_else(|| StoreError::new(K::NotFound, format!("{} holds no store", self.location())))
    }

    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT id FROM objects WHERE resource = ?1")?;
            let rows = st.query_map(params![res_code(res)], |r| r.get::<_, Vec<u8>>(0))?;
            let mut out = Vec::new();
            for r in rows {
                if let Ok(id) = <[u8; 32]>::try_from(r?) {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }

    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let v: Option<Vec<u8>> = self.with(|c| match range {
            None => c
                .prepare_cached("SELECT data FROM objects WHERE resource = ?1 AND id = ?2")?
                .query_row(params![res_code(res), &id[..]], |r| r.get(0))
                .optional(),
            Some((off, len)) => c
                .prepare_cached("SELECT substr(data, ?3, ?4) FROM objects WHERE resource = ?1 AND id = ?2")?
                .query_row(params![res_code(res), &id[..], off as i64 + 1, len as i64], |r| r.get(0))
                .optional(),
        })?;
        v.ok_or_else(|| {
            StoreError::new(K::NotFound, format!("{}/{} not in {}", res.dir(), hex::encode(id), self.location()))
        })
    }

    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached("INSERT OR REPLACE INTO objects (resource, id, data) VALUES (?1, ?2, ?3)")?
                .execute(params![res_code(res), &id[..], data])
        })
        .map(|_| ())
    }

    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM objects WHERE resource = ?1 AND id = ?2")?
                .execute(params![res_code(res), &id[..]])
        })
        .map(|_| ())
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let v: Option<i64> = self.with(|c| {
            c.prepare_cached("SELECT length(data) FROM objects WHERE resource = ?1 AND id = ?2")?
                .query_row(params![res_code(res), &id[..]], |r| r.get(0))
                .optional()
        })?;
        v.map(|n| n as u64).ok_or_else(|| StoreError::new(K::NotFound, "not found"))
    }
}
