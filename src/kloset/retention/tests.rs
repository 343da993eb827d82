use super::*;
use chrono::Weekday;

fn ns(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_nanos_opt().unwrap()
}

fn snap(n: u8, at: &str, name: &str, tags: &[&str]) -> Header {
    let mut id = [0u8; 32];
    id[0] = n;
    Header {
        id: SnapshotId(id),
        timestamp_ns: ns(at),
        name: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

fn rule(period: Period, keep: u32, cap: u32) -> Rule {
    Rule { period, keep, cap }
}

/// The ids' first bytes of the kept snapshots, newest first.
fn kept(hs: &[Header], now: &str, p: &Policy) -> Vec<u8> {
    plan(hs, ns(now), p).iter().filter(|d| d.keep()).map(|d| d.id.0[0]).collect()
}

fn week() -> Vec<Header> {
    // Monday 2025-06-23 to Monday 2025-06-30, one a day at 10:00, two on the 30th.
    let mut v: Vec<Header> = (23..=30).map(|d| snap(d, &format!("2025-06-{d}T10:00:00Z"), "", &[])).collect();
    v.push(snap(31, "2025-06-30T11:00:00Z", "", &[]));
    v
}

const NOW: &str = "2025-06-30T12:00:00Z";

#[test]
fn days_keeps_everything_in_the_last_n_calendar_days() {
    let p = Policy { rules: vec![rule(Period::Day, 2, 0)], ..Default::default() };
    assert_eq!(kept(&week(), NOW, &p), vec![31, 30, 29]);
}

#[test]
fn per_day_caps_each_bucket_newest_first() {
    let p = Policy { rules: vec![rule(Period::Day, 3, 1)], ..Default::default() };
    assert_eq!(kept(&week(), NOW, &p), vec![31, 29, 28]);
    let d = plan(&week(), ns(NOW), &p);
    assert_eq!(d[1].removed, Removed::OverCap { period: Period::Day, bucket: "2025-06-30".into(), rank: 2, cap: 1 });
    assert_eq!(d.last().unwrap().removed, Removed::OutsideWindows);
}

#[test]
fn a_cap_without_a_count_applies_to_every_bucket() {
    let p = Policy { rules: vec![rule(Period::Week, 0, 1)], ..Default::default() };
    // ISO weeks: 2025-W26 (23rd to 29th) and 2025-W27 (30th).
    assert_eq!(kept(&week(), NOW, &p), vec![31, 29]);
}

#[test]
fn weekday_rules_see_only_their_day_and_reasons_add_up() {
    let p =
        Policy { rules: vec![rule(Period::On(Weekday::Mon), 2, 1), rule(Period::Year, 1, 1)], ..Default::default() };
    let d = plan(&week(), ns(NOW), &p);
    assert_eq!(d.iter().filter(|d| d.keep()).map(|d| d.id.0[0]).collect::<Vec<_>>(), vec![31, 23]);
    assert_eq!(d[0].kept.len(), 2, "kept by the monday rule and the year rule: {:?}", d[0].kept);
}

#[test]
fn the_last_snapshot_of_a_group_stays_unless_allowed() {
    let mut p = Policy { rules: vec![rule(Period::Minute, 1, 0)], ..Default::default() };
    let later = "2026-01-01T00:00:00Z";
    assert_eq!(kept(&week(), later, &p), vec![31]);
    assert_eq!(plan(&week(), ns(later), &p)[0].kept, vec![Kept::LastOfGroup { group: String::new() }]);
    p.allow_empty = true;
    assert!(kept(&week(), later, &p).is_empty());
}

#[test]
fn groups_keep_their_own_buckets() {
    let mut hs = week();
    hs.push(snap(1, "2024-01-01T00:00:00Z", "other", &[]));
    hs.push(snap(2, "2025-06-30T09:00:00Z", "other", &[]));
    let p = Policy { rules: vec![rule(Period::Day, 1, 1)], group_by: Some(GroupBy::Name), ..Default::default() };
    assert_eq!(kept(&hs, NOW, &p), vec![31, 2]);
    // Alone and old, the group's only snapshot is kept as its last.
    let hs2 = vec![week().pop().unwrap(), snap(1, "2024-01-01T00:00:00Z", "other", &[])];
    let d = plan(&hs2, ns(NOW), &p);
    assert_eq!(d[1].kept, vec![Kept::LastOfGroup { group: "name=other".into() }]);
}

#[test]
fn a_snapshot_in_several_tag_groups_is_kept_if_any_keeps_it() {
    let hs = vec![
        snap(1, "2025-06-29T10:00:00Z", "", &["red", "blue"]),
        snap(2, "2025-06-29T09:00:00Z", "", &["red"]),
        snap(3, "2025-06-28T10:00:00Z", "", &["blue"]),
    ];
    let p = Policy { rules: vec![rule(Period::Day, 3, 1)], group_by: Some(GroupBy::Tag), ..Default::default() };
    assert_eq!(kept(&hs, NOW, &p), vec![1, 3]);
}

#[test]
fn snapshots_after_now_are_inside_the_window() {
    let hs = vec![snap(1, "2025-07-05T00:00:00Z", "", &[]), snap(2, "2025-06-30T10:00:00Z", "", &[])];
    let p = Policy { rules: vec![rule(Period::Day, 1, 0)], ..Default::default() };
    assert_eq!(kept(&hs, NOW, &p), vec![1, 2]);
}
