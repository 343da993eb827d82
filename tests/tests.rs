//! One integration-test binary; each module is one area.
mod util;

mod cli_basic;
mod cli_errors;
mod cli_sync_ptar;
mod conformance;
mod cron;
mod decoders;
mod drill;
mod engine;
mod ftp;
mod golden;
mod layers;
mod reliability;
mod roundtrip;
mod s3;
mod s3_cluster;
mod s3_region;
mod s3_tls;
mod sftp;
mod store_guards;
mod ui;
