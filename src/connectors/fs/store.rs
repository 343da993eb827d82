//! A store in a local directory: `CONFIG`, `packfiles/XX/<id>`, `states/XX/<id>`,
//! `locks/<id>`. Every object is written to a temporary name, synced, then renamed, so a
//! reader sees a whole object or none; CONFIG is published with a hard link, which fails if
//! one already exists.
//!
//! Durability: a rename or a new directory entry is only on disk once the directory holding
//! it is synced. Each write syncs the file, renames it, then syncs its directory before
//! returning, so the engine's order (packfiles, then the state naming them) holds after a
//! power cut too; `create` syncs every directory it makes and the one holding the store;
//! deleting a state syncs its directory, so maintenance's packfile deletes, which follow,
//! never outlive it (deleting a key slot syncs too: a passphrase taken away stays away).
//! Deleting a packfile or a lock does not: if one comes back after a power cut, nothing
//! names it and the next maintenance removes it again.

use super::open_packs::OpenPacks;
use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind, StoreResult};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct FsStore {
    root: PathBuf,
    trace: Trace,
    packs: OpenPacks,
}

/// One of the calls whose order makes a write survive a power cut. No test can cut the
/// power, so the unit tests record these and check their order instead.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Data written to a new file.
    Write(PathBuf),
    SyncFile(PathBuf),
    Rename(PathBuf, PathBuf),
    Link(PathBuf, PathBuf),
    Remove(PathBuf),
    Mkdir(PathBuf),
    SyncDir(PathBuf),
}

/// Where steps are recorded: nowhere, but in tests.
#[derive(Default, Clone)]
struct Trace(Option<Arc<Mutex<Vec<Step>>>>);

impl Trace {
    fn note(&self, step: impl FnOnce() -> Step) {
        if let Some(t) = &self.0 {
            t.lock().unwrap_or_else(|e| e.into_inner()).push(step());
        }
    }
}

/// The directory holding `p` ("." for a bare name).
fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn sync_dir(t: &Trace, dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()?;
    t.note(|| Step::SyncDir(dir.into()));
    Ok(())
}

/// Makes `dir`; one that already exists is fine (another process got there first).
fn mkdir(t: &Trace, dir: &Path) -> std::io::Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => {
            t.note(|| Step::Mkdir(dir.into()));
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes `dirs` (parents first), then syncs each one made and the directory holding it,
/// deepest first.
fn mkdirs_durable(t: &Trace, dirs: &[PathBuf]) -> std::io::Result<()> {
    let mut to_sync = Vec::new();
    for d in dirs {
        if mkdir(t, d)? {
            to_sync.push(d.clone());
            to_sync.push(parent_of(d).to_path_buf());
        }
    }
    to_sync.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    to_sync.dedup();
    to_sync.iter().try_for_each(|d| sync_dir(t, d))
}

/// `dir` and whichever of its parents are missing, parents first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        dir.ancestors().take_while(|p| !p.as_os_str().is_empty() && !p.exists()).map(PathBuf::from).collect();
    v.reverse();
    v
}

/// Writes `data` to a new file at `path` and syncs it.
fn write_synced(t: &Trace, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = File::options().write(true).create_new(true).open(path)?;
    f.write_all(data)?;
    t.note(|| Step::Write(path.into()));
    f.sync_all()?;
    t.note(|| Step::SyncFile(path.into()));
    Ok(())
}

fn temp_name(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(format!("{prefix}{}", hex::encode(crate::kloset::crypto::random_bytes::<8>())))
}

impl FsStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), trace: Trace::default(), packs: OpenPacks::default() }
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

/// Writes `data` to `dest` through a synced temporary file in the same directory, and
/// syncs the directory after the rename.
pub fn write_atomic(dest: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic_traced(&Trace::default(), dest, data)
}

fn write_atomic_traced(t: &Trace, dest: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = parent_of(dest);
    let tmp = temp_name(dir, ".tmp-");
    let res = (|| {
        write_synced(t, &tmp, data)?;
        fs::rename(&tmp, dest)?;
        t.note(|| Step::Rename(tmp.clone(), dest.into()));
        sync_dir(t, dir)
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
        let t = &self.trace;
        let made = missing_dirs(&self.root);
        mkdirs_durable(t, &made).map_err(|e| self.err(e, &self.root))?;
        if made.is_empty() {
            // An empty directory made just before, perhaps by hand: keep its name too.
            sync_dir(t, parent_of(&self.root)).map_err(|e| self.err(e, &self.root))?;
        }
        // The 512 shard directories are not synced one by one (that took create from 0.4 s
        // to 2 s on ext4): their names are, with their parents, and one lost in a power cut
        // is made again, durably, by the first put into it.
        for res in [Resource::Packfile, Resource::State] {
            let top = self.root.join(res.dir());
            mkdir(t, &top).map_err(|e| self.err(e, &top))?;
            for b in 0..=255u8 {
                let d = top.join(hex::encode([b]));
                mkdir(t, &d).map_err(|e| self.err(e, &d))?;
            }
            sync_dir(t, &top).map_err(|e| self.err(e, &top))?;
        }
        let locks = self.root.join(Resource::Lock.dir());
        mkdir(t, &locks).map_err(|e| self.err(e, &locks))?;
        let tmp = temp_name(&self.root, ".CONFIG.tmp-");
        let dest = self.root.join("CONFIG");
        let linked = write_synced(t, &tmp, config).and_then(|()| {
            fs::hard_link(&tmp, &dest)?;
            t.note(|| Step::Link(tmp.clone(), dest.clone()));
            Ok(())
        });
        if fs::remove_file(&tmp).is_ok() {
            t.note(|| Step::Remove(tmp.clone()));
        }
        linked.map_err(|e| self.err(e, &dest))?;
        sync_dir(t, &self.root).map_err(|e| self.err(e, &self.root))
    }

    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        let dest = self.root.join("CONFIG");
        write_atomic_traced(&self.trace, &dest, config).map_err(|e| self.err(e, &dest))
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
        if let (Resource::Packfile, Some((off, len))) = (res, range) {
            return self.packs.read(id, &p, off, len).map_err(|e| self.err(e, &p));
        }
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
        let d = parent_of(&p);
        if !d.exists() {
            mkdirs_durable(&self.trace, &missing_dirs(d)).map_err(|e| self.err(e, d))?;
        }
        write_atomic_traced(&self.trace, &p, data).map_err(|e| self.err(e, &p))
    }

    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        let p = self.path(res, id);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(e, &p)),
            Err(_) => Ok(()),
            Ok(()) => {
                self.trace.note(|| Step::Remove(p.clone()));
                if matches!(res, Resource::State | Resource::Key) {
                    sync_dir(&self.trace, parent_of(&p)).map_err(|e| self.err(e, &p))?;
                }
                Ok(())
            }
        }
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let p = self.path(res, id);
        fs::metadata(&p).map(|m| m.len()).map_err(|e| self.err(e, &p))
    }
}

