//! Damage every object of a small store in turn, fill the restore target's disk, run
//! maintenance beside a backup: nothing is lost silently and nothing panics.
use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

#[derive(Debug, Clone, Copy)]
enum Damage {
    FlipByte,
    Truncate,
    Remove,
}

fn damage(p: &Path, how: Damage) {
    match how {
        Damage::FlipByte => {
            let mut b = fs::read(p).unwrap();
            let i = b.len() / 2;
            b[i] ^= 0x40;
            fs::write(p, b).unwrap();
        }
        Damage::Truncate => {
            let len = fs::metadata(p).unwrap().len();
            fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len / 2).unwrap();
        }
        Damage::Remove => fs::remove_file(p).unwrap(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Proc::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}

/// Every object of the store: CONFIG, packfiles and states.
fn objects(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        walk(store).into_iter().filter(|p| p.is_file() && !p.starts_with(store.join("locks"))).collect();
    v.sort();
    v
}

#[test]
fn every_damaged_object_is_found() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.cmd().args(["at", &env.store(), "create", "-packfile-mib", "1"]).assert().success();
    env.backup(&data);
    fs::write(data.join("second.bin"), noise(1_500_000, 3)).unwrap();
    let second = env.backup(&data);
    let store = PathBuf::from(env.store());
    let objs = objects(&store);
    assert!(objs.len() >= 6, "a store with several packfiles and states: {objs:?}");
    let newest = newest_state(&store);
    let (mut tried, mut detected) = (0, 0);
    let mut misses = Vec::new();
    for obj in &objs {
        let rel = obj.strip_prefix(&store).unwrap();
        for how in [Damage::FlipByte, Damage::Truncate, Damage::Remove] {
            let copy = env.path(&format!("copy-{tried}"));
            copy_dir(&store, &copy);
            damage(&copy.join(rel), how);
            tried += 1;
            let check = env.cmd().args(["at", copy.to_str().unwrap(), "check"]).output().unwrap();
            let code = check.status.code();
            let err = String::from_utf8_lossy(&check.stderr).to_string();
            assert!(!err.contains("panicked"), "{rel:?} {how:?}: {err}");
            // Damage is found (65), or the store refuses to open with a clear cause: CONFIG
            // removed means no store there (66).
            let expected = if rel == Path::new("CONFIG") && matches!(how, Damage::Remove) { 66 } else { 65 };
            // The newest state removed: no later state was built on it, so it cannot be told
            // from a commit that never finished (docs/LOCKING.md, "Lineage"); check names the
            // snapshot it held as not committed, and does not call it damage.
            let untellable = *obj == newest && matches!(how, Damage::Remove);
            let found =
                if untellable { code == Some(0) && err.contains("not committed") } else { code == Some(expected) };
            if found {
                detected += 1;
            } else {
                misses.push(format!("{} {how:?}: exit {code:?}: {err}", rel.display()));
            }
            // Restore of the newest snapshot: never a panic, never success on damage that
            // check found in a packfile it needs.
            let out = env.path(&format!("out-{tried}"));
            let r = env
                .cmd()
                .args(["at", copy.to_str().unwrap(), "restore", "-to", out.to_str().unwrap(), &second[..8]])
                .output()
                .unwrap();
            let rerr = String::from_utf8_lossy(&r.stderr);
            assert!(!rerr.contains("panicked") && r.status.code() != Some(101), "{rel:?} {how:?}: {rerr}");
            fs::remove_dir_all(&copy).unwrap();
            let _ = fs::remove_dir_all(&out);
        }
    }
    eprintln!("corruptions detected: {detected} of {tried} ({} objects x 3 kinds of damage)", objs.len());
    assert!(misses.is_empty(), "{} of {tried} undetected or misreported:\n{}", misses.len(), misses.join("\n"));
}

/// The state written last (the head of the lineage).
fn newest_state(store: &Path) -> PathBuf {
    let states: Vec<PathBuf> = walk(&store.join("states")).into_iter().filter(|p| p.is_file()).collect();
    states.into_iter().max_by_key(|p| fs::metadata(p).unwrap().modified().unwrap()).unwrap()
}

