#!/usr/bin/env bash
# bench/history.sh [SNAPSHOTS] [DELAY_MS]: a store with history, over a WAN (issue 17).
#
# One S3 store (Garage on tmpfs) gets a backup of the Linux source tree, then SNAPSHOTS
# (default 200) small backups of a directory that changes each time; restic gets the same in
# its own bucket on the same server. Then, through examples/wan_proxy.rs holding each chunk
# DELAY_MS (default 20) each way, so a round trip costs 2 x DELAY_MS more, it times, side by
# side in one run:
#   ls (cold cache)       the first command on a machine that never opened the store
#   ls (warm cache)       the next one
#   no-change, first      a backup of the unchanged Linux tree, its trees not yet cached
#   no-change, next       the same again: what a nightly job costs
# BENCH_TOOLS picks tools ("plakar restic"); BENCH_STEPS=ls times the ls rows only.
# restic's rows use `restic snapshots` and `restic backup` with their own cache, emptied
# for the cold row. Prints a table (wall s, CPU s, peak RSS MiB) and appends it to
# $BENCH_OUT (default /dev/shm/plakar-history/results.md).
#
# Needs what bench/run.sh needs (linux-source-6.1, restic, /usr/bin/time). PLAKAR_BIN runs
# a given binary instead of building one (then a build meanwhile cannot pull it away).
# BENCH_KEEP=1 leaves Garage running with the filled stores; a later run with BENCH_REUSE=1
# (same SNAPSHOTS) measures again on them without filling: two binaries on one store.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
delay=${2:-20}
root=${BENCH_DIR:-/dev/shm/plakar-history}
tarball=${BENCH_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
out=${BENCH_OUT:-$root/results.md}
if [ -n "${PLAKAR_BIN:-}" ]; then # a given binary: a build meanwhile cannot pull it away
  plakar=$PLAKAR_BIN
else
  cargo build --release --locked -q
  plakar=${CARGO_TARGET_DIR:-$PWD/target}/release/plakar
fi

mkdir -p "$root"
data=${BENCH_DATA:-/dev/shm/plakar-bench/data}
if [ ! -d "$data" ]; then # unpacked aside first: a failed unpack leaves no empty dataset
  rm -rf "$data.tmp" && mkdir -p "$data.tmp"
  tar -xf "$tarball" -C "$data.tmp"
  mv "$data.tmp" "$data"
fi
echo "dataset: $(find "$data" -type f | wc -l) files, $(du -sh "$data" | cut -f1)"
small=$root/small
rm -rf "$small" "$root/home" "$root/restic-cache"
mkdir -p "$small" "$root/home"
export XDG_CONFIG_HOME=$root/home/.config XDG_CACHE_HOME=$root/home/.cache
export PLAKAR_PASSPHRASE=bench RESTIC_PASSWORD=bench

stop() {
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] || GARAGE_DIR=$root/garage GARAGE_PORT=39200 scripts/s3-server.sh stop >/dev/null 2>&1 || true
}
trap stop EXIT
filled=$root/filled-$n.env
if [ -n "${BENCH_REUSE:-}" ] && [ -f "$filled" ] && (exec 3<>/dev/tcp/127.0.0.1/39200) 2>/dev/null; then
  . "$filled" # S3_*, suffix
  reuse=1
else
  rm -f "$root"/filled-*.env
  eval "$(GARAGE_DIR=$root/garage GARAGE_PORT=39200 scripts/s3-server.sh start)"
  suffix=$(date +%s)
  reuse=
fi
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
port=39299
. bench/wan_proxy.sh
start_proxy $port "$S3_ENDPOINT" "$delay" "$root/proxy.log"
keys=("access_key=$S3_ACCESS_KEY" "secret_access_key=$S3_SECRET_KEY" use_tls=false)
"$plakar" store add near "s3://$S3_ENDPOINT/hist-plakar-$suffix" "${keys[@]}"
"$plakar" store add far "s3://127.0.0.1:$port/hist-plakar-$suffix" "${keys[@]}"
near_r="s3:http://$S3_ENDPOINT/hist-restic-$suffix"
far_r="s3:http://127.0.0.1:$port/hist-restic-$suffix"

if [ -n "$reuse" ]; then
  echo "reusing the stores filled with $n small backups (hist-*-$suffix)"
else
  echo "filling both stores: the Linux tree, then $n small backups"
  "$plakar" at @near create >/dev/null
  "$plakar" -quiet at @near backup "$data" >/dev/null
  restic -q -r "$near_r" init >/dev/null
  restic -q -r "$near_r" --no-cache backup "$data" >/dev/null
  for i in $(seq 1 "$n"); do
    echo "$i" >"$small/counter"
    head -c 4096 /dev/urandom >"$small/f$((i % 10))"
    "$plakar" -quiet at @near backup "$small" >/dev/null
    restic -q -r "$near_r" --no-cache backup "$small" >/dev/null
  done
  printf 'S3_ENDPOINT=%s S3_ACCESS_KEY=%s S3_SECRET_KEY=%s suffix=%s\n' \
    "$S3_ENDPOINT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$suffix" >"$filled"
fi

results=$root/results.tsv
: >"$results"
measure() { # measure TOOL STEP CMD...
  local tool=$1 step=$2; shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$root/time.out" "$@" >"$root/cmd.out" 2>"$root/cmd.err" || {
    echo "$tool $step failed:"; tail -5 "$root/cmd.err"; exit 1; }
  read -r wall user sys rss <"$root/time.out"
  printf '| %s | %s | %s | %.2f | %d |\n' "$tool" "$step" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" >>"$results"
  echo "$tool $step: ${wall}s wall, $((rss / 1024)) MiB"
}
rm -rf "$XDG_CACHE_HOME/plakar"
steps=${BENCH_STEPS:-ls backup} # BENCH_STEPS=ls: the ls rows only
for t in ${BENCH_TOOLS:-plakar restic}; do
  case $t in
    plakar)
      measure plakar "ls, cold cache" "$plakar" at @far ls
      measure plakar "ls, warm cache" "$plakar" at @far ls
      measure plakar "ls, warm cache, again" "$plakar" at @far ls
      if [[ $steps == *backup* ]]; then
        measure plakar "no-change backup, first on this machine" "$plakar" -quiet at @far backup "$data"
        measure plakar "no-change backup, next" "$plakar" -quiet at @far backup "$data"
      fi
      ;;
    restic)
      rc=$root/restic-cache
      measure restic "ls, cold cache" restic -q -r "$far_r" --cache-dir "$rc" snapshots
      measure restic "ls, warm cache" restic -q -r "$far_r" --cache-dir "$rc" snapshots
      measure restic "ls, warm cache, again" restic -q -r "$far_r" --cache-dir "$rc" snapshots
      if [[ $steps == *backup* ]]; then
        measure restic "no-change backup, first on this machine" restic -q -r "$far_r" --cache-dir "$rc" backup "$data"
        measure restic "no-change backup, next" restic -q -r "$far_r" --cache-dir "$rc" backup "$data"
      fi
      ;;
  esac
done

{
  echo
  echo "### $((n + 1)) snapshots, ${delay} ms each way ($(date -u +%Y-%m-%d), \`bench/history.sh $n $delay\`)"
  echo
  echo "| tool | step | wall s | CPU s | peak RSS MiB |"
  echo "|---|---|---|---|---|"
  cat "$results"
} | tee -a "$out"
