//! Read-ahead for stores where each request costs a round trip (S3): a blob read fetches a
//! window of its packfile, and the next blobs, usually written just after it, come from
//! memory. Restores walk trees in the order backups wrote them, so most hits are local.

use crate::kloset::id::PackId;
use crate::kloset::store::{Resource, Store, StoreResult};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub const WINDOW: u64 = 4 << 20;
const WINDOWS: usize = 8;

/// (packfile, offset of the first byte, bytes).
type Window = (PackId, u64, Arc<Vec<u8>>);

#[derive(Default)]
pub struct ReadAhead {
    windows: Mutex<VecDeque<Window>>,
}

impl ReadAhead {
    /// Reads `len` bytes at `off` of a packfile, through the window cache.
    pub fn read(&self, store: &dyn Store, pack: &PackId, off: u64, len: u64) -> StoreResult<Vec<u8>> {
        if let Some(hit) = self.find(pack, off, len) {
            return Ok(hit);
        }
        if len >= WINDOW {
            return store.get(Resource::Packfile, &pack.0, Some((off, len)));
        }
        // A read past the end of the packfile returns what there is.
        let data = Arc::new(store.get(Resource::Packfile, &pack.0, Some((off, WINDOW)))?);
        let end = (len as usize).min(data.len());
        let out = data[..end].to_vec();
        let mut w = self.windows.lock().expect("lock");
        if w.len() >= WINDOWS {
            w.pop_front();
        }
        w.push_back((*pack, off, data));
        Ok(out)
    }

    fn find(&self, pack: &PackId, off: u64, len: u64) -> Option<Vec<u8>> {
        let w = self.windows.lock().expect("lock");
        w.iter().find_map(|(p, start, data)| {
            let end = start + data.len() as u64;
            (p == pack && off >= *start && off + len <= end)
                .then(|| data[(off - start) as usize..(off - start + len) as usize].to_vec())
        })
    }
}
