//! The Kloset engine: repository format, chunking, encryption, packfiles, states, snapshots
//! and the operations on them. It knows the `Store`, `Importer` and `Exporter` traits and
//! nothing of the CLI, config files or concrete backends.

pub mod blob;
pub mod cache;
pub mod coalesce;
pub mod config;
pub mod crypto;
pub mod error;
pub mod exporter;
pub mod host;
pub mod id;
pub mod importer;
pub mod index;
pub mod inflight;
pub mod keyset;
pub mod lineage;
pub mod lock;
pub mod ops;
pub mod packer;
pub mod packfile;
pub mod prefetch;
pub mod progress;
pub mod ranged;
pub mod readahead;
pub mod reader;
pub mod repo;
pub mod retention;
pub mod rng;
pub mod snapshot;
pub mod sorted_run;
pub mod state;
pub mod store;
pub mod tree;
pub mod walk;

pub use error::{Error, ErrorKind, Result};
pub use id::{BlobId, PackId, SnapshotId, StateId};
pub use repo::Repository;

/// This machine's name, recorded in snapshots and locks.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
