//! `plakar mount` against the kernel's FUSE: the mounted tree compared with the source by
//! `diff -r`, random-offset reads of a many-chunk file, recorded modes and times by stat,
//! read-only refusals, the by-date view, and a clean unmount on SIGTERM and SIGINT. Also
//! the engine's ranged reads: only the chunks covering a range are read.
use crate::engine::{new_repo, reopen};
use crate::util::*;
use plakar::connectors::fs::FsImporter;
use plakar::connectors::memory::MemoryStore;
use plakar::kloset::ops::backup;
use plakar::kloset::progress::NoProgress;
use plakar::kloset::ranged::{ChunkCache, RangedFile};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether FUSE can be used here; without it, a failure under PLAKAR_REQUIRE_SERVERS (the
/// test command sets it), else the test says so and returns.
fn fuse_ready() -> bool {
    let dev = fs::OpenOptions::new().read(true).write(true).open("/dev/fuse");
    let root = unsafe { libc::geteuid() } == 0;
    let helper = ["fusermount3", "fusermount"].iter().any(|h| Command::new(h).arg("-V").output().is_ok());
    let why = match (dev, root || helper) {
        (Err(e), _) => format!("/dev/fuse cannot be opened: {e}"),
        (Ok(_), false) => "not root and no fusermount3 (apt-get install fuse3)".to_string(),
        (Ok(_), true) => return true,
    };
    if std::env::var_os("PLAKAR_REQUIRE_SERVERS").is_some() {
        panic!("FUSE is needed for the mount tests: {why}");
    }
    eprintln!("skipping a mount test: {why}");
    false
}

fn mounted(dir: &Path) -> bool {
    let want = dir.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// A running `plakar mount`; killed and detached if the test fails first.
struct Mount {
    child: Option<Child>,
    dir: PathBuf,
}

impl Mount {
    /// `plakar at STORE mount ARGS... MNT`.
    fn start(env: &Env, args: &[&str]) -> Mount {
        let dir = m_dir(env);
        let mut all = args.to_vec();
        all.push(&dir);
        Mount::start_with(env, &all)
    }

    fn start_with(env: &Env, args: &[&str]) -> Mount {
        let dir = env.path("mnt");
        fs::create_dir_all(&dir).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("plakar"))
            .current_dir(env.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", env.path("home"))
            .env("PLAKAR_PASSPHRASE", PASS)
            .arg("at")
            .arg(env.store())
            .arg("mount")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Mount { child: Some(child), dir };
        let start = Instant::now();
        while !mounted(&m.dir) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                m.child.take().unwrap().stderr.unwrap().read_to_string(&mut err).unwrap();
                panic!("plakar mount exited with {st} before mounting: {err}");
            }
            assert!(start.elapsed() < Duration::from_secs(30), "not mounted after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// Sends a signal and waits for the command; returns its exit code.
    fn stop(mut self, sig: i32) -> i32 {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, sig) };
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < Duration::from_secs(20), "plakar mount still running 20 s after signal {sig}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Pseudo-random bytes: incompressible, so chunks keep their size.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn mounted_snapshot_matches_the_source() {
    if !fuse_ready() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    // About 12 chunks at the default 1 MiB average.
    let big = noise(12 << 20, 7);
    fs::write(src.join("sub/many-chunks.bin"), &big).unwrap();
    // A directory the kernel lists over many readdir calls.
    fs::create_dir(src.join("many")).unwrap();
    for i in 0..1500 {
        fs::write(src.join(format!("many/file-{i:04}")), i.to_string()).unwrap();
    }
    fs::set_permissions(src.join("sub"), std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    filetime::set_file_mtime(src.join("hello.txt"), filetime::FileTime::from_unix_time(1_600_000_000, 123_000_000))
        .unwrap();
    env.create();
    let id = env.backup(&src);
    let m = Mount::start(&env, &[]);
    let snap = m.dir.join(&id[..8]);
    let inside = snap.join(src.strip_prefix("/").unwrap());

    // Random reads first, before anything else brings the file into the page cache.
    let mut f = fs::File::open(inside.join("sub/many-chunks.bin")).unwrap();
    let mut x: u64 = 0x2545f4914f6cdd1d;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % big.len() as u64) as usize;
        let len = ((x >> 32) % (3 << 20)) as usize;
        let mut got = vec![0u8; len];
        f.seek(SeekFrom::Start(off as u64)).unwrap();
        let mut n = 0;
        while n < len {
            let r = f.read(&mut got[n..]).unwrap();
            if r == 0 {
                break;
            }
            n += r;
        }
        let want = &big[off..(off + len).min(big.len())];
        assert_eq!(n, want.len(), "short read at {off}");
        assert!(got[..n] == *want, "bytes differ at offset {off}, length {len}");
    }
    drop(f);

    // The whole tree: contents, kinds, link targets, modes and mtimes.
    assert_same_tree(&src, &inside);
    assert_eq!(fs::read_dir(inside.join("many")).unwrap().count(), 1500);
    let (a, b) = (fs::metadata(src.join("sub")).unwrap(), fs::metadata(inside.join("sub")).unwrap());
    assert_eq!((a.mode(), a.mtime(), a.uid()), (b.mode(), b.mtime(), b.uid()), "a directory's recorded attributes");
    let h = fs::metadata(inside.join("hello.txt")).unwrap();
    assert_eq!((h.mtime(), h.mtime_nsec()), (1_600_000_000, 123_000_000));
    assert_eq!(h.size(), 12);
    // `ls -l` as a user sees it.
    let ls = Command::new("ls").arg("-l").arg(&inside).output().unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains("link -> hello.txt"), "{ls}");
    assert!(ls.lines().any(|l| l.starts_with("drwxr-x---") && l.ends_with(" sub")), "{ls}");

    // by-date and latest lead to the snapshot.
    assert_eq!(fs::read_link(m.dir.join("latest")).unwrap(), Path::new(&id[..8]));
    let dates: Vec<_> = fs::read_dir(m.dir.join("by-date")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dates.len(), 1);
    assert_eq!(fs::read_link(&dates[0]).unwrap(), Path::new("..").join(&id[..8]));
    assert_eq!(fs::read(dates[0].join(src.strip_prefix("/").unwrap()).join("hello.txt")).unwrap(), b"hello world\n");

    // Read-only.
    let erofs = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(erofs(fs::write(inside.join("new"), b"x")), Some(libc::EROFS));
    assert_eq!(erofs(fs::write(inside.join("hello.txt"), b"x")), Some(libc::EROFS));
    assert_eq!(erofs(fs::create_dir(inside.join("d"))), Some(libc::EROFS));
    assert_eq!(erofs(fs::remove_file(inside.join("hello.txt"))), Some(libc::EROFS));
    assert_eq!(fs::read(inside.join("hello.txt")).unwrap(), b"hello world\n", "left as it was");

    assert_eq!(m.stop(libc::SIGTERM), 0, "exit code after SIGTERM");
    assert!(!mounted(&env.path("mnt")), "still mounted after SIGTERM");
}

