//! The view over HTTP (`mount -to http://ADDR`), read-only: GET and HEAD only. A directory
//! is a plain HTML listing (`ls -l` columns, links to its children), a file is its bytes
//! with single-range requests honoured (`Range: bytes=A-B`), read from the chunks that
//! cover the range. The token rules are the `ui` command's (ui/auth.rs): a random token
//! per run (or $PLAKAR_UI_TOKEN), sent as `Authorization: Bearer` or `?token=`; -no-auth
//! serves without; bound to loopback, only loopback Host names are answered. Backup
//! content is never served as a page of this origin: files are `application/octet-stream`
//! with `nosniff` and a sandbox policy.

use super::view::{Attr, Fail, Node, View};
use crate::cli::format;
use crate::cli::ui::auth::Auth;
use crate::cli::ui::stream;
use crate::cli::Ctx;
use crate::kloset::importer::FileKind;
use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header as h, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::Write;
use std::sync::Arc;

/// Bytes read from the view per step of a streamed response.
const STEP: usize = 1 << 20;

/// A path's node, its attributes, and for a directory its children's names and attributes.
type Found = (Node, Attr, Option<Vec<(Vec<u8>, Attr)>>);

struct Shared {
    view: Arc<View>,
    auth: Auth,
}

/// Serves until SIGINT, SIGTERM or SIGHUP.
pub fn serve(ctx: &Ctx, view: Arc<View>, addr: &str, no_auth: bool) -> anyhow::Result<()> {
    let addr = addr.trim_end_matches('/');
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (is it in use? pick another port)"))?;
    let local = listener.local_addr()?;
    let token = crate::cli::ui::auth::token("PLAKAR_UI_TOKEN", no_auth);
    if !local.ip().is_loopback() {
        eprintln!(
            "plakar mount: warning: listening on {local}, reachable from other machines over plain HTTP{}",
            if token.is_some() { "; anyone who sees the URL can read the backups" } else { " with no token" }
        );
    } else if token.is_none() {
        eprintln!("plakar mount: warning: -no-auth: every local user can read the backups through {local}");
    }
    let host = if local.ip().is_unspecified() { "127.0.0.1".to_string() } else { local.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = match &token {
        Some(t) => format!("http://{host}:{}/?token={t}", local.port()),
        None => format!("http://{host}:{}/", local.port()),
    };
    if !ctx.g.quiet {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(
            format!("plakar mount: serving {} read-only at {url}\nplakar mount: Ctrl-C to stop\n", ctx.store_loc)
                .as_bytes(),
        );
        let _ = out.flush();
    }
    let shared = Arc::new(Shared { view, auth: Auth::new(token, local.ip().is_loopback()) });
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = stop_tx.send(());
        }
    });
    rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(l, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    })?;
    // Streams still running on the blocking pool are dropped with the runtime.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, [(h::CONTENT_TYPE, "text/plain; charset=utf-8"), (h::CACHE_CONTROL, "no-store")], msg.into())
        .into_response()
}

fn fail(f: Fail) -> Response {
    match f {
        Fail::NotFound | Fail::NotDir => plain(StatusCode::NOT_FOUND, "not found\n"),
        Fail::NotFile => plain(StatusCode::BAD_REQUEST, "not a file\n"),
        Fail::Store(m) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{m}\n")),
    }
}

async fn handle(State(st): State<Arc<Shared>>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET and HEAD only\n");
        r.headers_mut().insert(h::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let query = req.uri().query().map(str::to_string);
    let token = query_token(query.as_deref());
    if !st.auth.host_ok(req.headers()) {
        return plain(StatusCode::MISDIRECTED_REQUEST, "this server only answers to 127.0.0.1 or localhost\n");
    }
    if !st.auth.accepts(req.headers(), token.as_deref()) {
        return plain(StatusCode::UNAUTHORIZED, "missing or wrong token: open the URL that plakar mount printed\n");
    }
    let raw = req.uri().path().to_string();
    let path: Vec<u8> = percent_encoding::percent_decode_str(&raw).collect();
    let head = req.method() == Method::HEAD;
    let view = st.view.clone();
    let headers = req.headers().clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Found, Fail> {
        let node = view.resolve(&path)?;
        let attr = view.attr(&node);
        let listing = if attr.kind == FileKind::Dir {
            Some(view.list(&node)?.into_iter().map(|(n, c)| (n, view.attr(&c))).collect())
        } else {
            None
        };
        Ok((node, attr, listing))
    })
    .await;
    let (node, attr, listing) = match found {
        Ok(Ok(x)) => x,
        Ok(Err(f)) => return fail(f),
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    let keep = token.map(|t| format!("?token={}", enc(t.as_bytes()))).unwrap_or_default();
    if let Some(children) = listing {
        if !raw.ends_with('/') {
            return redirect(&format!("{}/{keep}", last_name(&raw)));
        }
        return page(&raw, &children, &keep);
    }
    match attr.kind {
        FileKind::Symlink => match st.view.readlink(&node) {
            // A link inside the view (by-date/, latest, a relative link in a snapshot) is
            // followed by the client; one to an absolute path leads outside it.
            Ok(t) if !t.starts_with(b"/") => redirect(&format!("{}{keep}", enc_path(&t))),
            Ok(t) => plain(StatusCode::NOT_FOUND, format!("symbolic link to {}\n", String::from_utf8_lossy(&t))),
            Err(f) => fail(f),
        },
        FileKind::File => file(st.view.clone(), node, attr.size, &headers, head),
        _ => plain(StatusCode::NOT_FOUND, "a special file: no content\n"),
    }
}

fn query_token(q: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(q?)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(h::LOCATION, v);
    }
    r
}

