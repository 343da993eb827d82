//! A source that fails like one that cannot be read, and a backup through it into an fs
//! store the binary can open (restore_safety and drill use it).
use crate::util::PASS;
use plakar::connectors::fs::{FsImporter, FsStore};
use plakar::kloset::config::CreateParams;
use plakar::kloset::importer::{DirEntry, FileInfo, Importer};
use plakar::kloset::ops::backup;
use plakar::kloset::progress::NoProgress;
use plakar::kloset::{repo, Repository};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// Fails like a source that cannot be read: opening files whose name holds "unreadable",
/// listing directories whose name holds "unlistable", describing entries whose name holds
/// "unstatable".
pub struct Flaky(pub FsImporter);

fn denied() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied")
}

fn has(p: &[u8], what: &str) -> bool {
    String::from_utf8_lossy(p).contains(what)
}

impl Importer for Flaky {
    fn kind(&self) -> &str {
        self.0.kind()
    }
    fn origin(&self) -> String {
        self.0.origin()
    }
    fn root(&self) -> Vec<u8> {
        self.0.root()
    }
    fn stat(&self, p: &[u8]) -> io::Result<FileInfo> {
        self.0.stat(p)
    }
    fn read_dir(&self, p: &[u8]) -> io::Result<Vec<DirEntry>> {
        if has(p, "unlistable") {
            return Err(denied());
        }
        let mut v = self.0.read_dir(p)?;
        for e in v.iter_mut().filter(|e| has(&e.name, "unstatable")) {
            e.info = Err("Permission denied".into());
        }
        Ok(v)
    }
    fn open(&self, p: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        if has(p, "unreadable") {
            return Err(denied());
        }
        self.0.open(p)
    }
}

/// Backs `data` up with the engine through `Flaky` into an fs store the binary can open;
/// returns the backup's error count.
pub fn flaky_backup(env: &crate::util::Env, data: &Path) -> u64 {
    let store: Arc<dyn plakar::kloset::store::Store> = Arc::new(FsStore::new(env.path("store")));
    let params = CreateParams { kdf: crate::engine::fast_params().kdf, ..Default::default() };
    let cfg = repo::create(store.as_ref(), &params, Some(PASS.as_bytes())).unwrap();
    let repo = Repository::open(store, cfg, Some(PASS.as_bytes())).unwrap();
    let h = backup::backup(&repo, &Flaky(FsImporter::new(data).unwrap()), &Default::default(), &NoProgress).unwrap();
    h.summary.errors
}
