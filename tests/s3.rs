//! Against real S3 servers: Garage (scripts/s3-server.sh), and for the suites and the CLI
//! round trips also moto (scripts/moto-server.sh) and `rclone serve s3` (scripts/rclone-s3.sh).
use crate::util::*;
use plakar::connectors::options::Options as Section;
use plakar::connectors::s3::{S3Config, S3Store};
use predicates::prelude::*;
use std::fs;

fn opts(ak: &str, sk: &str) -> Section {
    let mut o = Section::new();
    o.insert("access_key".into(), ak.into());
    o.insert("secret_access_key".into(), sk.into());
    o.insert("use_tls".into(), "false".into());
    o
}

/// Runs `f` on every S3 server that is up, each to the end, and fails naming the servers
/// it failed on.
pub fn on_each_server(f: impl Fn(&S3Server)) {
    let mut failed = vec![];
    for srv in s3_servers() {
        eprintln!("== on {}", srv.name);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&srv))).is_err() {
            failed.push(srv.name);
        }
    }
    assert!(failed.is_empty(), "failed on {failed:?} (see the panics above)");
}

#[test]
fn s3_store_conformance() {
    on_each_server(store_conformance);
}

fn store_conformance(srv: &S3Server) {
    let (ep, ak, sk) = (&srv.endpoint, &srv.access_key, &srv.secret_key);
    let cfg = S3Config::parse(&format!("{ep}/{}/some/prefix", unique_bucket("conf")), &opts(ak, sk)).unwrap();
    let store = S3Store::new(cfg).unwrap();
    crate::conformance::suite(&store);
}

#[test]
fn s3_importer_and_exporter_conformance() {
    on_each_server(io_conformance);
}

fn io_conformance(srv: &S3Server) {
    use plakar::connectors::s3::{S3Exporter, S3Importer};
    let (ep, ak, sk) = (&srv.endpoint, &srv.access_key, &srv.secret_key);
    let cfg = S3Config::parse(&format!("{ep}/{}/under/prefix", unique_bucket("io")), &opts(ak, sk)).unwrap();
    let exp = S3Exporter::new(cfg.clone()).unwrap();
    let imp = S3Importer::new(cfg).unwrap();
    let caps = crate::conformance::Caps { symlinks: false, metadata: false, raw_names: false };
    crate::conformance::io_suite(&exp, &imp, caps);
}

/// Configures @NAME of `kind` (store, source, destination) for the test server.
fn add(env: &Env, kind: &str, name: &str, location: &str, ak: &str, sk: &str) {
    env.cmd()
        .args([
            kind,
            "add",
            name,
            location,
            &format!("access_key={ak}"),
            &format!("secret_access_key={sk}"),
            "use_tls=false",
        ])
        .assert()
        .success();
}

#[test]
fn backup_to_s3_restore_to_bucket_and_back_up_the_bucket() {
    on_each_server(backup_to_s3_restore_to_bucket_and_back_up_the_bucket_on);
}

