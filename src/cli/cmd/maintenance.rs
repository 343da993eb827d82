use crate::cli::Ctx;
use crate::kloset::lock;
use crate::kloset::ops::maintenance;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _a: Args) -> Result<i32> {
    let repo = ctx.open()?;
    let _lock = lock::lock(repo.store.clone(), true)?;
    let r = maintenance::maintenance(&repo)?;
    if !ctx.g.quiet {
        println!(
            "maintenance: {} blobs kept, {} dropped, {} packfiles rewritten, {} deleted, {} states merged",
            r.live_blobs, r.dropped_blobs, r.packs_rewritten, r.packs_deleted, r.states_merged
        );
    }
    Ok(0)
}
