#!/usr/bin/env bash
# The main job on the shipped data: installs build dependencies when missing, builds, and
# measures LiDAR height labels for the shipped cities (outputs in out/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --bin roofline
mkdir -p out/labels
for city in amsterdam-centre delft-3dfier delft-3dfier-3dfier wageningen delft-5910 perigueux olemps; do
  ./target/debug/roofline labels "data/cities/$city.toml" -o "out/labels/$city.gpkg" "$@"
done
