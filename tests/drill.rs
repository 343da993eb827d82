//! Restore drills: clean and damaged stores, samples, live-tree comparison, reports read
//! by real parsers, every store kind, and the engine's read-back checks.
use crate::util::*;
use plakar::connectors::fs::{FsExporter, FsImporter};
use plakar::kloset::exporter::Exporter;
use plakar::kloset::importer::FileInfo;
use plakar::kloset::ops::backup;
use plakar::kloset::ops::drill::{self, DrillOptions, Status, Target};
use plakar::kloset::progress::NoProgress;
use predicates::prelude::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// A drill through the binary, with its scratch directories kept inside the test's dir.
fn drill(env: &Env, args: &[&str]) -> std::process::Output {
    fs::create_dir_all(env.path("tmp")).unwrap();
    let mut c = env.at(&[&["drill"], args].concat());
    c.env("TMPDIR", env.path("tmp"));
    c.output().unwrap()
}

fn junit(p: &Path) -> (BTreeSet<String>, Vec<(String, String)>, usize) {
    let text = fs::read_to_string(p).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.tag_name().name(), "testsuite");
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    let mut skipped = 0;
    let mut cases = 0;
    for c in suite.children().filter(|n| n.is_element()) {
        match c.tag_name().name() {
            "properties" => {
                assert!(c.children().filter(|n| n.is_element()).all(|p| p.tag_name().name() == "property"
                    && p.attribute("name").is_some()
                    && p.attribute("value").is_some()));
            }
            "testcase" => {
                cases += 1;
                let name = c.attribute("name").expect("name").to_string();
                assert!(c.attribute("classname").is_some() && c.attribute("time").unwrap().parse::<f64>().is_ok());
                for k in c.children().filter(|n| n.is_element()) {
                    match k.tag_name().name() {
                        "failure" => failures.push((name.clone(), k.attribute("message").unwrap().to_string())),
                        "skipped" => skipped += 1,
                        "system-out" => {}
                        other => panic!("unexpected <{other}> in a testcase"),
                    }
                }
                names.insert(name);
            }
            other => panic!("unexpected <{other}> in the testsuite"),
        }
    }
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<usize>().unwrap();
    for n in [root, suite] {
        assert_eq!(attr(n, "tests"), cases);
        assert_eq!(attr(n, "failures"), failures.len());
        assert_eq!(attr(n, "errors"), 0);
        assert_eq!(attr(n, "skipped"), skipped);
    }
    (names, failures, skipped)
}

