//! Every bad input gets a clear message and its own exit code, and loses nothing.
use crate::util::*;
use predicates::prelude::*;
use std::fs;

#[test]
fn wrong_or_empty_passphrase() {
    let env = Env::new();
    env.create();
    env.at(&["ls"])
        .env("PLAKAR_PASSPHRASE", "nope")
        .assert()
        .code(77)
        .stderr(predicate::str::contains("wrong passphrase"));
    let e2 = Env::new();
    e2.at(&["create"])
        .env("PLAKAR_PASSPHRASE", "")
        .assert()
        .code(77)
        .stderr(predicate::str::contains("empty passphrase"));
    assert!(!std::path::Path::new(&e2.store()).join("CONFIG").exists());
    // No passphrase at all, and no terminal to ask on: the same exit code everywhere.
    for args in [vec!["create"], vec!["ls"]] {
        let store = if args[0] == "create" { e2.store() } else { env.store() };
        e2.cmd()
            .env_remove("PLAKAR_PASSPHRASE")
            .arg("at")
            .arg(&store)
            .args(&args)
            .assert()
            .code(77)
            .stderr(predicate::str::contains("no passphrase: set PLAKAR_PASSPHRASE"));
    }
    e2.cmd().env_remove("PLAKAR_PASSPHRASE").args(["ptar", "-o", "x.ptar", "-k", &env.store()]).assert().code(77);
}

#[test]
fn not_a_store_and_other_version() {
    let env = Env::new();
    env.at(&["ls"]).assert().code(66).stderr(predicate::str::contains("create"));
    fs::create_dir_all(env.path("store")).unwrap();
    fs::write(env.path("store/CONFIG"), "garbage that is not a config").unwrap();
    env.at(&["ls"]).assert().code(66).stderr(predicate::str::contains("not a plakar store"));
    let e2 = Env::new();
    e2.create();
    let cfg = e2.path("store/CONFIG");
    let mut b = fs::read(&cfg).unwrap();
    b[8] = 2;
    fs::write(&cfg, b).unwrap();
    e2.at(&["ls"]).assert().code(78).stderr(predicate::str::contains("version 2"));
}

#[test]
fn create_on_existing_store_is_refused() {
    let env = Env::new();
    env.create();
    let before = fs::read(env.path("store/CONFIG")).unwrap();
    env.at(&["create"]).assert().code(73).stderr(predicate::str::contains("already exists"));
    assert_eq!(fs::read(env.path("store/CONFIG")).unwrap(), before);
}

#[test]
fn backup_of_missing_path() {
    let env = Env::new();
    env.create();
    env.at(&["backup", "/no/such/dir"]).assert().code(67).stderr(predicate::str::contains("/no/such/dir"));
    assert_eq!(env.stdout(&["ls"]), "");
}

#[test]
fn unknown_snapshot_and_bad_flags() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    env.at(&["restore", "-to", "x", "ffffffffff"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("no snapshot has prefix"));
    env.at(&["cat", "zz:/x"]).assert().code(64).stderr(predicate::str::contains("invalid snapshot prefix"));
    env.at(&["backup", "-nosuchflag"]).assert().code(2);
}

fn corrupt_one_byte_of_big_file(env: &Env) {
    // The largest packfile holds big.bin's chunks; flip a byte in its middle.
    let packs = packfiles(std::path::Path::new(&env.store()));
    let p = packs.iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let mut b = fs::read(p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    fs::write(p, b).unwrap();
}

#[test]
fn flipped_byte_is_found_and_restore_saves_the_rest() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    // Small packfiles keep big.bin apart from the small files.
    env.at(&["create", "-no-compression", "-packfile-mib", "1"]).assert().success();
    let id = env.backup(&data);
    corrupt_one_byte_of_big_file(&env);
    env.at(&["check"]).assert().code(65).stderr(
        predicate::str::contains(&id[..8])
            .and(predicate::str::contains("big.bin"))
            .and(predicate::str::contains("check failed")),
    );
    env.at(&["check", "-fast"]).assert().success();
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("big.bin"));
    assert!(!out.join("sub/deeper/big.bin").exists(), "a damaged file is not written");
    assert_eq!(fs::read_to_string(out.join("hello.txt")).unwrap(), "hello world\n");
    assert!(out.join("sub/passwd").exists());
    let leftovers: Vec<_> =
        walk(&out).into_iter().filter(|p| p.to_string_lossy().contains(".plakar-restore-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn truncated_packfile_is_reported() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    for p in packfiles(std::path::Path::new(&env.store())) {
        let len = fs::metadata(&p).unwrap().len();
        fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len / 3).unwrap();
    }
    env.at(&["check"]).assert().code(65).stderr(predicate::str::contains(&id[..8]));
}

