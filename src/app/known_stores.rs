//! Stores this user has opened, and whether each was encrypted: plakar's version of borg's
//! security directory.
//!
//! Someone who may write a store (a bucket, an SFTP account) but lacks its passphrase can
//! replace its CONFIG with a plaintext one and move the states aside; the owner's next
//! backup would then write in the clear. A plaintext CONFIG proves nothing, and its author
//! chooses every field of it, repository id included. So plakar remembers, in
//! `known-stores` in the config directory, each location it opened and the id and kind of
//! the store it found there, and refuses a plaintext CONFIG (exit 77) when:
//! - a store with that id was seen encrypted, at any location; or
//! - the location held an encrypted store, whatever id the new CONFIG claims; or
//! - a passphrase was given (the caller expects encryption) and this location is not
//!   remembered as holding this very plaintext store.
//!
//! A plaintext store is remembered when it is created here or opened without any
//! passphrase, so users who keep PLAKAR_PASSPHRASE exported keep using their plaintext
//! stores. An encrypted store is remembered on create and on every successful open.
//!
//! Format: one line per location, `encrypted|plaintext<TAB>repository id<TAB>location`,
//! lines starting with `#` ignored. Deleting a store's line forgets it: the way to accept a
//! store converted to plaintext on purpose. Updates are serialised with a lock on the
//! config directory and published by rename, so a crash keeps the old file or the new one.

use crate::kloset::config::RepoConfig;
use crate::kloset::Error;
use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const FILE: &str = "known-stores";

/// Where a passphrase came from, to say what to drop in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    Keyfile,
    /// The store's `passphrase` or `passphrase_cmd` in the config.
    Configured,
    Env,
}

impl Given {
    fn advice(self) -> &'static str {
        match self {
            Given::Keyfile => "drop -keyfile",
            Given::Configured => "remove passphrase/passphrase_cmd from this store's configuration",
            Given::Env => "unset PLAKAR_PASSPHRASE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    encrypted: bool,
    id: String,
    location: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct KnownStores {
    entries: Vec<Entry>,
}

pub fn path(config_dir: &Path) -> PathBuf {
    config_dir.join(FILE)
}

impl KnownStores {
    pub fn load(config_dir: &Path) -> Result<Self> {
        let p = path(config_dir);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Self::parse(&s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                let encrypted = match f.next()? {
                    "encrypted" => true,
                    "plaintext" => false,
                    _ => return None,
                };
                let (id, location) = (f.next()?, f.next()?);
                Some(Entry { encrypted, id: id.to_string(), location: location.to_string() })
            })
            .collect();
        Self { entries }
    }

    fn render(&self) -> String {
        let mut s = String::from(
            "# plakar: stores opened by this user and whether they were encrypted (see README,\n\
             # \"Encryption downgrade\"). Delete a store's line to accept it as it is now.\n",
        );
        for e in &self.entries {
            let kind = if e.encrypted { "encrypted" } else { "plaintext" };
            s.push_str(&format!("{kind}\t{}\t{}\n", e.id, e.location));
        }
        s
    }

    fn at(&self, location: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.location == location)
    }

    /// Whether a store whose CONFIG was just read at `location` may be opened. Only a
    /// plaintext CONFIG can be refused; `given` is where a passphrase came from, if any.
    pub fn check(&self, config_dir: &Path, location: &str, cfg: &RepoConfig, given: Option<Given>) -> Result<()> {
        if cfg.encrypted() {
            return Ok(());
        }
        let id = &cfg.repository_id;
        let file = path(config_dir);
        let forget = |what: &str| {
            format!(
                "nothing was read or written. If the store was converted to plaintext on purpose, \
                 delete the line naming {what} from {} and run again without a passphrase",
                file.display()
            )
        };
        if let Some(seen) = self.entries.iter().find(|e| e.encrypted && &e.id == id) {
            return Err(Error::Auth(format!(
                "the store at {location} (store id {id}) was encrypted when plakar last opened it (at {}), \
                 but its CONFIG now says it is not encrypted: its CONFIG may have been replaced by someone \
                 without the passphrase; {}",
                seen.location,
                forget(&format!("store id {id}"))
            ))
            .into());
        }
        if let Some(seen) = self.at(location).filter(|e| e.encrypted) {
            return Err(Error::Auth(format!(
                "the store at {location} was encrypted when plakar last opened it (store id {}), but its \
                 CONFIG now says it is a plaintext store (store id {id}): its CONFIG may have been replaced \
                 by someone without the passphrase; {}",
                seen.id,
                forget(location)
            ))
            .into());
        }
        let Some(given) = given else { return Ok(()) };
        if self.at(location).is_some_and(|e| &e.id == id) {
            return Ok(());
        }
        Err(Error::Auth(format!(
            "the store at {location} is not encrypted but a passphrase was given: its CONFIG may have been \
             replaced; nothing was read or written. If you meant a plaintext store, {} and run again \
             (plakar then remembers it as plaintext and accepts the passphrase with it)",
            given.advice()
        ))
        .into())
    }

