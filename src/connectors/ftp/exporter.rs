//! Restores into a directory of an FTP server. Each file is streamed with STOR to a
//! temporary name in its directory, then renamed into place, so the server never shows a
//! half-written file under the real name. Modes are set with SITE CHMOD and file times
//! with MFMT where the server has them (directory times too, where it allows). What FTP
//! cannot hold is reported as an error for that path, never dropped silently: symbolic
//! links, and modes or times on a server without the commands (reported once). Hard links
//! become copies, with the original's mode and time.

use super::config::FtpConfig;
use super::errors::{connection_lost, path_error};
use super::importer::{text, FileReader};
use super::listing::{format_time, info_from_facts, parse_facts};
use super::pool::{Conn, Pool, MAX_CONNECTIONS};
use crate::kloset::exporter::Exporter;
use crate::kloset::importer::{FileInfo, FileKind};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use suppaftp::{FtpError, Status};

const BUF: usize = 256 << 10;

pub struct FtpExporter {
    pool: Arc<Pool>,
    root: String,
    permissions: bool,
    /// Cleared the first time the server rejects SITE CHMOD, which is reported once.
    chmod: AtomicBool,
    mfmt: bool,
    /// A server without MFMT is reported once, not for every file.
    no_mfmt_reported: AtomicBool,
}

/// The server does not know the command (500, 502, 504).
fn unsupported(e: &FtpError) -> bool {
    matches!(e, FtpError::UnexpectedResponse(r) if matches!(r.status.code(), 500 | 502 | 504))
}

impl FtpExporter {
    /// Connects at once and creates the target directory, with its parents.
    pub fn new(cfg: FtpConfig, permissions: bool) -> io::Result<Self> {
        let pool = Pool::open(cfg)?;
        let root = if pool.cfg.path.is_empty() {
            pool.run("finding the login directory", "", |f| f.pwd())?
        } else {
            format!("/{}", pool.cfg.path)
        };
        let mfmt = pool.features().mfmt;
        let exp = Self {
            pool,
            root,
            permissions,
            chmod: AtomicBool::new(true),
            mfmt,
            no_mfmt_reported: AtomicBool::new(false),
        };
        let root = exp.root.clone();
        if exp.pool.run("opening", &root, |f| f.cwd(&root)).is_err() {
            // Parents may exist yet be closed to this user: only the target itself must work.
            let mut dir = String::new();
            let comps: Vec<&str> = root.split('/').filter(|c| !c.is_empty()).collect();
            for comp in comps.iter().take(comps.len().saturating_sub(1)) {
                dir.push('/');
                dir.push_str(comp);
                let _ = exp.mkdir(&dir);
            }
            exp.mkdir(&root)?;
        }
        Ok(exp)
    }

    /// The server path of `rel`, a path relative to the target.
    fn full(&self, rel: &[u8]) -> io::Result<String> {
        let rel = text(rel)?.trim_matches('/');
        let root = self.root.trim_end_matches('/');
        Ok(if rel.is_empty() { self.root.clone() } else { format!("{root}/{rel}") })
    }

    /// MKD, fine if the directory is already there.
    fn mkdir(&self, dir: &str) -> io::Result<()> {
        match self.pool.run("creating directory", dir, |f| f.mkdir(dir)) {
            Ok(()) => Ok(()),
            Err(e) => match self.pool.run("creating directory", dir, |f| f.cwd(dir)) {
                Ok(()) => Ok(()),
                Err(_) => Err(e),
            },
        }
    }

    /// Writes `data` to `dest` through a temporary name in the same directory; `size`, if
    /// known, is checked.
    fn upload(&self, dest: &str, data: &mut dyn Read, size: Option<u64>) -> io::Result<()> {
        let (dir, _) = dest.rsplit_once('/').unwrap_or(("", dest));
        let tmp = format!("{dir}/.plakar-restore-{}", hex::encode(crate::kloset::crypto::random_bytes::<6>()));
        let (mut conn, stream) = self.start(&tmp, dest)?;
        let res = self.write(&mut conn, stream, dest, data, size).and_then(|_| self.rename(&mut conn, &tmp, dest));
        if res.is_err() {
            // Its state is unknown; and giving it back first means the clean-up below
            // cannot wait for a connection while holding one.
            conn.discard();
            let _ = self.pool.run("removing", &tmp, |f| f.rm(&tmp));
        }
        res
    }

    /// STOR to `tmp`: a connection and the data stream to write to. Nothing is sent before
    /// the server accepts, so a pooled connection found broken is replaced and STOR tried
    /// again.
    fn start(&self, tmp: &str, dest: &str) -> io::Result<(Conn, impl Write)> {
        let mut retried = false;
        loop {
            let mut conn = self.pool.get()?;
            match conn.ftp().put_with_stream(tmp) {
                Ok(stream) => return Ok((conn, stream)),
                Err(e) if connection_lost(&e) && !retried => {
                    conn.discard();
                    retried = true;
                }
                Err(e) => {
                    if connection_lost(&e) {
                        conn.discard();
                    }
                    return Err(path_error(e, &self.pool.cfg, "writing", dest));
                }
            }
        }
    }

