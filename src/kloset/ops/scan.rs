//! Scan: what a backup would store, without storing anything (`backup -dry-run`). The
//! source is walked as a backup walks it (the same exclusions, the same checks on names,
//! the same problems reported), and each file is compared with the parent snapshot to tell
//! what the backup would read again. The store is only read: no packfile, state or lock
//! is written.

use crate::kloset::error::Result;
use crate::kloset::id::SnapshotId;
use crate::kloset::importer::{join, FileInfo, FileKind, Importer};
use crate::kloset::ops::backup::{children, find_parent, source_of, stat_root, unchanged, ExcludeFn};
use crate::kloset::repo::Repository;
use crate::kloset::tree::{Entry, Tree};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub others: u64,
    /// Bytes of file content, as listed.
    pub size: u64,
    pub errors: u64,
    /// Files a backup would read: new, or changed since the parent snapshot.
    pub changed: u64,
    pub changed_size: u64,
    /// The latest snapshot of the same source, whose unchanged files would not be read.
    pub parent: Option<SnapshotId>,
}

/// One path the backup would hold (with its kind), or one it would report (with why).
pub type Seen<'a> = std::result::Result<FileKind, &'a str>;

pub struct ScanOptions {
    pub exclude: Option<ExcludeFn>,
    /// Count every file as read again (`backup -no-parent`).
    pub no_parent: bool,
}

struct Scan<'a> {
    repo: &'a Repository,
    imp: &'a dyn Importer,
    opts: &'a ScanOptions,
    report: ScanReport,
    f: &'a mut dyn FnMut(&[u8], Seen),
}

/// Walks the source in name order, calling `f` for each path a backup would hold or report.
pub fn scan(
    repo: &Repository,
    imp: &dyn Importer,
    opts: &ScanOptions,
    f: &mut dyn FnMut(&[u8], Seen),
) -> Result<ScanReport> {
    let info = stat_root(imp)?;
    let root = imp.root();
    let parent = if opts.no_parent { None } else { find_parent(repo, &source_of(imp))? };
    let prev = parent.as_ref().and_then(|h| repo.lookup(h, &root).ok());
    let mut s = Scan { repo, imp, opts, report: ScanReport::default(), f };
    s.report.parent = parent.map(|h| h.id);
    s.visit(&root, Ok(info), prev.as_ref())?;
    Ok(s.report)
}

impl Scan<'_> {
    fn error(&mut self, path: &[u8], msg: &str) {
        self.report.errors += 1;
        (self.f)(path, Err(msg));
    }

    fn visit(&mut self, path: &[u8], info: std::result::Result<FileInfo, String>, prev: Option<&Entry>) -> Result<()> {
        let info = match info {
            Ok(i) => i,
            Err(msg) => {
                self.error(path, &msg);
                return Ok(());
            }
        };
        for w in &info.warnings {
            self.error(path, w);
        }
        let r = &mut self.report;
        match info.kind() {
            FileKind::File => {
                r.files += 1;
                r.size += info.size;
                if !prev.is_some_and(|p| unchanged(self.repo, p, &info)) {
                    r.changed += 1;
                    r.changed_size += info.size;
                }
            }
            FileKind::Dir => r.dirs += 1,
            FileKind::Symlink => r.symlinks += 1,
            FileKind::Special => r.others += 1,
        }
        (self.f)(path, Ok(info.kind()));
        if info.kind() != FileKind::Dir {
            return Ok(());
        }
        let listed = match self.imp.read_dir(path) {
            Ok(l) => l,
            Err(e) => {
                self.error(path, &e.to_string());
                return Ok(());
            }
        };
        let mut problems = Vec::new();
        let kids =
            children(path, listed, self.opts.exclude.as_ref(), &mut |p, m| problems.push((p.to_vec(), m.to_string())));
        for (p, m) in problems {
            self.error(&p, &m);
        }
        let prev_tree: Option<Tree> =
            prev.and_then(|p| p.subtree).filter(|_| !self.opts.no_parent).and_then(|id| self.repo.tree(&id).ok());
        for c in kids {
            let before = prev_tree.as_ref().and_then(|t| t.find(&c.name));
            self.visit(&join(path, &c.name), c.info, before)?;
        }
        Ok(())
    }
}
