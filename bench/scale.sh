#!/usr/bin/env bash
# bench/scale.sh [DATASET...]: the scale table of docs/PERFORMANCE.md (issue 17), plakar and
# restic side by side in one run.
#
# DATASET: linux (the Linux source tree, 78k files; the default) or many (1,000,000 small
# files, bench/manyfiles.py). For each dataset, one S3 bucket per tool on Garage (tmpfs)
# gets a backup of the dataset, then small backups of a directory that changes each time,
# up to each of BENCH_LEVELS snapshots (default "1 100 1000"). At each level, straight to
# Garage (0 ms) and through bench/wan_proxy.py holding each chunk DELAY_MS (default 20)
# each way (a 40 ms round trip), it times:
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
# /dev/shm for the many-files dataset. linux at 1,000 snapshots takes about 40 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
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

stop() {
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  GARAGE_DIR=$root/garage GARAGE_PORT=39400 scripts/s3-server.sh stop >/dev/null 2>&1 || true
}
trap stop EXIT
eval "$(GARAGE_DIR=$root/garage GARAGE_PORT=39400 scripts/s3-server.sh start)"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
port=39499
python3 bench/wan_proxy.py $port "$S3_ENDPOINT" "$delay" >"$root/proxy.log" 2>&1 &
proxy_pid=$!
sleep 1

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

for ds in $datasets; do
  data=$(dataset "$ds")
  files=$(find "$data" -type f | wc -l)
  small=$root/small
  home=$root/home-$ds
  rm -rf "$small" "$home"
  mkdir -p "$small" "$home"
  export XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache
  bucket=scale-$ds-$(date +%s)
  keys=("access_key=$S3_ACCESS_KEY" "secret_access_key=$S3_SECRET_KEY" use_tls=false)
  "$plakar" store add near "s3://$S3_ENDPOINT/$bucket-plakar" "${keys[@]}"
  "$plakar" store add far "s3://127.0.0.1:$port/$bucket-plakar" "${keys[@]}"
  declare -A rrepo=([0]="s3:http://$S3_ENDPOINT/$bucket-restic" [$((2 * delay))]="s3:http://127.0.0.1:$port/$bucket-restic")
  declare -A prepo=([0]=@near [$((2 * delay))]=@far)
  echo "$ds: $files files; backing up the dataset" >&2
  "$plakar" at @near create >/dev/null
  "$plakar" -quiet at @near backup "$data" >/dev/null
  first=$("$plakar" at @near ls | awk 'NR==1 {print $2}')
  restic -q -r "${rrepo[0]}" init >/dev/null
  restic -q -r "${rrepo[0]}" --no-cache backup "$data" >/dev/null
  rfirst=$(restic -q -r "${rrepo[0]}" --no-cache snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  count=1
  for level in $levels; do
    echo "$ds: filling to $level snapshots" >&2
    while [ "$count" -lt "$level" ]; do
      echo "$count" >"$small/counter"
      head -c 4096 /dev/urandom >"$small/f$((count % 10))"
      "$plakar" -quiet at @near backup "$small" >/dev/null
      restic -q -r "${rrepo[0]}" --no-cache backup "$small" >/dev/null
      count=$((count + 1))
    done
    for rtt in 0 $((2 * delay)); do
      p=${prepo[$rtt]} r=${rrepo[$rtt]} rc=$home/restic-cache
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
    # The measured backups added snapshots: the next level counts them.
    count=$((count + 4))
  done
done

{
  echo
  echo "### Scale: $datasets at $levels snapshots, 0 and $((2 * delay)) ms round trip ($(date -u +%Y-%m-%d), \`bench/scale.sh $datasets\`)"
  echo
  echo "| files | snapshots | RTT ms | tool | step | wall s | CPU s | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$results"
} | tee -a "$out"
