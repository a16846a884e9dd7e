#!/usr/bin/env bash
# Installs what roofline needs to build on a fresh Debian/Ubuntu machine that has only the Rust
# toolchain: GDAL's development files (with PROJ and GEOS), pkg-config and a C compiler.
set -euo pipefail

need=()
command -v gdal-config >/dev/null 2>&1 || need+=(libgdal-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
if ((${#need[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "roofline setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
