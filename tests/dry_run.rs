//! `backup -dry-run`: lists what a backup would store, with totals, and writes nothing to
//! the store: not a packfile, a state, or a lock.
use crate::util::*;
use predicates::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Every file of the store with its bytes.
fn store_image(store: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(store)
        .into_iter()
        .map(|p| {
            let bytes = if p.is_file() { fs::read(&p).unwrap() } else { Vec::new() };
            (p, bytes)
        })
        .collect()
}

#[test]
fn dry_run_lists_and_totals_without_writing() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::create_dir_all(data.join("empty-dir")).unwrap();
    env.create();
    env.backup(&data);
    fs::write(data.join("new.txt"), "new\n").unwrap();
    // A dead lock of this host: a real backup would take it over and remove it.
    write_dead_local_lock(&env);
    let before = store_image(&env.path("store"));
    let out = env.at(&["backup", "-dry-run", data.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(store_image(&env.path("store")), before, "the store changed");
    for rel in ["", "/hello.txt", "/sub/deeper/big.bin", "/link", "/empty-dir", "/new.txt"] {
        let line = format!("dry-run: OK ✓ {}{rel}", data.display());
        assert!(stdout.lines().any(|l| l == line), "no {line:?} in:\n{stdout}");
    }
    // sample_tree: 6 files (hello, empty, passwd, big.bin, hardlink, latin1) + new.txt;
    // directories: data, sub, deeper, empty-dir; one symlink.
    let size = walk(&data)
        .iter()
        .filter(|p| fs::symlink_metadata(p).unwrap().is_file())
        .map(|p| fs::metadata(p).unwrap().len())
        .sum::<u64>();
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("dry-run: would back up 7 files") && last.contains("4 directories, 1 symlink"), "{last}");
    assert!(last.contains(&format!("7 files ({})", plakar::cli::format::ibytes(size))), "{last}");
    assert!(last.contains("1 new or changed"), "only new.txt is new: {last}");
    assert!(last.contains("nothing was written"), "{last}");
    // Excludes apply as in a real backup; -quiet keeps the totals only.
    let out = env.stdout(&["backup", "-dry-run", "-quiet", "-exclude", "sub", data.to_str().unwrap()]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("would back up 5 files") && out.contains("2 directories"), "{out}");
    assert_eq!(store_image(&env.path("store")), before, "the store changed");
}

#[test]
fn dry_run_of_a_missing_source_or_on_an_empty_store() {
    let env = Env::new();
    env.create();
    let before = store_image(&env.path("store"));
    env.at(&["backup", "-dry-run", env.path("nope").to_str().unwrap()])
        .assert()
        .code(67)
        .stderr(predicate::str::contains("nope"));
    let data = env.path("data");
    sample_tree(&data);
    env.at(&["backup", "-dry-run", data.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("7 new or changed").not().and(predicate::str::contains("6 new or changed")));
    assert_eq!(store_image(&env.path("store")), before);
    env.at(&["ls"]).assert().success().stdout("");
}
