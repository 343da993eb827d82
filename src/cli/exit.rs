//! Exit codes. Plakar's sysexits-style codes, plus a few of ours for cases it lumps into 1;
//! the README lists them all.

use crate::kloset::ErrorKind;

pub const OK: i32 = 0;
pub const FAILURE: i32 = 1;
/// Bad flags (clap), as Go's flag package does.
pub const BAD_FLAGS: i32 = 2;
/// The run finished, but some files could not be backed up or restored.
pub const PARTIAL: i32 = 3;
pub const USAGE: i32 = 64;
pub const DATA: i32 = 65;
pub const NO_STORE: i32 = 66;
pub const NO_INPUT: i32 = 67;
/// A facility the command needs is missing (mount without FUSE), or the store does not
/// offer it (deletes on a `plakar server` without `-allow-delete`): sysexits'
/// EX_UNAVAILABLE.
pub const UNAVAILABLE: i32 = 69;
pub const CANT_CREATE: i32 = 73;
pub const IO: i32 = 74;
pub const LOCKED: i32 = 75;
pub const AUTH: i32 = 77;
pub const VERSION: i32 = 78;

pub fn for_kind(k: ErrorKind) -> i32 {
    match k {
        ErrorKind::NotAStore | ErrorKind::Unreachable => NO_STORE,
        ErrorKind::Version => VERSION,
        ErrorKind::Exists => CANT_CREATE,
        ErrorKind::Auth => AUTH,
        ErrorKind::Corrupt => DATA,
        ErrorKind::BadReference => USAGE,
        ErrorKind::SourceMissing => NO_INPUT,
        ErrorKind::Locked => LOCKED,
        ErrorKind::Refused => UNAVAILABLE,
        ErrorKind::Io => IO,
        ErrorKind::Other => FAILURE,
    }
}

/// Finds the exit code for an error chain: the first engine error in it decides.
pub fn for_error(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(k) = cause.downcast_ref::<crate::kloset::Error>() {
            return for_kind(k.kind());
        }
        if let Some(k) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<crate::kloset::Error>())
        {
            return for_kind(k.kind());
        }
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.0;
        }
        if cause.downcast_ref::<crate::connectors::options::OptionError>().is_some() {
            return USAGE;
        }
    }
    FAILURE
}

/// An error that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct Coded(pub i32, pub String);

pub fn coded(code: i32, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded(code, msg.into()))
}
