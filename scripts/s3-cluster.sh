#!/usr/bin/env bash
# Three Garage nodes on 127.0.0.1, replication factor 3 (writes and reads need 2 of 3), for
# the test that loses a node during a backup. Same binary as scripts/s3-server.sh.
#
#   eval "$(scripts/s3-cluster.sh start)"   # starts, connects, lays out, makes a key and bucket
#   scripts/s3-cluster.sh kill-node N        # SIGKILL node N (1-3)
#   scripts/s3-cluster.sh start-node N       # starts it again, same data, and has node 1
#                                            # connect to it at once (not at its next retry)
#   scripts/s3-cluster.sh stop | env
#
# Node N listens for S3 on S3_CLUSTER_PORT + 10*(N-1) (default 39300, 39310, 39320), RPC on
# the next port, admin on the one after; S3_CLUSTER_ENDPOINT is node 1's S3 API.
set -euo pipefail
version=${GARAGE_VERSION:-2.5.0}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
bin=$tools/garage-$version/bin/garage
dir=${S3_CLUSTER_DIR:-${TMPDIR:-/tmp}/plakar-test-garage-cluster}
base=${S3_CLUSTER_PORT:-39300}
key=GKc1a5ee70123456789abcdef secret=plakar-cluster-secret-0123456789abcdef bucket=plakar-cluster

s3_port() { echo $((base + 10 * ($1 - 1))); }
rpc_port() { echo $(($(s3_port "$1") + 1)); }
g() { "$bin" -c "$dir/node1/garage.toml" "$@"; }
node_id() { "$bin" -c "$dir/node$1/garage.toml" node id -q 2>/dev/null; }
running() { [ -f "$dir/node$1/pid" ] && kill -0 "$(cat "$dir/node$1/pid")" 2>/dev/null; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

configure() {
  local n=$1 d=$dir/node$1
  mkdir -p "$d/meta" "$d/data"
  cat >"$d/garage.toml" <<TOML
metadata_dir = "$d/meta"
data_dir = "$d/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$(rpc_port "$n")"
rpc_public_addr = "127.0.0.1:$(rpc_port "$n")"
rpc_secret = "$(cat "$dir/rpc_secret")"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$(s3_port "$n")"
root_domain = ".s3.localhost"
[admin]
api_bind_addr = "127.0.0.1:$(($(s3_port "$n") + 3))"
TOML
}

start_node() {
  local n=$1
  running "$n" && return
  nohup "$bin" -c "$dir/node$n/garage.toml" server >>"$dir/node$n/log" 2>&1 &
  echo $! >"$dir/node$n/pid"
  for _ in $(seq 1 100); do up "$(s3_port "$n")" && return; sleep 0.1; done
  echo "garage node $n did not start:" >&2
  tail -20 "$dir/node$n/log" >&2
  return 1
}

# Starts three fresh nodes and lays them out. Fails (rather than exits) so that `start`
# can try again: on a busy machine one of our fixed ports may be held for a moment by an
# outgoing connection (they lie in the kernel's ephemeral range), and a node that cannot
# bind its admin or RPC port dies after it answered on S3.
bring_up() {
  "$0" stop
  rm -rf "$dir" && mkdir -p "$dir"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/rpc_secret"
  for n in 1 2 3; do configure "$n"; start_node "$n" || return 1; done
  for n in 2 3; do g node connect "$(node_id "$n")" >/dev/null || return 1; done
  for n in 1 2 3; do
    id=$(node_id "$n") || return 1
    g layout assign -z dc1 -c 1G "${id%%@*}" >/dev/null || return 1
  done
  g layout apply --version 1 >/dev/null || return 1
  g key import --yes -n plakar-cluster "$key" "$secret" >/dev/null || return 1
  g bucket create "$bucket" >/dev/null || return 1
  g bucket allow --read --write --owner "$bucket" --key "$key" >/dev/null || return 1
  for n in 1 2 3; do running "$n" || return 1; done
}

print_env() {
  printf 'export S3_CLUSTER_ENDPOINT=127.0.0.1:%s S3_CLUSTER_ACCESS_KEY=%s S3_CLUSTER_SECRET_KEY=%s S3_CLUSTER_BUCKET=%s\n' \
    "$(s3_port 1)" "$key" "$secret" "$bucket"
}

case ${1:-start} in
  start)
    [ -x "$bin" ] || { echo "no garage at $bin: run scripts/s3-server.sh start first (it builds it)" >&2; exit 1; }
    if running 1 && running 2 && running 3 && [ -f "$dir/env" ]; then cat "$dir/env"; exit 0; fi
    for attempt in 1 2 3; do
      if bring_up >&2; then
        print_env | tee "$dir/env"
        exit 0
      fi
      echo "garage cluster: attempt $attempt failed; starting it again" >&2
      sleep 2
    done
    echo "garage cluster: could not start three nodes on ports $base..$((base + 23))" >&2
    exit 1
    ;;
  kill-node)
    n=${2:?usage: $0 kill-node N}
    if running "$n"; then kill -9 "$(cat "$dir/node$n/pid")"; fi
    rm -f "$dir/node$n/pid"
    ;;
  start-node)
    n=${2:?usage: $0 start-node N}
    start_node "$n" || exit 1
    [ "$n" = 1 ] || g node connect "$(node_id "$n")" >/dev/null
    ;;
  stop)
    for n in 1 2 3; do
      if running "$n"; then kill "$(cat "$dir/node$n/pid")"; fi
      rm -f "$dir/node$n/pid"
    done
    ;;
  env) cat "$dir/env" ;;
  *) echo "usage: $0 start|stop|kill-node N|start-node N|env" >&2; exit 64 ;;
esac
