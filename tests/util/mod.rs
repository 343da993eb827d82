//! Helpers: a fresh temp dir per test, the real binary, sample trees.
#![allow(dead_code)]

pub mod flaky;
pub mod proxy;
pub mod server;

use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const PASS: &str = "correct horse battery staple";

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn store(&self) -> String {
        self.path("store").display().to_string()
    }
    /// The binary, with a private HOME and the test passphrase.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("plakar").expect("binary");
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("PLAKAR_PASSPHRASE", PASS);
        c
    }
    /// The binary as `cmd` sets it up, for a process the test does not wait for at once.
    pub fn spawn_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("PLAKAR_PASSPHRASE", PASS);
        c
    }
    /// `plakar at STORE args...`
    pub fn at(&self, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("at").arg(self.store()).args(args);
        c
    }
    pub fn create(&self) {
        self.at(&["create"]).assert().success();
    }
    /// Backs up `src` and returns the full snapshot id.
    pub fn backup(&self, src: &Path) -> String {
        self.at(&["backup", src.to_str().unwrap()]).assert().success();
        self.latest()
    }
    pub fn latest(&self) -> String {
        let out = self.at(&["ls", "-uuid"]).output().unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        s.lines().next().expect("a snapshot").split_whitespace().nth(1).unwrap().to_string()
    }
    pub fn stdout(&self, args: &[&str]) -> String {
        let out = self.at(args).output().unwrap();
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A small tree with every kind of file we support.
pub fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    fs::write(root.join("empty"), "").unwrap();
    fs::write(root.join("sub/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    fs::write(root.join("sub/deeper/big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("link")).unwrap();
    fs::hard_link(root.join("hello.txt"), root.join("hardlink")).unwrap();
    fs::set_permissions(root.join("sub/passwd"), fs::Permissions::from_mode(0o600)).unwrap();
    use std::os::unix::ffi::OsStrExt;
    fs::write(root.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9")), "non-utf8 name").unwrap();
}

/// Compares two trees: kinds, contents, link targets, modes and mtimes of files.
pub fn assert_same_tree(a: &Path, b: &Path) {
    compare_trees(a, b, true)
}

/// Same, but symlinks' own mtimes may differ: SFTP cannot set them (no lutimes request).
pub fn assert_same_tree_but_link_mtimes(a: &Path, b: &Path) {
    compare_trees(a, b, false)
}

fn compare_trees(a: &Path, b: &Path, link_mtimes: bool) {
    let out = std::process::Command::new("diff").arg("-r").arg("--no-dereference").arg(a).arg(b).output().unwrap();
    // diff cannot compare special files: one of the same kind on both sides is alike (its
    // mode, and so its kind, is compared below).
    let same_special = |l: &&str| {
        ["fifo", "character special file", "block special file", "socket"].iter().any(|k| {
            let kind = format!(" is a {k}");
            l.starts_with("File ") && l.ends_with(&kind) && l.contains(&format!("{kind} while file "))
        })
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let differ: Vec<&str> = stdout.lines().filter(|l| !same_special(l)).collect();
    assert!(
        out.status.success() || differ.is_empty() && out.status.code() == Some(1),
        "trees differ:\n{}",
        differ.join("\n")
    );
    for e in walk(a) {
        let rel = e.strip_prefix(a).unwrap();
        let (ma, mb) = (fs::symlink_metadata(&e).unwrap(), fs::symlink_metadata(b.join(rel)).unwrap());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(ma.mode(), mb.mode(), "mode of {}", rel.display());
        if !ma.is_dir() && (link_mtimes || !ma.is_symlink()) {
            assert_eq!(ma.mtime(), mb.mtime(), "mtime of {}", rel.display());
        }
    }
}

pub fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if fs::symlink_metadata(&e).unwrap().is_dir() {
            out.extend(walk(&e));
        }
        out.push(e);
    }
    out
}

/// Every packfile of a fs store.
pub fn packfiles(store: &Path) -> Vec<PathBuf> {
    walk(&store.join("packfiles")).into_iter().filter(|p| p.is_file()).collect()
}

/// The S3 test server from scripts/s3-server.sh, as (endpoint, access key, secret).
/// Missing: a failure when PLAKAR_REQUIRE_SERVERS is set (the test command sets it),
/// otherwise None so `cargo test` alone still runs the rest.
pub fn s3_server() -> Option<(String, String, String)> {
    let v = server_env("S3", "scripts/s3-server.sh", &["S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"])?;
    Some((v[0].clone(), v[1].clone(), v[2].clone()))
}

/// One of the S3 implementations the tests run against: Garage (scripts/s3-server.sh), moto
/// (scripts/moto-server.sh, IAM enforced) and `rclone serve s3` (scripts/rclone-s3.sh).
#[derive(Clone, Debug)]
pub struct S3Server {
    pub name: &'static str,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Server {
    /// Prints why a case is skipped on this server (a server bug that cannot be worked
    /// around, documented in the README's table): never a silent pass.
    pub fn skip(&self, case: &str, why: &str) {
        eprintln!("SKIPPED on {}: {case}: {why}", self.name);
    }
}

fn named(name: &'static str, v: Vec<String>) -> S3Server {
    S3Server { name, endpoint: v[0].clone(), access_key: v[1].clone(), secret_key: v[2].clone() }
}

pub fn garage() -> Option<S3Server> {
    s3_server().map(|(e, a, s)| named("garage", vec![e, a, s]))
}

/// moto's server: like `s3_server`, missing is a failure when PLAKAR_REQUIRE_SERVERS is set.
pub fn moto() -> Option<S3Server> {
    let v = server_env(
        "moto S3",
        "scripts/moto-server.sh",
        &["MOTO_S3_ENDPOINT", "MOTO_S3_ACCESS_KEY", "MOTO_S3_SECRET_KEY"],
    )?;
    Some(named("moto", v))
}

/// moto's second instance, for web identity alone (see scripts/moto-server.sh): like `moto`.
pub fn moto_sts() -> Option<S3Server> {
    let v = server_env(
        "moto STS",
        "scripts/moto-server.sh",
        &["MOTO_STS_ENDPOINT", "MOTO_STS_ACCESS_KEY", "MOTO_STS_SECRET_KEY"],
    )?;
    Some(named("moto-sts", v))
}

/// Runs `scripts/NAME ARGS` (a server script's helper) and returns what it printed.
pub fn script(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `rclone serve s3`: like `s3_server`, missing is a failure when PLAKAR_REQUIRE_SERVERS is set.
pub fn rclone() -> Option<S3Server> {
    let v = server_env(
        "rclone S3",
        "scripts/rclone-s3.sh",
        &["RCLONE_S3_ENDPOINT", "RCLONE_S3_ACCESS_KEY", "RCLONE_S3_SECRET_KEY"],
    )?;
    Some(named("rclone", v))
}

/// Every S3 server that is up (each missing one a failure under PLAKAR_REQUIRE_SERVERS).
pub fn s3_servers() -> Vec<S3Server> {
    [garage(), moto(), rclone()].into_iter().flatten().collect()
}

/// The TLS front of scripts/s3-tls.sh: its endpoint, the CA that signed its certificate, and
/// a CA that did not.
pub struct S3Tls {
    pub endpoint: String,
    pub ca: String,
    pub other_ca: String,
}

/// Like `s3_server`: missing is a failure when PLAKAR_REQUIRE_SERVERS is set, else None.
pub fn s3_tls() -> Option<S3Tls> {
    let v = server_env("S3 TLS", "scripts/s3-tls.sh", &["S3_TLS_ENDPOINT", "S3_TLS_CA", "S3_TLS_OTHER_CA"])?;
    Some(S3Tls { endpoint: v[0].clone(), ca: v[1].clone(), other_ca: v[2].clone() })
}

/// The three-node Garage of scripts/s3-cluster.sh: node 1's endpoint, key, secret, bucket.
pub struct S3Cluster {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
}

impl S3Cluster {
    /// Runs `scripts/s3-cluster.sh ARGS` (kill-node N, start-node N).
    pub fn script(&self, args: &[&str]) {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-cluster.sh"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "s3-cluster.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

pub fn s3_cluster() -> Option<S3Cluster> {
    let v = server_env(
        "S3 cluster",
        "scripts/s3-cluster.sh",
        &["S3_CLUSTER_ENDPOINT", "S3_CLUSTER_ACCESS_KEY", "S3_CLUSTER_SECRET_KEY", "S3_CLUSTER_BUCKET"],
    )?;
    Some(S3Cluster { endpoint: v[0].clone(), access_key: v[1].clone(), secret_key: v[2].clone(), bucket: v[3].clone() })
}

/// The variables a server script exported, or None (a failure under CI) when one is missing.
fn server_env(what: &str, script: &str, vars: &[&str]) -> Option<Vec<String>> {
    let got: Vec<Option<String>> = vars.iter().map(|k| std::env::var(k).ok().filter(|v| !v.is_empty())).collect();
    if got.iter().all(Option::is_some) {
        return Some(got.into_iter().flatten().collect());
    }
    if std::env::var_os("PLAKAR_REQUIRE_SERVERS").is_some() || std::env::var_os("CI").is_some() {
        panic!("no {what} test server: run `eval \"$({script} start)\"` (scripts/test.sh does)");
    }
    eprintln!("{what} server not configured ({}...): skipping", vars[0]);
    None
}

/// The sshd from scripts/sftp-server.sh: a key-authenticated user and a password one.
pub struct SftpServer {
    pub port: String,
    pub user: String,
    pub identity: String,
    pub known_hosts: String,
    /// A directory the key user may write, on this machine.
    pub root: PathBuf,
    pub pw_user: String,
    pub pw: String,
    /// A directory the password user may write.
    pub pw_root: PathBuf,
}

impl SftpServer {
    /// `sftp://` URL of a fresh directory under `root`.
    pub fn url(&self, tag: &str) -> (String, PathBuf) {
        let dir = self.root.join(format!("{tag}-{:x}", rand_u64()));
        (format!("sftp://{}@127.0.0.1:{}{}", self.user, self.port, dir.display()), dir)
    }
    /// Options that let the key user in.
    pub fn key_opts(&self) -> Vec<String> {
        vec![format!("identity={}", self.identity), format!("known_hosts={}", self.known_hosts)]
    }
}

pub fn sftp_server() -> Option<SftpServer> {
    let v = server_env(
        "SFTP",
        "scripts/sftp-server.sh",
        &[
            "SFTP_PORT",
            "SFTP_USER",
            "SFTP_IDENTITY",
            "SFTP_KNOWN_HOSTS",
            "SFTP_ROOT",
            "SFTP_PASSWORD_USER",
            "SFTP_PASSWORD",
            "SFTP_PASSWORD_ROOT",
        ],
    )?;
    Some(SftpServer {
        port: v[0].clone(),
        user: v[1].clone(),
        identity: v[2].clone(),
        known_hosts: v[3].clone(),
        root: v[4].clone().into(),
        pw_user: v[5].clone(),
        pw: v[6].clone(),
        pw_root: v[7].clone().into(),
    })
}

/// The FTP test server from scripts/ftp-server.sh.
pub struct FtpServer {
    /// host:port
    pub endpoint: String,
    pub user: String,
    pub password: String,
    /// The user's home directory on this machine: what the server shows as `/`.
    pub home: PathBuf,
}

/// Like `s3_server`: missing is a failure when PLAKAR_REQUIRE_SERVERS is set, else None.
pub fn ftp_server() -> Option<FtpServer> {
    let v = server_env("FTP", "scripts/ftp-server.sh", &["FTP_ENDPOINT", "FTP_USER", "FTP_PASSWORD", "FTP_HOME"])?;
    Some(FtpServer { endpoint: v[0].clone(), user: v[1].clone(), password: v[2].clone(), home: PathBuf::from(&v[3]) })
}

/// A bucket name no other test uses.
pub fn unique_bucket(tag: &str) -> String {
    let n: u64 = rand_u64();
    format!("t-{tag}-{n:x}")
}

pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}

/// `n` bytes of seeded xorshift noise: incompressible, reproducible.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A small tmpfs mounted (as root) at `dir`, to play a full disk; unmounted on drop.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        assert!(st.is_ok_and(|s| s.success()), "cannot mount a tmpfs at {} (the test needs root)", dir.display());
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Writes into the store of `env` an exclusive lock held by a process of this very host
/// (its host id, boot and pid namespace) that no longer runs: plakar takes it over at once.
pub fn write_dead_local_lock(env: &Env) {
    let host_id = fs::read_to_string(env.path("home/.config/plakar/host-id")).unwrap();
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let pidns = fs::read_link("/proc/self/ns/pid").unwrap().display().to_string();
    let body = serde_json::json!({"version": 2, "hostname": "here", "pid": 4_000_000, "time": 0,
        "exclusive": true, "holder": {"hostname": "here", "host_id": host_id.trim(), "boot_id": boot_id.trim(),
        "pidns": pidns, "pid": 4_000_000}, "seq": 0});
    fs::write(env.path("store/locks").join(format!("4c{}", "ab".repeat(31))), body.to_string()).unwrap();
}
