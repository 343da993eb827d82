//! S3 and S3-compatible servers (MinIO, Garage, Scaleway...): store, importer and
//! exporter over one aws-sdk-s3 client, path-style, SigV4. The client is async; each
//! connector owns a small tokio runtime and blocks on it, so the engine stays synchronous.
mod bucket;
mod chain;
mod class;
mod client;
mod config;
mod errors;
mod exporter;
mod importer;
mod insecure;
mod listed;
mod region;
mod sse;
mod store;
mod tls;
mod versions;

pub use class::check as check_storage_class;
pub use config::{S3Config, S3_KEYS};
pub use exporter::S3Exporter;
pub use importer::S3Importer;
pub use sse::{check_mode as check_sse, LITERAL_KEY as SSE_LITERAL_KEY};
pub use store::S3Store;
