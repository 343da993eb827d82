//! The HTTP client under the http store: one ureq agent (blocking, with a pool of keep-alive
//! connections shared by the engine's threads), TLS through rustls with the system's roots
//! (or SSL_CERT_FILE / SSL_CERT_DIR), and every failure turned into a `StoreError` whose
//! kind decides the exit code and whose message says what to do.
//!
//! Retries: a request that failed in transit (connection reset or cut, a timeout, a 503) is
//! sent again, a few times, except the exclusive create of CONFIG, whose second attempt
//! would find the first one's CONFIG and report it as someone else's. A retried PUT or
//! DELETE is safe: it carries the same bytes to the same object, as a slow first attempt
//! landing late would. A refused connection is not retried: no server listens there.

use super::config::{HttpConfig, TOKEN_ENV};
use super::protocol::{KIND_HEADER, SERVER_HEADER};
use crate::connectors::notice;
use crate::kloset::store::{StoreError, StoreErrorKind as K, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use ureq::http::{HeaderMap, Method, Request};

pub struct Client {
    pub cfg: HttpConfig,
    agent: ureq::Agent,
}

/// A response whose status was 2xx (or one the caller asked to see, like 416).
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// How long each part of a request may take. A server in front of a slow store (S3 far
/// away) may take minutes to list a large one.
const CONNECT: Duration = Duration::from_secs(15);
const EXCHANGE: Duration = Duration::from_secs(15 * 60);
const ATTEMPTS: u32 = 4;

fn tls_config(cfg: &HttpConfig) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let b = TlsConfig::builder().provider(TlsProvider::Rustls).unversioned_rustls_crypto_provider(provider);
    if cfg.tls_no_verify {
        return b.disable_verification(true).build();
    }
    let roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    b.root_certs(RootCerts::Specific(Arc::new(roots))).build()
}

