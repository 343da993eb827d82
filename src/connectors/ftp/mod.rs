//! FTP servers, as a backup source and a restore target (no store: FTP has no atomic
//! object writes or ranged reads worth building one on). Plain FTP over suppaftp's
//! synchronous client, binary mode, passive by default; each connector keeps a small pool
//! of logged-in connections, since FTP carries one transfer per control connection.
//!
//! No FTPS yet: suppaftp 8 does not export its `TlsConnector` trait, so TLS means its
//! `rustls-*` or `native-tls` features; the first turns on rustls's `logging` feature,
//! which rebuilds the whole aws-sdk-s3 stack, the second brings OpenSSL in.
mod config;
mod errors;
mod exporter;
mod importer;
mod listing;
mod pool;

pub use config::FtpConfig;
pub use exporter::FtpExporter;
pub use importer::FtpImporter;
