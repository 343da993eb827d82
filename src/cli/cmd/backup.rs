use crate::app::location;
use crate::cli::cmd::locking::{self, LockArgs};
use crate::cli::progress::TermProgress;
use crate::cli::{exit, format, Ctx};
use crate::kloset::ops::backup::{self, BackupOptions, ExcludeFn};
use crate::kloset::ops::scan;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Tags for the snapshot (a,b)
    #[arg(long, value_delimiter = ',')]
    tag: Vec<String>,
    /// Snapshot name
    #[arg(long)]
    name: Option<String>,
    /// Leave out paths matching a glob (repeatable)
    #[arg(long)]
    exclude: Vec<String>,
    /// Read exclude globs from a file, one per line
    #[arg(long)]
    excludes: Vec<PathBuf>,
    /// Leave out paths matching a gitignore pattern (repeatable)
    #[arg(long)]
    ignore: Vec<String>,
    /// Read gitignore patterns from a file
    #[arg(long)]
    ignore_file: Vec<PathBuf>,
    /// Print nothing but errors and the summary
    #[arg(long)]
    quiet: bool,
    /// Print nothing but errors
    #[arg(long)]
    silent: bool,
    /// Check the snapshot after the backup
    #[arg(long)]
    check: bool,
    /// List what would be backed up, with totals, and write nothing to the store
    #[arg(long)]
    dry_run: bool,
    /// Parallel file readers
    #[arg(long)]
    concurrency: Option<usize>,
    /// Read every file, even those unchanged since the last snapshot
    #[arg(long)]
    no_parent: bool,
    /// Store files that change while they are read as read, without reading them again or reporting them
    #[arg(long)]
    no_changed_check: bool,
    #[arg(long, hide = true)]
    no_progress: bool,
    /// Do not back up extended attributes
    #[arg(long)]
    no_xattr: bool,
    #[arg(long, hide = true)]
    category: Option<String>,
    #[arg(long, hide = true)]
    environment: Option<String>,
    #[arg(long, hide = true)]
    perimeter: Option<String>,
    #[arg(long, hide = true)]
    job: Option<String>,
    #[arg(long, hide = true)]
    packfiles: Option<String>,
    /// Date the snapshot at this time instead of now (RFC 3339, YYYY-MM-DD [HH:MM[:SS]], UTC)
    #[arg(long, value_name = "TIME")]
    force_timestamp: Option<String>,
    #[arg(short = 'o', hide = true)]
    options: Vec<String>,
    #[command(flatten)]
    lock: LockArgs,
    /// What to back up: a path (default: the current directory)
    sources: Vec<String>,
}

