//! The main commands, driven through the real binary.
use crate::util::*;
use predicates::prelude::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

#[test]
fn backup_ls_check_restore_roundtrip() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.at(&["backup", data.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("backup completed without errors"));
    let id = env.latest();
    assert_eq!(id.len(), 64);
    let ls = env.stdout(&["ls"]);
    assert!(ls.contains(&id[..8]) && ls.contains(data.to_str().unwrap()), "{ls}");
    env.at(&["check"]).assert().success().stdout(predicate::str::contains("check completed without errors"));
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]]).assert().success();
    assert_same_tree(&data, &out);
    let (a, b) = (fs::metadata(out.join("hello.txt")).unwrap(), fs::metadata(out.join("hardlink")).unwrap());
    assert_eq!(a.ino(), b.ino(), "hard links are restored as links");
}

#[test]
fn restore_one_file_and_one_subtree() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    let f = format!("{}:{}/sub/passwd", &id[..10], data.display());
    env.at(&["restore", "--to", env.path("o1").to_str().unwrap(), &f]).assert().success();
    assert_eq!(
        fs::read_to_string(env.path("o1/passwd")).unwrap(),
        fs::read_to_string(data.join("sub/passwd")).unwrap()
    );
    // A relative path is taken from the backed-up directory; the subtree keeps its name.
    env.at(&["restore", "-to", env.path("o2").to_str().unwrap(), &format!("{}:sub", &id[..8])]).assert().success();
    assert_same_tree(&data.join("sub"), &env.path("o2/sub"));
}

#[test]
fn ls_path_cat_locate_diff_info() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id1 = env.backup(&data);
    let listing = env.stdout(&["ls", &format!("{}:{}/sub", &id1[..8], data.display())]);
    assert!(listing.contains("-rw-------") && listing.contains("passwd") && listing.contains("drwx"), "{listing}");
    let cat = env.stdout(&["cat", &format!("{}:{}/hello.txt", &id1[..8], data.display())]);
    assert_eq!(cat, "hello world\n");
    fs::write(data.join("hello.txt"), "changed\n").unwrap();
    fs::write(data.join("new.txt"), "new\n").unwrap();
    let id2 = env.backup(&data);
    let located = env.stdout(&["locate", "passwd*"]);
    assert_eq!(located.lines().count(), 2, "{located}");
    assert!(located.contains(&format!("{}:{}/sub/passwd", &id1[..8], data.display())));
    let d = env.stdout(&["diff", &id1[..8], &id2[..8]]);
    assert!(d.contains("~ ") && d.contains("hello.txt") && d.contains("+ ") && d.contains("new.txt"), "{d}");
    assert!(!d.contains("passwd"), "unchanged files are not listed: {d}");
    let fd = env.stdout(&["diff", &format!("{}:hello.txt", &id1[..8]), &format!("{}:hello.txt", &id2[..8])]);
    assert!(fd.contains("-hello world") && fd.contains("+changed"), "{fd}");
    let info = env.stdout(&["info"]);
    assert!(info.contains("Snapshots: 2"), "{info}");
    let sinfo = env.stdout(&["info", &id2[..8]]);
    assert!(sinfo.contains(&id2), "{sinfo}");
    // The stored header records what the backup added to the store.
    let stored = sinfo.lines().find(|l| l.contains("Stored:")).unwrap_or_default().to_string();
    assert!(stored.contains("KiB") || stored.contains("MiB"), "{sinfo}");
    let json: serde_json::Value = serde_json::from_str(&env.stdout(&["ls", "-json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
}

#[test]
fn listing_commands_agree_with_an_index_of_trees_only_even_on_disk() {
    // ls, locate and info SNAPSHOT load an index without chunks (repo.rs load_listed, metadata only);
    // PLAKAR_INDEX_MEMORY=1 builds it on disk. Every listing is the same as with the
    // whole index in memory, and a command that reads contents still finds them.
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let id = env.backup(&data);
    fs::write(data.join("new.txt"), "new\n").unwrap();
    env.backup(&data);
    let sub = format!("{}:{}/sub", &id[..8], data.display());
    for args in [vec!["ls"], vec!["ls", "-json"], vec!["ls", &sub], vec!["locate", "passwd*"], vec!["info", &id[..8]]] {
        let whole = env.stdout(&args);
        let out = env.at(&args).env("PLAKAR_INDEX_MEMORY", "1").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), whole, "{args:?}");
        assert!(!whole.is_empty(), "{args:?}");
    }
    let cat = env
        .at(&["cat", &format!("{}:{}/hello.txt", &id[..8], data.display())])
        .env("PLAKAR_INDEX_MEMORY", "1")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "hello world\n");
}

