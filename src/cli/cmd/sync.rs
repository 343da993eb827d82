use crate::cli::cmd::filters::FilterArgs;
use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::progress::TermProgress;
use crate::cli::{exit, Ctx};
use crate::kloset::ops::sync;
use crate::kloset::Repository;
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

fn copy(
    ctx: &Ctx,
    src: &Repository,
    dst: &Repository,
    a: &Args,
    only: Option<&str>,
    from: &str,
    to: &str,
) -> Result<()> {
    let ids = match only {
        Some(p) => vec![src.resolve(p)?],
        None => a.filters.filter()?.apply(src.headers()?).into_iter().map(|h| h.id).collect(),
    };
    let _lock = locking::wait_lock(ctx, dst.store.clone(), false, &a.lock)?;
    let progress = TermProgress::new("sync", "sync".into(), ctx.g.quiet, ctx.g.silent);
    let n = sync::sync(src, dst, &ids, &progress);
    progress.finish();
    let n = n?;
    if !ctx.g.quiet {
        println!("info: sync: synchronization from {from} to {to} completed: {n} snapshots synchronized");
    }
    Ok(())
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let (only, dir, peer) = match a.args.as_slice() {
        [d, p] => (None, d.as_str(), p.as_str()),
        [s, d, p] => (Some(s.as_str()), d.as_str(), p.as_str()),
        _ => unreachable!("clap enforces 2 or 3 arguments"),
    };
    let here = ctx.open()?;
    let there = ctx.open_other(peer, "peer store passphrase: ")?;
    let (h, p) = (here.location(), there.location());
    match dir {
        "to" => copy(ctx, &here, &there, &a, only, &h, &p)?,
        "from" => copy(ctx, &there, &here, &a, only, &p, &h)?,
        "with" => {
            copy(ctx, &here, &there, &a, only, &h, &p)?;
            copy(ctx, &there, &here, &a, only, &p, &h)?;
        }
        other => {
            return Err(exit::coded(exit::USAGE, format!("sync direction must be to, from or with, not {other:?}")))
        }
    }
    Ok(0)
}
