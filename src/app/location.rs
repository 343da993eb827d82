//! Resolves store, source and destination locations to connectors.
//!
//! A location is a plain path (made absolute), `fs:PATH` / `fs://PATH`, or a URL whose
//! scheme names a connector.

use crate::connectors::fs::{absolute, FsExporter, FsImporter, FsStore};
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
                return Location {
                    scheme: scheme.to_ascii_lowercase(),
                    rest: rest.to_string(),
                };
            }
        }
        if let Some((scheme, rest)) = s.split_once(':') {
            if is_scheme(scheme) && scheme.len() > 1 {
                return Location {
                    scheme: scheme.to_ascii_lowercase(),
                    rest: rest.to_string(),
                };
            }
        }
        Location {
            scheme: "fs".into(),
            rest: s.to_string(),
        }
    }

    fn fs_path(&self) -> Result<PathBuf> {
        let p = if self.rest.is_empty() {
            "."
        } else {
            &self.rest
        };
        absolute(Path::new(p)).with_context(|| format!("cannot resolve the path {p}"))
    }
}

fn is_scheme(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

fn unsupported(kind: &str, loc: &Location) -> anyhow::Error {
    anyhow::anyhow!(
        "{kind} location scheme {:?} is not supported (supported: fs)",
        loc.scheme
    )
}

pub fn open_store(s: &str) -> Result<Arc<dyn Store>> {
    let loc = Location::parse(s);
    match loc.scheme.as_str() {
        "fs" => Ok(Arc::new(FsStore::new(loc.fs_path()?))),
        _ => Err(unsupported("store", &loc)),
    }
}

pub fn open_importer(s: &str) -> Result<Box<dyn Importer>> {
    let loc = Location::parse(s);
    match loc.scheme.as_str() {
        "fs" => Ok(Box::new(FsImporter::new(&loc.fs_path()?)?)),
        _ => Err(unsupported("source", &loc)),
    }
}

pub fn open_exporter(s: &str, permissions: bool) -> Result<Box<dyn Exporter>> {
    let loc = Location::parse(s);
    match loc.scheme.as_str() {
        "fs" => {
            let p = loc.fs_path()?;
            if p.exists() && !p.is_dir() {
                bail!(
                    "cannot restore into {}: it exists and is not a directory",
                    p.display()
                );
            }
            Ok(Box::new(FsExporter::new(&p, permissions).with_context(
                || format!("cannot create the directory {}", p.display()),
            )?))
        }
        _ => Err(unsupported("destination", &loc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_and_paths() {
        assert_eq!(Location::parse("./store").scheme, "fs");
        assert_eq!(Location::parse("/a/b").rest, "/a/b");
        assert_eq!(
            Location::parse("s3://h:9000/b"),
            Location {
                scheme: "s3".into(),
                rest: "h:9000/b".into()
            }
        );
        assert_eq!(
            Location::parse("sqlite:/x.db"),
            Location {
                scheme: "sqlite".into(),
                rest: "/x.db".into()
            }
        );
        assert_eq!(Location::parse("fs:/tmp/x").rest, "/tmp/x");
        assert_eq!(
            Location::parse("C:x").scheme,
            "fs",
            "one-letter prefix is not a scheme"
        );
    }
}
