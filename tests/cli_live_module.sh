#!/bin/bash
# The report page's WebAssembly module against the native program: a lenet5
# trained briefly on MNIST, its page written by cnn report, and Node.js
# running the module embedded in that page on the first 200 MNIST test
# images (tests/wasm/check_module.mjs) against the native forward pass
# (tests/live_reference.c): every layer's output and the probabilities
# within 1e-5. Skipped (77) where this build has no module (the toolchain
# was not found), where Node.js is absent, or without MNIST.
# Usage: bash tests/cli_live_module.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
if [ ! -f "$BUILD/cnn_live.wasm" ]; then
    echo "SKIP: this build has no WebAssembly module (clang for wasm32-wasi, wasi-libc and lld were not found; tests/deps.sh installs them)"; exit 77
fi
command -v node > /dev/null || { echo "SKIP: Node.js is not installed (Debian: apt-get install nodejs)"; exit 77; }
MNIST=$SRC/data/mnist
[ -f "$MNIST/t10k-images-idx3-ubyte" ] || { echo "SKIP: MNIST is not in $MNIST (data/fetch.sh)"; exit 77; }
REF=$BUILD/tests/live_reference
[ -x "$REF" ] || { echo "FAIL: $REF is not built"; exit 1; }
"$CNN" train --dataset mnist --arch lenet5 --epochs 1 --limit 2000 --val 0 --threads 2 --out lenet5.safetensors \
    > train.txt 2>&1 || { echo "FAIL: cnn train"; cat train.txt; exit 1; }
"$CNN" report --model lenet5.safetensors --out page.html > report.txt 2>&1 || { echo "FAIL: cnn report"; cat report.txt; exit 1; }
"$REF" lenet5.safetensors "$MNIST/t10k-images-idx3-ubyte" "$MNIST/t10k-labels-idx1-ubyte" 200 native.bin \
    || { echo "FAIL: live_reference"; exit 1; }
node "$SRC/tests/wasm/check_module.mjs" page.html "$MNIST/t10k-images-idx3-ubyte" 200 native.bin
