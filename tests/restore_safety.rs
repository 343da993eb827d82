//! Restore safety: nothing outside the target is touched when a directory is swapped for a
//! symlink during the restore, a single-file snapshot restores under its name, and entries
//! recorded with a backup-time error fail the restore instead of passing silently.
use crate::util::*;
use plakar::connectors::fs::FsExporter;
use plakar::kloset::exporter::Exporter;
use plakar::kloset::importer::{FileInfo, FileKind};
use std::fs;
use std::io::{self, BufRead, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// A directory outside the target holding a private file: what a swapped symlink points at.
fn outside(env: &Env, file: &str) -> std::path::PathBuf {
    let o = env.path("outside");
    fs::create_dir_all(&o).unwrap();
    fs::write(o.join(file), "outside").unwrap();
    chmod(&o.join(file), 0o600);
    chmod(&o, 0o700);
    filetime::set_file_mtime(&o, filetime::FileTime::from_unix_time(1_500_000_000, 0)).unwrap();
    o
}

fn assert_untouched(o: &Path, file: &str) {
    assert_eq!(fs::read_to_string(o.join(file)).unwrap(), "outside", "content of a file outside the target");
    assert_eq!(mode(&o.join(file)), 0o600, "mode of a file outside the target");
    assert_eq!(mode(o), 0o700, "mode of the directory outside the target");
    assert_eq!(fs::metadata(o).unwrap().mtime(), 1_500_000_000, "mtime of the directory outside the target");
    let names: Vec<_> = fs::read_dir(o).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from(file)], "entries outside the target");
}

fn info(kind: FileKind, mode: u32, size: u64) -> FileInfo {
    let me = fs::metadata("/proc/self").unwrap();
    FileInfo {
        kind: Some(kind),
        mode,
        size,
        mtime_ns: 1_000_000_000_000_000_000,
        uid: me.uid(),
        gid: me.gid(),
        ..Default::default()
    }
}

/// A file never replaces a directory of the same name, even an empty one: refused, the
/// directory kept as it is, and no temporary file left behind.
#[test]
fn a_file_where_the_target_has_a_directory_is_refused_and_leaves_nothing() {
    let env = Env::new();
    let t = env.path("target");
    let exp = FsExporter::new(&t, true).unwrap();
    fs::create_dir_all(t.join("full/inner")).unwrap();
    fs::create_dir_all(t.join("empty")).unwrap();
    let file = info(FileKind::File, 0o100644, 3);
    for name in ["full", "empty"] {
        let e = exp.store_file_with_metadata(name.as_bytes(), &mut &b"abc"[..], 3, &file).unwrap_err();
        assert!(e.to_string().contains("a directory is in the way"), "{e}");
        assert!(t.join(name).is_dir());
    }
    assert!(t.join("full/inner").is_dir());
    let mut names: Vec<_> = fs::read_dir(&t).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["empty", "full"]);
    // A file already there is replaced.
    fs::write(t.join("plain"), "old").unwrap();
    exp.store_file_with_metadata(b"plain", &mut &b"abc"[..], 3, &file).unwrap();
    assert_eq!(fs::read(t.join("plain")).unwrap(), b"abc");
}

/// The race, played step by step through the exporter: a directory is created, then
/// swapped for a symlink to a directory outside the target before anything is written into
/// it and before its metadata is set. Every later call through it must fail.
#[test]
fn exporter_refuses_a_directory_swapped_for_a_symlink() {
    let env = Env::new();
    let o = outside(&env, "secret");
    let t = env.path("target");
    let exp = FsExporter::new(&t, true).unwrap();
    exp.create_dir(b"d").unwrap();
    exp.create_dir(b"f").unwrap();
    exp.store_file(b"real", &mut &b"abc"[..], 3).unwrap();
    fs::rename(t.join("d"), t.join("d.moved")).unwrap();
    std::os::unix::fs::symlink(&o, t.join("d")).unwrap();
    // A plain file where a directory was: not a directory, refused as well.
    fs::remove_dir(t.join("f")).unwrap();
    fs::write(t.join("f"), "a file").unwrap();

    let file = info(FileKind::File, 0o100777, 3);
    let dir = info(FileKind::Dir, 0o40777, 0);
    let link = info(FileKind::Symlink, 0o120777, 0);
    let mut errs = vec![
        exp.store_file(b"d/secret", &mut &b"pwn"[..], 3).unwrap_err(),
        exp.store_file(b"d/new", &mut &b"pwn"[..], 3).unwrap_err(),
        exp.store_file_with_metadata(b"d/secret", &mut &b"pwn"[..], 3, &file).unwrap_err(),
        exp.set_metadata(b"d/secret", &file).unwrap_err(),
        exp.set_metadata(b"d", &dir).unwrap_err(),
        exp.symlink(b"d/l", b"/etc/passwd").unwrap_err(),
        exp.set_metadata(b"d/secret", &link).unwrap_err(),
        exp.hardlink(b"d/h", b"real").unwrap_err(),
        exp.create_dir(b"d/sub").unwrap_err(),
    ];
    for e in &errs {
        assert!(e.to_string().contains("symlink"), "{e}");
    }
    errs.push(exp.store_file(b"f/x", &mut &b"pwn"[..], 3).unwrap_err());
    assert!(errs.last().unwrap().to_string().contains("not a directory"), "{}", errs.last().unwrap());
    assert_untouched(&o, "secret");
    // The symlink is left as it was; the real directory still holds nothing.
    assert_eq!(fs::read_link(t.join("d")).unwrap(), o);
    assert_eq!(fs::read_dir(t.join("d.moved")).unwrap().count(), 0);
}