#[test]
fn unchanged_files_are_not_read_again() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    let out = env.cmd().args(["-json", "at", &env.store(), "backup", data.to_str().unwrap()]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_read"], 0, "{v}");
    fs::write(data.join("hello.txt"), "touched\n").unwrap();
    let out = env.cmd().args(["-json", "at", &env.store(), "backup", data.to_str().unwrap()]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_read"], 2, "only the changed file and its hard link twin: {v}");
}

#[test]
fn rm_by_id_and_by_filter_then_maintenance() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.at(&["backup", "-tag", "daily", data.to_str().unwrap()]).assert().success();
    let first = env.latest();
    fs::write(data.join("other.bin"), vec![7u8; 2_000_000]).unwrap();
    env.at(&["backup", "-tag", "weekly", data.to_str().unwrap()]).assert().success();
    let second = env.latest();
    env.at(&["rm"]).assert().code(64).stderr(predicate::str::contains("no filter specified"));
    // Filters alone preview.
    env.at(&["rm", "-tag", "daily"])
        .assert()
        .success()
        .stdout(predicate::str::contains("would remove these 1 snapshot"));
    assert_eq!(env.stdout(&["ls"]).lines().count(), 2);
    env.at(&["rm", "-apply", "-tag", "daily"]).assert().success();
    let ls = env.stdout(&["ls"]);
    assert!(ls.contains(&second[..8]) && !ls.contains(&first[..8]), "{ls}");
    env.at(&["maintenance"]).assert().success();
    env.at(&["check"]).assert().success();
    env.at(&["restore", "-to", env.path("o").to_str().unwrap(), &second[..8]]).assert().success();
    assert_same_tree(&data, &env.path("o"));
    env.at(&["rm", &second[..8]]).assert().success();
    assert_eq!(env.stdout(&["ls"]), "");
    env.at(&["maintenance"]).assert().success();
    assert!(packfiles(std::path::Path::new(&env.store())).is_empty(), "nothing reachable, nothing kept");
}

#[test]
fn plaintext_store_keyfile_and_default_repository() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.cmd().env_remove("PLAKAR_PASSPHRASE").args(["at", &env.store(), "create", "-plaintext"]).assert().success();
    env.cmd()
        .env_remove("PLAKAR_PASSPHRASE")
        .env("PLAKAR_REPOSITORY", env.store())
        .args(["backup", data.to_str().unwrap()])
        .assert()
        .success();
    env.cmd().env_remove("PLAKAR_PASSPHRASE").env("PLAKAR_REPOSITORY", env.store()).args(["check"]).assert().success();

    let env2 = Env::new();
    fs::write(env2.path("key"), "from a file\n").unwrap();
    let key = env2.path("key");
    env2.cmd()
        .env_remove("PLAKAR_PASSPHRASE")
        .args(["-keyfile", key.to_str().unwrap(), "at", &env2.store(), "create"])
        .assert()
        .success();
    env2.cmd().env("PLAKAR_PASSPHRASE", "from a file").args(["at", &env2.store(), "ls"]).assert().success();
}

#[test]
fn backup_without_path_uses_current_directory_and_excludes_apply() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.cmd()
        .current_dir(&data)
        .args(["at", &env.store(), "backup", "-exclude", "*.bin", "-ignore", "sub/passwd"])
        .assert()
        .success();
    let id = env.latest();
    let all = env.stdout(&["ls", "-recursive", &id[..8]]);
    assert!(all.contains("hello.txt"), "{all}");
    assert!(!all.contains("big.bin") && !all.contains("passwd"), "{all}");
}

#[test]
fn two_backups_at_once_both_succeed() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    let spawn = || {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"));
        c.env("PLAKAR_PASSPHRASE", PASS).env("HOME", env.path("home")).args([
            "at",
            &env.store(),
            "backup",
            data.to_str().unwrap(),
        ]);
        c.spawn().unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!(env.stdout(&["ls"]).lines().count(), 2);
    env.at(&["check"]).assert().success();
}

#[test]
fn version_lists_connectors() {
    let env = Env::new();
    env.cmd().arg("version").assert().success().stdout(predicate::str::is_match("(?m)^importers: .*fs").unwrap());
}

/// Regression: SIGPIPE was set to its default to quiet `ls | head`, and a network write to
/// a server that went away then killed plakar without a word. A closed stdout must still
/// end quietly.
#[test]
fn closed_stdout_ends_quietly() {
    let env = Env::new();
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"));
    let mut child =
        c.arg("version").stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.code().is_some(), "not killed by a signal");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
    drop(env);
}

/// A 5 GiB sparse file: offsets past 4 GiB, dedup of identical chunks, and holes kept on
/// restore.
#[test]
fn large_sparse_file_roundtrip() {
    use std::os::unix::fs::FileExt;
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    let f = fs::File::create(data.join("disk.img")).unwrap();
    let size = 5u64 << 30;
    f.set_len(size).unwrap();
    f.write_at(b"head", 0).unwrap();
    f.write_at(b"past four gigabytes", (4u64 << 30) + 12345).unwrap();
    f.write_at(b"tail", size - 4).unwrap();
    drop(f);
    env.create();
    let id = env.backup(&data);
    let info = env.stdout(&["info"]);
    let stored: u64 = info
        .lines()
        .find(|l| l.starts_with("Storage size"))
        .and_then(|l| l.split(['(', ' ']).find_map(|w| w.parse().ok()))
        .unwrap();
    assert!(stored < 20 << 20, "zeros deduplicate: {stored} bytes stored");
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]]).assert().success();
    let r = fs::File::open(out.join("disk.img")).unwrap();
    let m = r.metadata().unwrap();
    assert_eq!(m.len(), size);
    let mut buf = [0u8; 19];
    r.read_exact_at(&mut buf, (4u64 << 30) + 12345).unwrap();
    assert_eq!(&buf, b"past four gigabytes");
    r.read_exact_at(&mut buf[..4], size - 4).unwrap();
    assert_eq!(&buf[..4], b"tail");
    assert!(m.blocks() * 512 < 64 << 20, "restored sparse: {} blocks", m.blocks());
}
