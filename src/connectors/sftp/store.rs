//! A store on an SFTP server, laid out like the fs store (`CONFIG`, `packfiles/XX/<id>`,
//! `states/XX/<id>`, `locks/<id>`). Objects are written under a temporary name, synced
//! (fsync@openssh.com where offered), then renamed, so a reader sees a whole object or none.
//! SFTP v3 renames refuse to replace a file: CONFIG relies on that to be created once.

use super::config::SftpConfig;
use super::conn::{classify, Pool};
use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind, StoreResult};
use ssh2::{OpenFlags, OpenType, Sftp};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub struct SftpStore {
    pool: Pool,
}

/// Writes go out in pieces this big: libssh2 pipelines the SFTP packets of one call.
const WRITE_PIECE: usize = 1 << 20;

pub fn to_store(e: io::Error) -> StoreError {
    let kind = match e.kind() {
        io::ErrorKind::NotConnected => StoreErrorKind::Unreachable,
        io::ErrorKind::ConnectionAborted | io::ErrorKind::TimedOut => StoreErrorKind::Transient,
        _ => return StoreError::from_io(io::Error::new(e.kind(), e.to_string()), "sftp"),
    };
    StoreError::new(kind, e.to_string())
}

fn p<S: AsRef<[u8]> + ?Sized>(s: &S) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(s.as_ref()))
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn exists(sftp: &Sftp, path: &[u8]) -> io::Result<bool> {
    match sftp.stat(p(path)) {
        Ok(_) => Ok(true),
        Err(e) => match classify(e, &show(path)) {
            e if e.kind() == io::ErrorKind::NotFound => Ok(false),
            e => Err(e),
        },
    }
}

/// Creates `path` and its missing parents.
pub fn mkdir_all(sftp: &Sftp, path: &[u8]) -> io::Result<()> {
    let mut cur = Vec::new();
    for part in path.split(|b| *b == b'/').filter(|s| !s.is_empty()) {
        cur.push(b'/');
        cur.extend_from_slice(part);
        if let Err(e) = sftp.mkdir(p(&cur), 0o755) {
            let e = classify(e, &format!("cannot create directory {}", show(&cur)));
            // Exists already (SFTP v3 says only "failure" for that): fine if it is a directory.
            match sftp.stat(p(&cur)) {
                Ok(st) if st.is_dir() => {}
                _ => return Err(e),
            }
        }
    }
    Ok(())
}

/// Writes `data` to a temporary name next to `dest`, syncs it and renames it to `dest`.
/// With `replace`, an existing `dest` is replaced (not atomically on SFTP v3 servers).
pub fn write_atomic(sftp: &Sftp, dest: &[u8], data: &mut dyn Read, replace: bool) -> io::Result<()> {
    let dir = &dest[..dest.iter().rposition(|b| *b == b'/').unwrap_or(0)];
    let tmp = format!("{}/.tmp-{}", show(dir), hex::encode(crate::kloset::crypto::random_bytes::<8>()));
    let shown = show(dest);
    let res = (|| {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
        let mut f = sftp
            .open_mode(p(&tmp), flags, 0o644, OpenType::File)
            .map_err(|e| classify(e, &format!("writing {tmp}")))?;
        let mut buf = vec![0u8; WRITE_PIECE];
        loop {
            let n = data.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Err(e) = f.write_all(&buf[..n]) {
                return Err(explain_write_error(&mut f, e, &tmp));
            }
        }
        // Not every server offers fsync@openssh.com; the rename still publishes whole data.
        let _ = f.fsync();
        if let Err(e) = f.close() {
            return Err(explain_write_error(&mut f, classify(e, "closing"), &tmp));
        }
        match sftp.rename(p(&tmp), p(dest), None) {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = classify(e, &format!("renaming {tmp} to {shown}"));
                if !exists(sftp, dest)? {
                    return Err(e);
                }
                if !replace {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{shown} already exists")));
                }
                sftp.unlink(p(dest)).map_err(|e| classify(e, &format!("replacing {shown}")))?;
                sftp.rename(p(&tmp), p(dest), None).map_err(|e| classify(e, &format!("renaming {tmp} to {shown}")))
            }
        }
    })();
    if res.is_err() {
        let _ = sftp.unlink(p(&tmp));
    }
    res
}

