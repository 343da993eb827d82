use crate::app::passphrase;
use crate::cli::Ctx;
use crate::kloset::config::CreateParams;
use crate::kloset::repo;
use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Do not encrypt the store
    #[arg(long, alias = "no-encryption")]
    plaintext: bool,
    /// Do not compress data
    #[arg(long)]
    no_compression: bool,
    /// Hashing algorithm (only BLAKE3 is supported)
    #[arg(long)]
    hashing: Option<String>,
    /// Accept a short passphrase
    #[arg(long)]
    weak_passphrase: bool,
    /// Packfile target size in MiB
    #[arg(long, hide = true)]
    packfile_mib: Option<u64>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    if let Some(h) = a.hashing.as_deref().filter(|h| !h.eq_ignore_ascii_case("blake3")) {
        bail!("hashing algorithm {h:?} is not supported; use BLAKE3 (the default)");
    }
    let mut params = CreateParams { encrypted: !a.plaintext, compression: !a.no_compression, ..Default::default() };
    if let Some(m) = a.packfile_mib {
        params.packfile_max_size = m.clamp(1, 1024) << 20;
    }
    let store = ctx.store()?;
    let pass = if a.plaintext {
        None
    } else {
        match ctx.known_passphrase()? {
            Some(p) => Some(p),
            None => Some(passphrase::new_passphrase(ctx.g.keyfile.as_deref())?),
        }
    };
    let cfg = repo::create(store.as_ref(), &params, pass.as_deref())?;
    ctx.remember(&store.location(), &cfg);
    Ok(0)
}
