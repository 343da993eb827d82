//! SFTP servers (OpenSSH and others): store, importer and exporter over libssh2 (the ssh2
//! crate). Host keys are checked against known_hosts unless the user opts out; keys, an
//! agent or a password authenticate; a few SSH connections carry transfers side by side.
mod config;
mod conn;
mod exporter;
mod importer;
mod store;

pub use config::{SftpConfig, SFTP_KEYS};
pub use exporter::SftpExporter;
pub use importer::SftpImporter;
pub use store::SftpStore;
