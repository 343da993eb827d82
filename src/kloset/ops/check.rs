//! Check: read back every blob a snapshot reaches. Full checks authenticate and verify
//! each chunk; `fast` only checks that each blob is indexed and its packfile exists. A
//! chunk shared by many files or snapshots is verified once.

use crate::kloset::blob::BlobType;
use crate::kloset::id::{BlobId, PackId, SnapshotId};
use crate::kloset::importer::{join, FileKind};
use crate::kloset::keyset::KeySet;
use crate::kloset::progress::Progress;
use crate::kloset::repo::Repository;
use crate::kloset::snapshot::Header;
use crate::kloset::store::Resource;
use crate::kloset::tree::Entry;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct SnapshotCheck {
    pub id: SnapshotId,
    pub path: String,
    /// (path, what is wrong)
    pub errors: Vec<(String, String)>,
}

impl SnapshotCheck {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

struct Checker<'a> {
    repo: &'a Repository,
    fast: bool,
    packs: Option<HashSet<PackId>>,
    /// Blobs found sound, and what is wrong with the others. Keyed by type and id: a chunk
    /// and a tree node may share an id. The sound ones are most, and go to disk past a
    /// fixed number (keyset.rs): a million blobs took 80 bytes each in a map.
    sound: Mutex<KeySet>,
    broken: Mutex<HashMap<(BlobType, BlobId), String>>,
    progress: &'a dyn Progress,
}

pub fn check(
    repo: &Repository,
    targets: &[(SnapshotId, Option<Vec<u8>>)],
    fast: bool,
    progress: &dyn Progress,
) -> Vec<SnapshotCheck> {
    let packs = fast.then(|| {
        repo.store
            .list(Resource::Packfile)
            .map(|l| l.into_iter().map(PackId).collect::<HashSet<_>>())
            .unwrap_or_default()
    });
    let (sound, broken) = (Mutex::new(KeySet::new()), Mutex::new(HashMap::new()));
    let c = Checker { repo, fast, packs, sound, broken, progress };
    targets.iter().map(|(id, path)| c.snapshot(*id, path.as_deref())).collect()
}

impl Checker<'_> {
    fn snapshot(&self, id: SnapshotId, path: Option<&[u8]>) -> SnapshotCheck {
        let shown = path.map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_else(|| "/".into());
        let mut out = SnapshotCheck { id, path: shown.clone(), errors: vec![] };
        let header: Header = match self.repo.header(&id) {
            Ok(h) => h,
            Err(e) => {
                out.errors.push(("/".into(), format!("snapshot header: {e}")));
                return out;
            }
        };
        let p = path.map(|p| p.to_vec()).unwrap_or_else(|| b"/".to_vec());
        match self.repo.lookup(&header, &p) {
            Ok(entry) => {
                let errors = Mutex::new(Vec::new());
                self.entry(&entry, &p, &errors);
                out.errors = errors.into_inner().expect("lock");
                out.errors.sort();
            }
            Err(e) => out.errors.push((shown, e.to_string())),
        }
        out
    }

    fn entry(&self, e: &Entry, path: &[u8], errors: &Mutex<Vec<(String, String)>>) {
        let fail = |msg: String| errors.lock().expect("lock").push((String::from_utf8_lossy(path).into_owned(), msg));
        match e.kind() {
            FileKind::Dir => {
                let Some(sub) = e.subtree else { return };
                if let Some(msg) = self.verify(BlobType::Tree, &sub) {
                    return fail(msg);
                }
                match self.repo.tree(&sub) {
                    Ok(t) => t.entries.par_iter().for_each(|c| self.entry(c, &join(path, &c.name), errors)),
                    Err(err) => fail(err.to_string()),
                }
            }
            FileKind::File => {
                for c in &e.chunks {
                    if let Some(msg) = self.verify(BlobType::Chunk, c) {
                        return fail(msg);
                    }
                }
                self.progress.item(path, e.info.size);
            }
            _ => {}
        }
    }

    /// Verifies a blob once; returns what is wrong with it, if anything.
    fn verify(&self, kind: BlobType, id: &BlobId) -> Option<String> {
        if self.sound.lock().expect("lock").contains(&(kind, *id)) {
            return None;
        }
        if let Some(msg) = self.broken.lock().expect("lock").get(&(kind, *id)) {
            return Some(msg.clone());
        }
        let r = match (&self.packs, self.repo.locate(kind, id)) {
            (_, Err(e)) => Some(e.to_string()),
            (Some(packs), Ok(loc)) => {
                (!packs.contains(&loc.pack)).then(|| format!("packfile {} is missing", loc.pack.short()))
            }
            (None, Ok(_)) => self.repo.get_blob(kind, id).err().map(|e| e.to_string()),
        };
        let _ = self.fast;
        match &r {
            None => _ = self.sound.lock().expect("lock").insert((kind, *id)),
            Some(msg) => _ = self.broken.lock().expect("lock").insert((kind, *id), msg.clone()),
        }
        r
    }
}

