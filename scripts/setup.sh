#!/usr/bin/env bash
# Installs the Debian packages SynthCXR needs to build, test and benchmark (idempotent: packages
# already present are not reinstalled and apt is not touched when nothing is missing).
# CUDA is optional and auto-detected at configure time; it is not installed here.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config  # toolchain
  libgtest-dev libgmock-dev                # tests
  libbenchmark-dev                         # bench/
  libopenblas-dev                          # GEMM comparison in the benchmarks (optional at build)
  nlohmann-json3-dev                       # safetensors headers, configs
  libcli11-dev                             # command lines
  libstb-dev                               # image IO
  libdcmtk-dev                             # DICOM reading (optional at build)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
