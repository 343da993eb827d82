//! An encrypted store whose CONFIG someone swapped for a plaintext one must not receive
//! plaintext data: refused when a passphrase is given, and refused whenever this user has
//! seen the store (its location or its id) encrypted before.
use crate::util::*;
use predicates::prelude::*;
use std::fs;
use std::path::Path;

/// Every file of a store with its size: what "nothing was written" compares.
fn listing(store: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = walk(store)
        .into_iter()
        .map(|p| (p.strip_prefix(store).unwrap().display().to_string(), fs::metadata(&p).unwrap().len()))
        .collect();
    v.sort();
    v
}

/// What an attacker with write access to the store but no passphrase does: creates a
/// plaintext store elsewhere (on another machine: another HOME), copies its CONFIG over,
/// and moves the states aside so the owner's index does not point at unreadable data.
fn swap_in_plaintext_config(env: &Env, edit: impl Fn(String) -> String) {
    let other = env.path("attacker-store");
    env.cmd()
        .env("HOME", env.path("attacker-home"))
        .env_remove("PLAKAR_PASSPHRASE")
        .args(["at", other.to_str().unwrap(), "create", "-plaintext"])
        .assert()
        .success();
    let cfg = fs::read(other.join("CONFIG")).unwrap();
    let (head, json) = cfg.split_at(12);
    let mut swapped = head.to_vec();
    swapped.extend_from_slice(edit(String::from_utf8(json.to_vec()).unwrap()).as_bytes());
    let store = Path::new(&env.store()).to_path_buf();
    fs::write(store.join("CONFIG"), swapped).unwrap();
    fs::rename(store.join("states"), env.path("states-aside")).unwrap();
    fs::rename(other.join("states"), store.join("states")).unwrap();
}

fn repository_id(store: &Path) -> String {
    let cfg = fs::read(store.join("CONFIG")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cfg[12..]).unwrap();
    v["repository_id"].as_str().unwrap().to_string()
}

/// The owner's store, backed up once, then swapped.
fn owner_store_swapped(edit: impl Fn(String) -> String) -> (Env, std::path::PathBuf) {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    swap_in_plaintext_config(&env, edit);
    (env, data)
}

#[test]
fn swapped_plaintext_config_is_refused_with_a_passphrase_even_on_first_contact() {
    let (env, data) = owner_store_swapped(|j| j);
    let store = Path::new(&env.store()).to_path_buf();
    let before = listing(&store);
    // Another machine, which never saw the store: the passphrase alone gives it away.
    env.at(&["backup", data.to_str().unwrap()])
        .env("HOME", env.path("fresh-home"))
        .assert()
        .code(77)
        .stderr(predicate::str::contains("is not encrypted but a passphrase was given"))
        .stderr(predicate::str::contains("unset PLAKAR_PASSPHRASE"));
    // The owner's machine, with the passphrase as always.
    env.at(&["backup", data.to_str().unwrap()]).assert().code(77);
    // A keyfile instead of the environment.
    fs::write(env.path("key"), PASS).unwrap();
    env.cmd()
        .env_remove("PLAKAR_PASSPHRASE")
        .env("HOME", env.path("fresh-home"))
        .args(["-keyfile", env.path("key").to_str().unwrap(), "at", &env.store(), "backup", data.to_str().unwrap()])
        .assert()
        .code(77)
        .stderr(predicate::str::contains("drop -keyfile"));
    assert_eq!(listing(&store), before, "nothing was written");
}

#[test]
fn swapped_plaintext_config_is_refused_without_passphrase_when_seen_encrypted() {
    let (env, data) = owner_store_swapped(|j| j);
    let store = Path::new(&env.store()).to_path_buf();
    let before = listing(&store);
    for args in [vec!["backup", data.to_str().unwrap()], vec!["ls"]] {
        env.at(&args)
            .env_remove("PLAKAR_PASSPHRASE")
            .assert()
            .code(77)
            .stderr(predicate::str::contains("was encrypted when plakar last opened it"))
            .stderr(predicate::str::contains("known-stores"));
    }
    assert_eq!(listing(&store), before, "nothing was written");
}

