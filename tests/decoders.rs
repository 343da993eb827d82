//! Every parser of bytes read from a store or a ptar archive, fed random bytes and random
//! mutations of valid encodings: each must return an error or a value, never panic. The
//! fuzz targets in fuzz/ go further; this is the fast check that runs with every test.
use plakar::connectors::ptar::{PtarStore, PtarWriter};
use plakar::kloset::blob::{self, BlobType};
use plakar::kloset::config::{CreateParams, RepoConfig};
use plakar::kloset::crypto::{Keys, SEAL_OVERHEAD};
use plakar::kloset::id::{BlobId, PackId, SnapshotId, StateId};
use plakar::kloset::importer::{FileInfo, FileKind};
use plakar::kloset::packfile::{self, PackBuilder};
use plakar::kloset::snapshot::Header;
use plakar::kloset::state::{Record, State};
use plakar::kloset::store::{Resource, Store};
use plakar::kloset::tree::{Entry, Tree};
use proptest::prelude::*;
use std::sync::LazyLock;

fn keys() -> &'static Keys {
    static K: LazyLock<Keys> = LazyLock::new(|| Keys::new(&[0x5a; 32], false));
    &K
}

/// The plaintext inside an object sealed with plaintext keys.
fn unseal(sealed: &[u8]) -> Vec<u8> {
    sealed[24..sealed.len() - (SEAL_OVERHEAD - 24)].to_vec()
}

const STATE_ID: StateId = StateId([4; 32]);
const PACK_ID: PackId = PackId([6; 32]);

/// Valid encodings, one per decoder.
struct Valid {
    state: Vec<u8>,
    packfile: Vec<u8>,
    pack_index: Vec<u8>,
    header: Vec<u8>,
    tree: Vec<u8>,
    blob_zstd: Vec<u8>,
    blob_raw: Vec<u8>,
    config: Vec<u8>,
    ptar: Vec<u8>,
}

static VALID: LazyLock<Valid> = LazyLock::new(|| {
    let k = keys();
    let rec = |i: u8| Record {
        kind: BlobType::from_u8(i % 3 + 1).unwrap(),
        id: BlobId([i; 32]),
        pack: PackId([i + 1; 32]),
        offset: 8 + i as u32,
        length: 100,
    };
    let state = State {
        created: 1_700_000_000,
        blobs: (0..3).map(rec).collect(),
        deleted: vec![SnapshotId([9; 32])],
        doomed: vec![],
        parents: vec![plakar::kloset::StateId([4; 32])],
        flags: 0,
    };
    let mut pb = PackBuilder::with_id(PACK_ID);
    pb.add(BlobType::Chunk, BlobId([1; 32]), b"chunk bytes");
    pb.add(BlobType::Tree, BlobId([2; 32]), b"tree bytes");
    let (_, packfile, _) = pb.finish(k);
    let header = Header {
        version: 1,
        id: SnapshotId([3; 32]),
        timestamp_ns: 1_700_000_000_000_000_000,
        name: "n".into(),
        tags: vec!["t".into()],
        hostname: "h".into(),
        root: BlobId([5; 32]),
        errors: vec![("/a".into(), "b".into())],
        ..Default::default()
    };
    let entry = |name: &[u8], kind| Entry {
        name: name.to_vec(),
        info: FileInfo { kind: Some(kind), mode: 0o100644, size: 3, user: Some("u".into()), ..Default::default() },
        chunks: vec![BlobId([7; 32])],
        lengths: vec![],
        subtree: (kind == FileKind::Dir).then_some(BlobId([8; 32])),
        error: None,
    };
    let tree = Tree { version: 1, entries: vec![entry(b"a", FileKind::File), entry(b"d", FileKind::Dir)] };
    let plain = b"hello hello hello hello hello hello hello".repeat(20);
    let id = k.mac(&plain);
    let blob_zstd = unseal(&blob::encode(k, BlobType::Chunk, &id, &plain, Some(3)));
    let blob_raw = unseal(&blob::encode(k, BlobType::Chunk, &id, &plain, None));
    let (cfg, _) = RepoConfig::new(&CreateParams { encrypted: false, ..Default::default() }, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.ptar");
    let w = PtarWriter::new(&path, false).unwrap();
    w.create(&cfg.encode()).unwrap();
    w.put(Resource::Packfile, &PACK_ID.0, &packfile).unwrap();
    w.put(Resource::State, &STATE_ID.0, &state.encode(k, &STATE_ID)).unwrap();
    w.finish().unwrap();
    let (off, len) = packfile::index_span(&packfile).unwrap();
    Valid {
        state: unseal(&state.encode(k, &STATE_ID)),
        pack_index: unseal(&packfile[off..off + len]),
        packfile,
        header: header.encode(),
        tree: tree.encode(),
        blob_zstd,
        blob_raw,
        config: cfg.encode(),
        ptar: std::fs::read(&path).unwrap(),
    }
});

/// Random byte flips, then an optional truncation, then optional appended bytes.
fn mutation() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>, Vec<u8>)> {
    (
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        proptest::option::of(any::<usize>()),
        proptest::collection::vec(any::<u8>(), 0..3),
    )
}

