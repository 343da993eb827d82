//! Concrete backends: each implements the engine's Store, Importer and/or Exporter traits.
pub mod fs;
pub mod memory;

/// Connector names, as `plakar version` lists them.
pub const IMPORTERS: &[&str] = &["fs"];
pub const EXPORTERS: &[&str] = &["fs"];
pub const KLOSETS: &[&str] = &["fs"];
