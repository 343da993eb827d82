//! Retention: which snapshots a policy keeps, and why. A pure function of the candidate
//! snapshot headers, the time taken as "now" and the policy; no store is touched here (the
//! caller removes the rest through `ops::rm`).
//!
//! The rules follow Plakar's (kloset `locate`): for each period (minute ... year, and each
//! weekday) a rule has `keep` (how many buckets back from the current one, the current one
//! counting as 1; 0 means every bucket) and `cap` (how many snapshots to keep per bucket,
//! newest first; 0 means all). A snapshot is kept if any rule keeps it. Empty buckets count
//! towards `keep` (calendar windows), where restic's `--keep-daily` counts only days that
//! hold a snapshot. Snapshots dated after "now" are inside every window.
//!
//! Invariant: unless `allow_empty`, every group keeps at least its newest snapshot.

pub mod period;

use crate::kloset::id::SnapshotId;
use crate::kloset::snapshot::Header;
pub use period::Period;
use std::collections::{BTreeMap, HashMap};

/// One rule: the last `keep` buckets of `period` (0: all of them), at most `cap` per bucket
/// (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub period: Period,
    pub keep: u32,
    pub cap: u32,
}

/// How snapshots are split before the rules apply; each group keeps its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Name,
    Hostname,
    /// A snapshot with several tags is in each tag's group (kept if any keeps it).
    Tag,
    Origin,
    Type,
    Root,
    /// Importer type, origin and root together: one group per thing backed up.
    Source,
}

impl GroupBy {
    pub const NAMES: [&'static str; 7] = ["name", "hostname", "tag", "origin", "type", "root", "source"];

    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "name" => GroupBy::Name,
            "hostname" | "host" => GroupBy::Hostname,
            "tag" | "tags" => GroupBy::Tag,
            "origin" => GroupBy::Origin,
            "type" => GroupBy::Type,
            "root" => GroupBy::Root,
            "source" => GroupBy::Source,
            _ => return None,
        })
    }

    fn keys(&self, h: &Header) -> Vec<String> {
        let s = &h.source;
        match self {
            GroupBy::Name => vec![format!("name={}", h.name)],
            GroupBy::Hostname => vec![format!("hostname={}", h.hostname)],
            GroupBy::Tag if h.tags.is_empty() => vec!["tag=".into()],
            GroupBy::Tag => h.tags.iter().map(|t| format!("tag={t}")).collect(),
            GroupBy::Origin => vec![format!("origin={}", s.origin)],
            GroupBy::Type => vec![format!("type={}", s.kind)],
            GroupBy::Root => vec![format!("root={}", s.directory)],
            GroupBy::Source => vec![format!("source={}://{}{}", s.kind, s.origin, s.directory)],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub group_by: Option<GroupBy>,
    /// Let the rules remove every snapshot of a group.
    pub allow_empty: bool,
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// It is among the first `cap` (newest) of its bucket, inside the rule's window.
    Rule { period: Period, bucket: String, rank: usize, cap: u32 },
    /// No rule kept any snapshot of its group; it is the group's newest.
    LastOfGroup { group: String },
}

/// Why a snapshot is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// No rule's window holds it.
    OutsideWindows,
    /// In a window, but past the bucket's cap.
    OverCap { period: Period, bucket: String, rank: usize, cap: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: SnapshotId,
    pub timestamp_ns: i64,
    /// Every reason to keep it; empty means it goes.
    pub kept: Vec<Kept>,
    pub removed: Removed,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.kept.is_empty()
    }
}

/// Decides each candidate's fate, newest first. `now_ns` is nanoseconds since the epoch.
pub fn plan(candidates: &[Header], now_ns: i64, policy: &Policy) -> Vec<Decision> {
    let now = chrono::DateTime::from_timestamp_nanos(now_ns);
    let mut hs: Vec<&Header> = candidates.iter().collect();
    hs.sort_by_key(|h| std::cmp::Reverse((h.timestamp_ns, h.id)));
    let mut out: Vec<Decision> = hs
        .iter()
        .map(|h| Decision { id: h.id, timestamp_ns: h.timestamp_ns, kept: vec![], removed: Removed::OutsideWindows })
        .collect();

    // Group members, newest first (indices into `hs`).
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, h) in hs.iter().enumerate() {
        let keys = policy.group_by.map(|g| g.keys(h)).unwrap_or_else(|| vec![String::new()]);
        for k in keys {
            groups.entry(k).or_default().push(i);
        }
    }

    for members in groups.values() {
        for rule in &policy.rules {
            apply(rule, now, members, &hs, &mut out);
        }
    }
    if !policy.allow_empty {
        for (group, members) in &groups {
            if let Some(&newest) = members.first() {
                if members.iter().all(|&i| !out[i].keep()) {
                    out[newest].kept.push(Kept::LastOfGroup { group: group.clone() });
                }
            }
        }
    }
    out
}

fn apply(rule: &Rule, now: chrono::DateTime<chrono::Utc>, members: &[usize], hs: &[&Header], out: &mut [Decision]) {
    let p = rule.period;
    let window = (rule.keep > 0).then(|| p.back(p.current(now), rule.keep - 1));
    let mut seen: HashMap<chrono::DateTime<chrono::Utc>, usize> = HashMap::new();
    for &i in members {
        let Some(start) = p.start(hs[i].time()) else { continue };
        // Only a lower bound: snapshots dated after now are inside every window.
        if window.is_some_and(|w| start < w) {
            continue;
        }
        let n = seen.entry(start).or_default();
        *n += 1;
        let (bucket, rank) = (p.label(start), *n);
        if rule.cap == 0 || rank <= rule.cap as usize {
            let k = Kept::Rule { period: p, bucket, rank, cap: rule.cap };
            if !out[i].kept.contains(&k) {
                out[i].kept.push(k);
            }
        } else if out[i].removed == Removed::OutsideWindows {
            out[i].removed = Removed::OverCap { period: p, bucket, rank, cap: rule.cap };
        }
    }
}

#[cfg(test)]
mod tests;
