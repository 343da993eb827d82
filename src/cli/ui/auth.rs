//! The per-run token. The printed URL carries it in the fragment (`/#token=...`), which
//! browsers never send to a server; the page keeps it in sessionStorage (scoped to this
//! origin, port included, unlike cookies) and sends it as `Authorization: Bearer` on API
//! calls, or as a `token` query parameter on links and images. The page's own assets hold
//! no data and need no token; every /api call does: anything else gets 401 and no data.
//! When bound to loopback, a request whose Host is not a loopback name is refused too, so
//! a web page cannot reach the server through DNS rebinding even with -no-auth.
//! `mount -to http://` and `server` follow the same rules with the same code (`token`,
//! `Auth`); `server`'s clients send only the header.

use super::Shared;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub struct Auth {
    token: Option<String>,
    /// Bound to a loopback address: only loopback Host names are served.
    loopback: bool,
}

impl Auth {
    pub fn new(token: Option<String>, loopback: bool) -> Self {
        Self { token, loopback }
    }

    pub(crate) fn accepts(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        let Some(want) = &self.token else { return true };
        let bearer =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        [bearer, query_token].into_iter().flatten().any(|t| same(t.as_bytes(), want.as_bytes()))
    }

    pub(crate) fn host_ok(&self, headers: &HeaderMap) -> bool {
        if !self.loopback {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "::1") || name.starts_with("127.")
    }
}

/// The token a server asks for: none with -no-auth, else `$var` when set, else a random
/// one for this run (printed by the command, never put on a command line).
pub fn token(var: &str, no_auth: bool) -> Option<String> {
    if no_auth {
        return None;
    }
    Some(std::env::var(var).ok().filter(|t| !t.is_empty()).unwrap_or_else(|| {
        let mut b = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        hex::encode(b)
    }))
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_token(q: Option<&str>) -> Option<String> {
    let q = q?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v)
}

fn deny(status: StatusCode, msg: &str) -> Response {
    let body = serde_json::json!({ "error": msg }).to_string();
    (status, [(header::CACHE_CONTROL, "no-store"), (header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub async fn require(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if !st.auth.host_ok(req.headers()) {
        return deny(StatusCode::MISDIRECTED_REQUEST, "this server only answers to 127.0.0.1 or localhost");
    }
    let api = req.uri().path().starts_with("/api/") || req.uri().path() == "/api";
    if api && !st.auth.accepts(req.headers(), query_token(req.uri().query()).as_deref()) {
        return deny(StatusCode::UNAUTHORIZED, "missing or wrong token: open the URL that plakar ui printed");
    }
    next.run(req).await
}

/// -cors: lets pages of other origins call the API (they still need the token).
pub async fn cors(req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization"));
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET"));
        return r;
    }
    let mut r = next.run(req).await;
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