    /// Notes what was found at `location`; returns whether that changed anything.
    fn note(&mut self, location: &str, cfg: &RepoConfig) -> bool {
        let new = Entry { encrypted: cfg.encrypted(), id: cfg.repository_id.clone(), location: location.to_string() };
        match self.entries.iter_mut().find(|e| e.location == location) {
            Some(e) if *e == new => false,
            Some(e) => {
                *e = new;
                true
            }
            None => {
                self.entries.push(new);
                true
            }
        }
    }
}

/// Remembers the store found at `location`. A location with a newline cannot be a line of
/// the file and is not remembered.
pub fn remember(config_dir: &Path, location: &str, cfg: &RepoConfig) -> Result<()> {
    if location.contains('\n') || cfg.repository_id.contains(['\t', '\n']) {
        return Ok(());
    }
    std::fs::create_dir_all(config_dir).with_context(|| format!("cannot create {}", config_dir.display()))?;
    let dir = std::fs::File::open(config_dir).with_context(|| format!("cannot open {}", config_dir.display()))?;
    // Two plakar processes updating at once would otherwise lose one's line.
    dir.lock().with_context(|| format!("cannot lock {}", config_dir.display()))?;
    let mut known = KnownStores::load(config_dir)?;
    if !known.note(location, cfg) {
        return Ok(());
    }
    let p = path(config_dir);
    let tmp = config_dir.join(format!(".{FILE}.{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::options().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(known.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        dir.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("cannot write {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kloset::config::CreateParams;
    use crate::kloset::crypto::KdfParams;

    fn cfg(encrypted: bool) -> RepoConfig {
        let p =
            CreateParams { encrypted, kdf: KdfParams { m_cost_kib: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        RepoConfig::new(&p, Some(b"pass")).unwrap().0
    }

    #[test]
    fn round_trips_and_ignores_what_it_does_not_know() {
        let mut k = KnownStores::default();
        assert!(k.note("/a\twith tab", &cfg(true)));
        assert!(k.note("s3://h/b", &cfg(false)));
        let text = format!("{}garbage line\nencrypted\tonly-an-id\n", k.render());
        assert_eq!(KnownStores::parse(&text), k);
    }

    #[test]
    fn refuses_plaintext_where_encryption_was_seen_or_a_passphrase_given() {
        let dir = Path::new("/nonexistent");
        let (enc, plain, other_plain) = (cfg(true), cfg(false), cfg(false));
        let mut k = KnownStores::default();
        // Nothing known: only a passphrase makes plaintext suspicious.
        assert!(k.check(dir, "/s", &plain, None).is_ok());
        assert!(k.check(dir, "/s", &plain, Some(Given::Env)).is_err());
        assert!(k.check(dir, "/s", &enc, Some(Given::Env)).is_ok());
        // Seen plaintext here: a global passphrase no longer matters; another id does.
        k.note("/s", &plain);
        assert!(k.check(dir, "/s", &plain, Some(Given::Env)).is_ok());
        assert!(k.check(dir, "/s", &other_plain, Some(Given::Keyfile)).is_err());
        assert!(k.check(dir, "/s", &other_plain, None).is_ok());
        // Seen encrypted: its location refuses any plaintext CONFIG, its id refuses everywhere.
        k.note("/s", &enc);
        assert!(k.check(dir, "/s", &plain, None).is_err());
        let mut same_id = plain.clone();
        same_id.repository_id = enc.repository_id.clone();
        assert!(k.check(dir, "/elsewhere", &same_id, None).is_err());
        assert!(k.check(dir, "/elsewhere", &plain, None).is_ok());
    }
}
