//! Resolves store, source and destination locations to connectors.
//!
//! A location is a plain path (made absolute), `fs:PATH` / `fs://PATH`, a URL whose
//! scheme names a connector, or `@name[:subpath]` naming a configured store, source or
//! destination whose options (credentials, use_tls...) come with it.

use super::config::{Config, Kind, Section};
use crate::connectors::fs::{absolute, FsExporter, FsImporter, FsStore};
use crate::connectors::ftp::{FtpConfig, FtpExporter, FtpImporter};
use crate::connectors::generated::Generated;
use crate::connectors::http::{HttpConfig, HttpStore};
use crate::connectors::ptar::PtarStore;
use crate::connectors::s3::{S3Config, S3Exporter, S3Importer, S3Store};
use crate::connectors::sftp::{SftpConfig, SftpExporter, SftpImporter, SftpStore};
use crate::connectors::sqlite::SqliteStore;
use crate::kloset::exporter::Exporter;
use crate::kloset::importer::Importer;
use crate::kloset::store::Store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed location: its scheme and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub scheme: String,
    pub rest: String,
}

impl Location {
    pub fn parse(s: &str) -> Location {
        if let Some((scheme, rest)) = s.split_once("://") {
            if is_scheme(scheme) {
                return Location { scheme: scheme.to_ascii_lowercase(), rest: rest.to_string() };
            }
        }
        if let Some((scheme, rest)) = s.split_once(':') {
            if is_scheme(scheme) && scheme.len() > 1 {
                return Location { scheme: scheme.to_ascii_lowercase(), rest: rest.to_string() };
            }
        }
        if s.ends_with(".ptar") {
            return Location { scheme: "ptar".into(), rest: s.to_string() };
        }
        Location { scheme: "fs".into(), rest: s.to_string() }
    }

    pub fn fs_path(&self) -> Result<PathBuf> {
        let p = if self.rest.is_empty() { "." } else { &self.rest };
        absolute(Path::new(p)).with_context(|| format!("cannot resolve the path {p}"))
    }
}

