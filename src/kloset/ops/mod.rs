//! One file per operation.
pub mod archive;
pub mod backup;
pub mod check;
pub mod diff;
pub mod digest;
pub mod drill;
pub mod dup;
pub mod filter;
pub mod info;
pub mod locate;
pub mod maintenance;
pub mod passwd;
pub mod repair;
pub mod restore;
pub mod rm;
pub mod scan;
pub mod sync;