/// The same race on a directory files were already written into: the exporter keeps that
/// directory open for the files that follow (fs/open_dirs.rs), so they go on landing in it,
/// wherever it was moved; the symlink put in its place is never followed, nothing outside
/// is touched. Once the directory's metadata is set it is forgotten: a later write goes by
/// name again and is refused.
#[test]
fn a_directory_swapped_after_files_were_written_into_it_keeps_them_and_follows_nothing() {
    let env = Env::new();
    let o = outside(&env, "secret");
    let t = env.path("target");
    let exp = FsExporter::new(&t, true).unwrap();
    exp.create_dir(b"d").unwrap();
    exp.store_file(b"d/first", &mut &b"abc"[..], 3).unwrap();
    fs::rename(t.join("d"), t.join("d.moved")).unwrap();
    std::os::unix::fs::symlink(&o, t.join("d")).unwrap();

    let file = info(FileKind::File, 0o100777, 3);
    exp.store_file(b"d/secret", &mut &b"pwn"[..], 3).unwrap();
    exp.store_file_with_metadata(b"d/second", &mut &b"pwn"[..], 3, &file).unwrap();
    assert_untouched(&o, "secret");
    let mut names: Vec<_> = fs::read_dir(t.join("d.moved")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["first", "second", "secret"]);
    assert_eq!(mode(&t.join("d.moved/second")), 0o777);

    // The directory's metadata, by name: the symlink is refused, and then the directory
    // is no longer kept.
    let dir = info(FileKind::Dir, 0o40777, 0);
    assert!(exp.set_metadata(b"d", &dir).unwrap_err().to_string().contains("symlink"));
    let e = exp.store_file(b"d/third", &mut &b"pwn"[..], 3).unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");
    assert_untouched(&o, "secret");
    assert_eq!(fs::read_link(t.join("d")).unwrap(), o);
}

/// Files are created with their final mode when they need no owner change
/// (fs/exporter.rs `final_at_creation`): the mode, owner and group still come out as the
/// snapshot has them, in a set-group-id directory (which gives new files its own group)
/// too, and when a umask would take bits away.
#[test]
fn files_get_the_snapshots_mode_owner_and_group_whichever_way_they_are_created() {
    let env = Env::new();
    let t = env.path("target");
    fs::create_dir_all(t.join("shared")).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(t.join("shared"), None, Some(1)).unwrap();
    }
    chmod(&t.join("shared"), 0o2777);
    let exp = FsExporter::new(&t, true).unwrap();
    let me = info(FileKind::File, 0, 3);
    let cases: &[(&str, u32, u32, u32)] = &[
        ("plain", 0o100640, me.uid, me.gid),
        ("shared/plain", 0o100644, me.uid, me.gid),
        ("shared/group-writable", 0o100664, me.uid, me.gid),
        ("world-writable", 0o100666, me.uid, me.gid),
        ("setuid", 0o104755, me.uid, me.gid),
        ("someone-else", 0o100600, 1, 1),
        ("shared/someone-else", 0o100644, 1, 2),
    ];
    for &(name, mode, uid, gid) in cases {
        if !root && (uid, gid) != (me.uid, me.gid) {
            continue;
        }
        let file = FileInfo { uid, gid, ..info(FileKind::File, mode, 3) };
        exp.store_file_with_metadata(name.as_bytes(), &mut &b"abc"[..], 3, &file).unwrap();
        let m = fs::symlink_metadata(t.join(name)).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (mode & 0o7777, uid, gid), "{name}");
        assert_eq!(m.mtime(), 1_000_000_000, "{name}");
        assert_eq!(fs::read(t.join(name)).unwrap(), b"abc", "{name}");
    }
}

