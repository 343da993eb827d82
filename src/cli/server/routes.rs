//! The routes of `plakar server`: each is one call on the served store, made on tokio's
//! blocking pool, and answered only once that call has returned (docs/SERVER.md).
//!
//! Without `-allow-delete`, what would destroy data is refused (403, kind `refused`):
//! deleting a packfile, state or key slot, replacing CONFIG, and putting other bytes over an
//! existing packfile, state or key slot (the same bytes again are accepted: a retried
//! upload). Locks stay deletable and replaceable: every run deletes its lock on release and
//! rewrites its heartbeat.

use super::Shared;
use crate::connectors::http::protocol::{self as p, Info};
use crate::kloset::store::{Resource, StoreError, StoreErrorKind as K};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header as h, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

type Reply = Result<Response, Fail>;

/// Why a request failed: the store said so, or the request made no sense.
pub enum Fail {
    Store(StoreError),
    Bad(String),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl IntoResponse for Fail {
    /// The status of the store error's kind, the kind in a header, the message as text.
    fn into_response(self) -> Response {
        let text = [(h::CONTENT_TYPE, "text/plain; charset=utf-8")];
        match self {
            Fail::Bad(msg) => (StatusCode::BAD_REQUEST, text, format!("{msg}\n")).into_response(),
            Fail::Store(e) => {
                let status = StatusCode::from_u16(p::status(e.kind)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut r = (status, text, format!("{}\n", e.message)).into_response();
                r.headers_mut().insert(p::KIND_HEADER, HeaderValue::from_static(p::kind_name(e.kind)));
                r
            }
        }
    }
}

fn refused(what: String) -> StoreError {
    StoreError::new(
        K::Refused,
        format!(
            "{what} is refused: this plakar server was started without -allow-delete (restart it with \
             -allow-delete to allow it)"
        ),
    )
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, Fail> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(StoreError::new(K::Other, format!("internal error: {e}")).into()),
    }
}

fn resource(name: &str) -> Result<Resource, Fail> {
    p::resource(name).ok_or_else(|| StoreError::new(K::NotFound, format!("no resource {name:?}")).into())
}

fn object(res: &str, id: &str) -> Result<(Resource, [u8; 32]), Fail> {
    let res = resource(res)?;
    let id = hex::decode(id)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| Fail::Bad(format!("{id:?} is not an id (64 hex digits)")))?;
    Ok((res, id))
}

fn shown(res: Resource, id: &[u8; 32]) -> String {
    format!("{}/{}", res.dir(), hex::encode(id))
}

pub async fn info(State(st): State<Shared>) -> Response {
    axum::Json(Info { protocol: p::PROTOCOL, allow_delete: st.allow_delete }).into_response()
}

pub async fn open(State(st): State<Shared>) -> Reply {
    let config = blocking(move || st.store.open()).await?;
    Ok(config.into_response())
}

/// With `If-None-Match: *`, creates the store; without, replaces CONFIG.
pub async fn put_config(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Reply {
    if headers.get(h::IF_NONE_MATCH).is_some_and(|v| v == "*") {
        blocking(move || st.store.create(&body)).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if !st.allow_delete {
        return Err(refused("replacing CONFIG".into()).into());
    }
    blocking(move || st.store.replace_config(&body)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list(State(st): State<Shared>, Path(res): Path<String>) -> Reply {
    let res = resource(&res)?;
    let ids = blocking(move || st.store.list(res)).await?;
    let mut text = String::with_capacity(ids.len() * 65);
    for id in ids {
        text.push_str(&hex::encode(id));
        text.push('\n');
    }
    Ok(([(h::CONTENT_TYPE, "text/plain")], text).into_response())
}

/// `bytes=A-B`: the offset and length the Store reads. Anything else: the whole object.
fn range(headers: &HeaderMap) -> Option<(u64, u64)> {
    let v = headers.get(h::RANGE)?.to_str().ok()?.strip_prefix("bytes=")?;
    let (a, b) = v.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b >= a).then(|| (a, b - a + 1))
}

pub async fn get(State(st): State<Shared>, Path((res, id)): Path<(String, String)>, headers: HeaderMap) -> Reply {
    let (res, id) = object(&res, &id)?;
    let want = range(&headers);
    let data = blocking(move || st.store.get(res, &id, want)).await?;
    let Some((off, _)) = want else { return Ok(data.into_response()) };
    if data.is_empty() {
        let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        r.headers_mut().insert(h::CONTENT_RANGE, HeaderValue::from_static("bytes */*"));
        return Ok(r);
    }
    let mut r = (StatusCode::PARTIAL_CONTENT, data.clone()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {off}-{}/*", off + data.len() as u64 - 1)) {
        r.headers_mut().insert(h::CONTENT_RANGE, v);
    }
    Ok(r)
}

/// The object's size as Content-Length, without its bytes.
pub async fn head(State(st): State<Shared>, Path((res, id)): Path<(String, String)>) -> Reply {
    let (res, id) = object(&res, &id)?;
    let size = blocking(move || st.store.size(res, &id)).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(h::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(r)
}

pub async fn put(
    State(st): State<Shared>,
    Path((res, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let (res, id) = object(&res, &id)?;
    let hint = headers.get(p::CONTENT_HEADER).and_then(|v| v.to_str().ok()).and_then(p::content);
    let guard = !st.allow_delete && p::protected(res);
    blocking(move || {
        if guard && !is_new(&st, res, &id, &body)? {
            return Ok(());
        }
        match hint {
            Some(c) => st.store.put_hinted(res, &id, &body, c),
            None => st.store.put(res, &id, &body),
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Without -allow-delete: true when the object is not there yet, false when it is there with
/// these very bytes; other bytes are refused. Two puts racing to create one object are not
/// told apart (no store has a conditional put): ids are content hashes or random, so only a
/// client that means harm sends two different objects under one id.
fn is_new(st: &super::State, res: Resource, id: &[u8; 32], body: &[u8]) -> Result<bool, StoreError> {
    match st.store.size(res, id) {
        Err(e) if e.kind == K::NotFound => Ok(true),
        Err(e) => Err(e),
        Ok(n) if n == body.len() as u64 && st.store.get(res, id, None)? == body => Ok(false),
        Ok(_) => Err(refused(format!("replacing {} with other bytes", shown(res, id)))),
    }
}

pub async fn delete(State(st): State<Shared>, Path((res, id)): Path<(String, String)>) -> Reply {
    let (res, id) = object(&res, &id)?;
    if !st.allow_delete && p::protected(res) {
        return Err(refused(format!("deleting {}", shown(res, &id))).into());
    }
    blocking(move || st.store.delete(res, &id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let with = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(h::RANGE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(range(&with("bytes=2-4")), Some((2, 3)));
        assert_eq!(range(&with("bytes=0-0")), Some((0, 1)));
        assert_eq!(range(&with("bytes=5-4")), None);
        assert_eq!(range(&with("bytes=-4")), None);
        assert_eq!(range(&with("bytes=0-1,3-4")), None);
        assert_eq!(range(&HeaderMap::new()), None);
    }
}
