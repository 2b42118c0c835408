#!/bin/bash
# Predictions prepared the way the model was trained: a model trained on
# Fashion-MNIST's IDX files records prep=pad (not MNIST's digit
# preparation), so Fashion-MNIST test images saved as PNG files (by PIL)
# get exactly the classes `cnn eval` gives the same images from the IDX
# file. A model evaluated on a data set of other classes is refused, naming
# both lists (an MNIST model on Fashion-MNIST).
# Usage: bash tests/cli_fashion_predict.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
PY=/usr/bin/python3
DATA=$SRC/data/fashion
need_data "$DATA" Fashion-MNIST t10k-images
$PY -c "import numpy, PIL" 2>/dev/null || { echo "SKIP: $PY lacks numpy or PIL"; exit 77; }
N=300
"$CNN" train --dataset fashion --arch lenet5 --epochs 1 --limit 12000 --val 1000 --test-limit $N \
    --threads 2 --out f.safetensors > train.txt 2>&1 || { echo "FAIL: training"; cat train.txt; exit 1; }
"$CNN" eval --model f.safetensors --test-limit $N --predictions p.csv > eval.txt 2>&1 \
    || { echo "FAIL: eval"; cat eval.txt; exit 1; }
DATA="$DATA" N=$N $PY - <<'PY' || { echo "FAIL: could not write the PNG files"; exit 1; }
import gzip, os
import numpy as np
from PIL import Image
d, n = os.environ["DATA"], int(os.environ["N"])
p = os.path.join(d, "t10k-images-idx3-ubyte")
raw = (gzip.open(p + ".gz") if not os.path.exists(p) else open(p, "rb")).read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
for i, im in enumerate(imgs):
    Image.fromarray(im, "L").save("f%03d.png" % i)
PY
"$CNN" predict --model f.safetensors --top 1 f*.png > pred.txt 2>&1 || { echo "FAIL: predict"; head pred.txt; exit 1; }
$PY - <<'PY' || fail=1
import csv, re
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
got = {}
for line in open("pred.txt"):
    m = re.match(r"^(f\d+)\.png: (.+) \([0-9.]+%\)$", line.rstrip("\n"))
    if m: got[int(m.group(1)[1:])] = m.group(2)
rows = list(csv.DictReader(open("p.csv")))
bad = [i for i, r in enumerate(rows) if got.get(i) != names[int(r["predicted"])]]
if len(got) != len(rows) or bad:
    raise SystemExit("FAIL: predict and eval disagree on %d of %d images (predicted %d), e.g. image %s"
                     % (len(bad), len(rows), len(got), bad[:1]))
print("predict = eval on all %d Fashion-MNIST test images saved as PNG" % len(rows))
PY
# the model records how its inputs were prepared
grep -q '"prep":"pad"' f.safetensors || { echo "FAIL: the model does not record prep=pad"; fail=1; }

# an MNIST-class model on Fashion-MNIST: refused, naming both class lists
if ls "$SRC"/data/mnist/t10k-images* > /dev/null 2>&1; then
    "$CNN" train --dataset mnist --arch lenet5 --epochs 1 --limit 500 --val 100 --test-limit 100 \
        --threads 2 --out m.safetensors > /dev/null 2>&1 || { echo "FAIL: training on MNIST"; fail=1; }
    "$CNN" eval --model m.safetensors --dataset fashion > mf.txt 2>&1
    rc=$?
    [ $rc = 1 ] && grep -q "the classes differ: the model m.safetensors has 10 (0,1,2,3,4,5,6,7,8,9) but the data set .*fashion has 10 (T-shirt/top,Trouser" mf.txt \
        || { echo "FAIL: MNIST model on Fashion-MNIST (exit $rc)"; cat mf.txt; fail=1; }
fi
[ $fail = 0 ] && echo "PASS: cli_fashion_predict"
exit $fail
