//! `drill`: restore a snapshot (or a sample of it) into a scratch directory, verify it,
//! remove it, and say so in a way cron and CI understand: one summary line or one JSON
//! object, JUnit and JSON report files, and an exit code (0 verified, 3 verified but some
//! files were unreadable at backup time, 65 damaged).

use crate::app::location;
use crate::cli::cmd::filters::FilterArgs;
use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::progress::TermProgress;
use crate::cli::report::{self, DrillSummary};
use crate::cli::{exit, format, snapref, Ctx};
use crate::connectors::fs::{FsExporter, FsImporter};
use crate::kloset::importer::FileKind;
use crate::kloset::ops::drill::{self, DrillOptions, DrillReport, Item, Status, Target};
use crate::kloset::{Error, ErrorKind};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Restore this percentage of the files, picked at random (1 to 100)
    #[arg(long, value_name = "PCT")]
    sample: Option<String>,
    /// Restore files picked at random whose sizes add up to at most this (500M, 2GiB)
    #[arg(long, value_name = "SIZE")]
    max_bytes: Option<String>,
    /// Seed of the random sample: the same seed picks the same files (default: random,
    /// written in the reports)
    #[arg(long)]
    seed: Option<u64>,
    /// Restore into this local directory, which must be missing or empty (default: a
    /// temporary directory); it is removed afterwards unless -keep
    #[arg(long, value_name = "DIR")]
    to: Option<String>,
    /// Leave the restored copy in place
    #[arg(long)]
    keep: bool,
    /// Also compare with this live tree (a path or @source): changes since the snapshot
    /// are reported apart from damage and do not fail the drill
    #[arg(long, value_name = "PATH")]
    against: Option<String>,
    /// Write a report: `junit FILE` or `json FILE` (repeatable)
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"], action = clap::ArgAction::Append)]
    report: Vec<String>,
    /// JUnit test cases: one per `file` or one per `dir`
    #[arg(long, value_name = "file|dir", default_value = "file")]
    junit_cases: String,
    /// Neither restore nor check modes
    #[arg(long)]
    skip_permissions: bool,
    /// Print nothing but errors and the summary
    #[arg(long)]
    quiet: bool,
    /// Print nothing but errors
    #[arg(long)]
    silent: bool,
    /// Print the summary as one JSON object
    #[arg(long)]
    json: bool,
    #[arg(long, hide = true)]
    concurrency: Option<usize>,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    lock: LockArgs,
    /// SNAPSHOT[:PATH] (default: the latest snapshot, or the latest the filters select)
    snapshot: Option<String>,
}

fn usage(msg: String) -> anyhow::Error {
    exit::coded(exit::USAGE, msg)
}

/// The drill's options, checked before the store is touched.
fn options(a: &Args) -> Result<DrillOptions> {
    let percent = match &a.sample {
        None => None,
        Some(s) => match s.trim().trim_end_matches('%').parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Some(p),
            _ => return Err(usage(format!("invalid -sample {s:?}: a percentage above 0, at most 100"))),
        },
    };
    let max_bytes = match &a.max_bytes {
        None => None,
        Some(s) => Some(
            format::parse_size(s)
                .ok_or_else(|| usage(format!("invalid -max-bytes {s:?}: a size such as 500M or 2GiB")))?,
        ),
    };
    Ok(DrillOptions { percent, max_bytes, seed: a.seed.unwrap_or_else(rand::random), permissions: !a.skip_permissions })
}

fn reports(a: &Args) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for pair in a.report.chunks(2) {
        let [fmt, file] = pair else { unreachable!("clap takes two values") };
        if fmt != "junit" && fmt != "json" {
            return Err(usage(format!("unknown report format {fmt:?}: junit or json")));
        }
        out.push((fmt.clone(), PathBuf::from(file)));
    }
    if a.junit_cases != "file" && a.junit_cases != "dir" {
        return Err(usage(format!("invalid -junit-cases {:?}: file or dir", a.junit_cases)));
    }
    Ok(out)
}

/// The scratch directory: -to (missing or empty) or a new one under $TMPDIR.
fn scratch(a: &Args, short: &str) -> Result<PathBuf> {
    if let Some(to) = &a.to {
        let loc = location::Location::parse(to);
        if loc.scheme != "fs" || to.starts_with('@') {
            return Err(usage(format!("-to {to}: a drill restores into a local directory")));
        }
        let p = loc.fs_path()?;
        match std::fs::read_dir(&p).map(|mut d| d.next().is_some()) {
            Ok(true) => {
                return Err(usage(format!(
                    "-to {}: the directory is not empty (a drill restores into a missing or empty directory)",
                    p.display()
                )))
            }
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("cannot use {}", p.display())),
        }
        return Ok(p);
    }
    let base = std::env::temp_dir();
    let p = base.join(format!("plakar-drill-{short}-{}", hex::encode(crate::kloset::crypto::random_bytes::<4>())));
    std::fs::create_dir(&p).with_context(|| format!("cannot create a scratch directory in {}", base.display()))?;
    Ok(p)
}