/// A directory is private from its creation until its own mode is set after its last
/// entry: a restore killed half way, or run under a umask of 0, leaves no directory others
/// could write into. With permissions left alone it is what `mkdir` makes.
#[test]
fn directories_are_private_until_their_mode_is_set() {
    let env = Env::new();
    let t = env.path("target");
    let exp = FsExporter::new(&t, true).unwrap();
    exp.create_dir(b"top").unwrap();
    // Its parents, missing, are made on the way.
    exp.create_dir(b"made/on/the-way").unwrap();
    for d in ["top", "made", "made/on", "made/on/the-way"] {
        assert_eq!(mode(&t.join(d)), 0o700, "{d} while restored");
    }
    exp.set_metadata(b"top", &info(FileKind::Dir, 0o40755, 0)).unwrap();
    assert_eq!(mode(&t.join("top")), 0o755, "top once its metadata is set");
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let mask = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap().trim();
    let mask = u32::from_str_radix(mask, 8).unwrap();
    // A snapshot that recorded no mode (0) gets what `mkdir` gives.
    exp.set_metadata(b"made", &info(FileKind::Dir, 0, 0)).unwrap();
    assert_eq!(mode(&t.join("made")), 0o777 & !mask, "a directory with no mode recorded");

    let plain = env.path("plain");
    let exp = FsExporter::new(&plain, false).unwrap();
    exp.create_dir(b"d").unwrap();
    assert_eq!(mode(&plain.join("d")), 0o777 & !mask, "without permissions");
}

/// A default ACL on a directory decides the mode of the files created in it (the umask
/// does not apply, the ACL's bits are taken away): a file created with its final mode
/// must still end with the snapshot's mode.
#[test]
fn a_default_acl_does_not_change_a_restored_files_mode() {
    let env = Env::new();
    let t = env.path("target");
    fs::create_dir_all(t.join("acl")).unwrap();
    // system.posix_acl_default, version 2: user::rw-, group::---, other::--- (tag, perm, id).
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 6u16), (0x04, 0), (0x20, 0)] {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(u32::MAX.to_le_bytes());
    }
    xattr::set(t.join("acl"), "system.posix_acl_default", &acl).expect("the test directory takes POSIX ACLs");
    fs::write(t.join("acl/probe"), "x").unwrap();
    assert_eq!(mode(&t.join("acl/probe")), 0o600, "the default ACL decides a new file's mode");
    let exp = FsExporter::new(&t, true).unwrap();
    for (name, m) in [("acl/a", 0o100644), ("acl/b", 0o100640), ("acl/c", 0o100600)] {
        exp.store_file_with_metadata(name.as_bytes(), &mut &b"abc"[..], 3, &info(FileKind::File, m, 3)).unwrap();
        assert_eq!(mode(&t.join(name)), m & 0o7777, "{name}");
    }
}

/// While a file is written, nothing of it has a name in the target when root restores
/// (written unnamed, O_TMPFILE, and linked in once complete: a killed restore leaves
/// nothing behind); others see a temporary name. Either way it replaces a file already at
/// its name, and only once complete.
#[test]
fn a_file_being_written_has_no_name_yet_and_replaces_the_old_one_whole() {
    /// (the directory, the file written and what it holds before, what was listed, done)
    struct Peek<'a>(&'a Path, &'a str, Option<&'a [u8]>, Vec<String>, bool);
    impl Read for Peek<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.4 {
                return Ok(0);
            }
            self.3 = fs::read_dir(self.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            self.3.sort();
            let now = fs::read(self.0.join(self.1)).ok();
            assert_eq!(now.as_deref(), self.2, "{}: what was there stays until the new file is whole", self.1);
            buf[..3].copy_from_slice(b"new");
            self.4 = true;
            Ok(3)
        }
    }
    let env = Env::new();
    let t = env.path("target");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("f"), "old").unwrap();
    // Unnamed where the filesystem has O_TMPFILE (tmpfs, ext4, xfs, btrfs; overlayfs only
    // since Linux 6.6) and the restore runs as root.
    let c = std::ffi::CString::new(t.as_os_str().as_encoded_bytes()).unwrap();
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_TMPFILE, 0o600) };
    let unnamed = fd >= 0 && unsafe { libc::geteuid() } == 0;
    if fd >= 0 {
        unsafe { libc::close(fd) };
    }
    let exp = FsExporter::new(&t, true).unwrap();
    for (name, was, before) in [("f", Some(&b"old"[..]), vec!["f"]), ("g", None, vec!["f"])] {
        let mut peek = Peek(&t, name, was, vec![], false);
        exp.store_file_with_metadata(name.as_bytes(), &mut peek, 3, &info(FileKind::File, 0o100644, 3)).unwrap();
        if unnamed {
            assert_eq!(peek.3, before, "{name}");
        } else {
            assert!(
                peek.3.len() == before.len() + 1 && peek.3[0].starts_with(".plakar-restore-"),
                "{name}: {:?}",
                peek.3
            );
        }
        assert_eq!(fs::read(t.join(name)).unwrap(), b"new");
        assert_eq!(mode(&t.join(name)), 0o644);
    }
    let mut names: Vec<_> = fs::read_dir(&t).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["f", "g"]);
}

