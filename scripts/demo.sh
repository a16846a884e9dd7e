#!/usr/bin/env bash
# The main job on the shipped data: installs build dependencies when missing, builds, then runs
# `roofline demo` — LiDAR labels for Amsterdam and Delft, leave-one-city-out cross-validation
# of the roof-p70 and eave cities, a model trained on all roof-p70 cities (models/), and
# predictions for a partly measured region. Outputs in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --bin roofline
./target/debug/roofline demo --data data --output out --models out/models "$@"
