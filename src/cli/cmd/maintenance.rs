use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::Ctx;
use crate::kloset::ops::maintenance;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lock: LockArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let (repo, _lock) = locking::open_locked(ctx, true, &a.lock)?;
    let r = maintenance::maintenance(&repo)?;
    if !ctx.g.quiet {
        println!(
            "maintenance: {} blobs kept, {} dropped, {} packfiles rewritten, {} deleted, {} states merged",
            r.live_blobs, r.dropped_blobs, r.packs_rewritten, r.packs_deleted, r.states_merged
        );
    }
    Ok(0)
}
