#!/bin/bash
# cnn report and cnn train --report on a synthetic data set: usage errors
# exit 2 and data errors exit 1 with the cause named, before any work; the
# page is one self-contained file (no script, style or image from
# elsewhere) holding what it was asked for: the test images, the history
# given or stored in the model, or a page without test images that says
# how to add them. (tests/cli_report_browser.sh opens such pages in
# Chromium.)
# Usage: bash tests/cli_report.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
syn_data 400 150

# the JSON the page embeds
page_data() { sed -n '/id="cnn-data">/,/<\/script>/p' "$1"; }
# one file: no <link>, no script or image from a URL, no CSS import
self_contained() {
    if grep -Eiq '<link|(src|href) *= *["'"'"']?(https?:|//)|@import|url\( *["'"'"']?https?:' "$1"; then
        echo "FAIL: $1 refers to another file"; grep -Eio '.{40}(<link|src=|href=|@import|url\().{40}' "$1" | head -3; fail=1
    fi
    # the data, the arrays, the live panel's data and the two scripts of the page
    [ "$(grep -c '<script' "$1")" = 5 ] || { echo "FAIL: $1 should hold exactly its 5 scripts"; fail=1; }
}

# ---- a model, its history and the page at the end of training
expect 0 "Wrote the report to t.html \([0-9.]+ MB\) in [0-9.]+ s" -- \
    "$CNN" train --data syn --arch lenet5 --epochs 2 --val 50 --threads 2 --out m.safetensors \
    --history h.csv --report t.html
self_contained t.html
grep -q "<title>What m.safetensors learned</title>" t.html || { echo "FAIL: the title of t.html"; fail=1; }
page_data t.html | grep -q '"history":{"from":"this run","rows":\[\[1,' || { echo "FAIL: train --report lacks the run's history"; fail=1; }
page_data t.html | grep -q '"test":{"n":150,' || { echo "FAIL: train --report lacks the 150 test images"; fail=1; }

# ---- usage errors: exit 2, nothing written
expect 0 "Usage: cnn report --model FILE" -- "$CNN" report --help
expect 2 "--model FILE is required" -- "$CNN" report --out r.html
expect 2 "--out FILE.html is required" -- "$CNN" report --model m.safetensors
expect 2 "--data and --dataset conflict" -- "$CNN" report --model m.safetensors --data syn --dataset mnist --out r.html
expect 2 "--dataset: expected mnist or fashion, got 'cifar'" -- "$CNN" report --model m.safetensors --dataset cifar --out r.html
expect 2 "unknown option '--bogus'" -- "$CNN" report --model m.safetensors --out r.html --bogus
expect 2 "--out m.safetensors is the model file" -- "$CNN" report --model m.safetensors --out m.safetensors
expect 2 "--out h.csv is the history file" -- "$CNN" report --model m.safetensors --history h.csv --out h.csv
expect 2 "--history r.html and --report r.html name the same file" -- \
    "$CNN" train --data syn --arch lenet5 --epochs 1 --val 50 --history r.html --report r.html
[ -e r.html ] && { echo "FAIL: a refused command wrote r.html"; fail=1; }
expect 2 "unknown command 'reports'.*report\)" -- "$CNN" reports

# ---- data errors: exit 1, the cause named
expect 1 "cannot load the model: .*nope.safetensors" -- "$CNN" report --model nope.safetensors --out r.html
expect 1 "--out: nodir/r.html: cannot write: the folder 'nodir' does not exist" -- \
    "$CNN" report --model m.safetensors --out nodir/r.html
expect 1 "--report: nodir/r.html: cannot write" -- \
    "$CNN" train --data syn --arch lenet5 --epochs 1 --val 50 --out m2.safetensors --report nodir/r.html
[ -e m2.safetensors ] && { echo "FAIL: a run refused for its --report trained"; fail=1; }
expect 1 "--data: 'nowhere' does not exist" -- "$CNN" report --model m.safetensors --data nowhere --out r.html
python3 "$SRC/tests/syn_data.py" mixed 300 100 20 || { echo "FAIL: could not write the mixed data"; exit 1; }
expect 1 "the model takes 1x28x28 images but the test split in mixed holds 1x20x20" -- \
    "$CNN" report --model m.safetensors --data mixed --out r.html
printf 'epoch,loss\n1,0.5\n' > bad1.csv
expect 1 "--history: bad1.csv: line 1 is not the header" -- "$CNN" report --model m.safetensors --history bad1.csv --out r.html
printf 'epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n1,0.01,0.5,80,,,1.0\n2,0.01,abc,90,,,1.0\n' > bad2.csv
expect 1 "--history: bad2.csv: line 3: train_loss is not a number" -- "$CNN" report --model m.safetensors --history bad2.csv --out r.html
printf 'epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n2,0.01,0.5,80,,,1.0\n1,0.01,0.4,90,,,1.0\n' > bad3.csv
expect 1 "--history: bad3.csv: line 3: epoch 1 does not follow epoch 2" -- "$CNN" report --model m.safetensors --history bad3.csv --out r.html
expect 1 "--history: .*a directory" -- "$CNN" report --model m.safetensors --history syn --out r.html
[ -e r.html ] && { echo "FAIL: a refused command wrote r.html"; fail=1; }

# ---- the page with test images and a history CSV
expect 0 "Wrote the report to r.html" -- "$CNN" report --model m.safetensors --data syn --history h.csv --out r.html
self_contained r.html
page_data r.html | grep -q '"history":{"from":"h.csv","rows":\[\[1,' || { echo "FAIL: r.html lacks the history of h.csv"; fail=1; }
page_data r.html | grep -q '"data":"test images (syn)"' || { echo "FAIL: r.html does not name its test images"; fail=1; }
expect 0 "Wrote the report to r50.html" -- "$CNN" report --model m.safetensors --data syn --test-limit 50 --out r50.html
page_data r50.html | grep -q '"test":{"n":50,' || { echo "FAIL: --test-limit 50"; fail=1; }
page_data r50.html | grep -q '"history":{"from":"the record in m.safetensors"' || { echo "FAIL: the model's own history"; fail=1; }
# written again, in place of the old page
expect 0 "Wrote the report to r.html" -- "$CNN" report --model m.safetensors --data syn --out r.html

# ---- without test images: architecture, filters and weights, and why the rest is absent
expect 0 "no --data or --dataset: the page shows the architecture" -- "$CNN" report --model m.safetensors --out n.html
self_contained n.html
page_data n.html | grep -q '"data":null,"no_data":"No test images were given: cnn report --data PATH' \
    || { echo "FAIL: n.html does not say why it has no test images"; fail=1; }
page_data n.html | grep -q '"convs":\[{"layer":0,"dims":\[6,1,5,5\]' || { echo "FAIL: n.html lacks the filters"; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_report"
exit $fail
