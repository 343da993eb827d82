//! The directories a restore last wrote files into, kept open. Files come in tree order, a
//! directory's one after another, so walking to each file's directory from the target
//! (one `openat` and one `close` per component) is mostly done again for the same
//! directory: on a million files 100 to a directory, that was a third of the restore's
//! system calls.
//!
//! What is kept is the descriptor the walk opened, never a name: a directory someone moves
//! or swaps for a symlink during the restore keeps receiving its files where it now is,
//! and nothing is ever reached through a name they chose (docs/RESTORE.md, "Limits").
//! A directory is forgotten once its metadata is set, after its last entry.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

/// How many directories stay open: a few per writer thread, whose files interleave.
const KEPT: usize = 16;

#[derive(Default)]
pub(super) struct OpenDirs {
    /// (the directory's path components joined with '/', its descriptor), most recently
    /// used last.
    dirs: Mutex<Vec<(Vec<u8>, Arc<OwnedFd>)>>,
}

fn key(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

impl OpenDirs {
    pub(super) fn get(&self, comps: &[&[u8]]) -> Option<Arc<OwnedFd>> {
        let key = key(comps);
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        let at = dirs.iter().rposition(|(k, _)| *k == key)?;
        let hit = dirs.remove(at);
        let fd = hit.1.clone();
        dirs.push(hit);
        Some(fd)
    }

    pub(super) fn put(&self, comps: &[&[u8]], fd: Arc<OwnedFd>) {
        let key = key(comps);
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        dirs.retain(|(k, _)| *k != key);
        if dirs.len() >= KEPT {
            dirs.remove(0);
        }
        dirs.push((key, fd));
    }

    /// Closes the directory at `comps` and those under it, if they are open.
    pub(super) fn forget(&self, comps: &[&[u8]]) {
        let key = key(comps);
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        dirs.retain(|(k, _)| !(k.starts_with(&key) && (k.len() == key.len() || k[key.len()] == b'/')));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open("/").unwrap().into())
    }

    #[test]
    fn keeps_the_most_recent_and_forgets_a_directory_with_those_under_it() {
        let o = OpenDirs::default();
        let (a, ab, abc, abd) = (fd(), fd(), fd(), fd());
        o.put(&[b"a"], a.clone());
        o.put(&[b"a", b"b"], ab.clone());
        o.put(&[b"a", b"bc"], abc.clone());
        o.put(&[b"a", b"b", b"d"], abd.clone());
        assert!(Arc::ptr_eq(&o.get(&[b"a", b"b"]).unwrap(), &ab));
        o.forget(&[b"a", b"b"]);
        assert!(o.get(&[b"a", b"b"]).is_none());
        assert!(o.get(&[b"a", b"b", b"d"]).is_none());
        // A sibling whose name starts the same stays.
        assert!(Arc::ptr_eq(&o.get(&[b"a", b"bc"]).unwrap(), &abc));
        assert!(Arc::ptr_eq(&o.get(&[b"a"]).unwrap(), &a));
        for i in 0..KEPT {
            o.put(&[format!("x{i}").as_bytes()], fd());
        }
        // The least recently used went first.
        assert!(o.get(&[b"a", b"bc"]).is_none() && o.get(&[b"a"]).is_none());
        assert_eq!(o.dirs.lock().unwrap().len(), KEPT);
    }
}
