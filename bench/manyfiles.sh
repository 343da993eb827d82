#!/usr/bin/env bash
# bench/manyfiles.sh [N]: N small files (bench/manyfiles.py: 0-4 KiB each, 100 a
# directory; default 1,000,000), backed up, backed up again unchanged, and restored by
# plakar and restic side by side in one run, into local stores on tmpfs. Prints one
# markdown row per step: wall time, CPU time, peak RSS. The "Memory" and "Many small
# files" figures of docs/PERFORMANCE.md come from it.
# PLAKAR_BIN runs a given binary instead of building one; BENCH_DIR moves the work
# directory (/dev/shm/plakar-many); BENCH_TOOLS picks tools ("plakar restic").
# BENCH_WARM=1 runs each backup and restore once untimed, removes what it wrote, and times
# the second run: on a virtual machine whose memory the host backs on first touch, the
# first write into never-used memory pays the host's page fault (docs/PERFORMANCE.md, "Many
# small files"), and a restore of small files writes twice the pages its backup does.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
root=${BENCH_DIR:-/dev/shm/plakar-many}
if [ -n "${PLAKAR_BIN:-}" ]; then
  plakar=$PLAKAR_BIN
else
  cargo build --release --locked -q
  plakar=${CARGO_TARGET_DIR:-$PWD/target}/release/plakar
fi
mkdir -p "$root"
data=$root/data-$n
if [ ! -d "$data" ]; then # made aside first: an interrupted run leaves no partial dataset
  rm -rf "$data.tmp"
  python3 bench/manyfiles.py "$n" "$data.tmp"
  mv "$data.tmp" "$data"
fi
export PLAKAR_PASSPHRASE=bench RESTIC_PASSWORD=bench XDG_CONFIG_HOME=$root/config XDG_CACHE_HOME=$root/cache

echo "| tool | files | step | wall s | CPU s | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
measure() { # measure TOOL STEP CMD...
  local tool=$1 step=$2 wall user sys rss
  shift 2
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$root/time.out" "$@" >"$root/cmd.out" 2>"$root/cmd.err" || {
    echo "$tool $step failed:" >&2
    tail -5 "$root/cmd.err" >&2
    exit 1
  }
  read -r wall user sys rss <"$root/time.out"
  printf '| %s | %s | %s | %s | %.1f | %d |\n' "$tool" "$n" "$step" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
}

for t in ${BENCH_TOOLS:-plakar restic}; do
  repo=$root/repo-$t dst=$root/restore-$t
  rm -rf "$repo" "$dst" "$root/cache"
  case $t in
    plakar)
      init=("$plakar" at "$repo" create)
      backup=("$plakar" -quiet at "$repo" backup "$data")
      restore=("$plakar" -quiet at "$repo" restore -to "$dst")
      ;;
    restic)
      init=(restic init -q -r "$repo")
      backup=(restic -q -r "$repo" backup "$data")
      restore=(restic -q -r "$repo" restore --target "$dst")
      ;;
  esac
  "${init[@]}" >/dev/null
  if [ "${BENCH_WARM:-0}" = 1 ]; then
    "${backup[@]}" >/dev/null
    rm -rf "$repo" "$root/cache"
    "${init[@]}" >/dev/null
  fi
  measure "$t" backup "${backup[@]}"
  measure "$t" "backup, no change" "${backup[@]}"
  case $t in
    plakar) restore+=("$("$plakar" at "$repo" ls | awk 'NR==1 {print $2}')") ;;
    restic) restore+=(latest) ;;
  esac
  if [ "${BENCH_WARM:-0}" = 1 ]; then
    "${restore[@]}" >/dev/null
    rm -rf "$dst"
  fi
  measure "$t" restore "${restore[@]}"
  diff -rq "$data" "$dst/${data#/}" >/dev/null 2>&1 || diff -rq "$data" "$dst" >/dev/null || {
    echo "$t: the restore differs from the data" >&2
    exit 1
  }
  rm -rf "$repo" "$dst"
done
