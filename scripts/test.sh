#!/usr/bin/env bash
# The whole test suite: installs build dependencies when missing, builds once, runs every test
# (unit, integration on the real data in data/, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The XGBoost-export test loads roofline's model in Python's xgboost (CPU build).
if ! python3 -c "import xgboost, numpy" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check xgboost-cpu numpy
fi
# The guide's promises, checked first (fast): formatting and clippy without warnings.
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
  cargo test --doc
else
  cargo test --no-fail-fast "$@"
fi