impl Client {
    pub fn new(cfg: HttpConfig) -> Client {
        if cfg.tls && cfg.tls_no_verify {
            notice::warn(&format!(
                "tls_no_verify is set for {}: its TLS certificate is not checked, so anyone on the network path can \
                 pose as the server and take the token; trust its CA through SSL_CERT_FILE instead",
                cfg.base
            ));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("plakar/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT))
            .timeout_send_body(Some(EXCHANGE))
            .timeout_recv_response(Some(EXCHANGE))
            .timeout_recv_body(Some(EXCHANGE))
            .tls_config(tls_config(&cfg))
            .build();
        Client { cfg, agent: ureq::Agent::new_with_config(config) }
    }

    /// Sends a request, again while it fails in transit (`retry`), and returns a 2xx reply,
    /// or one whose status is in `accept`.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        accept: &[u16],
        retry: bool,
    ) -> StoreResult<Reply> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.once(&method, path, headers, body, accept) {
                Err(e) if retry && e.kind == K::Transient && attempt < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(250 << attempt));
                }
                r => return r,
            }
        }
    }

    fn once(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        accept: &[u16],
    ) -> StoreResult<Reply> {
        let url = format!("{}{path}", self.cfg.base);
        let mut req = Request::builder().method(method.clone()).uri(&url);
        if let Some(t) = &self.cfg.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let sent = match body {
            Some(b) => req.body(b).map(|r| self.agent.run(r)),
            None => req.body(()).map(|r| self.agent.run(r)),
        };
        let mut resp = match sent {
            Ok(r) => r.map_err(|e| self.transport(e, method, path))?,
            Err(e) => return Err(StoreError::new(K::Other, format!("{url}: {e}"))),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body =
            resp.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(|e| self.transport(e, method, path))?;
        if (200..300).contains(&status) || accept.contains(&status) {
            return Ok(Reply { status, headers, body });
        }
        Err(self.refusal(status, &headers, &body, method, path))
    }

    /// A request that got no answer.
    fn transport(&self, e: ureq::Error, method: &Method, path: &str) -> StoreError {
        let addr = &self.cfg.address;
        let start =
            format!("no plakar server answers at {addr}: start one there with `plakar at STORE server -listen {addr}`");
        // A TLS failure during the handshake comes wrapped in an io::Error.
        let tls_error = match &e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        if let Some(r) = tls_error {
            return self.tls_failure(r);
        }
        let (kind, msg) = match &e {
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => (K::Unreachable, format!("{start} ({io})")),
                std::io::ErrorKind::InvalidData if self.cfg.tls => (
                    K::Unreachable,
                    format!("TLS with {addr} failed ({io}): does it serve HTTPS (plakar server -cert -key)?"),
                ),
                _ => (K::Transient, format!("{method} {path} on {addr}: connection lost: {io}")),
            },
            ureq::Error::HostNotFound => (K::Unreachable, format!("cannot resolve the host of {}", self.cfg.base)),
            ureq::Error::ConnectionFailed => (K::Unreachable, start),
            ureq::Error::Timeout(t) if matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                (K::Unreachable, format!("{addr}: connection timed out ({t})"))
            }
            ureq::Error::Timeout(t) => (K::Transient, format!("{method} {path} on {addr}: timed out ({t})")),
            ureq::Error::Protocol(p) if self.cfg.tls => {
                (K::Unreachable, format!("{addr} does not speak HTTPS ({p}): use http:// for a server without -cert"))
            }
            ureq::Error::Protocol(p) => {
                (K::Unreachable, format!("{addr} does not answer HTTP ({p}): if it serves HTTPS (-cert), use https://"))
            }
            other => (K::Transient, format!("{method} {path} on {addr}: {other}")),
        };
        StoreError::new(kind, msg)
    }

    /// A certificate that does not verify is refused trust, like an unknown SSH host key
    /// (exit 77); any other TLS failure means the two ends do not speak the same thing.
    fn tls_failure(&self, r: &rustls::Error) -> StoreError {
        let addr = &self.cfg.address;
        match r {
            rustls::Error::InvalidCertificate(c) => StoreError::new(
                K::PermissionDenied,
                format!(
                    "the TLS certificate of {addr} does not verify ({c:?}): trust the CA that signed it through \
                     SSL_CERT_FILE, or set tls_no_verify=true to skip the check"
                ),
            ),
            r => StoreError::new(
                K::Unreachable,
                format!("TLS with {addr} failed ({r}): does it serve HTTPS (plakar server -cert -key)?"),
            ),
        }
    }

    /// A request the server answered with an error.
    fn refusal(&self, status: u16, headers: &HeaderMap, body: &[u8], method: &Method, path: &str) -> StoreError {
        let base = &self.cfg.base;
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if headers.get(SERVER_HEADER).is_none() {
            let kind = match super::protocol::kind_of_status(status) {
                K::NotFound => K::Other,
                k => k,
            };
            return StoreError::new(
                kind,
                format!(
                    "{base} answered {method} {path} with HTTP {status} and is not a plakar server (no \
                     {SERVER_HEADER} header){}",
                    if text.is_empty() { String::new() } else { format!(": {}", clip(text)) }
                ),
            );
        }
        if status == 401 {
            let why = match &self.cfg.token {
                None => format!(
                    "it needs a token: set the store's auth_token (plakar store set NAME auth_token=...), or \
                     ${TOKEN_ENV}, to the token the server printed or was given"
                ),
                Some(_) => "the token is wrong: check the store's auth_token (or $PLAKAR_SERVER_TOKEN)".to_string(),
            };
            return StoreError::new(K::PermissionDenied, format!("{base} refused the request: {why}"));
        }
        let kind = headers
            .get(KIND_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(super::protocol::kind)
            .unwrap_or_else(|| super::protocol::kind_of_status(status));
        StoreError::new(kind, format!("{base}: {}", clip(text)))
    }
}

/// A message from the other end, kept to a readable length.
fn clip(s: &str) -> String {
    const MAX: usize = 400;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
