//! Extended attributes of local files: which ones a backup takes and a restore gives back,
//! and within what bounds.
//!
//! Which (Plakar's rule): `user.*` always; `security.*` (SELinux labels, file
//! capabilities) and `system.posix_acl_access` / `system.posix_acl_default` (POSIX ACLs)
//! only when running as root, both at backup and at restore: a user can neither read all
//! of them nor set any. Other namespaces (`trusted.*`, and filesystem ones such as
//! `system.nfs4_acl` or `btrfs.*`) are left out: they belong to the filesystem or to the
//! administrator of the machine, not to the file. On macOS, whose attributes have no
//! namespaces, every one is taken.
//!
//! Bounds: values live inside the tree node of their directory, so they are bounded:
//! `MAX_VALUE` per value (Linux itself allows no more) and `MAX_TOTAL` per entry. An
//! attribute past either bound is left out and reported; the entry itself is backed up.
//!
//! Reading goes by path without following a symlink (`llistxattr`, `lgetxattr`), like the
//! `lstat` that described the entry. Writing goes through a descriptor of the very file
//! (`fsetxattr`), never through a path: see the exporter.

use crate::kloset::importer::Xattr;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The largest value kept: Linux's own limit (XATTR_SIZE_MAX).
pub const MAX_VALUE: usize = 64 << 10;
/// The most bytes of names and values kept for one entry.
pub const MAX_TOTAL: usize = 256 << 10;

/// Whether an attribute of this name is backed up and restored (see the module doc).
pub fn wanted(name: &[u8], root: bool) -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    name.starts_with(b"user.")
        || (root
            && (name.starts_with(b"security.")
                || name == b"system.posix_acl_access"
                || name == b"system.posix_acl_default"))
}

/// Errors meaning "this filesystem or file has no attributes": not worth a report.
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENOSYS)) || e.kind() == io::ErrorKind::Unsupported
}

/// The wanted attributes of `path` (of a symlink itself unless `follow`), sorted by name,
/// and what could not be read, one message each.
pub fn read(path: &Path, follow: bool, root: bool) -> (Vec<Xattr>, Vec<String>) {
    let mut warnings = Vec::new();
    let names = match if follow { xattr::list_deref(path) } else { xattr::list(path) } {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return (vec![], vec![]),
        Err(e) => return (vec![], vec![format!("extended attributes could not be listed: {e}")]),
    };
    let mut out = Vec::new();
    let mut total = 0usize;
    for name in names {
        let n = name.as_bytes();
        if !wanted(n, root) {
            continue;
        }
        let shown = String::from_utf8_lossy(n);
        let value = match if follow { xattr::get_deref(path, &name) } else { xattr::get(path, &name) } {
            // Removed since it was listed: it is not there any more.
            Ok(None) => continue,
            Ok(Some(v)) => v,
            Err(e) => {
                warnings.push(format!("extended attribute {shown} could not be read: {e}"));
                continue;
            }
        };
        if value.len() > MAX_VALUE {
            warnings.push(format!(
                "extended attribute {shown} left out: its value is {} bytes, more than the {MAX_VALUE} kept",
                value.len()
            ));
            continue;
        }
        if total + n.len() + value.len() > MAX_TOTAL {
            warnings.push(format!(
                "extended attribute {shown} left out: this entry's attributes pass the {MAX_TOTAL} bytes kept"
            ));
            continue;
        }
        total += n.len() + value.len();
        out.push(Xattr(n.to_vec(), value));
    }
    out.sort();
    (out, warnings)
}

/// What setting a list of attributes came to.
#[derive(Default)]
pub struct Applied {
    /// Attributes left out on purpose (not `wanted` for this user).
    pub skipped: u64,
    /// Attributes that failed, each with why.
    pub failed: Vec<String>,
}

impl Applied {
    /// The failures as one error, if any.
    pub fn into_result(self) -> io::Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        // Not the underlying error kind: a refused attribute is not a refused write of the
        // file (restore counts those to tell a target that refuses everything).
        Err(io::Error::other(self.failed.join("; ")))
    }
}

/// A descriptor, to set attributes through it with the `xattr` crate (`fsetxattr`).
struct Fd<'a>(BorrowedFd<'a>);

impl AsRawFd for Fd<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl xattr::FileExt for Fd<'_> {}

/// Sets the wanted attributes on the file open as `fd`.
pub fn apply_fd(xattrs: &[Xattr], root: bool, fd: BorrowedFd) -> Applied {
    use xattr::FileExt;
    apply(xattrs, root, |n, v| Fd(fd).set_xattr(n, v))
}

/// Sets the wanted attributes on what `path` leads to, following it: for the
/// `/proc/self/fd/N` of an `O_PATH` descriptor, which leads to that very inode (a symlink
/// itself, when the descriptor is of a symlink).
pub fn apply_path(xattrs: &[Xattr], root: bool, path: &str) -> Applied {
    apply(xattrs, root, |n, v| xattr::set_deref(path, n, v))
}

/// Sets the wanted attributes with `set(name, value)`.
fn apply(xattrs: &[Xattr], root: bool, mut set: impl FnMut(&OsStr, &[u8]) -> io::Result<()>) -> Applied {
    let mut r = Applied::default();
    for x in xattrs {
        if !wanted(&x.0, root) || x.0.contains(&0) {
            r.skipped += 1;
            continue;
        }
        if let Err(e) = set(OsStr::from_bytes(&x.0), &x.1) {
            r.failed.push(format!("extended attribute {} not restored: {e}", x.name_lossy()));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_by_privilege() {
        if cfg!(target_os = "macos") {
            return;
        }
        assert!(wanted(b"user.x", false));
        assert!(!wanted(b"security.selinux", false));
        assert!(wanted(b"security.selinux", true));
        assert!(wanted(b"system.posix_acl_access", true));
        assert!(!wanted(b"system.posix_acl_access", false));
        assert!(!wanted(b"system.nfs4_acl", true));
        assert!(!wanted(b"trusted.overlay.opaque", true));
    }

    #[test]
    fn apply_counts_skipped_and_failed() {
        let xs = vec![
            Xattr(b"user.a".to_vec(), b"1".to_vec()),
            Xattr(b"security.b".to_vec(), b"2".to_vec()),
            Xattr(b"user.c".to_vec(), b"3".to_vec()),
        ];
        let mut set = vec![];
        let r = apply(&xs, false, |n, v| {
            if n == "user.c" {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            set.push((n.to_owned(), v.to_vec()));
            Ok(())
        });
        assert_eq!(set, vec![("user.a".into(), b"1".to_vec())]);
        if !cfg!(target_os = "macos") {
            assert_eq!(r.skipped, 1);
        }
        assert_eq!(r.failed.len(), 1);
        assert!(r.into_result().unwrap_err().to_string().contains("user.c not restored"));
    }
}