/// A state lost after another was built on it is damage (exit 65); the newest one lost
/// looks like a commit that never finished (check says so, exit 0). Either way
/// `check -repair` brings its snapshot back from the packfiles' own indexes.
#[test]
fn a_lost_state_is_found_and_repaired_from_packfile_indexes() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    fs::write(data.join("second.bin"), noise(500_000, 9)).unwrap();
    env.backup(&data);
    let store = PathBuf::from(env.store());
    let states: Vec<PathBuf> = walk(&store.join("states")).into_iter().filter(|p| p.is_file()).collect();
    assert_eq!(states.len(), 2);
    let newest = newest_state(&store);
    for (i, state) in states.iter().enumerate() {
        let copy = env.path(&format!("copy-{i}"));
        copy_dir(&store, &copy);
        fs::remove_file(copy.join(state.strip_prefix(&store).unwrap())).unwrap();
        let at = |args: &[&str]| {
            let mut c = env.cmd();
            c.arg("at").arg(&copy).args(args);
            c
        };
        if *state == newest {
            at(&["check"]).assert().success().stderr(predicates::str::contains("not committed"));
        } else {
            at(&["check"]).assert().code(65).stderr(predicates::str::contains("is missing (state"));
        }
        at(&["check", "-repair"]).assert().success().stdout(predicates::str::contains("snapshots recovered"));
        let ls = at(&["ls"]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&ls.stdout).lines().count(), 2, "both snapshots are back");
        let out = env.path(&format!("out-{i}"));
        let id = String::from_utf8_lossy(&ls.stdout).split_whitespace().nth(1).unwrap().to_string();
        at(&["restore", "-to", out.to_str().unwrap(), &id]).assert().success();
        assert_same_tree(&data, &out);
    }
}

#[test]
fn full_restore_target_is_named_and_keeps_what_was_restored() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("big.bin"), noise(3_000_000, 4)).unwrap();
    fs::write(data.join("small.txt"), "small").unwrap();
    env.create();
    let id = env.backup(&data);
    let out = env.path("out");
    let _disk = SmallDisk::mount(&out, "2m");
    env.at(&["restore", "-to", out.to_str().unwrap(), &id[..8]])
        .assert()
        .code(74)
        .stderr(predicates::str::contains("restore target is full"));
    // No partial file under a real name, no temporary left behind.
    let names: Vec<String> =
        fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["small.txt".to_string()], "{names:?}");
}

#[test]
fn maintenance_beside_a_running_backup_removes_nothing_it_needs() {
    let env = Env::new();
    let data = env.path("data");
    sample_tree(&data);
    env.create();
    env.backup(&data);
    for i in 0..6 {
        fs::write(data.join(format!("n{i}.bin")), noise(8_000_000, 40 + i)).unwrap();
    }
    let mut backup = std::process::Command::new(assert_cmd::cargo::cargo_bin("plakar"))
        .env("PLAKAR_PASSPHRASE", PASS)
        .env("HOME", env.path("home"))
        .args(["at", &env.store(), "backup", data.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the backup holds its lock, then run maintenance and rm beside it.
    let locks = PathBuf::from(env.store()).join("locks");
    let t0 = std::time::Instant::now();
    while fs::read_dir(&locks).map(|d| d.count()).unwrap_or(0) == 0 && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let m = env.at(&["maintenance"]).output().unwrap();
    let code = m.status.code();
    assert!(code == Some(75) || code == Some(0), "maintenance: {code:?} {}", String::from_utf8_lossy(&m.stderr));
    assert!(backup.wait().unwrap().success(), "the backup beside maintenance succeeds");
    env.at(&["check"]).assert().success();
    let out = env.path("out");
    env.at(&["restore", "-to", out.to_str().unwrap(), &env.latest()[..8]]).assert().success();
    assert_same_tree(&data, &out);
}
