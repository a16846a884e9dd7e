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
# The Ray test (tests/ray.rs) runs python/roofline_ray on a local Ray instance.
if ! python3 -c "import ray" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check ray
fi
# The browser test (tests/browser.rs) opens the HTML reports and maps in Debian's chromium.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${ROOFLINE_CHROMIUM:-}" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "roofline test: installing chromium" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# The PostGIS test (tests/postgis.rs) starts a throw-away cluster with Debian's PostgreSQL and
# PostGIS (initdb, pg_ctl, psql, the postgis extension).
pg_initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n 1 || true)
if [ -z "${ROOFLINE_PG_BIN:-}" ] && { [ -z "$pg_initdb" ] || ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; }; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "roofline test: installing postgresql and postgis" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    postgresql postgis postgresql-postgis >/dev/null
fi
# A Python venv at $1, installing Debian's python3-venv first when venv is missing (Debian
# ships it separately).
make_venv() {
  if ! python3 -m venv "$1" >/dev/null 2>&1; then
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$1"
  fi
}
# The notebook test (tests/notebook.rs) runs notebooks/explore_outputs.ipynb in its own venv.
venv="${ROOFLINE_NOTEBOOK_VENV:-$HOME/.cache/roofline/notebook-venv}"
if ! "$venv/bin/python" -c "import nbclient, ipykernel, geopandas, pyarrow, matplotlib, xgboost, folium, mapclassify" >/dev/null 2>&1; then
  echo "roofline test: installing the notebook's Python packages in $venv" >&2
  make_venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    nbclient nbformat ipykernel pandas pyarrow geopandas matplotlib xgboost-cpu numpy folium mapclassify
fi
export ROOFLINE_NOTEBOOK_PYTHON="$venv/bin/python"
# The Arrow readers test (tests/arrow_readers.rs) opens every GeoParquet output with pyarrow 14,
# from before Arrow's view types, and with DuckDB, in a venv of their own (pyarrow 14 needs
# numpy 1).
arrow14="${ROOFLINE_ARROW14_VENV:-$HOME/.cache/roofline/arrow14-venv}"
if ! "$arrow14/bin/python" -c "import duckdb, pyarrow; assert pyarrow.__version__ == '14.0.2'" >/dev/null 2>&1; then
  echo "roofline test: installing pyarrow 14 and DuckDB in $arrow14" >&2
  make_venv "$arrow14"
  "$arrow14/bin/python" -m pip install --quiet --disable-pip-version-check \
    'pyarrow==14.0.2' 'numpy<2' duckdb
fi
export ROOFLINE_ARROW14_PYTHON="$arrow14/bin/python"
# The guide's promises, checked first (fast): formatting and clippy without warnings.
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# The Python package (python/roofline, README "From Python"), built into the notebook's venv
# by maturin before the tests (the notebook imports it); its dependencies are the ones the
# tests then reuse. Its own tests run after the suite, against the command line the suite built.
if ! "$venv/bin/python" -c "import maturin, pytest" >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'maturin>=1.5,<2' pytest
fi
cargo clippy -p roofline-python --quiet -- -D warnings
(cd python/roofline && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
  cargo test --doc
else
  cargo test --no-fail-fast "$@"
fi
ROOFLINE_BIN="$PWD/target/debug/roofline" "$venv/bin/python" -m pytest -q python/roofline/tests
