//! `plakar ui`: a small web server over one store. The page (embedded assets, no CDN) calls
//! a JSON API under /api (docs/UI.md lists it). Every API request carries the per-run token
//! (see auth.rs); the repository is read-only here and every engine call runs on tokio's
//! blocking pool.

mod api;
mod assets;
pub(crate) mod auth;
mod browse;
mod download;
mod error;
pub(crate) mod stream;

use crate::kloset::Repository;
use axum::routing::get;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub struct Options {
    /// None: no token is asked for (-no-auth).
    pub token: Option<String>,
    /// Reload the index when a listing is asked for and the last reload is this old.
    pub refresh: Option<Duration>,
    /// Answer cross-origin requests (-cors).
    pub cors: bool,
}

pub(crate) struct State {
    repo: RwLock<Arc<Repository>>,
    reloaded: Mutex<Instant>,
    refresh: Option<Duration>,
    trees: browse::TreeCache,
    auth: auth::Auth,
}

impl State {
    fn current(&self) -> Arc<Repository> {
        self.repo.read().expect("repo lock").clone()
    }

    /// The repository, read again if new snapshots may have landed since the last look.
    fn repo(&self) -> Arc<Repository> {
        let Some(every) = self.refresh else { return self.current() };
        let mut last = self.reloaded.lock().expect("reload lock");
        if last.elapsed() >= every {
            // A store that cannot be read again right now keeps serving what it had.
            if let Ok(r) = self.current().reload() {
                *self.repo.write().expect("repo lock") = Arc::new(r);
            }
            *last = Instant::now();
        }
        self.current()
    }
}

pub(crate) type Shared = Arc<State>;

fn router(state: Shared, cors: bool) -> axum::Router {
    let api = axum::Router::new()
        .route("/api/info", get(api::info))
        .route("/api/snapshots", get(api::snapshots))
        .route("/api/snapshots/{id}", get(api::snapshot))
        .route("/api/snapshots/{id}/tree", get(browse::tree))
        .route("/api/snapshots/{id}/preview", get(download::preview))
        .route("/api/snapshots/{id}/content", get(download::content))
        .route("/api/snapshots/{id}/archive", get(download::archive))
        .route("/api/search", get(api::search))
        .route("/api/diff", get(api::diff));
    let app = api
        .merge(assets::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require))
        .with_state(state);
    if cors {
        app.layer(axum::middleware::from_fn(auth::cors))
    } else {
        app
    }
}

/// Serves until the process is stopped.
pub fn serve(repo: Repository, listener: std::net::TcpListener, opts: Options) -> anyhow::Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let state = Arc::new(State {
        repo: RwLock::new(Arc::new(repo)),
        reloaded: Mutex::new(Instant::now()),
        refresh: opts.refresh,
        trees: browse::TreeCache::default(),
        auth: auth::Auth::new(opts.token, loopback),
    });
    let app = router(state, opts.cors);
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(l, app).await
    })?;
    Ok(())
}