fn is_scheme(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

fn unsupported(kind: &str, loc: &Location) -> anyhow::Error {
    let supported = if kind == "store" {
        "fs, s3, sftp, ptar, sqlite, http, https"
    } else if kind == "source" {
        "fs, ftp, s3, sftp, gen"
    } else {
        "fs, ftp, s3, sftp"
    };
    anyhow::anyhow!("{kind} location scheme {:?} is not supported (supported: {supported})", loc.scheme)
}

/// Resolves `@name[:subpath]` against the config; anything else stands for itself.
pub fn resolve(s: &str, kind: Kind, config_dir: &Path) -> Result<(Location, Section)> {
    let Some(named) = s.strip_prefix('@') else {
        return Ok((Location::parse(s), Section::new()));
    };
    let (name, sub) = match named.split_once(':') {
        Some((n, sub)) => (n, Some(sub)),
        None => (named, None),
    };
    let cfg = Config::load(config_dir)?;
    let section = cfg.get(kind, name)?.clone();
    let Some(loc) = section.get("location") else {
        bail!("{} {name:?} has no location; set one with: plakar {} set {name} location=...", kind.noun(), kind.noun());
    };
    let mut loc = Location::parse(loc);
    if let Some(sub) = sub {
        loc.rest = if sub.starts_with('/') && loc.scheme == "fs" {
            sub.to_string()
        } else {
            format!("{}/{}", loc.rest.trim_end_matches('/'), sub.trim_start_matches('/'))
        };
    }
    Ok((loc, section))
}

pub fn open_store(s: &str, config_dir: &Path) -> Result<Arc<dyn Store>> {
    let (loc, opts) = resolve(s, Kind::Store, config_dir)?;
    match loc.scheme.as_str() {
        "fs" => Ok(Arc::new(FsStore::new(loc.fs_path()?))),
        "s3" => Ok(Arc::new(S3Store::new(S3Config::parse(&loc.rest, &opts)?)?)),
        "sqlite" => Ok(Arc::new(SqliteStore::new(&loc.fs_path()?))),
        "http" | "https" => Ok(Arc::new(HttpStore::new(HttpConfig::parse(&loc.scheme, &loc.rest, &opts)?))),
        "sftp" => {
            let cfg = SftpConfig::parse(&loc.rest, &opts)?;
            let shown = cfg.display();
            Ok(Arc::new(SftpStore::new(cfg).map_err(|e| io_to_engine(e, &shown))?))
        }
        "ptar" => {
            let p = loc.fs_path()?;
            if !p.exists() {
                return Err(crate::kloset::Error::NotAStore(format!(
                    "no ptar archive at {} (write one with: plakar ptar -o {} -k STORE)",
                    p.display(),
                    p.display()
                ))
                .into());
            }
            Ok(Arc::new(PtarStore::open(&p).map_err(crate::kloset::Error::Store)?))
        }
        _ => Err(unsupported("store", &loc)),
    }
}

pub fn open_importer(s: &str, config_dir: &Path) -> Result<Box<dyn Importer>> {
    open_source(s, config_dir, true)
}

/// `open_importer`, reading extended attributes only if `xattrs` (`backup -no-xattr`
/// turns them off; only local sources have them).
pub fn open_source(s: &str, config_dir: &Path, xattrs: bool) -> Result<Box<dyn Importer>> {
    let (loc, opts) = resolve(s, Kind::Source, config_dir)?;
    match loc.scheme.as_str() {
        "fs" => Ok(Box::new(FsImporter::new(&loc.fs_path()?)?.with_xattrs(xattrs))),
        "s3" => Ok(Box::new(S3Importer::new(S3Config::parse(&loc.rest, &opts)?)?)),
        "sftp" => {
            let cfg = SftpConfig::parse(&loc.rest, &opts)?;
            let shown = cfg.display();
            Ok(Box::new(SftpImporter::new(cfg).map_err(|e| io_to_engine(e, &shown))?))
        }
        "ftp" => {
            let cfg = FtpConfig::parse(&loc.rest, &opts)?;
            let shown = cfg.display();
            Ok(Box::new(FtpImporter::new(cfg).map_err(|e| io_to_engine(e, &shown))?))
        }
        "gen" => Ok(Box::new(Generated::parse(&loc.rest)?)),
        _ => Err(unsupported("source", &loc)),
    }
}

pub fn open_exporter(s: &str, permissions: bool, config_dir: &Path) -> Result<Box<dyn Exporter>> {
    let (loc, opts) = resolve(s, Kind::Destination, config_dir)?;
    match loc.scheme.as_str() {
        "fs" => {
            let p = loc.fs_path()?;
            if p.exists() && !p.is_dir() {
                bail!("cannot restore into {}: it exists and is not a directory", p.display());
            }
            Ok(Box::new(
                FsExporter::new(&p, permissions)
                    .with_context(|| format!("cannot create the directory {}", p.display()))?,
            ))
        }
        "s3" => {
            let cfg = S3Config::parse(&loc.rest, &opts)?;
            let shown = cfg.display();
            Ok(Box::new(S3Exporter::new(cfg).map_err(|e| io_to_engine(e, &shown))?))
        }
        "sftp" => {
            let cfg = SftpConfig::parse(&loc.rest, &opts)?;
            let shown = cfg.display();
            Ok(Box::new(SftpExporter::new(cfg).map_err(|e| io_to_engine(e, &shown))?))
        }
        "ftp" => {
            let cfg = FtpConfig::parse(&loc.rest, &opts)?;
            let shown = cfg.display();
            Ok(Box::new(FtpExporter::new(cfg, permissions).map_err(|e| io_to_engine(e, &shown))?))
        }
        _ => Err(unsupported("destination", &loc)),
    }
}

/// Keeps the exit code of a connector failure (credentials, reachability) when it surfaces
/// as an io::Error.
pub fn io_to_engine(e: std::io::Error, what: &str) -> anyhow::Error {
    use crate::kloset::Error;
    let msg = format!("{what}: {e}");
    anyhow::Error::new(match e.kind() {
        std::io::ErrorKind::PermissionDenied => Error::Auth(msg),
        std::io::ErrorKind::NotConnected | std::io::ErrorKind::TimedOut => Error::Unreachable(msg),
        _ => Error::Other(msg),
    })
}

/// The passphrase a configured store carries (`passphrase`, or `passphrase_cmd`'s output).
/// Whether the config gives the store a `passphrase` or `passphrase_cmd`, without running it.
pub fn store_has_passphrase(s: &str, config_dir: &Path) -> Result<bool> {
    let (_, opts) = resolve(s, Kind::Store, config_dir)?;
    Ok(opts.contains_key("passphrase") || opts.contains_key("passphrase_cmd"))
}

pub fn store_passphrase(s: &str, config_dir: &Path) -> Result<Option<Vec<u8>>> {
    let (_, opts) = resolve(s, Kind::Store, config_dir)?;
    if let Some(p) = opts.get("passphrase") {
        return Ok(Some(p.as_bytes().to_vec()));
    }
    if let Some(cmd) = opts.get("passphrase_cmd") {
        let out = std::process::Command::new("sh").arg("-c").arg(cmd).output().context("cannot run passphrase_cmd")?;
        if !out.status.success() {
            bail!("passphrase_cmd failed with {}", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        return match (lines.next(), lines.next()) {
            (Some(l), None) => Ok(Some(l.as_bytes().to_vec())),
            _ => bail!("passphrase_cmd must print exactly one line"),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_and_paths() {
        assert_eq!(Location::parse("./store").scheme, "fs");
        assert_eq!(Location::parse("/a/b").rest, "/a/b");
        assert_eq!(Location::parse("s3://h:9000/b"), Location { scheme: "s3".into(), rest: "h:9000/b".into() });
        assert_eq!(Location::parse("sqlite:/x.db"), Location { scheme: "sqlite".into(), rest: "/x.db".into() });
        assert_eq!(Location::parse("fs:/tmp/x").rest, "/tmp/x");
        assert_eq!(Location::parse("C:x").scheme, "fs", "one-letter prefix is not a scheme");
    }
}