/// Parses the file with junitparser (from PyPI) when scripts/test.sh provided it.
fn python_junit(p: &Path) -> Option<serde_json::Value> {
    let py = match std::env::var("PLAKAR_JUNIT_PYTHON") {
        Ok(py) if !py.is_empty() => py,
        _ if std::env::var_os("PLAKAR_REQUIRE_SERVERS").is_some() => {
            panic!("PLAKAR_JUNIT_PYTHON is not set: scripts/test.sh installs junitparser and sets it")
        }
        _ => {
            eprintln!("junitparser not configured (PLAKAR_JUNIT_PYTHON): skipping");
            return None;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/junit-check.py");
    let out = std::process::Command::new(py).arg(script).arg(p).output().unwrap();
    assert!(out.status.success(), "junitparser: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn scratch_left(env: &Env) -> Vec<std::path::PathBuf> {
    fs::read_dir(env.path("tmp")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

#[test]
fn drill_of_a_clean_store_passes_and_reports() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::create_dir_all(data.join("locked")).unwrap();
    fs::write(data.join("locked/inside"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(data.join("locked"), fs::Permissions::from_mode(0o500)).unwrap();
    env.create();
    let id = env.backup(&data);
    let out = drill(&env, &["-report", "junit", "j.xml", "-report", "json", "j.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("{}: drill completed without errors in ", &id[..8])), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(scratch_left(&env).is_empty(), "the scratch directory is removed, read-only dirs too");

    let (names, failures, skipped) = junit(&env.path("j.xml"));
    assert!(failures.is_empty() && skipped == 0);
    let d = data.display();
    for f in ["hello.txt", "empty", "sub/passwd", "sub/deeper/big.bin", "link", "hardlink", "locked/inside", "sub"] {
        assert!(names.contains(&format!("{d}/{f}")), "{f} has a test case: {names:?}");
    }
    let v = json(&env.path("j.json"));
    assert_eq!(v["status"], "ok");
    assert_eq!(v["snapshot"], id.as_str());
    assert_eq!(v["files_checked"], v["files_total"]);
    assert_eq!(v["bytes_checked"], v["bytes_total"]);
    assert!(v["bytes_checked"].as_u64().unwrap() > 3_000_000);
    assert!(v["chunks_verified"].as_u64().unwrap() > 1);
    assert_eq!(v["failures"].as_array().unwrap().len(), 0);
    if let Some(p) = python_junit(&env.path("j.xml")) {
        assert_eq!(p["tests"].as_u64().unwrap() as usize, names.len());
        assert_eq!(p["failures"], 0);
    }
    // One case per directory.
    let out = drill(&env, &["-junit-cases", "dir", "-report", "junit", "d.xml"]);
    assert_eq!(out.status.code(), Some(0));
    let (dirs, _, _) = junit(&env.path("d.xml"));
    assert!(dirs.contains(&format!("{d}/sub/deeper")) && !dirs.contains(&format!("{d}/hello.txt")), "{dirs:?}");
}

/// Flips a byte in the middle of the largest packfile, which holds big.bin's chunks.
fn damage_big_file(env: &Env) {
    let packs = packfiles(Path::new(&env.store()));
    let p = packs.iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let mut b = fs::read(p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    fs::write(p, b).unwrap();
}

#[test]
fn drill_of_a_damaged_packfile_fails_and_names_the_file() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.at(&["create", "-no-compression", "-packfile-mib", "1"]).assert().success();
    let id = env.backup(&data);
    damage_big_file(&env);
    let out = drill(&env, &["-report", "junit", "j.xml", "-report", "json", "j.json"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(65), "{stdout}{stderr}");
    assert!(stdout.contains("drill completed with 1 errors"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line per error: {stderr}");
    assert!(stderr.starts_with(&format!("{}: KO ✘ ", &id[..8])) && stderr.contains("big.bin"), "{stderr}");
    let (_, failures, _) = junit(&env.path("j.xml"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].0.ends_with("/sub/deeper/big.bin"), "{failures:?}");
    assert!(failures[0].1.contains("authentication"), "{failures:?}");
    let v = json(&env.path("j.json"));
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 65);
    let f = v["failures"].as_array().unwrap();
    assert_eq!(f.len(), 1);
    assert!(f[0]["path"].as_str().unwrap().ends_with("/sub/deeper/big.bin") && f[0]["reason"].is_string());
    if let Some(p) = python_junit(&env.path("j.xml")) {
        assert_eq!(p["failures"], 1);
        assert!(p["failed"][0].as_str().unwrap().ends_with("big.bin"), "{p}");
    }
    assert!(scratch_left(&env).is_empty());
}

#[test]
fn samples_are_reproducible_and_bounded() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..40 {
        fs::write(data.join(format!("f{i:02}")), noise(1000 + i * 10, i as u64 + 1)).unwrap();
    }
    env.create();
    env.backup(&data);
    let picked = |args: &[&str]| {
        let out = drill(&env, &[args, &["-json"]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let out = drill(&env, &[args, &["-report", "junit", "s.xml"]].concat());
        assert_eq!(out.status.code(), Some(0));
        let (names, _, _) = junit(&env.path("s.xml"));
        let files: BTreeSet<String> = names.into_iter().filter(|n| n.contains("/f")).collect();
        (v, files)
    };
    let (v, a) = picked(&["-sample", "25", "-seed", "42"]);
    assert_eq!(a.len(), 10, "25% of 40 files");
    assert_eq!(v["files_checked"], 10);
    assert_eq!(v["files_total"], 40);
    assert_eq!(v["sample"]["seed"], 42);
    let (_, b) = picked(&["-sample", "25%", "-seed", "42"]);
    assert_eq!(a, b, "same seed, same files");
    let (_, c) = picked(&["-sample", "25", "-seed", "43"]);
    assert_ne!(a, c, "another seed, another sample");
    let (v, _) = picked(&["-max-bytes", "5K", "-seed", "1"]);
    let checked = v["bytes_checked"].as_u64().unwrap();
    assert!((1000..=5120).contains(&checked), "{v}");
    assert_eq!(drill(&env, &["-sample", "0"]).status.code(), Some(64), "-sample 0 is refused");
}

#[test]
fn drill_against_the_live_tree_reports_changes_apart_from_damage() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    fs::write(data.join("hello.txt"), "edited after the backup\n").unwrap();
    fs::remove_file(data.join("sub/passwd")).unwrap();
    fs::write(data.join("new.txt"), "new").unwrap();
    // Same size and mtime, other content: only a content comparison sees it.
    let big = data.join("sub/deeper/big.bin");
    let m = fs::metadata(&big).unwrap();
    let mut b = fs::read(&big).unwrap();
    b[10] ^= 1;
    fs::write(&big, b).unwrap();
    filetime::set_file_mtime(&big, filetime::FileTime::from_last_modification_time(&m)).unwrap();
    let out = drill(&env, &["-against", data.to_str().unwrap(), "-report", "json", "j.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "changes are no failure: {stdout}");
    assert!(stdout.contains("changed: 4, added: 1"), "{stdout}");
    let v = json(&env.path("j.json"));
    let changed: Vec<(String, String)> = v["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["change"].as_str().unwrap().to_string()))
        .collect();
    let find = |suffix: &str| changed.iter().find(|(p, _)| p.ends_with(suffix)).map(|(_, c)| c.clone());
    assert!(find("/hello.txt").unwrap().contains("size 12 -> 24"), "{changed:?}");
    assert_eq!(find("/sub/passwd").unwrap(), "deleted since the snapshot");
    assert!(find("/big.bin").unwrap().contains("content differs"), "{changed:?}");
    // The hard link shares hello.txt's inode, so it changed too.
    assert!(find("/hardlink").is_some(), "{changed:?}");
    assert_eq!(v["added"][0].as_str().unwrap(), format!("{}/new.txt", data.display()));
    assert_eq!(v["failures"].as_array().unwrap().len(), 0);
}

#[test]
fn to_must_be_empty_and_keep_leaves_the_copy() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    let to = env.path("copy");
    let out = drill(&env, &["-to", to.to_str().unwrap(), "-keep", "-quiet"]);
    assert_eq!(out.status.code(), Some(0));
    assert_same_tree(&data, &to);
    env.at(&["drill", "-to", to.to_str().unwrap()]).assert().code(64).stderr(predicate::str::contains("not empty"));
    let to2 = env.path("copy2");
    assert_eq!(drill(&env, &["-to", to2.to_str().unwrap()]).status.code(), Some(0));
    assert!(!to2.exists(), "removed without -keep");
    env.at(&["drill", "-report", "xml", "x"]).assert().code(64);
    env.at(&["drill", "ffffffffff"]).assert().code(64);
}

#[test]
fn drill_works_on_sqlite_and_ptar_stores_and_on_a_subtree() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let db = format!("sqlite://{}", env.path("store.db").display());
    env.cmd().args(["at", &db, "create"]).assert().success();
    env.cmd().args(["at", &db, "backup", data.to_str().unwrap()]).assert().success();
    env.cmd().args(["at", &db, "drill"]).env("TMPDIR", env.path("")).assert().success();
    env.create();
    let id = env.backup(&data);
    env.cmd().args(["ptar", "-o", "./export.ptar", "-k", &env.store()]).assert().success();
    // A ptar archive is read-only: no lock is taken, and none is needed.
    env.cmd()
        .args(["at", "./export.ptar", "drill", "-latest"])
        .assert()
        .success()
        .stdout(predicate::str::contains("drill completed without errors"));
    let out = drill(&env, &[&format!("{}:sub", &id[..8]), "-json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["path"], format!("{}/sub", data.display()));
    assert_eq!(v["files_total"], 2);
}

/// Drills of an S3 store, and of a bucket's snapshot: the bucket is restored into a local
/// scratch directory, never back into the bucket.
#[test]
fn drill_of_an_s3_store_and_of_a_bucket_snapshot() {
    let Some((ep, ak, sk)) = s3_server() else {
        return;
    };
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    let add = |kind: &str, name: &str, loc: String| {
        env.cmd()
            .args([
                kind,
                "add",
                name,
                &loc,
                &format!("access_key={ak}"),
                &format!("secret_access_key={sk}"),
                "use_tls=false",
            ])
            .assert()
            .success();
    };
    let bucket = unique_bucket("drilldata");
    add("store", "s3drill", format!("s3://{ep}/{}/kloset", unique_bucket("drill")));
    add("destination", "dst", format!("s3://{ep}/{bucket}"));
    add("source", "src", format!("s3://{ep}/{bucket}"));
    env.cmd().args(["at", "@s3drill", "create"]).assert().success();
    env.cmd().args(["at", "@s3drill", "backup", data.to_str().unwrap()]).assert().success();
    fs::create_dir_all(env.path("tmp")).unwrap();
    env.cmd()
        .env("TMPDIR", env.path("tmp"))
        .args(["at", "@s3drill", "drill", "-report", "junit", "j.xml"])
        .assert()
        .success();
    let (_, failures, _) = junit(&env.path("j.xml"));
    assert!(failures.is_empty());
    // A bucket backed up into a local store, drilled into a local directory.
    env.cmd().args(["at", "@s3drill", "restore", "-to", "@dst"]).assert().success();
    env.create();
    env.at(&["backup", "@src"]).assert().success();
    let out = drill(&env, &["-report", "json", "b.json", "-against", "@src"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&env.path("b.json"));
    assert_eq!(v["failures"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["changed"].as_array().unwrap().len(), 0, "{v}");
    assert!(v["files_checked"].as_u64().unwrap() >= 4, "{v}");
    assert!(scratch_left(&env).is_empty());
}

#[test]
fn files_unreadable_at_backup_time_make_a_partial_drill() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::write(data.join("unreadable.txt"), "secret").unwrap();
    crate::util::flaky::flaky_backup(&env, &data);
    let out = drill(&env, &["-report", "junit", "j.xml", "-report", "json", "j.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("with 1 unreadable files"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreadable.txt"));
    let (_, failures, skipped) = junit(&env.path("j.xml"));
    assert!(failures.is_empty());
    assert_eq!(skipped, 1);
    let v = json(&env.path("j.json"));
    assert_eq!(v["status"], "partial");
    assert!(v["unreadable"][0]["path"].as_str().unwrap().ends_with("/unreadable.txt"));
}

/// An exporter that gets things wrong: flips a byte of files named "bad", and forgets the
/// mtime of files named "stale".
struct Sloppy(FsExporter);

struct Flip<'a>(&'a mut dyn Read, bool);
impl Read for Flip<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n > 0 && !self.1 {
            buf[0] ^= 1;
            self.1 = true;
        }
        Ok(n)
    }
}

impl Exporter for Sloppy {
    fn create_dir(&self, p: &[u8]) -> io::Result<()> {
        self.0.create_dir(p)
    }
    fn store_file(&self, p: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        if p.ends_with(b"bad") {
            return self.0.store_file(p, &mut Flip(data, false), size);
        }
        self.0.store_file(p, data, size)
    }
    fn symlink(&self, p: &[u8], t: &[u8]) -> io::Result<()> {
        self.0.symlink(p, t)
    }
    fn hardlink(&self, p: &[u8], e: &[u8]) -> io::Result<()> {
        self.0.hardlink(p, e)
    }
    fn set_metadata(&self, p: &[u8], info: &FileInfo) -> io::Result<()> {
        if p.ends_with(b"stale") {
            return Ok(());
        }
        self.0.set_metadata(p, info)
    }
    fn finish(&self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn read_back_catches_a_wrong_restore() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("good"), noise(200_000, 1)).unwrap();
    fs::write(data.join("bad"), noise(200_000, 2)).unwrap();
    fs::write(data.join("stale"), "old").unwrap();
    filetime::set_file_mtime(data.join("stale"), filetime::FileTime::from_unix_time(1_000_000_000, 0)).unwrap();
    let repo = crate::engine::new_repo(Arc::new(plakar::connectors::memory::MemoryStore::new()));
    let h = backup::backup(&repo, &FsImporter::new(&data).unwrap(), &Default::default(), &NoProgress).unwrap();
    let repo = crate::engine::reopen(repo.store.clone());
    let out = env.path("out");
    let exporter = Sloppy(FsExporter::new(&out, true).unwrap());
    let readback = FsImporter::new(&out).unwrap();
    let target = Target { exporter: &exporter, readback: &readback };
    let opts = DrillOptions { permissions: true, ..Default::default() };
    let r = drill::drill(&repo, &h, None, &opts, &target, None, &NoProgress).unwrap();
    let status = |name: &str| r.items.iter().find(|i| i.path.ends_with(name)).unwrap().status.clone();
    assert_eq!(status("/good"), Status::Ok);
    match status("/bad") {
        Status::Failed(m) => assert!(m.contains("does not match its recorded digest: chunk 0"), "{m}"),
        s => panic!("{s:?}"),
    }
    match status("/stale") {
        Status::Failed(m) => assert!(m.contains("mtime"), "{m}"),
        s => panic!("{s:?}"),
    }
    assert_eq!(r.failures().count(), 2);
    assert_eq!(r.files_total, 3);
}
