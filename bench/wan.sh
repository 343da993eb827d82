#!/usr/bin/env bash
# bench/wan.sh [DELAY_MS]: restore over S3 across a simulated WAN, plakar and restic side by
# side in one run (issue 17). Backs the Linux source tree up into a private Garage, then
# restores it directly (0 ms) and through examples/wan_proxy.rs, which holds every chunk
# DELAY_MS (default 20) each way: 2 * DELAY_MS of round trip, bandwidth unlimited. restic
# uses the same server and the same link. A local (fs) store is measured as well, for
# reference. Each step: wall time, CPU time (user + sys) and peak RSS (/usr/bin/time).
#
# The proxy logs every request of the WAN steps; the profile below each table says how many
# GETs each restore sent, their sizes and how many were in flight (as the proxy saw them).
# Writes the tables between the wan markers of bench/NOTES.md and docs/PERFORMANCE.md
# (BENCH_WRITE=0: only print them). Data, stores and targets live on tmpfs (/dev/shm).
# Each row also gives the CPU time Garage and the proxy spent during the step (from their
# /proc/PID/stat): on 2 cores they share the machine with the tool measured.
# Each restore is run once untimed into its target, which is then removed, before the timed
# run (BENCH_WARM=0: not): on a virtual machine whose host backs guest memory on its first
# touch, the first restore into never-used memory pays for it (docs/PERFORMANCE.md, "Many
# small files"), and it would be the local restore every ratio is taken against.
#
# BENCH_PIN=1 puts Garage and the proxy on CPU 1 and every measured command on CPU 0
# (taskset), as if the server were another machine: the tool gets one core, the same one for
# the local reference, and its rows no longer pay for the server's CPU. Its table is written
# between the wan-pinned markers.
#
# Needs what bench/run.sh needs (linux-source-6.1, restic, time), taskset (util-linux) for
# BENCH_PIN, and python3 (for the request profile).
# PLAKAR_BIN=path measures that binary instead of building this tree; BENCH_CHECK=0 skips
# comparing each restored tree with the source; BENCH_TOOLS picks among plakar-fs plakar-s3
# restic-s3 (default: all three); BENCH_BEFORE=path also restores the same snapshot with
# that build (rows plakar-before), to compare two builds in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
delay=${1:-20}
root=${BENCH_DIR:-/dev/shm/plakar-wan}
tarball=${BENCH_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
target=${CARGO_TARGET_DIR:-$PWD/target}
port=${WAN_PORT:-39500} # not 39300-39323: scripts/s3-cluster.sh's, for the tests
check=${BENCH_CHECK:-1}
tools=" ${BENCH_TOOLS:-plakar-fs plakar-s3 restic-s3} "
want() { [[ $tools == *" $1 "* ]]; }
if [ -n "${PLAKAR_BIN:-}" ]; then
  plakar=$PLAKAR_BIN # another build to compare, as is
else
  cargo build --release --locked -q
  plakar=$target/release/plakar
fi

mkdir -p "$root"
data=$root/data
if [ ! -d "$data" ]; then
  mkdir -p "$data"
  tar -xf "$tarball" -C "$data"
fi
files=$(find "$data" -type f | wc -l)
bytes=$(du -sb "$data" | cut -f1)

export PLAKAR_PASSPHRASE=bench RESTIC_PASSWORD=bench
export XDG_CONFIG_HOME=$root/config XDG_CACHE_HOME=$root/cache RESTIC_CACHE_DIR=$root/restic-cache
rm -rf "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$RESTIC_CACHE_DIR"

results=$root/results.tsv profile=$root/profile.txt log=$root/proxy.log
: >"$results"
: >"$profile"
proxy_pid=
stop() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  GARAGE_DIR=$root/garage scripts/s3-server.sh stop >/dev/null 2>&1 || true
}
trap stop EXIT
eval "$(GARAGE_DIR=$root/garage GARAGE_PORT=$port scripts/s3-server.sh start)"
. bench/wan_proxy.sh
start_proxy $((port + 10)) "$S3_ENDPOINT" "$delay" "$root/proxy.out" "$log"
wan=127.0.0.1:$((port + 10))
pin=()
mark=wan
if [ "${BENCH_PIN:-0}" = 1 ]; then
  taskset -a -p -c 1 "$(cat "$root/garage/pid")" >/dev/null
  taskset -a -p -c 1 "$proxy_pid" >/dev/null
  pin=(taskset -c 0)
  mark=wan-pinned