/// Removes the restored copy, making directories writable first (a snapshot may hold
/// read-only ones).
fn remove(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fn open_up(p: &Path) {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            if m.is_dir() {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(p);
    std::fs::remove_dir_all(p)
}

/// The drill could not even list the drilled tree: one failure for its root.
fn failed_root(root: &[u8], msg: String) -> DrillReport {
    let path = String::from_utf8_lossy(root).into_owned();
    DrillReport {
        root: path.clone(),
        items: vec![Item { path, kind: FileKind::Dir, size: 0, micros: 0, status: Status::Failed(msg), changed: None }],
        ..Default::default()
    }
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let opts = options(&a)?;
    let wanted = reports(&a)?;
    let (repo, _lock) = locking::open_locked_uncached(ctx, false, &a.lock)?;
    let (h, path) = match a.snapshot.as_deref() {
        Some(r) => snapref::resolve(&repo, r)?,
        None => {
            let mut hs = a.filters.filter()?.apply(repo.headers()?);
            let h = hs.pop().ok_or_else(|| Error::BadReference("no snapshots found".into()))?;
            (h, None)
        }
    };
    let live = a.against.as_deref().map(|p| location::open_importer(p, &ctx.config_dir())).transpose()?;
    let short = h.id.short();
    let dir = scratch(&a, &short)?;
    let quiet = a.quiet || ctx.g.quiet;
    let silent = a.silent || ctx.g.silent;
    let json = a.json || ctx.g.json;
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let outcome = (|| -> Result<DrillReport> {
        let exporter = FsExporter::new(&dir, opts.permissions)?;
        let readback = FsImporter::new(&dir)?;
        let target = Target { exporter: &exporter, readback: &readback };
        let progress = TermProgress::new("drill", short.clone(), quiet, silent);
        let threads = a.concurrency.filter(|&c| c > 0).unwrap_or_else(crate::kloset::ops::backup::default_threads);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let r = pool.install(|| drill::drill(&repo, &h, path.as_deref(), &opts, &target, live.as_deref(), &progress));
        progress.finish();
        match r {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == ErrorKind::BadReference => Err(e.into()),
            Err(e) => {
                let root = path.clone().unwrap_or_else(|| h.source.directory.clone().into_bytes());
                if !silent {
                    eprintln!("{short}: KO ✘ {}: {e}", String::from_utf8_lossy(&root));
                }
                Ok(failed_root(&root, e.to_string()))
            }
        }
    })();
    let elapsed = started.elapsed();
    let kept = a.keep.then(|| dir.display().to_string());
    if !a.keep {
        if let Err(e) = remove(&dir) {
            eprintln!("plakar: cannot remove the restored copy at {}: {e}", dir.display());
        }
    }
    let report = outcome?;
    let (failed, unreadable) = (report.failures().count(), report.unreadable().count());
    let (status, code) = if failed > 0 {
        ("failed", exit::DATA)
    } else if unreadable > 0 {
        ("partial", exit::PARTIAL)
    } else {
        ("ok", exit::OK)
    };
    let summary = DrillSummary {
        report: &report,
        snapshot: h.id,
        store: repo.location(),
        started: started_at,
        elapsed,
        opts: &opts,
        against: a.against.clone(),
        kept,
        hostname: crate::kloset::hostname(),
        status,
        exit_code: code,
    };
    for (fmt, file) in &wanted {
        let body = if fmt == "junit" {
            report::junit(&summary, a.junit_cases == "dir")?
        } else {
            let mut b = serde_json::to_vec_pretty(&report::json(&summary))?;
            b.push(b'\n');
            b
        };
        std::fs::write(file, body)
            .map_err(|e| exit::coded(exit::IO, format!("cannot write the {fmt} report {}: {e}", file.display())))?;
    }
    if json {
        println!("{}", report::json(&summary));
    } else if !silent {
        if !quiet {
            for (i, c) in report.changed() {
                println!("{short}: {}: {c}", i.path);
            }
            for p in &report.added {
                println!("{short}: {p}: added since the snapshot");
            }
        }
        println!("{}", summary_line(&summary, &short));
    }
    Ok(code)
}

/// `<id>: drill completed without errors in 1.2s (files: 7 of 7, 2.9 MiB, 2.4 MiB/s)`, the
/// shape of backup's summary line.
fn summary_line(s: &DrillSummary, short: &str) -> String {
    let r = s.report;
    let (failed, unreadable) = (r.failures().count(), r.unreadable().count());
    let how = match (failed, unreadable) {
        (0, 0) => "without errors".to_string(),
        (f, 0) => format!("with {f} errors"),
        (0, u) => format!("with {u} unreadable files"),
        (f, u) => format!("with {f} errors and {u} unreadable files"),
    };
    let mut extra = String::new();
    if s.against.is_some() {
        extra = format!(", changed: {}, added: {}", r.changed().count(), r.added.len());
    }
    format!(
        "{short}: drill completed {how} in {} (files: {} of {}, {}, {}/s{extra})",
        format::duration_ms(s.elapsed.as_millis() as u64),
        r.count(FileKind::File),
        r.files_total,
        format::ibytes(r.bytes_verified),
        format::ibytes(s.throughput()),
    )
}
