#!/bin/bash
# The report page in a real browser: headless Chromium opens pages of
# `cnn report` and tests/browser/check_report.mjs checks them as a reader
# uses them (no console error, no request but the file, every section
# drawn, confusion-matrix cells that show their images, the convolution
# view's sums equal to the stored outputs, feature maps that follow the
# picked image, a live panel or the reason it has none) and keeps a
# screenshot of each under
# <build-dir>/report-screenshots/. The pages: a grey model trained here
# (cnn train --report), the same without test images (cnn report alone), a
# colour model with every layer kind, and a 30-class model without a final
# softmax (tests/report_pages.c). Skipped (77) only where Chromium is not
# installed. tests/cli_mnist_report.sh does the same for MNIST and
# Fashion-MNIST models.
# Usage: bash tests/cli_report_browser.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
need_chromium
PAGES=$BUILD/tests/report_pages
[ -x "$PAGES" ] || { echo "FAIL: $PAGES is not built"; exit 1; }
syn_data 700 200

# a build without the WebAssembly module writes pages without the live panel
LIVE=(); [ -f "$BUILD/cnn_live.wasm" ] || LIVE=(--no-live)
check() { # PAGE SHOT [flags]: the browser's checks, their output shown when they fail
    local page=$1 shot=$2; shift 2
    if node "$SRC/tests/browser/check_report.mjs" "$page" --shot "$SHOTS/$shot" --chromium "$CHROMIUM" "${LIVE[@]}" "$@" > check.txt 2>&1; then
        grep -E "^PASS|drawn in|screenshot" check.txt
    else
        echo "FAIL: the browser's checks of $page"; grep -v "  ok: " check.txt | sed 's/^/    /'; fail=1
    fi
}

"$CNN" train --data syn --arch lenet5 --epochs 3 --val 100 --threads 2 --out grey.safetensors --report grey.html \
    > train.txt 2>&1 || { echo "FAIL: cnn train --report"; cat train.txt; exit 1; }
grep "Wrote the report" train.txt
check grey.html synthetic-grey.png

# without test data and without the live panel (as a build without the module writes it)
"$CNN" report --model grey.safetensors --no-live --out nodata.html > report.txt 2>&1 || { echo "FAIL: cnn report without data"; cat report.txt; exit 1; }
check nodata.html synthetic-no-data.png --no-data --no-live

"$PAGES" colour colour.html || { echo "FAIL: report_pages colour"; exit 1; }
check colour.html synthetic-colour.png
"$PAGES" many many.html || { echo "FAIL: report_pages many"; exit 1; }
check many.html synthetic-30-classes.png

[ $fail = 0 ] && echo "PASS: cli_report_browser (screenshots in $SHOTS)"
exit $fail
