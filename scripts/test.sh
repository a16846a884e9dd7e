#!/usr/bin/env bash
# The whole test suite: installs build dependencies when missing, builds once, runs every test
# (unit, integration on the real data in data/, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
  cargo test --doc
else
  cargo test --no-fail-fast "$@"
fi
