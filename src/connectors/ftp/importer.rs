//! Backs up a directory of an FTP server. Directories are listed with MLSD (LIST where the
//! server lacks it); each file is streamed from RETR through the chunker, on one of the
//! pool's connections, which it holds until the file is read.

use super::config::FtpConfig;
use super::errors::{connection_lost, path_error};
use super::listing::{info_from_facts, parse_facts, read_listing, Listed};
use super::pool::{Conn, Pool, MAX_CONNECTIONS};
use crate::kloset::importer::{DirEntry, FileInfo, FileKind, Importer};
use std::io::{self, Read};
use std::sync::Arc;

pub struct FtpImporter {
    pool: Arc<Pool>,
    root: String,
}

/// A path as FTP commands carry it: text, on one line.
pub fn text(path: &[u8]) -> io::Result<&str> {
    match std::str::from_utf8(path) {
        Ok(s) if !s.contains(['\r', '\n']) => Ok(s),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: FTP paths must be UTF-8 text without line breaks; this one cannot be sent",
                String::from_utf8_lossy(path)
            ),
        )),
    }
}

impl FtpImporter {
    /// Connects at once, so bad credentials or an unreachable server fail before any work.
    pub fn new(cfg: FtpConfig) -> io::Result<Self> {
        let pool = Pool::open(cfg)?;
        let root = if pool.cfg.path.is_empty() {
            // No path: the directory the server puts the user in.
            pool.run("finding the login directory", "", |f| f.pwd())?
        } else {
            format!("/{}", pool.cfg.path)
        };
        Ok(Self { pool, root })
    }

    /// Every entry of a listing, names the engine will refuse (`a/b`) and lines that cannot
    /// be read included, so that each is reported rather than lost.
    fn list(&self, path: &str) -> io::Result<Vec<Listed>> {
        let mlsd = self.pool.features().mlst;
        let lines = self.pool.run("listing", path, |f| if mlsd { f.mlsd(Some(path)) } else { f.list(Some(path)) })?;
        Ok(read_listing(&lines, mlsd))
    }
}

impl Importer for FtpImporter {
    fn kind(&self) -> &str {
        "ftp"
    }

    fn origin(&self) -> String {
        self.pool.cfg.addr()
    }

    fn root(&self) -> Vec<u8> {
        self.root.as_bytes().to_vec()
    }

    fn parallelism(&self) -> usize {
        MAX_CONNECTIONS
    }

    fn stat(&self, path: &[u8]) -> io::Result<FileInfo> {
        let p = text(path)?;
        if self.pool.features().mlst {
            let line = self.pool.run("reading", p, |f| f.mlst(Some(p))).map_err(|e| {
                // The root's error ends the backup: say which server it is on.
                if p == self.root {
                    io::Error::new(e.kind(), format!("{e} on {}", self.pool.cfg.display()))
                } else {
                    e
                }
            })?;
            return parse_facts(&line).and_then(|(facts, _)| info_from_facts(&facts)).ok_or_else(|| {
                io::Error::other(format!("reading {p}: cannot parse the server's MLST reply {line:?}"))
            });
        }
        let trimmed = p.trim_end_matches('/');
        let Some((parent, name)) = trimmed.rsplit_once('/') else {
            return Ok(FileInfo { kind: Some(FileKind::Dir), mode: 0o040755, nlink: 1, ..Default::default() });
        };
        let parent = if parent.is_empty() { "/" } else { parent };
        let (_, info) = self.list(parent)?.into_iter().find(|(n, _)| n == name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{p}: no such file or directory on {}", self.pool.cfg.addr()),
            )
        })?;
        info.map_err(io::Error::other)
    }

    fn read_dir(&self, path: &[u8]) -> io::Result<Vec<DirEntry>> {
        let p = text(path)?;
        Ok(self.list(p)?.into_iter().map(|(name, info)| DirEntry { name: name.into_bytes(), info }).collect())
    }

    /// With MLST, a file's facts cost one command; without it, a listing of its directory.
    fn restat_after_read(&self) -> bool {
        self.pool.features().mlst
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        let p = text(path)?;
        let mut retried = false;
        loop {
            let mut conn = self.pool.get()?;
            match conn.ftp().retr_as_stream(p) {
                Ok(data) => {
                    return Ok(Box::new(FileReader::new(self.pool.clone(), p, conn, Box::new(data))));
                }
                Err(e) if connection_lost(&e) && !retried => {
                    conn.discard();
                    retried = true;
                }
                Err(e) => {
                    if connection_lost(&e) {
                        conn.discard();
                    }
                    return Err(path_error(e, &self.pool.cfg, "reading", p));
                }
            }
        }
    }
}

/// A file's content as RETR sends it. At the end, the server's transfer reply is read and
/// the connection goes back to the pool; a reader dropped before that closes it.
pub struct FileReader {
    pool: Arc<Pool>,
    path: String,
    conn: Option<Conn>,
    data: Option<Box<dyn Read + Send>>,
}

impl FileReader {
    /// `data` is what RETR of `path` opened on `conn`.
    pub fn new(pool: Arc<Pool>, path: &str, conn: Conn, data: Box<dyn Read + Send>) -> Self {
        Self { pool, path: path.to_string(), conn: Some(conn), data: Some(data) }
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(data) = self.data.as_mut() else { return Ok(0) };
        let n = data.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let data = self.data.take().expect("data stream");
            let mut conn = self.conn.take().expect("connection");
            if let Err(e) = conn.ftp().finalize_retr_stream(data) {
                conn.discard();
                return Err(path_error(e, &self.pool.cfg, "reading", &self.path));
            }
        }
        Ok(n)
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        if self.data.take().is_some() {
            // Transfer not finished: the server still has data or a reply for this
            // connection, so it cannot be reused.
            if let Some(c) = self.conn.take() {
                c.discard();
            }
        }
    }
}