#[test]
fn ctrl_c_unmounts_and_several_snapshots_show_by_id_and_date() {
    if !fuse_ready() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    env.create();
    let mut ids = vec![];
    for (i, day) in ["2024-01-02T03:04:05Z", "2024-06-07T08:09:10Z"].iter().enumerate() {
        fs::write(src.join("f"), format!("version {i}")).unwrap();
        env.at(&["backup", "-force-timestamp", day, src.to_str().unwrap()]).assert().success();
        ids.push(env.latest());
    }
    // Only the first one, and only the directory that was backed up (SNAP:PATH).
    let spec = format!("{}:{}", &ids[0][..8], src.display());
    let m = Mount::start_with(&env, &["-to", &m_dir(&env), &spec]);
    let names: Vec<String> =
        fs::read_dir(&m.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(fs::read(m.dir.join(&ids[0][..8]).join("f")).unwrap(), b"version 0");
    assert_eq!(m.stop(libc::SIGINT), 0, "exit code after SIGINT");
    assert!(!mounted(&env.path("mnt")));

    let m = Mount::start(&env, &[]);
    let inside = |id: &str| m.dir.join(&id[..8]).join(src.strip_prefix("/").unwrap()).join("f");
    assert_eq!(fs::read(inside(&ids[0])).unwrap(), b"version 0");
    assert_eq!(fs::read(inside(&ids[1])).unwrap(), b"version 1");
    let by_date = m.dir.join("by-date");
    assert_eq!(fs::read_link(by_date.join("2024-01-02T03:04:05Z")).unwrap(), Path::new("..").join(&ids[0][..8]));
    assert_eq!(fs::read_link(by_date.join("2024-06-07T08:09:10Z")).unwrap(), Path::new("..").join(&ids[1][..8]));
    assert_eq!(fs::read_link(m.dir.join("latest")).unwrap(), Path::new(&ids[1][..8]));
    let top = fs::metadata(m.dir.join(&ids[0][..8])).unwrap();
    assert_eq!(top.mtime(), 1_704_164_645, "a snapshot's directory is dated as the snapshot");
    assert_eq!(m.stop(libc::SIGTERM), 0);

    // Filters pick snapshots, named or not.
    let m = Mount::start(&env, &["-before", "2024-03-01"]);
    assert!(m.dir.join(&ids[0][..8]).exists() && !m.dir.join(&ids[1][..8]).exists());
    assert_eq!(m.stop(libc::SIGTERM), 0);
    let dir = m_dir(&env);
    let m = Mount::start_with(&env, &["-to", &dir, "-since", "2024-03-01", &ids[0][..8], &ids[1][..8]]);
    assert!(!m.dir.join(&ids[0][..8]).exists() && m.dir.join(&ids[1][..8]).exists());
    assert_eq!(m.stop(libc::SIGTERM), 0);
}

fn m_dir(env: &Env) -> String {
    env.path("mnt").display().to_string()
}

#[test]
fn no_fuse_device_exits_69_with_a_clear_message() {
    let env = Env::new();
    let src = env.path("src");
    sample_tree(&src);
    env.create();
    env.backup(&src);
    fs::create_dir_all(env.path("mnt")).unwrap();
    let out = env
        .at(&["mount", env.path("mnt").to_str().unwrap()])
        .env("PLAKAR_FUSE_DEVICE", env.path("no-such-device"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(err.contains("FUSE is not available") && err.contains("no-such-device"), "{err}");
    let out = env.at(&["mount"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "no mountpoint is a usage error");
}

/// A reader of a byte range decodes only the chunks covering it when the tree records
/// chunk lengths; a file from an older snapshot (no lengths) learns them once, and later
/// reads find them.
#[test]
fn ranged_reads_fetch_only_the_chunks_they_cover() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let data = noise(1 << 20, 3);
    fs::write(src.join("f"), &data).unwrap();
    let repo = new_repo(Arc::new(MemoryStore::new()));
    let h = backup::backup(&repo, &FsImporter::new(&src).unwrap(), &Default::default(), &NoProgress).unwrap();
    let repo = reopen(repo.store.clone());
    let mut path = src.as_os_str().as_encoded_bytes().to_vec();
    path.extend_from_slice(b"/f");
    let entry = repo.lookup(&h, &path).unwrap();
    let n = entry.chunks.len();
    assert!(n > 10, "{n} chunks");
    assert_eq!(entry.lengths.len(), n, "lengths are recorded");
    assert_eq!(entry.lengths.iter().map(|&l| l as u64).sum::<u64>(), data.len() as u64);

    let cache = ChunkCache::new(256 << 10);
    let file = RangedFile::new(&entry);
    let tail = file.read_at(&repo, &cache, data.len() as u64 - 100, 1000).unwrap();
    assert_eq!(tail, &data[data.len() - 100..]);
    assert_eq!(cache.fetched(), 1, "the last chunk only");
    let mid = file.read_at(&repo, &cache, 500_000, 200_000).unwrap();
    assert_eq!(mid, &data[500_000..700_000]);
    assert!(cache.bytes() <= 256 << 10 || cache.fetched() <= 2, "the cache stays within its budget");
    assert!(file.read_at(&repo, &cache, data.len() as u64 + 5, 10).unwrap().is_empty());

    // Without recorded lengths: the first far read walks the chunks before it.
    let mut old = entry.clone();
    old.lengths.clear();
    let cache = ChunkCache::new(256 << 10);
    let file = RangedFile::new(&old);
    assert_eq!(file.read_at(&repo, &cache, data.len() as u64 - 10, 10).unwrap(), &data[data.len() - 10..]);
    assert_eq!(cache.fetched(), n as u64);
    let again = cache.fetched();
    assert_eq!(file.read_at(&repo, &cache, 0, 10).unwrap(), &data[..10]);
    assert_eq!(file.read_at(&repo, &cache, data.len() as u64 - 10, 10).unwrap(), &data[data.len() - 10..]);
    assert!(cache.fetched() <= again + 2, "offsets were learned once");

    // Lengths that lie give an error, not shifted bytes.
    let mut lying = entry.clone();
    lying.lengths.swap(0, 1);
    if lying.lengths[0] != lying.lengths[1] {
        let err = RangedFile::new(&lying).read_at(&repo, &ChunkCache::new(1 << 20), 0, 10).unwrap_err();
        assert!(err.to_string().contains("records"), "{err}");
    }
}
