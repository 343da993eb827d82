//! Engine errors. Each carries a kind the CLI maps to an exit code, so no caller matches on
//! message text.

use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The store is missing or is not a store.
    NotAStore,
    /// The store was written by an incompatible format version.
    Version,
    /// The store already exists.
    Exists,
    /// Wrong passphrase or credentials.
    Auth,
    /// Data failed authentication or is truncated.
    Corrupt,
    /// A snapshot reference matched nothing, or several.
    BadReference,
    /// The backup source does not exist.
    SourceMissing,
    /// Another process holds a conflicting lock.
    Locked,
    /// A server could not be reached.
    Unreachable,
    /// The store refuses the operation by its own policy (deletes on a `plakar server`
    /// without `-allow-delete`).
    Refused,
    /// A storage or local I/O failure.
    Io,
    /// Anything else.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotAStore(String),
    #[error("{0}")]
    Version(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    BadReference(String),
    #[error("{0}")]
    SourceMissing(String),
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Store(#[from] crate::kloset::store::StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        use crate::kloset::store::StoreErrorKind as S;
        match self {
            Error::NotAStore(_) => ErrorKind::NotAStore,
            Error::Version(_) => ErrorKind::Version,
            Error::Exists(_) => ErrorKind::Exists,
            Error::Auth(_) => ErrorKind::Auth,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::BadReference(_) => ErrorKind::BadReference,
            Error::SourceMissing(_) => ErrorKind::SourceMissing,
            Error::Locked(_) => ErrorKind::Locked,
            Error::Unreachable(_) => ErrorKind::Unreachable,
            Error::Store(e) => match e.kind {
                S::PermissionDenied => ErrorKind::Auth,
                S::NotFound => ErrorKind::Corrupt,
                S::Corrupt => ErrorKind::Corrupt,
                S::AlreadyExists => ErrorKind::Exists,
                S::Unreachable => ErrorKind::Unreachable,
                S::Refused => ErrorKind::Refused,
                _ => ErrorKind::Io,
            },
            Error::Io { .. } => ErrorKind::Io,
            Error::Other(_) => ErrorKind::Other,
        }
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
