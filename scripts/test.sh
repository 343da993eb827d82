#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): formatting and lints,
# then the real servers the tests talk to (Garage for S3, built once per machine and cached;
# OpenSSH's sshd for SFTP, from Debian; all on 127.0.0.1), then every test, built once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
eval "$(scripts/s3-server.sh start)"
eval "$(scripts/sftp-server.sh start)"
trap 'scripts/s3-server.sh stop; scripts/sftp-server.sh stop' EXIT
# Tests that need a server fail, not skip, when it is missing.
export PLAKAR_REQUIRE_SERVERS=1
cargo test --locked --all-targets
