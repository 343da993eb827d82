#!/usr/bin/env bash
# bench/run.sh [TOOLS...]: backs up a real tree none of us wrote (Debian's linux-source-6.1,
# unpacked) with plakar and its peers, side by side in one run, and writes
# docs/PERFORMANCE.md: initial backup, unchanged re-backup and restore, each with wall time,
# CPU time and peak RSS, plus the store size.
#
# Tools: plakar restic rustic borg (local stores), plakar-s3 restic-s3 (a store on a Garage
# S3 server on tmpfs, started by scripts/s3-server.sh), plakar-s3src (a bucket backed up
# into a local store), plakar-sftp restic-sftp (a store behind a private OpenSSH sshd on
# loopback, files on tmpfs, started by scripts/sftp-server.sh), plakar-ptar (export a store
# to a .ptar, restore from it) and plakar-sync (copy a store's snapshot into another).
#
# Needs: apt-get install linux-source-6.1 restic borgbackup time; rustic from
# `cargo install rustic-rs --locked` (found on PATH or under ~/.cache/plakar-tools/rustic).
# Stores, restores and the dataset live on tmpfs (/dev/shm) so the disk's writeback does
# not decide the figures; `sync` runs between steps. PLAKAR_BIN runs a given binary instead
# of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(plakar restic rustic borg)
root=${BENCH_DIR:-/dev/shm/plakar-bench}
tarball=${BENCH_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
out=${BENCH_OUT:-docs/PERFORMANCE.md}
export PATH=$PATH:$HOME/.cache/plakar-tools/rustic/bin
if [ -n "${PLAKAR_BIN:-}" ]; then # a given binary: a build meanwhile cannot pull it away
  plakar=$PLAKAR_BIN
else
  cargo build --release --locked -q
  plakar=${CARGO_TARGET_DIR:-$PWD/target}/release/plakar
fi

mkdir -p "$root"
data=$root/data
if [ ! -d "$data" ]; then # unpacked aside first: a failed unpack leaves no empty dataset
  rm -rf "$data.tmp" && mkdir -p "$data.tmp"
  tar -xf "$tarball" -C "$data.tmp"
  mv "$data.tmp" "$data"
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

stop_servers() {
  GARAGE_DIR=$root/garage scripts/s3-server.sh stop >/dev/null 2>&1 || true
  SFTP_DIR=$root/sshd scripts/sftp-server.sh stop >/dev/null 2>&1 || true
}
trap stop_servers EXIT
s3_up() {
  [ -n "${S3_ENDPOINT:-}" ] && return
  eval "$(GARAGE_DIR=$root/garage GARAGE_PORT=39100 scripts/s3-server.sh start)"
}
sftp_up() { # a private sshd whose files live on tmpfs
  [ -n "${SFTP_PORT:-}" ] && return
  eval "$(SFTP_DIR=$root/sshd SFTP_PORT=39122 scripts/sftp-server.sh start)"
  ssh_cmd="ssh $SFTP_USER@127.0.0.1 -p $SFTP_PORT -i $SFTP_IDENTITY -o UserKnownHostsFile=$SFTP_KNOWN_HOSTS -o StrictHostKeyChecking=yes -s sftp"
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
    plakar-sftp)
      sftp_up
      repo=$SFTP_ROOT/repo-plakar
      rm -rf "$repo"
      "$plakar" store rm benchsftp >/dev/null 2>&1 || true
      "$plakar" store add benchsftp "sftp://$SFTP_USER@127.0.0.1:$SFTP_PORT$repo" "identity=$SFTP_IDENTITY" "known_hosts=$SFTP_KNOWN_HOSTS"
      "$plakar" at @benchsftp create
      measure plakar-sftp backup "$plakar" at @benchsftp backup "$data"
      measure plakar-sftp no-change "$plakar" at @benchsftp backup "$data"
      id=$("$plakar" at @benchsftp ls | awk 'NR==1 {print $2}')
      measure plakar-sftp restore "$plakar" at @benchsftp restore -to "$dst" "$id" ;;
    restic-sftp)
      sftp_up
      repo=$SFTP_ROOT/repo-restic
      rm -rf "$repo"
      r=(-r "sftp:$SFTP_USER@127.0.0.1:$repo" -o "sftp.command=$ssh_cmd")
      restic -q "${r[@]}" init
      measure restic-sftp backup restic -q "${r[@]}" backup "$data"
      measure restic-sftp no-change restic -q "${r[@]}" backup "$data"
      measure restic-sftp restore restic -q "${r[@]}" restore latest --target "$dst" ;;
    rustic-sftp)
      sftp_up
      repo=$SFTP_ROOT/repo-rustic
      rm -rf "$repo"
      # rustic's SFTP (opendal) runs the system ssh, which reads known_hosts from the
      # passwd home, not $HOME: the bench lets it accept the loopback key instead.
      printf '%s\n' '[repository]' 'repository = "opendal:sftp"' '[repository.options]' \
        "endpoint = \"ssh://127.0.0.1:$SFTP_PORT\"" "user = \"$SFTP_USER\"" "key = \"$SFTP_IDENTITY\"" \
        "root = \"$repo\"" 'known_hosts_strategy = "accept"' >"$root/rustic-sftp.toml"
      r=(-P "$root/rustic-sftp")
      rustic "${r[@]}" init >/dev/null 2>&1
      measure rustic-sftp backup rustic "${r[@]}" backup "$data"
      measure rustic-sftp no-change rustic "${r[@]}" backup "$data"
      measure rustic-sftp restore rustic "${r[@]}" restore latest "$dst" ;;
    plakar-ptar)
      "$plakar" at "$repo.src" create && "$plakar" -quiet at "$repo.src" backup "$data" >/dev/null
      id=$("$plakar" at "$repo.src" ls | awk 'NR==1 {print $2}')
      measure plakar-ptar "ptar export" "$plakar" ptar -o "$repo.ptar" -k "$repo.src"
      measure plakar-ptar "ptar restore" "$plakar" at "$repo.ptar" restore -to "$dst" "$id"
      mkdir -p "$repo" && mv "$repo.ptar" "$repo/" && rm -rf "$repo.src" ;;
    plakar-sync)
      "$plakar" at "$repo.src" create && "$plakar" -quiet at "$repo.src" backup "$data" >/dev/null
      "$plakar" at "$repo" create
      measure plakar-sync "sync to empty store" "$plakar" at "$repo.src" sync to "$repo"
      measure plakar-sync "sync, nothing new" "$plakar" at "$repo.src" sync to "$repo"
      rm -rf "$repo.src" ;;
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
