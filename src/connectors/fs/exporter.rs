//! Restores into a local directory, and never outside it. The target is opened once; every
//! path under it is reached from that descriptor one component at a time, each opened with
//! `O_NOFOLLOW | O_DIRECTORY`, so a directory that someone who can write in the target
//! swaps for a symlink (or a file) during the restore is refused and reported, never
//! followed. Entries are created relative to their parent's descriptor (`mkdirat`,
//! `symlinkat`, `linkat`) and their metadata is set through a descriptor opened with
//! `O_NOFOLLOW` (a symlink's own through its parent, with `AT_SYMLINK_NOFOLLOW`).
//!
//! Files are written to a temporary name created with `O_CREAT | O_EXCL | O_NOFOLLOW`,
//! given their owner, mode and times through that descriptor when the engine passes them
//! along, and renamed into place in the same directory: an interrupted restore never leaves
//! a half-written file under the real name, and nobody can swap the file between its
//! writing and its metadata. Runs of zeros become holes, so sparse files stay sparse.
//! Existing entries at the same paths are replaced (a symlink where the snapshot has a
//! directory is removed, not followed); other files in the target are left alone.
//! docs/RESTORE.md states the guarantee and its limits.
//!
//! Extended attributes go through the same descriptors (`fsetxattr`), after the owner
//! (chown drops file capabilities) and before the mode (a read-only mode would keep a user
//! from setting their own attributes). One that cannot be set is reported with its entry,
//! which is restored all the same. Named pipes and device nodes are made with `mknodat` in
//! their parent's descriptor, then given their metadata through an `O_PATH` descriptor, so
//! a device is never opened.

use super::open_dirs::OpenDirs;
use super::xattrs;
use crate::kloset::exporter::{skip, special_kind, Exporter};
use crate::kloset::importer::{FileInfo, FileKind};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What setting an entry's metadata came to: the outer error stopped it, the inner one
/// (extended attributes that could not be set) is reported once the entry is in place.
type Applied = io::Result<io::Result<()>>;

pub struct FsExporter {
    /// The target directory, opened once.
    root: OwnedFd,
    chown: bool,
    permissions: bool,
    /// Attributes left out because only root restores them.
    xattrs_skipped: AtomicU64,
    /// The directories files were last written into, kept open (open_dirs.rs).
    open: OpenDirs,
    /// Who a file this process creates belongs to, and what its umask takes away (None
    /// when it cannot be read): see `final_at_creation`.
    me: (u32, u32),
    umask: Option<u32>,
    /// Files are written unnamed and linked in by descriptor (`stage`): root only, since
    /// `linkat` with `AT_EMPTY_PATH` needs CAP_DAC_READ_SEARCH; off once the target's
    /// filesystem refuses `O_TMPFILE`.
    unnamed: AtomicBool,
}

/// Where a file is written before it gets its name (`FsExporter::stage`).
enum Staged {
    Unnamed,
    Named(String),
}

fn temporary_name() -> String {
    format!(".plakar-restore-{}", hex::encode(crate::kloset::crypto::random_bytes::<6>()))
}

/// This process's umask, from /proc (reading it with umask(2) would change it for every
/// thread meanwhile).
fn umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

const BLOCK: usize = 64 << 10;

/// Directories on the way are opened only to be walked through, which needs no read
/// permission where the system allows it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const WALK: OFlags = OFlags::PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const WALK: OFlags = OFlags::RDONLY;

/// A directory of the target: the root, or one reached by walking from it.
struct Dir<'a> {
    root: &'a OwnedFd,
    fd: Option<Arc<OwnedFd>>,
}

impl AsFd for Dir<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_deref().unwrap_or(self.root).as_fd()
    }
}

/// The components of a path under the target. The engine never passes `.`, `..` or empty
/// ones; they are refused here all the same.
fn components(path: &[u8]) -> io::Result<Vec<&[u8]>> {
    let p = path.strip_prefix(b"/").unwrap_or(path);
    if p.is_empty() {
        return Ok(vec![]);
    }
    let v: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
    if v.iter().any(|c| c.is_empty() || *c == b"." || *c == b"..") {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "unsafe path, not restored"));
    }
    Ok(v)
}

fn kind_at(dir: impl AsFd, name: &[u8]) -> io::Result<FileType> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode))
}

