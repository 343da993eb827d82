//! Extended attributes and special files: backed up by default (`-no-xattr` turns the
//! attributes off), made again on restore, and what a target cannot hold said as a note.
use crate::engine::{new_repo, reopen};
use crate::util::*;
use plakar::connectors::fs::{FsExporter, FsImporter};
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::exporter::Exporter;
use plakar::kloset::importer::{FileInfo, FileKind};
use plakar::kloset::ops::{backup, restore};
use plakar::kloset::progress::NoProgress;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

const BINARY: &[u8] = b"\x00\xff\x01 binary\n\x00";

fn root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn get(p: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(p, name).unwrap()
}

/// The user.* attributes of `p`, sorted.
fn user_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = xattr::list(p)
        .unwrap()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.starts_with("user."))
        .map(|n| (n.clone(), get(p, &n).unwrap()))
        .collect();
    v.sort();
    v
}

/// A tree with attributes on a file (binary and empty values), a directory and a file
/// that keeps none.
fn tree_with_xattrs(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    fs::create_dir_all(src.join("dir")).unwrap();
    fs::write(src.join("file"), "content\n").unwrap();
    fs::write(src.join("plain"), "no attributes\n").unwrap();
    xattr::set(src.join("file"), "user.binary", BINARY).unwrap();
    xattr::set(src.join("file"), "user.empty", b"").unwrap();
    xattr::set(src.join("file"), "user.mime_type", b"text/plain").unwrap();
    xattr::set(src.join("dir"), "user.dir", b"a directory's").unwrap();
    src
}

#[test]
fn xattrs_round_trip_binary_and_empty_values() {
    let env = Env::new();
    env.create();
    let src = tree_with_xattrs(&env);
    let id = env.backup(&src);
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    assert_eq!(user_xattrs(&out.join("file")), user_xattrs(&src.join("file")));
    assert_eq!(get(&out.join("file"), "user.binary").unwrap(), BINARY);
    assert_eq!(get(&out.join("file"), "user.empty").unwrap(), b"");
    assert_eq!(get(&out.join("dir"), "user.dir").unwrap(), b"a directory's");
    assert_eq!(user_xattrs(&out.join("plain")), vec![]);
    assert_eq!(fs::read(out.join("file")).unwrap(), b"content\n");
    // `ls -l` style marks entries with attributes.
    let ls = env.stdout(&["ls", &format!("{id}:{}", src.display())]);
    let line = |n: &str| ls.lines().find(|l| l.ends_with(&format!(" {n}"))).unwrap().to_string();
    assert!(line("file").contains("-rw-r--r--@ "), "{ls}");
    assert!(!line("plain").contains('@'), "{ls}");
}

#[test]
fn no_xattr_leaves_them_out() {
    let env = Env::new();
    env.create();
    let src = tree_with_xattrs(&env);
    // Taken by default: the same source without the flag keeps them.
    let with = env.backup(&src);
    let out = env.path("with");
    env.at(&["restore", "-to", out.to_str().unwrap(), &with]).assert().success();
    assert_eq!(user_xattrs(&out.join("file")).len(), 3);
    env.at(&["backup", "-no-xattr", src.to_str().unwrap()]).assert().success();
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()]).assert().success();
    assert_eq!(fs::read(out.join("file")).unwrap(), b"content\n");
    assert_eq!(user_xattrs(&out.join("file")), vec![]);
    assert_eq!(user_xattrs(&out.join("dir")), vec![]);
}

/// An unchanged file is not read again, but its attributes are those of the new listing: a
/// change of attributes alone (which moves ctime, not mtime) is in the next snapshot, and
/// `diff` reports it.
#[test]
fn an_attribute_change_alone_is_backed_up_again() {
    let env = Env::new();
    env.create();
    let src = tree_with_xattrs(&env);
    let first = env.backup(&src);
    let mtime = fs::metadata(src.join("file")).unwrap().mtime_nsec();
    xattr::set(src.join("file"), "user.mime_type", b"text/markdown").unwrap();
    xattr::remove(src.join("file"), "user.empty").unwrap();
    assert_eq!(fs::metadata(src.join("file")).unwrap().mtime_nsec(), mtime);
    let second = env.backup(&src);
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &second]).assert().success();
    assert_eq!(get(&out.join("file"), "user.mime_type").unwrap(), b"text/markdown");
    assert_eq!(get(&out.join("file"), "user.empty"), None);
    assert_eq!(get(&out.join("file"), "user.binary").unwrap(), BINARY);
    // Unchanged again: the attributes are kept, not dropped with the reused entry.
    let third = env.backup(&src);
    let out3 = env.path("out3");
    env.at(&["restore", "-to", out3.to_str().unwrap(), &third]).assert().success();
    assert_eq!(user_xattrs(&out3.join("file")), user_xattrs(&src.join("file")));
    let diff = env.stdout(&["diff", &first, &second]);
    assert!(diff.lines().any(|l| l.starts_with("~ ") && l.ends_with("/file")), "{diff}");
    assert!(!diff.contains("plain"), "{diff}");
}

