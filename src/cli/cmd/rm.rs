use crate::cli::cmd::filters::FilterArgs;
use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::{exit, Ctx};
use crate::kloset::ops::rm;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Remove the snapshots the filters select (without it, rm only lists them)
    #[arg(long)]
    apply: bool,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    lock: LockArgs,
    /// Snapshot ids or prefixes to remove
    snapshots: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let filter = a.filters.filter()?;
    if a.snapshots.is_empty() && filter.is_empty() {
        return Err(exit::coded(exit::USAGE, "no filter specified, not going to remove everything"));
    }
    // Removing writes: the index is read under the lock (a preview takes none).
    let applying = a.apply || !a.snapshots.is_empty();
    let (repo, _lock) =
        if applying { locking::open_locked_to_remove(ctx, false, &a.lock)? } else { (ctx.open()?, None) };
    let mut selected = Vec::new();
    for p in &a.snapshots {
        selected.push(repo.header(&repo.resolve(p)?)?);
    }
    if !filter.is_empty() {
        let matched = filter.apply(repo.headers()?);
        if a.snapshots.is_empty() {
            selected = matched;
        } else {
            selected.retain(|h| matched.iter().any(|m| m.id == h.id));
        }
    }
    // Naming snapshots is explicit enough; filters alone only preview unless -apply.
    if !a.apply && a.snapshots.is_empty() {
        println!("rm: would remove these {} snapshot(s), run with -apply to proceed", selected.len());
        for h in selected.iter().rev() {
            println!("{}", super::ls::snapshot_line(h, false, false));
        }
        return Ok(0);
    }
    let ids: Vec<_> = selected.iter().map(|h| h.id).collect();
    rm::rm(&repo, &ids)?;
    if !ctx.g.quiet {
        for id in &ids {
            println!("info: rm: removal of {} completed successfully", id.short());
        }
    }
    Ok(0)
}
