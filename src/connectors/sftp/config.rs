//! Typed options of an SFTP location: `sftp://[user@]host[:port][/path]` plus `key=value`
//! options (username, port, identity, password, known_hosts, insecure_ignore_host_key,
//! ssh_auth_sock, connections).

use crate::connectors::options::{expand_home as expand, parse_bool, Options};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Options an SFTP location understands, as `plakar store set` validates them.
pub const SFTP_KEYS: [&str; 9] = [
    "username",
    "port",
    "identity",
    "identity_passphrase",
    "password",
    "known_hosts",
    "insecure_ignore_host_key",
    "ssh_auth_sock",
    "connections",
];

#[derive(Clone)]
pub struct SftpConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Absolute path on the server, without a trailing '/' (empty for the root).
    pub path: String,
    pub identity: Option<PathBuf>,
    pub identity_passphrase: Option<String>,
    pub password: Option<String>,
    /// Files of trusted host keys, in OpenSSH's format.
    pub known_hosts: Vec<PathBuf>,
    pub insecure_ignore_host_key: bool,
    pub agent_sock: Option<String>,
    /// SSH connections opened at most: transfers on one connection take turns.
    pub connections: usize,
}

impl std::fmt::Debug for SftpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "SftpConfig({})", self.display())
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

impl SftpConfig {
    /// `rest` is the location without `sftp://`.
    pub fn parse(rest: &str, opts: &Options) -> Result<SftpConfig> {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (url_user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, url_port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p)),
            _ => (hostport, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("SFTP location needs a host: sftp://[USER@]HOST[:PORT]/PATH");
        }
        let port = match opts.get("port").map(String::as_str).or(url_port) {
            Some(p) => p.parse::<u16>().with_context(|| format!("port {p:?} is not a port number"))?,
            None => 22,
        };
        let user = opts
            .get("username")
            .cloned()
            .or(url_user.map(str::to_string))
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .or_else(|| uzers::get_current_username().map(|u| u.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "root".into());
        let flag = |k: &str| opts.get(k).map(|v| parse_bool(v)).transpose().with_context(|| format!("option {k}"));
        let known_hosts = match opts.get("known_hosts") {
            Some(f) => vec![expand(f)],
            None => home().map(|h| vec![h.join(".ssh/known_hosts"), h.join(".ssh/known_hosts2")]).unwrap_or_default(),
        };
        let connections = match opts.get("connections") {
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .with_context(|| format!("connections={n}: use a number from 1 to 64"))?,
            None => 4,
        };
        Ok(SftpConfig {
            host: host.to_string(),
            port,
            user,
            path: path.trim_end_matches('/').to_string(),
            identity: opts.get("identity").map(|p| expand(p)),
            identity_passphrase: opts.get("identity_passphrase").cloned(),
            password: opts.get("password").cloned(),
            known_hosts,
            insecure_ignore_host_key: flag("insecure_ignore_host_key")?.unwrap_or(false),
            agent_sock: opts.get("ssh_auth_sock").cloned(),
            connections,
        })
    }

    /// host:port, as messages name the server.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The location as shown to users: no password.
    pub fn display(&self) -> String {
        format!("sftp://{}@{}{}", self.user, self.address(), self.path)
    }

    /// The path of `rel` (no leading '/') under the location.
    pub fn remote(&self, rel: &str) -> String {
        if rel.is_empty() {
            if self.path.is_empty() {
                "/".into()
            } else {
                self.path.clone()
            }
        } else {
            format!("{}/{rel}", self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_location_and_options() {
        let mut o = Options::new();
        let c = SftpConfig::parse("bob@example.org:2222/srv/backups/", &o).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.user.as_str()), ("example.org", 2222, "bob"));
        assert_eq!(c.path, "/srv/backups");
        assert_eq!(c.remote("CONFIG"), "/srv/backups/CONFIG");
        o.insert("username".into(), "alice".into());
        o.insert("password".into(), "SECRET".into());
        o.insert("port".into(), "22".into());
        let c = SftpConfig::parse("example.org/x", &o).unwrap();
        assert_eq!((c.user.as_str(), c.port), ("alice", 22));
        assert!(!format!("{c:?}").contains("SECRET"));
        assert_eq!(SftpConfig::parse("[::1]:2200/x", &Options::new()).unwrap().address(), "[::1]:2200");
        assert!(SftpConfig::parse("/x", &Options::new()).is_err());
        o.insert("port".into(), "http".into());
        assert!(SftpConfig::parse("example.org/x", &o).is_err());
    }
}
