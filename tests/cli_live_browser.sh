#!/bin/bash
# The report page's live panel in headless Chromium (tests/browser/check_live.mjs):
# strokes drawn on the canvas of a lenet5's page must get the probabilities
# `cnn predict` gives the same strokes saved as a PNG, every layer is drawn,
# stepping and clearing work, and one preparation and forward pass in the
# page takes under 2 ms (the figure is printed). A colour model's page takes a
# dropped picture. Screenshots are kept under <build-dir>/report-screenshots/.
# The lenet5 is trained briefly on MNIST, or on the synthetic digits of
# tests/syn_data.py where MNIST is absent. Skipped (77) where this build has
# no WebAssembly module or Chromium is not installed.
# Usage: bash tests/cli_live_browser.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
if [ ! -f "$BUILD/cnn_live.wasm" ]; then
    echo "SKIP: this build has no WebAssembly module (clang for wasm32-wasi, wasi-libc and lld were not found; tests/deps.sh installs them)"; exit 77
fi
need_chromium
PAGES=$BUILD/tests/report_pages
[ -x "$PAGES" ] || { echo "FAIL: $PAGES is not built"; exit 1; }
if [ -f "$SRC/data/mnist/t10k-images-idx3-ubyte" ]; then
    data=(--dataset mnist); limit=3000
else
    echo "MNIST is absent: the synthetic digits instead"
    syn_data 700 200
    data=(--data syn --fit digit); limit=0
fi
"$CNN" train "${data[@]}" --arch lenet5 --epochs 1 --limit $limit --val 0 --threads 2 --out lenet5.safetensors \
    > train.txt 2>&1 || { echo "FAIL: cnn train"; cat train.txt; exit 1; }
"$CNN" report --model lenet5.safetensors "${data[@]::2}" --test-limit 500 --out lenet5.html > report.txt 2>&1 \
    || { echo "FAIL: cnn report"; cat report.txt; exit 1; }
node "$SRC/tests/browser/check_live.mjs" lenet5.html --chromium "$CHROMIUM" --shot "$SHOTS/live-panel.png" \
    --cnn "$CNN" --model lenet5.safetensors --png "$SHOTS/live-strokes.png" > check.txt 2>&1 || fail=1
if [ $fail = 0 ]; then grep -Ev "^  ok: " check.txt; else echo "FAIL: the live panel of lenet5.html"; sed 's/^/    /' check.txt; fi

"$PAGES" colour colour.html || { echo "FAIL: report_pages colour"; exit 1; }
if node "$SRC/tests/browser/check_live.mjs" colour.html --chromium "$CHROMIUM" --shot "$SHOTS/live-panel-colour.png" > check.txt 2>&1; then
    grep -Ev "^  ok: " check.txt
else
    echo "FAIL: the live panel of colour.html"; sed 's/^/    /' check.txt; fail=1
fi
[ $fail = 0 ] && echo "PASS: cli_live_browser (screenshots in $SHOTS)"
exit $fail