/// SFTP v3 servers report a full disk as a bare "failure": ask the server for its free
/// space (statvfs@openssh.com) to say so.
fn explain_write_error(f: &mut ssh2::File, e: io::Error, path: &str) -> io::Error {
    if let Ok(st) = f.statvfs() {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < (WRITE_PIECE as u64) * 2 {
            return io::Error::new(
                io::ErrorKind::StorageFull,
                format!("writing {path}: no space left on the SFTP server ({free} bytes free)"),
            );
        }
    }
    io::Error::new(e.kind(), format!("writing {path}: {e}"))
}

/// Reads `len` bytes (fewer at the end of the file) in large requests: libssh2 pipelines
/// the SFTP reads of one call, where small reads would each wait a round trip.
/// libssh2 asks the server for four times the buffer it is given (sftp.c `max_read_ahead`,
/// at most 8 MiB), and closing the file waits for every byte asked: so each call is given
/// a quarter of what is left, and the requests in flight end where the range ends
/// (bench/NOTES.md: a restore fetched 5.7x the store before).
/// The buffer grows as data arrives, so a bogus length from a damaged index cannot make it
/// allocate more than the file holds plus one step.
fn read_up_to(f: &mut ssh2::File, len: u64) -> io::Result<Vec<u8>> {
    const STEP: u64 = 4 << 20;
    let mut buf = Vec::new();
    let mut got = 0u64;
    while got < len {
        let want = (len - got).min(STEP);
        buf.resize((got + want) as usize, 0);
        let end = (got + want) as usize;
        let mut eof = false;
        while got < end as u64 {
            // Read-ahead of 4 x ask never passes the end of the range.
            let ask = (len - got).div_ceil(4).min(end as u64 - got) as usize;
            match f.read(&mut buf[got as usize..got as usize + ask])? {
                0 => {
                    eof = true;
                    break;
                }
                n => got += n as u64,
            }
        }
        if eof {
            break;
        }
    }
    buf.truncate(got as usize);
    Ok(buf)
}

impl SftpStore {
    pub fn new(cfg: SftpConfig) -> io::Result<Self> {
        Ok(Self { pool: Pool::new(cfg)? })
    }

    fn path(&self, res: Resource, id: &[u8; 32]) -> String {
        let cfg = &self.pool.cfg;
        if res.sharded() {
            cfg.remote(&format!("{}/{}/{}", res.dir(), hex::encode(&id[..1]), hex::encode(id)))
        } else {
            cfg.remote(&format!("{}/{}", res.dir(), hex::encode(id)))
        }
    }

    fn list_dir(sftp: &Sftp, dir: &str, out: &mut Vec<[u8; 32]>) -> io::Result<()> {
        let entries = match sftp.readdir(p(dir)) {
            Ok(e) => e,
            Err(e) => {
                let e = classify(e, &format!("listing {dir}"));
                return if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) };
            }
        };
        for (path, _) in entries {
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| hex::decode(n).ok())
                .and_then(|v| <[u8; 32]>::try_from(v).ok());
            out.extend(id);
        }
        Ok(())
    }
}

impl Store for SftpStore {
    fn location(&self) -> String {
        self.pool.cfg.display()
    }

    fn remote(&self) -> bool {
        true
    }

