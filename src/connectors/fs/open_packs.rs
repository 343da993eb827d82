//! Packfiles kept open for ranged reads: a restore or a check reads many blobs of each
//! packfile in turn, and opening, seeking and closing for each was three of the four
//! system calls of a blob read (docs/PERFORMANCE.md, "Many small files"). A packfile's
//! bytes never change under its name (a new write is a new file renamed over it, with the
//! same content), so a descriptor kept open reads what a new one would; one removed since
//! is still read whole through it, as a reader that opened it just before would.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Descriptors kept: about as many as there are readers at once.
const KEPT: usize = 32;

#[derive(Default)]
pub struct OpenPacks {
    files: Mutex<VecDeque<([u8; 32], Arc<File>)>>,
}

impl OpenPacks {
    fn file(&self, id: &[u8; 32], path: &Path) -> io::Result<Arc<File>> {
        let mut files = self.files.lock().expect("lock");
        if let Some(i) = files.iter().position(|(k, _)| k == id) {
            let hit = files.remove(i).expect("found");
            let f = hit.1.clone();
            files.push_back(hit);
            return Ok(f);
        }
        drop(files);
        let f = Arc::new(File::open(path)?);
        let mut files = self.files.lock().expect("lock");
        if files.len() >= KEPT {
            files.pop_front();
        }
        files.push_back((*id, f.clone()));
        Ok(f)
    }

    /// Up to `len` bytes at `off`: fewer when the file ends sooner.
    pub fn read(&self, id: &[u8; 32], path: &Path, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let f = self.file(id, path)?;
        let mut buf = vec![0u8; len as usize];
        let mut got = 0;
        while got < buf.len() {
            match f.read_at(&mut buf[got..], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_of_many_files_through_a_few_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let packs = OpenPacks::default();
        for i in 0..(KEPT as u8 + 5) {
            let p = dir.path().join(format!("p{i}"));
            std::fs::write(&p, vec![i; 1000]).unwrap();
            assert_eq!(packs.read(&[i; 32], &p, 10, 20).unwrap(), vec![i; 20]);
            // Past the end: what there is.
            assert_eq!(packs.read(&[i; 32], &p, 990, 20).unwrap(), vec![i; 10]);
        }
        assert_eq!(packs.files.lock().unwrap().len(), KEPT);
        let gone = dir.path().join("gone");
        assert_eq!(packs.read(&[200; 32], &gone, 0, 1).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
