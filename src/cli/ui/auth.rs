//! The per-run token. The printed URL carries it once (`/?token=...`); opening it sets an
//! HttpOnly, SameSite=Strict cookie named after the port, so two UIs on one host do not
//! mix, and redirects to the bare page. API clients may send `Authorization: Bearer`.
//! Anything else gets 401 and no data.

use super::Shared;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub struct Auth {
    token: Option<String>,
    cookie: String,
}

impl Auth {
    pub fn new(token: Option<String>, port: u16) -> Self {
        Self { token, cookie: format!("plakar_ui_{port}") }
    }

    fn accepts(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        let Some(want) = &self.token else { return true };
        let bearer =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == self.cookie)
            .map(|(_, v)| v);
        [bearer, cookie, query_token].into_iter().flatten().any(|t| same(t.as_bytes(), want.as_bytes()))
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_token(q: Option<&str>) -> Option<String> {
    let q = q?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v)
}

pub async fn require(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let qt = query_token(req.uri().query());
    if !st.auth.accepts(req.headers(), qt.as_deref()) {
        let body = if req.uri().path().starts_with("/api/") {
            "{\"error\":\"missing or wrong token: use the URL that plakar ui printed\"}"
        } else {
            "missing or wrong token: open the URL that `plakar ui` printed (it carries the token)\n"
        };
        return (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], body).into_response();
    }
    // The printed URL: keep the token in a cookie and drop it from the address bar.
    if let (Some(t), "/", &Method::GET) = (&qt, req.uri().path(), req.method()) {
        if st.auth.token.is_some() {
            let c = format!("{}={t}; HttpOnly; SameSite=Strict; Path=/", st.auth.cookie);
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
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
