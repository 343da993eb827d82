//! Named stores, sources and destinations (`@name`), and retention policies, kept in one TOML file,
//! `$XDG_CONFIG_HOME/plakar/config.toml`, written atomically with mode 0600 because it
//! may hold secrets.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use crate::connectors::options::{parse_bool, Options as Section};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Store,
    Source,
    Destination,
    /// Retention policies; their keys are checked by `app::policy`, not here.
    Policy,
}

impl Kind {
    pub fn noun(&self) -> &'static str {
        match self {
            Kind::Store => "store",
            Kind::Source => "source",
            Kind::Destination => "destination",
            Kind::Policy => "policy",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_store: Option<String>,
    #[serde(default)]
    pub stores: BTreeMap<String, Section>,
    #[serde(default)]
    pub sources: BTreeMap<String, Section>,
    #[serde(default)]
    pub destinations: BTreeMap<String, Section>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Section>,
}

/// Keys whose values are never printed unless asked.
pub fn is_secret(key: &str) -> bool {
    const SECRETS: [&str; 7] =
        ["access_key", "secret_access_key", "passphrase", "password", "token", "secret", "sse_customer_key"];
    SECRETS.iter().any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

const FTP_KEYS: [&str; 3] = ["username", "password", "passive"];

/// Options each connector understands, by location scheme.
pub fn valid_keys(kind: Kind, location: Option<&str>) -> Vec<&'static str> {
    let scheme = location.map(|l| super::location::Location::parse(l).scheme);
    let mut keys = vec!["location"];
    // Until a location is set, accept any connector's options.
    if matches!(scheme.as_deref(), Some("s3") | None) {
        keys.extend(crate::connectors::s3::S3_KEYS);
    }
    if matches!(scheme.as_deref(), Some("sftp") | None) {
        keys.extend(crate::connectors::sftp::SFTP_KEYS);
    }
    if kind == Kind::Store && matches!(scheme.as_deref(), Some("http" | "https") | None) {
        keys.extend(crate::connectors::http::HTTP_KEYS);
    }
    if kind != Kind::Store && matches!(scheme.as_deref(), Some("ftp") | None) {
        keys.extend(FTP_KEYS);
    }
    if kind == Kind::Store {
        keys.extend(["passphrase", "passphrase_cmd"]);
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(*k));
    keys
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("config.toml")
}

impl Config {
    pub fn load(dir: &Path) -> Result<Config> {
        let p = path(dir);
        match std::fs::read_to_string(&p) {
            Ok(s) => toml::from_str(&s).with_context(|| format!("cannot parse {}; fix or remove it", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let p = path(dir);
        let tmp = dir.join(format!(".config.toml.{}", std::process::id()));
        let text = toml::to_string_pretty(self).context("cannot encode the config")?;
        let res = (|| {
            let mut f = std::fs::File::options().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.with_context(|| format!("cannot write {}", p.display()))
    }

    pub fn sections(&self, kind: Kind) -> &BTreeMap<String, Section> {
        match kind {
            Kind::Store => &self.stores,
            Kind::Source => &self.sources,
            Kind::Destination => &self.destinations,
            Kind::Policy => &self.policies,
        }
    }

    pub fn sections_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, Section> {
        match kind {
            Kind::Store => &mut self.stores,
            Kind::Source => &mut self.sources,
            Kind::Destination => &mut self.destinations,
            Kind::Policy => &mut self.policies,
        }
    }

    /// The section `name`, or an error listing the names that exist.
    pub fn get(&self, kind: Kind, name: &str) -> Result<&Section> {
        let all = self.sections(kind);
        all.get(name).ok_or_else(|| {
            let known: Vec<&str> = all.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "none is configured".to_string()
            } else {
                format!("configured: {}", known.join(", "))
            };
            let what = if kind == Kind::Policy { "KEY=VALUE..." } else { "LOCATION" };
            anyhow::anyhow!(
                "no {} named {name:?} ({hint}); add one with: plakar {} add {name} {what}",
                kind.noun(),
                kind.noun()
            )
        })
    }

    pub fn create(&mut self, kind: Kind, name: &str) -> Result<()> {
        check_name(name)?;
        let all = self.sections_mut(kind);
        if all.contains_key(name) {
            bail!("{} {name:?} already exists", kind.noun());
        }
        all.insert(name.to_string(), Section::new());
        Ok(())
    }

    pub fn set(&mut self, kind: Kind, name: &str, key: &str, value: &str) -> Result<()> {
        let section = self.get(kind, name)?.clone();
        let location = if key == "location" { Some(value) } else { section.get("location").map(String::as_str) };
        let valid = valid_keys(kind, location);
        if key == "sse_customer_key" && valid.contains(&"sse") {
            bail!(crate::connectors::options::OptionError(crate::connectors::s3::SSE_LITERAL_KEY.into()));
        }
        if !valid.contains(&key) {
            bail!("unknown option {key:?} for {} {name:?}; valid options: {}", kind.noun(), valid.join(", "));
        }
        if key == "storage_class" {
            crate::connectors::s3::check_storage_class(value)
                .map_err(|m| anyhow::Error::new(crate::connectors::options::OptionError(m)))?;
        }
        if key == "sse" {
            crate::connectors::s3::check_sse(value)
                .map_err(|m| anyhow::Error::new(crate::connectors::options::OptionError(m)))?;
        }
        if key == "use_tls" || key == "tls_insecure_no_verify" || key == "passive" {
            parse_bool(value).with_context(|| format!("option {key}"))?;
        }
        self.sections_mut(kind).get_mut(name).expect("checked above").insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub fn unset(&mut self, kind: Kind, name: &str, key: &str) -> Result<()> {
        if key == "location" {
            bail!("cannot unset location");
        }
        self.get(kind, name)?;
        if self.sections_mut(kind).get_mut(name).expect("checked above").remove(key).is_none() {
            bail!("{} {name:?} has no option {key:?}; nothing was changed", kind.noun());
        }
        Ok(())
    }

    pub fn remove(&mut self, kind: Kind, name: &str) -> Result<()> {
        self.get(kind, name)?;
        self.sections_mut(kind).remove(name);
        if kind == Kind::Store && self.default_store.as_deref() == Some(name) {
            self.default_store = None;
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        bail!("invalid name {name:?}: use letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// A copy of a section with secrets replaced by asterisks.
pub fn masked(s: &Section) -> Section {
    s.iter().map(|(k, v)| (k.clone(), if is_secret(k) { "********".to_string() } else { v.clone() })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_validates_keys_and_save_is_private() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.create(Kind::Store, "s").unwrap();
        c.set(Kind::Store, "s", "location", "s3://h:9000/b").unwrap();
        c.set(Kind::Store, "s", "secret_access_key", "xyz").unwrap();
        let e = c.set(Kind::Store, "s", "colour", "blue").unwrap_err().to_string();
        assert!(e.contains("valid options") && e.contains("access_key"), "{e}");
        assert!(c.set(Kind::Store, "s", "use_tls", "maybe").is_err());
        assert!(c.get(Kind::Source, "s").unwrap_err().to_string().contains("none is configured"));
        c.save(d.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(path(d.path())).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Config::load(d.path()).unwrap(), c);
        assert_eq!(masked(&c.stores["s"])["secret_access_key"], "********");
    }
}
