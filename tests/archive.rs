//! `archive`: a snapshot (or a path of it) as tar, tar.gz or zip, read back by GNU tar and
//! Python's zipfile and compared byte for byte with the tree that was backed up.
use crate::util::*;
use predicates::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

/// Every kind of entry an archive holds: modes, an empty directory, an empty file, a
/// symlink, a hard link, and a file of several chunks (chunks average 1 MiB).
fn tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    fs::write(root.join("empty"), "").unwrap();
    fs::write(root.join("sub/secret"), "root:x:0:0\n").unwrap();
    fs::set_permissions(root.join("sub/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("sub/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("sub/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("sub/deeper"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(root.join("sub/deeper/big.bin"), noise(5_000_000, 7)).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    fs::hard_link(root.join("hello.txt"), root.join("hardlink")).unwrap();
}

fn setup() -> (Env, PathBuf, String) {
    let env = Env::new();
    let data = env.path("data");
    tree(&data);
    env.create();
    let id = env.backup(&data);
    (env, data, id)
}

/// `data`'s path inside an archive made without -rebase: absolute, without the leading `/`.
fn inside(data: &Path) -> PathBuf {
    data.strip_prefix("/").unwrap().to_path_buf()
}

fn untar(archive: &Path, to: &Path, gz: bool) {
    fs::create_dir_all(to).unwrap();
    let out = Proc::new("tar").arg(if gz { "-xzpf" } else { "-xpf" }).arg(archive).arg("-C").arg(to).output().unwrap();
    assert!(out.status.success(), "tar failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tar_holds_the_tree_with_modes_links_and_empty_dirs() {
    let (env, data, id) = setup();
    env.at(&["archive", "-format", "tar", "-output", "out.tar", &id[..8]]).assert().success();
    let x = env.path("x");
    untar(&env.path("out.tar"), &x, false);
    let got = x.join(inside(&data));
    assert_same_tree(&data, &got);
    assert!(got.join("empty-dir").is_dir());
    let (a, b) = (fs::metadata(got.join("hello.txt")).unwrap(), fs::metadata(got.join("hardlink")).unwrap());
    assert_eq!(a.ino(), b.ino(), "a hard link stays a link in a tar");
    assert_eq!(fs::metadata(got.join("sub/deeper")).unwrap().mode() & 0o7777, 0o700);
}

#[test]
fn rebase_names_entries_from_the_path_asked_for() {
    let (env, data, id) = setup();
    env.at(&["archive", "-format", "tar", "-rebase", "-output", "all.tar", &id[..8]]).assert().success();
    let x = env.path("x");
    untar(&env.path("all.tar"), &x, false);
    assert_same_tree(&data, &x);
    // A subdirectory, by a path relative to the backed-up directory.
    env.at(&["archive", "-format", "tar", "-rebase", "-output", "sub.tar", &format!("{}:sub", &id[..8])])
        .assert()
        .success();
    let y = env.path("y");
    untar(&env.path("sub.tar"), &y, false);
    assert_same_tree(&data.join("sub"), &y);
    // One file, rebased, is its own name.
    env.at(&["archive", "-format", "tar", "-rebase", "-output", "one.tar", &format!("{}:sub/run.sh", &id[..8])])
        .assert()
        .success();
    let listing = Proc::new("tar").arg("-tvf").arg(env.path("one.tar")).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.starts_with("-rwxr-xr-x") && listing.trim_end().ends_with(" run.sh"), "{listing}");
}

#[test]
fn tarball_is_the_default_and_goes_to_stdout_with_output_dash() {
    let (env, data, id) = setup();
    let out = env.at(&["archive", "-output", "-", &format!("{}:sub", &id[..8])]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&out.stdout[..2], &[0x1f, 0x8b], "gzip magic");
    fs::write(env.path("sub.tar.gz"), &out.stdout).unwrap();
    let x = env.path("x");
    untar(&env.path("sub.tar.gz"), &x, true);
    assert_same_tree(&data.join("sub"), &x.join(inside(&data)).join("sub"));
    // Without -output: Plakar's name, plakar-<RFC 3339 time>.tar.gz, in the current directory.
    env.at(&["archive", &id[..8]]).assert().success();
    let made: Vec<String> = fs::read_dir(env.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("plakar-"))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let re = regex::Regex::new(r"^plakar-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.tar\.gz$").unwrap();
    assert!(re.is_match(&made[0]), "{}", made[0]);
    let y = env.path("y");
    untar(&env.path(&made[0]), &y, true);
    assert_same_tree(&data, &y.join(inside(&data)));
}

/// Reads a zip with Python's zipfile: each entry's name, mode (from the external
/// attributes), DOS time, and its bytes written under `to` (symlink targets as files).
const READ_ZIP: &str = r#"
import json, os, sys, zipfile
out = {}
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    for i in z.infolist():
        mode = i.external_attr >> 16
        out[i.filename] = {"mode": mode, "dir": i.is_dir(), "time": list(i.date_time)}
        if not i.is_dir():
            dest = os.path.join(sys.argv[2], str(len(out)))
            with open(dest, "wb") as f:
                f.write(z.read(i))
            out[i.filename]["bytes"] = dest
print(json.dumps(out))
"#;

fn read_zip(env: &Env, zip: &Path) -> serde_json::Map<String, serde_json::Value> {
    let blobs = env.path("zip-contents");
    fs::create_dir_all(&blobs).unwrap();
    let out = Proc::new("python3").arg("-c").arg(READ_ZIP).arg(zip).arg(&blobs).output().unwrap();
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_object().unwrap().clone()
}

#[test]
fn zip_holds_every_byte_mode_symlink_and_empty_dir() {
    let (env, data, id) = setup();
    env.at(&["archive", "-format", "zip", "-rebase", "-output", "out.zip", &id[..8]]).assert().success();
    let entries = read_zip(&env, &env.path("out.zip"));
    let mut expected = BTreeMap::new();
    for p in walk(&data) {
        let rel = p.strip_prefix(&data).unwrap().to_str().unwrap().to_string();
        let md = fs::symlink_metadata(&p).unwrap();
        expected.insert(if md.is_dir() { format!("{rel}/") } else { rel }, (p, md));
    }
    let names: Vec<&String> = entries.keys().collect();
    assert_eq!(names, expected.keys().collect::<Vec<_>>(), "zip entries");
    for (name, (path, md)) in &expected {
        let e = &entries[name];
        assert_eq!(e["mode"].as_u64().unwrap() as u32, md.mode(), "mode of {name}");
        let bytes = |e: &serde_json::Value| fs::read(e["bytes"].as_str().unwrap()).unwrap();
        if md.is_file() {
            assert!(bytes(e) == fs::read(path).unwrap(), "content of {name}");
        } else if md.is_symlink() {
            assert_eq!(bytes(e), fs::read_link(path).unwrap().as_os_str().as_encoded_bytes(), "target of {name}");
        }
        if !md.is_dir() {
            // DOS times count two seconds at a time; stored as UTC.
            let t: Vec<i64> = e["time"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            let dt = chrono::NaiveDate::from_ymd_opt(t[0] as i32, t[1] as u32, t[2] as u32)
                .unwrap()
                .and_hms_opt(t[3] as u32, t[4] as u32, t[5] as u32)
                .unwrap()
                .and_utc()
                .timestamp();
            assert!((0..2).contains(&(md.mtime() - dt)), "time of {name}: {dt} vs {}", md.mtime());
        }
    }
    // Without -rebase, under the full path; unzip agrees with Python on the content.
    env.at(&["archive", "-format", "zip", "-output", "full.zip", &id[..8]]).assert().success();
    let full = read_zip(&env, &env.path("full.zip"));
    let top = format!("{}/", inside(&data).display());
    assert!(full.contains_key(&top) && full.contains_key(&format!("{top}sub/deeper/big.bin")), "{full:?}");
    let x = env.path("unzipped");
    let st = Proc::new("unzip").arg("-q").arg(env.path("full.zip")).arg("-d").arg(&x).status().unwrap();
    assert!(st.success());
    let big = x.join(inside(&data)).join("sub/deeper/big.bin");
    assert!(fs::read(big).unwrap() == fs::read(data.join("sub/deeper/big.bin")).unwrap());
}

/// The peak resident size of a running process, from /proc.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn archives_stream_in_constant_memory() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    const BIG: usize = 128 << 20;
    fs::write(data.join("big.bin"), noise(BIG, 3)).unwrap();
    // Plaintext: Argon2's memory would hide what the archive itself uses.
    env.at(&["create", "-plaintext"]).assert().success();
    let id = env.backup(&data);
    // tarball is tar through a gzip encoder of fixed size: tar and zip are the two writers.
    for format in ["tar", "zip"] {
        let mut child = Proc::new(assert_cmd::cargo::cargo_bin("plakar"))
            .current_dir(env.path(""))
            .env_clear()
            .env("HOME", env.path("home"))
            .args(["at", &env.store(), "archive", "-format", format, "-output", "-", &id[..8]])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut stdout = child.stdout.take().unwrap();
        let (mut total, mut peak) = (0usize, 0u64);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            use std::io::Read;
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        }
        assert!(child.wait().unwrap().success());
        assert!(total > BIG / 2, "{format}: {total} bytes");
        // A writer that held the file, or the archive, would pass 128 MiB; about 30 MiB is
        // the binary, its thread stacks and one chunk in flight.
        eprintln!("{format}: peak resident size {peak} KiB for a {} MiB file", BIG >> 20);
        assert!(peak > 0 && peak < 80 << 10, "{format}: peak resident size {peak} KiB");
    }
}

#[test]
fn bad_input_says_what_to_do() {
    let (env, _data, id) = setup();
    env.at(&["archive", "-format", "rar", &id[..8]])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("rar").and(predicate::str::contains("tar, tarball, zip")));
    env.at(&["archive"]).assert().code(64).stderr(predicate::str::contains("SNAPSHOT"));
    env.at(&["archive", "-output", "x.tar", "ffffffffff"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("no snapshot has prefix"));
    env.at(&["archive", "-output", "x.tar", &format!("{}:nope", &id[..8])])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("no such file"));
    env.at(&["archive", "-output", "missing/dir/x.tar.gz", &id[..8]])
        .assert()
        .code(73)
        .stderr(predicate::str::contains("missing/dir"));
    assert!(!env.path("x.tar").exists());
}

#[test]
fn a_damaged_store_leaves_no_archive_behind() {
    let (env, _data, id) = setup();
    // The largest packfile holds the big file's chunks; trees and headers live apart.
    let mut packs = packfiles(&env.path("store"));
    packs.sort_by_key(|p| fs::metadata(p).unwrap().len());
    fs::remove_file(packs.last().unwrap()).unwrap();
    env.at(&["archive", "-format", "tar", "-output", "out.tar", &id[..8]])
        .assert()
        .code(65)
        .stderr(predicate::str::contains("missing"));
    let left: Vec<_> = fs::read_dir(env.path("")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains("out.tar")), "{left:?}");
}