fi
rtt=$((2 * delay))

# cpu PID: the user + system clock ticks the process has used.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
garage_pid=$(cat "$root/garage/pid")
hz=$(getconf CLK_TCK)

# measure TOOL STEP CMD...: wall seconds, user+sys seconds, peak RSS MiB, and the server's
# and the proxy's CPU seconds meanwhile; a step through the proxy also gets its requests
# summarised into $profile. A restore step (into $dst) is run once before, untimed, and its
# target removed, unless BENCH_WARM=0.
measure() {
  local tool=$1 step=$2; shift 2
  if [ "${BENCH_WARM:-1}" = 1 ] && [[ $step == restore* ]]; then
    ${pin[@]+"${pin[@]}"} "$@" >/dev/null 2>&1 || true
    rm -rf "$dst"
    sleep 0.3 # the proxy logs a connection's last request when it closes: not into this step's log
  fi
  sync
  : >"$log"
  local g0 p0
  g0=$(cpu "$garage_pid") p0=$(cpu "$proxy_pid")
  /usr/bin/time -f '%e %U %S %M' -o "$root/time.out" ${pin[@]+"${pin[@]}"} "$@" >"$root/cmd.out" 2>"$root/cmd.err" || {
    echo "$tool $step failed:"; tail -5 "$root/cmd.err"; exit 1; }
  local g=$(( $(cpu "$garage_pid") - g0 )) p=$(( $(cpu "$proxy_pid") - p0 ))
  read -r wall user sys rss <"$root/time.out"
  printf '%s\t%s\t%s\t%.2f\t%d\t%.2f\t%.2f\n' "$tool" "$step" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" \
    "$(echo "scale=2; $g / $hz" | bc)" "$(echo "scale=2; $p / $hz" | bc)" >>"$results"
  echo "$tool $step: ${wall}s wall, $((rss / 1024)) MiB"
  if [ -s "$log" ]; then
    sleep 0.3 # the proxy flushes a connection's last request when it closes
    python3 - "$tool $step" "$log" >>"$profile" <<'PY'
import sys, statistics
name, path = sys.argv[1], sys.argv[2]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.count("\t") == 7]
gets = [r for r in rows if r[1] == "GET"]
if not gets:
    sys.exit()
sizes = [int(r[7]) for r in gets]
span = [(float(r[4]), float(r[6]) if float(r[6]) else float(r[4])) for r in gets]
t0, t1 = min(s for s, _ in span), max(e for _, e in span)
ev = sorted([(s, 1) for s, _ in span] + [(e, -1) for _, e in span])
cur = peak = 0
area, last = 0.0, t0
for t, d in ev:
    area += cur * (t - last)
    last, cur = t, cur + d
    peak = max(peak, cur)
ranged = sum(1 for r in gets if r[3] != "-")
conns = len({r[0] for r in rows})
med = statistics.median(sizes)
print(f"| {name} | {len(gets)} | {ranged} | {sum(sizes) / 2**20:.1f} | {med / 1024:.0f} | {max(sizes) / 2**20:.2f} "
      f"| {area / max(t1 - t0, 1e-9):.1f} | {peak} | {conns} | {t1 - t0:.2f} |")
PY
  fi
}

# same_tree DIR: the restored tree holds what was backed up (content, not metadata).
same_tree() {
  [ "$check" = 1 ] || return 0
  diff -rq --no-dereference "$data" "$1" >/dev/null || { echo "restore into $1 differs from the source"; exit 1; }
}

suffix=$(date +%s)
dst=$root/restore

# plakar, local store: the reference a WAN restore is measured against.
if want plakar-fs; then
  repo=$root/repo-fs
  rm -rf "$repo" "$dst"
  "$plakar" at "$repo" create
  measure plakar-fs backup "$plakar" at "$repo" backup "$data"
  id=$("$plakar" at "$repo" ls | awk 'NR==1 {print $2}')
  measure plakar-fs restore "$plakar" at "$repo" restore -to "$dst" "$id"
  same_tree "$dst"
  rm -rf "$dst" "$repo"
fi

