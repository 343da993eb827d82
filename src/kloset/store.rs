//! The `Store` trait: opaque objects addressed by (resource, id). Backends know nothing of
//! the format; the engine knows nothing of backends.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Packfile,
    State,
    Lock,
    /// Key slots added after the store was created, one object each (see `ops::passwd`).
    Key,
}

impl Resource {
    pub fn dir(&self) -> &'static str {
        match self {
            Resource::Packfile => "packfiles",
            Resource::State => "states",
            Resource::Lock => "locks",
            Resource::Key => "keys",
        }
    }
    /// Packfiles and states are spread over 256 sub-directories by their first byte.
    pub fn sharded(&self) -> bool {
        !matches!(self, Resource::Lock | Resource::Key)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    NotFound,
    AlreadyExists,
    PermissionDenied,
    /// Worth retrying: timeouts, 5xx, throttling.
    Transient,
    /// The server could not be reached at all.
    Unreachable,
    Corrupt,
    /// No space left on the device or quota exceeded.
    Full,
    Unsupported,
    /// Refused by the store's own policy, whoever asks: a `plakar server` started without
    /// `-allow-delete` refuses deletes.
    Refused,
    Other,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn from_io(e: std::io::Error, what: impl fmt::Display) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => StoreErrorKind::NotFound,
            K::AlreadyExists => StoreErrorKind::AlreadyExists,
            K::PermissionDenied => StoreErrorKind::PermissionDenied,
            K::TimedOut | K::Interrupted | K::WouldBlock => StoreErrorKind::Transient,
            K::StorageFull | K::QuotaExceeded => StoreErrorKind::Full,
            _ => StoreErrorKind::Other,
        };
        let hint = if kind == StoreErrorKind::Full { " (free some space and run the command again)" } else { "" };
        Self::new(kind, format!("{what}: {e}{hint}"))
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// What an object holds, as a hint to stores with storage tiers: `Data` objects (packfiles
/// of file chunks only) may go where they are cheap to keep and slow to read; `Metadata`
/// (everything else: trees, snapshot headers, states) must stay readable at once, since
/// listings, backups, fast checks and maintenance read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Metadata,
    Data,
}

/// What `Store::purge_versions` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Old versions of objects replaced or deleted.
    pub versions: u64,
    /// Markers that deletions left in place of the objects.
    pub markers: u64,
}

/// Where a stored object lives. Ids are 32 bytes; resources group them.
pub trait Store: Send + Sync {
    /// Human-readable location, with any secret removed.
    fn location(&self) -> String;
    /// Creates the store and writes its CONFIG; fails with AlreadyExists if one is there.
    fn create(&self, config: &[u8]) -> StoreResult<()>;
    /// Reads CONFIG; NotFound when the location holds no store.
    fn open(&self) -> StoreResult<Vec<u8>>;
    /// Replaces CONFIG (a passphrase change); readers see the old or the new one, whole.
    fn replace_config(&self, _config: &[u8]) -> StoreResult<()> {
        Err(StoreError::new(StoreErrorKind::Unsupported, format!("{} cannot be changed", self.location())))
    }
    fn list(&self, res: Resource) -> StoreResult<Vec<[u8; 32]>>;
    /// Reads an object, or `len` bytes of it from `offset`.
    fn get(&self, res: Resource, id: &[u8; 32], range: Option<(u64, u64)>) -> StoreResult<Vec<u8>>;
    /// Writes an object atomically: readers see all of it or nothing.
    fn put(&self, res: Resource, id: &[u8; 32], data: &[u8]) -> StoreResult<()>;
    /// `put` with a hint of what the object holds; stores without tiers ignore it.
    fn put_hinted(&self, res: Resource, id: &[u8; 32], data: &[u8], content: Content) -> StoreResult<()> {
        let _ = content;
        self.put(res, id, data)
    }
    fn delete(&self, res: Resource, id: &[u8; 32]) -> StoreResult<()>;
    /// Size of an object in bytes.
    fn size(&self, res: Resource, id: &[u8; 32]) -> StoreResult<u64>;
    /// Whether the location keeps old versions of the objects it replaces or deletes (a
    /// versioned bucket): their space is freed only by `purge_versions`.
    fn keeps_versions(&self) -> StoreResult<bool> {
        Ok(false)
    }
    /// Deletes the old versions of this store's objects and the markers deletions left,
    /// never a current object: it changes nothing the engine reads, so it needs no lock.
    /// Unsupported where no versions are kept.
    fn purge_versions(&self) -> StoreResult<Purged> {
        Err(StoreError::new(StoreErrorKind::Unsupported, format!("{} keeps no old versions", self.location())))
    }
    /// Ok when this store deletes packfiles, states and key slots; a `Refused` error saying
    /// why when it does not (a `plakar server` started without `-allow-delete`), so that a
    /// run that would delete can stop before it waits for a lock or writes anything.
    fn can_delete(&self) -> StoreResult<()> {
        Ok(())
    }
    /// True when each request costs a network round trip, so reading ahead pays.
    fn remote(&self) -> bool {
        false
    }
}
