#!/usr/bin/env bash
# bench/scale.sh [DATASET...]: the scale table of docs/PERFORMANCE.md (issue 17), plakar and
# restic side by side in one run.
#
# DATASET: linux (the Linux source tree, 78k files; the default) or many (1,000,000 small
# files, bench/manyfiles.py). For each dataset and each of BENCH_LEVELS snapshots (default
# "1 100 1000"), a Garage of its own (tmpfs) gets one S3 bucket per tool: LEVEL - 1 small
# backups of a directory that changes each time (the tools side by side, unmeasured), then
# a backup of the dataset. Straight to Garage (0 ms) and through examples/wan_proxy.rs holding
# each chunk DELAY_MS (default 20) each way (a 40 ms round trip), it times:
#   ls                    listing the snapshots, with a warm cache (one ls before, untimed)
#   no-change backup      the dataset again, unchanged, after one such backup (untimed)
#   restore               the dataset's first snapshot, into a fresh directory on tmpfs
# Each row: wall s, CPU s, peak RSS MiB. The table is appended to $BENCH_OUT (default
# $BENCH_DIR/results.md). Ten million files do not fit a tmpfs here: that row comes from
# bench/generated.sh (ours only; restic needs the files on a disk).
#
# PLAKAR_BIN runs a given binary instead of building one. PLAKAR_BASE_BIN adds "plakar
# (base)" ls rows from another binary on the same stores (before/after a change).
# Needs what bench/run.sh needs (linux-source-6.1, restic, /usr/bin/time) and ~12 GB of
# /dev/shm for the many-files dataset. Both datasets at the three levels take about 80 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/wan_proxy.sh
datasets=${*:-linux}
levels=${BENCH_LEVELS:-1 100 1000}
delay=${DELAY_MS:-20}
root=${BENCH_DIR:-/dev/shm/plakar-scale}
out=${BENCH_OUT:-$root/results.md}
if [ -n "${PLAKAR_BIN:-}" ]; then
  plakar=$PLAKAR_BIN
else
  cargo build --release --locked -q
  plakar=${CARGO_TARGET_DIR:-$PWD/target}/release/plakar
fi
base=${PLAKAR_BASE_BIN:-}
mkdir -p "$root"
export PLAKAR_PASSPHRASE=bench RESTIC_PASSWORD=bench

dataset() { # dataset NAME: prints its directory, made once (aside first: no partial dataset)
  local d
  case $1 in
    linux)
      d=${BENCH_DATA:-/dev/shm/plakar-bench/data}
      if [ ! -d "$d" ]; then
        rm -rf "$d.tmp" && mkdir -p "$d.tmp"
        tar -xf "${BENCH_TARBALL:-/usr/src/linux-source-6.1.tar.xz}" -C "$d.tmp" && mv "$d.tmp" "$d"
      fi
      ;;
    many)
      d=/dev/shm/plakar-many/data-1000000
      if [ ! -d "$d" ]; then
        mkdir -p "${d%/*}" && rm -rf "$d.tmp"
        python3 bench/manyfiles.py 1000000 "$d.tmp" && mv "$d.tmp" "$d"
      fi
      ;;
    *) echo "unknown dataset $1 (linux or many)" >&2; exit 2 ;;
  esac
  echo "$d"
}

garage() { # garage start|stop: Garage on 39600 (not a test server's port), started empty
  GARAGE_DIR=$root/garage GARAGE_PORT=39600 scripts/s3-server.sh "$1"
}
stop() { # stops the proxy and Garage, and waits for them to be gone (their ports freed)
  local pids=${proxy_pid:-} i
  [ -f "$root/garage/pid" ] && pids="$pids $(cat "$root/garage/pid")"
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  garage stop >/dev/null 2>&1 || true
  for i in $(seq 1 100); do
    kill -0 $pids 2>/dev/null || break
    sleep 0.1
  done
}
trap stop EXIT
port=39699

results=$root/results.tsv
: >"$results"
measure() { # measure FILES SNAPSHOTS RTT TOOL STEP CMD...
  local cell="$1 | $2 | $3 | $4 | $5" wall user sys rss
  shift 5
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$root/time.out" "$@" >"$root/cmd.out" 2>"$root/cmd.err" || {
    echo "$cell failed:" >&2
    tail -5 "$root/cmd.err" >&2
    exit 1
  }
  read -r wall user sys rss <"$root/time.out"
  printf '| %s | %s | %.1f | %d |\n' "$cell" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" | tee -a "$results"
}

