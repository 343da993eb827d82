//! `dup`: a snapshot copied under a new id, in the same store, under the store's lock.
use crate::util::*;
use predicates::prelude::*;
use std::fs;

fn ids(env: &Env) -> Vec<String> {
    env.stdout(&["ls", "-uuid"]).lines().map(|l| l.split_whitespace().nth(1).unwrap().to_string()).collect()
}

#[test]
fn dup_makes_a_restorable_snapshot_with_a_new_id() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    let packs_before = packfiles(&env.path("store")).len();
    let out = env.stdout(&["dup", &id[..8]]);
    let all = ids(&env);
    assert_eq!(all.len(), 2, "{all:?}");
    let new = all.iter().find(|i| **i != id).unwrap().clone();
    assert_eq!(out, format!("info: dup: {} duplicated as {}\n", &id[..8], &new[..8]));
    // Same content: the same files, and no file data stored again.
    assert!(packfiles(&env.path("store")).len() <= packs_before + 1);
    let out_dir = env.path("out");
    env.at(&["restore", "-to", out_dir.to_str().unwrap(), &new[..8]]).assert().success();
    assert_same_tree(&data, &out_dir);
    let (a, b) = (env.stdout(&["ls", "-recursive", &id[..8]]), env.stdout(&["ls", "-recursive", &new[..8]]));
    assert_eq!(a, b);
    env.at(&["check"]).assert().success().stdout(predicate::str::contains("check completed without errors"));
    assert_eq!(fs::read_dir(env.path("store/locks")).unwrap().count(), 0, "no lock left behind");
    // Removing the original leaves the copy whole, maintenance included.
    env.at(&["rm", &id[..8]]).assert().success();
    env.at(&["maintenance"]).assert().success();
    env.at(&["check", &new[..8]]).assert().success();
    let again = env.path("again");
    env.at(&["restore", "-to", again.to_str().unwrap(), &new[..8]]).assert().success();
    assert_same_tree(&data, &again);
}

#[test]
fn dup_of_several_snapshots_at_once() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let a = env.backup(&data);
    fs::write(data.join("new.txt"), "new\n").unwrap();
    let b = env.backup(&data);
    let out = env.stdout(&["dup", &a[..8], &b[..8]]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(ids(&env).len(), 4);
    env.at(&["check"]).assert().success();
}

#[test]
fn dup_waits_for_maintenance_and_refuses_bad_references() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    env.at(&["dup"]).assert().code(64).stderr(predicate::str::contains("SNAPSHOT"));
    env.at(&["dup", "fffffffff"]).assert().code(64).stderr(predicate::str::contains("no snapshot has prefix"));
    env.at(&["dup", "xyz"]).assert().code(64).stderr(predicate::str::contains("invalid snapshot prefix"));
    env.at(&["dup", &format!("{}:/etc", &id[..8])])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("whole snapshots"));
    // An exclusive lock (a maintenance elsewhere) holds a dup back, like any writer.
    let body = serde_json::json!({"version": 1, "hostname": "some-other-host", "pid": 1,
        "time": chrono::Utc::now().timestamp(), "exclusive": true});
    fs::write(env.path("store/locks").join("ab".repeat(32)), body.to_string()).unwrap();
    env.at(&["dup", "-lock-timeout", "0", &id[..8]])
        .assert()
        .code(75)
        .stderr(predicate::str::contains("some-other-host"));
    fs::remove_file(env.path("store/locks").join("ab".repeat(32))).unwrap();
    assert_eq!(ids(&env).len(), 1, "nothing was duplicated");
}
