#!/usr/bin/env bash
# The long simulation campaign (docs/LOCKING.md, docs/RELIABILITY.md): N seeds from BASE of
# tests/simulation.rs (CI runs the first 2,000). A failure prints the seed and how to replay
# it: PLAKAR_SIM_SEED=<seed> cargo test --test tests simulation::simulation_keeps -- --nocapture
#   bench/simulate.sh [N=100000] [BASE=0]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
base=${2:-0}
PLAKAR_SIM_SEEDS=$n PLAKAR_SIM_BASE=$base \
  cargo test --release --locked --test tests simulation::simulation_keeps_every_committed_snapshot -- --nocapture
