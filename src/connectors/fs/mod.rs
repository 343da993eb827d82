//! The local filesystem: store, importer and exporter.
mod exporter;
mod importer;
mod open_dirs;
mod open_packs;
mod store;
mod xattrs;

pub use exporter::FsExporter;
pub use importer::{absolute, FsImporter};
pub use store::{write_atomic, FsStore};