    fn create(&self, config: &[u8]) -> StoreResult<()> {
        let cfg = &self.pool.cfg;
        let root = cfg.remote("");
        let conf = cfg.remote("CONFIG");
        self.pool
            .run(|s| {
                if exists(s, conf.as_bytes())? {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} already holds a store", cfg.display()),
                    ));
                }
                match s.readdir(p(&root)) {
                    Ok(entries) if !entries.is_empty() => Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is not empty; create the store in a new or empty directory", cfg.display()),
                    )),
                    _ => mkdir_all(s, root.as_bytes()),
                }
            })
            .map_err(to_store)?;
        let mut dirs = vec![cfg.remote(Resource::Lock.dir())];
        for res in [Resource::Packfile, Resource::State] {
            dirs.push(cfg.remote(res.dir()));
            dirs.extend((0..=255u8).map(|b| cfg.remote(&format!("{}/{}", res.dir(), hex::encode([b])))));
        }
        for d in &dirs {
            self.pool.run(|s| mkdir_all(s, d.as_bytes())).map_err(to_store)?;
        }
        self.pool.run(|s| write_atomic(s, conf.as_bytes(), &mut &config[..], false)).map_err(to_store)
    }

    /// SFTP v3 cannot rename over a file: the old CONFIG steps aside as CONFIG.prev first,
    /// and `open` falls back to it, so a run killed half-way leaves a usable store, which
    /// the next replace first puts back in order.
    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        let cfg = &self.pool.cfg;
        let (conf, prev, next) = (cfg.remote("CONFIG"), cfg.remote("CONFIG.prev"), cfg.remote("CONFIG.next"));
        self.pool
            .run(|s| {
                let _ = s.unlink(p(&next));
                write_atomic(s, next.as_bytes(), &mut &config[..], true)?;
                // A replace cut between its two renames left no CONFIG, only CONFIG.prev
                // (which `open` reads): put it back before anything else, never delete it.
                if let Err(e) = s.stat(p(&conf)) {
                    if classify(e, &conf).kind() == io::ErrorKind::NotFound {
                        s.rename(p(&prev), p(&conf), None).map_err(|e| classify(e, &format!("renaming {prev}")))?;
                    }
                }
                let _ = s.unlink(p(&prev));
                s.rename(p(&conf), p(&prev), None).map_err(|e| classify(e, &format!("renaming {conf}")))?;
                s.rename(p(&next), p(&conf), None).map_err(|e| classify(e, &format!("renaming {next}")))?;
                let _ = s.unlink(p(&prev));
                Ok(())
            })
            .map_err(to_store)
    }

    fn open(&self) -> StoreResult<Vec<u8>> {
        let read = |path: &str| {
            self.pool.run(|s| {
                let mut f = s.open(p(path)).map_err(|e| classify(e, path))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                Ok(buf)
            })
        };
        match read(&self.pool.cfg.remote("CONFIG")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => match read(&self.pool.cfg.remote("CONFIG.prev")) {
                Ok(b) => Ok(b),
                Err(_) => Err(to_store(e)),
            },
            r => r.map_err(to_store),
        }
    }

    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        let base = self.pool.cfg.remote(res.dir());
        let dirs: Vec<String> = if res.sharded() {
            (0..=255u8).map(|b| format!("{base}/{}", hex::encode([b]))).collect()
        } else {
            vec![base]
        };
        // Shards are listed on all connections at once: each listing is a round trip.
        let chunks = dirs.chunks(dirs.len().div_ceil(self.pool.cfg.connections)).collect::<Vec<_>>();
        let results: Vec<io::Result<Vec<[u8; 32]>>> = std::thread::scope(|sc| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|chunk| {
                    sc.spawn(move || {
                        self.pool.run(|s| {
                            let mut out = Vec::new();
                            for d in chunk.iter() {
                                Self::list_dir(s, d, &mut out)?;
                            }
                            Ok(out)
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("listing thread")).collect()
        });
        let mut out = Vec::new();
        for r in results {
            out.extend(r.map_err(to_store)?);
        }
        Ok(out)
    }

    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let path = self.path(res, id);
        self.pool
            .run(|s| {
                let mut f = s.open(p(&path)).map_err(|e| classify(e, &path))?;
                let (off, len) = match range {
                    Some(r) => r,
                    None => (0, f.stat().map_err(|e| classify(e, &path))?.size.unwrap_or(0)),
                };
                if off > 0 {
                    f.seek(SeekFrom::Start(off))?;
                }
                read_up_to(&mut f, len).map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))
            })
            .map_err(to_store)
    }

    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        let path = self.path(res, id);
        self.pool
            .run(|s| match write_atomic(s, path.as_bytes(), &mut &data[..], true) {
                // A shard directory removed by hand: make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    mkdir_all(s, path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/").as_bytes())?;
                    write_atomic(s, path.as_bytes(), &mut &data[..], true)
                }
                r => r,
            })
            .map_err(to_store)
    }

    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        let path = self.path(res, id);
        self.pool
            .run(|s| match s.unlink(p(&path)) {
                Ok(()) => Ok(()),
                Err(e) => match classify(e, &path) {
                    e if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    e => Err(e),
                },
            })
            .map_err(to_store)
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let path = self.path(res, id);
        self.pool.run(|s| Ok(s.stat(p(&path)).map_err(|e| classify(e, &path))?.size.unwrap_or(0))).map_err(to_store)
    }
}
