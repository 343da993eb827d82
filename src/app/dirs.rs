//! Where plakar keeps its config and cache, following XDG.

use std::path::PathBuf;

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".config")).join("plakar")
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache")).join("plakar")
}

/// The store used when no `at` is given and $PLAKAR_REPOSITORY is unset.
pub fn default_store() -> String {
    home().join(".plakar").display().to_string()
}
