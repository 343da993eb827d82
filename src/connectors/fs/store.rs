//! A store in a local directory: `CONFIG`, `packfiles/XX/<id>`, `states/XX/<id>`,
//! `locks/<id>`. Every object is written to a temporary name, synced, then renamed, so a
//! reader sees a whole object or none; CONFIG is published with a hard link, which fails if
//! one already exists.

use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind, StoreResult};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn dir(&self, res: Resource, id: &[u8; 32]) -> PathBuf {
        let d = self.root.join(res.dir());
        if res.sharded() {
            d.join(hex::encode(&id[..1]))
        } else {
            d
        }
    }

    fn path(&self, res: Resource, id: &[u8; 32]) -> PathBuf {
        self.dir(res, id).join(hex::encode(id))
    }

    fn err(&self, e: std::io::Error, what: &Path) -> StoreError {
        StoreError::from_io(e, what.display())
    }
}

/// Writes `data` to `dest` through a synced temporary file in the same directory.
pub fn write_atomic(dest: &Path, data: &[u8], sync_dir: bool) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", hex::encode(crate::kloset::crypto::random_bytes::<8>())));
    let res = (|| {
        let mut f = File::options().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, dest)?;
        if sync_dir {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

impl Store for FsStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self, config: &[u8]) -> StoreResult<()> {
        if self.root.join("CONFIG").exists() {
            return Err(StoreError::new(
                StoreErrorKind::AlreadyExists,
                format!("{} already holds a store", self.location()),
            ));
        }
        if let Ok(mut rd) = fs::read_dir(&self.root) {
            if rd.next().is_some() {
                return Err(StoreError::new(
                    StoreErrorKind::AlreadyExists,
                    format!("{} is not empty; create the store in a new or empty directory", self.location()),
                ));
            }
        }
        fs::create_dir_all(&self.root).map_err(|e| self.err(e, &self.root))?;
        for res in [Resource::Packfile, Resource::State] {
            for b in 0..=255u8 {
                let d = self.root.join(res.dir()).join(hex::encode([b]));
                fs::create_dir_all(&d).map_err(|e| self.err(e, &d))?;
            }
        }
        let locks = self.root.join(Resource::Lock.dir());
        fs::create_dir_all(&locks).map_err(|e| self.err(e, &locks))?;
        let tmp = self.root.join(".CONFIG.tmp");
        write_atomic(&tmp, config, false).map_err(|e| self.err(e, &tmp))?;
        let dest = self.root.join("CONFIG");
        let linked = fs::hard_link(&tmp, &dest);
        let _ = fs::remove_file(&tmp);
        linked.map_err(|e| self.err(e, &dest))?;
        File::open(&self.root).and_then(|d| d.sync_all()).map_err(|e| self.err(e, &self.root))
    }

    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        let dest = self.root.join("CONFIG");
        write_atomic(&dest, config, true).map_err(|e| self.err(e, &dest))
    }

    fn open(&self) -> StoreResult<Vec<u8>> {
        let p = self.root.join("CONFIG");
        fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotADirectory => {
                StoreError::new(StoreErrorKind::NotFound, format!("{} is a file", self.location()))
            }
            _ => self.err(e, &p),
        })
    }

    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        let base = self.root.join(res.dir());
        let dirs: Vec<PathBuf> =
            if res.sharded() { (0..=255u8).map(|b| base.join(hex::encode([b]))).collect() } else { vec![base] };
        let mut out = Vec::new();
        for d in dirs {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err(e, &d)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| self.err(e, &d))?;
                let name = ent.file_name();
                if let Some(id) =
                    name.to_str().and_then(|n| hex::decode(n).ok()).and_then(|v| <[u8; 32]>::try_from(v).ok())
                {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let p = self.path(res, id);
        let mut f = File::open(&p).map_err(|e| self.err(e, &p))?;
        let mut buf = Vec::new();
        match range {
            None => f.read_to_end(&mut buf),
            Some((off, len)) => {
                f.seek(SeekFrom::Start(off)).map_err(|e| self.err(e, &p))?;
                buf.reserve(len as usize);
                f.take(len).read_to_end(&mut buf)
            }
        }
        .map_err(|e| self.err(e, &p))?;
        Ok(buf)
    }

    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        let p = self.path(res, id);
        if let Some(d) = p.parent() {
            if !d.exists() {
                fs::create_dir_all(d).map_err(|e| self.err(e, d))?;
            }
        }
        write_atomic(&p, data, res == Resource::State).map_err(|e| self.err(e, &p))
    }

    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        let p = self.path(res, id);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(e, &p)),
            _ => Ok(()),
        }
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let p = self.path(res, id);
        fs::metadata(&p).map(|m| m.len()).map_err(|e| self.err(e, &p))
    }
}
