#!/usr/bin/env bash
# scripts/s3-server.sh start|stop|env|keys BUCKET|key BUCKET NAME|delete-key ID
# Runs Garage, a real S3 server, as a plain process on 127.0.0.1 for the tests. The binary
# is built once per machine with cargo and cached under ~/.cache/plakar-tools, keyed by
# its version. `start` prints the variables the tests read (also written to $dir/env).
set -euo pipefail
version=${GARAGE_VERSION:-2.5.0}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
bin=$tools/garage-$version/bin/garage
dir=${GARAGE_DIR:-${TMPDIR:-/tmp}/plakar-test-garage}
port=${GARAGE_PORT:-39000}

build() {
  [ -x "$bin" ] && return
  echo "building garage $version (once per machine, cached in $tools)..." >&2
  cargo install garage --version "$version" --locked --root "$tools/garage-$version" >&2
}

case ${1:-start} in
  start)
    build
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then cat "$dir/env"; exit 0; fi
    rm -rf "$dir" && mkdir -p "$dir/meta" "$dir/data"
    cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((port + 1))"
rpc_public_addr = "127.0.0.1:$((port + 1))"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$port"
root_domain = ".s3.localhost"
[admin]
api_bind_addr = "127.0.0.1:$((port + 3))"
admin_token = "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOML
    key=GKplakartest0123456789ab secret=plakar-test-secret-0123456789abcdef
    GARAGE_DEFAULT_ACCESS_KEY=$key GARAGE_DEFAULT_SECRET_KEY=$secret GARAGE_DEFAULT_BUCKET=plakar-test \
      nohup "$bin" -c "$dir/garage.toml" server --single-node --default-bucket >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && grep -q "bucket\|Bucket" "$dir/log" 2>/dev/null; then break; fi
      sleep 0.2
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "garage did not start:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    sleep 1
    printf 'export S3_ENDPOINT=127.0.0.1:%s S3_ACCESS_KEY=%s S3_SECRET_KEY=%s\n' "$port" "$key" "$secret" | tee "$dir/env"
    ;;
  stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
  env) cat "$dir/env" ;;
  keys)
    # keys BUCKET: creates BUCKET (a global name every key can use), gives the default key
    # every right on it, and makes two least-privilege keys for it; prints
    # "READ_KEY READ_SECRET WRITE_KEY WRITE_SECRET".
    bucket=${2:?usage: $0 keys BUCKET}
    g() { "$bin" -c "$dir/garage.toml" "$@"; }
    g bucket create "$bucket" >/dev/null
    g bucket allow --read --write --owner "$bucket" --key GKplakartest0123456789ab >/dev/null
    out=""
    for perm in read write; do
      info=$(g key create "$bucket-$perm")
      id=$(awk '/Key ID:/ {print $3}' <<<"$info")
      secret=$(awk '/Secret key:/ {print $3}' <<<"$info")
      g bucket allow "--$perm" "$bucket" --key "$id" >/dev/null
      out="$out $id $secret"
    done
    echo $out
    ;;
  key)
    # key BUCKET NAME: creates BUCKET unless it is there and a key NAME that may read and write
    # it (and nothing else); prints "ID SECRET". For tests that revoke a key mid-run.
    bucket=${2:?usage: $0 key BUCKET NAME} name=${3:?usage: $0 key BUCKET NAME}
    g() { "$bin" -c "$dir/garage.toml" "$@"; }
    g bucket info "$bucket" >/dev/null 2>&1 || g bucket create "$bucket" >/dev/null
    info=$(g key create "$name")
    id=$(awk '/Key ID:/ {print $3}' <<<"$info")
    secret=$(awk '/Secret key:/ {print $3}' <<<"$info")
    g bucket allow --read --write "$bucket" --key "$id" >/dev/null
    echo "$id $secret"
    ;;
  delete-key)
    # delete-key ID: revokes a key at once (requests signed with it are refused from then on).
    "$bin" -c "$dir/garage.toml" key delete --yes "${2:?usage: $0 delete-key ID}" >/dev/null
    ;;
  *) echo "usage: $0 start|stop|env|keys BUCKET|key BUCKET NAME|delete-key ID" >&2; exit 64 ;;
esac
