use crate::cli::cmd::filters::FilterArgs;
use crate::cli::Ctx;
use crate::kloset::ops::locate;
use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Only search this snapshot
    #[arg(long)]
    snapshot: Option<String>,
    #[command(flatten)]
    filters: FilterArgs,
    /// Name patterns (globs such as 'passwd*')
    #[arg(required = true)]
    patterns: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let repo = ctx.open_metadata()?;
    let headers = match &a.snapshot {
        Some(p) => vec![repo.header(&repo.resolve(p)?)?],
        None => a.filters.filter()?.apply(repo.headers()?),
    };
    for pat in &a.patterns {
        let m = globset::Glob::new(pat).with_context(|| format!("invalid pattern {pat:?}"))?.compile_matcher();
        for (id, path) in locate::locate(&repo, &headers, &m)? {
            println!("{}:{}", id.short(), path);
        }
    }
    Ok(0)
}
