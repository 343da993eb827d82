//! Concrete backends: each implements the engine's Store, Importer and/or Exporter traits.
pub mod fs;
pub mod ftp;
pub mod generated;
pub mod http;
pub mod memory;
pub mod notice;
pub mod options;
pub mod ptar;
pub mod s3;
pub mod sftp;
pub mod sqlite;

/// Connector names, as `plakar version` lists them.
pub const IMPORTERS: &[&str] = &["fs", "ftp", "gen", "s3", "sftp"];
pub const EXPORTERS: &[&str] = &["fs", "ftp", "s3", "sftp"];
pub const KLOSETS: &[&str] = &["fs", "http", "https", "ptar", "s3", "sftp", "sqlite"];
