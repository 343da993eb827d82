use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::{exit, Ctx};
use crate::kloset::ops::maintenance;
use crate::kloset::store::Store;
use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Then delete the old versions and delete markers of the store's objects, where its
    /// location keeps them (a versioned S3 bucket); current objects are never touched
    #[arg(long)]
    purge_versions: bool,
    #[command(flatten)]
    lock: LockArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    // The store's own bytes, never the local cache's (docs/CACHE.md): maintenance
    // rewrites packfiles from what it reads, and must see damage rather than copy it on.
    let u = ctx.unlock()?.uncached();
    u.store.can_delete().map_err(crate::kloset::Error::from)?;
    let (repo, lock) = locking::load_locked(ctx, u, true, &a.lock)?;
    if a.purge_versions
        && !repo.store.keeps_versions().map_err(crate::kloset::Error::from).context("-purge-versions")?
    {
        return Err(exit::coded(
            exit::USAGE,
            format!(
                "-purge-versions: {} keeps no old versions (only an S3 bucket with versioning enabled or \
                 suspended does): run maintenance without -purge-versions",
                repo.store.location()
            ),
        ));
    }
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
    if a.purge_versions {
        // After the lock is released, so that its own old version and delete marker go too:
        // the purge never touches a current object, so it needs no lock (store.rs).
        let store = repo.store.clone();
        drop(lock);
        drop(repo);
        purge(ctx, store.as_ref())?;
    }
    Ok(0)
}

fn purge(ctx: &Ctx, store: &dyn Store) -> Result<()> {
    let p = store.purge_versions().map_err(crate::kloset::Error::from).context("-purge-versions")?;
    if !ctx.g.quiet {
        println!("purge: {} old versions and {} delete markers deleted", p.versions, p.markers);
    }
    Ok(())
}
