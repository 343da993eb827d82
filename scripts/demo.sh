#!/usr/bin/env bash
# The main job on a fresh machine: build plakar, then create a local store, back up a
# sample directory, list, check and restore it, and compare the restore with the source.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
bin=$PWD/target/release/plakar
work=${DEMO_DIR:-$(mktemp -d)}
export PLAKAR_PASSPHRASE=${PLAKAR_PASSPHRASE:-demo-passphrase-change-me}
mkdir -p "$work/sample/docs"
cp -r src "$work/sample/"
cp README.md "$work/sample/docs/"
head -c 5000000 /dev/urandom >"$work/sample/random.bin"
ln -sf docs/README.md "$work/sample/readme-link"
set -x
"$bin" at "$work/store" create
"$bin" at "$work/store" backup "$work/sample"
"$bin" at "$work/store" ls
"$bin" at "$work/store" check
id=$("$bin" at "$work/store" ls | awk 'NR==1 {print $2}')
"$bin" at "$work/store" restore -to "$work/restored" "$id"
diff -r --no-dereference "$work/sample" "$work/restored"
set +x
echo "demo OK: store and restore are in $work"
