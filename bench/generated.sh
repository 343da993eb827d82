#!/usr/bin/env bash
# bench/generated.sh [FILES] [MAX_SIZE]: a first backup and a no-change backup of FILES
# generated files (the gen: source: 0..MAX_SIZE random bytes each, 100 a directory; default
# 10,000,000 files of at most 1,024 bytes, 4.8 GiB) into a local store, then `ls`. No tree
# on disk: the source computes its files, so ten million need no 40 GB of data. Prints one
# markdown row per step: wall time, CPU time, peak RSS. The "Ten million files" figures of
# docs/PERFORMANCE.md come from it (docs/MEMORY.md says where the memory goes).
# PLAKAR_BIN runs a given binary instead of building one; BENCH_DIR is where the store goes
# (/var/tmp/plakar-gen: on disk, the store of ten million files takes 6 GiB). BENCH_RESTORE
# names a directory to restore the first snapshot into (it is emptied first and after).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
max=${2:-1024}
root=${BENCH_DIR:-/var/tmp/plakar-gen}
if [ -n "${PLAKAR_BIN:-}" ]; then
  plakar=$PLAKAR_BIN
else
  cargo build --release --locked -q
  plakar=${CARGO_TARGET_DIR:-$PWD/target}/release/plakar
fi
rm -rf "$root" && mkdir -p "$root"
export PLAKAR_PASSPHRASE=bench XDG_CONFIG_HOME=$root/config XDG_CACHE_HOME=$root/cache
source="gen:$n?max_size=$max"
echo "| files | step | wall s | CPU s | peak RSS MiB |"
echo "|---|---|---|---|---|"
measure() { # measure STEP CMD...
  local step=$1 wall user sys rss
  shift
  /usr/bin/time -f '%e %U %S %M' -o "$root/time.out" "$@" >"$root/cmd.out" 2>"$root/cmd.err" || {
    echo "$step failed:" >&2
    tail -5 "$root/cmd.err" >&2
    exit 1
  }
  read -r wall user sys rss <"$root/time.out"
  printf '| %s | %s | %s | %.1f | %d |\n' "$n" "$step" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
}
"$plakar" at "$root/store" create >/dev/null
measure backup "$plakar" -quiet at "$root/store" backup "$source"
measure "backup, no change" "$plakar" -quiet at "$root/store" backup "$source"
measure ls "$plakar" at "$root/store" ls
if [ -n "${BENCH_RESTORE:-}" ]; then
  # The first snapshot restored into BENCH_RESTORE (made fresh; it needs room for FILES
  # inodes and, for files of up to MAX_SIZE bytes, a block each), then counted.
  rm -rf "$BENCH_RESTORE" && mkdir -p "$BENCH_RESTORE"
  first=$("$plakar" at "$root/store" ls | tail -1 | awk '{print $2}')
  sync
  measure restore "$plakar" -quiet at "$root/store" restore -to "$BENCH_RESTORE/r" "$first"
  got=$(find "$BENCH_RESTORE/r" -type f | wc -l)
  [ "$got" -eq "$n" ] || { echo "restored $got files of $n" >&2; exit 1; }
  rm -rf "$BENCH_RESTORE"
fi
rm -rf "$root/store"
