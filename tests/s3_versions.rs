//! A store in a versioned bucket (issue 15, failure 8): `maintenance -purge-versions`
//! deletes the old versions and delete markers of the store's own objects, never a current
//! object and never another key of the bucket; stores that keep no versions refuse it.
use crate::s3_servers::{add, snapshot};
use crate::util::*;
use predicates::prelude::*;
use std::fs;

fn moto_script(args: &[&str]) -> String {
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto-server.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "moto-server.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// (key, current|old|marker) of every version in the bucket.
fn versions(bucket: &str) -> Vec<(String, String)> {
    let text = moto_script(&["versions", bucket]);
    text.lines().filter_map(|l| l.rsplit_once(' ')).map(|(k, s)| (k.to_string(), s.to_string())).collect()
}

#[test]
fn purge_versions_leaves_only_current_objects_of_the_store() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let bucket = unique_bucket("purge");
    moto_script(&["versioned", &bucket]);
    // A key of the bucket outside the store, with an old version: never touched.
    moto_script(&["objects", &bucket, "kloset-not/other.txt"]);
    moto_script(&["objects", &bucket, "kloset-not/other.txt"]);
    add(&env, &srv, "store", "v", &format!("s3://{}/{bucket}/kloset", srv.endpoint), &[]);
    env.cmd().args(["at", "@v", "create"]).assert().success();
    let data = env.path("data");
    sample_tree(&data);
    env.cmd().args(["at", "@v", "backup", data.to_str().unwrap()]).assert().success();
    let first = snapshot(&env, "@v");
    fs::write(data.join("big.txt"), noise(300_000, 7)).unwrap();
    env.cmd().args(["at", "@v", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@v", "rm", &first[..8]]).assert().success();
    env.cmd().args(["at", "@v", "maintenance"]).assert().success();
    let before = versions(&bucket);
    let stale = |v: &[(String, String)]| v.iter().filter(|(k, s)| k.starts_with("kloset/") && s != "current").count();
    assert!(stale(&before) > 0, "rm and maintenance left no old version to purge: {before:?}");

    env.cmd()
        .args(["at", "@v", "maintenance", "-purge-versions"])
        .assert()
        .success()
        .stdout(predicate::str::contains("old versions and"));
    let after = versions(&bucket);
    assert_eq!(stale(&after), 0, "{after:?}");
    let current = |v: &[(String, String)]| {
        let mut c: Vec<String> =
            v.iter().filter(|(k, s)| k.starts_with("kloset/") && s == "current").map(|(k, _)| k.clone()).collect();
        c.sort();
        c
    };
    let mut kept = current(&before);
    kept.retain(|k| !k.starts_with("kloset/locks/"));
    assert_eq!(current(&after), kept, "a current object was deleted");
    let other: Vec<_> = after.iter().filter(|(k, _)| k == "kloset-not/other.txt").collect();
    assert_eq!(other.len(), 2, "a key outside the store was touched: {after:?}");

    env.cmd().args(["at", "@v", "check"]).assert().success();
    let out = env.path("out");
    let id = snapshot(&env, "@v");
    env.cmd().args(["at", "@v", "restore", "-to", out.to_str().unwrap(), &id[..8]]).assert().success();
    assert_eq!(fs::read(out.join("big.txt")).unwrap(), fs::read(data.join("big.txt")).unwrap());
}

#[test]
fn purge_versions_is_refused_where_no_versions_are_kept() {
    let env = Env::new();
    env.create();
    env.at(&["maintenance", "-purge-versions"]).assert().code(64).stderr(
        predicate::str::contains("keeps no old versions").and(predicate::str::contains("without -purge-versions")),
    );
}
