//! `archive [-output FILE|-] [-format tar|tarball|zip] [-rebase] SNAPSHOT[:PATH]`, with
//! Plakar's flags, names and default (`plakar-<RFC 3339 time>.tar.gz` in the current
//! directory). Entries are named by their path in the snapshot without the leading `/`, or
//! from the path asked for with `-rebase`. A file is written under a temporary name beside
//! it and renamed once complete, so a failed run leaves no partial archive; `-output -`
//! streams to stdout (never to a terminal).

use crate::cli::{exit, format, snapref, Ctx};
use crate::kloset::importer::FileKind;
use crate::kloset::ops::archive::{self, ArchiveReport, Format};
use crate::kloset::tree::components;
use crate::kloset::Repository;
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the archive; `-` is stdout (default: plakar-<time>.<ext> here)
    #[arg(long, value_name = "FILE")]
    output: Option<String>,
    /// tar, tarball (tar.gz) or zip
    #[arg(long, default_value = "tarball", value_name = "FORMAT")]
    format: String,
    /// Name entries from the path asked for, not from the snapshot's root
    #[arg(long)]
    rebase: bool,
    /// SNAPSHOT[:PATH]; a relative PATH is taken from the backed-up directory
    snapshot: Option<String>,
}

const USAGE: &str = "plakar at STORE archive [-format tar|tarball|zip] [-output FILE|-] [-rebase] SNAPSHOT[:PATH]";

/// `/a/b/c` from any spelling of it (`a/b/c/`, `/a//b/./c`).
fn normalized(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in components(path) {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Plakar's names: the path without its leading `/`, or (`-rebase`) the part below `base`;
/// the entry asked for itself, when that leaves nothing, is `./` (a directory) or its name.
fn namer(base: Vec<u8>, rebase: bool, top_is_dir: bool) -> impl Fn(&[u8]) -> Option<Vec<u8>> {
    move |p: &[u8]| {
        let rel = if rebase { p.strip_prefix(base.as_slice()).unwrap_or(p) } else { p };
        let rel = &rel[rel.iter().take_while(|&&b| b == b'/').count()..];
        Some(match (rel.is_empty(), top_is_dir) {
            (false, _) => rel.to_vec(),
            (true, true) => b"./".to_vec(),
            (true, false) => components(p).last().unwrap_or(b".").to_vec(),
        })
    }
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let fmt = Format::parse(&a.format).ok_or_else(|| {
        exit::coded(exit::USAGE, format!("unknown archive format {:?}: use one of {}", a.format, Format::NAMES))
    })?;
    let Some(reference) = a.snapshot.as_deref() else {
        return Err(exit::coded(exit::USAGE, format!("archive needs a snapshot: {USAGE}")));
    };
    let to_stdout = a.output.as_deref() == Some("-");
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(exit::coded(
            exit::USAGE,
            "refusing to write an archive to a terminal: redirect stdout (> file.tar.gz), or give -output FILE",
        ));
    }
    let repo = ctx.open()?;
    let (h, path) = snapref::resolve(&repo, reference)?;
    let path = normalized(&path.unwrap_or_else(|| Repository::absolute(&h, "")));
    let entry = repo.lookup(&h, &path)?;
    let name = namer(path.clone(), a.rebase, entry.kind() == FileKind::Dir);
    let started = Instant::now();
    let (report, dest) = if to_stdout {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let r = archive::archive(&repo, &entry, &path, fmt, &name, &mut out)?;
        out.flush()?;
        (r, None)
    } else {
        let dest = a.output.clone().unwrap_or_else(|| {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            format!("plakar-{now}.{}", fmt.extension())
        });
        (to_file(&repo, &entry, &path, fmt, &name, &dest)?, Some(dest))
    };
    let short = h.id.short();
    for (p, why) in &report.warnings {
        eprintln!("{short}: KO ✘ {}: {why}", String::from_utf8_lossy(p));
    }
    if let Some(dest) = dest.filter(|_| !ctx.g.quiet && !ctx.g.silent) {
        let how = match report.warnings.len() {
            0 => "without errors".to_string(),
            n => format!("with {n} errors"),
        };
        println!(
            "{short}: archive completed {how} in {} ({} files, {}): {dest}",
            format::duration_ms(started.elapsed().as_millis() as u64),
            report.files,
            format::ibytes(report.bytes)
        );
    }
    Ok(if report.warnings.is_empty() { exit::OK } else { exit::PARTIAL })
}

/// Writes the archive under a temporary name in `dest`'s directory, then renames it.
fn to_file(
    repo: &Repository,
    entry: &crate::kloset::tree::Entry,
    path: &[u8],
    fmt: Format,
    name: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    dest: &str,
) -> Result<ArchiveReport> {
    let cant =
        |e: &dyn std::fmt::Display| exit::coded(exit::CANT_CREATE, format!("cannot create the archive {dest}: {e}"));
    let dir = Path::new(dest).parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".plakar-archive-").tempfile_in(dir).map_err(|e| cant(&e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
    let report = archive::archive(repo, entry, path, fmt, name, &mut out)?;
    out.flush().map_err(|e| exit::coded(exit::IO, format!("cannot write the archive {dest}: {e}")))?;
    drop(out);
    tmp.as_file().sync_all().map_err(|e| exit::coded(exit::IO, format!("cannot write the archive {dest}: {e}")))?;
    tmp.persist(dest).map_err(|e| cant(&e.error))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::{namer, normalized};

    #[test]
    fn names_follow_plakar() {
        assert_eq!(normalized(b"a//b/./c/"), b"/a/b/c");
        assert_eq!(normalized(b""), b"/");
        let full = namer(b"/home/me".to_vec(), false, true);
        assert_eq!(full(b"/home/me"), Some(b"home/me".to_vec()));
        assert_eq!(full(b"/home/me/a/b"), Some(b"home/me/a/b".to_vec()));
        let rebased = namer(b"/home/me".to_vec(), true, true);
        assert_eq!(rebased(b"/home/me"), Some(b"./".to_vec()));
        assert_eq!(rebased(b"/home/me/a/b"), Some(b"a/b".to_vec()));
        let file = namer(b"/home/me/x.txt".to_vec(), true, false);
        assert_eq!(file(b"/home/me/x.txt"), Some(b"x.txt".to_vec()));
        // A snapshot of `/`, not rebased: its root is `./` too.
        assert_eq!(namer(b"/".to_vec(), false, true)(b"/"), Some(b"./".to_vec()));
    }
}