fn backup_to_s3_restore_to_bucket_and_back_up_the_bucket_on(srv: &S3Server) {
    let (ep, ak, sk) = (srv.endpoint.as_str(), srv.access_key.as_str(), srv.secret_key.as_str());
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let store_bucket = unique_bucket("store");
    let data_bucket = unique_bucket("data");
    add(&env, "store", "s3store", &format!("s3://{ep}/{store_bucket}/kloset"), ak, sk);
    add(&env, "destination", "dst", &format!("s3://{ep}/{data_bucket}"), ak, sk);
    add(&env, "source", "src", &format!("s3://{ep}/{data_bucket}"), ak, sk);
    env.cmd().args(["at", "@s3store", "create"]).assert().success();
    env.cmd().args(["at", "@s3store", "create"]).assert().code(73);
    env.cmd().args(["at", "@s3store", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s3store", "check"]).assert().success();
    let ls = env.cmd().args(["at", "@s3store", "ls"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string();
    let out = env.path("out");
    env.cmd().args(["at", "@s3store", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);
    // Into a bucket, then that bucket backed up into a local store. A bucket holds no
    // symlink: the one in the tree is said as a note, never dropped in silence.
    env.cmd()
        .args(["at", "@s3store", "restore", "-to", "@dst", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("without errors but with 1 note"))
        .stderr(predicate::str::contains("link: symbolic link not restored"));
    env.create();
    env.at(&["backup", "@src"]).assert().success();
    let id2 = env.latest();
    let out2 = env.path("out2");
    env.at(&["restore", "-to", out2.to_str().unwrap(), &id2[..8]]).assert().success();
    assert_eq!(fs::read(out2.join("sub/deeper/big.bin")).unwrap(), fs::read(data.join("sub/deeper/big.bin")).unwrap());
    assert_eq!(fs::read_to_string(out2.join("hello.txt")).unwrap(), "hello world\n");
    let info = env.stdout(&["info", &id2[..8]]);
    assert!(info.contains("Type: s3") && info.contains(&data_bucket), "{info}");
    // Bucket to bucket, in one process.
    env.cmd().args(["at", "@s3store", "backup", "@src"]).assert().success();
}

#[test]
fn bad_credentials_tls_mismatch_unreachable_and_missing_bucket() {
    on_each_server(bad_credentials_tls_mismatch_unreachable_and_missing_bucket_on);
}

fn bad_credentials_tls_mismatch_unreachable_and_missing_bucket_on(srv: &S3Server) {
    let (ep, ak, sk) = (srv.endpoint.as_str(), srv.access_key.as_str(), srv.secret_key.as_str());
    let env = Env::new();
    let bucket = unique_bucket("errs");
    add(&env, "store", "good", &format!("s3://{ep}/{bucket}"), ak, sk);
    env.cmd().args(["at", "@good", "create"]).assert().success();
    add(&env, "store", "badkey", &format!("s3://{ep}/{bucket}"), ak, "not-the-secret-at-all");
    env.cmd().args(["at", "@badkey", "ls"]).assert().code(77).stderr(
        predicate::str::contains("access_key")
            .and(predicate::str::contains("use_tls"))
            .and(predicate::str::contains("not-the-secret").not()),
    );
    env.cmd()
        .args([
            "store",
            "add",
            "tls",
            &format!("s3://{ep}/{bucket}"),
            &format!("access_key={ak}"),
            &format!("secret_access_key={sk}"),
        ])
        .assert()
        .success();
    env.cmd().args(["at", "@tls", "ls"]).assert().failure().stderr(predicate::str::contains("use_tls"));
    add(&env, "store", "down", &format!("s3://127.0.0.1:9/{bucket}"), ak, sk);
    env.cmd().args(["at", "@down", "ls"]).assert().code(66).stderr(predicate::str::contains("127.0.0.1:9"));
    add(&env, "source", "nobucket", &format!("s3://{ep}/{}", unique_bucket("missing")), ak, sk);
    env.create();
    env.at(&["backup", "@nobucket"]).assert().code(67).stderr(predicate::str::contains("does not exist"));
    env.cmd().args(["at", "@nosuchname", "ls"]).assert().failure().stderr(predicate::str::contains("good"));
}

#[test]
fn killed_backup_to_s3_leaves_a_working_store() {
    on_each_server(killed_backup_to_s3_leaves_a_working_store_on);
}

fn killed_backup_to_s3_leaves_a_working_store_on(srv: &S3Server) {
    let (ep, ak, sk) = (srv.endpoint.as_str(), srv.access_key.as_str(), srv.secret_key.as_str());
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    add(&env, "store", "s", &format!("s3://{ep}/{}", unique_bucket("kill")), ak, sk);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "1"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    let noise = crate::util::noise(40_000_000, 7);
    fs::write(data.join("large.bin"), noise).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .env("HOME", env.path("home"))
        .args(["at", "@s", "backup", data.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = child.kill();
    let _ = child.wait();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    env.cmd().args(["at", "@s", "maintenance"]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
}

#[test]
fn network_cut_during_backup_then_the_next_one_works() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let proxy = crate::util::proxy::Proxy::start(&ep);
    add(&env, "store", "s", &format!("s3://{}/{}", proxy.addr, unique_bucket("cut")), &ak, &sk);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "1"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    let noise = crate::util::noise(30_000_000, 11);
    fs::write(data.join("large.bin"), noise).unwrap();
    // Deterministic: the connection drops once 8 MB of the 30 MB went to the server.
    proxy.cut_after(8_000_000);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .env("HOME", env.path("home"))
        .args(["at", "@s", "backup", data.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(proxy.is_cut(), "the proxy cut the connection");
    assert!(!out.status.success(), "the backup must fail when the network is cut");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&proxy.addr), "the message names the server: {err}");
    proxy.restore();
    env.cmd().args(["at", "@s", "ls"]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
}

#[test]
fn backup_and_restore_across_a_flaky_link_finish() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::write(data.join("large.bin"), crate::util::noise(12_000_000, 17)).unwrap();
    let proxy = crate::util::proxy::Proxy::start(&ep);
    add(&env, "store", "s", &format!("s3://{}/{}", proxy.addr, unique_bucket("flaky")), &ak, &sk);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "1"]).assert().success();
    // One connection in three is reset mid-request: retries with backoff carry the run.
    proxy.flaky(3);
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let out = env.path("out");
    let ls = env.cmd().args(["at", "@s", "ls", "-uuid"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string();
    env.cmd().args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_same_tree(&data, &out);
    assert!(proxy.resets() > 0, "the proxy reset no connection: the test proved nothing");
}

/// A reply cut part-way through its body (a proxy or load balancer dropping the connection
/// mid-transfer) is sent again, for `check` and `restore` alike, rather than failing the run.
#[test]
fn a_reply_cut_mid_body_is_fetched_again() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::write(data.join("large.bin"), crate::util::noise(6_000_000, 23)).unwrap();
    let proxy = crate::util::proxy::Proxy::start(&ep);
    add(&env, "store", "s", &format!("s3://{}/{}", proxy.addr, unique_bucket("cutbody")), &ak, &sk);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "1"]).assert().success();
    env.cmd().args(["at", "@s", "backup", data.to_str().unwrap()]).assert().success();
    proxy.cut_replies(3);
    env.cmd().args(["at", "@s", "check"]).assert().success();
    assert_eq!(proxy.resets(), 3, "check read no reply long enough to cut");
    proxy.cut_replies(3);
    let ls = env.cmd().args(["at", "@s", "ls", "-uuid"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string();
    let out = env.path("out");
    env.cmd().args(["at", "@s", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_eq!(proxy.resets(), 6, "restore read no reply long enough to cut");
    assert_same_tree(&data, &out);
}

/// Keys with the least rights from scripts/s3-server.sh: (read key, secret, write key, secret).
fn least_privilege_keys(bucket: &str) -> (String, String, String, String) {
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-server.sh"))
        .args(["keys", bucket])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w: Vec<String> = String::from_utf8(out.stdout).unwrap().split_whitespace().map(String::from).collect();
    (w[0].clone(), w[1].clone(), w[2].clone(), w[3].clone())
}

#[test]
fn least_privilege_keys_back_up_and_restore_and_name_what_is_missing() {
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::remove_file(data.join("link")).unwrap(); // buckets hold no symlinks
    let bucket = unique_bucket("lp");
    let (rk, rs, wk, ws) = least_privilege_keys(&bucket);
    let loc = format!("s3://{ep}/{bucket}");
    add(&env, "destination", "full", &loc, &ak, &sk);
    add(&env, "source", "ro_src", &loc, &rk, &rs);
    add(&env, "destination", "ro_dst", &loc, &rk, &rs);
    add(&env, "source", "wo_src", &loc, &wk, &ws);
    add(&env, "destination", "wo_dst", &loc, &wk, &ws);
    env.create();
    let id = env.backup(&data);
    // A put-only key restores into the bucket (it may not even look at it).
    env.at(&["restore", "-to", "@wo_dst", &id[..8]]).assert().success();
    // A read-only key backs it up.
    env.at(&["backup", "@ro_src"]).assert().success();
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    assert_eq!(fs::read(out.join("sub/deeper/big.bin")).unwrap(), fs::read(data.join("sub/deeper/big.bin")).unwrap());
    // The other way round: refused, exit 77, naming the permission that is missing.
    env.at(&["restore", "-to", "@ro_dst", &id[..8]]).assert().code(77).stderr(predicate::str::contains("s3:PutObject"));
    env.at(&["backup", "@wo_src"]).assert().code(77).stderr(predicate::str::contains("s3:ListBucket"));
}

#[test]
fn session_token_goes_with_every_request() {
    // Garage issues no temporary credentials and ignores the token: what can be checked here
    // is that every request carries it.
    let Some((ep, ak, sk)) = s3_server() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let proxy = crate::util::proxy::Proxy::start(&ep);
    let loc = format!("s3://{}/{}", proxy.addr, unique_bucket("tok"));
    env.cmd()
        .args(["store", "add", "t", &loc, &format!("access_key={ak}"), &format!("secret_access_key={sk}")])
        .args(["use_tls=false", "session_token=temporary-session-token-123"])
        .assert()
        .success();
    env.cmd().args(["at", "@t", "create"]).assert().success();
    env.cmd().args(["at", "@t", "backup", data.to_str().unwrap()]).assert().success();
    let sent = String::from_utf8_lossy(&proxy.captured()).to_ascii_lowercase();
    let requests = sent.matches(" http/1.1\r\n").count();
    let with_token = sent.matches("x-amz-security-token: temporary-session-token-123\r\n").count();
    assert!(requests > 5, "{requests} requests seen");
    assert_eq!(with_token, requests, "every request carries the session token");
    // And the token never shows in the config listing.
    env.cmd().args(["store", "show", "t"]).assert().success().stdout(predicate::str::contains("temporary").not());
}

#[test]
fn two_stores_under_two_prefixes_of_one_bucket_stay_apart() {
    on_each_server(two_stores_under_two_prefixes_of_one_bucket_stay_apart_on);
}

fn two_stores_under_two_prefixes_of_one_bucket_stay_apart_on(srv: &S3Server) {
    let (ep, ak, sk) = (srv.endpoint.as_str(), srv.access_key.as_str(), srv.secret_key.as_str());
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    for (d, text) in [(&a, "first"), (&b, "second")] {
        fs::create_dir_all(d).unwrap();
        fs::write(d.join("f.txt"), text).unwrap();
    }
    let bucket = unique_bucket("prefixes");
    add(&env, "store", "one", &format!("s3://{ep}/{bucket}/team/one"), ak, sk);
    add(&env, "store", "two", &format!("s3://{ep}/{bucket}/team/two"), ak, sk);
    for (s, d) in [("@one", &a), ("@two", &b)] {
        env.cmd().args(["at", s, "create"]).assert().success();
        env.cmd().args(["at", s, "backup", d.to_str().unwrap()]).assert().success();
    }
    for (s, d) in [("@one", &a), ("@two", &b)] {
        let ls = env.cmd().args(["at", s, "ls"]).output().unwrap();
        let ls = String::from_utf8(ls.stdout).unwrap();
        assert_eq!(ls.lines().count(), 1, "{s}: {ls}");
        assert!(ls.contains(d.to_str().unwrap()), "{s}: {ls}");
        env.cmd().args(["at", s, "check"]).assert().success();
        env.cmd().args(["at", s, "maintenance"]).assert().success();
    }
    // Maintenance on one left the other whole.
    env.cmd().args(["at", "@two", "check"]).assert().success();
    env.cmd().args(["at", "@one", "rm", "-before", "0s", "-apply"]).assert().success();
    env.cmd().args(["at", "@one", "maintenance"]).assert().success();
    let out = env.path("out");
    let ls = env.cmd().args(["at", "@two", "ls"]).output().unwrap();
    let id = String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).unwrap().to_string();
    env.cmd().args(["at", "@two", "restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_eq!(fs::read_to_string(out.join("f.txt")).unwrap(), "second");
}
