//! FTP servers, as a backup source and a restore target (no store: FTP has no atomic
//! object writes or ranged reads worth building one on). Plain FTP over suppaftp's
//! synchronous client, binary mode, passive by default; each connector keeps a small pool
//! of logged-in connections, since FTP carries one transfer per control connection.
mod config;
mod errors;
mod exporter;
mod importer;
mod listing;
mod pool;

pub use config::FtpConfig;
pub use exporter::FtpExporter;
pub use importer::FtpImporter;