#[test]
fn fifos_are_restored_as_fifos_and_sockets_are_noted() {
    let env = Env::new();
    env.create();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), "x").unwrap();
    let fifo = src.join("pipe");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o640), 0)
        .unwrap();
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o640)).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let id = env.backup(&src);
    let out = env.path("out");
    // Something in the way of the pipe is replaced, as any restored entry replaces it.
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("pipe"), "in the way").unwrap();
    let r = env.at(&["restore", "-to", out.to_str().unwrap(), &id]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert_eq!(r.status.code(), Some(0), "{stdout}{stderr}");
    let m = fs::symlink_metadata(out.join("pipe")).unwrap();
    assert!(m.file_type().is_fifo(), "{:?}", m.file_type());
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(m.mtime(), fs::symlink_metadata(&fifo).unwrap().mtime());
    // The socket: not made, and said so.
    assert!(!out.join("sock").exists());
    assert!(stderr.contains("note: sock: socket not restored"), "{stderr}");
    assert!(stdout.contains("restore completed without errors but with 1 note"), "{stdout}");
}

#[test]
fn device_nodes_round_trip_as_root() {
    if !root() {
        eprintln!("skipped: only root can make device nodes");
        return;
    }
    let env = Env::new();
    env.create();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let dev = rustix::fs::makedev(1, 3);
    let mode = rustix::fs::Mode::from_raw_mode(0o620);
    rustix::fs::mknodat(rustix::fs::CWD, src.join("null"), rustix::fs::FileType::CharacterDevice, mode, dev).unwrap();
    let blk = rustix::fs::makedev(7, 200);
    rustix::fs::mknodat(rustix::fs::CWD, src.join("loop"), rustix::fs::FileType::BlockDevice, mode, blk).unwrap();
    // Root's attribute namespaces go on nodes and symlinks too (user.* cannot).
    xattr::set(src.join("null"), "security.plakar_test", b"node").unwrap();
    std::os::unix::fs::symlink("null", src.join("link")).unwrap();
    xattr::set(src.join("link"), "security.plakar_test", b"link").unwrap();
    let id = env.backup(&src);
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id]).assert().success();
    let null = fs::symlink_metadata(out.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), dev);
    let lp = fs::symlink_metadata(out.join("loop")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), blk);
    assert_eq!(lp.mode() & 0o7777, fs::symlink_metadata(src.join("loop")).unwrap().mode() & 0o7777);
    assert_eq!(get(&out.join("null"), "security.plakar_test").unwrap(), b"node");
    assert_eq!(get(&out.join("link"), "security.plakar_test").unwrap(), b"link");
    assert_eq!(fs::read_link(out.join("link")).unwrap(), Path::new("null"));
    // A tar archive holds them too.
    let tar = env.at(&["archive", "-format", "tar", "-output", "-", &id]).output().unwrap();
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    let mut a = tar::Archive::new(tar.stdout.as_slice());
    let null = a.entries().unwrap().map(|e| e.unwrap()).find(|e| e.path().unwrap().ends_with("null")).unwrap();
    assert_eq!(null.header().entry_type(), tar::EntryType::Char);
    assert_eq!((null.header().device_major().unwrap(), null.header().device_minor().unwrap()), (Some(1), Some(3)));
}

