//! `dup SNAPSHOT...`: each snapshot copied under a new id, in the same store (Plakar's
//! `dup`). A writer like backup: it takes a shared lock and reads the index under it, so a
//! maintenance never runs under it. Prints each new id (Plakar prints nothing).

use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::{exit, snapref, Ctx};
use crate::kloset::ops::dup;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lock: LockArgs,
    /// Snapshot ids or prefixes
    snapshots: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    if a.snapshots.is_empty() {
        return Err(exit::coded(exit::USAGE, "dup needs a snapshot: plakar at STORE dup SNAPSHOT..."));
    }
    let mut prefixes = Vec::with_capacity(a.snapshots.len());
    for r in &a.snapshots {
        match snapref::split(r) {
            (Some(p), None) => prefixes.push(p),
            _ => {
                return Err(exit::coded(
                    exit::USAGE,
                    format!("{r}: dup copies whole snapshots: give a snapshot id or prefix, without :PATH"),
                ))
            }
        }
    }
    let (repo, _lock) = locking::open_locked(ctx, false, &a.lock)?;
    let ids = prefixes.iter().map(|p| repo.resolve(p)).collect::<Result<Vec<_>, _>>()?;
    let copies = dup::dup(&repo, &ids)?;
    if !ctx.g.quiet {
        for (old, new) in copies {
            println!("info: dup: {} duplicated as {}", old.short(), new.short());
        }
    }
    Ok(exit::OK)
}
