//! `plakar prune [-apply] [-policy NAME] [rules] [filters] [SNAPSHOT...]`: applies a
//! retention policy (kloset/retention). Without `-apply` it prints what it would keep, with
//! the rules that keep each one, and what it would delete; with `-apply` it removes them
//! through `rm`, under the same lock.
//!
//! Flags given beside `-policy` override that policy's keys one by one (Plakar's #1758:
//! `-policy` must never be silently ignored, and neither must a flag).

use crate::app::config::{Config, Kind, Section};
use crate::app::policy;
use crate::cli::cmd::filters::FilterArgs;
use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::{exit, time, Ctx};
use crate::kloset::ops::rm;
use crate::kloset::retention::{self, Decision, Kept, Removed};
use crate::kloset::snapshot::Header;
use anyhow::Result;
use std::collections::HashMap;

/// The rule flags: `-days N` keeps every snapshot of the last N days (today counts as one);
/// `-per-day N` keeps at most N per day, newest first (in every day unless `-days` limits
/// them). Likewise for the other periods; weekdays hold only snapshots taken on that day.
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Retention rules (UTC calendar buckets)")]
pub struct RuleArgs {
    #[arg(long, value_name = "N")]
    minutes: Option<u32>,
    #[arg(long, value_name = "N")]
    hours: Option<u32>,
    /// Keep every snapshot of the last N days
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    #[arg(long, value_name = "N")]
    weeks: Option<u32>,
    #[arg(long, value_name = "N")]
    months: Option<u32>,
    #[arg(long, value_name = "N")]
    years: Option<u32>,
    #[arg(long, value_name = "N")]
    mondays: Option<u32>,
    #[arg(long, value_name = "N")]
    tuesdays: Option<u32>,
    #[arg(long, value_name = "N")]
    wednesdays: Option<u32>,
    #[arg(long, value_name = "N")]
    thursdays: Option<u32>,
    #[arg(long, value_name = "N")]
    fridays: Option<u32>,
    #[arg(long, value_name = "N")]
    saturdays: Option<u32>,
    #[arg(long, value_name = "N")]
    sundays: Option<u32>,
    #[arg(long, value_name = "N")]
    per_minute: Option<u32>,
    #[arg(long, value_name = "N")]
    per_hour: Option<u32>,
    /// Keep at most N snapshots per day, the newest
    #[arg(long, value_name = "N")]
    per_day: Option<u32>,
    #[arg(long, value_name = "N")]
    per_week: Option<u32>,
    #[arg(long, value_name = "N")]
    per_month: Option<u32>,
    #[arg(long, value_name = "N")]
    per_year: Option<u32>,
    #[arg(long, value_name = "N")]
    per_monday: Option<u32>,
    #[arg(long, value_name = "N")]
    per_tuesday: Option<u32>,
    #[arg(long, value_name = "N")]
    per_wednesday: Option<u32>,
    #[arg(long, value_name = "N")]
    per_thursday: Option<u32>,
    #[arg(long, value_name = "N")]
    per_friday: Option<u32>,
    #[arg(long, value_name = "N")]
    per_saturday: Option<u32>,
    #[arg(long, value_name = "N")]
    per_sunday: Option<u32>,
}

