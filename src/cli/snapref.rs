//! `PREFIX[:PATH]` snapshot references.

use crate::kloset::snapshot::Header;
use crate::kloset::{Error, Repository};

/// Splits a reference. An argument starting with `/` is a path with no prefix.
pub fn split(arg: &str) -> (Option<&str>, Option<&str>) {
    if arg.starts_with('/') {
        return (None, Some(arg));
    }
    match arg.split_once(':') {
        Some((p, path)) => (Some(p).filter(|p| !p.is_empty()), Some(path).filter(|p| !p.is_empty())),
        None => (Some(arg), None),
    }
}

/// Resolves a reference to a snapshot header and an absolute path inside it (None: the
/// whole snapshot). A reference without a prefix means the latest snapshot.
pub fn resolve(repo: &Repository, arg: &str) -> anyhow::Result<(Header, Option<Vec<u8>>)> {
    let (prefix, path) = split(arg);
    let h = match prefix {
        Some(p) => repo.header(&repo.resolve(p)?)?,
        None => repo.headers()?.pop().ok_or_else(|| Error::BadReference("no snapshots found in the store".into()))?,
    };
    let abs = path.map(|p| Repository::absolute(&h, p));
    Ok((h, abs))
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn forms() {
        assert_eq!(split("abcd"), (Some("abcd"), None));
        assert_eq!(split("abcd:/etc/x"), (Some("abcd"), Some("/etc/x")));
        assert_eq!(split("abcd:rel"), (Some("abcd"), Some("rel")));
        assert_eq!(split("/etc"), (None, Some("/etc")));
    }
}
