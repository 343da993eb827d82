//! The view as a FUSE filesystem (the `fuser` crate, pure Rust: no libfuse). Mounted
//! read-only: the kernel answers EROFS to writes before they reach us, and every call that
//! would change something answers EROFS too. Content never changes while mounted, so the
//! kernel may cache attributes and pages for long.

use super::inodes::Inodes;
use super::view::{Attr, Fail, Node, View};
use crate::kloset::importer::FileKind;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenAccMode,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nothing in the view changes while mounted.
const TTL: Duration = Duration::from_secs(3600);

pub struct PlakarFs {
    view: Arc<View>,
    inodes: Inodes,
}

impl PlakarFs {
    pub fn new(view: Arc<View>) -> Self {
        Self { view, inodes: Inodes::new() }
    }

    fn node(&self, ino: INodeNo) -> Result<Node, Errno> {
        self.inodes.get(ino.0).ok_or(Errno::ENOENT)
    }
}

fn errno(f: Fail) -> Errno {
    Errno::from_i32(f.errno())
}

fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn file_type(a: &Attr) -> FileType {
    match a.mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn file_attr(ino: u64, a: &Attr) -> FileAttr {
    let t = time(a.mtime_ns);
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: file_type(a),
        perm: (a.mode & 0o7777) as u16,
        nlink: if a.kind == FileKind::Dir { 2 } else { 1 },
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl Filesystem for PlakarFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.node(parent).and_then(|p| self.view.child(&p, name.as_bytes()).map_err(errno));
        match found {
            Ok(node) => {
                let (ino, node) = self.inodes.lookup(parent.0, name.as_bytes(), node);
                reply.entry(&TTL, &file_attr(ino, &self.view.attr(&node)), Generation(0));
            }
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino) {
            Ok(n) => reply.attr(&TTL, &file_attr(ino.0, &self.view.attr(&n))),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.node(ino).and_then(|n| self.view.readlink(&n).map_err(errno)) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.node(ino) {
            // Pages may stay cached across opens: a file never changes.
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.node(ino).and_then(|n| self.view.read(&n, offset, size as usize).map_err(errno)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        // Offsets: 1 and 2 for "." and "..", then 3 + the child's index.
        for (i, name) in [&b"."[..], &b".."[..]].into_iter().enumerate().skip(offset as usize) {
            if reply.add(ino, i as u64 + 1, FileType::Directory, OsStr::from_bytes(name)) {
                return reply.ok();
            }
        }
        let skip = (offset as usize).saturating_sub(2);
        let mut i = skip;
        let listed = self.view.each_child(&node, skip, |name, attr| {
            let child = self.inodes.peek(ino.0, name);
            i += 1;
            !reply.add(INodeNo(child), i as u64 + 2, file_type(attr), OsStr::from_bytes(name))
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, self.inodes.len() as u64, 0, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        if mask.contains(fuser::AccessFlags::W_OK) {
            reply.error(Errno::EROFS)
        } else {
            reply.ok()
        }
    }

    fn mkdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
}