impl RuleArgs {
    /// The flags given, as policy keys.
    fn pairs(&self) -> Vec<(&'static str, u32)> {
        let all = [
            ("minutes", self.minutes),
            ("hours", self.hours),
            ("days", self.days),
            ("weeks", self.weeks),
            ("months", self.months),
            ("years", self.years),
            ("mondays", self.mondays),
            ("tuesdays", self.tuesdays),
            ("wednesdays", self.wednesdays),
            ("thursdays", self.thursdays),
            ("fridays", self.fridays),
            ("saturdays", self.saturdays),
            ("sundays", self.sundays),
            ("per-minute", self.per_minute),
            ("per-hour", self.per_hour),
            ("per-day", self.per_day),
            ("per-week", self.per_week),
            ("per-month", self.per_month),
            ("per-year", self.per_year),
            ("per-monday", self.per_monday),
            ("per-tuesday", self.per_tuesday),
            ("per-wednesday", self.per_wednesday),
            ("per-thursday", self.per_thursday),
            ("per-friday", self.per_friday),
            ("per-saturday", self.per_saturday),
            ("per-sunday", self.per_sunday),
        ];
        all.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Remove the snapshots the policy does not keep (without it, prune only lists them)
    #[arg(long)]
    apply: bool,
    /// Use this named policy (see plakar policy); flags given here override its keys
    #[arg(long, value_name = "NAME")]
    policy: Option<String>,
    /// Apply the rules in each group separately: name, hostname, tag, origin, type, root, source
    #[arg(long, value_name = "KEY")]
    group_by: Option<String>,
    /// Let the rules remove every snapshot of a group (by default its newest stays)
    #[arg(long)]
    allow_empty: bool,
    /// Evaluate the rules as if it were this time (default: now)
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    #[command(flatten)]
    rules: RuleArgs,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    lock: LockArgs,
    /// Only consider these snapshots (ids or prefixes)
    snapshots: Vec<String>,
}

/// The policy's keys, overridden by the flags given.
fn settings(ctx: &Ctx, a: &Args) -> Result<policy::Settings> {
    let mut s = Section::new();
    if let Some(n) = &a.policy {
        let n = n.trim_start_matches('@');
        let cfg = Config::load(&ctx.config_dir())?;
        s = cfg.get(Kind::Policy, n).map_err(|e| exit::coded(exit::USAGE, e.to_string()))?.clone();
        // A key stored by hand that no longer parses names the policy too.
        policy::parse(&s).map_err(|e| exit::coded(exit::USAGE, format!("policy {n:?}: {e}")))?;
    }
    for (k, v) in a.rules.pairs() {
        s.insert(k.to_string(), v.to_string());
    }
    if let Some(g) = &a.group_by {
        s.insert("group-by".into(), g.clone());
    }
    if a.allow_empty {
        s.insert("allow-empty".into(), "true".into());
    }
    policy::parse(&s).map_err(|e| exit::coded(exit::USAGE, e.0))
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let st = settings(ctx, &a)?;
    if st.policy.rules.is_empty() {
        return Err(exit::coded(
            exit::USAGE,
            "prune: no retention rule: give one such as -days 7 or -per-month 1 -months 12, or -policy NAME \
             (see plakar policy); to remove snapshots by filter, use rm",
        ));
    }
    let mut filter = a.filters.filter()?;
    if filter.name.is_none() {
        filter.name = st.name.clone();
    }
    if filter.tags.is_empty() {
        filter.tags = st.tags.clone();
    }
    let now = match &a.now {
        Some(t) => time::parse(t)?,
        None => chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
    };
    // Removing writes: the index is read under the lock, as rm does (a preview takes none).
    let (repo, _lock) =
        if a.apply { locking::open_locked_to_remove(ctx, false, &a.lock)? } else { (ctx.open()?, None) };
    let mut candidates = filter.apply(repo.headers()?);
    if !a.snapshots.is_empty() {
        let mut ids = Vec::new();
        for p in &a.snapshots {
            ids.push(repo.resolve(p)?);
        }
        candidates.retain(|h| ids.contains(&h.id));
    }
    let plan = retention::plan(&candidates, now, &st.policy);
    let by_id: HashMap<_, &Header> = candidates.iter().map(|h| (h.id, h)).collect();
    let doomed: Vec<_> = plan.iter().filter(|d| !d.keep()).map(|d| d.id).collect();
    if !a.apply {
        if ctx.g.json {
            let v: Vec<serde_json::Value> = plan.iter().map(|d| json(d, by_id[&d.id])).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "prune: would keep {} and delete {} snapshot(s), run with -apply to proceed",
                plan.len() - doomed.len(),
                doomed.len()
            );
            for d in &plan {
                println!("{}", line(d, by_id[&d.id]));
            }
        }
        return Ok(0);
    }
    rm::rm(&repo, &doomed)?;
    if !ctx.g.quiet {
        for id in &doomed {
            println!("info: prune: removal of {} completed successfully", id.short());
        }
    }
    Ok(0)
}

fn why_kept(k: &Kept) -> String {
    match k {
        Kept::Rule { period, bucket, rank, cap: 0 } => format!("{} {bucket} #{rank}", period.name()),
        Kept::Rule { period, bucket, rank, cap } => format!("{} {bucket} #{rank}/{cap}", period.name()),
        Kept::LastOfGroup { group } if group.is_empty() => "last snapshot (-allow-empty removes it)".into(),
        Kept::LastOfGroup { group } => format!("last of group {group} (-allow-empty removes it)"),
    }
}

fn why_removed(r: &Removed) -> String {
    match r {
        Removed::OutsideWindows => "outside every rule's window".into(),
        Removed::OverCap { period, bucket, rank, cap } => {
            format!("over the cap: {} {bucket} #{rank}/{cap}", period.name())
        }
    }
}

/// `keep    2025-06-30T11:00:00Z  1a2b3c4d  /src  day 2025-06-30 #1/1, year 2025 #1/1`
fn line(d: &Decision, h: &Header) -> String {
    let (action, why) = if d.keep() {
        ("keep", d.kept.iter().map(why_kept).collect::<Vec<_>>().join(", "))
    } else {
        ("delete", why_removed(&d.removed))
    };
    format!("{action:<7} {}  {}  {}  {why}", h.time().format("%Y-%m-%dT%H:%M:%SZ"), h.id.short(), h.source.directory)
}

fn json(d: &Decision, h: &Header) -> serde_json::Value {
    serde_json::json!({
        "snapshot_id": h.id.to_hex(),
        "timestamp": h.time().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "action": if d.keep() { "keep" } else { "delete" },
        "reasons": if d.keep() { d.kept.iter().map(why_kept).collect::<Vec<_>>() } else { vec![why_removed(&d.removed)] },
    })
}
