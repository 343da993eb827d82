//! Connector options as they come from the config file or the command line: strings, typed
//! by each connector's own config.

use anyhow::{bail, Result};
use std::collections::BTreeMap;

pub type Options = BTreeMap<String, String>;

pub fn parse_bool(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => bail!("{v:?} is not a boolean: use true or false"),
    }
}

/// An option whose value cannot be used (a file that does not exist, holds the wrong thing,
/// or a required option that is missing). The CLI exits 64 (usage) on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

/// `~/x` as $HOME/x; anything else as it is.
pub fn expand_home(p: &str) -> std::path::PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(std::path::PathBuf::from);
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => std::path::PathBuf::from(p),
    }
}