/// A symlink already in the target where the snapshot has a directory is replaced by the
/// directory (as tar and rsync do), and nothing is written through it.
#[test]
fn a_symlink_in_the_target_is_replaced_not_followed() {
    let env = Env::new();
    let o = outside(&env, "hello.txt");
    let data = env.path("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/hello.txt"), "from the snapshot").unwrap();
    chmod(&data.join("sub"), 0o777);
    env.create();
    let id = env.backup(&data);
    let t = env.path("target");
    fs::create_dir_all(&t).unwrap();
    std::os::unix::fs::symlink(&o, t.join("sub")).unwrap();
    env.at(&["restore", "-to", t.to_str().unwrap(), &id[..8]]).assert().success();
    assert!(fs::symlink_metadata(t.join("sub")).unwrap().is_dir());
    assert_eq!(fs::read_to_string(t.join("sub/hello.txt")).unwrap(), "from the snapshot");
    assert_eq!(mode(&t.join("sub")), 0o777);
    assert_untouched(&o, "hello.txt");
}

/// The same race through the binary, made deterministic: the restore runs on one thread and
/// prints one KO line per unreadable file of `d` before it reaches `d/zz-last`, more than a
/// pipe holds, so it cannot get past them while the test holds its stderr unread. The test
/// waits for the first of those lines (`d` is created by then), swaps `d` for a symlink to
/// a directory outside, and only then lets the restore go on.
#[test]
fn restore_refuses_a_directory_swapped_for_a_symlink_mid_restore() {
    let env = Env::new();
    let o = outside(&env, "zz-last");
    let data = env.path("data");
    fs::create_dir_all(data.join("d")).unwrap();
    let long = "n".repeat(180);
    for i in 0..2000 {
        fs::write(data.join(format!("d/unreadable-{i:04}-{long}")), "x").unwrap();
    }
    fs::write(data.join("d/zz-last"), "from the snapshot").unwrap();
    chmod(&data.join("d"), 0o777);
    assert_eq!(crate::util::flaky::flaky_backup(&env, &data), 2000);
    let id = env.latest();
    let t = env.path("target");

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .args(["at", &env.store(), "restore", "-concurrency", "1", "-to", t.to_str().unwrap(), &id[..8]])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        let first = l.contains("KO ✘ d/unreadable-");
        stderr.push(l);
        if first {
            break;
        }
    }
    assert!(stderr.last().is_some_and(|l| l.contains("d/unreadable-0000")), "{stderr:?}");
    fs::rename(t.join("d"), t.join("d.moved")).unwrap();
    std::os::unix::fs::symlink(&o, t.join("d")).unwrap();
    stderr.extend(lines.map(|l| l.unwrap()));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();

    assert_untouched(&o, "zz-last");
    assert_eq!(status.code(), Some(3), "{stdout}");
    let ko = |p: &str| stderr.iter().find(|l| l.contains(&format!("KO ✘ {p}: "))).cloned();
    let last = ko("d/zz-last").unwrap_or_else(|| panic!("no KO line for d/zz-last: {:?}", &stderr[2000..]));
    assert!(last.contains("symlink"), "{last}");
    assert!(ko("d").is_some_and(|l| l.contains("symlink")), "{:?}", &stderr[2000..]);
    assert!(stdout.contains("with 2002 errors"), "{stdout}");
}

