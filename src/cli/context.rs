//! What every command needs: the global flags, the store location, and a way to open the
//! repository with a passphrase.

use super::globals::Globals;
use crate::app::{dirs, location, passphrase};
use crate::kloset::config::RepoConfig;
use crate::kloset::{repo, Error, Repository};
use anyhow::{Context as _, Result};
use std::sync::Arc;

pub struct Ctx {
    pub g: Globals,
    pub argv: Vec<String>,
    pub store_loc: String,
}

impl Ctx {
    pub fn new(g: Globals, argv: Vec<String>) -> Self {
        let store_loc = g
            .store
            .clone()
            .or_else(|| {
                std::env::var("PLAKAR_REPOSITORY")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(dirs::default_store);
        Self { g, argv, store_loc }
    }

    pub fn store(&self) -> Result<Arc<dyn crate::kloset::store::Store>> {
        location::open_store(&self.store_loc)
    }

    pub fn command_line(&self) -> String {
        std::iter::once("plakar".to_string())
            .chain(self.argv.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Opens the store, asking for the passphrase (up to three times on a terminal).
    pub fn open(&self) -> Result<Repository> {
        let store = self.store()?;
        let cfg: RepoConfig = repo::read_config(store.as_ref())?;
        if !cfg.encrypted() {
            return Ok(Repository::open(store, cfg, None)?);
        }
        if let Some((p, _)) = passphrase::non_interactive(self.g.keyfile.as_deref())? {
            return Ok(Repository::open(store, cfg, Some(&p))?);
        }
        let mut last = None;
        for _ in 0..3 {
            let p = passphrase::prompt("repository passphrase: ").map_err(|e| {
                anyhow::Error::new(Error::Auth(format!("failed to unlock repository: {e}")))
            })?;
            match cfg.unlock(Some(&p)) {
                Ok(_) => return Ok(Repository::open(store, cfg, Some(&p))?),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("three tries happened")).context("three wrong passphrases")
    }
}