fn mutate(valid: &[u8], (flips, cut, tail): &(Vec<(usize, u8)>, Option<usize>, Vec<u8>)) -> Vec<u8> {
    let mut b = valid.to_vec();
    for &(i, x) in flips {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] ^= x;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b.extend_from_slice(tail);
    b
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

fn check_packfile(b: &[u8]) {
    let _ = packfile::read_index(keys(), &PACK_ID, b);
    let _ = packfile::index_span(b);
    let _ = packfile::parse_index(b);
}

fn check_state(b: &[u8]) {
    let _ = State::parse(b);
    let _ = State::decode(keys(), &STATE_ID, b);
}

fn check_blob(b: &[u8]) {
    let _ = blob::decompress(b, 1 << 20);
    for t in [BlobType::Chunk, BlobType::Tree, BlobType::Snapshot] {
        let _ = blob::decode(keys(), t, &BlobId([0; 32]), b);
    }
}

fn check_tree(b: &[u8]) {
    if let Ok(t) = Tree::decode(b) {
        for e in &t.entries {
            let _ = (e.kind(), t.find(&e.name));
        }
    }
}

fn check_header(b: &[u8]) {
    if let Ok(h) = Header::decode(b) {
        let _ = h.time();
    }
}

fn check_config(b: &[u8]) {
    if let Ok(c) = RepoConfig::decode(b, "test") {
        let ch = &c.chunking;
        let _ = fastcdc::v2020::FastCDC::new(&[], ch.min_size, ch.avg_size, ch.max_size).count();
        if !c.encrypted() {
            let _ = c.unlock(None);
        }
    }
}

fn check_ptar(b: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.ptar");
    std::fs::write(&path, b).unwrap();
    if let Ok(s) = PtarStore::open(&path) {
        let _ = s.open();
        for res in [Resource::Packfile, Resource::State] {
            for id in s.list(res).unwrap() {
                let _ = s.get(res, &id, None);
                let _ = s.get(res, &id, Some((1, 3)));
            }
        }
    }
}

#[test]
fn valid_encodings_decode() {
    let v = &*VALID;
    assert_eq!(packfile::read_index(keys(), &PACK_ID, &v.packfile).unwrap().len(), 2);
    assert_eq!(packfile::parse_index(&v.pack_index).unwrap().len(), 2);
    assert_eq!(State::parse(&v.state).unwrap().blobs.len(), 3);
    assert_eq!(Tree::decode(&v.tree).unwrap().entries.len(), 2);
    assert_eq!(Header::decode(&v.header).unwrap().name, "n");
    assert_eq!(blob::decompress(&v.blob_zstd, 1 << 20).unwrap(), blob::decompress(&v.blob_raw, 1 << 20).unwrap());
    assert!(v.blob_zstd[0] == 1 && v.blob_raw[0] == 0, "one compressed, one raw");
    assert!(RepoConfig::decode(&v.config, "test").is_ok());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), &v.ptar).unwrap();
    assert_eq!(PtarStore::open(&dir.path().join("a")).unwrap().list(Resource::State).unwrap().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn packfile_never_panics(b in bytes(), m in mutation()) {
        check_packfile(&b);
        check_packfile(&mutate(&VALID.packfile, &m));
        check_packfile(&mutate(&VALID.pack_index, &m));
    }

    #[test]
    fn state_never_panics(b in bytes(), m in mutation()) {
        check_state(&b);
        check_state(&mutate(&VALID.state, &m));
    }

    #[test]
    fn blob_never_panics(b in bytes(), m in mutation()) {
        check_blob(&b);
        check_blob(&mutate(&VALID.blob_zstd, &m));
        check_blob(&mutate(&VALID.blob_raw, &m));
    }

    #[test]
    fn tree_never_panics(b in bytes(), m in mutation()) {
        check_tree(&b);
        check_tree(&mutate(&VALID.tree, &m));
    }

    #[test]
    fn header_never_panics(b in bytes(), m in mutation()) {
        check_header(&b);
        check_header(&mutate(&VALID.header, &m));
    }

    #[test]
    fn config_never_panics(b in bytes(), m in mutation()) {
        check_config(&b);
        check_config(&mutate(&VALID.config, &m));
    }

    #[test]
    fn ptar_never_panics(b in bytes(), m in mutation()) {
        check_ptar(&b);
        check_ptar(&mutate(&VALID.ptar, &m));
    }
}

