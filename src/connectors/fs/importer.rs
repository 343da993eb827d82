//! Backs up a local directory tree. Children are described with lstat (symlinks are not
//! followed); the root itself is followed, so `backup ./link-to-dir` backs up the directory.
//! Extended attributes are read with each entry (unless turned off: `backup -no-xattr`),
//! those of `xattrs::wanted`; device nodes keep their device number.

use super::xattrs;
use crate::kloset::importer::{DirEntry, FileInfo, FileKind, Importer};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// uid or gid -> name, looked up once each.
type NameCache = HashMap<u32, Option<String>>;

pub struct FsImporter {
    root: PathBuf,
    names: Mutex<(NameCache, NameCache)>,
    /// Read extended attributes.
    xattrs: bool,
    /// Running as root: the root-only attribute namespaces are read too.
    privileged: bool,
}

/// Makes a path absolute and removes `.` and `..` without touching the filesystem.
pub fn absolute(p: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

impl FsImporter {
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(Self {
            root: absolute(root)?,
            names: Mutex::new((HashMap::new(), HashMap::new())),
            xattrs: true,
            privileged: unsafe { libc::geteuid() } == 0,
        })
    }

    /// Whether extended attributes are read (`backup -no-xattr` turns them off).
    pub fn with_xattrs(mut self, on: bool) -> Self {
        self.xattrs = on;
        self
    }

    /// Describes `path` from its metadata `m`; `follow` says whether `m` is of the symlink's
    /// target (the root) rather than of the path itself.
    fn info(&self, m: &Metadata, path: &Path, follow: bool) -> io::Result<FileInfo> {
        let ft = m.file_type();
        let kind = if ft.is_file() {
            FileKind::File
        } else if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Special
        };
        let target =
            if kind == FileKind::Symlink { fs::read_link(path)?.as_os_str().as_bytes().to_vec() } else { vec![] };
        let (user, group) = self.owner_names(m.uid(), m.gid());
        let (xattrs, warnings) =
            if self.xattrs { xattrs::read(path, follow, self.privileged) } else { (vec![], vec![]) };
        let device = ft.is_char_device() || ft.is_block_device();
        Ok(FileInfo {
            kind: Some(kind),
            mode: m.mode(),
            size: if kind == FileKind::File { m.len() } else { 0 },
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            user,
            group,
            target,
            extra: vec![],
            rdev: device.then(|| m.rdev()),
            xattrs,
            warnings,
        })
    }

    fn owner_names(&self, uid: u32, gid: u32) -> (Option<String>, Option<String>) {
        let mut n = self.names.lock().expect("lock");
        let u =
            n.0.entry(uid)
                .or_insert_with(|| uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned()))
                .clone();
        let g =
            n.1.entry(gid)
                .or_insert_with(|| uzers::get_group_by_gid(gid).map(|g| g.name().to_string_lossy().into_owned()))
                .clone();
        (u, g)
    }
}

fn os(path: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(path))
}

impl Importer for FsImporter {
    fn kind(&self) -> &str {
        "fs"
    }

    fn origin(&self) -> String {
        crate::kloset::hostname()
    }

    fn root(&self) -> Vec<u8> {
        self.root.as_os_str().as_bytes().to_vec()
    }

    fn stat(&self, path: &[u8]) -> io::Result<FileInfo> {
        let p = os(path);
        let follow = p == self.root;
        let m = if follow { fs::metadata(p)? } else { fs::symlink_metadata(p)? };
        self.info(&m, p, follow)
    }

    fn read_dir(&self, path: &[u8]) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(os(path))? {
            let ent = ent?;
            let p = ent.path();
            let info = fs::symlink_metadata(&p).and_then(|m| self.info(&m, &p, false)).map_err(|e| e.to_string());
            out.push(DirEntry { name: ent.file_name().as_bytes().to_vec(), info });
        }
        Ok(out)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(fs::File::open(os(path))?))
    }
}
