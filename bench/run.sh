#!/usr/bin/env bash
# bench/run.sh [TOOLS...]: backs up a real tree none of us wrote (Debian's linux-source-6.1,
# unpacked) with plakar and its peers, side by side in one run, and writes
# docs/PERFORMANCE.md: initial backup, unchanged re-backup and restore, each with wall time,
# CPU time and peak RSS, plus the store size.
#
# Tools: plakar restic rustic borg (local stores), plakar-s3 restic-s3 (a store on a Garage
# S3 server on tmpfs, started by scripts/s3-server.sh) and plakar-s3src (a bucket backed up
# into a local store).
#
# Needs: apt-get install linux-source-6.1 restic borgbackup time; rustic from
# `cargo install rustic-rs --locked` (found on PATH or under ~/.cache/plakar-tools/rustic).
# Stores, restores and the dataset live on tmpfs (/dev/shm) so the disk's writeback does
# not decide the figures; `sync` runs between steps.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(plakar restic rustic borg)
root=${BENCH_DIR:-/dev/shm/plakar-bench}
tarball=${BENCH_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
out=${BENCH_OUT:-docs/PERFORMANCE.md}
export PATH=$PATH:$HOME/.cache/plakar-tools/rustic/bin
cargo build --release --locked -q
plakar=$PWD/target/release/plakar

mkdir -p "$root"
data=$root/data
if [ ! -d "$data" ]; then
  mkdir -p "$data"
  tar -xf "$tarball" -C "$data"
fi
files=$(find "$data" -type f | wc -l)
bytes=$(du -sb "$data" | cut -f1)

export PLAKAR_PASSPHRASE=bench RESTIC_PASSWORD=bench RUSTIC_PASSWORD=bench BORG_PASSPHRASE=bench
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

results=$root/results.tsv
: >"$results"
# measure TOOL STEP CMD...: wall seconds, user+sys seconds, peak RSS MiB
measure() {
  local tool=$1 step=$2; shift 2
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$root/time.out" "$@" >"$root/cmd.out" 2>"$root/cmd.err" || {
    echo "$tool $step failed:"; tail -5 "$root/cmd.err"; exit 1; }
  read -r wall user sys rss <"$root/time.out"
  printf '%s\t%s\t%s\t%.2f\t%d\n' "$tool" "$step" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" >>"$results"
  echo "$tool $step: ${wall}s wall, $((rss / 1024)) MiB"
}

s3_up() {
  [ -n "${S3_ENDPOINT:-}" ] && return
  eval "$(GARAGE_DIR=$root/garage GARAGE_PORT=39100 scripts/s3-server.sh start)"
  trap 'GARAGE_DIR=$root/garage scripts/s3-server.sh stop' EXIT
}
s3_named() { # s3_named KIND NAME BUCKET
  "$plakar" "$1" rm "$2" >/dev/null 2>&1 || true
  "$plakar" "$1" add "$2" "s3://$S3_ENDPOINT/$3" "access_key=$S3_ACCESS_KEY" "secret_access_key=$S3_SECRET_KEY" use_tls=false
}
export XDG_CONFIG_HOME=$root/config
suffix=$(date +%s)

for t in "${tools[@]}"; do
  repo=$root/repo-$t dst=$root/restore-$t
  rm -rf "$repo" "$dst"
  case $t in
    plakar)
      "$plakar" at "$repo" create
      measure plakar backup "$plakar" at "$repo" backup "$data"
      measure plakar no-change "$plakar" at "$repo" backup "$data"
      id=$("$plakar" at "$repo" ls | awk 'NR==1 {print $2}')
      measure plakar restore "$plakar" at "$repo" restore -to "$dst" "$id" ;;
    restic)
      restic init -q -r "$repo"
      measure restic backup restic -q -r "$repo" backup "$data"
      measure restic no-change restic -q -r "$repo" backup "$data"
      measure restic restore restic -q -r "$repo" restore latest --target "$dst" ;;
    rustic)
      rustic init -r "$repo" >/dev/null 2>&1
      measure rustic backup rustic -r "$repo" backup "$data"
      measure rustic no-change rustic -r "$repo" backup "$data"
      measure rustic restore rustic -r "$repo" restore latest "$dst" ;;
    borg)
      borg init -e repokey "$repo"
      measure borg backup borg create "$repo::one" "$data"
      measure borg no-change borg create "$repo::two" "$data"
      mkdir -p "$dst"
      measure borg restore sh -c "cd '$dst' && borg extract '$repo::one'" ;;
    plakar-s3)
      s3_up
      s3_named store bench "bench-plakar-$suffix"
      "$plakar" at @bench create
      measure plakar-s3 backup "$plakar" at @bench backup "$data"
      measure plakar-s3 no-change "$plakar" at @bench backup "$data"
      id=$("$plakar" at @bench ls | awk 'NR==1 {print $2}')
      measure plakar-s3 restore "$plakar" at @bench restore -to "$dst" "$id"
      mkdir -p "$repo" ;;
    plakar-s3src)
      s3_up
      s3_named destination benchdst "bench-src-$suffix"
      s3_named source benchsrc "bench-src-$suffix"
      "$plakar" at "$repo.seed" create && "$plakar" -quiet at "$repo.seed" backup "$data" >/dev/null
      id=$("$plakar" at "$repo.seed" ls | awk 'NR==1 {print $2}')
      "$plakar" -quiet at "$repo.seed" restore -to @benchdst "$id" >/dev/null
      rm -rf "$repo.seed"
      "$plakar" at "$repo" create
      measure plakar-s3src backup "$plakar" at "$repo" backup @benchsrc ;;
    restic-s3)
      s3_up
      export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
      r="s3:http://$S3_ENDPOINT/bench-restic-$suffix"
      restic -q -r "$r" init
      measure restic-s3 backup restic -q -r "$r" backup "$data"
      measure restic-s3 no-change restic -q -r "$r" backup "$data"
      measure restic-s3 restore restic -q -r "$r" restore latest --target "$dst"
      mkdir -p "$repo" ;;
  esac
  if [ -n "$(ls -A "$repo" 2>/dev/null)" ]; then
    printf '%s\tstore\t%s\n' "$t" "$(du -sb "$repo" | cut -f1)" >>"$results"
  fi
  rm -rf "$dst" "$repo"
done

{
  echo "# Performance"
  echo
  echo "Produced by \`bench/run.sh ${tools[*]}\` on $(date -u +%Y-%m-%d), $(nproc) cores,"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB RAM. Dataset: Debian's $(basename "$tarball"), unpacked:"
  echo "$files files, $((bytes / 1000000)) MB. Dataset, stores and restore targets on tmpfs."
  echo "Versions: plakar $("$plakar" version | head -1)$(for t in "${tools[@]}"; do case $t in
    restic) echo -n ", $(restic version | cut -d' ' -f1-2)";; rustic) echo -n ", $(rustic --version 2>/dev/null)";;
    borg) echo -n ", $(borg --version)";; esac; done)."
  echo
  echo "| tool | step | wall s | CPU s | peak RSS MiB |"
  echo "|---|---|---:|---:|---:|"
  awk -F'\t' '$2 != "store" {printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$results"
  echo
  echo "| tool | store size MB |"
  echo "|---|---:|"
  awk -F'\t' '$2 == "store" {printf "| %s | %.1f |\n", $1, $3 / 1000000}' "$results"
  [ -f bench/NOTES.md ] && cat bench/NOTES.md
} >"$out.new"
mv "$out.new" "$out"
echo "wrote $out"
