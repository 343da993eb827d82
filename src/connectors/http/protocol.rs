//! The wire format between `plakar server` and the `http://` store, in one place so that the
//! two ends cannot drift apart; docs/SERVER.md describes it for anyone writing a client.
//!
//! Objects are addressed as `/<resource>/<64 hex id>`, CONFIG as `/CONFIG`, listings as
//! `/<resource>`. An error carries its `StoreErrorKind` in a header, so the client gives
//! the engine the kind the server's store gave, and the status code says the same for
//! anyone with curl.

use crate::kloset::store::{Content, Resource, StoreErrorKind};

/// Bumped when a route or header changes meaning; `GET /` says which one a server speaks.
pub const PROTOCOL: u32 = 1;

/// On every response of a plakar server: tells it from any other web server at that address.
pub const SERVER_HEADER: &str = "x-plakar-server";
/// On error responses: the store error's kind (`kind_name`).
pub const KIND_HEADER: &str = "x-plakar-error";
/// On a PUT: what the object holds (`data` or `metadata`), for stores with storage tiers.
pub const CONTENT_HEADER: &str = "x-plakar-content";

pub const CONFIG_PATH: &str = "/CONFIG";

pub const RESOURCES: [Resource; 4] = [Resource::Packfile, Resource::State, Resource::Lock, Resource::Key];

/// `packfiles`, `states`, `locks` or `keys`.
pub fn resource(name: &str) -> Option<Resource> {
    RESOURCES.into_iter().find(|r| r.dir() == name)
}

/// Resources whose objects a server without `-allow-delete` neither deletes nor replaces
/// with other bytes. Locks are always deletable: every run deletes its own on release, and
/// a lock left behind would block the store.
pub fn protected(res: Resource) -> bool {
    res != Resource::Lock
}

pub fn object_path(res: Resource, id: &[u8; 32]) -> String {
    format!("/{}/{}", res.dir(), hex::encode(id))
}

pub fn list_path(res: Resource) -> String {
    format!("/{}", res.dir())
}

pub fn content_name(c: Content) -> &'static str {
    match c {
        Content::Data => "data",
        Content::Metadata => "metadata",
    }
}

pub fn content(name: &str) -> Option<Content> {
    match name {
        "data" => Some(Content::Data),
        "metadata" => Some(Content::Metadata),
        _ => None,
    }
}

const KINDS: [(StoreErrorKind, &str, u16); 10] = [
    (StoreErrorKind::NotFound, "not-found", 404),
    (StoreErrorKind::AlreadyExists, "already-exists", 412),
    (StoreErrorKind::PermissionDenied, "permission-denied", 403),
    (StoreErrorKind::Refused, "refused", 403),
    (StoreErrorKind::Transient, "transient", 503),
    (StoreErrorKind::Unreachable, "unreachable", 502),
    (StoreErrorKind::Corrupt, "corrupt", 500),
    (StoreErrorKind::Full, "full", 507),
    (StoreErrorKind::Unsupported, "unsupported", 501),
    (StoreErrorKind::Other, "other", 500),
];

pub fn kind_name(k: StoreErrorKind) -> &'static str {
    KINDS.iter().find(|(x, ..)| *x == k).map_or("other", |(_, n, _)| n)
}

pub fn kind(name: &str) -> Option<StoreErrorKind> {
    KINDS.iter().find(|(_, n, _)| *n == name).map(|(k, ..)| *k)
}

pub fn status(k: StoreErrorKind) -> u16 {
    KINDS.iter().find(|(x, ..)| *x == k).map_or(500, |(.., s)| *s)
}

/// The kind a status means when a response carries no kind (a proxy in front answered).
pub fn kind_of_status(status: u16) -> StoreErrorKind {
    match status {
        404 => StoreErrorKind::NotFound,
        409 | 412 => StoreErrorKind::AlreadyExists,
        401 | 403 => StoreErrorKind::PermissionDenied,
        507 => StoreErrorKind::Full,
        501 => StoreErrorKind::Unsupported,
        408 | 429 | 502 | 503 | 504 => StoreErrorKind::Transient,
        _ => StoreErrorKind::Other,
    }
}

/// `GET /`: what the server is.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Info {
    pub protocol: u32,
    pub allow_delete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_resource_round_trips() {
        for (k, name, status) in KINDS {
            assert_eq!(kind(kind_name(k)), Some(k));
            assert_eq!(super::status(k), status, "{name}");
        }
        for r in RESOURCES {
            assert_eq!(resource(r.dir()), Some(r));
        }
        assert_eq!(resource("CONFIG"), None);
        assert_eq!(object_path(Resource::Lock, &[0xab; 32]), format!("/locks/{}", "ab".repeat(32)));
    }
}
