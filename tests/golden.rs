//! Pins the on-disk format (docs/FORMAT.md). Plaintext stores seal with a zero nonce and a
//! keyed tag, so their encodings are deterministic and can be compared byte for byte; the
//! encrypted sample is decoded, which pins the sealing format. Regenerate deliberately with
//! UPDATE_GOLDEN=1 after a format change, and bump FORMAT_VERSION.
use plakar::kloset::blob::{self, BlobType};
use plakar::kloset::crypto::Keys;
use plakar::kloset::id::{BlobId, PackId, SnapshotId, StateId};
use plakar::kloset::importer::{FileInfo, FileKind, Xattr};
use plakar::kloset::packfile::PackBuilder;
use plakar::kloset::state::{Record, State};
use plakar::kloset::tree::{Entry, Tree};
use std::path::PathBuf;

fn golden(name: &str, actual: &[u8]) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    let hex_actual = hex::encode(actual);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&p, &hex_actual).unwrap();
        return;
    }
    let want =
        std::fs::read_to_string(&p).unwrap_or_else(|_| panic!("missing {}; run with UPDATE_GOLDEN=1", p.display()));
    assert_eq!(want.trim(), hex_actual, "{name} changed: the on-disk format moved");
}

fn keys(encrypted: bool) -> Keys {
    Keys::new(&[0x42; 32], encrypted)
}

#[test]
fn blob_pack_state_tree_encodings() {
    let k = keys(false);
    let data = b"plakar golden chunk";
    let id = k.mac(data);
    golden("chunk-id.hex", &id.0);
    let enc = blob::encode(&k, BlobType::Chunk, &id, data, None);
    golden("blob-plaintext.hex", &enc);
    let mut p = PackBuilder::with_id(PackId([7; 32]));
    p.add(BlobType::Chunk, id, &enc);
    let (_, pack, _) = p.finish(&k);
    golden("packfile-plaintext.hex", &pack);
    let st = State {
        created: 1_700_000_000,
        blobs: vec![Record { kind: BlobType::Chunk, id, pack: PackId([7; 32]), offset: 8, length: enc.len() as u32 }],
        deleted: vec![SnapshotId([9; 32])],
        doomed: vec![PackId([5; 32])],
        parents: vec![StateId([4; 32])],
        flags: 0,
    };
    golden("state-plaintext.hex", &st.encode(&k, &StateId([3; 32])));
    // States written before version 3 (no lineage) and version 2 (no doomed packfiles)
    // are still read.
    let old = |name: &str| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
        State::decode(&k, &StateId([3; 32]), &hex::decode(std::fs::read_to_string(p).unwrap().trim()).unwrap()).unwrap()
    };
    let legacy = plakar::kloset::state::LEGACY;
    assert_eq!(old("state-v2-plaintext.hex"), State { parents: vec![], flags: legacy, ..st.clone() });
    assert_eq!(old("state-v1-plaintext.hex"), State { doomed: vec![], parents: vec![], flags: legacy, ..st.clone() });
    let tree = Tree {
        version: 1,
        entries: vec![Entry {
            name: b"file".to_vec(),
            info: FileInfo {
                kind: Some(FileKind::File),
                mode: 0o100644,
                size: 19,
                mtime_ns: 1_700_000_000_000_000_000,
                ..Default::default()
            },
            chunks: vec![id],
            lengths: vec![],
            subtree: None,
            error: None,
        }],
    };
    golden("tree.hex", &tree.encode());
    // Chunk lengths, added later: optional, so an entry without them (above) encodes as it
    // always did and older trees still decode.
    let mut with_lengths = tree.clone();
    with_lengths.entries[0].lengths = vec![19];
    golden("tree-lengths.hex", &with_lengths.encode());
    assert_eq!(Tree::decode(&with_lengths.encode()).unwrap(), with_lengths);
    assert_eq!(Tree::decode(&tree.encode()).unwrap().entries[0].lengths, Vec::<u32>::new());
    // Device numbers and extended attributes, added later the same way: tree.hex above has
    // neither and is unchanged.
    let mut special = tree.clone();
    special.entries[0].info.xattrs =
        vec![Xattr(b"user.empty".to_vec(), vec![]), Xattr(b"user.mime_type".to_vec(), b"text/\x00plain".to_vec())];
    special.entries.push(Entry {
        name: b"null".to_vec(),
        info: FileInfo { kind: Some(FileKind::Special), mode: 0o020666, rdev: Some(0x103), ..Default::default() },
        ..Default::default()
    });
    golden("tree-xattrs.hex", &special.encode());
    assert_eq!(Tree::decode(&special.encode()).unwrap(), special);
    let old = Tree::decode(&tree.encode()).unwrap();
    assert_eq!((old.entries[0].info.xattrs.len(), old.entries[0].info.rdev), (0, None));
}

#[test]
fn encrypted_blob_still_decodes() {
    let k = keys(true);
    let data = b"plakar golden chunk";
    let id = k.mac(data);
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/blob-encrypted.hex");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&p, hex::encode(blob::encode(&k, BlobType::Chunk, &id, data, Some(3)))).unwrap();
    }
    let sealed = hex::decode(std::fs::read_to_string(&p).unwrap().trim()).unwrap();
    assert_eq!(blob::decode(&k, BlobType::Chunk, &id, &sealed).unwrap(), data);
    assert!(blob::decode(&k, BlobType::Chunk, &BlobId([0; 32]), &sealed).is_err());
}

#[test]
fn chunk_boundaries_of_seeded_data() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let data: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let c = plakar::kloset::config::Chunking::default();
    let cuts: Vec<u8> = fastcdc::v2020::FastCDC::new(&data, c.min_size, c.avg_size, c.max_size)
        .flat_map(|ch| (ch.length as u32).to_le_bytes())
        .collect();
    golden("chunk-boundaries.hex", &cuts);
}

#[test]
fn ptar_layout() {
    use plakar::connectors::ptar::{PtarStore, PtarWriter};
    use plakar::kloset::store::{Resource, Store};
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("g.ptar");
    let w = PtarWriter::new(&p, false).unwrap();
    w.create(b"config").unwrap();
    w.put(Resource::State, &[2; 32], b"state").unwrap();
    w.put(Resource::Packfile, &[1; 32], b"packfile").unwrap();
    w.finish().unwrap();
    golden("ptar.hex", &std::fs::read(&p).unwrap());
    let r = PtarStore::open(&p).unwrap();
    assert_eq!(r.open().unwrap(), b"config");
    assert_eq!(r.get(Resource::Packfile, &[1; 32], Some((4, 4))).unwrap(), b"file");
    assert_eq!(r.list(Resource::State).unwrap(), vec![[2; 32]]);
}
