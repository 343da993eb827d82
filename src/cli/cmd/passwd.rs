//! `passwd`: change the store's passphrase, or with `-add` give it one more. The master key
//! is wrapped again under the new passphrase in CONFIG's key slots; no data is rewritten.
//! Plakar has no such command; the name is borg's and Unix's.

use crate::app::passphrase;
use crate::cli::{exit, Ctx};
use crate::kloset::{repo, Error};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Keep the current passphrase working too: the store opens with either
    #[arg(long)]
    add: bool,
    /// Read the new passphrase from this file (one trailing newline stripped); otherwise
    /// $PLAKAR_NEW_PASSPHRASE, otherwise it is asked twice on the terminal
    #[arg(long)]
    new_keyfile: Option<PathBuf>,
    #[command(flatten)]
    lock: crate::cli::cmd::locking::LockArgs,
}

fn still_held(guard: Option<&crate::kloset::lock::LockGuard>) -> Result<()> {
    match guard.map(|g| g.lease().check()) {
        Some(Err(e)) if e.kind() == crate::kloset::ErrorKind::Locked => Err(exit::coded(
            exit::LOCKED,
            "this run's lock was taken over while it changed the passphrase: another run may have replaced \
             CONFIG since; check that the new passphrase opens the store (and run passwd again if not)",
        )),
        Some(Err(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

fn new_passphrase(a: &Args) -> Result<Vec<u8>> {
    if let Some(f) = &a.new_keyfile {
        let mut b = std::fs::read(f).map_err(|e| anyhow::anyhow!("cannot read the keyfile {}: {e}", f.display()))?;
        if b.ends_with(b"\n") {
            b.pop();
        }
        return Ok(b);
    }
    if let Some(p) = std::env::var_os("PLAKAR_NEW_PASSPHRASE") {
        use std::os::unix::ffi::OsStrExt;
        return Ok(p.as_bytes().to_vec());
    }
    let p = passphrase::prompt("new passphrase: ")?;
    if passphrase::prompt("new passphrase (confirm): ")? != p {
        return Err(exit::coded(exit::USAGE, "the new passphrases do not match; nothing was changed"));
    }
    Ok(p)
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let store = ctx.store()?;
    // Read CONFIG under the exclusive lock: two runs that both read it first would each
    // write back their own new slot, and the last write would drop the other's.
    repo::read_config(store.as_ref())?; // a clear "no store there" before any waiting
    let (guard, _) = crate::cli::cmd::locking::wait_lock(ctx, store.clone(), true, &a.lock)?;
    let mut cfg = repo::read_config(store.as_ref())?;
    if !cfg.encrypted() {
        return Err(exit::coded(exit::USAGE, "this store is not encrypted: it has no passphrase to change"));
    }
    let current = match ctx.known_passphrase()? {
        Some(p) => p,
        None => passphrase::prompt("current passphrase: ")?,
    };
    cfg.unlock(Some(&current))?;
    let new = new_passphrase(&a)?;
    if new.is_empty() {
        return Err(
            Error::Auth("can't encrypt the repository with an empty passphrase; nothing was changed".into()).into()
        );
    }
    cfg.change_passphrase(&current, &new, a.add)?;
    still_held(guard.as_ref())?;
    store.replace_config(&cfg.encode()).map_err(Error::Store)?;
    // Taken over meanwhile (this run was stopped for over 10 minutes): another passwd may
    // have written CONFIG after this one; say so rather than claim success.
    still_held(guard.as_ref())?;
    drop(guard);
    if a.add {
        println!("passphrase added: the store opens with any of {} passphrases", cfg.key_count());
    } else {
        println!("passphrase changed");
    }
    Ok(exit::OK)
}
