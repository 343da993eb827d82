use crate::cli::cmd::filters::FilterArgs;
use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::context::Unlocked;
use crate::cli::progress::TermProgress;
use crate::cli::{exit, Ctx};
use crate::kloset::ops::sync;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    lock: LockArgs,
    /// [SNAPSHOT] to|from|with STORE
    #[arg(required = true, num_args = 2..=3)]
    args: Vec<String>,
}

/// Copies from `src` to `dst`, each read under a lock (the destination's index is what
/// decides which blobs need not be sent again, so it must be read once the lock is held).
fn copy(ctx: &Ctx, src: Unlocked, dst: Unlocked, a: &Args, only: Option<&str>) -> Result<i32> {
    let (from, to) = (src.store.location(), dst.store.location());
    let (src, _src_lock) = locking::load_locked(ctx, src, false, &a.lock)?;
    let (dst, _dst_lock) = locking::load_locked(ctx, dst, false, &a.lock)?;
    let ids = match only {
        Some(p) => vec![src.resolve(p)?],
        None => a.filters.filter()?.apply(src.headers()?).into_iter().map(|h| h.id).collect(),
    };
    let progress = TermProgress::new("sync", "sync".into(), ctx.g.quiet, ctx.g.silent);
    // A snapshot named on the command line is copied again even when it was removed from
    // the destination (under a new id: a removal is final for its id).
    let r = sync::sync(&src, &dst, &ids, only.is_some(), &progress);
    progress.finish();
    let r = r?;
    for (old, new) in r.copied.iter().filter(|(o, n)| o != n) {
        eprintln!("plakar: sync: snapshot {} had been removed from {to}: copied again as {}", old.short(), new.short());
    }
    if !r.removed_there.is_empty() && !ctx.g.silent {
        eprintln!(
            "plakar: sync: {} snapshot(s) removed from {to} were not copied again (name one to copy it back: \
             plakar at {from} sync <id> to {to}): {}",
            r.removed_there.len(),
            r.removed_there.iter().map(|i| i.short()).collect::<Vec<_>>().join(", ")
        );
    }
    if !ctx.g.quiet {
        println!(
            "info: sync: synchronization from {from} to {to} completed: {} snapshots synchronized",
            r.copied.len()
        );
    }
    Ok(exit::OK)
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let (only, dir, peer) = match a.args.as_slice() {
        [d, p] => (None, d.as_str(), p.as_str()),
        [s, d, p] => (Some(s.as_str()), d.as_str(), p.as_str()),
        _ => unreachable!("clap enforces 2 or 3 arguments"),
    };
    let here = || ctx.unlock();
    let there = || ctx.unlock_other(peer, "peer store passphrase: ");
    match dir {
        "to" => copy(ctx, here()?, there()?, &a, only),
        "from" => copy(ctx, there()?, here()?, &a, only),
        "with" => {
            copy(ctx, here()?, there()?, &a, only)?;
            copy(ctx, there()?, here()?, &a, only)
        }
        other => Err(exit::coded(exit::USAGE, format!("sync direction must be to, from or with, not {other:?}"))),
    }
}