# plakar on S3: one bucket, reached directly and through the proxy.
if want plakar-s3; then
  for n in wan0 wanrtt; do "$plakar" store rm $n >/dev/null 2>&1 || true; done
  bucket=wan-plakar-$suffix
  "$plakar" store add wan0 "s3://$S3_ENDPOINT/$bucket" "access_key=$S3_ACCESS_KEY" "secret_access_key=$S3_SECRET_KEY" use_tls=false
  "$plakar" store add wanrtt "s3://$wan/$bucket" "access_key=$S3_ACCESS_KEY" "secret_access_key=$S3_SECRET_KEY" use_tls=false
  "$plakar" at @wan0 create
  measure plakar-s3 "backup, 0 ms" "$plakar" at @wan0 backup "$data"
  id=$("$plakar" at @wan0 ls | awk 'NR==1 {print $2}')
  measure plakar-s3 "restore, 0 ms" "$plakar" at @wan0 restore -to "$dst" "$id"
  same_tree "$dst"
  rm -rf "$dst"
  measure plakar-s3 "restore, $rtt ms" "$plakar" at @wanrtt restore -to "$dst" "$id"
  same_tree "$dst"
  rm -rf "$dst"
  if [ -n "${BENCH_BEFORE:-}" ]; then # another build on the same snapshot, same run
    for step in "0 ms:wan0" "$rtt ms:wanrtt"; do
      measure plakar-before "restore, ${step%%:*}" "$BENCH_BEFORE" at "@${step#*:}" restore -to "$dst" "$id"
      rm -rf "$dst"
    done
  fi
fi

# restic on the same server and link.
if want restic-s3; then
  export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
  r0="s3:http://$S3_ENDPOINT/wan-restic-$suffix" rw="s3:http://$wan/wan-restic-$suffix"
  restic -q -r "$r0" init
  measure restic-s3 "backup, 0 ms" restic -q -r "$r0" backup "$data"
  measure restic-s3 "restore, 0 ms" restic -q -r "$r0" restore latest --target "$dst"
  rm -rf "$dst"
  measure restic-s3 "restore, $rtt ms" restic -q -r "$rw" restore latest --target "$dst"
  rm -rf "$dst"
fi

val() { awk -F'\t' -v t="$1" -v s="$2" '$1 == t && $2 == s {print $3}' "$results"; }
p0=$(val plakar-s3 "restore, 0 ms") pw=$(val plakar-s3 "restore, $rtt ms") rw_=$(val restic-s3 "restore, $rtt ms")
pfs=$(val plakar-fs restore)
ratio() { [ -n "$1" ] && [ -n "$2" ] && printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)" || echo "?"; }
table=$(
  echo "<!-- $mark -->"
  if [ ${#pin[@]} = 0 ]; then
    echo "### Restore over S3 across a WAN (\`bench/wan.sh $delay\`)"
  else
    echo "### Restore over S3 across a WAN, the server on a core of its own (\`BENCH_PIN=1 bench/wan.sh $delay\`)"
  fi
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores. Dataset: $(basename "$tarball"), unpacked: $files files,"
  echo "$((bytes / 1000000)) MB. Garage on 127.0.0.1; the WAN is examples/wan_proxy.rs holding every chunk"
  echo "$delay ms each way ($rtt ms round trip, bandwidth unlimited). Data, stores and targets on tmpfs."
  echo "plakar $("$plakar" version | head -1), $(restic version | cut -d' ' -f1-2)."
  if [ ${#pin[@]} != 0 ]; then
    echo "Pinned: every measured command on CPU 0, Garage and the proxy on CPU 1 (taskset)."
  fi
  echo
  echo "| tool | step | wall s | CPU s | peak RSS MiB | Garage CPU s | proxy CPU s |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$results"
  echo
  echo "Same run: plakar's restore at $rtt ms is $(ratio "$pw" "$pfs")x its restore from a local store,"
  echo "$(ratio "$pw" "$p0")x its restore at 0 ms and $(ratio "$pw" "$rw_")x restic's at $rtt ms."
  echo
  echo "Requests of the $rtt ms restores, as the proxy saw them (in flight: requests sent and"
  echo "not yet answered in full, averaged over the time from the first GET to the last byte):"
  echo
  echo "| step | GETs | ranged | MiB | median KiB | largest MiB | mean in flight | peak in flight | connections | s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  cat "$profile"
  echo "<!-- /$mark -->"
)
echo "$table"
[ "${BENCH_WRITE:-1}" = 1 ] || exit 0
for f in bench/NOTES.md docs/PERFORMANCE.md; do
  python3 - "$f" "$table" "$mark" <<'PY'
import re, sys
path, block, mark = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(path).read()
if f"<!-- {mark} -->" in s:
    s = re.sub(f"<!-- {mark} -->.*?<!-- /{mark} -->", lambda _: block, s, flags=re.S)
else:
    s = s.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(s)
PY
done
