//! A store served by `plakar server`: each Store call is one HTTP request (routes in
//! protocol.rs and docs/SERVER.md). The server calls its own store and answers only once
//! that call has returned, so this store keeps the guarantees of the one behind it: atomic,
//! durable puts, an exclusive create, reads that see every put that returned.

use super::client::{Client, Reply};
use super::config::HttpConfig;
use super::protocol::{self as p, Info};
use crate::kloset::store::{Content, Resource, Store, StoreError, StoreErrorKind as K, StoreResult};
use ureq::http::Method;

pub struct HttpStore {
    client: Client,
}

impl HttpStore {
    pub fn new(cfg: HttpConfig) -> HttpStore {
        HttpStore { client: Client::new(cfg) }
    }

    fn get_path(&self, path: &str, headers: &[(&str, &str)], accept: &[u16]) -> StoreResult<Reply> {
        self.client.send(Method::GET, path, headers, None, accept, true)
    }

    fn id_list(&self, res: Resource, body: &[u8]) -> StoreResult<Vec<[u8; 32]>> {
        let text = std::str::from_utf8(body).map_err(|_| self.garbled(res, "not text"))?;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                hex::decode(l)
                    .ok()
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .ok_or_else(|| self.garbled(res, &format!("{l:?} is not an id")))
            })
            .collect()
    }

    fn garbled(&self, res: Resource, why: &str) -> StoreError {
        StoreError::new(K::Corrupt, format!("{}: the listing of {} is garbled: {why}", self.client.cfg.base, res.dir()))
    }
}

impl Store for HttpStore {
    fn location(&self) -> String {
        self.client.cfg.base.clone()
    }

    fn remote(&self) -> bool {
        true
    }

    fn create(&self, config: &[u8]) -> StoreResult<()> {
        // Not retried: a first attempt that landed would make the second report the store
        // as already there.
        self.client.send(Method::PUT, p::CONFIG_PATH, &[("if-none-match", "*")], Some(config), &[], false)?;
        Ok(())
    }

    fn open(&self) -> StoreResult<Vec<u8>> {
        match self.get_path(p::CONFIG_PATH, &[], &[]) {
            Ok(r) => Ok(r.body),
            Err(e) if e.kind == K::NotFound => Err(StoreError::new(
                K::NotFound,
                format!("{}: the server's store has no CONFIG: create it with plakar at {} create", e, self.location()),
            )),
            Err(e) => Err(e),
        }
    }

    fn replace_config(&self, config: &[u8]) -> StoreResult<()> {
        self.client.send(Method::PUT, p::CONFIG_PATH, &[], Some(config), &[], true)?;
        Ok(())
    }

    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>> {
        let r = self.get_path(&p::list_path(res), &[], &[])?;
        self.id_list(res, &r.body)
    }

    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>> {
        let path = p::object_path(res, id);
        match range {
            None => Ok(self.get_path(&path, &[], &[])?.body),
            // HTTP cannot ask for no bytes; the object must still exist.
            Some((_, 0)) => self.size(res, id).map(|_| Vec::new()),
            Some((off, len)) => {
                let range = format!("bytes={off}-{}", off.saturating_add(len - 1));
                // 416: the range starts past the end, where every store returns nothing.
                let r = self.get_path(&path, &[("range", &range)], &[416])?;
                let mut body = if r.status == 416 { Vec::new() } else { r.body };
                // A server that ignored the range sent the whole object.
                if r.status == 200 {
                    let start = (off as usize).min(body.len());
                    let end = start.saturating_add(len as usize).min(body.len());
                    body = body[start..end].to_vec();
                }
                Ok(body)
            }
        }
    }

    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()> {
        self.client.send(Method::PUT, &p::object_path(res, id), &[], Some(data), &[], true)?;
        Ok(())
    }

    fn put_hinted(&self, res: Resource, id: &[u8; 32], data: &[u8], content: Content) -> StoreResult<()> {
        let hint = [(p::CONTENT_HEADER, p::content_name(content))];
        self.client.send(Method::PUT, &p::object_path(res, id), &hint, Some(data), &[], true)?;
        Ok(())
    }

    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()> {
        self.client.send(Method::DELETE, &p::object_path(res, id), &[], None, &[], true)?;
        Ok(())
    }

    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64> {
        let r = self.client.send(Method::HEAD, &p::object_path(res, id), &[], None, &[], true)?;
        r.headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::new(K::Other, format!("{}: HEAD gave no Content-Length", self.location())))
    }

    fn can_delete(&self) -> StoreResult<()> {
        let r = self.get_path("/", &[], &[])?;
        let info: Info = serde_json::from_slice(&r.body).map_err(|e| {
            StoreError::new(K::Other, format!("{}: GET / did not describe a plakar server: {e}", self.location()))
        })?;
        if info.allow_delete {
            return Ok(());
        }
        Err(StoreError::new(
            K::Refused,
            format!(
                "the plakar server at {} refuses deletes: it was started without -allow-delete (restart it with \
                 plakar at STORE server -allow-delete, or run this command on the server's store directly)",
                self.client.cfg.address
            ),
        ))
    }
}
