//! The local cache of remote stores (docs/CACHE.md): an open reads only what it has not
//! seen, never shows what the store no longer has, survives any damage to itself, and is
//! never what `check` verifies.
use crate::util::proxy::Proxy;
use crate::util::*;
use predicates::prelude::*;
use std::fs;
use std::path::Path;

fn add_s3(env: &Env, name: &str, endpoint: &str, bucket: &str, ak: &str, sk: &str) {
    env.cmd()
        .args(["store", "add", name, &format!("s3://{endpoint}/{bucket}")])
        .args([format!("access_key={ak}"), format!("secret_access_key={sk}"), "use_tls=false".into()])
        .assert()
        .success();
}

/// Requests of `method` under `dir/` of `bucket` in what went through the proxy.
fn requests(captured: &[u8], method: &str, bucket: &str, dir: &str) -> usize {
    let mark = format!("{method} /{bucket}/{dir}/");
    captured.windows(mark.len()).filter(|w| *w == mark.as_bytes()).count()
}

/// A backup as another machine makes it: its own cache.
fn small_backup(env: &Env, store: &str, dir: &Path, n: u32) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("counter"), n.to_string()).unwrap();
    env.cmd()
        .arg("-cachedir")
        .arg(env.path("writer-cache"))
        .args(["at", store, "backup", dir.to_str().unwrap()])
        .assert()
        .success();
}

#[test]
fn an_open_fetches_only_the_states_and_headers_it_has_not_seen() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let bucket = unique_bucket("cache");
    let proxy = Proxy::start(&ep);
    // Backups go straight to the server; only the reads under test cross the proxy.
    add_s3(&env, "near", &ep, &bucket, &ak, &sk);
    add_s3(&env, "far", &proxy.addr, &bucket, &ak, &sk);
    env.cmd().args(["at", "@near", "create"]).assert().success();
    let dir = env.path("data");
    for n in 0..6 {
        small_backup(&env, "@near", &dir, n);
    }
    let ls = |expect: usize| {
        let out = env.cmd().args(["at", "@far", "ls"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), expect);
        String::from_utf8(out.stdout).unwrap()
    };
    let first = ls(6);
    let cap = proxy.captured();
    let (states, packs) = (requests(&cap, "GET", &bucket, "states"), requests(&cap, "GET", &bucket, "packfiles"));
    assert_eq!(states, 6, "a cold open reads every state once");
    assert!(packs > 0);
    // Warm: nothing but listings.
    assert_eq!(ls(6), first);
    let cap = proxy.captured();
    assert_eq!(requests(&cap, "GET", &bucket, "states"), states, "a warm open read states again");
    assert_eq!(requests(&cap, "GET", &bucket, "packfiles"), packs, "a warm ls read headers again");
    // One new backup: one new state and one new header.
    small_backup(&env, "@near", &dir, 99);
    ls(7);
    let cap = proxy.captured();
    assert_eq!(requests(&cap, "GET", &bucket, "states"), states + 1);
    assert_eq!(requests(&cap, "GET", &bucket, "packfiles"), packs + 1);
}

#[test]
fn the_cache_never_shows_what_the_store_no_longer_has() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    add_s3(&env, "s", &ep, &unique_bucket("cachegone"), &ak, &sk);
    env.cmd().args(["at", "@s", "create"]).assert().success();
    let dir = env.path("data");
    sample_tree(&dir);
    for n in 0..3 {
        small_backup(&env, "@s", &dir, n);
    }
    let ids: Vec<String> = {
        let out = env.cmd().args(["at", "@s", "ls", "-uuid"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect()
    };
    // Another machine (its own cache) removes a snapshot and runs maintenance, which
    // merges every state into one and deletes the packfiles only the removed one used.
    let other = env.path("other-cache");
    let other_cmd = |args: &[&str]| {
        let mut c = env.cmd();
        c.arg("-cachedir").arg(&other).args(["at", "@s"]).args(args);
        c
    };
    other_cmd(&["rm", &ids[1][..8]]).assert().success();
    other_cmd(&["maintenance"]).assert().success();
    // This machine's cache still holds the old states and the removed snapshot's header.
    let out = env.cmd().args(["at", "@s", "ls", "-uuid"]).output().unwrap();
    let ls = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert_eq!(ls.lines().count(), 2, "{ls}");
    assert!(!ls.contains(&ids[1]), "a removed snapshot is listed from the cache:\n{ls}");
    env.cmd().args(["at", "@s", "cat", &format!("{}:/counter", &ids[1][..8])]).assert().code(predicate::ne(0));
    let out = env.path("out");
    env.cmd().args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &ids[0][..8]]).assert().success();
    assert_same_tree(&dir, &out);
    env.cmd().args(["at", "@s", "check"]).assert().success();
    // The cache itself kept only what the store lists: one merged state.
    let db = cache_file(&env.path("home/.cache/plakar/stores"));
    let conn = rusqlite::Connection::open(db).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM states", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1, "states maintenance deleted are still cached");
}

