//! Restores into a local directory. Files are written to a temporary name and renamed into
//! place, so an interrupted restore never leaves a half-written file under the real name;
//! runs of zeros become holes, so sparse files stay sparse. Existing files at the same
//! paths are replaced; other files in the target are left alone.

use crate::kloset::exporter::Exporter;
use crate::kloset::importer::{FileInfo, FileKind};
use filetime::FileTime;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct FsExporter {
    root: PathBuf,
    chown: bool,
    permissions: bool,
}

const BLOCK: usize = 64 << 10;

impl FsExporter {
    pub fn new(root: &Path, permissions: bool) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        // Ownership can only be given away by root.
        let chown = unsafe { libc::geteuid() } == 0;
        Ok(Self { root: root.to_path_buf(), chown, permissions })
    }

    fn path(&self, p: &[u8]) -> PathBuf {
        let rel = OsStr::from_bytes(p.strip_prefix(b"/").unwrap_or(p));
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Removes whatever is at `p` unless it is a directory.
    fn clear(p: &Path) -> io::Result<()> {
        match fs::symlink_metadata(p) {
            Ok(m) if !m.is_dir() => fs::remove_file(p),
            _ => Ok(()),
        }
    }
}

fn copy_sparse(src: &mut dyn Read, f: &mut File) -> io::Result<u64> {
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    let mut hole = false;
    loop {
        let mut n = 0;
        while n < BLOCK {
            match src.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        if n == BLOCK && buf.iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(n as i64))?;
            hole = true;
        } else {
            f.write_all(&buf[..n])?;
            hole = false;
        }
        total += n as u64;
    }
    if hole {
        f.set_len(total)?;
    }
    Ok(total)
}

impl Exporter for FsExporter {
    fn create_dir(&self, path: &[u8]) -> io::Result<()> {
        let p = self.path(path);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => {
                fs::remove_file(&p)?;
                fs::create_dir_all(&p)
            }
            Err(_) => fs::create_dir_all(&p),
        }
    }

    fn store_file(&self, path: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        let dest = self.path(path);
        let dir = dest.parent().unwrap_or(&self.root);
        let tmp = dir.join(format!(".plakar-restore-{}", hex::encode(crate::kloset::crypto::random_bytes::<6>())));
        let res = (|| {
            let mut f = File::options().write(true).create_new(true).open(&tmp)?;
            let n = copy_sparse(data, &mut f)?;
            if n != size {
                return Err(io::Error::other(format!("expected {size} bytes, restored {n}")));
            }
            drop(f);
            if fs::symlink_metadata(&dest).map(|m| m.is_dir()).unwrap_or(false) {
                return Err(io::Error::other("a directory is in the way"));
            }
            fs::rename(&tmp, &dest)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    fn symlink(&self, path: &[u8], target: &[u8]) -> io::Result<()> {
        let p = self.path(path);
        Self::clear(&p)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &p)
    }

    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()> {
        let p = self.path(path);
        Self::clear(&p)?;
        fs::hard_link(self.path(existing), &p)
    }

    fn set_metadata(&self, path: &[u8], info: &FileInfo) -> io::Result<()> {
        let p = self.path(path);
        let link = info.kind() == FileKind::Symlink;
        if self.chown && self.permissions {
            std::os::unix::fs::lchown(&p, Some(info.uid), Some(info.gid))?;
        }
        if !link && self.permissions && info.mode != 0 {
            fs::set_permissions(&p, fs::Permissions::from_mode(info.mode & 0o7777))?;
        }
        let t = FileTime::from_unix_time(
            info.mtime_ns.div_euclid(1_000_000_000),
            info.mtime_ns.rem_euclid(1_000_000_000) as u32,
        );
        if link {
            filetime::set_symlink_file_times(&p, t, t)
        } else {
            filetime::set_file_times(&p, t, t)
        }
    }

    fn finish(&self) -> io::Result<()> {
        Ok(())
    }
}