#[cfg(test)]
mod tests {
    //! Every write must reach the disk in an order that survives a power cut at any point:
    //! data synced before the rename that publishes it, the rename synced (its directory)
    //! before the call returns, so that a state is never durable before the packfiles it
    //! names. Checked on the recorded steps, since a test cannot cut the power.
    use super::*;

    fn traced(root: &Path) -> (FsStore, Arc<Mutex<Vec<Step>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (FsStore { root: root.into(), trace: Trace(Some(log.clone())), packs: OpenPacks::default() }, log)
    }

    fn take(log: &Arc<Mutex<Vec<Step>>>) -> Vec<Step> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    fn parent(p: &Path) -> PathBuf {
        p.parent().unwrap().to_path_buf()
    }

    /// The first index after `from` where `want` was recorded.
    fn after(steps: &[Step], from: usize, want: &Step) -> Option<usize> {
        steps[from..].iter().position(|s| s == want).map(|i| from + i)
    }

    /// Checks that each step that changes a directory is made durable before the
    /// operation ended, and that data is synced before it is published.
    fn assert_durable(steps: &[Step], what: &str) {
        for (i, s) in steps.iter().enumerate() {
            let synced_before = |f: &PathBuf| {
                let w = steps[..i].iter().rposition(|s| *s == Step::Write(f.clone()));
                w.is_some_and(|w| after(&steps[..i], w, &Step::SyncFile(f.clone())).is_some())
            };
            match s {
                Step::Rename(from, to) | Step::Link(from, to) => {
                    assert!(synced_before(from), "{what}: {from:?} published before it was synced: {steps:#?}");
                    assert!(
                        after(steps, i, &Step::SyncDir(parent(to))).is_some(),
                        "{what}: {to:?} published but its directory never synced: {steps:#?}"
                    );
                }
                Step::Mkdir(d) => {
                    // An empty shard or lock directory need not be synced itself: put()
                    // makes it again if a power cut lost it.
                    let shard = d.parent().is_some_and(|p| p.ends_with("packfiles") || p.ends_with("states"));
                    let own = (!shard && !d.ends_with("locks")).then(|| d.clone());
                    for dir in own.into_iter().chain([parent(d)]) {
                        assert!(
                            after(steps, i, &Step::SyncDir(dir.clone())).is_some(),
                            "{what}: {d:?} created but {dir:?} never synced: {steps:#?}"
                        );
                    }
                }
                Step::Remove(p) => assert!(
                    after(steps, i, &Step::SyncDir(parent(p))).is_some(),
                    "{what}: {p:?} removed but its directory never synced: {steps:#?}"
                ),
                _ => {}
            }
        }
    }

    #[test]
    fn every_write_and_state_delete_is_durable_before_it_returns() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("new/store");
        let (s, log) = traced(&root);
        s.create(b"config").unwrap();
        let steps = take(&log);
        assert_durable(&steps, "create");
        assert!(steps.contains(&Step::SyncDir(d.path().join("new"))), "the root's parent: {steps:#?}");
        assert!(steps.contains(&Step::SyncDir(d.path().into())), "the directory create made: {steps:#?}");
        let id = [7u8; 32];
        for res in [Resource::Packfile, Resource::State, Resource::Lock] {
            s.put(res, &id, b"data").unwrap();
            let steps = take(&log);
            assert!(
                matches!(steps.as_slice(), [Step::Write(_), Step::SyncFile(_), Step::Rename(..), Step::SyncDir(_)]),
                "{res:?}: {steps:#?}"
            );
            assert_durable(&steps, &format!("put {res:?}"));
        }
        s.replace_config(b"other").unwrap();
        assert_durable(&take(&log), "replace_config");
        for res in [Resource::Packfile, Resource::Lock] {
            s.delete(res, &id).unwrap();
            assert_eq!(take(&log).len(), 1, "no sync for a {res:?}: one that comes back is harmless");
        }
        s.delete(Resource::State, &id).unwrap();
        let steps = take(&log);
        assert_eq!(steps.len(), 2, "{steps:#?}");
        assert_durable(&steps, "delete state");
        // A shard directory that went missing is made again, durably.
        fs::remove_dir(root.join("states/07")).unwrap();
        s.put(Resource::State, &id, b"data").unwrap();
        let steps = take(&log);
        assert!(steps.contains(&Step::Mkdir(root.join("states/07"))), "{steps:#?}");
        assert!(steps.contains(&Step::SyncDir(root.join("states/07"))), "{steps:#?}");
        assert_durable(&steps, "put into a missing shard");
    }
}