#[test]
fn swapped_config_that_copies_the_store_id_is_refused_elsewhere_too() {
    // The attacker controls the whole CONFIG, id included: keeping the owner's id is
    // caught by the id, and a copy of the store at a location never seen is still caught.
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    let id = repository_id(Path::new(&env.store()));
    let other = env.path("attacker-store");
    env.cmd()
        .env("HOME", env.path("attacker-home"))
        .env_remove("PLAKAR_PASSPHRASE")
        .args(["at", other.to_str().unwrap(), "create", "-plaintext"])
        .assert()
        .success();
    let theirs = repository_id(&other);
    let cfg = String::from_utf8(fs::read(other.join("CONFIG")).unwrap()[12..].to_vec()).unwrap();
    let mut swapped = fs::read(other.join("CONFIG")).unwrap()[..12].to_vec();
    swapped.extend_from_slice(cfg.replace(&theirs, &id).as_bytes());
    fs::write(other.join("CONFIG"), swapped).unwrap();
    env.cmd()
        .env_remove("PLAKAR_PASSPHRASE")
        .args(["at", other.to_str().unwrap(), "backup", data.to_str().unwrap()])
        .assert()
        .code(77)
        .stderr(predicate::str::contains(&id));
}

#[test]
fn genuine_plaintext_store_keeps_working_with_a_global_passphrase() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    // Created here, with PLAKAR_PASSPHRASE exported as many users have it.
    env.at(&["create", "-plaintext"]).assert().success();
    env.backup(&data);
    env.at(&["ls"]).env_remove("PLAKAR_PASSPHRASE").assert().success();
    env.at(&["check"]).assert().success();
    // On a machine that never saw it: refused once with the passphrase set, accepted
    // (and remembered as plaintext) when run without it, then fine either way.
    let fresh = env.path("fresh-home");
    env.at(&["ls"]).env("HOME", &fresh).assert().code(77);
    env.at(&["ls"]).env("HOME", &fresh).env_remove("PLAKAR_PASSPHRASE").assert().success();
    env.at(&["ls"]).env("HOME", &fresh).assert().success();
}

#[test]
fn converting_on_purpose_works_after_forgetting_the_store() {
    let (env, data) = owner_store_swapped(|j| j);
    env.at(&["ls"]).env_remove("PLAKAR_PASSPHRASE").assert().code(77);
    // The documented way out: remove the store's lines from known-stores.
    let known = env.path("home/.config/plakar/known-stores");
    let text = fs::read_to_string(&known).unwrap();
    let kept: String = text.lines().filter(|l| !l.contains(&env.store())).map(|l| format!("{l}\n")).collect();
    fs::write(&known, kept).unwrap();
    env.at(&["backup", data.to_str().unwrap()]).env_remove("PLAKAR_PASSPHRASE").assert().success();
    env.at(&["ls"]).assert().success();
}

#[test]
fn swapped_sync_peer_is_refused() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    // A plaintext local store, so that runs without a passphrase get as far as the peer.
    env.at(&["create", "-plaintext"]).assert().success();
    env.backup(&data);
    let peer = Env::new();
    peer.cmd().env("HOME", env.path("home")).args(["at", &peer.store(), "create"]).assert().success();
    swap_in_plaintext_config(&peer, |j| j);
    let before = listing(Path::new(&peer.store()));
    env.at(&["sync", "to", &peer.store()])
        .assert()
        .code(77)
        .stderr(predicate::str::contains("its CONFIG may have been replaced"));
    env.at(&["sync", "to", &peer.store()])
        .env_remove("PLAKAR_PASSPHRASE")
        .assert()
        .code(77)
        .stderr(predicate::str::contains("was encrypted when plakar last opened it"));
    assert_eq!(listing(Path::new(&peer.store())), before, "nothing was written");
}
