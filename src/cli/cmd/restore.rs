use crate::app::location;
use crate::cli::cmd::filters::FilterArgs;
use crate::cli::progress::TermProgress;
use crate::cli::{exit, format, snapref, Ctx};
use crate::kloset::importer::FileKind;
use crate::kloset::ops::restore;
use crate::kloset::Error;
use anyhow::Result;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Where to restore (default: ./plakar-<time>)
    #[arg(long)]
    to: Option<String>,
    /// Do not restore modes and ownership
    #[arg(long)]
    skip_permissions: bool,
    #[arg(long)]
    quiet: bool,
    #[arg(long)]
    silent: bool,
    #[arg(long, hide = true)]
    concurrency: Option<usize>,
    #[arg(long, hide = true)]
    rebase: bool,
    #[arg(short = 'o', hide = true)]
    options: Vec<String>,
    #[command(flatten)]
    filters: FilterArgs,
    /// SNAPSHOT[:PATH] (default: the latest snapshot)
    snapshot: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let repo = ctx.open()?;
    let (h, path) = match a.snapshot.as_deref() {
        Some(r) => snapref::resolve(&repo, r)?,
        None => {
            let mut hs = a.filters.filter()?.apply(repo.headers()?);
            let h = hs.pop().ok_or_else(|| Error::BadReference("no snapshots found".into()))?;
            (h, None)
        }
    };
    let to = a.to.clone().unwrap_or_else(|| format!("plakar-{}", chrono::Local::now().format("%Y%m%d%H%M%S")));
    let exp = location::open_exporter(&to, !a.skip_permissions, &ctx.config_dir())?;
    let (entry, dest) = match &path {
        None => (repo.lookup(&h, h.source.directory.as_bytes())?, Vec::new()),
        Some(p) => {
            let e = repo.lookup(&h, p)?;
            let contents_only = p.ends_with(b"/") && e.kind() == FileKind::Dir;
            let base = crate::kloset::tree::components(p).last().map(|c| c.to_vec()).unwrap_or_default();
            (e, if contents_only { Vec::new() } else { base })
        }
    };
    let quiet = a.quiet || ctx.g.quiet;
    let silent = a.silent || ctx.g.silent;
    let progress = TermProgress::new("restore", h.id.short(), quiet, silent);
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        // A remote store is read through a few read-ahead windows, which more threads
        // would thrash (measured: 3x slower with 32); a remote target wants many writers.
        .num_threads(
            a.concurrency
                .filter(|&c| c > 0)
                .unwrap_or_else(|| crate::kloset::ops::backup::default_threads().max(exp.parallelism())),
        )
        .build()?;
    let report = pool.install(|| restore::restore(&repo, &entry, &dest, exp.as_ref(), &progress));
    progress.finish();
    let report = report?;
    let errs = report.errors.len();
    let notes = report.notes.len();
    if !silent {
        // What was left out on purpose: said, one line each, but not a failure.
        for (p, why) in &report.notes {
            let line = if p.is_empty() { why.clone() } else { format!("{p}: {why}") };
            let line: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            eprintln!("{}: note: {line}", h.id.short());
        }
        let how = match (errs, notes) {
            (0, 0) => "without errors".to_string(),
            (0, n) => format!("without errors but with {}", plural(n, "note")),
            (e, 0) => format!("with {e} errors"),
            (e, n) => format!("with {e} errors and {}", plural(n, "note")),
        };
        println!(
            "{}: restore completed {how} in {} ({} files, {})",
            h.id.short(),
            format::duration_ms(started.elapsed().as_millis() as u64),
            report.files,
            format::ibytes(report.bytes)
        );
    }
    if let Some(why) = &report.refused {
        return Err(exit::coded(
            exit::AUTH,
            format!("the restore target refused it, the restore stopped at the first refusal: {why}"),
        ));
    }
    if report.denied > 0 && report.written == 0 {
        let first = report.errors.first().map(|(_, e)| e.as_str()).unwrap_or_default();
        return Err(exit::coded(
            exit::AUTH,
            format!("the restore target refused every write, nothing was restored: {first}"),
        ));
    }
    if report.target_full {
        return Err(exit::coded(
            exit::IO,
            "the restore target is full: free some space there and run the restore again (the files restored \
             so far are complete and are kept)",
        ));
    }
    Ok(if errs > 0 { exit::PARTIAL } else { exit::OK })
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