/// The error for a path component that is not a directory (`ELOOP` or `ENOTDIR` from an
/// open with `O_NOFOLLOW | O_DIRECTORY`): it is named, and never followed.
fn refused(dir: impl AsFd, shown: &[&[u8]], e: Errno) -> io::Error {
    if e != Errno::LOOP && e != Errno::NOTDIR {
        return e.into();
    }
    let what = match kind_at(dir, shown.last().copied().unwrap_or_default()) {
        Ok(FileType::Symlink) => "a symlink",
        _ => "not a directory",
    };
    io::Error::other(format!(
        "{} is {what}, not followed (was the target changed during the restore?)",
        String::from_utf8_lossy(&shown.join(&b'/'))
    ))
}

/// Gives the directory `fd` (an `O_PATH` descriptor) back the times `st` saw, through
/// /proc/self/fd/N, which leads to that very inode. Best effort: the entry is in place
/// whatever comes of it, and only the directory's times would be off.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn keep_times(fd: &OwnedFd, st: &rustix::fs::Stat) {
    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    let times = Timestamps {
        last_access: Timespec { tv_sec: st.st_atime as _, tv_nsec: st.st_atime_nsec as _ },
        last_modification: Timespec { tv_sec: st.st_mtime as _, tv_nsec: st.st_mtime_nsec as _ },
    };
    let _ = rustix::fs::utimensat(rustix::fs::CWD, proc.as_str(), &times, AtFlags::empty());
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn keep_times(_: &OwnedFd, _: &rustix::fs::Stat) {}

fn times(info: &FileInfo) -> Timestamps {
    let t = Timespec {
        tv_sec: info.mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: info.mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps { last_access: t, last_modification: t }
}

fn owner(info: &FileInfo) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    // -1 means "leave as is" to chown.
    (
        (info.uid != u32::MAX).then(|| rustix::fs::Uid::from_raw(info.uid)),
        (info.gid != u32::MAX).then(|| rustix::fs::Gid::from_raw(info.gid)),
    )
}

impl FsExporter {
    pub fn new(root: &Path, permissions: bool) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        // The target itself is whatever the caller named, a symlink to a directory included.
        let root = rustix::fs::open(root, WALK | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        // Ownership can only be given away by root.
        let chown = unsafe { libc::geteuid() } == 0;
        let me = unsafe { (libc::geteuid(), libc::getegid()) };
        Ok(Self {
            root,
            chown,
            permissions,
            xattrs_skipped: AtomicU64::new(0),
            open: OpenDirs::default(),
            me,
            umask: umask(),
            unnamed: AtomicBool::new(chown),
        })
    }