#[test]
fn missing_packfile_is_found_by_fast_check() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.at(&["create", "-packfile-mib", "1"]).assert().success();
    env.backup(&data);
    let packs = packfiles(std::path::Path::new(&env.store()));
    let p = packs.iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    fs::remove_file(p).unwrap();
    env.at(&["check", "-fast"]).assert().code(65).stderr(predicate::str::contains("missing"));
}

#[test]
fn restore_over_existing_files_replaces_them_and_keeps_others() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    let out = env.path("out");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("hello.txt"), "stale").unwrap();
    fs::write(out.join("mine.txt"), "keep me").unwrap();
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]]).assert().success();
    assert_eq!(fs::read_to_string(out.join("hello.txt")).unwrap(), "hello world\n");
    assert_eq!(fs::read_to_string(out.join("mine.txt")).unwrap(), "keep me");
}

#[test]
fn restore_into_a_file_is_refused() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    fs::write(env.path("afile"), "x").unwrap();
    env.at(&["restore", "-to", env.path("afile").to_str().unwrap(), &id[..8]])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a directory"));
}

fn write_lock(env: &Env, hostname: &str, pid: u32, exclusive: bool) {
    let body = serde_json::json!({"version": 1, "hostname": hostname, "pid": pid,
        "time": chrono_now(), "exclusive": exclusive});
    fs::write(env.path("store/locks").join("ab".repeat(32)), body.to_string()).unwrap();
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn live_exclusive_lock_blocks_and_dead_local_one_does_not() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    write_lock(&env, "some-other-host", 1, true);
    env.at(&["backup", "-lock-timeout", "0", data.to_str().unwrap()])
        .assert()
        .code(75)
        .stderr(predicate::str::contains("some-other-host"));
    // A lock of a process of this very host (host id, boot, pid namespace) that is gone is
    // taken over at once; the hostname alone proves nothing (containers share one).
    for f in fs::read_dir(env.path("store/locks")).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }
    write_dead_local_lock(&env);
    env.at(&["backup", "-lock-timeout", "0", data.to_str().unwrap()]).assert().success();
    env.at(&["maintenance"]).assert().success();
}

#[test]
fn passwd_changes_or_adds_a_passphrase_without_rewriting_data() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    let packs_before = packfiles(std::path::Path::new(&env.store()));
    env.at(&["passwd"]).env("PLAKAR_PASSPHRASE", "wrong").env("PLAKAR_NEW_PASSPHRASE", "x").assert().code(77);
    env.at(&["passwd"]).env("PLAKAR_NEW_PASSPHRASE", "").assert().code(77);
    env.at(&["passwd"])
        .env("PLAKAR_NEW_PASSPHRASE", "second passphrase")
        .assert()
        .success()
        .stdout(predicate::str::contains("passphrase changed"));
    env.at(&["ls"]).assert().code(77);
    env.at(&["ls"]).env("PLAKAR_PASSPHRASE", "second passphrase").assert().success();
    // -add: both open it.
    env.at(&["passwd", "-add"])
        .env("PLAKAR_PASSPHRASE", "second passphrase")
        .env("PLAKAR_NEW_PASSPHRASE", "third")
        .assert()
        .success()
        .stdout(predicate::str::contains("any of 2 passphrases"));
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]]).env("PLAKAR_PASSPHRASE", "third").assert().success();
    assert_same_tree(&data, &out);
    env.at(&["check"]).env("PLAKAR_PASSPHRASE", "second passphrase").assert().success();
    assert_eq!(packs_before, packfiles(std::path::Path::new(&env.store())), "no data rewritten");
    // The passphrase never shows in the config or in messages.
    let cfg = std::fs::read_to_string(std::path::Path::new(&env.store()).join("CONFIG")).unwrap_or_default();
    assert!(!cfg.contains("third") && !cfg.contains("second passphrase"));
}

#[test]
fn s3_location_without_credentials_exits_77_or_bucket_exits_64_and_says_what_to_set() {
    // No server needed (port 9 is discard): the credentials chain finds nothing before any
    // request is sent (instance metadata is turned off, as it may answer on a cloud machine).
    let env = Env::new();
    env.cmd()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["at", "s3://127.0.0.1:9/bucket", "ls"])
        .assert()
        .code(77)
        .stderr(predicate::str::contains("access_key").and(predicate::str::contains("AWS_ACCESS_KEY_ID")));
    env.cmd()
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .args(["at", "s3://127.0.0.1:9", "ls"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("needs a bucket"));
}
