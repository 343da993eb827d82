//! `passwd`: change the store's passphrase, or with `-add` give it one more. The master key
//! is wrapped again under the new passphrase in CONFIG's key slots; no data is rewritten.
//! Plakar has no such command; the name is borg's and Unix's.

use crate::app::passphrase;
use crate::cli::{exit, Ctx};
use crate::kloset::ops::passwd;
use crate::kloset::repo;
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
    if !a.add {
        // A change deletes the old passphrase's slot.
        store.can_delete().map_err(crate::kloset::Error::from)?;
    }
    let (guard, _) = crate::cli::cmd::locking::wait_lock(ctx, store.clone(), true, &a.lock)?;
    let cfg = repo::read_config(store.as_ref())?;
    if !cfg.encrypted() {
        return Err(exit::coded(exit::USAGE, "this store is not encrypted: it has no passphrase to change"));
    }
    let current = match ctx.known_passphrase()? {
        Some(p) => p,
        None => passphrase::prompt("current passphrase: ")?,
    };
    cfg.unlock(Some(&current))?;
    let new = new_passphrase(&a)?;
    let change = passwd::prepare(&cfg, &current, &new, a.add)?;
    let count = passwd::commit(store.as_ref(), &change, guard.as_ref().map(|g| g.lease()))?;
    drop(guard);
    if a.add {
        println!("passphrase added: the store opens with any of {count} passphrases");
    } else {
        println!("passphrase changed");
    }
    Ok(exit::OK)
}
