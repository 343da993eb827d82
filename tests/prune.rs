//! Retention: `prune` and `policy` over a year of snapshots laid out with
//! `backup -force-timestamp`. Expected sets are worked out by hand below.
use crate::util::Env;
use std::collections::HashMap;

/// A Monday; every rule is evaluated as if it were this time.
const NOW: &str = "2025-06-30T12:00:00Z";

struct Year {
    env: Env,
    /// Short id -> the snapshot's time (RFC 3339).
    times: HashMap<String, String>,
}

impl Year {
    fn backup(&mut self, at: &str, extra: &[&str]) {
        let src = self.env.path("src").display().to_string();
        let mut args = vec!["backup", "-quiet", "-no-progress", "-force-timestamp", at];
        args.extend(extra);
        args.push(&src);
        let out = self.env.stdout(&args);
        let id = out.split(':').next().unwrap().trim().to_string();
        assert_eq!(id.len(), 8, "{out}");
        self.times.insert(id, at.to_string());
    }

    /// Runs prune (a preview) and returns the kept and deleted times, each sorted.
    fn prune(&self, args: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut a = vec!["prune", "-now", NOW];
        a.extend(args);
        let out = self.env.stdout(&a);
        let (mut keep, mut del) = (vec![], vec![]);
        for l in out.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let t = self.times[f[2]].clone();
            assert_eq!(f[1], t, "{l}");
            match f[0] {
                "keep" => keep.push(t),
                "delete" => del.push(t),
                _ => panic!("unexpected line {l:?}"),
            }
        }
        keep.sort();
        del.sort();
        assert_eq!(keep.len() + del.len(), self.times.len(), "{out}");
        (keep, del)
    }

    fn kept(&self, args: &[&str]) -> Vec<String> {
        self.prune(args).0
    }

    fn ls_times(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .env
            .stdout(&["ls"])
            .lines()
            .map(|l| self.times[l.split_whitespace().nth(1).unwrap()].clone())
            .collect();
        v.sort();
        v
    }
}

/// Weekly on Mondays at 10:00 from 2024-07-01 to 2025-06-30 (53), daily at 10:00 from
/// 2025-06-24 to 06-29 (6), and one more on 2025-06-30 at 11:00: 60 snapshots.
fn year() -> Year {
    let env = Env::new();
    std::fs::create_dir_all(env.path("src")).unwrap();
    std::fs::write(env.path("src/file"), b"retention").unwrap();
    env.at(&["create", "-plaintext"]).assert().success();
    let mut y = Year { env, times: HashMap::new() };
    let start = chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
    for k in 0..53 {
        let d = start + chrono::Duration::weeks(k);
        y.backup(&format!("{d}T10:00:00Z"), &[]);
    }
    for d in 24..=29 {
        y.backup(&format!("2025-06-{d}T10:00:00Z"), &[]);
    }
    y.backup("2025-06-30T11:00:00Z", &[]);
    assert_eq!(y.times.len(), 60);
    y
}

fn t(days: &[&str]) -> Vec<String> {
    let mut v: Vec<String> =
        days.iter().map(|d| if d.contains('T') { format!("{d}:00Z") } else { format!("{d}T10:00:00Z") }).collect();
    v.sort();
    v
}

#[test]
fn rules_keep_the_hand_computed_sets() {
    let y = year();
    // Every snapshot of today, yesterday and the day before (calendar days, UTC).
    assert_eq!(y.kept(&["-days", "3"]), t(&["2025-06-28", "2025-06-29", "2025-06-30", "2025-06-30T11:00"]));
    // The newest of each of the last 7 days.
    assert_eq!(
        y.kept(&["-days", "7", "-per-day", "1"]),
        t(&["2025-06-24", "2025-06-25", "2025-06-26", "2025-06-27", "2025-06-28", "2025-06-29", "2025-06-30T11:00"])
    );
    // The newest of June, May (Monday 26th) and April (Monday 28th).
    assert_eq!(y.kept(&["-months", "3", "-per-month", "1"]), t(&["2025-04-28", "2025-05-26", "2025-06-30T11:00"]));
    // ISO weeks 27 (30th), 26 (23rd-29th), 25 (16th), 24 (9th); and the newest of 2025 and 2024.
    assert_eq!(
        y.kept(&["-weeks", "4", "-per-week", "1", "-years", "2", "-per-year", "1"]),
        t(&["2024-12-30", "2025-06-09", "2025-06-16", "2025-06-29", "2025-06-30T11:00"])
    );
    // A cap without a count: the newest of every year.
    assert_eq!(y.kept(&["-per-year", "1"]), t(&["2024-12-30", "2025-06-30T11:00"]));
    // The last two Mondays, everything on them.
    assert_eq!(y.kept(&["-mondays", "2"]), t(&["2025-06-23", "2025-06-30", "2025-06-30T11:00"]));
    // Nothing was removed by the previews.
    assert_eq!(y.ls_times().len(), 60);
}