    /// Opens the directory `comps` names under the target, never following a symlink;
    /// `create` makes the missing ones.
    fn walk(&self, comps: &[&[u8]], create: bool) -> io::Result<Dir<'_>> {
        let flags = WALK | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = Dir { root: &self.root, fd: None };
        for (i, c) in comps.iter().enumerate() {
            let next = match rustix::fs::openat(&dir, *c, flags, Mode::empty()) {
                Err(Errno::NOENT) if create => match rustix::fs::mkdirat(&dir, *c, self.new_dir_mode()) {
                    Ok(()) | Err(Errno::EXIST) => rustix::fs::openat(&dir, *c, flags, Mode::empty()),
                    Err(e) => Err(e),
                },
                r => r,
            };
            dir.fd = Some(Arc::new(next.map_err(|e| refused(&dir, &comps[..=i], e))?));
        }
        Ok(dir)
    }

    /// Like `walk` without creating, for the directory a file is written into: the one
    /// the last files went to is most often the same, and is kept open (open_dirs.rs).
    fn walk_to_write(&self, comps: &[&[u8]]) -> io::Result<Dir<'_>> {
        if comps.is_empty() {
            return self.walk(comps, false);
        }
        if let Some(fd) = self.open.get(comps) {
            return Ok(Dir { root: &self.root, fd: Some(fd) });
        }
        let dir = self.walk(comps, false)?;
        if let Some(fd) = &dir.fd {
            self.open.put(comps, fd.clone());
        }
        Ok(dir)
    }

    /// The directory holding `path`, and the name of `path` in it.
    fn parent<'p>(&self, path: &'p [u8]) -> io::Result<(Dir<'_>, &'p [u8])> {
        let comps = components(path)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the target itself is not a file"));
        };
        Ok((self.walk(dirs, false)?, name))
    }

    /// The mode a directory inside the target is made with. When permissions are
    /// restored, its own mode is set once its last entry is written (`set_metadata`):
    /// until then, and for good if the restore is killed, it is private, never open to all
    /// under a umask of 0. Without them, it is what `mkdir` gives, as `mkdir -p` would (so
    /// is the target itself, made in `new`).
    fn new_dir_mode(&self) -> Mode {
        Mode::from_raw_mode(if self.permissions { 0o700 } else { 0o777 })
    }

    /// Whether the attributes only root may set are restored: by root, unless asked to
    /// leave permissions alone (ACLs, capabilities and labels are permissions).
    fn privileged(&self) -> bool {
        self.chown && self.permissions
    }

    fn xattrs_done(&self, r: xattrs::Applied) -> io::Result<()> {
        self.xattrs_skipped.fetch_add(r.skipped, Ordering::Relaxed);
        r.into_result()
    }

    /// The mode a file can be created with, when it is its final one: no set-id or sticky
    /// bit, nothing the umask takes away, no extended attribute to set before the mode, and
    /// an owner and group it gets from being created by this process (all checked once it
    /// is, `created_as_final`). Nobody sees more of such a file while it is written than
    /// once it is restored (root: only unnamed, `stage`), and its fchown and fchmod are
    /// saved (4 % of the CPU of a restore of a million small files, perf).
    fn final_at_creation(&self, info: &FileInfo) -> Option<u32> {
        let mode = info.mode & 0o7777;
        let owned = !self.chown || (info.uid, info.gid) == self.me;
        let masked = self.umask.is_some_and(|u| mode & u == 0);
        (self.permissions && info.mode != 0 && mode & 0o7000 == 0 && masked && owned && info.xattrs.is_empty())
            .then_some(mode)
    }

    /// Whether a file created with `final_at_creation`'s `mode` got that mode and the
    /// owner and group it was meant to: a set-group-id directory gives its own group, a
    /// default ACL on the directory takes bits away from the mode. If not, it is made
    /// private before anything is written into it, and `apply` sets all.
    fn created_as_final(&self, fd: BorrowedFd, info: &FileInfo, mode: u32) -> io::Result<bool> {
        let st = rustix::fs::fstat(fd)?;
        let owned = !self.chown || (st.st_uid, st.st_gid) == (info.uid, info.gid);
        if owned && st.st_mode & 0o7777 == mode {
            return Ok(true);
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(0o600))?;
        Ok(false)
    }

    /// Owner, extended attributes, mode and times, through a descriptor of the very file.
    fn apply(&self, fd: BorrowedFd, info: &FileInfo) -> Applied {
        if self.chown && self.permissions {
            let (u, g) = owner(info);
            rustix::fs::fchown(fd, u, g)?;
        }
        let late = self.xattrs_done(xattrs::apply_fd(&info.xattrs, self.privileged(), fd));
        // After the owner: chown clears set-id bits.
        if self.permissions && info.mode != 0 {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(info.mode & 0o7777))?;
        } else if self.permissions && info.kind() == FileKind::Dir {
            // No mode recorded: what `mkdir` would have given, not the 0700 it was made with.
            rustix::fs::fchmod(fd, Mode::from_raw_mode(0o777 & !self.umask.unwrap_or(0o022)))?;
        }
        rustix::fs::futimens(fd, &times(info))?;
        Ok(late)
    }

    fn write(&self, path: &[u8], data: &mut dyn Read, size: u64, info: Option<&FileInfo>) -> io::Result<()> {
        let comps = components(path)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(io::Error::other("a directory is in the way"));
        };
        let dir = self.walk_to_write(dirs)?;
        // Private while written when its mode is set before it gets its name, unless it
        // can be created as it will be.
        let private = if info.is_some() && self.permissions { 0o600 } else { 0o666 };
        let wanted = info.and_then(|i| self.final_at_creation(i));
        let (mut f, staged, at_creation) = self.stage(&dir, wanted, private)?;
        let res = (|| {
            let done = match (at_creation, info) {
                (Some(m), Some(i)) => self.created_as_final(f.as_fd(), i, m)?,
                _ => false,
            };
            let n = copy_sparse(data, &mut f, size)?;
            if n != size {
                return Err(io::Error::other(format!("expected {size} bytes, restored {n}")));
            }
            let late = match info {
                Some(i) if done => rustix::fs::futimens(&f, &times(i)).map(|()| Ok(()))?,
                Some(i) => self.apply(f.as_fd(), i)?,
                None => Ok(()),
            };
            self.publish(&dir, &f, &staged, name)?;
            Ok(late)
        })();
        if let (Err(_), Staged::Named(tmp)) = (&res, &staged) {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        }
        res?
    }

    /// Creates the file a restore writes before it gets its name: unnamed (`O_TMPFILE`)
    /// where it can be linked in by descriptor (root, on Linux), so that nobody can open
    /// it while it is written; else under a temporary name. Its mode: `wanted` (the final
    /// one, `final_at_creation`) when nobody can see more of it while it is written than
    /// once restored, else `private`; returns the mode it was created with if it was
    /// `wanted`. Root writing under a temporary name in a directory whose group is not
    /// the file's (set-group-id, `grpid`) would let that group open it meanwhile: private.
    fn stage(&self, dir: &Dir, wanted: Option<u32>, private: u32) -> io::Result<(File, Staged, Option<u32>)> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.unnamed.load(Ordering::Relaxed) {
            let mode = Mode::from_raw_mode(wanted.unwrap_or(private));
            match rustix::fs::openat(dir, ".", OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC, mode) {
                Ok(fd) => return Ok((File::from(fd), Staged::Unnamed, wanted)),
                // A filesystem without O_TMPFILE.
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => self.unnamed.store(false, Ordering::Relaxed),
                Err(e) => return Err(e.into()),
            }
        }
        let wanted = wanted.filter(|_| !self.chown);
        let tmp = temporary_name();
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let f =
            File::from(rustix::fs::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(wanted.unwrap_or(private)))?);
        Ok((f, Staged::Named(tmp), wanted))
    }

    /// Gives a written file its name, replacing a file already there atomically. A file
    /// never replaces a directory: rename refuses to, atomically.
    fn publish(&self, dir: &Dir, f: &File, staged: &Staged, name: &[u8]) -> io::Result<()> {
        let tmp = match staged {
            Staged::Named(tmp) => tmp.clone(),
            Staged::Unnamed => match rustix::fs::linkat(f, "", dir, name, AtFlags::EMPTY_PATH) {
                Ok(()) => return Ok(()),
                // Something is there: linked under a temporary name, then renamed over it.
                Err(Errno::EXIST) => {
                    let tmp = temporary_name();
                    rustix::fs::linkat(f, "", dir, tmp.as_str(), AtFlags::EMPTY_PATH)?;
                    tmp
                }
                // Root without CAP_DAC_READ_SEARCH (a container may drop it), or the
                // directory removed meanwhile: linked through /proc/self/fd/N, which leads
                // to that very inode. If that works, the capability is what was missing,
                // and the next files are staged under a temporary name.
                Err(Errno::NOENT) => {
                    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(f));
                    let tmp = temporary_name();
                    match rustix::fs::linkat(rustix::fs::CWD, proc.as_str(), dir, tmp.as_str(), AtFlags::SYMLINK_FOLLOW)
                    {
                        Ok(()) => self.unnamed.store(false, Ordering::Relaxed),
                        Err(Errno::NOENT) => {
                            return Err(io::Error::other(
                                "its directory was removed during the restore (or, without CAP_DAC_READ_SEARCH, \
                                 /proc is not mounted)",
                            ))
                        }
                        Err(e) => return Err(e.into()),
                    }
                    tmp
                }
                Err(e) => return Err(e.into()),
            },
        };
        match rustix::fs::renameat(dir, tmp.as_str(), dir, name) {
            Ok(()) => Ok(()),
            Err(e) => {
                if matches!(staged, Staged::Unnamed) {
                    let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
                }
                match e {
                    Errno::ISDIR => Err(io::Error::other("a directory is in the way")),
                    e => Err(e.into()),
                }
            }
        }
    }

    /// Removes whatever is at `name` in `dir` unless it is a directory.
    fn clear(dir: &Dir, name: &[u8]) -> io::Result<()> {
        match kind_at(dir, name) {
            Ok(FileType::Directory) => Ok(()),
            Ok(_) => Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Metadata of an entry its owner (not root) may not open for reading, a directory
    /// restored without its read bit for one: an `O_PATH` descriptor needs no permission,
    /// and /proc/self/fd/N leads to that very inode, whatever happens to its name.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn apply_unreadable(&self, dir: &Dir, comps: &[&[u8]], info: &FileInfo) -> Applied {
        let name = comps.last().copied().unwrap_or_default();
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink {
            return Err(refused(dir, comps, Errno::LOOP));
        }
        self.apply_path_fd(&fd, info)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn apply_unreadable(&self, _: &Dir, _: &[&[u8]], _: &FileInfo) -> Applied {
        Err(Errno::ACCESS.into())
    }

    /// Owner, extended attributes, mode and times of what the `O_PATH` descriptor `fd`
    /// holds, through /proc/self/fd/N, which leads to that very inode.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn apply_path_fd(&self, fd: &OwnedFd, info: &FileInfo) -> Applied {
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
        if self.chown && self.permissions {
            let (u, g) = owner(info);
            rustix::fs::chown(proc.as_str(), u, g)?;
        }
        let late = self.xattrs_done(xattrs::apply_path(&info.xattrs, self.privileged(), &proc));
        if self.permissions && info.mode != 0 {
            rustix::fs::chmod(proc.as_str(), Mode::from_raw_mode(info.mode & 0o7777))?;
        }
        rustix::fs::utimensat(rustix::fs::CWD, proc.as_str(), &times(info), AtFlags::empty())?;
        Ok(late)
    }

    /// A symlink's extended attributes (only root's namespaces can be on one), through an
    /// `O_PATH | O_NOFOLLOW` descriptor of the link itself, checked to be a symlink.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn link_xattrs(&self, dir: &Dir, name: &[u8], info: &FileInfo) -> io::Result<()> {
        if info.xattrs.is_empty() {
            return Ok(());
        }
        let fd = rustix::fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::Symlink {
            return Err(io::Error::other("not a symlink any more (was the target changed during the restore?)"));
        }
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        self.xattrs_done(xattrs::apply_path(&info.xattrs, self.privileged(), &proc))
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn link_xattrs(&self, _: &Dir, _: &[u8], info: &FileInfo) -> io::Result<()> {
        self.xattrs_skipped.fetch_add(info.xattrs.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Makes a named pipe or a device node, then gives it its metadata without opening it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn make_node(&self, path: &[u8], info: &FileInfo, ft: FileType) -> io::Result<()> {
        let what = special_kind(info);
        let (dir, name) = self.parent(path)?;
        Self::clear(&dir, name)?;
        let mode = Mode::from_raw_mode(if self.permissions { 0o600 } else { 0o666 });
        let dev = info.rdev.unwrap_or(0) as rustix::fs::Dev;
        match rustix::fs::mknodat(&dir, name, ft, mode, dev) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Err(io::Error::other("a directory is in the way")),
            // Not PermissionDenied: one refused node does not mean the target refuses all.
            Err(e @ (Errno::PERM | Errno::ACCESS)) => {
                return Err(io::Error::other(format!("{what} not restored: {}", io::Error::from(e))))
            }
            Err(e) => return Err(e.into()),
        }
        let fd = rustix::fs::openat(&dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != ft {
            return Err(io::Error::other(format!("{what} replaced while restored (was the target changed?)")));
        }
        self.apply_path_fd(&fd, info)?
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn make_node(&self, _: &[u8], info: &FileInfo, _: FileType) -> io::Result<()> {
        Err(skip(format!("{} not restored: not supported on this system", special_kind(info))))
    }
}

/// Copies `src` into `f`, leaving holes where whole blocks are zeros. `size`: what is
/// expected, so that a small file gets a small buffer (one byte more, to see more come).
fn copy_sparse(src: &mut dyn Read, f: &mut File, size: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; BLOCK.min(size.saturating_add(1).try_into().unwrap_or(BLOCK))];
    let mut total = 0u64;
    let mut hole = false;
    loop {
        let mut n = 0;
        while n < buf.len() {
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
        let comps = components(path)?;
        let Some((name, dirs)) = comps.split_last() else { return Ok(()) };
        let dir = self.walk(dirs, true)?;
        let mode = self.new_dir_mode();
        match rustix::fs::mkdirat(&dir, *name, mode) {
            Err(Errno::EXIST) if kind_at(&dir, name)? != FileType::Directory => {
                // A file or a symlink in the way: replaced, never followed.
                rustix::fs::unlinkat(&dir, *name, AtFlags::empty())?;
                Ok(rustix::fs::mkdirat(&dir, *name, mode)?)
            }
            Err(Errno::EXIST) => Ok(()),
            r => Ok(r?),
        }
    }

    fn store_file(&self, path: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        self.write(path, data, size, None)
    }

    fn store_file_with_metadata(&self, path: &[u8], data: &mut dyn Read, size: u64, info: &FileInfo) -> io::Result<()> {
        self.write(path, data, size, Some(info))
    }

    fn symlink(&self, path: &[u8], target: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        Self::clear(&dir, name)?;
        Ok(rustix::fs::symlinkat(target, &dir, name)?)
    }

    fn hardlink(&self, path: &[u8], existing: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        let (from, old) = self.parent(existing)?;
        Self::clear(&dir, name)?;
        // Hard links are made last, after their directory got its times: keep them.
        let before = dir.fd.as_ref().and_then(|fd| rustix::fs::fstat(fd).ok());
        // Without AT_SYMLINK_FOLLOW: a symlink swapped in at `existing` is linked itself.
        rustix::fs::linkat(&from, old, &dir, name, AtFlags::empty())?;
        if let (Some(fd), Some(st)) = (dir.fd.as_ref(), before) {
            keep_times(fd.as_ref(), &st);
        }
        Ok(())
    }

    fn set_metadata(&self, path: &[u8], info: &FileInfo) -> io::Result<()> {
        let comps = components(path)?;
        let Some((name, dirs)) = comps.split_last() else {
            let fd = rustix::fs::openat(
                &self.root,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            return self.apply(fd.as_fd(), info)?;
        };
        if info.kind() == FileKind::Dir {
            // Its last entry is written: no file goes into it any more.
            self.open.forget(&comps);
        }
        let dir = self.walk(dirs, false)?;
        if info.kind() == FileKind::Symlink {
            // A symlink has no mode of its own on Linux: its owner and times are set on the
            // link, by name in its (already checked) parent.
            if self.chown && self.permissions {
                let (u, g) = owner(info);
                rustix::fs::chownat(&dir, *name, u, g, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            let late = self.link_xattrs(&dir, name, info);
            rustix::fs::utimensat(&dir, *name, &times(info), AtFlags::SYMLINK_NOFOLLOW)?;
            return late;
        }
        let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if info.kind() == FileKind::Dir {
            flags |= OFlags::DIRECTORY;
        }
        match rustix::fs::openat(&dir, *name, flags, Mode::empty()) {
            Ok(fd) => self.apply(fd.as_fd(), info)?,
            Err(Errno::ACCESS) => self.apply_unreadable(&dir, &comps, info)?,
            Err(e) => Err(refused(&dir, &comps, e)),
        }
    }

    fn special(&self, path: &[u8], info: &FileInfo) -> io::Result<()> {
        let what = special_kind(info);
        let ft = match FileType::from_raw_mode(info.mode) {
            FileType::Socket => {
                return Err(skip(format!("{what} not restored: the program that listens on it makes it again")))
            }
            FileType::Fifo => FileType::Fifo,
            ft @ (FileType::CharacterDevice | FileType::BlockDevice) => {
                if info.rdev.is_none() {
                    return Err(io::Error::other(format!(
                        "{what} not restored: the snapshot does not hold its device number (it was taken before \
                         they were recorded)"
                    )));
                }
                if !self.chown {
                    return Err(io::Error::other(format!("{what} not restored: only root can make device nodes")));
                }
                ft
            }
            _ => return Err(io::Error::other(format!("{what} not restored: unknown file type {:o}", info.mode))),
        };
        self.make_node(path, info, ft)
    }

    fn keeps_xattrs(&self) -> bool {
        true
    }

    fn notes(&self) -> Vec<String> {
        match self.xattrs_skipped.load(Ordering::Relaxed) {
            0 => vec![],
            n => vec![format!(
                "{n} extended attribute{} outside user.* not restored: only root restores those (ACLs, security \
                 labels, capabilities), and not with -skip-permissions",
                if n == 1 { "" } else { "s" }
            )],
        }
    }

    fn finish(&self) -> io::Result<()> {
        Ok(())
    }
}