/// The binary run as the unprivileged user `nobody`.
fn as_nobody(env: &Env, args: &[&str]) -> std::process::Output {
    let home = env.path("nobody");
    fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let st = std::process::Command::new("chmod").args(["-R", "a+rwX", &env.store()]).status().unwrap();
    assert!(st.success());
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("plakar"))
        .arg("at")
        .arg(env.store())
        .args(args)
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("PLAKAR_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

/// As a user: a device node cannot be made (a KO line, exit 3, the rest restored), and the
/// attributes only root restores are left out with a note.
#[test]
fn a_user_restore_reports_device_nodes_and_notes_root_attributes() {
    if !root() {
        eprintln!("skipped: needs root to make the snapshot and to run as another user");
        return;
    }
    let env = Env::new();
    env.create();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mode = rustix::fs::Mode::from_raw_mode(0o600);
    let dev = rustix::fs::makedev(1, 3);
    rustix::fs::mknodat(rustix::fs::CWD, src.join("null"), rustix::fs::FileType::CharacterDevice, mode, dev).unwrap();
    fs::write(src.join("file"), "x").unwrap();
    xattr::set(src.join("file"), "user.kept", b"yes").unwrap();
    xattr::set(src.join("file"), "security.plakar_test", b"root only").unwrap();
    let id = env.backup(&src);
    let out = env.path("out");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
    let r = as_nobody(&env, &["restore", "-to", out.to_str().unwrap(), &id]);
    let (stdout, stderr) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert_eq!(r.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("KO ✘ null: character device not restored: only root can make device nodes"), "{stderr}");
    assert!(stderr.contains("note: 1 extended attribute outside user.* not restored"), "{stderr}");
    assert!(stdout.contains("restore completed with 1 errors and 1 note"), "{stdout}");
    assert!(!out.join("null").exists());
    assert_eq!(fs::read(out.join("file")).unwrap(), b"x");
    assert_eq!(get(&out.join("file"), "user.kept").unwrap(), b"yes");
    assert_eq!(get(&out.join("file"), "security.plakar_test"), None);
}

/// What an exporter without `special` or attributes gets: the defaults, notes, and a
/// restore that is not a failure.
struct PutOnly(FsExporter);

impl Exporter for PutOnly {
    fn create_dir(&self, p: &[u8]) -> io::Result<()> {
        self.0.create_dir(p)
    }
    fn store_file(&self, p: &[u8], data: &mut dyn Read, size: u64) -> io::Result<()> {
        self.0.store_file(p, data, size)
    }
    fn symlink(&self, p: &[u8], t: &[u8]) -> io::Result<()> {
        self.0.symlink(p, t)
    }
    fn hardlink(&self, p: &[u8], e: &[u8]) -> io::Result<()> {
        self.0.hardlink(p, e)
    }
    fn set_metadata(&self, _: &[u8], _: &FileInfo) -> io::Result<()> {
        Ok(())
    }
    fn finish(&self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_target_that_cannot_hold_them_notes_what_it_left_out() {
    let env = Env::new();
    let src = tree_with_xattrs(&env);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let h = backup::backup(&repo, &FsImporter::new(&src).unwrap(), &Default::default(), &NoProgress).unwrap();
    let repo = reopen(repo.store.clone());
    let root = repo.lookup(&h, src.to_str().unwrap().as_bytes()).unwrap();
    let out = env.path("out");
    let r = restore::restore(&repo, &root, b"", &PutOnly(FsExporter::new(&out, true).unwrap()), &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.notes.iter().any(|(p, n)| p == "pipe" && n == "named pipe not restored: this target cannot hold one"));
    // The file and the directory: two entries with attributes, one note for them all.
    assert!(r.notes.iter().any(|(p, n)| p.is_empty() && n.contains("extended attributes of 2 entries not restored")));
    assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    assert_eq!(fs::read(out.join("file")).unwrap(), b"content\n");
}

/// A snapshot written before attributes and device numbers were recorded: its entries have
/// neither field, and it restores as before, its named pipes made now; a device, whose
/// number it does not hold, is reported.
#[test]
fn a_snapshot_without_the_new_fields_still_restores() {
    use plakar::kloset::blob::BlobType;
    use plakar::kloset::packer::Packer;
    use plakar::kloset::state::State;
    use plakar::kloset::tree::{Entry, Tree};
    let env = Env::new();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let packer = Packer::new(repo.store.clone(), repo.keys.clone(), &repo.index, None, 1 << 20, 1);
    let chunk = repo.keys.mac(b"old");
    packer.add(BlobType::Chunk, chunk, b"old").unwrap();
    let entry = |name: &[u8], kind, mode| Entry {
        name: name.to_vec(),
        info: FileInfo { kind: Some(kind), mode, mtime_ns: 1_600_000_000_000_000_000, ..Default::default() },
        ..Default::default()
    };
    let mut file = entry(b"file", FileKind::File, 0o100644);
    file.info.size = 3;
    file.chunks = vec![chunk];
    let tree = Tree {
        version: 1,
        entries: vec![entry(b"dev", FileKind::Special, 0o020600), file, entry(b"pipe", FileKind::Special, 0o010644)],
    };
    let bytes = tree.encode();
    // What the first snapshots wrote: neither field.
    for key in [&b"xattrs"[..], b"rdev"] {
        assert!(!bytes.windows(key.len()).any(|w| w == key), "{key:?} written for an entry without it");
    }
    let tid = repo.keys.mac(&bytes);
    packer.add(BlobType::Tree, tid, &bytes).unwrap();
    repo.write_state(State { created: 0, blobs: packer.finish().unwrap(), ..Default::default() }).unwrap();
    let repo = reopen(repo.store.clone());
    let root = Entry { subtree: Some(tid), ..entry(b"x", FileKind::Dir, 0o040755) };
    let out = env.path("out");
    let r = restore::restore(&repo, &root, b"", &FsExporter::new(&out, true).unwrap(), &NoProgress).unwrap();
    assert_eq!(fs::read(out.join("file")).unwrap(), b"old");
    let pipe = fs::symlink_metadata(out.join("pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o7777, 0o644);
    assert_eq!(pipe.mtime(), 1_600_000_000);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].0 == "dev" && r.errors[0].1.contains("does not hold its device number"), "{:?}", r.errors);
    assert!(!out.join("dev").exists());
}
