#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): formatting and lints,
# then the real servers the tests talk to (Garage for S3, built once per machine and cached,
# with a stunnel TLS front from Debian and a three-node Garage cluster; moto's server and
# `rclone serve s3` from PyPI as two more S3 implementations; OpenSSH's sshd for
# SFTP, from Debian; pyftpdlib for FTP, from PyPI; all on 127.0.0.1; headless Chromium from
# Debian for the UI), then every test, built once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# junitparser, a JUnit reader from PyPI, parses the drill's JUnit reports in the tests as a
# CI system would (installed once per machine in a venv).
venv=${XDG_CACHE_HOME:-$HOME/.cache}/plakar-tools/junitparser-5.0.3
if ! "$venv/bin/python" -c 'import junitparser' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet junitparser==5.0.3
fi
export PLAKAR_JUNIT_PYTHON=$venv/bin/python
# Debian's Chromium and playwright-core from npm for the UI's browser tests.
eval "$(scripts/browser-setup.sh)"
eval "$(scripts/s3-server.sh start)"
eval "$(scripts/s3-tls.sh start)"
eval "$(scripts/s3-cluster.sh start)"
eval "$(scripts/moto-server.sh start)"
eval "$(scripts/rclone-s3.sh start)"
eval "$(scripts/sftp-server.sh start)"
eval "$(scripts/ftp-server.sh start)"
trap 'scripts/s3-tls.sh stop; scripts/s3-cluster.sh stop; scripts/s3-server.sh stop; scripts/moto-server.sh stop; scripts/rclone-s3.sh stop; scripts/sftp-server.sh stop; scripts/ftp-server.sh stop' EXIT
# The mount tests use the kernel's FUSE (/dev/fuse): root mounts with it alone, anyone else
# needs the setuid fusermount3 from Debian's fuse3 (plakar needs no libfuse).
if [ "$(id -u)" != 0 ] && ! command -v fusermount3 >/dev/null; then
  sudo -n apt-get install -y --no-install-recommends fuse3 >&2 ||
    { sudo -n apt-get update >&2 && sudo -n apt-get install -y --no-install-recommends fuse3 >&2; }
fi
# Tests that need a server fail, not skip, when it is missing.
export PLAKAR_REQUIRE_SERVERS=1
cargo test --locked --all-targets
