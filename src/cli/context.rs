//! What every command needs: the global flags, the store location, the config directory,
//! and a way to open the repository with a passphrase. Every open goes through
//! `app::known_stores`, so a CONFIG swapped for a plaintext one is refused before anything
//! read from the store is used, and before anything is written to it.

use super::globals::Globals;
use crate::app::known_stores::{self, Given, KnownStores};
use crate::app::{config::Config, dirs, location, passphrase};
use crate::kloset::cache::Cache;
use crate::kloset::config::RepoConfig;
use crate::kloset::store::Store;
use crate::kloset::{repo, Error, Repository};
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Ctx {
    pub g: Globals,
    pub argv: Vec<String>,
    pub store_loc: String,
}

impl Ctx {
    /// The store is `at LOC`, else $PLAKAR_REPOSITORY, else the configured default, else
    /// ~/.plakar.
    pub fn new(g: Globals, argv: Vec<String>) -> Self {
        let config_dir = g.config_dir.clone().unwrap_or_else(dirs::config_dir);
        let store_loc = g
            .store
            .clone()
            .or_else(|| std::env::var("PLAKAR_REPOSITORY").ok().filter(|s| !s.is_empty()))
            .or_else(|| Config::load(&config_dir).ok()?.default_store.map(|n| format!("@{n}")))
            .unwrap_or_else(dirs::default_store);
        Self { g, argv, store_loc }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.g.config_dir.clone().unwrap_or_else(dirs::config_dir)
    }

    /// `-cachedir`, else the XDG cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.g.cache_dir.clone().unwrap_or_else(dirs::cache_dir)
    }

    pub fn store(&self) -> Result<Arc<dyn Store>> {
        location::open_store(&self.store_loc, &self.config_dir())
    }

    pub fn command_line(&self) -> String {
        std::iter::once("plakar".to_string()).chain(self.argv.iter().cloned()).collect::<Vec<_>>().join(" ")
    }

    /// Opens another store (a sync peer): its configured passphrase, then -keyfile or
    /// $PLAKAR_PASSPHRASE, then a prompt.
    pub fn open_other(&self, loc: &str, prompt: &str) -> Result<Repository> {
        Ok(self.unlock_other(loc, prompt)?.load(None)?)
    }

    /// Like `unlock`, for another store.
    pub fn unlock_other(&self, loc: &str, prompt: &str) -> Result<Unlocked> {
        let store = location::open_store(loc, &self.config_dir())?;
        let cfg: RepoConfig = repo::read_config(store.as_ref())?;
        self.guard(store.as_ref(), &cfg, loc)?;
        let (location, seen) = (store.location(), cfg.clone());
        let repo =
            self.derive_other(store, cfg, loc, prompt)?.cached(&self.cache_dir(), !self.g.quiet && !self.g.silent);
        self.remember(&location, &seen);
        Ok(repo)
    }

    fn derive_other(&self, store: Arc<dyn Store>, cfg: RepoConfig, loc: &str, prompt: &str) -> Result<Unlocked> {
        if !cfg.encrypted() {
            return Ok(Unlocked::new(store, cfg, None)?);
        }
        let pass = match location::store_passphrase(loc, &self.config_dir())? {
            Some(p) => p,
            None => match passphrase::non_interactive(self.g.keyfile.as_deref())? {
                Some((p, _)) => p,
                None => passphrase::prompt(prompt)?,
            },
        };
        Ok(Unlocked::new(store, cfg, Some(&pass))?)
    }

    /// The passphrase, without asking: -keyfile, then the store's configured `passphrase`
    /// or `passphrase_cmd`, then $PLAKAR_PASSPHRASE.
    pub fn known_passphrase(&self) -> Result<Option<Vec<u8>>> {
        if self.g.keyfile.is_some() {
            return Ok(passphrase::non_interactive(self.g.keyfile.as_deref())?.map(|(p, _)| p));
        }
        if let Some(p) = location::store_passphrase(&self.store_loc, &self.config_dir())? {
            return Ok(Some(p));
        }
        Ok(passphrase::non_interactive(None)?.map(|(p, _)| p))
    }

    /// Where a passphrase for the store at `loc` would come from, if one is given; a
    /// `passphrase_cmd` is not run to find out.
    fn passphrase_given(&self, loc: &str) -> Result<Option<Given>> {
        if self.g.keyfile.is_some() {
            return Ok(Some(Given::Keyfile));
        }
        if location::store_has_passphrase(loc, &self.config_dir())? {
            return Ok(Some(Given::Configured));
        }
        // An empty passphrase opens no encrypted store, so it expects no encryption.
        Ok(std::env::var_os("PLAKAR_PASSPHRASE").filter(|p| !p.is_empty()).map(|_| Given::Env))
    }

    /// Refuses a plaintext CONFIG where encryption was seen or is expected.
    fn guard(&self, store: &dyn Store, cfg: &RepoConfig, loc: &str) -> Result<()> {
        let dir = self.config_dir();
        KnownStores::load(&dir)?.check(&dir, &store.location(), cfg, self.passphrase_given(loc)?)
    }

    /// Remembers a store just created or opened. Failing to is not a reason to stop a
    /// backup (a read-only home under systemd's ProtectHome, say), only to say so.
    pub fn remember(&self, location: &str, cfg: &RepoConfig) {
        if let Err(e) = known_stores::remember(&self.config_dir(), location, cfg) {
            if !self.g.silent {
                eprintln!("plakar: warning: {e:#}: this store will not be recognised if its CONFIG is replaced");
            }
        }
    }

    /// Opens the store, asking for the passphrase (up to three times on a terminal).
    pub fn open(&self) -> Result<Repository> {
        self.open_reader(false)
    }

    /// Opens the store for listing: snapshots and trees, no file contents
    /// (Repository::load_listed, metadata only).
    pub fn open_metadata(&self) -> Result<Repository> {
        self.open_reader(true)
    }

    /// A reader's open (no lock): the store's fences and states are listed while CONFIG is
    /// read and the keys derived, rather than after (on a remote store, three round trips
    /// that overlap Argon2id). What went wrong unlocking is said first: no store there, a
    /// wrong passphrase.
    fn open_reader(&self, metadata_only: bool) -> Result<Repository> {
        let store = self.store()?;
        let early = {
            let store = store.clone();
            std::thread::spawn(move || repo::Listing::read(store.as_ref()))
        };
        let unlocked = self.unlock_store(store)?;
        let listing = early.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(unlocked.load_listed(listing, metadata_only)?)
    }

    /// This machine, as locks see it.
    pub fn host(&self) -> Arc<dyn crate::kloset::host::Host> {
        super::host::system(&self.config_dir(), &self.cache_dir())
    }

    /// Reads CONFIG and derives the keys, without reading the index (which a writer reads
    /// only once it holds its lock).
    pub fn unlock(&self) -> Result<Unlocked> {
        self.unlock_store(self.store()?)
    }

    fn unlock_store(&self, store: Arc<dyn Store>) -> Result<Unlocked> {
        let cfg: RepoConfig = repo::read_config(store.as_ref())?;
        self.guard(store.as_ref(), &cfg, &self.store_loc)?;
        let (location, seen) = (store.location(), cfg.clone());
        let repo = self.derive(store, cfg)?.cached(&self.cache_dir(), !self.g.quiet && !self.g.silent);
        self.remember(&location, &seen);
        Ok(repo)
    }

    fn derive(&self, store: Arc<dyn Store>, cfg: RepoConfig) -> Result<Unlocked> {
        if !cfg.encrypted() {
            return Ok(Unlocked::new(store, cfg, None)?);
        }
        if let Some(p) = self.known_passphrase()? {
            return Ok(Unlocked::new(store, cfg, Some(&p))?);
        }
        let mut last = None;
        for _ in 0..3 {
            let p = passphrase::prompt("repository passphrase: ")
                .map_err(|e| anyhow::Error::new(Error::Auth(format!("failed to unlock repository: {e}"))))?;
            match cfg.unlock(Some(&p)) {
                Ok(_) => return Ok(Unlocked::new(store, cfg, Some(&p))?),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("three tries happened")).context("three wrong passphrases")
    }
}