/// Snapshots whose header sits in a packfile that no state lists, with that packfile.
/// Only unlisted packfiles are read, and only their index. In a store where no state was
/// lost (`Repository::lost_states`), these are leftovers of commits that did not finish
/// (a full disk, a kill, a lock taken over): nothing reported them committed, and
/// maintenance deletes them. Otherwise they may be a lost state's.
pub fn unlisted_snapshots(repo: &Repository) -> crate::kloset::Result<Vec<(SnapshotId, PackId)>> {
    let mut out = Vec::new();
    // A damaged unlisted packfile is garbage from an interrupted run: maintenance drops it.
    for (pack, entries) in crate::kloset::ops::repair::unlisted_packs(repo)? {
        for e in entries.unwrap_or_default().iter().filter(|e| e.kind == BlobType::Snapshot) {
            let id = SnapshotId(e.id.0);
            if !repo.index.deleted().contains(&id) && !repo.index.has_snapshot_blob(&id) {
                out.push((id, pack));
            }
        }
    }
    Ok(out)
}

/// States that counted states were built on and that are gone, as check results: damage.
/// With them, snapshots in unlisted packfiles may be theirs, and are reported too.
pub fn lost_states(repo: &Repository, unlisted: &[(SnapshotId, PackId)]) -> Vec<SnapshotCheck> {
    if !repo.may_have_lost_states() {
        return vec![];
    }
    let mut out: Vec<SnapshotCheck> = repo
        .lost_states
        .iter()
        .map(|(lost, child)| SnapshotCheck {
            id: SnapshotId(lost.0),
            path: "/".into(),
            errors: vec![(
                "/".into(),
                format!(
                    "state {} is missing (state {} was built on it): the snapshots it committed are gone from \
                     the index; `check -repair` lists again what its packfiles still hold",
                    lost.short(),
                    child.short()
                ),
            )],
        })
        .collect();
    out.extend(unlisted.iter().map(|(id, pack)| SnapshotCheck {
        id: *id,
        path: "/".into(),
        errors: vec![(
            "/".into(),
            format!(
                "snapshot is in packfile {} but no state lists it, and {}: it may be a lost state's; `check \
                 -repair` lists it again",
                pack.short(),
                if repo.lost_states.is_empty() {
                    "states written by an older plakar (without lineage) cannot tell a lost state from a commit that \
                     never finished until a maintenance merges them"
                } else {
                    "a state is missing"
                }
            ),
        )],
    }));
    out
}

/// Packfiles whose own sealed index (what `check -repair` rebuilds from) is damaged or
/// does not hold the records the states hold for them: (packfile, what is wrong). Packfiles
/// already missing are reported by the blob checks; doomed ones are being deleted.
pub fn pack_indexes(repo: &Repository) -> crate::kloset::Result<Vec<(PackId, String)>> {
    use std::collections::BTreeMap;
    // Grouped by packfile a batch of packfiles at a time, a million records at most each,
    // reading the index once a batch: memory stays flat in the size of the store.
    let mut per_pack: HashMap<PackId, usize> = HashMap::new();
    for (_, loc) in repo.index.entries() {
        if !repo.index.doomed().contains(&loc.pack) {
            *per_pack.entry(loc.pack).or_default() += 1;
        }
    }
    let mut packs: Vec<(PackId, usize)> = per_pack.into_iter().collect();
    packs.sort();
    let mut out = Vec::new();
    let mut rest = &packs[..];
    while !rest.is_empty() {
        let mut n = 0;
        let take = rest
            .iter()
            .take_while(|(_, c)| {
                let before = n;
                n += c;
                before < BATCH_RECORDS
            })
            .count();
        let (batch, later) = rest.split_at(take.max(1));
        rest = later;
        let wanted: HashSet<PackId> = batch.iter().map(|(p, _)| *p).collect();
        let mut by_pack: BTreeMap<PackId, Vec<(BlobType, BlobId, u32, u32)>> = BTreeMap::new();
        for (id, loc) in repo.index.entries() {
            if wanted.contains(&loc.pack) {
                by_pack.entry(loc.pack).or_default().push((loc.kind, id, loc.offset, loc.length));
            }
        }
        out.extend(compare_pack_indexes(repo, by_pack)?);
    }
    Ok(out)
}

/// Records a batch of `pack_indexes` holds (44 bytes each).
const BATCH_RECORDS: usize = 1 << 20;

fn compare_pack_indexes(
    repo: &Repository,
    by_pack: std::collections::BTreeMap<PackId, Vec<(BlobType, BlobId, u32, u32)>>,
) -> crate::kloset::Result<Vec<(PackId, String)>> {
    let mut out = Vec::new();
    for (pack, records) in by_pack {
        let entries = match crate::kloset::ops::repair::pack_index(repo, &pack) {
            Ok(Ok(e)) => e,
            Ok(Err(why)) => {
                out.push((
                    pack,
                    format!("its own index is damaged ({why}): `check -repair` could not rebuild from it"),
                ));
                continue;
            }
            Err(crate::kloset::Error::Store(e)) if e.kind == crate::kloset::store::StoreErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let own: HashSet<(BlobType, BlobId, u32, u32)> =
            entries.iter().map(|e| (e.kind, e.id, e.offset, e.length)).collect();
        let wrong = records.iter().filter(|r| !own.contains(r)).count();
        if wrong > 0 {
            out.push((pack, format!("its own index does not list {wrong} blobs the states place in it")));
        }
    }
    Ok(out)
}