fn stdout_of(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn cache_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_damaged_or_planted_cache_is_read_around() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    add_s3(&env, "s", &ep, &unique_bucket("cachebad"), &ak, &sk);
    env.cmd().args(["at", "@s", "create"]).assert().success();
    let dir = env.path("data");
    sample_tree(&dir);
    env.cmd().args(["at", "@s", "backup", dir.to_str().unwrap()]).assert().success();
    fs::write(dir.join("hello.txt"), "changed\n").unwrap();
    env.cmd().args(["at", "@s", "backup", dir.to_str().unwrap()]).assert().success();
    let ls = stdout_of(&env, &["at", "@s", "ls"]);
    let db = cache_file(&env.path("home/.cache/plakar/stores"));
    // Every entry flipped: states, headers and trees all fail authentication.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for table in ["states", "blobs"] {
            let n = conn.execute(&format!("UPDATE {table} SET sealed = zeroblob(length(sealed))"), []).unwrap();
            assert!(n > 0, "nothing cached in {table}");
        }
    }
    assert_eq!(stdout_of(&env, &["at", "@s", "ls"]), ls);
    let out = env.path("out");
    let latest = stdout_of(&env, &["at", "@s", "ls", "-uuid"]).split_whitespace().nth(1).unwrap().to_string();
    env.cmd().args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &latest[..8]]).assert().success();
    assert_eq!(fs::read(out.join("hello.txt")).unwrap(), b"changed\n");
    // The good copies were written back over the bad ones.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let zero: i64 = conn
        .query_row("SELECT count(*) FROM states WHERE sealed = zeroblob(length(sealed))", [], |r| r.get(0))
        .unwrap();
    assert_eq!(zero, 0);
    drop(conn);
    // A file that is not a database at all, then one no one may open.
    for f in fs::read_dir(db.parent().unwrap()).unwrap() {
        fs::write(f.unwrap().path(), b"this is not a database").unwrap();
    }
    assert_eq!(stdout_of(&env, &["at", "@s", "ls"]), ls);
    // ...and started anew.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM states", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2, "the damaged cache was not started anew");
    drop(conn);
    let stores = env.path("home/.cache/plakar/stores");
    fs::remove_dir_all(&stores).unwrap();
    fs::write(&stores, b"a file where the directory should be").unwrap();
    assert_eq!(stdout_of(&env, &["at", "@s", "ls"]), ls);
}

#[test]
fn check_verifies_the_store_not_the_cache() {
    let Some(srv) = sftp_server() else { return };
    let env = Env::new();
    let (url, dir_on_server) = srv.url("cachecheck");
    env.cmd().args(["store", "add", "sf", &url]).args(srv.key_opts()).assert().success();
    env.cmd().args(["at", "@sf", "create"]).assert().success();
    let data = env.path("data");
    sample_tree(&data);
    env.cmd().args(["at", "@sf", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@sf", "ls"]).assert().success(); // the cache now holds the state
    let mut damaged = 0;
    for p in files_under(&dir_on_server.join("states")) {
        damaged += 1;
        let mut b = fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        fs::write(&p, b).unwrap();
    }
    assert_eq!(damaged, 1);
    // Commands that only read may go on from the cache's authenticated copy...
    env.cmd().args(["at", "@sf", "ls"]).assert().success();
    // ...but check, drill and maintenance answer for the store's own bytes.
    env.cmd().args(["at", "@sf", "check"]).assert().failure().stderr(predicate::str::contains("state"));
    env.cmd().args(["at", "@sf", "drill"]).assert().failure().stderr(predicate::str::contains("state"));
    env.cmd().args(["at", "@sf", "maintenance"]).assert().failure().stderr(predicate::str::contains("state"));
}

#[test]
fn cachedir_moves_the_cache() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    add_s3(&env, "s", &ep, &unique_bucket("cachedir"), &ak, &sk);
    env.cmd().args(["at", "@s", "create"]).assert().success();
    let moved = env.path("elsewhere");
    env.cmd().arg("-cachedir").arg(&moved).args(["at", "@s", "ls"]).assert().success();
    cache_file(&moved.join("stores"));
    assert!(!env.path("home/.cache/plakar/stores").exists());
}

#[test]
fn a_backup_finds_the_trees_its_parent_wrote_in_the_cache() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let bucket = unique_bucket("cachetrees");
    let proxy = Proxy::start(&ep);
    add_s3(&env, "far", &proxy.addr, &bucket, &ak, &sk);
    env.cmd().args(["at", "@far", "create"]).assert().success();
    let data = env.path("data");
    sample_tree(&data);
    // Small, so that everything sent stays within what the proxy captures.
    fs::remove_file(data.join("sub/deeper/big.bin")).unwrap();
    env.cmd().args(["at", "@far", "backup", data.to_str().unwrap()]).assert().success();
    let before = requests(&proxy.captured(), "GET", &bucket, "packfiles");
    // Unchanged: the parent's header and trees come from the cache the first backup filled.
    env.cmd().args(["at", "@far", "backup", data.to_str().unwrap()]).assert().success();
    assert_eq!(requests(&proxy.captured(), "GET", &bucket, "packfiles"), before, "trees were read from the store");
    env.cmd().args(["at", "@far", "check"]).assert().success();
}
