//! One integration-test binary; each module is one area.
mod util;

mod cli_basic;
mod cli_errors;
mod conformance;
mod engine;
mod golden;
mod roundtrip;
mod s3;
