#!/bin/bash
# Colour data through every path: MNIST digits drawn in random colours on
# random backgrounds (3x32x32, tests/data/colour_digits.py; a quarter of the
# pictures 48x48 and a quarter 40x24, fitted by --fit pad), as an
# image-folder tree and as CSV files. Each trains lenet5-rgb, stores a mean
# and std per channel and prep=pad, evaluates to the accuracy its training
# run reported. The tree's model has its report page written and predicts
# the test pictures (PNG, of any size) as eval does, counting its accuracy
# from the class folders as eval does; a grey picture goes into the colour
# model; --prep overrides.
# Usage: bash tests/cli_colour.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
PY=/usr/bin/python3
need_data "$SRC/data/mnist" MNIST train-images
$PY -c "import numpy, PIL" 2>/dev/null || { echo "SKIP: $PY lacks numpy or PIL (python3-numpy, python3-pil)"; exit 77; }
$PY "$SRC/tests/data/colour_digits.py" "$SRC/data/mnist" col 4000 400 || { echo "FAIL: could not make the data"; exit 1; }

acc_of() { sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' "$1"; }
meta() { # the model's metadata value of key $2
    $PY - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"].get(sys.argv[2], ""))
PY
}

for kind in tree csv; do
    "$CNN" train --arch lenet5-rgb --data col/$kind --epochs 3 --val 400 --threads 2 \
        --out $kind.safetensors > train_$kind.txt 2>&1 \
        || { echo "FAIL: training on the $kind"; cat train_$kind.txt; fail=1; continue; }
    acc=$(acc_of train_$kind.txt)
    echo "$kind: test accuracy $acc%"
    $PY -c "import sys; sys.exit(0 if float('$acc') >= 75 else 1)" \
        || { echo "FAIL: $kind: test accuracy $acc% < 75%"; cat train_$kind.txt; fail=1; }
    [ "$(meta $kind.safetensors prep)" = pad ] || { echo "FAIL: $kind: prep is not pad"; fail=1; }
    mean=$(meta $kind.safetensors norm_mean)
    [ "$(echo "$mean" | tr ',' '\n' | wc -l)" = 3 ] || { echo "FAIL: $kind: norm_mean '$mean' is not per channel"; fail=1; }
    "$CNN" eval --model $kind.safetensors --data col/$kind --predictions p_$kind.csv > eval_$kind.txt 2>&1 \
        || { echo "FAIL: eval on the $kind"; cat eval_$kind.txt; fail=1; continue; }
    [ "$(acc_of eval_$kind.txt)" = "$acc" ] || { echo "FAIL: $kind: eval gives $(acc_of eval_$kind.txt)%, train gave $acc%"; fail=1; }
done
# the second run reads the caches
grep -q "from the cache" train_tree.txt && { echo "FAIL: the first run found a cache"; fail=1; }
"$CNN" eval --model tree.safetensors --data col/tree > eval2.txt 2>&1
grep -q "^data: col/tree/test: 400 images from the cache" eval2.txt || { echo "FAIL: eval did not use the cache"; cat eval2.txt; fail=1; }

# the report page of the colour model on its tree: the test images read, the
# input and the per-channel normalisation shown
"$CNN" report --model tree.safetensors --data col/tree --test-limit 100 --threads 2 --out tree.html > rep.txt 2>&1 \
    || { echo "FAIL: cnn report on the colour tree"; cat rep.txt; fail=1; }
grep -q '^data: col/tree/test: 400 images from the cache' rep.txt && grep -q '"input":\[3,32,32\]' tree.html \
    && grep -Eq '"norm":\[\[[0-9.]+,[0-9.]+,[0-9.]+\],\[[0-9.]+,[0-9.]+,[0-9.]+\]\]' tree.html \
    || { echo "FAIL: the report page of the colour model"; cat rep.txt; fail=1; }

# predict on the test pictures, as files: the classes eval gives (the tree's
# test split is in file order: class folders sorted, then names)
find col/tree/test -name '*.png' | LC_ALL=C sort > files.txt
"$CNN" predict --model tree.safetensors --top 1 $(cat files.txt) > pred.txt 2>&1 || { echo "FAIL: predict"; head pred.txt; fail=1; }
$PY - <<'PY' || fail=1
import csv, re
files = open("files.txt").read().split()
got = {}
for line in open("pred.txt"):
    m = re.match(r"^(\S+): (\S+) \([0-9.]+%\)(  right|  WRONG: is \S+)?$", line.rstrip("\n"))
    if m: got[m.group(1)] = m.group(2)
rows = list(csv.DictReader(open("p_tree.csv")))
assert len(rows) == len(files) == 400, (len(rows), len(files))
bad = [f for f, r in zip(files, rows) if got.get(f) != r["predicted"]]
if bad:
    raise SystemExit("FAIL: predict and eval disagree on %d of %d pictures, e.g. %s: %s vs %s"
                     % (len(bad), len(files), bad[0], got.get(bad[0]), rows[files.index(bad[0])]["predicted"]))
# the class folders give the true labels: predict counts what eval counts
right = sum(r["label"] == r["predicted"] for r in rows)
if not re.search(r"^Accuracy: [0-9.]+%% \(%d of 400 pictures whose folder names their class\)$" % right,
                 open("pred.txt").read(), re.M):
    raise SystemExit("FAIL: predict's accuracy is not eval's %d of 400" % right)
print("predict = eval on all %d colour test pictures (sizes 32x32, 48x48, 40x24)" % len(files))
PY

# a grey picture into the colour model; --prep crop and digit run too
$PY -c "
from PIL import Image
Image.open('$(head -1 files.txt)').convert('L').save('grey.png')"
for p in "" "--prep crop" "--prep digit"; do
    "$CNN" predict --model tree.safetensors $p grey.png > g.txt 2>&1 || { echo "FAIL: predict $p on a grey picture"; cat g.txt; fail=1; }
done
"$CNN" predict --model tree.safetensors --prep fill grey.png > g.txt 2>&1
[ $? = 2 ] && grep -q "expected digit, pad or crop" g.txt || { echo "FAIL: --prep fill"; cat g.txt; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_colour"
exit $fail
