#!/usr/bin/env bash
# City-scale benchmark (not in CI): builds benchmark cities with `roofline bench-city`, times
# each stage with /usr/bin/time -v and prints ONE markdown table of ratios and a scaling table.
#   bench/run.sh [N ...]          default: 10000 100000
# Peers (Python, LightGBM, exactextract) and the ratio table run at one size only: PEERS_AT
# (default: the last N). Every size gives a row of the scaling table.
# Needs: python3 with laspy lazrs geopandas shapely pyarrow lightgbm (pip install ...).
# Cities are kept in $BENCH_DIR (default /tmp/roofline-bench) and reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10000 100000)
work=${BENCH_DIR:-/tmp/roofline-bench}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$work"
cargo build --release --all-targets >&2
bin="$target/release/roofline"
decode="$target/release/examples/las_decode"

# timed NAME CMD...: runs CMD under /usr/bin/time -v; sets T_NAME (wall s) and M_NAME (peak MiB).
timed() {
  local name=$1; shift
  local log="$work/$name.time"
  /usr/bin/time -v "$@" >"$work/$name.out" 2>"$log" || { echo "$name failed:" >&2; tail -5 "$log" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  printf -v "T_$name" '%s' "$wall"
  printf -v "M_$name" '%s' "$rss"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

peers_at=${PEERS_AT:-${sizes[-1]}}
scaling="| buildings | points | tiles | labels s | features s | train s | predict s | train + predict s | same, --cache s | peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
for n in "${sizes[@]}"; do
  city="$work/city-$n"
  [ -f "$city/city.toml" ] || "$bin" --quiet bench-city "$city" --buildings "$n" >&2
  cfg="$city/city.toml"
  timed decode "$decode" "$city/tiles/*.laz"
  timed labels "$bin" --quiet labels "$cfg" -o "$work/labels-$n.parquet"
  # Without known-neighbour heights: the 41 features train uses, which the Python reference computes.
  timed features "$bin" --quiet features "$cfg" --no-known-heights -o "$work/features-$n.parquet"
  timed train "$bin" --quiet train "$cfg" -o "$work/model-$n.model"
  # Row 4 compares like with like: the point model alone (LightGBM fits no intervals).
  timed train_point "$bin" --quiet train "$cfg" --no-intervals -o "$work/point-$n.model"
  timed predict "$bin" --quiet predict --model "$work/model-$n.model" "$cfg" -o "$work/pred-$n.parquet"
  # The same with a feature cache, empty at the start: train fills it, predict reads it.
  rm -rf "$work/cache-$n"
  timed train_cached "$bin" --quiet train --cache "$work/cache-$n" "$cfg" -o "$work/model-cached-$n.model"
  timed predict_cached "$bin" --quiet predict --cache "$work/cache-$n" --model "$work/model-cached-$n.model" "$cfg" -o "$work/pred-cached-$n.parquet"
  for f in model:model pred:parquet; do
    cmp -s "$work/${f%%:*}-$n.${f##*:}" "$work/${f%%:*}-cached-$n.${f##*:}" \
      || echo "WARNING: the cache changed $work/${f%%:*}-cached-$n.${f##*:}" >&2
  done
  points=$(grep -o 'points read: [0-9]*' "$work/labels.out" | head -1 | grep -o '[0-9]*$' || true)
  tiles=$(ls "$city/tiles" | wc -l)
  # What a user runs: `train` (labels, features, fit) then `predict` (features again, apply).
  pipeline=$(awk -v b="$T_train" -v c="$T_predict" 'BEGIN { print b + c }')
  cached=$(awk -v b="$T_train_cached" -v c="$T_predict_cached" 'BEGIN { print b + c }')
  peak=$(printf '%s\n' "$M_labels" "$M_features" "$M_train" "$M_predict" "$M_train_cached" "$M_predict_cached" | sort -n | tail -1)
  scaling+="| $n | $points | $tiles | $T_labels | $T_features | $T_train | $T_predict | $pipeline | $cached | $peak |\n"
  [ "$n" = "$peers_at" ] || continue
  timed python python3 bench/city_reference.py "$cfg" "$work/python-$n.parquet"
  python3 bench/compare_features.py "$work/features-$n.parquet" "$work/python-$n.parquet" >&2
  timed lightgbm python3 bench/lightgbm_city.py "$work/features-$n.parquet"
  zonal="$work/zonal-$n"
  [ -f "$zonal/zonal.toml" ] || python3 bench/zonal_reference.py make "$zonal" "$n" >&2
  timed zonal_roofline "$bin" --quiet features "$zonal/zonal.toml" -o "$work/zonal-$n.parquet"
  timed zonal_python python3 bench/zonal_reference.py run "$zonal"
  imagery_s=$(grep -o 'imagery [0-9.]* s' "$work/zonal_roofline.out" | grep -o '[0-9.]*')
  exact_s=$(grep -o 'in [0-9.]* s' "$work/zonal_python.out" | head -1 | grep -o '[0-9.]*')
  train_only=$(grep -o 'training [0-9.]* s' "$work/train_point.out" | grep -o '[0-9.]*')
  roofline_mae=$(grep -o 'training error: MAE [0-9.]*' "$work/train_point.out" | grep -o '[0-9.]*$')
  lgb_mae=$(grep -o 'in-sample MAE [0-9.]*' "$work/lightgbm.out" | grep -o '[0-9.]*$')
  lgb_only=$(grep -o 'training [0-9.]* s' "$work/lightgbm.out" | grep -o '[0-9.]*')
  last_n=$n
  table="| # | comparison ($last_n buildings, $points points) | roofline | yardstick | ratio | target |\n|---|---|---:|---:|---:|---|\n"
  table+="| 1 | labels ÷ single-thread las decode of the same tiles | $T_labels s | $T_decode s | $(ratio "$T_labels" "$T_decode") | ≤ 1.0 (land ≤ 1.3) |\n"
  table+="| 2 | labels + the 41 features train uses ÷ Python computing the same (laspy+lazrs, shapely 2, numpy, scipy) | $T_features s | $T_python s | $(ratio "$T_python" "$T_features")× faster | ≥ 5× |\n"
  table+="| 3 | imagery zonal stats (Wageningen Landsat 8, footprints replicated to $last_n) ÷ exactextract | $imagery_s s | $exact_s s | $(ratio "$exact_s" "$imagery_s")× faster | ≥ 1× |\n"
  table+="| 4 | train, point model (fitting only) ÷ LightGBM, same rows/features/trees/leaves/bins/threads; in-sample MAE $roofline_mae vs $lgb_mae m | $train_only s | $lgb_only s | $(ratio "$train_only" "$lgb_only") | ≤ 1.0, MAE within 3 % |\n"
  table+="| 5 | whole pipeline: train (labels → features → fit) then predict, --cache (predict reuses train's features) | $cached s, peak $peak MiB | without cache: $pipeline s | | ≤ 90 s, ≤ 2 GiB |\n"
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
printf '%b\n' "$table"
printf '%b' "$scaling"
