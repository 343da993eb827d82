//! ptar: a whole store in one file, readable in place. Objects are appended one after
//! another and found through a table of contents at the end:
//!
//! ```text
//! "PLKRPTAR" u32 version(1)
//! object bytes...
//! toc: u32 count, count x (u8 kind: 0 CONFIG, 1 packfile, 2 state; id[32]; u64 offset; u64 length)
//! u64 toc offset, u32 toc length, "PTAR"
//! ```
//!
//! `PtarWriter` builds one under a temporary name and renames it into place when
//! finished, so an interrupted export never leaves a truncated archive under the real name.

use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind as K, StoreResult};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAGIC: &[u8; 8] = b"PLKRPTAR";
const VERSION: u32 = 1;
const TRAILER: usize = 16;
type Toc = HashMap<(u8, [u8; 32]), (u64, u64)>;

fn kind(res: Option<Resource>) -> u8 {
    match res {
        None => 0,
        Some(Resource::Packfile) => 1,
        Some(Resource::State) => 2,
        Some(Resource::Lock) => 3,
        Some(Resource::Key) => 4,
    }
}

fn read_only(loc: &str) -> StoreError {
    StoreError::new(K::Unsupported, format!("{loc} is a ptar archive, which is read-only"))
}

fn read_at(f: &File, off: u64, len: u64, what: &str) -> StoreResult<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, off)
        .map_err(|e| StoreError::new(K::Corrupt, format!("{what}: {e} (the archive is truncated?)")))?;
    Ok(buf)
}

/// Reads a finished archive.
pub struct PtarStore {
    path: PathBuf,
    file: File,
    toc: Toc,
}

impl PtarStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let loc = path.display().to_string();
        let file = File::open(path).map_err(|e| StoreError::from_io(e, &loc))?;
        let size = file.metadata().map_err(|e| StoreError::from_io(e, &loc))?.len();
        let bad = |why: &str| StoreError::new(K::Corrupt, format!("{loc} is not a readable ptar archive: {why}"));
        if size < (MAGIC.len() + 4 + TRAILER) as u64 {
            return Err(bad("too short"));
        }
        if read_at(&file, 0, 8, &loc)? != MAGIC {
            return Err(bad("wrong magic"));
        }
        let t = read_at(&file, size - TRAILER as u64, TRAILER as u64, &loc)?;
        if &t[12..] != b"PTAR" {
            return Err(bad("no trailer; the file is truncated or still being written"));
        }
        let off = u64::from_le_bytes(t[..8].try_into().expect("8"));
        let len = u32::from_le_bytes(t[8..12].try_into().expect("4")) as u64;
        if off.checked_add(len).is_none_or(|end| end > size - TRAILER as u64) {
            return Err(bad("table of contents out of bounds"));
        }
        let raw = read_at(&file, off, len, &loc)?;
        let n = u32::from_le_bytes(raw.get(..4).ok_or_else(|| bad("empty table"))?.try_into().expect("4")) as usize;
        let mut toc = Toc::new();
        let rec = 1 + 32 + 16;
        if raw.len() != 4 + n * rec {
            return Err(bad("table of contents has the wrong size"));
        }
        for r in raw[4..].chunks(rec) {
            let id: [u8; 32] = r[1..33].try_into().expect("32");
            let o = u64::from_le_bytes(r[33..41].try_into().expect("8"));
            let l = u64::from_le_bytes(r[41..49].try_into().expect("8"));
            if o.checked_add(l).is_none_or(|end| end > off) {
                return Err(bad("an object lies outside the archive"));
            }
            toc.insert((r[0], id), (o, l));
        }
        Ok(Self { path: path.to_path_buf(), file, toc })
    }

    fn lookup(&self, k: u8, id: &[u8; 32]) -> StoreResult<(u64, u64)> {
        self.toc
            .get(&(k, *id))
            .copied()
            .ok_or_else(|| StoreError::new(K::NotFound, format!("{} not in {}", hex::encode(id), self.location())))
    }
}

impl Store for PtarStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn create(&self, _config: &[u8]) -> StoreResult<()> {
        Err(StoreError::new(
            K::AlreadyExists,
            format!("{} already exists; write archives with plakar ptar -o", self.location()),
        ))
    }
    fn open(&self) -> StoreResult<Vec<u8>> {
        let (o, l) = self.lookup(0, &[0; 32])?;
        read_at(&self.file, o, l, &self.location())
    }
    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        Ok(self.toc.keys().filter(|(k, _)| *k == kind(Some(res))).map(|(_, id)| *id).collect())
    }
    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let (o, l) = self.lookup(kind(Some(res)), id)?;
        let (o, l) = match range {
            None => (o, l),
            Some((ro, rl)) => (o + ro.min(l), rl.min(l.saturating_sub(ro))),
        };
        read_at(&self.file, o, l, &self.location())
    }
    fn put(&self, _res: Resource, _id: &[u8; 32], _data: &[u8]) -> StoreResult<()> {
        Err(read_only(&self.location()))
    }
    fn delete(&self, _res: Resource, _id: &[u8; 32]) -> StoreResult<()> {
        Err(read_only(&self.location()))
    }
    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        Ok(self.lookup(kind(Some(res)), id)?.1)
    }
}

