#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): formatting and lints,
# then the real servers the tests talk to (Garage for S3 and pyftpdlib for FTP, on
# 127.0.0.1; installed once per machine and cached), then every test, built once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
eval "$(scripts/s3-server.sh start)"
trap 'scripts/s3-server.sh stop; scripts/ftp-server.sh stop' EXIT
eval "$(scripts/ftp-server.sh start)"
# Tests that need a server fail, not skip, when it is missing.
export PLAKAR_REQUIRE_SERVERS=1
cargo test --locked --all-targets
