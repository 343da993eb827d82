//! `plakar ptar -o OUT.ptar [-k STORE]... [PATH|@src]...`: a new one-file store holding
//! every snapshot of the given stores and a fresh backup of each path.

use crate::app::{location, passphrase};
use crate::cli::progress::TermProgress;
use crate::cli::{exit, Ctx};
use crate::connectors::fs::absolute;
use crate::connectors::ptar::PtarWriter;
use crate::kloset::config::CreateParams;
use crate::kloset::ops::{backup, sync};
use crate::kloset::{repo, Repository};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The archive to write
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Copy every snapshot of this store (repeatable)
    #[arg(short = 'k', long = "kloset", alias = "sync-from")]
    klosets: Vec<String>,
    /// Do not encrypt the archive
    #[arg(long, alias = "no-encryption")]
    plaintext: bool,
    #[arg(long)]
    no_compression: bool,
    /// Replace an existing archive
    #[arg(long)]
    overwrite: bool,
    #[arg(long, hide = true)]
    hashing: Option<String>,
    #[arg(long, hide = true)]
    weak_passphrase: bool,
    /// Paths or @sources to back up into the archive
    sources: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    // v1.0.2 wrote `plakar at OUT.ptar ptar ...`.
    let out = match (&a.output, ctx.g.store.as_deref()) {
        (Some(o), _) => o.clone(),
        (None, Some(s)) if s.ends_with(".ptar") => PathBuf::from(s),
        _ => return Err(exit::coded(exit::USAGE, "ptar needs an output: plakar ptar -o OUT.ptar [-k STORE] [PATH]")),
    };
    if a.klosets.is_empty() && a.sources.is_empty() {
        return Err(exit::coded(exit::USAGE, "nothing to archive: give -k STORE and/or paths"));
    }
    let out = absolute(&out)?;
    // Open the sources first: a wrong passphrase must not leave a half-made archive.
    let peers: Vec<Repository> =
        a.klosets.iter().map(|k| ctx.open_other(k, &format!("passphrase of {k}: "))).collect::<Result<_>>()?;
    let pass = if a.plaintext {
        None
    } else {
        Some(match ctx.known_passphrase()? {
            Some(p) => p,
            None => passphrase::new_passphrase(None)?,
        })
    };
    let writer =
        Arc::new(PtarWriter::new(&out, a.overwrite).map_err(|e| exit::coded(exit::CANT_CREATE, e.to_string()))?);
    let res = (|| -> Result<()> {
        let params = CreateParams { encrypted: !a.plaintext, compression: !a.no_compression, ..Default::default() };
        let cfg = repo::create(writer.as_ref(), &params, pass.as_deref())?;
        ctx.remember(&crate::kloset::store::Store::location(writer.as_ref()), &cfg);
        let mut dst = Repository::open(writer.clone(), cfg.clone(), pass.as_deref())?;
        let progress = TermProgress::new("ptar", "ptar".into(), ctx.g.quiet, ctx.g.silent);
        for src in &peers {
            let ids: Vec<_> = src.headers()?.into_iter().map(|h| h.id).collect();
            sync::sync(src, &dst, &ids, false, &progress)?;
            dst = Repository::open(writer.clone(), cfg.clone(), pass.as_deref())?;
        }
        for s in &a.sources {
            let imp = location::open_importer(s, &ctx.config_dir())?;
            let opts = backup::BackupOptions {
                command_line: ctx.command_line(),
                hostname: crate::kloset::hostname(),
                ..Default::default()
            };
            backup::backup(&dst, imp.as_ref(), &opts, &progress)?;
            dst = Repository::open(writer.clone(), cfg.clone(), pass.as_deref())?;
        }
        progress.finish();
        Ok(())
    })();
    if let Err(e) = res {
        writer.abandon();
        return Err(e);
    }
    let writer = Arc::try_unwrap(writer).map_err(|_| anyhow::anyhow!("archive still in use"))?;
    writer.finish().with_context(|| format!("cannot write {}", out.display()))?;
    if !ctx.g.quiet {
        println!("info: ptar: {} written", out.display());
    }
    Ok(0)
}