/// Writes a new archive. Locks live in memory only: nobody else sees the file until
/// `finish` renames it into place.
pub struct PtarWriter {
    dest: PathBuf,
    tmp: PathBuf,
    inner: Mutex<(File, u64, Toc)>,
    locks: Mutex<HashMap<[u8; 32], Vec<u8>>>,
}

impl PtarWriter {
    pub fn new(dest: &Path, overwrite: bool) -> std::io::Result<Self> {
        if dest.exists() && !overwrite {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists (use -overwrite to replace it)", dest.display()),
            ));
        }
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("ptar"),
            std::process::id()
        ));
        let mut f = File::options().read(true).write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&VERSION.to_le_bytes())?;
        Ok(Self {
            dest: dest.to_path_buf(),
            tmp,
            inner: Mutex::new((f, 12, Toc::new())),
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn append(&self, k: u8, id: [u8; 32], data: &[u8]) -> StoreResult<()> {
        let mut g = self.inner.lock().expect("lock");
        let off = g.1;
        g.0.write_all_at(data, off).map_err(|e| StoreError::from_io(e, self.tmp.display()))?;
        g.1 += data.len() as u64;
        g.2.insert((k, id), (off, data.len() as u64));
        Ok(())
    }

    /// Writes the table of contents and publishes the archive.
    pub fn finish(self) -> std::io::Result<()> {
        let (file, end, toc) = self.inner.into_inner().expect("lock");
        let mut t = (toc.len() as u32).to_le_bytes().to_vec();
        // Sorted by kind and id, so the same store always gives the same bytes.
        let mut entries: Vec<_> = toc.iter().collect();
        entries.sort();
        for ((k, id), (o, l)) in entries {
            t.push(*k);
            t.extend_from_slice(id);
            t.extend_from_slice(&o.to_le_bytes());
            t.extend_from_slice(&l.to_le_bytes());
        }
        t.extend_from_slice(&end.to_le_bytes());
        t.extend_from_slice(&((t.len() - 8) as u32).to_le_bytes());
        t.extend_from_slice(b"PTAR");
        file.write_all_at(&t, end)?;
        file.sync_all()?;
        std::fs::rename(&self.tmp, &self.dest)
    }

    pub fn abandon(&self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Store for PtarWriter {
    fn location(&self) -> String {
        self.dest.display().to_string()
    }
    fn create(&self, config: &[u8]) -> StoreResult<()> {
        self.append(0, [0; 32], config)
    }
    fn open(&self) -> StoreResult<Vec<u8>> {
        self.get_kind(0, &[0; 32], None)
    }
    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        if res == Resource::Lock {
            return Ok(self.locks.lock().expect("lock").keys().copied().collect());
        }
        let g = self.inner.lock().expect("lock");
        Ok(g.2.keys().filter(|(k, _)| *k == kind(Some(res))).map(|(_, id)| *id).collect())
    }
    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        if res == Resource::Lock {
            return self
                .locks
                .lock()
                .expect("lock")
                .get(id)
                .cloned()
                .ok_or_else(|| StoreError::new(K::NotFound, "no such lock"));
        }
        self.get_kind(kind(Some(res)), id, range)
    }
    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        if res == Resource::Lock {
            self.locks.lock().expect("lock").insert(*id, data.to_vec());
            return Ok(());
        }
        self.append(kind(Some(res)), *id, data)
    }
    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        if res == Resource::Lock {
            self.locks.lock().expect("lock").remove(id);
            return Ok(());
        }
        Err(StoreError::new(K::Unsupported, "objects cannot be deleted from a ptar archive"))
    }
    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let g = self.inner.lock().expect("lock");
        g.2.get(&(kind(Some(res)), *id)).map(|x| x.1).ok_or_else(|| StoreError::new(K::NotFound, "not in archive"))
    }
}

impl PtarWriter {
    fn get_kind(&self, k: u8, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let g = self.inner.lock().expect("lock");
        let (o, l) = g.2.get(&(k, *id)).copied().ok_or_else(|| StoreError::new(K::NotFound, "not in archive"))?;
        let (o, l) = match range {
            None => (o, l),
            Some((ro, rl)) => (o + ro.min(l), rl.min(l.saturating_sub(ro))),
        };
        read_at(&g.0, o, l, &self.tmp.display().to_string())
    }
}
