//! A three-node Garage (scripts/s3-cluster.sh, replication factor 3, quorum 2) that loses a
//! node in the middle of a backup: the backup completes, or fails with a clear message and
//! the next one completes; the restore is byte for byte; with the node back, check passes.
use crate::util::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The node killed: not node 1, whose S3 API plakar talks to.
const VICTIM: &str = "3";

/// Brings the victim back whatever happens to the test, so later tests find three nodes.
struct Revive<'a>(&'a S3Cluster);

impl Drop for Revive<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // No second panic while unwinding: that would abort the whole test binary.
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-cluster.sh"))
                .args(["start-node", VICTIM])
                .status();
        } else {
            self.0.script(&["start-node", VICTIM]);
        }
    }
}

#[test]
fn a_backup_survives_losing_one_node_of_three() {
    let Some(cluster) = s3_cluster() else { return };
    for n in ["1", "2", "3"] {
        cluster.script(&["start-node", n]);
    }
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..8 {
        fs::write(data.join(format!("part{i}.bin")), noise(6_000_000, 100 + i)).unwrap();
    }
    let loc = format!("s3://{}/{}/{}", cluster.endpoint, cluster.bucket, unique_bucket("node-loss"));
    env.cmd()
        .args(["store", "add", "c", &loc, "use_tls=false"])
        .args([format!("access_key={}", cluster.access_key), format!("secret_access_key={}", cluster.secret_key)])
        .assert()
        .success();
    env.cmd().args(["at", "@c", "create", "-packfile-mib", "2"]).assert().success();

    let revive = Revive(&cluster);
    let started = Instant::now();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .args(["at", "@c", "backup", data.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Early: most of the 48 MB goes up with two nodes of three.
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the backup ended before the node was killed: make it bigger");
    cluster.script(&["kill-node", VICTIM]);
    let out = child.wait_with_output().unwrap();
    eprintln!("backup with a node lost: {:?}, {}", started.elapsed(), out.status);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&cluster.endpoint), "a failure names the server: {err}");
        env.cmd().args(["at", "@c", "backup", data.to_str().unwrap()]).assert().success();
    }
    let out = env.path("out");
    let ls = env.cmd().args(["at", "@c", "ls"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).expect("a snapshot").to_string();
    env.cmd().args(["at", "@c", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    for i in 0..8 {
        let name = format!("part{i}.bin");
        assert!(fs::read(out.join(&name)).unwrap() == fs::read(data.join(&name)).unwrap(), "{name} differs");
    }
    drop(revive);
    env.cmd().args(["at", "@c", "check"]).assert().success();
}
