#!/usr/bin/env bash
# bench/crash.sh [ROUNDS_FS] [ROUNDS_S3]: the crash harness. Each round starts one of
# backup, sync, rm or maintenance, kills it with SIGKILL at a random moment, then proves:
#   - every snapshot the store had before the round is still listed (but the one `rm` was
#     asked to remove),
#   - `check` passes (a kill between a backup's last packfile and its state leaves a
#     snapshot no state lists: check reports it, exit 65, and `check -repair` lists it
#     again; the harness counts these separately and then requires check to pass),
#   - the next backup works; every 10 rounds, the latest snapshot restores byte-identical.
# Stores on the local filesystem (tmpfs) and on S3 (Garage from scripts/s3-server.sh).
# Prints "N kills, N stores that checked" and exits 1 on any difference.
# CRASH_SOURCE: the data (default: Debian's linux-source fs/, else this repository's
# sources); CRASH_NOISE_MB: a random file added to it (20); CRASH_PLAKAR: a binary to run
# instead of building one (a long campaign keeps its binary while the tree changes);
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds_fs=${1:-150}
rounds_s3=${2:-60}
root=${CRASH_DIR:-/dev/shm/plakar-crash}
src=${CRASH_SOURCE:-/dev/shm/plakar-bench/data/linux-source-6.1/fs}
if [ -n "${CRASH_PLAKAR:-}" ]; then
  plakar=$CRASH_PLAKAR
else
  cargo build --release --locked -q
  plakar=${CARGO_TARGET_DIR:-$PWD/target}/release/plakar
fi
export PLAKAR_PASSPHRASE=crash XDG_CONFIG_HOME=$root/config
rm -rf "$root" && mkdir -p "$root"
data=$root/data
if [ -d "$src" ]; then cp -a "$src" "$data"; else mkdir -p "$data" && cp -a src tests docs "$data/"; fi
head -c $((${CRASH_NOISE_MB:-20} * 1000000)) /dev/urandom >"$data/noise.bin"

kills=0 checked=0 cut_commits=0 restores=0 failures=0
fail() { echo "FAIL round $round ($1): $2" >&2; failures=$((failures + 1)); }
ids() { "$plakar" at "$1" ls -uuid 2>/dev/null | awk '{print $2}' | sort; }

# The time an operation takes when left alone, to spread kills over all of it.
duration_ms() { local t0; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; echo $((($(date +%s%N) - t0) / 1000000)); }

verify() { # verify STORE: check passes, possibly after a repair of a commit cut short
  local s=$1 out
  if out=$("$plakar" at "$s" check 2>&1); then return 0; fi
  if [ "$(grep -c 'KO' <<<"$out")" -gt 0 ] && ! grep 'KO' <<<"$out" | grep -vq 'no state lists it'; then
    cut_commits=$((cut_commits + 1))
    "$plakar" at "$s" check -repair >/dev/null 2>&1 && return 0
  fi
  fail check "$out"
  return 1
}

run_rounds() { # run_rounds STORE PEER ROUNDS
  local store=$1 peer=$2 n=$3 op before after window pid victim out
  "$plakar" at "$store" create -packfile-mib 4 >/dev/null
  "$plakar" at "$peer" create -packfile-mib 4 >/dev/null
  "$plakar" -quiet at "$store" backup "$data" >/dev/null
  window=$(duration_ms "$plakar" -quiet at "$store" backup "$data")
  local sync_window
  sync_window=$(duration_ms "$plakar" at "$store" sync to "$peer")
  for round in $(seq 1 "$n"); do
    before=$(ids "$store")
    victim=""
    case $((RANDOM % 10)) in
      0 | 1 | 2 | 3 | 4)
        op=backup
        head -c $((RANDOM * 64)) /dev/urandom >"$data/new-$round.bin"
        echo "$round" >>"$data/noise.bin"
        rm -f "$data/new-$((round - 5)).bin"
        cmd=("$plakar" -quiet at "$store" backup "$data") ;;
      5 | 6)
        op=sync
        cmd=("$plakar" at "$store" sync to "$peer") ;;
      7)
        op=rm
        victim=$(head -1 <<<"$before")
        cmd=("$plakar" at "$store" rm "$victim") ;;
      *)
        op=maintenance
        cmd=("$plakar" at "$store" maintenance) ;;
    esac
    local w=$window
    [ "$op" = sync ] && w=$sync_window
    "${cmd[@]}" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v ms=$((RANDOM % (w + 50))) 'BEGIN {printf "%.3f", ms / 1000}')"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    after=$(ids "$store")
    # Every snapshot that was there is still there (but the one rm was asked to remove).
    if [ -n "$(comm -23 <(grep -vx "${victim:-none}" <<<"$before") <(echo "$after"))" ]; then
      fail "$op" "snapshots lost: $(comm -23 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
    fi
    if verify "$store" && { [ "$op" != sync ] || verify "$peer"; }; then
      checked=$((checked + 1))
    fi
    if ! out=$("$plakar" -quiet at "$store" backup "$data" 2>&1); then
      fail "next backup" "$out"
    fi
    if [ $((round % 10)) -eq 0 ]; then
      rm -rf "$root/restore"
      local id
      id=$("$plakar" at "$store" ls | awk 'NR==1 {print $2}')
      if "$plakar" -quiet at "$store" restore -to "$root/restore" "$id" >/dev/null 2>&1 &&
        diff -r --no-dereference "$data" "$root/restore" >/dev/null; then
        restores=$((restores + 1))
      else
        fail restore "latest snapshot $id does not restore to the data"
      fi
    fi
    printf '\r%s: round %d/%d (%s)   ' "$store" "$round" "$n" "$op" >&2
  done
  echo >&2
}

started=$(date +%s)
run_rounds "$root/fs-store" "$root/fs-peer" "$rounds_fs"
if [ "$rounds_s3" -gt 0 ]; then
  eval "$(scripts/s3-server.sh start)"
  suffix=$(date +%s)
  for n in crashstore crashpeer; do
    "$plakar" store add "$n" "s3://$S3_ENDPOINT/$n-$suffix" "access_key=$S3_ACCESS_KEY" \
      "secret_access_key=$S3_SECRET_KEY" use_tls=false >/dev/null
  done
  run_rounds @crashstore @crashpeer "$rounds_s3"
fi
echo "$kills kills, $checked stores that checked ($cut_commits commits cut short, listed again by check -repair)," \
  "$restores restores byte-identical, $failures failures, in $(($(date +%s) - started)) s"
[ "$failures" -eq 0 ] && [ "$checked" -eq "$kills" ]
