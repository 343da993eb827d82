//! Restores into a directory on an SFTP server: files are written under a temporary name
//! and renamed into place; modes and mtimes are set afterwards. Ownership is left to the
//! SSH user (SFTP servers refuse chown to others), hard links become copies (SFTP v3 has no
//! link request).

use super::config::SftpConfig;
use super::conn::{classify, Pool};
use super::store::{mkdir_all, write_atomic};
use crate::kloset::exporter::Exporter;
use crate::kloset::importer::{FileInfo, FileKind};
use ssh2::FileStat;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub struct SftpExporter {
    pool: Pool,
}

fn p(s: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(s))
}

impl SftpExporter {
    pub fn new(cfg: SftpConfig) -> io::Result<Self> {
        let pool = Pool::new(cfg)?;
        let root = pool.cfg.remote("");
        pool.run(|s| mkdir_all(s, root.as_bytes()))?;
        Ok(Self { pool })
    }

    fn full(&self, rel: &[u8]) -> Vec<u8> {
        let mut out = self.pool.cfg.path.as_bytes().to_vec();
        out.push(b'/');
        out.extend_from_slice(rel);
        out
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Exporter for SftpExporter {
    fn create_dir(&self, path: &[u8]) -> io::Result<()> {
        let full = self.full(path);
        self.pool.run(|s| mkdir_all(s, &full))
    }

    fn store_file(&self, path: &[u8], data: &mut dyn Read, _size: u64) -> io::Result<()> {
        let full = self.full(path);
        // `data` can be read once only: no second attempt on another connection.
        let mut data = Some(data);
        self.pool.run(|s| match data.take() {
            Some(d) => write_atomic(s, &full, d, true),
            None => Err(io::Error::other(format!("writing {}: the SSH connection was lost", show(&full)))),
        })
    }

    fn symlink(&self, path: &[u8], target: &[u8]) -> io::Result<()> {
        let full = self.full(path);
        self.pool.run(|s| {
            if s.lstat(p(&full)).is_ok() {
                s.unlink(p(&full)).map_err(|e| classify(e, &show(&full)))?;
            }
            // OpenSSH's server takes SSH_FXP_SYMLINK's two paths in swapped order, and
            // libssh2 sends them for it: this makes `full` point at `target`.
            s.symlink(p(target), p(&full)).map_err(|e| classify(e, &format!("symlink {}", show(&full))))
        })
    }

    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()> {
        let (src, dst) = (self.full(existing), self.full(path));
        self.pool.run(|s| {
            let mut f = s.open(p(&src)).map_err(|e| classify(e, &show(&src)))?;
            write_atomic(s, &dst, &mut f, true)?;
            // The copy takes the original's mode and times, as a link would share them.
            let st = s.stat(p(&src)).map_err(|e| classify(e, &show(&src)))?;
            let st = FileStat { size: None, uid: None, gid: None, ..st };
            s.setstat(p(&dst), st).map_err(|e| classify(e, &show(&dst)))
        })
    }

    fn set_metadata(&self, path: &[u8], info: &FileInfo) -> io::Result<()> {
        if info.kind() == FileKind::Symlink {
            return Ok(()); // setstat would follow the link
        }
        let full = self.full(path);
        let mtime = (info.mtime_ns.max(0) / 1_000_000_000) as u64;
        let st = FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(info.mode & 0o7777),
            atime: Some(mtime),
            mtime: Some(mtime),
        };
        self.pool.run(|s| s.setstat(p(&full), st.clone()).map_err(|e| classify(e, &show(&full))))
    }

    fn finish(&self) -> io::Result<()> {
        Ok(())
    }

    fn parallelism(&self) -> usize {
        self.pool.cfg.connections * 2
    }
}
