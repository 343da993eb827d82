//! What AWS-like servers enforce and Garage does not (issue 15), each shown on the server
//! that enforces it: moto for storage classes, regions, copy sources, credentials, odd keys
//! and versioning; `rclone serve s3` for multipart replies the SDK cannot read.
use crate::util::*;
use predicates::prelude::*;
use std::fs;

/// Configures @NAME of `kind` (store, source, destination) on `srv`, with extra options.
pub fn add(env: &Env, srv: &S3Server, kind: &str, name: &str, loc: &str, extra: &[&str]) {
    env.cmd()
        .args([kind, "add", name, loc])
        .arg(format!("access_key={}", srv.access_key))
        .arg(format!("secret_access_key={}", srv.secret_key))
        .arg("use_tls=false")
        .args(extra)
        .assert()
        .success();
}

pub fn snapshot(env: &Env, store: &str) -> String {
    let ls = env.cmd().args(["at", store, "ls", "-uuid"]).output().unwrap();
    String::from_utf8(ls.stdout).unwrap().split_whitespace().nth(1).expect("a snapshot").to_string()
}

#[test]
fn an_invalid_storage_class_is_refused_when_set_naming_the_valid_ones() {
    let env = Env::new();
    let names_them = || predicate::str::contains("GLACIAL").and(predicate::str::contains("DEEP_ARCHIVE"));
    env.cmd()
        .args(["store", "add", "s", "s3://127.0.0.1:9/b", "storage_class=GLACIAL"])
        .assert()
        .code(64)
        .stderr(names_them());
    env.cmd().args(["store", "add", "s", "s3://127.0.0.1:9/b", "storage_class=GLACIER"]).assert().success();
    env.cmd().args(["store", "set", "s", "storage_class=GLACIAL"]).assert().code(64).stderr(names_them());
}

#[test]
fn glacier_holds_file_data_only_so_ls_backup_check_and_maintenance_work() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    add(
        &env,
        &srv,
        "store",
        "cold",
        &format!("s3://{}/{}", srv.endpoint, unique_bucket("glacier")),
        &["storage_class=GLACIER"],
    );
    env.cmd().args(["at", "@cold", "create"]).assert().success();
    env.cmd().args(["at", "@cold", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@cold", "ls"]).assert().success();
    fs::write(data.join("new.txt"), "second backup").unwrap();
    env.cmd().args(["at", "@cold", "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@cold", "check", "-fast"]).assert().success();
    env.cmd().args(["at", "@cold", "maintenance"]).assert().success();
    let id = snapshot(&env, "@cold");
    env.cmd().args(["at", "@cold", "ls", &format!("{}:/", &id[..8])]).assert().success();
    // The file data is cold: the restore says to thaw it, and what that costs.
    let out = env.path("out");
    env.cmd()
        .args(["at", "@cold", "restore", "-to", out.to_str().unwrap(), &id[..8]])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("restore (thaw) it").and(predicate::str::contains("per GB retrieved")));
}

#[test]
fn a_new_bucket_outside_us_east_1_is_created_with_its_location_constraint() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::remove_file(data.join("link")).unwrap();
    let region = ["region=eu-west-3"];
    add(&env, &srv, "store", "paris", &format!("s3://{}/{}/kloset", srv.endpoint, unique_bucket("paris")), &region);
    add(&env, &srv, "destination", "dst", &format!("s3://{}/{}", srv.endpoint, unique_bucket("parisdst")), &region);
    env.cmd().args(["at", "@paris", "create"]).assert().success();
    env.cmd().args(["at", "@paris", "backup", data.to_str().unwrap()]).assert().success();
    let id = snapshot(&env, "@paris");
    env.cmd().args(["at", "@paris", "restore", "-to", "@dst", &id[..8]]).assert().success();
}

#[test]
fn a_hard_link_with_spaces_and_percent_is_copied_on_the_server() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(data.join("dir with space")).unwrap();
    fs::write(data.join("dir with space/a%b.txt"), "linked content").unwrap();
    fs::hard_link(data.join("dir with space/a%b.txt"), data.join("dir with space/c d%e.txt")).unwrap();
    env.create();
    let id = env.backup(&data);
    let proxy = crate::util::proxy::Proxy::start(&srv.endpoint);
    let bucket = unique_bucket("copysrc");
    add(&env, &srv, "destination", "dst", &format!("s3://{}/{bucket}", proxy.addr), &[]);
    env.at(&["restore", "-to", "@dst", &id[..8]]).assert().success();
    let sent = String::from_utf8_lossy(&proxy.captured()).to_ascii_lowercase();
    assert!(
        sent.contains(&format!("x-amz-copy-source: {bucket}/dir%20with%20space/a%25b.txt")),
        "no encoded copy source"
    );
    // One request for the linked name: the copy, with no PUT of the content after it.
    let puts = sent.matches(&format!("put /{bucket}/dir%20with%20space/c%20d%25e.txt")).count();
    assert_eq!(puts, 1, "the copy worked, no fallback PUT");
    add(&env, &srv, "source", "src", &format!("s3://{}/{bucket}", srv.endpoint), &[]);
    env.at(&["backup", "@src"]).assert().success();
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    assert_eq!(fs::read_to_string(out.join("dir with space/c d%e.txt")).unwrap(), "linked content");
}

