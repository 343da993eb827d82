//! `plakar at STORE server [-listen HOST:PORT] [-allow-delete] [-cert FILE -key FILE]
//! [-no-auth]`: serves the store's objects over HTTP(S) to `http://` / `https://` stores on
//! other machines or in other users' hands. No passphrase is needed: objects go out sealed.

use crate::cli::server::{self, Options};
use crate::cli::ui::auth;
use crate::cli::Ctx;
use crate::connectors::http::TOKEN_ENV;
use crate::kloset::store::StoreErrorKind;
use crate::kloset::Error;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on: HOST:PORT, or :PORT for every address
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9876")]
    listen: String,
    /// Let clients delete packfiles, states and key slots and replace CONFIG (maintenance,
    /// rm, prune and passwd need it); locks are always deletable
    #[arg(long)]
    allow_delete: bool,
    /// Serve HTTPS with this PEM certificate chain (with -key)
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of -cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Serve without a token: anyone who can reach the address reads and writes the store
    #[arg(long)]
    no_auth: bool,
}

/// `:9876` is every address, as in Go's net package (Plakar's -listen).
fn bind_address(listen: &str) -> String {
    match listen.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => listen.to_string(),
    }
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let tls = match (&a.cert, &a.key) {
        (Some(cert), Some(key)) => Some(server::acceptor(cert, key)?),
        _ => None,
    };
    let store = ctx.store()?;
    // Only to say early what is there: the server serves an empty location too, so that a
    // client can create a store in it.
    let empty = match store.open() {
        Ok(_) => false,
        Err(e) if e.kind == StoreErrorKind::NotFound => true,
        Err(e) => return Err(Error::Store(e).into()),
    };
    let addr = bind_address(&a.listen);
    let listener = std::net::TcpListener::bind(&addr)
        .with_context(|| format!("cannot listen on {addr} (is it in use? pick another with -listen HOST:PORT)"))?;
    let local = listener.local_addr()?;
    let token = auth::token(TOKEN_ENV, a.no_auth);
    let scheme = if a.cert.is_some() { "https" } else { "http" };
    let shown_host = if local.ip().is_unspecified() { "127.0.0.1".to_string() } else { local.ip().to_string() };
    let shown_host = if shown_host.contains(':') { format!("[{shown_host}]") } else { shown_host };
    let url = format!("{scheme}://{shown_host}:{}", local.port());
    if !local.ip().is_loopback() {
        if a.cert.is_none() {
            eprintln!(
                "plakar server: warning: listening on {local}, reachable from other machines over plain HTTP: the \
                 token and the (sealed) objects cross the network in clear; serve HTTPS with -cert and -key"
            );
        }
        if token.is_none() {
            eprintln!("plakar server: warning: -no-auth: anyone who can reach {local} reads and writes the store");
        }
    } else if token.is_none() {
        eprintln!("plakar server: warning: -no-auth: every local user can read and write the store through {local}");
    }
    if !ctx.g.quiet {
        let mut text = format!("plakar server: serving {} at {url}\n", store.location());
        if empty {
            text.push_str("plakar server: no store there yet: a client can create it\n");
        }
        // A token from the environment is not printed: whoever set it knows it.
        let from_env = std::env::var(TOKEN_ENV).ok().is_some_and(|t| !t.is_empty());
        match &token {
            Some(t) if !from_env => text.push_str(&format!(
                "plakar server: token {t} (clients: auth_token={t}, or ${TOKEN_ENV}; set ${TOKEN_ENV} here to keep \
                 one across restarts)\n"
            )),
            Some(_) => text.push_str(&format!("plakar server: token from ${TOKEN_ENV}\n")),
            None => {}
        }
        if !a.allow_delete {
            text.push_str("plakar server: deletes are refused (-allow-delete allows them)\n");
        }
        text.push_str("plakar server: Ctrl-C to stop\n");
        // One write: a reader that takes the first line and leaves must not make the rest fail.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    let signal = server::serve(store, listener, Options { token, allow_delete: a.allow_delete, tls })?;
    if !ctx.g.quiet {
        eprintln!("plakar server: {signal}: stopped");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_style_listen_addresses() {
        assert_eq!(super::bind_address(":9876"), "0.0.0.0:9876");
        assert_eq!(super::bind_address("localhost:9876"), "localhost:9876");
    }
}
