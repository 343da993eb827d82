//! States: the record of one operation's effect on the store. A backup writes one state
//! listing where each new blob lives (snapshots included, as blobs of type Snapshot); `rm`
//! writes one listing deleted snapshots; maintenance replaces all states by one. The union
//! of all states is the index. Version 2 adds the packfiles a maintenance marked for
//! deletion (see docs/LOCKING.md). Version 3 adds the state's lineage: the states it was
//! built on, so that `check` can tell a lost state from a commit that never finished
//! (docs/LOCKING.md, "Lineage"). Versions 1 and 2 are still read.

use crate::kloset::blob::BlobType;
use crate::kloset::crypto::Keys;
use crate::kloset::id::{BlobId, PackId, SnapshotId, StateId};

pub const VERSION: u32 = 3;
/// `State::flags`: a maintenance's merged state; its parents were deleted on purpose.
pub const MERGE: u32 = 1;
/// `State::flags`, in memory only: a state written before lineage existed (version 1 or
/// 2), which names no parents. Never encoded.
pub const LEGACY: u32 = 1 << 31;
const RECORD_LEN: usize = 1 + 32 + 32 + 4 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub kind: BlobType,
    pub id: BlobId,
    pub pack: PackId,
    pub offset: u32,
    pub length: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub created: i64,
    pub blobs: Vec<Record>,
    pub deleted: Vec<SnapshotId>,
    /// Packfiles marked for deletion by a maintenance: readable until they are deleted,
    /// never used for deduplication.
    pub doomed: Vec<PackId>,
    /// The states this one was built on: the heads of the index its writer read (the
    /// states no other state names as a parent). For a maintenance's merged state, every
    /// state it replaced.
    pub parents: Vec<StateId>,
    /// `MERGE`, or 0.
    pub flags: u32,
}

fn ad(id: &StateId) -> Vec<u8> {
    let mut a = b"state ".to_vec();
    a.extend_from_slice(&id.0);
    a
}

impl State {
    pub fn encode(&self, keys: &Keys, id: &StateId) -> Vec<u8> {
        let mut b = Keys::seal_room();
        b.reserve(
            36 + self.blobs.len() * RECORD_LEN
                + (self.deleted.len() + self.doomed.len() + self.parents.len()) * 32
                + crate::kloset::crypto::SEAL_OVERHEAD,
        );
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.created.to_le_bytes());
        b.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for r in &self.blobs {
            b.push(r.kind as u8);
            b.extend_from_slice(&r.id.0);
            b.extend_from_slice(&r.pack.0);
            b.extend_from_slice(&r.offset.to_le_bytes());
            b.extend_from_slice(&r.length.to_le_bytes());
        }
        b.extend_from_slice(&(self.deleted.len() as u32).to_le_bytes());
        for d in &self.deleted {
            b.extend_from_slice(&d.0);
        }
        b.extend_from_slice(&(self.doomed.len() as u32).to_le_bytes());
        for p in &self.doomed {
            b.extend_from_slice(&p.0);
        }
        b.extend_from_slice(&(self.flags & !LEGACY).to_le_bytes());
        b.extend_from_slice(&(self.parents.len() as u32).to_le_bytes());
        for p in &self.parents {
            b.extend_from_slice(&p.0);
        }
        keys.seal_owned(&ad(id), b)
    }

    pub fn decode(keys: &Keys, id: &StateId, sealed: &[u8]) -> Result<State, String> {
        let b = keys.open(&ad(id), sealed).map_err(|_| "fails authentication (damaged, or sealed with another key)")?;
        Self::parse(&b)
    }

    /// Parses a state once opened (authenticated and decrypted). Public so that a fuzzer
    /// can reach it without the key.
    pub fn parse(b: &[u8]) -> Result<State, String> {
        let mut r = Reader { b, pos: 0 };
        let version = r.u32()?;
        if !(1..=VERSION).contains(&version) {
            return Err(format!("state version {version} is not supported"));
        }
        let created = r.u64()? as i64;
        let n = r.u32()? as usize;
        if n.checked_mul(RECORD_LEN).is_none_or(|need| need > b.len()) {
            return Err("record count exceeds the state's size".into());
        }
        let mut blobs = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = BlobType::from_u8(r.take(1)?[0]).ok_or("unknown blob type")?;
            blobs.push(Record {
                kind,
                id: BlobId::from_slice(r.take(32)?).expect("32"),
                pack: PackId::from_slice(r.take(32)?).expect("32"),
                offset: r.u32()?,
                length: r.u32()?,
            });
        }
        let nd = r.u32()? as usize;
        let mut deleted = Vec::with_capacity(nd.min(b.len() / 32));
        for _ in 0..nd {
            deleted.push(SnapshotId::from_slice(r.take(32)?).expect("32"));
        }
        let mut doomed = Vec::new();
        if version >= 2 {
            let np = r.u32()? as usize;
            doomed.reserve(np.min(b.len() / 32));
            for _ in 0..np {
                doomed.push(PackId::from_slice(r.take(32)?).expect("32"));
            }
        }
        let (mut flags, mut parents) = (LEGACY, Vec::new());
        if version >= 3 {
            flags = r.u32()? & !LEGACY;
            let n = r.u32()? as usize;
            parents.reserve(n.min(b.len() / 32));
            for _ in 0..n {
                parents.push(StateId::from_slice(r.take(32)?).ok_or("bad state id")?);
            }
        }
        if r.pos != b.len() {
            return Err("trailing bytes after the last record".into());
        }
        Ok(State { created, blobs, deleted, doomed, parents, flags })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or("state is truncated")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let keys = Keys::new(&[5u8; 32], false);
        let s = State {
            created: 42,
            blobs: vec![Record {
                kind: BlobType::Tree,
                id: BlobId([1; 32]),
                pack: PackId([2; 32]),
                offset: 8,
                length: 9,
            }],
            deleted: vec![SnapshotId([3; 32])],
            doomed: vec![PackId([6; 32])],
            parents: vec![StateId([7; 32]), StateId([8; 32])],
            flags: MERGE,
        };
        let id = StateId([4; 32]);
        let enc = s.encode(&keys, &id);
        assert_eq!(State::decode(&keys, &id, &enc).unwrap(), s);
        assert!(State::decode(&keys, &id, &enc[..enc.len() - 3]).is_err());
    }
}
