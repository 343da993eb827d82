//! restore(backup(tree)) == tree, for random trees with every kind of file.
use crate::engine::{new_repo, reopen};
use crate::util::assert_same_tree;
use plakar::connectors::fs::{FsExporter, FsImporter};
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::ops::{backup, restore};
use plakar::kloset::progress::NoProgress;
use proptest::prelude::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>, u32),
    Sparse(u64),
    Link(Vec<u8>),
    HardLinkToFirst,
    Dir(Vec<(Vec<u8>, Node)>),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|s| s.into_bytes()),
        proptest::collection::vec(1u8..=255, 1..10)
            .prop_filter("plain component", |v| !v.contains(&b'/') && v != b"." && v != b".."),
    ]
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![]),
        proptest::collection::vec(any::<u8>(), 0..2000),
        (any::<u8>(), 1usize..300_000).prop_map(|(b, n)| (0..n).map(|i| b.wrapping_add((i / 7) as u8)).collect()),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => (content(), prop_oneof![Just(0o644u32), Just(0o600), Just(0o755), Just(0o400)]).prop_map(|(c, m)| Node::File(c, m)),
        1 => (1u64..4).prop_map(|m| Node::Sparse(m << 20)),
        1 => name().prop_map(Node::Link),
        1 => Just(Node::HardLinkToFirst),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| proptest::collection::vec((name(), inner), 0..6).prop_map(Node::Dir))
}

fn build(dir: &Path, children: &[(Vec<u8>, Node)], first: &mut Option<std::path::PathBuf>) {
    std::fs::create_dir_all(dir).unwrap();
    for (n, node) in children {
        let p = dir.join(OsStr::from_bytes(n));
        if std::fs::symlink_metadata(&p).is_ok() {
            continue; // duplicate name
        }
        match node {
            Node::File(c, mode) => {
                std::fs::write(&p, c).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
                first.get_or_insert(p);
            }
            Node::Sparse(len) => {
                let f = std::fs::File::create(&p).unwrap();
                f.set_len(*len).unwrap();
                use std::os::unix::fs::FileExt;
                f.write_at(b"tail", len - 4).unwrap();
            }
            Node::Link(t) => std::os::unix::fs::symlink(OsStr::from_bytes(t), &p).unwrap(),
            Node::HardLinkToFirst => {
                if let Some(f) = first.as_ref() {
                    std::fs::hard_link(f, &p).unwrap();
                }
            }
            Node::Dir(c) => build(&p, c, first),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn restore_of_backup_is_identical(children in proptest::collection::vec((name(), node()), 0..8)) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        build(&src, &children, &mut None);
        let repo = new_repo(Arc::new(MemoryStore::new()));
        let imp = FsImporter::new(&src).unwrap();
        let h = backup::backup(&repo, &imp, &Default::default(), &NoProgress).unwrap();
        prop_assert_eq!(h.summary.errors, 0);
        let repo = reopen(repo.store.clone());
        let entry = repo.lookup(&h, src.as_os_str().as_bytes()).unwrap();
        let out = tmp.path().join("out");
        let exp = FsExporter::new(&out, true).unwrap();
        let r = restore::restore(&repo, &entry, b"", &exp, &NoProgress).unwrap();
        prop_assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_same_tree(&src, &out);
    }
}
