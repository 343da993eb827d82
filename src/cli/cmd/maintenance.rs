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
    for id in &r.snapshots_recovered {
        eprintln!(
            "plakar: maintenance: snapshot {} was in packfiles no state listed (a lost state): listed again; \
             run check",
            id.short()
        );
    }
    if r.blobs_missing > 0 {
        eprintln!(
            "plakar: maintenance: {} blobs that snapshots reference are in no packfile: nothing that could hold \
             them was deleted; run check to see which snapshots are damaged",
            r.blobs_missing
        );
    }
    if r.deletion_deferred {
        eprintln!("plakar: maintenance: another run wrote to the store meanwhile: deletions are left for the next maintenance");
    }
    if !ctx.g.quiet {
        println!(
            "maintenance: {} blobs kept, {} dropped, {} packfiles rewritten, {} deleted, {} states merged{}",
            r.live_blobs,
            r.dropped_blobs,
            r.packs_rewritten,
            r.packs_deleted,
            r.states_merged,
            if r.blobs_rescued > 0 { format!(", {} blobs rescued", r.blobs_rescued) } else { String::new() }
        );
    }
    Ok(0)
}