#[test]
fn single_file_snapshot_restores_under_its_name() {
    let env = Env::new();
    let f = env.path("var/dump.sql");
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(&f, "CREATE TABLE t (x int);\n").unwrap();
    chmod(&f, 0o640);
    env.create();
    let id = env.backup(&f);
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("without errors"));
    assert_eq!(fs::read_to_string(out.join("dump.sql")).unwrap(), "CREATE TABLE t (x int);\n");
    assert_eq!(mode(&out.join("dump.sql")), 0o640);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn single_file_snapshot_drills() {
    let env = Env::new();
    let f = env.path("var/dump.sql");
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(&f, noise(300_000, 3)).unwrap();
    env.create();
    let id = env.backup(&f);
    let out = env.path("drilled");
    let o = env.at(&["drill", "-keep", "-to", out.to_str().unwrap(), &id[..8]]).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("without errors") && stdout.contains("files: 1 of 1"), "{stdout}");
    assert_eq!(fs::read(out.join("dump.sql")).unwrap(), fs::read(&f).unwrap());
    // Against the live file too: unchanged.
    let o = env.at(&["drill", "-against", f.to_str().unwrap(), &id[..8]]).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("changed: 0, added: 0"), "{stdout}");
}

/// A tree with every kind of backup-time error: a directory that could not be listed, a
/// file that could not be read (one empty, one not), an entry that could not be described.
fn tree_with_errors(data: &Path) {
    sample_tree(data);
    fs::create_dir_all(data.join("unlistable")).unwrap();
    fs::write(data.join("unlistable/inside"), "never seen").unwrap();
    fs::write(data.join("unreadable.txt"), "secret").unwrap();
    fs::write(data.join("unreadable-empty"), "").unwrap();
    fs::write(data.join("unstatable"), "?").unwrap();
}

#[test]
fn entries_with_backup_time_errors_fail_the_restore() {
    let env = Env::new();
    let data = env.path("data");
    tree_with_errors(&data);
    assert_eq!(crate::util::flaky::flaky_backup(&env, &data), 4);
    let id = env.latest();
    let out = env.path("out");
    let o = env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("with 4 errors"), "{stdout}");
    for p in ["unlistable", "unreadable.txt", "unreadable-empty", "unstatable"] {
        let line = format!("{}: KO ✘ {p}: ", &id[..8]);
        assert!(stderr.contains(&line) && stderr.contains("at backup time"), "{line} in {stderr}");
    }
    // What could be restored is: the rest of the tree, and the directory itself, empty.
    assert_eq!(fs::read_to_string(out.join("sub/passwd")).unwrap(), "root:x:0:0:root:/root:/bin/bash\n");
    assert!(out.join("unlistable").is_dir() && fs::read_dir(out.join("unlistable")).unwrap().count() == 0);
    assert!(!out.join("unreadable.txt").exists() && !out.join("unreadable-empty").exists());

    // The directory alone, as a subtree.
    let o = env
        .at(&["restore", "-to", env.path("out2").to_str().unwrap(), &format!("{}:unlistable", &id[..8])])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("KO ✘ unlistable: "));
    assert!(env.path("out2/unlistable").is_dir());

    // Drill says the same.
    fs::create_dir_all(env.path("tmp")).unwrap();
    let o = env.at(&["drill", &id[..8]]).env("TMPDIR", env.path("tmp")).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("with 4 unreadable files"), "{stdout}");
    for p in ["unlistable", "unreadable.txt", "unreadable-empty", "unstatable"] {
        assert!(stderr.contains(&format!("{p}: ")), "{p} in {stderr}");
    }
}

/// The same with a real `plakar backup` of a directory made unreadable by its mode. Root
/// reads it anyway, so this variant only runs for other users; the engine-crafted test
/// above covers root.
#[test]
fn directory_unreadable_by_mode_fails_the_restore() {
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: running as root, which lists a mode 000 directory anyway");
        return;
    }
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    fs::create_dir_all(data.join("locked")).unwrap();
    fs::write(data.join("locked/inside"), "x").unwrap();
    chmod(&data.join("locked"), 0o000);
    env.create();
    env.at(&["backup", data.to_str().unwrap()]).assert().code(3);
    chmod(&data.join("locked"), 0o755);
    let id = env.latest();
    let o = env.at(&["restore", "-to", env.path("out").to_str().unwrap(), &id[..8]]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("KO ✘ locked: "));
    assert!(env.path("out/locked").is_dir());
}