    /// Copies `data` to the STOR `stream` and ends the transfer.
    fn write(
        &self,
        conn: &mut Conn,
        mut stream: impl Write,
        dest: &str,
        data: &mut dyn Read,
        size: Option<u64>,
    ) -> io::Result<()> {
        let cfg = &self.pool.cfg;
        let mut buf = vec![0u8; BUF];
        let mut n = 0u64;
        let copied: io::Result<()> = (|| loop {
            let k = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            stream.write_all(&buf[..k]).map_err(|e| io::Error::new(e.kind(), format!("writing {dest}: {e}")))?;
            n += k as u64;
        })();
        let finished = conn.ftp().finalize_put_stream(stream);
        copied?;
        finished.map_err(|e| path_error(e, cfg, "writing", dest))?;
        match size {
            Some(size) if size != n => Err(io::Error::other(format!("writing {dest}: expected {size} bytes, got {n}"))),
            _ => Ok(()),
        }
    }

    /// RNFR/RNTO, replacing `to`; some servers refuse to rename over a file, so that one is
    /// removed and the rename tried again.
    fn rename(&self, conn: &mut Conn, from: &str, to: &str) -> io::Result<()> {
        let f = conn.ftp();
        match f.rename(from, to) {
            Ok(()) => Ok(()),
            Err(_) => {
                let _ = f.rm(to);
                f.rename(from, to).map_err(|e| path_error(e, &self.pool.cfg, "renaming into place", to))
            }
        }
    }

    fn set_mode(&self, path: &str, mode: u32) -> io::Result<()> {
        if !self.chmod.load(Ordering::Relaxed) {
            return Ok(());
        }
        let cmd = format!("CHMOD {:o} {path}", mode & 0o7777);
        let known = self.pool.run("setting the mode of", path, |f| match f.site(&cmd) {
            Ok(_) => Ok(true),
            Err(e) if unsupported(&e) => Ok(false),
            Err(e) => Err(e),
        })?;
        if !known && self.chmod.swap(false, Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} does not support SITE CHMOD: file modes are not restored (this is reported once; use -skip-permissions to not ask)",
                    self.pool.cfg.addr()
                ),
            ));
        }
        Ok(())
    }

    fn set_time(&self, path: &str, mtime_ns: i64, dir: bool) -> io::Result<()> {
        let Some(ts) = format_time(mtime_ns) else { return Ok(()) };
        if !self.mfmt {
            if dir || self.no_mfmt_reported.swap(true, Ordering::Relaxed) {
                return Ok(());
            }
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} does not support MFMT: modification times are not restored (this is reported once)",
                    self.pool.cfg.addr()
                ),
            ));
        }
        let cmd = format!("MFMT {ts} {path}");
        let res = self.pool.run("setting the time of", path, |f| f.custom_command(&cmd, &[Status::File]).map(|_| ()));
        match res {
            // Many servers (pyftpdlib, vsftpd) set times on files only.
            Err(_) if dir => Ok(()),
            other => other,
        }
    }
}

impl Exporter for FtpExporter {
    fn create_dir(&self, path: &[u8]) -> io::Result<()> {
        let full = self.full(path)?;
        if full == self.root {
            return Ok(());
        }
        self.mkdir(&full)
    }

    fn store_file(&self, path: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        self.upload(&self.full(path)?, data, Some(size))
    }

    fn symlink(&self, _path: &[u8], target: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "symbolic link not restored: FTP cannot create links (it pointed to {})",
                String::from_utf8_lossy(target)
            ),
        ))
    }

    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()> {
        // FTP has no links: copy the file, server to server through us, on two connections.
        let (dest, src) = (self.full(path)?, self.full(existing)?);
        let cfg = &self.pool.cfg;
        let mut from = self.pool.extra()?;
        let data = from.ftp().retr_as_stream(&src).map_err(|e| path_error(e, cfg, "reading", &src))?;
        // Checks the end of the transfer before upload renames the copy into place.
        let mut reader = FileReader::new(self.pool.clone(), &src, from, Box::new(data));
        self.upload(&dest, &mut reader, None)?;
        drop(reader);
        // A copy gets the original's mode and time, as a link would share them.
        if self.pool.features().mlst {
            let line = self.pool.run("reading", &src, |f| f.mlst(Some(&src)))?;
            if let Some(info) = parse_facts(&line).and_then(|(facts, _)| info_from_facts(&facts)) {
                self.set_metadata(path, &info)?;
            }
        }
        Ok(())
    }

    fn set_metadata(&self, path: &[u8], info: &FileInfo) -> io::Result<()> {
        let full = self.full(path)?;
        let kind = info.kind();
        if kind == FileKind::Symlink || full == self.root {
            return Ok(());
        }
        if self.permissions && info.mode & 0o7777 != 0 {
            self.set_mode(&full, info.mode)?;
        }
        self.set_time(&full, info.mtime_ns, kind == FileKind::Dir)
    }

    fn finish(&self) -> io::Result<()> {
        self.pool.close();
        Ok(())
    }

    fn parallelism(&self) -> usize {
        MAX_CONNECTIONS
    }
}
