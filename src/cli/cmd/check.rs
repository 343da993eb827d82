use crate::cli::cmd::filters::FilterArgs;
use crate::cli::progress::TermProgress;
use crate::cli::{exit, snapref, Ctx};
use crate::kloset::ops::check;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Only check that every blob is indexed and its packfile exists
    #[arg(long)]
    fast: bool,
    #[arg(long, hide = true)]
    no_verify: bool,
    #[arg(long)]
    quiet: bool,
    #[arg(long)]
    json: bool,
    /// List again the packfiles no state lists (a lost state, a commit cut short), from
    /// their own indexes, then check
    #[arg(long)]
    repair: bool,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    lock: crate::cli::cmd::locking::LockArgs,
    /// SNAPSHOT[:PATH]... (default: every snapshot)
    snapshots: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let mut repo;
    // A repair writes: it reads the index under a lock, so a maintenance can neither run
    // beside it nor delete what it lists again.
    let _lock;
    if a.repair {
        (repo, _lock) = crate::cli::cmd::locking::open_locked(ctx, false, &a.lock)?;
        let r = crate::kloset::ops::repair::relist(&repo)?;
        for id in &r.snapshots_recovered {
            println!("{}: listed again", id.short());
        }
        println!(
            "repair: {} packfiles listed again, {} snapshots recovered{}{}",
            r.packs_relisted,
            r.snapshots_recovered.len(),
            if r.lost_states > 0 { format!(", {} lost states accounted for", r.lost_states) } else { String::new() },
            if r.packs_unreadable > 0 {
                format!(", {} damaged unlisted packfiles left for maintenance", r.packs_unreadable)
            } else {
                String::new()
            }
        );
        repo = repo.uncached().reload()?;
    } else {
        // The store's own bytes, never the local cache's copy of them.
        repo = ctx.unlock()?.uncached().load(None)?;
    }
    let mut targets = Vec::new();
    let everything = a.snapshots.is_empty() && a.filters.filter()?.is_empty();
    let filter = a.filters.filter()?;
    if a.snapshots.is_empty() && filter.is_empty() {
        // Ids come from the index, so a snapshot whose header is damaged is still checked
        // (and reported) rather than stopping the whole run.
        let mut ids = repo.index.snapshots();
        ids.sort();
        targets.extend(ids.into_iter().map(|id| (id, None)));
    } else if a.snapshots.is_empty() {
        for h in filter.apply(repo.headers()?) {
            targets.push((h.id, None));
        }
    } else {
        for r in &a.snapshots {
            let (prefix, _) = snapref::split(r);
            if prefix.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(exit::coded(exit::USAGE, format!("invalid snapshot prefix: {r}")));
            }
            let (h, path) = snapref::resolve(&repo, r)?;
            targets.push((h.id, path));
        }
    }
    let quiet = a.quiet || ctx.g.quiet;
    let progress = TermProgress::new("check", "check".into(), quiet, ctx.g.silent);
    let mut results = check::check(&repo, &targets, a.fast, &progress);
    progress.finish();
    let mut bad_packs = Vec::new();
    if everything {
        let unlisted = check::unlisted_snapshots(&repo)?;
        let damage = check::lost_states(&repo, &unlisted);
        if damage.is_empty() && !ctx.g.silent {
            // Not damage: nothing reported these committed (issue 20).
            for (id, pack) in &unlisted {
                eprintln!(
                    "{}: not committed: a backup whose commit did not finish (full disk, killed, lock taken over) \
                     left it in packfile {}; `maintenance` deletes it, `check -repair` lists it again",
                    id.short(),
                    pack.short()
                );
            }
        }
        results.extend(damage);
        if !a.fast {
            bad_packs = check::pack_indexes(&repo)?;
        }
    }
    for (pack, why) in &bad_packs {
        eprintln!("packfile {}: KO ✘ {why}", pack.short());
    }
    let failed = results.iter().filter(|r| !r.ok()).count();
    if a.json || ctx.g.json {
        let v: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({"snapshot": r.id.to_hex(), "path": r.path, "ok": r.ok(),
                "errors": r.errors.iter().map(|(p, e)| serde_json::json!({"path": p, "error": e})).collect::<Vec<_>>()})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for r in &results {
            for (p, e) in &r.errors {
                eprintln!("{}: KO ✘ {p}: {e}", r.id.short());
            }
            if !ctx.g.silent {
                let how = if r.ok() { "without errors".to_string() } else { format!("with {} errors", r.errors.len()) };
                println!("{}: check completed {how}", r.id.short());
            }
        }
    }
    if failed > 0 {
        return Err(exit::coded(exit::DATA, format!("check failed for {failed} snapshot(s)")));
    }
    if !bad_packs.is_empty() {
        return Err(exit::coded(
            exit::DATA,
            format!(
                "check failed: {} packfile(s) with a damaged index (the snapshots themselves read back)",
                bad_packs.len()
            ),
        ));
    }
    Ok(0)
}
