#!/bin/bash
# The report page of real models: LeNet-5 trained one epoch on MNIST (the
# README's model trains five: the page is the same but for the numbers)
# and on Fashion-MNIST, each page written by `cnn train --report` and again
# by `cnn report`, under 5 MB and in seconds, and checked in headless
# Chromium as tests/cli_report_browser.sh does (screenshots under
# <build-dir>/report-screenshots/). Skipped (77) without MNIST or without
# Chromium; the Fashion-MNIST part is skipped without its data.
# Usage: bash tests/cli_mnist_report.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
need_data "$SRC/data/mnist" MNIST train-images
need_chromium
mkdir data && ln -s "$SRC/data/mnist" data/mnist
[ -d "$SRC/data/fashion" ] && ln -s "$SRC/data/fashion" data/fashion

# a build without the WebAssembly module writes pages without the live panel
LIVE=(); [ -f "$BUILD/cnn_live.wasm" ] || LIVE=(--no-live)
one() { # NAME DATASET: train, report, check
    local name=$1 ds=$2
    "$CNN" train --arch lenet5 --dataset "$ds" --epochs 1 --history "$name.csv" --out "$name.safetensors" \
        --report "$name-train.html" > train.txt 2>&1 || { echo "FAIL: cnn train on $ds"; cat train.txt; fail=1; return; }
    grep -E "^Test accuracy|^Wrote the report" train.txt
    "$CNN" report --model "$name.safetensors" --dataset "$ds" --history "$name.csv" --out "$name.html" > report.txt 2>&1 \
        || { echo "FAIL: cnn report on $ds"; cat report.txt; fail=1; return; }
    cat report.txt
    local secs size
    secs=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' report.txt)
    size=$(stat -c %s "$name.html")
    [ "$size" -lt 5000000 ] || { echo "FAIL: $name.html is $size bytes (more than 5 MB)"; fail=1; }
    python3 -c "import sys; sys.exit(0 if float('$secs') < 30 else 1)" || { echo "FAIL: $name.html took $secs s"; fail=1; }
    for page in "$name-train.html" "$name.html"; do
        if node "$SRC/tests/browser/check_report.mjs" "$page" --shot "$SHOTS/${page%.html}.png" --chromium "$CHROMIUM" "${LIVE[@]}" > check.txt 2>&1; then
            grep -E "^PASS|drawn in|screenshot" check.txt
        else
            echo "FAIL: the browser's checks of $page"; grep -v "  ok: " check.txt | sed 's/^/    /'; fail=1
        fi
    done
}

one lenet5-mnist mnist
if ls data/fashion/train-images* > /dev/null 2>&1; then one lenet5-fashion fashion
else echo "(no Fashion-MNIST in $SRC/data/fashion: its part is skipped)"; fi

[ $fail = 0 ] && echo "PASS: cli_mnist_report"
exit $fail