# fill TOOL N: N small backups of a directory that changes each time. Unmeasured; the two
# tools fill side by side.
fill() {
  local small=$root/small-$1 i
  rm -rf "$small" && mkdir -p "$small"
  for ((i = 1; i <= $2; i++)); do
    echo "$i" >"$small/counter"
    head -c 4096 /dev/urandom >"$small/f$((i % 10))"
    case $1 in
      plakar) "$plakar" -quiet at @near backup "$small" >/dev/null ;;
      restic) restic -q -r "${rrepo[0]}" --cache-dir "$rc" backup "$small" >/dev/null ;;
    esac
  done
}

# Each cell (dataset, level) gets a Garage of its own, emptied: the stores of a million
# files at three levels would not fit in memory together. The small snapshots are made
# first, in a store where the dataset is not yet (for restic, each backup rereads the whole
# index, which made the million-file fill take 40 minutes); then the dataset is backed up.
# The store holds the same snapshots as if it had grown the other way.
for ds in $datasets; do
  data=$(dataset "$ds")
  files=$(find "$data" -type f | wc -l)
  for level in $levels; do
    stop
    start_proxy $port 127.0.0.1:39600 "$delay" "$root/proxy.log"
    eval "$(garage start)"
    export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
    home=$root/home-$ds
    rm -rf "$home" && mkdir -p "$home"
    export XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache
    rc=$home/restic-cache
    bucket=scale-$ds-$level
    keys=("access_key=$S3_ACCESS_KEY" "secret_access_key=$S3_SECRET_KEY" use_tls=false)
    "$plakar" store add near "s3://$S3_ENDPOINT/$bucket-plakar" "${keys[@]}"
    "$plakar" store add far "s3://127.0.0.1:$port/$bucket-plakar" "${keys[@]}"
    declare -A rrepo=([0]="s3:http://$S3_ENDPOINT/$bucket-restic" [$((2 * delay))]="s3:http://127.0.0.1:$port/$bucket-restic")
    declare -A prepo=([0]=@near [$((2 * delay))]=@far)
    "$plakar" at @near create >/dev/null
    restic -q -r "${rrepo[0]}" init >/dev/null
    echo "$ds: $files files, $level snapshots: $((level - 1)) small backups, then the dataset" >&2
    fill plakar $((level - 1)) &
    fill restic $((level - 1))
    wait $!
    "$plakar" -quiet at @near backup "$data" >/dev/null
    first=$("$plakar" at @near ls | awk -v d="$data" '$NF == d {print $2}' | head -1)
    restic -q -r "${rrepo[0]}" --cache-dir "$rc" backup "$data" >/dev/null
    rfirst=$(restic -q -r "${rrepo[0]}" --cache-dir "$rc" snapshots --json --path "$data" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
    [ -n "$first" ] && [ -n "$rfirst" ] || { echo "no snapshot of $data" >&2; exit 1; }
    for rtt in 0 $((2 * delay)); do
      p=${prepo[$rtt]} r=${rrepo[$rtt]}
      dst=$root/restore
      "$plakar" at "$p" ls >/dev/null # the cache filled
      measure "$files" "$level" "$rtt" plakar ls "$plakar" at "$p" ls
      if [ -n "$base" ]; then
        "$base" at "$p" ls >/dev/null
        measure "$files" "$level" "$rtt" "plakar (base)" ls "$base" at "$p" ls
      fi
      "$plakar" -quiet at "$p" backup "$data" >/dev/null
      measure "$files" "$level" "$rtt" plakar "no-change backup" "$plakar" -quiet at "$p" backup "$data"
      rm -rf "$dst"
      measure "$files" "$level" "$rtt" plakar restore "$plakar" -quiet at "$p" restore -to "$dst" "$first"
      rm -rf "$dst"
      restic -q -r "$r" --cache-dir "$rc" snapshots >/dev/null
      measure "$files" "$level" "$rtt" restic ls restic -q -r "$r" --cache-dir "$rc" snapshots
      restic -q -r "$r" --cache-dir "$rc" backup "$data" >/dev/null
      measure "$files" "$level" "$rtt" restic "no-change backup" restic -q -r "$r" --cache-dir "$rc" backup "$data"
      measure "$files" "$level" "$rtt" restic restore restic -q -r "$r" --cache-dir "$rc" restore "$rfirst" --target "$dst"
      rm -rf "$dst"
    done
  done
done
stop

{
  echo
  echo "### Scale: $datasets at $levels snapshots, 0 and $((2 * delay)) ms round trip ($(date -u +%Y-%m-%d), \`bench/scale.sh $datasets\`)"
  echo
  echo "| files | snapshots | RTT ms | tool | step | wall s | CPU s | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$results"
} | tee -a "$out"
