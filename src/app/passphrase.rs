//! Finding the passphrase: `-keyfile`, then $PLAKAR_PASSPHRASE, then a prompt on the
//! terminal. A passphrase that came from a file or the environment is never retried.

use anyhow::{bail, Context, Result};
use std::io::IsTerminal;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Keyfile,
    Env,
    Prompt,
}

/// A passphrase that does not need asking for, if there is one.
pub fn non_interactive(keyfile: Option<&Path>) -> Result<Option<(Vec<u8>, Origin)>> {
    if let Some(k) = keyfile {
        let mut b = std::fs::read(k).with_context(|| format!("cannot read the keyfile {}", k.display()))?;
        if b.ends_with(b"\n") {
            b.pop();
        }
        return Ok(Some((b, Origin::Keyfile)));
    }
    if let Some(p) = std::env::var_os("PLAKAR_PASSPHRASE") {
        use std::os::unix::ffi::OsStrExt;
        return Ok(Some((p.as_bytes().to_vec(), Origin::Env)));
    }
    Ok(None)
}

pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() || std::fs::File::open("/dev/tty").is_ok() && std::io::stderr().is_terminal()
}

pub fn prompt(label: &str) -> Result<Vec<u8>> {
    if !can_prompt() {
        return Err(crate::kloset::Error::Auth(
            "no passphrase: set PLAKAR_PASSPHRASE, pass -keyfile FILE, or run on a terminal".into(),
        )
        .into());
    }
    let p = rpassword::prompt_password(label).context("cannot read the passphrase from the terminal")?;
    Ok(p.into_bytes())
}

/// For `create`: asks twice on a terminal.
pub fn new_passphrase(keyfile: Option<&Path>) -> Result<Vec<u8>> {
    if let Some((p, _)) = non_interactive(keyfile)? {
        return Ok(p);
    }
    let a = prompt("repository passphrase: ")?;
    let b = prompt("repository passphrase (confirm): ")?;
    if a != b {
        bail!("passphrases do not match; nothing was created");
    }
    Ok(a)
}
