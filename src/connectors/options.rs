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