fn last_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

const SET: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn enc(b: &[u8]) -> String {
    percent_encoding::percent_encode(b, SET).to_string()
}

fn enc_path(b: &[u8]) -> String {
    b.split(|&c| c == b'/').map(enc).collect::<Vec<_>>().join("/")
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A directory as `ls -l` would print it, each name a link.
fn page(path: &str, children: &[(Vec<u8>, Attr)], keep: &str) -> Response {
    let mut body = format!(
        "<!doctype html><meta charset=utf-8><title>{0}</title><h1>{0}</h1><pre>\n",
        html(&String::from_utf8_lossy(&percent_encoding::percent_decode_str(path).collect::<Vec<u8>>()))
    );
    if path != "/" {
        body.push_str(&format!("<a href=\"../{keep}\">../</a>\n"));
    }
    for (name, a) in children {
        let slash = if a.kind == FileKind::Dir { "/" } else { "" };
        let shown = String::from_utf8_lossy(name);
        body.push_str(&format!(
            "{} {:>10} {} <a href=\"{}{slash}{keep}\">{}{slash}</a>\n",
            format::mode_string(a.mode),
            a.size,
            format::rfc3339_ns(a.mtime_ns),
            enc(name),
            html(&shown)
        ));
    }
    body.push_str("</pre>\n");
    (
        [
            (h::CONTENT_TYPE, "text/html; charset=utf-8"),
            (h::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            (h::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` against a file of `size` bytes: the first and
/// last byte. None for anything else (served whole); Err for a range past the end.
fn range(headers: &HeaderMap, size: u64) -> Option<Result<(u64, u64), ()>> {
    let v = headers.get(h::RANGE)?.to_str().ok()?.strip_prefix("bytes=")?;
    if v.contains(',') {
        return None;
    }
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (first, last) = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().ok()?;
            (size.saturating_sub(n), size.checked_sub(1)?)
        }
        (false, _) => {
            let first: u64 = a.parse().ok()?;
            let last =
                if b.is_empty() { size.saturating_sub(1) } else { b.parse::<u64>().ok()?.min(size.saturating_sub(1)) };
            if first >= size || last < first {
                return Some(Err(()));
            }
            (first, last)
        }
        _ => return None,
    };
    Some(Ok((first, last)))
}

fn file(view: Arc<View>, node: Node, size: u64, headers: &HeaderMap, head: bool) -> Response {
    let (status, first, len) = match range(headers, size) {
        Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Some(Err(())) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(h::CONTENT_RANGE, v);
            }
            return r;
        }
        None => (StatusCode::OK, 0, size),
    };
    let body = if head || len == 0 {
        Body::empty()
    } else {
        stream::body(move |w| {
            let mut pos = first;
            let end = first + len;
            while pos < end {
                let want = ((end - pos) as usize).min(STEP);
                let data = view.read(&node, pos, want).map_err(|f| anyhow::anyhow!("{f:?}"))?;
                if data.is_empty() {
                    anyhow::bail!("the file ends before its recorded size");
                }
                w.write_all(&data)?;
                pos += data.len() as u64;
            }
            Ok(())
        })
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let hs = r.headers_mut();
    hs.insert(h::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    hs.insert(h::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    hs.insert(h::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    hs.insert(h::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    hs.insert(h::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{}/{size}", first + len - 1)) {
            hs.insert(h::CONTENT_RANGE, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(h::RANGE, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn ranges() {
        assert_eq!(range(&with("bytes=0-9"), 100), Some(Ok((0, 9))));
        assert_eq!(range(&with("bytes=90-"), 100), Some(Ok((90, 99))));
        assert_eq!(range(&with("bytes=-10"), 100), Some(Ok((90, 99))));
        assert_eq!(range(&with("bytes=95-200"), 100), Some(Ok((95, 99))));
        assert_eq!(range(&with("bytes=100-"), 100), Some(Err(())));
        assert_eq!(range(&with("bytes=0-1,5-6"), 100), None);
        assert_eq!(range(&HeaderMap::new(), 100), None);
    }
}
