#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install what the build needs,
# build cnn, fetch the full MNIST (60,000 training / 10,000 test images) and
# train LeNet-5 on it, printing per-epoch progress and the test set's
# classification report (the seed report's table) and confusion matrix.
#
#   bash train-mnist.sh                 # LeNet-5, 5 epochs
#   bash train-mnist.sh --arch best --epochs 15 --augment --batch 128 --lr 0.003
#
# Extra arguments are passed to `cnn train` (they override the defaults).
set -euo pipefail
cd "$(dirname "$0")"
# only what building needs (tests/run.sh installs the test and benchmark tools)
bash tests/deps.sh --build
bash data/fetch.sh mnist
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCNN_TESTS=OFF -DCNN_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)" --target cnn
mkdir -p out
# the defaults (Adam at 0.005, annealed by cosine; README, "Defaults")
exec build/cnn train --arch lenet5 --epochs 5 \
    --out out/lenet5.safetensors --history out/lenet5.csv --plot out/lenet5.svg "$@"
