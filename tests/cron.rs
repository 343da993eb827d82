//! Runs as cron makes them: no terminal. The output is pinned by golden files
//! (tests/golden/cron/*.txt; ids, durations, rates and paths normalized; regenerate with
//! UPDATE_GOLDEN=1), and runs that meet a lock wait for it, within -lock-timeout.
use crate::util::*;
use predicates::prelude::*;
use regex::Regex;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn normalize(env: &Env, s: &str) -> String {
    let tmp = env.dir.path().display().to_string();
    let s = s.replace(&tmp, "<tmp>");
    let host = plakar::kloset::hostname();
    let s = s.replace(&format!(" on {host} "), " on <host> ");
    let rules = [
        (r"\b[0-9a-f]{64}\b", "<ID>"),
        (r"\b[0-9a-f]{8}\b", "<id>"),
        (r"plakar-drill-[0-9a-f-]+", "plakar-drill-<x>"),
        (r"\b\d+(\.\d+)? (B|KiB|MiB|GiB)/s\b", "<rate>"),
        (r"\b(\d+m\d+s|\d+\.\d+s|\d+ms)\b", "<dur>"),
        // bytes_stored of a second backup depends on whether /tmp's mtime moved meanwhile
        // (ancestors are stored as tree nodes), which other tests running at once decide.
        (r#""(duration_ms|throughput_bytes_per_sec|bytes_stored)":\d+"#, r#""$1":0"#),
        (r#""started":"[^"]+""#, r#""started":"<time>""#),
        (r#""seed":\d+"#, r#""seed":0"#),
        (r"pid \d+", "pid <pid>"),
    ];
    let mut s = s;
    for (re, to) in rules {
        s = Regex::new(re).unwrap().replace_all(&s, to).into_owned();
    }
    s
}

/// Runs plakar with these arguments and compares its exit code, stdout and stderr with
/// tests/golden/cron/NAME.txt.
fn golden(env: &Env, name: &str, args: &[&str]) {
    golden_with(env, name, &[], args)
}

/// `golden` with global flags (before `at`).
fn golden_with(env: &Env, name: &str, globals: &[&str], args: &[&str]) {
    fs::create_dir_all(env.path("tmp")).unwrap();
    let out =
        env.cmd().args(globals).arg("at").arg(env.store()).args(args).env("TMPDIR", env.path("tmp")).output().unwrap();
    let shown: Vec<String> = globals.iter().chain(&["at", "<store>"]).chain(args).map(|a| normalize(env, a)).collect();
    let actual = format!(
        "$ plakar {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        shown.join(" "),
        out.status.code().unwrap_or(-1),
        normalize(env, &String::from_utf8_lossy(&out.stdout)),
        normalize(env, &String::from_utf8_lossy(&out.stderr)),
    );
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cron").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &actual).unwrap();
        return;
    }
    let want = fs::read_to_string(&p).unwrap_or_else(|_| panic!("missing {}; run with UPDATE_GOLDEN=1", p.display()));
    assert_eq!(want, actual, "the cron output of {name} changed (UPDATE_GOLDEN=1 to accept)");
}

fn damage_big_file(env: &Env) {
    let packs = packfiles(std::path::Path::new(&env.store()));
    let p = packs.iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let mut b = fs::read(p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    fs::write(p, b).unwrap();
}

#[test]
fn cron_output_of_a_clean_store() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.at(&["create", "-no-compression", "-packfile-mib", "1"]).assert().success();
    golden(&env, "backup", &["backup", data.to_str().unwrap()]);
    golden_with(&env, "backup-json", &["-json"], &["backup", data.to_str().unwrap()]);
    golden(&env, "drill", &["drill"]);
    golden(&env, "drill-json", &["drill", "-json", "-sample", "50", "-seed", "7"]);
    golden(&env, "check", &["check"]);
}

#[test]
fn cron_output_of_a_damaged_store() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.at(&["create", "-no-compression", "-packfile-mib", "1"]).assert().success();
    env.backup(&data);
    damage_big_file(&env);
    golden(&env, "drill-damaged", &["drill"]);
    golden(&env, "drill-damaged-json", &["drill", "-json"]);
    golden(&env, "check-damaged", &["check"]);
    let out = env.path("out");
    golden(&env, "restore-damaged", &["restore", "-to", out.to_str().unwrap()]);
}

fn write_lock(env: &Env, hostname: &str, pid: u32, exclusive: bool, age: i64) -> PathBuf {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let body = serde_json::json!({"version": 1, "hostname": hostname, "pid": pid,
        "time": now - age, "exclusive": exclusive});
    let p = env.path("store/locks").join("cd".repeat(32));
    fs::write(&p, body.to_string()).unwrap();
    p
}

#[test]
fn a_run_that_meets_a_lock_waits_within_the_timeout() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    // Maintenance elsewhere holds the store: the backup waits, then gives up, bounded.
    write_lock(&env, "some-other-host", 1, true, 0);
    let t = Instant::now();
    golden(&env, "lock-timeout", &["backup", "-lock-timeout", "1s", data.to_str().unwrap()]);
    assert!(t.elapsed() >= Duration::from_secs(1), "it waited");
    env.at(&["drill", "-lock-timeout", "0"]).assert().code(75);
    assert!(t.elapsed() < Duration::from_secs(30));
    // Released while the backup waits: it goes on.
    let lock = write_lock(&env, "some-other-host", 1, true, 0);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        fs::remove_file(lock).unwrap();
    });
    let t = Instant::now();
    env.at(&["backup", "-lock-timeout", "60s", data.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicate::str::contains("locked by maintenance on some-other-host (pid 1); waiting up to 60s"))
        .stdout(predicate::str::contains("backup completed without errors"));
    releaser.join().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(1400) && t.elapsed() < Duration::from_secs(30));
    // A backup's shared lock does not hold back a drill or another backup.
    write_lock(&env, "some-other-host", 1, false, 0);
    env.at(&["backup", "-lock-timeout", "0", data.to_str().unwrap()]).assert().success();
    env.at(&["maintenance", "-lock-timeout", "0"]).assert().code(75);
}

#[test]
fn stale_locks_do_not_hold_a_run_back() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    // Left by a process of this very host (its host id, boot and pid namespace) that is gone:
    // taken over at once.
    write_dead_local_lock(&env);
    env.at(&["drill", "-lock-timeout", "0"]).env("TMPDIR", env.path("")).assert().success();
    // From another host, however old its time says it is: respected until this machine has
    // watched it unchanged for 10 minutes, which runs remember between them.
    write_lock(&env, "some-other-host", 1, true, 3600);
    env.at(&["maintenance", "-lock-timeout", "0"])
        .assert()
        .code(75)
        .stderr(predicate::str::contains("watched unchanged for 10 minutes"));
    let mem_dir = env.path("home/.cache/plakar/locks");
    let mem = fs::read_dir(&mem_dir).unwrap().next().unwrap().unwrap().path();
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&mem).unwrap()).unwrap();
    for (_, seen) in m["seen"].as_object_mut().unwrap() {
        let since = seen[1].as_u64().unwrap();
        seen[1] = serde_json::json!(since.saturating_sub(11 * 60 * 1000));
    }
    fs::write(&mem, m.to_string()).unwrap();
    env.at(&["maintenance", "-lock-timeout", "0"]).assert().success();
    env.at(&["backup", "-lock-timeout", "0", data.to_str().unwrap()]).assert().success();
    let left: Vec<String> = fs::read_dir(env.path("store/locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("46"))
        .collect();
    assert!(left.is_empty(), "stale locks are removed (fences stay): {left:?}");
}
