//! One integration-test binary; each module is one area.
mod util;

mod backup_honesty;
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
mod restore_safety;
mod roundtrip;
mod s3;
mod s3_cluster;
mod s3_region;
mod s3_servers;
mod s3_tls;
mod safety;
mod sftp;
mod simulation;
mod store_guards;
mod ui;