/// MessagePack nests without limit; the decoder stops at a depth that fits the 2 MiB stack
/// of a worker thread (headers are decoded on rayon's threads).
#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // {"version": 0, "entries": [], "x": [[[[...]]]]}, then the same as a snapshot header.
    let mut b = vec![0x83, 0xa7];
    b.extend_from_slice(b"version");
    b.extend_from_slice(&[0x00, 0xa7]);
    b.extend_from_slice(b"entries");
    b.extend_from_slice(&[0x90, 0xa1, b'x']);
    b.extend(std::iter::repeat_n(0x91, 100_000));
    b.push(0x90);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            assert!(Tree::decode(&b).is_err());
            assert!(Header::decode(&b).is_err());
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Writes seed inputs for the fuzz targets into $FUZZ_SEEDS_DIR/<target>/: real encodings
/// from a small plaintext store (and an encrypted store's CONFIG). Run by fuzz/run.sh.
#[test]
#[ignore = "writes fuzz seeds; run by fuzz/run.sh"]
fn fuzz_seeds() {
    use plakar::connectors::fs::FsImporter;
    use plakar::connectors::memory::MemoryStore;
    use plakar::kloset::config::Chunking;
    use plakar::kloset::crypto::KdfParams;
    use plakar::kloset::ops::backup;
    use plakar::kloset::progress::NoProgress;
    use plakar::kloset::{repo, Repository};
    use std::sync::Arc;

    let dest = std::path::PathBuf::from(std::env::var("FUZZ_SEEDS_DIR").expect("FUZZ_SEEDS_DIR"));
    let mut n = 0;
    let mut put = |target: &str, data: &[u8]| {
        if data.len() <= 64 << 10 {
            let dir = dest.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{n:03}")), data).unwrap();
            n += 1;
        }
    };
    let params = |encrypted| CreateParams {
        encrypted,
        kdf: KdfParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 },
        chunking: Chunking { algorithm: "fastcdc-v2020".into(), min_size: 1024, avg_size: 4096, max_size: 8192 },
        packfile_max_size: 16 << 10,
        ..Default::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello world\n").unwrap();
    std::fs::write(src.join("empty"), "").unwrap();
    std::fs::write(src.join("sub/zeros"), vec![0u8; 20_000]).unwrap();
    let noise: Vec<u8> = (0..12_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(src.join("sub/deeper/noise.bin"), noise).unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();

    let enc = MemoryStore::new();
    repo::create(&enc, &params(true), Some(b"fuzz")).unwrap();
    put("config", &enc.open().unwrap());

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let cfg = repo::create(store.as_ref(), &params(false), None).unwrap();
    put("config", &store.open().unwrap());
    let r = Repository::open(store.clone(), cfg, None).unwrap();
    let h = backup::backup(&r, &FsImporter::new(&src).unwrap(), &Default::default(), &NoProgress).unwrap();
    let r = Repository::open(store.clone(), repo::read_config(store.as_ref()).unwrap(), None).unwrap();

    put("snapshot", &h.encode());
    let mut trees = vec![h.root];
    while let Some(id) = trees.pop() {
        let t = r.tree(&id).unwrap();
        trees.extend(t.entries.iter().filter_map(|e| e.subtree));
        put("tree", &t.encode());
    }
    for id in store.list(Resource::State).unwrap() {
        put("state", &unseal(&store.get(Resource::State, &id, None).unwrap()));
    }
    for id in store.list(Resource::Packfile).unwrap() {
        let data = store.get(Resource::Packfile, &id, None).unwrap();
        let (off, len) = packfile::index_span(&data).unwrap();
        put("packfile", &unseal(&data[off..off + len]));
        put("packfile", &data);
    }
    // Blob bodies, one per type and compression, after the blob target's type selector.
    let mut seen = std::collections::HashSet::new();
    for (_, loc) in r.index.entries() {
        let sealed = store.get(Resource::Packfile, &loc.pack.0, Some((loc.offset as u64, loc.length as u64))).unwrap();
        let body = unseal(&sealed);
        if seen.insert((loc.kind, body[0])) {
            put("blob", &[&[loc.kind as u8 - 1], &body[..]].concat());
        }
    }
    for t in [BlobType::Chunk, BlobType::Tree, BlobType::Snapshot] {
        assert!(seen.iter().any(|(k, _)| *k == t), "no {} blob", t.name());
    }
    // The whole store as a ptar, and one holding only the CONFIG.
    for all in [true, false] {
        let path = tmp.path().join("a.ptar");
        let w = PtarWriter::new(&path, true).unwrap();
        w.create(&store.open().unwrap()).unwrap();
        for res in [Resource::State, Resource::Packfile].into_iter().filter(|_| all) {
            for id in store.list(res).unwrap() {
                w.put(res, &id, &store.get(res, &id, None).unwrap()).unwrap();
            }
        }
        w.finish().unwrap();
        put("ptar", &std::fs::read(&path).unwrap());
    }
    eprintln!("{n} seeds written to {}", dest.display());
}
