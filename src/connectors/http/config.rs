//! Typed options of an `http://` or `https://` store location (a `plakar server`):
//! `http[s]://HOST[:PORT][/PREFIX]` plus `auth_token` and `tls_no_verify`. Without
//! `auth_token`, the token is $PLAKAR_SERVER_TOKEN when set, the variable the server reads.

use crate::connectors::options::{parse_bool, OptionError, Options};
use anyhow::{Context, Result};

/// Options an http(s) location understands, as `plakar store set` validates them.
pub const HTTP_KEYS: [&str; 2] = ["auth_token", "tls_no_verify"];

/// Where the client finds the token when no `auth_token` is configured.
pub const TOKEN_ENV: &str = "PLAKAR_SERVER_TOKEN";

#[derive(Clone)]
pub struct HttpConfig {
    /// `http://host:port[/prefix]`, without a trailing '/'.
    pub base: String,
    /// host:port, as messages name the server.
    pub address: String,
    pub tls: bool,
    pub token: Option<String>,
    pub tls_no_verify: bool,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        write!(f, "HttpConfig({})", self.base)
    }
}

impl HttpConfig {
    /// `scheme` is `http` or `https`; `rest` the location after `://`.
    pub fn parse(scheme: &str, rest: &str, opts: &Options) -> Result<HttpConfig> {
        let tls = scheme == "https";
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(OptionError(format!(
                "{scheme}://{rest}: no user or password in the URL: give the server's token with auth_token=..."
            ))
            .into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => {
                (h, p.parse::<u16>().with_context(|| format!("{scheme}://{rest}: {p:?} is not a port number"))?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() || host == "[]" {
            return Err(OptionError(format!(
                "{scheme}://{rest}: a plakar server location needs a host: {scheme}://HOST:PORT (plakar server \
                 listens on 127.0.0.1:9876 by default)"
            ))
            .into());
        }
        let token = match opts.get("auth_token") {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(t.clone()),
            None => std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
        };
        let tls_no_verify = match opts.get("tls_no_verify") {
            Some(v) => parse_bool(v).context("option tls_no_verify")?,
            None => false,
        };
        let address = format!("{host}:{port}");
        Ok(HttpConfig { base: format!("{scheme}://{address}{path}"), address, tls, token, tls_no_verify })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_and_options() {
        let mut o = Options::new();
        let c = HttpConfig::parse("http", "127.0.0.1:9876", &o).unwrap();
        assert_eq!((c.base.as_str(), c.address.as_str(), c.tls), ("http://127.0.0.1:9876", "127.0.0.1:9876", false));
        let c = HttpConfig::parse("https", "backup.example.org/plakar/", &o).unwrap();
        assert_eq!(c.base, "https://backup.example.org:443/plakar");
        assert_eq!(HttpConfig::parse("http", "[::1]:9876", &o).unwrap().address, "[::1]:9876");
        assert_eq!(HttpConfig::parse("http", "[::1]", &o).unwrap().address, "[::1]:80");
        o.insert("auth_token".into(), "SECRET".into());
        o.insert("tls_no_verify".into(), "true".into());
        let c = HttpConfig::parse("https", "h:1", &o).unwrap();
        assert_eq!((c.token.as_deref(), c.tls_no_verify), (Some("SECRET"), true));
        assert!(!format!("{c:?}").contains("SECRET"));
        assert!(HttpConfig::parse("http", ":9876", &o).is_err());
        assert!(HttpConfig::parse("http", "h:port", &o).is_err());
        assert!(HttpConfig::parse("http", "u:p@h:1", &o).is_err());
        o.insert("tls_no_verify".into(), "maybe".into());
        assert!(HttpConfig::parse("https", "h:1", &o).is_err());
    }
}
