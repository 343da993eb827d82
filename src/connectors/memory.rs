//! An in-memory store, for tests and as the reference the conformance suite is written
//! against.

use crate::kloset::store::{Resource, Store, StoreError, StoreErrorKind, StoreResult};
use std::collections::BTreeMap;
use std::sync::Mutex;

type Key = (Resource, [u8; 32]);

#[derive(Default)]
pub struct MemoryStore {
    config: Mutex<Option<Vec<u8>>>,
    /// Sorted, so listings come in id order as from S3 (and a simulation replays).
    objects: Mutex<BTreeMap<Key, Vec<u8>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn missing(res: Resource, id: &[u8; 32]) -> StoreError {
    StoreError::new(StoreErrorKind::NotFound, format!("{}/{} not found", res.dir(), hex::encode(id)))
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory:".into()
    }
    fn create(&self, config: &[u8]) -> StoreResult<()> {
        let mut c = self.config.lock().expect("lock");
        if c.is_some() {
            return Err(StoreError::new(StoreErrorKind::AlreadyExists, "store exists"));
        }
        *c = Some(config.to_vec());
        Ok(())
    }
    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        *self.config.lock().expect("lock") = Some(config.to_vec());
        Ok(())
    }
    fn open(&self) -> StoreResult<Vec<u8>> {
        self.config.lock().expect("lock").clone().ok_or_else(|| StoreError::new(StoreErrorKind::NotFound, "no store"))
    }
    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        Ok(self.objects.lock().expect("lock").keys().filter(|(r, _)| *r == res).map(|(_, id)| *id).collect())
    }
    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let o = self.objects.lock().expect("lock");
        let data = o.get(&(res, *id)).ok_or_else(|| missing(res, id))?;
        Ok(match range {
            None => data.clone(),
            Some((off, len)) => {
                let start = (off as usize).min(data.len());
                let end = start.saturating_add(len as usize).min(data.len());
                data[start..end].to_vec()
            }
        })
    }
    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        self.objects.lock().expect("lock").insert((res, *id), data.to_vec());
        Ok(())
    }
    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        self.objects.lock().expect("lock").remove(&(res, *id));
        Ok(())
    }
    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let o = self.objects.lock().expect("lock");
        o.get(&(res, *id)).map(|d| d.len() as u64).ok_or_else(|| missing(res, id))
    }
}
