//! A store on a disk that fills up during a backup (issue 20, case 5). The disk is a real
//! tmpfs of a few MiB, mounted in a private user and mount namespace (`unshare -rm`), and
//! filled so that a backup runs out of space at every step of its work in turn: packfiles,
//! the packfile of trees and header, the state that commits it, its lock. After each
//! failure: `check` passes (what a failed commit leaves is not damage) and says so, a
//! retry once space is back succeeds, and `check` passes again. At the end, maintenance
//! removes every leftover, and `check` has nothing left to say about them.

use crate::util;

use std::process::Command;

const SCRIPT: &str = r#"
set -u
disk=$WORK/disk
mkdir -p "$disk" "$WORK/src"
mount -t tmpfs -o size=3m tmpfs "$disk" || { echo "mount failed"; exit 90; }
S=$disk/store
p() { "$PLAKAR" at "$S" "$@"; }
p create -plaintext >/dev/null 2>&1 || { echo "create failed"; exit 91; }
avail() { echo $(( $(stat -f -c '%a * %S' "$disk") )); }
i=0
for free in $FREES; do
  i=$((i + 1))
  # New content each round, so every backup writes data, not only a new header.
  for f in 1 2 3 4 5 6 7 8 9 10 11 12; do head -c 4000 /dev/urandom >"$WORK/src/f$f"; done
  mkdir -p "$WORK/src/d$i" && head -c 100 /dev/urandom >"$WORK/src/d$i/x"
  rm -f "$disk/filler"
  a=$(avail); fill=$(( a > free ? a - free : 0 ))
  head -c "$fill" /dev/zero >"$disk/filler" 2>/dev/null
  p backup "$WORK/src" >"$WORK/out" 2>&1; b=$?
  p check >"$WORK/check" 2>&1; c=$?
  echo "round free=$free backup=$b check=$c"
  sed 's/^/  check: /' "$WORK/check"
  [ "$b" = 0 ] || sed 's/^/  backup: /' "$WORK/out"
  rm -f "$disk/filler"
  p backup "$WORK/src" >"$WORK/out" 2>&1; b=$?
  p check >"$WORK/check" 2>&1; c=$?
  echo "retry free=$free backup=$b check=$c"
  sed 's/^/  check: /' "$WORK/check"
done
p maintenance >"$WORK/out" 2>&1; m=$?
p check >"$WORK/check" 2>&1; c=$?
echo "final maintenance=$m check=$c"
sed 's/^/  maintenance: /' "$WORK/out"
sed 's/^/  check: /' "$WORK/check"
"#;

#[test]
fn a_commit_cut_short_by_a_full_disk_is_not_damage() {
    let env = util::Env::new();
    // Free space left before each backup: from none at all to more than a backup needs,
    // in tmpfs pages, so each step of the commit is the one that fails in some round.
    let frees: Vec<String> = (0..28).map(|k| (k * 4096).to_string()).collect();
    let out = Command::new("unshare")
        .args(["-rm", "bash", "-c", SCRIPT])
        .env("WORK", env.dir.path())
        .env("PLAKAR", assert_cmd::cargo::cargo_bin("plakar"))
        .env("FREES", frees.join(" "))
        .env("HOME", env.path("home"))
        .env("PLAKAR_PASSPHRASE", util::PASS)
        .output()
        .expect("unshare (util-linux) runs");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the script failed ({:?}):\n{log}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut failed, mut ok) = (0, 0);
    for line in log.lines() {
        let field = |k: &str| line.split(' ').find_map(|f| f.strip_prefix(k)).map(str::to_string);
        if line.starts_with("round ") {
            let b = field("backup=").unwrap();
            // 0: it fitted; 74: out of space, nothing committed.
            assert!(b == "0" || b == "74", "a backup on a full disk must succeed or exit 74:\n{log}");
            if b == "74" {
                failed += 1
            } else {
                ok += 1
            }
        }
        if line.starts_with("round ") || line.starts_with("retry ") || line.starts_with("final ") {
            assert_eq!(
                field("check=").as_deref(),
                Some("0"),
                "check must not call a cut-short commit damage: {line}\n{log}"
            );
        }
        if line.starts_with("retry ") {
            assert_eq!(field("backup=").as_deref(), Some("0"), "a retry with space back must succeed: {line}\n{log}");
        }
        assert!(!line.contains("KO"), "no KO over a cut-short commit: {line}\n{log}");
    }
    assert!(
        failed >= 5 && ok >= 1,
        "the sweep must make backups fail at several steps ({failed} failed, {ok} fitted):\n{log}"
    );
    assert!(log.contains("did not finish"), "check names the leftovers of a commit that did not finish:\n{log}");
    let final_check: Vec<&str> = log.lines().skip_while(|l| !l.starts_with("final ")).collect();
    assert!(final_check.iter().any(|l| l.contains("maintenance=0")), "{log}");
    assert!(
        !final_check.iter().any(|l| l.contains("did not finish")),
        "maintenance removes what failed commits left:\n{log}"
    );
}
