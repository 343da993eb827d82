//! `plakar mount [-to] DIR|http://ADDR [-allow-others] [filters] [SNAP[:PATH]...]`: the
//! store's snapshots as a read-only filesystem, or the same tree over HTTP. Plakar's form
//! is `-to DIR`; without `-to` the first argument is the mountpoint (Plakar v1.0's form).

use crate::cli::cmd::filters::FilterArgs;
use crate::cli::exit::{coded, USAGE};
use crate::cli::mount::{self, view::View};
use crate::cli::{format, snapref, Ctx};
use crate::kloset::snapshot::Header;
use anyhow::Result;
use std::io::Write;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Where: a directory to mount on, or http://HOST:PORT to serve the tree over HTTP
    #[arg(long, value_name = "DIR|http://ADDR")]
    to: Option<String>,
    /// Let other users see the mount (non-root: needs user_allow_other in /etc/fuse.conf)
    #[arg(long)]
    allow_others: bool,
    /// Memory for decoded chunks, shared by all reads (e.g. 64MiB)
    #[arg(long, value_name = "SIZE", default_value = "128MiB")]
    cache_size: String,
    /// HTTP: serve without a token (anyone who can reach the address reads the backups)
    #[arg(long)]
    no_auth: bool,
    #[command(flatten)]
    filters: FilterArgs,
    /// [DIR] SNAPSHOT[:PATH]... (the mountpoint first when -to is not given)
    args: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let mut refs = a.args.clone();
    let to = match a.to.clone() {
        Some(t) => t,
        None if !refs.is_empty() => refs.remove(0),
        None => return Err(coded(USAGE, "mount needs a mountpoint: plakar at STORE mount DIR (or -to http://ADDR)")),
    };
    let cache = format::parse_size(&a.cache_size)
        .ok_or_else(|| coded(USAGE, format!("-cache-size {}: not a size (e.g. 64MiB)", a.cache_size)))?;
    let repo = Arc::new(ctx.open()?);
    let snaps = select(&repo, &a.filters, &refs)?;
    if snaps.is_empty() && !ctx.g.quiet {
        eprintln!("plakar mount: no snapshot matches: the view is empty");
    }
    let count = snaps.len();
    let view = Arc::new(View::new(repo, snaps, cache as usize)?);
    if let Some(addr) = to.strip_prefix("http://") {
        return mount::http::serve(ctx, view, addr, a.no_auth).map(|_| 0);
    }
    let dir = std::path::PathBuf::from(&to);
    let store = ctx.store_loc.clone();
    let quiet = ctx.g.quiet;
    mount::serve_fuse(view, &dir, a.allow_others, || {
        if !quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "plakar mount: {store} mounted read-only on {} ({count} snapshots)\nplakar mount: Ctrl-C, kill or `umount {0}` to unmount",
                dir.display()
            );
            let _ = out.flush();
        }
    })?;
    Ok(0)
}

/// The snapshots named (all of them when none is), less those the filters leave out, with
/// the path each one's directory shows: what `SNAP:PATH` names, else the whole snapshot
/// from `/`.
fn select(repo: &crate::kloset::Repository, f: &FilterArgs, refs: &[String]) -> Result<Vec<(Header, Vec<u8>)>> {
    let filter = f.filter()?;
    if refs.is_empty() {
        return Ok(filter.apply(repo.headers()?).into_iter().map(|h| (h, b"/".to_vec())).collect());
    }
    let mut out: Vec<(Header, Vec<u8>)> = Vec::new();
    for r in refs {
        let (h, path) = snapref::resolve(repo, r)?;
        if out.iter().any(|(o, _)| o.id == h.id) {
            return Err(coded(USAGE, format!("{r}: snapshot {} is named twice", h.id.short())));
        }
        out.push((h, path.unwrap_or_else(|| b"/".to_vec())));
    }
    out.sort_by_key(|(h, _)| (h.timestamp_ns, h.id));
    // Filters narrow the named snapshots too.
    let kept: std::collections::HashSet<_> =
        filter.apply(out.iter().map(|(h, _)| h.clone()).collect()).into_iter().map(|h| h.id).collect();
    out.retain(|(h, _)| kept.contains(&h.id));
    Ok(out)
}
