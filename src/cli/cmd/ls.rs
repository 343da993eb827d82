use crate::cli::cmd::filters::FilterArgs;
use crate::cli::{format, snapref, Ctx};
use crate::kloset::importer::FileKind;
use crate::kloset::snapshot::Header;
use crate::kloset::tree::Entry;
use crate::kloset::walk::walk;
use anyhow::Result;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// Show full snapshot ids
    #[arg(long)]
    uuid: bool,
    /// List directories recursively
    #[arg(long)]
    recursive: bool,
    /// Show tags
    #[arg(long)]
    tags: bool,
    /// JSON output
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filters: FilterArgs,
    /// SNAPSHOT[:PATH]
    snapshot: Option<String>,
}

pub fn snapshot_line(h: &Header, uuid: bool, tags: bool) -> String {
    let id = if uuid { h.id.to_hex() } else { h.id.short() };
    let t = if tags && !h.tags.is_empty() { format!(" tags={}", h.tags.join(",")) } else { String::new() };
    format!(
        "{} {:>10}{:>10}{:>10} {}{}",
        format::rfc3339_ns(h.timestamp_ns),
        id,
        format::ibytes(h.summary.size),
        format::duration_secs(h.duration_ms),
        h.source.directory,
        t
    )
}

pub fn header_json(h: &Header) -> serde_json::Value {
    serde_json::json!({
        "id": h.id.to_hex(), "short_id": h.id.short(), "timestamp": format::rfc3339_ns(h.timestamp_ns),
        "duration_ms": h.duration_ms, "name": h.name, "tags": h.tags, "hostname": h.hostname,
        "username": h.username, "importer": h.source.kind, "origin": h.source.origin,
        "directory": h.source.directory, "summary": h.summary, "errors": h.summary.errors,
    })
}

fn entry_line(path: &[u8], e: &Entry, full: bool) -> String {
    let name = if full { String::from_utf8_lossy(path).into_owned() } else { e.name_lossy() };
    let link = if e.kind() == FileKind::Symlink {
        format!(" -> {}", String::from_utf8_lossy(&e.info.target))
    } else {
        String::new()
    };
    let user = e.info.user.clone().unwrap_or_else(|| e.info.uid.to_string());
    let group = e.info.group.clone().unwrap_or_else(|| e.info.gid.to_string());
    // `@` after the mode marks extended attributes, as macOS's `ls -l` does.
    let xattrs = if e.info.xattrs.is_empty() { "" } else { "@" };
    format!(
        "{} {}{xattrs} {:>8} {:>8} {:>8} {}{}",
        format::rfc3339_ns(e.info.mtime_ns),
        format::mode_string(e.info.mode),
        user,
        group,
        format::ibytes(e.info.size),
        name,
        link
    )
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let repo = ctx.open_metadata()?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let json = a.json || ctx.g.json;
    let Some(r) = a.snapshot.as_deref() else {
        let mut hs = a.filters.filter()?.apply(repo.headers()?);
        hs.reverse();
        if json {
            let v: Vec<_> = hs.iter().map(header_json).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        } else {
            for h in &hs {
                writeln!(out, "{}", snapshot_line(h, a.uuid, a.tags))?;
            }
        }
        return Ok(0);
    };
    let (h, path) = snapref::resolve(&repo, r)?;
    let path = path.unwrap_or_else(|| h.source.directory.as_bytes().to_vec());
    let entry = repo.lookup(&h, &path)?;
    let mut rows: Vec<(Vec<u8>, Entry)> = Vec::new();
    if entry.kind() == FileKind::Dir {
        if a.recursive {
            walk(&repo, &entry, &path, &mut |p, e| {
                if p != path.as_slice() {
                    rows.push((p.to_vec(), e.clone()));
                }
                Ok(true)
            })?;
        } else if let Some(sub) = entry.subtree {
            for e in repo.tree(&sub)?.entries {
                rows.push((crate::kloset::importer::join(&path, &e.name), e));
            }
        }
    } else {
        rows.push((path.clone(), entry));
    }
    for (p, e) in &rows {
        if json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"path": String::from_utf8_lossy(p), "info": e.info, "error": e.error})
            )?;
        } else {
            writeln!(out, "{}", entry_line(p, e, a.recursive))?;
        }
    }
    Ok(0)
}
