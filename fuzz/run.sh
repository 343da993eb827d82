#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 180), one after another,
# then prints the executions and crashes of each. Corpora grow under fuzz/corpus/ (seeded
# from real encodings written by the test decoders::fuzz_seeds); crashing, out-of-memory and
# slow inputs land in fuzz/artifacts/TARGET/. Both are git-ignored.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (cargo install cargo-fuzz --locked). Only a stable toolchain is assumed:
# RUSTC_BOOTSTRAP=1 lets it accept the nightly flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-180}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(packfile state snapshot tree blob config ptar)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# No sanitizer: the parsers are safe Rust (ASan would only slow them down); the build keeps
# debug assertions and overflow checks.
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none
bin=target/x86_64-unknown-linux-gnu/release
# Seeds: real encodings from a small store, written by an ignored test of the main crate
# (built without RUSTC_BOOTSTRAP, which cargo counts as a change that forces a rebuild).
rm -rf corpus/seeds
(cd .. && FUZZ_SEEDS_DIR="$PWD/fuzz/corpus/seeds" cargo test -q --test tests decoders::fuzz_seeds -- --ignored >/dev/null)
mkdir -p logs

total=0
printf '%-10s %12s %8s  %s\n' target execs crashes artifacts
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    touch "logs/$t.start"
    status=0
    # 512 MB of RSS (and no single allocation above it), inputs up to 64 KiB, 10 s each.
    "$bin/$t" "corpus/$t" "corpus/seeds/$t" \
        -max_total_time="$secs" -rss_limit_mb=512 -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"logs/$t.log" 2>&1 || status=$?
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "logs/$t.log")
    if [ -z "$execs" ]; then
        execs=$(grep -o '^#[0-9]*' "logs/$t.log" | tail -1 | tr -d '#')
    fi
    new=$(find "artifacts/$t" -type f -newer "logs/$t.start")
    crashes=$(printf '%s' "$new" | grep -c . || true)
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without leaving an input: see the log
    fi
    total=$((total + crashes))
    printf '%-10s %12s %8s  %s\n' "$t" "${execs:-?}" "$crashes" "$(echo $new)"
done
echo "logs in fuzz/logs/; crashes: $total"
[ "$total" -eq 0 ]