fn exclusions(root: &[u8], a: &Args) -> Result<Option<ExcludeFn>> {
    let root_path = PathBuf::from(String::from_utf8_lossy(root).into_owned());
    let mut b = ignore::gitignore::GitignoreBuilder::new(&root_path);
    let mut lines: Vec<String> = a.exclude.iter().chain(&a.ignore).cloned().collect();
    for f in a.excludes.iter().chain(&a.ignore_file) {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read the pattern file {}", f.display()))?;
        lines.extend(text.lines().map(str::to_string));
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let root_str = root_path.display().to_string();
    for l in lines {
        // An absolute path inside the backup root is anchored at the root.
        let pat = match l.strip_prefix(&root_str) {
            Some(rest) if l.starts_with('/') && (rest.is_empty() || rest.starts_with('/')) => rest.to_string(),
            _ => l.clone(),
        };
        b.add_line(None, &pat).with_context(|| format!("invalid exclude pattern {l:?}"))?;
    }
    let gi = b.build().context("invalid exclude patterns")?;
    Ok(Some(Arc::new(move |path: &[u8], is_dir: bool| {
        use std::os::unix::ffi::OsStrExt;
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        gi.matched(p, is_dir).is_ignore()
    })))
}

/// `-force-timestamp`: an absolute time only (a duration such as `30d` would date the
/// snapshot relative to a clock the caller cannot pin, which is not what forcing means).
fn forced_time(s: &str) -> Result<i64> {
    if crate::cli::time::parse_duration(s.trim()).is_some() {
        return Err(exit::coded(
            exit::USAGE,
            format!("invalid -force-timestamp {s:?}: give an absolute time (RFC 3339 or YYYY-MM-DD [HH:MM[:SS]], UTC)"),
        ));
    }
    crate::cli::time::parse(s).map_err(|_| {
        exit::coded(
            exit::USAGE,
            format!(
                "invalid -force-timestamp {s:?}: use RFC 3339 (2024-05-01T10:00:00Z) or YYYY-MM-DD [HH:MM[:SS]] (UTC)"
            ),
        )
    })
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    if a.sources.len() > 1 {
        bail!("multi-source backup not supported yet: run one backup per source");
    }
    let src = a.sources.first().cloned().unwrap_or_else(|| ".".into());
    let timestamp_ns = a.force_timestamp.as_deref().map(forced_time).transpose()?;
    if a.dry_run {
        return dry_run(ctx, &src, &a);
    }
    let (repo, _lock) = locking::open_locked(ctx, false, &a.lock)?;
    let importer = location::open_source(&src, &ctx.config_dir(), !a.no_xattr)?;
    let mut tags = a.tag.clone();
    if tags.is_empty() {
        if let Ok(t) = std::env::var("PLAKAR_TAGS") {
            tags = t.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        }
    }
    let opts = BackupOptions {
        name: a.name.clone().unwrap_or_default(),
        tags,
        hostname: crate::kloset::hostname(),
        username: uzers::get_current_username().map(|u| u.to_string_lossy().into_owned()).unwrap_or_default(),
        command_line: ctx.command_line(),
        exclude: exclusions(&importer.root(), &a)?,
        no_parent: a.no_parent,
        concurrency: a.concurrency.unwrap_or(ctx.g.concurrency),
        uploaders: 0,
        no_changed_check: a.no_changed_check,
        // Chosen here so that KO lines name the snapshot as Plakar's do (`<8hex>: KO ✘`).
        id: Some(crate::kloset::SnapshotId::random()),
        timestamp_ns,
    };
    let quiet = a.quiet || ctx.g.quiet;
    let silent = a.silent || ctx.g.silent;
    let prefix = opts.id.expect("chosen above").short();
    let progress = TermProgress::new("backup", prefix, quiet || a.no_progress, silent);
    let res = backup::backup(&repo, importer.as_ref(), &opts, &progress);
    progress.finish();
    let h = res?;
    let s = &h.summary;
    if ctx.g.json {
        println!(
            "{}",
            serde_json::json!({
                "snapshot_id": h.id.to_hex(), "files": s.files, "directories": s.directories, "size": s.size,
                "errors": s.errors, "files_read": s.files_read, "bytes_stored": s.bytes_stored, "duration_ms": h.duration_ms,
            })
        );
    } else if !silent {
        let errs = if s.errors == 0 { "without errors".to_string() } else { format!("with {} errors", s.errors) };
        println!(
            "{}: backup completed {errs} in {} (in: {}, out: {})",
            h.id.short(),
            format::duration_ms(h.duration_ms),
            format::ibytes(s.size),
            format::ibytes(s.bytes_stored)
        );
    }
    if a.check {
        let r = crate::kloset::ops::check::check(
            &ctx.open()?,
            &[(h.id, None)],
            false,
            &crate::kloset::progress::NoProgress,
        );
        if r.iter().any(|c| !c.ok()) {
            return Err(exit::coded(exit::DATA, format!("check failed for snapshot {}", h.id.short())));
        }
    }
    Ok(if s.errors > 0 { exit::PARTIAL } else { exit::OK })
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `-dry-run`: the source walked as the backup would walk it, each path listed (`OK` on
/// stdout, problems as `KO` on stderr), then the totals and what would be read again. The
/// store is opened to read the parent snapshot only: no lock, nothing written.
fn dry_run(ctx: &Ctx, src: &str, a: &Args) -> Result<i32> {
    let repo = ctx.open()?;
    let importer = location::open_source(src, &ctx.config_dir(), !a.no_xattr)?;
    let opts = scan::ScanOptions { exclude: exclusions(&importer.root(), a)?, no_parent: a.no_parent };
    let quiet = a.quiet || ctx.g.quiet || ctx.g.json;
    let silent = a.silent || ctx.g.silent;
    let r = scan::scan(&repo, importer.as_ref(), &opts, &mut |p, seen| match seen {
        Ok(_) if !quiet && !silent => println!("dry-run: OK ✓ {}", String::from_utf8_lossy(p)),
        Ok(_) => {}
        Err(why) => eprintln!("dry-run: KO ✘ {}: {why}", String::from_utf8_lossy(p)),
    })?;
    let root = String::from_utf8_lossy(&importer.root()).into_owned();
    if ctx.g.json {
        println!(
            "{}",
            serde_json::json!({
                "dry_run": true, "root": root, "files": r.files, "directories": r.dirs, "symlinks": r.symlinks,
                "others": r.others, "size": r.size, "errors": r.errors, "files_to_read": r.changed,
                "bytes_to_read": r.changed_size, "parent": r.parent.map(|p| p.to_hex()),
            })
        );
    } else if !silent {
        let since = match r.parent {
            Some(p) => format!("since snapshot {}", p.short()),
            None if a.no_parent => "(-no-parent: every file is read)".to_string(),
            None => format!("(no earlier snapshot of {root})"),
        };
        println!(
            "dry-run: would back up {} ({}), {}, {}, {}, {}; {} new or changed {since}, {} to read; nothing \
             was written to the store",
            plural(r.files, "file", "files"),
            format::ibytes(r.size),
            plural(r.dirs, "directory", "directories"),
            plural(r.symlinks, "symlink", "symlinks"),
            plural(r.others, "other file", "other files"),
            plural(r.errors, "error", "errors"),
            r.changed,
            format::ibytes(r.changed_size),
        );
    }
    Ok(if r.errors > 0 { exit::PARTIAL } else { exit::OK })
}
