//! Read-ahead for stores where each request costs a round trip (S3): a blob read fetches a
//! window of its packfile, and the next blobs, usually written just after it, come from
//! memory. A tree is written after the trees of its subdirectories (a backup stores a
//! directory once its entries are done) and is read before them, so the window of a tree
//! reaches back as far as forward: walking down to the first leaf then costs one round
//! trip, not one per level.

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
    /// Reads `len` bytes at `off` of a packfile, through the window cache; `back`: the
    /// window starts half a window before the blob (trees), else at it.
    pub fn read(&self, store: &dyn Store, pack: &PackId, off: u64, len: u64, back: bool) -> StoreResult<Vec<u8>> {
        if let Some(hit) = self.find(pack, off, len) {
            return Ok(hit);
        }
        if len >= WINDOW {
            return store.get(Resource::Packfile, &pack.0, Some((off, len)));
        }
        // Back by half a window at most, and never so far that the blob's end falls out.
        let start = if back { off.saturating_sub((WINDOW - len).min(WINDOW / 2)) } else { off };
        // A read past the end of the packfile returns what there is.
        let data = Arc::new(store.get(Resource::Packfile, &pack.0, Some((start, WINDOW)))?);
        let from = ((off - start) as usize).min(data.len());
        let out = data[from..(from + len as usize).min(data.len())].to_vec();
        let mut w = self.windows.lock().expect("lock");
        if w.len() >= WINDOWS {
            w.pop_front();
        }
        w.push_back((*pack, start, data));
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
