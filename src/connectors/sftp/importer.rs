//! Backs up a directory tree on an SFTP server. Attributes come from the SFTP listing
//! (lstat semantics: symlinks are recorded, not followed); file contents are streamed.

use super::config::SftpConfig;
use super::conn::{classify, Pool};
use crate::kloset::importer::{DirEntry, FileInfo, FileKind, Importer};
use ssh2::FileStat;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub struct SftpImporter {
    pool: Pool,
    root: Vec<u8>,
}

fn p(b: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(b))
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn info(st: &FileStat) -> FileInfo {
    const S_IFMT: u32 = 0o170000;
    let mode = st.perm.unwrap_or(0o100644);
    let kind = match mode & S_IFMT {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Dir,
        0o120000 => FileKind::Symlink,
        _ => FileKind::Special,
    };
    FileInfo {
        kind: Some(kind),
        mode,
        size: st.size.unwrap_or(0),
        mtime_ns: st.mtime.unwrap_or(0) as i64 * 1_000_000_000,
        nlink: 1,
        uid: st.uid.unwrap_or(0),
        gid: st.gid.unwrap_or(0),
        ..Default::default()
    }
}

impl SftpImporter {
    pub fn new(cfg: SftpConfig) -> io::Result<Self> {
        let root = if cfg.path.is_empty() { b"/".to_vec() } else { cfg.path.as_bytes().to_vec() };
        Ok(Self { pool: Pool::new(cfg)?, root })
    }

    fn with_target(&self, path: &[u8], mut fi: FileInfo) -> io::Result<FileInfo> {
        if fi.kind() == FileKind::Symlink {
            let t = self.pool.run(|s| s.readlink(p(path)).map_err(|e| classify(e, &show(path))))?;
            fi.target = t.as_os_str().as_bytes().to_vec();
        }
        Ok(fi)
    }
}

impl Importer for SftpImporter {
    fn kind(&self) -> &str {
        "sftp"
    }

    fn origin(&self) -> String {
        self.pool.cfg.host.clone()
    }

    fn root(&self) -> Vec<u8> {
        self.root.clone()
    }

    fn parallelism(&self) -> usize {
        // Files are read a few per connection, so one's round trips overlap another's data.
        self.pool.cfg.connections * 2
    }

    fn stat(&self, path: &[u8]) -> io::Result<FileInfo> {
        let st = self.pool.run(|s| s.lstat(p(path)).map_err(|e| classify(e, &show(path))))?;
        self.with_target(path, info(&st))
    }

    fn read_dir(&self, path: &[u8]) -> io::Result<Vec<DirEntry>> {
        let entries =
            self.pool.run(|s| s.readdir(p(path)).map_err(|e| classify(e, &format!("listing {}", show(path)))))?;
        let mut out = Vec::with_capacity(entries.len());
        for (child, st) in entries {
            let Some(name) = child.file_name().map(|n| n.as_bytes().to_vec()) else { continue };
            if name == b"." || name == b".." {
                continue;
            }
            let full = crate::kloset::importer::join(path, &name);
            // Some servers leave the type out of listings: ask for it then.
            let fi = match st.perm {
                Some(_) => Ok(info(&st)),
                None => self.pool.run(|s| s.lstat(p(&full)).map_err(|e| classify(e, &show(&full)))).map(|s| info(&s)),
            };
            let fi = fi.and_then(|fi| self.with_target(&full, fi)).map_err(|e| e.to_string());
            out.push(DirEntry { name, info: fi });
        }
        Ok(out)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        let f = self.pool.run(|s| s.open(p(path)).map_err(|e| classify(e, &show(path))))?;
        Ok(Box::new(std::io::BufReader::with_capacity(256 << 10, f)))
    }
}