/// A store whose keys are derived and whose index is not read yet.
pub struct Unlocked {
    pub store: Arc<dyn crate::kloset::store::Store>,
    pub config: RepoConfig,
    pub keys: Arc<crate::kloset::crypto::Keys>,
    pub cache: Option<Arc<Cache>>,
}

impl Unlocked {
    fn new(
        store: Arc<dyn crate::kloset::store::Store>,
        config: RepoConfig,
        pass: Option<&[u8]>,
    ) -> crate::kloset::Result<Self> {
        let keys = Repository::unlock(&config, pass)?;
        Ok(Self { store, config, keys, cache: None })
    }

    /// Reads through the local cache under `dir` (remote stores only: a local store is as
    /// fast to read as the cache).
    /// `show`: say on a terminal how far a cold cache's fill has got.
    fn cached(mut self, dir: &std::path::Path, show: bool) -> Self {
        if !self.store.remote() {
            return self;
        }
        let location = self.store.location();
        let cache = Cache::open(&dir.join("stores"), &self.keys, &self.config.repository_id, &location);
        let show = show && std::io::IsTerminal::is_terminal(&std::io::stderr());
        self.cache = cache
            .map(|c| match show {
                true => c.on_fill(Box::new(fill_progress)),
                false => c,
            })
            .map(Arc::new);
        self
    }

    /// Reads only from the store (`check`).
    pub fn uncached(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Reads the index from a reader's listing of the store (`Repository::load_listed`).
    pub fn load_listed(self, listing: repo::Listing, metadata_only: bool) -> crate::kloset::Result<Repository> {
        Repository::load_listed(self.store, self.config, self.keys, self.cache, listing, metadata_only)
    }

    /// Reads the index; `lease`: the lock it is read under.
    pub fn load(self, lease: Option<crate::kloset::lock::Lease>) -> crate::kloset::Result<Repository> {
        Repository::load_cached(self.store, self.config, self.keys, lease, self.cache)
    }
}

/// One line on stderr, rewritten in place, while a cold cache fills with many states.
fn fill_progress(done: usize, total: usize) {
    if total >= 50 && (done.is_multiple_of(25) || done == total) {
        let end = if done == total { "\n" } else { "" };
        eprint!("\rreading the store's index into the local cache: {done}/{total} states{end}");
    }
}