#[test]
fn a_wrong_secret_stops_a_restore_into_a_bucket_at_the_first_file() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let data = env.path("data");
    for i in 0..60 {
        fs::create_dir_all(data.join(format!("d{}", i % 6))).unwrap();
        fs::write(data.join(format!("d{}/f{i}.txt", i % 6)), format!("file {i}")).unwrap();
    }
    env.create();
    let id = env.backup(&data);
    let bad = S3Server { secret_key: "not-the-secret-at-all".into(), ..srv.clone() };
    add(&env, &bad, "destination", "dst", &format!("s3://{}/{}", srv.endpoint, unique_bucket("badsecret")), &[]);
    let out = env.at(&["restore", "-to", "@dst", &id[..8]]).output().unwrap();
    assert_eq!(out.status.code(), Some(77));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.matches("KO").count() <= 1, "one refusal reported, not one per file:\n{text}");
    assert!(text.contains("secret_access_key") && !text.contains("not-the-secret"), "{text}");
}

#[test]
fn multipart_replies_rclone_cannot_give_fall_back_to_one_put() {
    let Some(srv) = rclone() else { return };
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("big.bin"), noise(70_000_000, 23)).unwrap();
    add(&env, &srv, "store", "s", &format!("s3://{}/{}", srv.endpoint, unique_bucket("mpstore")), &[]);
    env.cmd().args(["at", "@s", "create", "-packfile-mib", "100"]).assert().success();
    // One worker: its data packfile is not split with others (packer.rs `writers`).
    env.cmd().args(["at", "@s", "backup", "-concurrency", "1", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", "@s", "check"]).assert().success();
    let id = snapshot(&env, "@s");
    let bucket = unique_bucket("mpdst");
    add(&env, &srv, "destination", "dst", &format!("s3://{}/{bucket}", srv.endpoint), &[]);
    env.cmd().args(["at", "@s", "restore", "-to", "@dst", &id[..8]]).assert().success();
    add(&env, &srv, "source", "src", &format!("s3://{}/{bucket}", srv.endpoint), &[]);
    env.create();
    env.at(&["backup", "@src"]).assert().success();
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    assert_eq!(fs::read(out.join("big.bin")).unwrap(), fs::read(data.join("big.bin")).unwrap());
}

/// A new bucket on moto holding `keys` and `odd` (each object holds its own key), backed
/// up into a new store: the backup's output and its text.
fn back_up_bucket_of(
    env: &Env,
    srv: &S3Server,
    name: &str,
    keys: &[&str],
    odd: &[&str],
) -> (std::process::Output, String) {
    let bucket = unique_bucket(name);
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto-server.sh"))
        .args(["objects", &bucket])
        .args(keys)
        .args(odd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    add(env, srv, "source", "src", &format!("s3://{}/{bucket}", srv.endpoint), &[]);
    env.create();
    let out = env.at(&["backup", "@src"]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
}

#[test]
fn bucket_keys_no_path_can_hold_are_reported_never_dropped() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let odd = ["a//b.txt", "/leading.txt", "dir/", "x/../y.txt", "./dot.txt"];
    let (out, text) = back_up_bucket_of(&env, &srv, "oddkeys", &["ok.txt", "a/fine.txt"], &odd);
    assert_eq!(out.status.code(), Some(3), "{text}");
    // Reported by their path in the bucket, as the importer hands them over.
    assert!(text.lines().any(|l| l.contains("KO ✘ /dir") && l.contains("ends in '/' and holds 4 bytes")), "{text}");
    for k in ["/a//b.txt", "//leading.txt", "/x/../y.txt", "/./dot.txt"] {
        assert!(text.lines().any(|l| l.contains("KO") && l.contains(k)), "no KO line for {k}:\n{text}");
    }
    let dir = env.path("out");
    env.at(&["restore", "-to", dir.to_str().unwrap(), &env.latest()[..8]]).output().unwrap();
    assert_eq!(fs::read_to_string(dir.join("ok.txt")).unwrap(), "ok.txt");
    assert_eq!(fs::read_to_string(dir.join("a/fine.txt")).unwrap(), "a/fine.txt");
}

#[test]
fn a_store_in_a_versioned_bucket_warns_at_create() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let bucket = unique_bucket("versioned");
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto-server.sh"))
        .args(["versioned", &bucket])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    add(&env, &srv, "store", "v", &format!("s3://{}/{bucket}/kloset", srv.endpoint), &[]);
    env.cmd()
        .args(["at", "@v", "create"])
        .assert()
        .success()
        .stderr(predicate::str::contains("versioning enabled").and(predicate::str::contains("never freed")));
}

/// Keys with characters XML 1.0 cannot carry (control characters: a tab, \x01, DEL) are
/// valid S3 keys. Listed without `encoding-type=url`, a server must either send them raw
/// (not well-formed XML) or refuse; with it, they arrive percent-encoded. Each such object
/// is backed up under its exact name and restores to it.
#[test]
fn bucket_keys_with_control_characters_are_backed_up_exactly() {
    let Some(srv) = moto() else { return };
    let env = Env::new();
    let odd = ["tab\tkey.txt", "ctl\u{1}key.txt", "del\u{7f}key.txt", "sp ace/pct%41.txt"];
    let (out, text) = back_up_bucket_of(&env, &srv, "ctlkeys", &["ok.txt"], &odd);
    assert!(out.status.success(), "{text}");
    let dir = env.path("out");
    env.at(&["restore", "-to", dir.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    for k in odd.iter().chain(&["ok.txt"]) {
        assert_eq!(fs::read_to_string(dir.join(k)).unwrap(), *k, "{k:?} restored under its exact name");
    }
}
