//! sync between stores and ptar archives.
use crate::util::*;
use predicates::prelude::*;
use std::fs;

#[test]
fn sync_to_another_store_keeps_ids_and_dedups() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    let other = env.path("other").display().to_string();
    // The peer has its own passphrase, from its config.
    env.cmd().args(["store", "add", "peer", &other, "passphrase=another one"]).assert().success();
    env.cmd().env_remove("PLAKAR_PASSPHRASE").args(["at", "@peer", "create"]).assert().success();
    env.at(&["sync", "to", "@peer"]).assert().success().stdout(predicate::str::contains("1 snapshots synchronized"));
    env.at(&["sync", "to", "@peer"]).assert().success().stdout(predicate::str::contains("0 snapshots synchronized"));
    let ls = env.cmd().env_remove("PLAKAR_PASSPHRASE").args(["at", "@peer", "ls", "-uuid"]).output().unwrap();
    assert!(String::from_utf8(ls.stdout).unwrap().contains(&id));
    env.cmd().env_remove("PLAKAR_PASSPHRASE").args(["at", "@peer", "check"]).assert().success();
    let out = env.path("out");
    env.cmd()
        .env_remove("PLAKAR_PASSPHRASE")
        .args(["at", "@peer", "restore", "-to", out.to_str().unwrap(), &id[..8]])
        .assert()
        .success();
    assert_same_tree(&data, &out);
    // A second snapshot with little new data: only that is copied.
    fs::write(data.join("new.txt"), "new").unwrap();
    env.backup(&data);
    env.cmd().env_remove("PLAKAR_PASSPHRASE").args(["at", "@peer", "sync", "from", &env.store()]).assert().failure();
    env.at(&["sync", "to", "@peer"]).assert().success().stdout(predicate::str::contains("1 snapshots synchronized"));
    // Into a store nobody created: says how to create it.
    let nowhere = env.path("nowhere").display().to_string();
    env.at(&["sync", "to", &nowhere])
        .assert()
        .code(66)
        .stderr(predicate::str::contains(format!("create one with: plakar at {nowhere} create")));
}

#[test]
fn ptar_archive_of_a_store_and_a_path() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    env.cmd().args(["ptar", "-o", "./export.ptar", "-k", &env.store()]).assert().success();
    env.cmd()
        .args(["ptar", "-o", "./export.ptar", "-k", &env.store()])
        .assert()
        .code(73)
        .stderr(predicate::str::contains("overwrite"));
    env.cmd().args(["at", "./export.ptar", "ls"]).assert().success().stdout(predicate::str::contains(&id[..8]));
    env.cmd().args(["at", "./export.ptar", "check"]).assert().success();
    let out = env.path("out");
    env.cmd().args(["at", "./export.ptar", "restore", "-to", out.to_str().unwrap(), &id[..8]]).assert().success();
    assert_same_tree(&data, &out);
    env.cmd()
        .args(["at", "./export.ptar", "backup", data.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("read-only"));
    // Straight from a path, unencrypted.
    env.cmd()
        .env_remove("PLAKAR_PASSPHRASE")
        .args(["ptar", "-plaintext", "-o", "p.ptar", data.to_str().unwrap()])
        .assert()
        .success();
    env.cmd().env_remove("PLAKAR_PASSPHRASE").args(["at", "p.ptar", "ls"]).assert().success();
}

#[test]
fn damaged_ptar_is_reported_not_misread() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.cmd().args(["ptar", "-o", "a.ptar", data.to_str().unwrap()]).assert().success();
    let p = env.path("a.ptar");
    let len = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 10).unwrap();
    env.cmd().args(["at", "a.ptar", "ls"]).assert().code(65).stderr(predicate::str::contains("truncated"));
    env.cmd().args(["at", "missing.ptar", "ls"]).assert().code(66);
    // A wrong passphrase for the source store leaves no archive behind.
    env.create();
    env.cmd().env("PLAKAR_PASSPHRASE", "wrong").args(["ptar", "-o", "b.ptar", "-k", &env.store()]).assert().code(77);
    assert!(!env.path("b.ptar").exists());
}

#[test]
fn sqlite_store_end_to_end_and_sync_from_fs() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let db = format!("sqlite://{}", env.path("store.db").display());
    env.cmd().args(["at", &db, "create"]).assert().success();
    env.cmd().args(["at", &db, "create"]).assert().code(73);
    env.cmd().args(["at", &db, "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", &db, "check"]).assert().success();
    let out = env.path("out");
    let ls = env.cmd().args(["at", &db, "ls"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string();
    env.cmd().args(["at", &db, "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);
    env.create();
    env.backup(&data);
    env.at(&["sync", "to", &db]).assert().success();
    env.cmd().args(["at", &db, "maintenance"]).assert().success();
    env.cmd().args(["at", &db, "check"]).assert().success();
    env.cmd().args(["at", &format!("sqlite://{}", env.path("nope.db").display()), "ls"]).assert().code(66);
}
