//! Typed options of an FTP location, from `ftp://[user[:password]@]host[:port][/path]` plus
//! `key=value` options (username, password, passive). The password is never shown: not by
//! `Debug`, not in `display()`, not in any message.

use crate::connectors::options::{parse_bool, Options as Section};
use anyhow::{bail, Context, Result};

#[derive(Clone)]
pub struct FtpConfig {
    pub host: String,
    pub port: u16,
    /// The path as given, decoded, without leading or trailing `/`; empty means the
    /// directory the server puts the user in at login.
    pub path: String,
    pub username: String,
    pub password: String,
    /// Passive mode (the client opens the data connections); active mode otherwise.
    pub passive: bool,
}

impl std::fmt::Debug for FtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FtpConfig({}, passive={})", self.display(), self.passive)
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8, as FTP commands here are text.
fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(v) = hex else { bail!("bad %-escape in {s:?}") };
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).with_context(|| format!("{s:?} does not decode to UTF-8"))
}

/// Splits `host[:port]` or `[v6addr][:port]`.
fn host_port(s: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else { bail!("unclosed [ in FTP host {s:?}") };
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        bail!("FTP location needs a host: ftp://[USER@]HOST[:PORT]/PATH");
    }
    let port = match port {
        None | Some("") => 21,
        Some(p) => p.parse().with_context(|| format!("bad FTP port {p:?}"))?,
    };
    Ok((host.to_string(), port))
}

impl FtpConfig {
    /// `rest` is the location without `ftp://`; options come from the config section and
    /// win over a user named in the URL.
    pub fn parse(rest: &str, opts: &Section) -> Result<FtpConfig> {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = host_port(hostport)?;
        let (url_user, url_pass) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)?), Some(percent_decode(p)?)),
                None => (Some(percent_decode(u)?), None),
            },
        };
        let username = opts.get("username").cloned().or(url_user).filter(|u| !u.is_empty());
        let password = opts.get("password").cloned().or(url_pass);
        let (username, password) = match (username, password) {
            (Some(u), p) => (u, p.unwrap_or_default()),
            // Anonymous FTP, by convention with an e-mail-like password.
            (None, p) => ("anonymous".to_string(), p.unwrap_or_else(|| "anonymous@".into())),
        };
        let passive = opts.get("passive").map(|v| parse_bool(v)).transpose().context("option passive")?.unwrap_or(true);
        let path = percent_decode(path.trim_matches('/'))?;
        if path.contains(['\r', '\n']) || username.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
            bail!("FTP user names, passwords and paths cannot hold line breaks");
        }
        Ok(FtpConfig { host, port, path, username, password, passive })
    }

    /// `host:port`, as used to connect and in messages (IPv6 addresses bracketed).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The location as shown to users: the user name, never the password.
    pub fn display(&self) -> String {
        let path = if self.path.is_empty() { String::new() } else { format!("/{}", self.path) };
        format!("ftp://{}@{}{}", self.username, self.addr(), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Section {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_location_and_options() {
        let c = FtpConfig::parse("bob@files.example:2121/some/dir/", &opts(&[("password", "SECRET")])).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.path.as_str()), ("files.example", 2121, "some/dir"));
        assert_eq!((c.username.as_str(), c.password.as_str(), c.passive), ("bob", "SECRET", true));
        assert_eq!(c.display(), "ftp://bob@files.example:2121/some/dir");
        assert!(!format!("{c:?}").contains("SECRET"));

        let c = FtpConfig::parse("u:p%40ss@h/a%20b", &opts(&[("username", "alice"), ("passive", "false")])).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str(), c.port), ("alice", "p@ss", 21));
        assert_eq!((c.path.as_str(), c.passive), ("a b", false));
        assert!(!c.display().contains("p@ss"));

        let c = FtpConfig::parse("[::1]:21", &Section::new()).unwrap();
        assert_eq!((c.host.as_str(), c.addr().as_str(), c.username.as_str()), ("::1", "[::1]:21", "anonymous"));

        assert!(FtpConfig::parse("/path", &Section::new()).is_err());
        assert!(FtpConfig::parse("h:notaport/x", &Section::new()).is_err());
        assert!(FtpConfig::parse("h/x", &opts(&[("passive", "maybe")])).is_err());
    }
}
