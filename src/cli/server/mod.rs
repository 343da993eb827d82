//! `plakar server`: a store's raw objects over HTTP(S), for the `http://` store (routes in
//! routes.rs, wire format in connectors/http/protocol.rs, docs/SERVER.md for both). The
//! server never sees the passphrase: it moves sealed objects. It adds no cache and no
//! buffering between a request and the store call that answers it, so it keeps the served
//! store's guarantees, which the lock protocol rests on (docs/LOCKING.md).
//!
//! The token rules are the `ui` command's (ui/auth.rs). SIGINT, SIGTERM and SIGHUP stop it:
//! no new request is taken, those under way get a few seconds to finish, and the command
//! exits 0.

mod routes;
mod tls;

pub use tls::acceptor;

use crate::cli::ui::auth::Auth;
use crate::connectors::http::protocol as p;
use crate::kloset::store::Store;
use axum::extract::{Request, State as AxState};
use axum::http::{header as h, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

pub struct Options {
    /// None: no token is asked for (-no-auth).
    pub token: Option<String>,
    pub allow_delete: bool,
    /// -cert and -key, read (`acceptor`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

pub struct State {
    store: Arc<dyn Store>,
    auth: Auth,
    allow_delete: bool,
}

type Shared = Arc<State>;

/// How long requests under way may take to finish once a signal asked the server to stop.
const DRAIN: Duration = Duration::from_secs(10);

fn router(state: Shared) -> axum::Router {
    axum::Router::new()
        .route("/", get(routes::info))
        .route(p::CONFIG_PATH, get(routes::open).put(routes::put_config))
        .route("/{res}", get(routes::list))
        .route("/{res}/{id}", get(routes::get).head(routes::head).put(routes::put).delete(routes::delete))
        // Objects are held whole by the Store trait anyway; the token is checked first.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), require))
        .layer(axum::middleware::map_response(mark))
        .with_state(state)
}

/// Every answer says it comes from a plakar server and must not be cached: a proxy that
/// served a stale listing or lock would break what the lock protocol relies on.
async fn mark(mut r: Response) -> Response {
    let hs = r.headers_mut();
    hs.insert(p::SERVER_HEADER, HeaderValue::from(p::PROTOCOL));
    hs.insert(h::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn deny(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, [(h::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response();
    r.headers_mut().insert(p::KIND_HEADER, HeaderValue::from_static("permission-denied"));
    r
}

async fn require(AxState(st): AxState<Shared>, req: Request, next: Next) -> Response {
    if !st.auth.host_ok(req.headers()) {
        return deny(StatusCode::MISDIRECTED_REQUEST, "this server only answers to 127.0.0.1 or localhost");
    }
    if !st.auth.accepts(req.headers(), None) {
        return deny(StatusCode::UNAUTHORIZED, "missing or wrong token (Authorization: Bearer TOKEN)");
    }
    next.run(req).await
}

/// Serves until SIGINT, SIGTERM or SIGHUP; returns the name of the signal.
pub fn serve(store: Arc<dyn Store>, listener: std::net::TcpListener, opts: Options) -> anyhow::Result<&'static str> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let acceptor = opts.tls;
    let state = Arc::new(State { store, auth: Auth::new(opts.token, loopback), allow_delete: opts.allow_delete });
    let app = router(state);
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<&'static str>);
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = match sig {
                SIGINT => "interrupted",
                SIGTERM => "terminated",
                _ => "hung up",
            };
            let _ = stop_tx.send(Some(name));
        }
    });
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let seen = stop_rx.clone();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(listener)?;
        let mut rx = stop_rx.clone();
        let stopped = async move {
            let _ = rx.wait_for(Option::is_some).await;
        };
        let serving = async move {
            match acceptor {
                Some(a) => axum::serve(tls::TlsListener::new(l, a)?, app).with_graceful_shutdown(stopped).await,
                None => axum::serve(l, app).with_graceful_shutdown(stopped).await,
            }
        };
        // Graceful shutdown waits for every connection to close; a client that keeps one
        // open gets DRAIN after the signal.
        let mut rx = stop_rx;
        let deadline = async move {
            let _ = rx.wait_for(Option::is_some).await;
            tokio::time::sleep(DRAIN).await;
        };
        tokio::select! {
            r = serving => r?,
            _ = deadline => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    // Store calls still running on the blocking pool finish or are dropped with it.
    rt.shutdown_timeout(Duration::from_secs(1));
    let signal = *seen.borrow();
    Ok(signal.unwrap_or("stopped"))
}