#[test]
fn preview_names_every_rule_that_keeps_a_snapshot() {
    let y = year();
    let out = y.env.stdout(&["prune", "-now", NOW, "-weeks", "4", "-per-week", "1", "-years", "2", "-per-year", "1"]);
    assert!(out.starts_with("prune: would keep 5 and delete 55 snapshot(s), run with -apply to proceed\n"), "{out}");
    let newest = out.lines().nth(1).unwrap();
    assert!(newest.starts_with("keep    2025-06-30T11:00:00Z"), "{newest}");
    assert!(newest.ends_with("week 2025-W27 #1/1, year 2025 #1/1"), "{newest}");
    assert!(out.contains("over the cap: week 2025-W27 #2/1"), "{out}");
    // Both years are in the year rule's window, so nothing is outside every window.
    assert!(out.contains("over the cap: year 2024 #2/1"), "{out}");
    assert!(!out.contains("outside every rule's window"), "{out}");
}

#[test]
fn apply_removes_exactly_the_listed_snapshots_and_the_store_checks() {
    let y = year();
    let (keep, del) = y.prune(&["-days", "7", "-per-day", "1"]);
    assert_eq!((keep.len(), del.len()), (7, 53));
    let out = y.env.stdout(&["prune", "-now", NOW, "-days", "7", "-per-day", "1", "-apply"]);
    assert_eq!(out.lines().filter(|l| l.contains("prune: removal of")).count(), 53, "{out}");
    assert_eq!(y.ls_times(), keep);
    y.env.at(&["maintenance"]).assert().success();
    y.env.at(&["check"]).assert().success();
    // Applying the same policy again finds nothing more to remove.
    let out = y.env.stdout(&["prune", "-now", NOW, "-days", "7", "-per-day", "1"]);
    assert!(out.starts_with("prune: would keep 7 and delete 0"), "{out}");
}

#[test]
fn the_last_snapshot_of_a_group_stays_unless_allow_empty() {
    let mut y = year();
    y.backup("2024-08-01T00:00:00Z", &["-name", "other"]);
    let later = ["-now", "2026-01-01T00:00:00Z", "-minutes", "1"];
    let out = y.env.stdout(&[&["prune"][..], &later].concat());
    assert!(out.starts_with("prune: would keep 1 and delete 60"), "{out}");
    assert!(out.lines().nth(1).unwrap().ends_with("last snapshot (-allow-empty removes it)"), "{out}");
    let out = y.env.stdout(&[&["prune"][..], &later, &["-allow-empty"]].concat());
    assert!(out.starts_with("prune: would keep 0 and delete 61"), "{out}");
    // Grouped by name, the lone "other" snapshot outlives its window.
    let mut want = t(&["2025-06-28", "2025-06-29", "2025-06-30", "2025-06-30T11:00"]);
    want.insert(0, "2024-08-01T00:00:00Z".into());
    assert_eq!(y.kept(&["-days", "3", "-group-by", "name"]), want);
    let out = y.env.stdout(&["prune", "-now", NOW, "-days", "3", "-group-by", "name"]);
    assert!(out.contains("last of group name=other"), "{out}");
}

#[test]
fn a_policy_is_used_and_flags_beside_it_override_its_keys() {
    let y = year();
    y.env.cmd().args(["policy", "add", "recent", "days=3"]).assert().success();
    // #1758: -policy must not be ignored.
    assert_eq!(y.kept(&["-policy", "recent"]), t(&["2025-06-28", "2025-06-29", "2025-06-30", "2025-06-30T11:00"]));
    assert_eq!(y.kept(&["-policy", "recent", "-days", "1"]), t(&["2025-06-30", "2025-06-30T11:00"]));
    y.env.cmd().args(["policy", "set", "recent", "per-day=1"]).assert().success();
    assert_eq!(y.kept(&["-policy", "recent"]), t(&["2025-06-28", "2025-06-29", "2025-06-30T11:00"]));
    let show = String::from_utf8(y.env.cmd().args(["policy", "show", "recent"]).output().unwrap().stdout).unwrap();
    assert_eq!(show, "recent:\n    days: 3\n    per-day: 1\n");
    y.env.cmd().args(["policy", "rm", "recent"]).assert().success();
    y.env.at(&["prune", "-policy", "recent"]).assert().code(64);
}

#[test]
fn bad_policies_and_flags_exit_64_naming_the_cause() {
    let env = Env::new();
    let fails = |args: &[&str], code: i32, needles: &[&str]| {
        let out = env.cmd().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {err} lacks {n}");
        }
    };
    fails(&["policy", "add", "p", "colour=1"], 64, &["\"colour\"", "valid keys", "per-day", "group-by"]);
    fails(&["policy", "add", "p", "days=-1"], 64, &["days", "whole number"]);
    fails(&["policy", "add", "p", "group-by=colour"], 64, &["group-by", "hostname"]);
    fails(&["policy", "set", "missing", "days=1"], 64, &["no policy named \"missing\""]);
    fails(&["policy", "frobnicate"], 64, &["usage: plakar policy"]);
    env.at(&["create", "-plaintext"]).assert().success();
    fails(&["at", &env.store(), "prune"], 64, &["no retention rule", "-policy NAME"]);
    fails(&["at", &env.store(), "prune", "-days", "1", "-group-by", "colour"], 64, &["group-by", "hostname"]);
    fails(&["at", &env.store(), "prune", "-policy", "nope"], 64, &["no policy named \"nope\""]);
    fails(&["at", &env.store(), "backup", "-force-timestamp", "30d"], 64, &["-force-timestamp", "absolute"]);
    fails(&["at", &env.store(), "backup", "-force-timestamp", "last tuesday"], 64, &["RFC 3339"]);
}
