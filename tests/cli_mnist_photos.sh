#!/bin/bash
# Photographed digits: LeNet-5 trained as train-mnist.sh trains it (`cnn
# train --arch lenet5 --epochs 5`, every other option the default) reads at
# least 90% of the pictures of tests/photo_digits.py right, and at least 80%
# of each condition (clean, lighting, shadow, rotation, exif, noise, small,
# pencil, marker, colour, photo: 32 pictures each, made from MNIST test
# digits). The per-condition table is printed. And the preparation leaves
# clean digits alone: 300 MNIST test digits saved as 28x28 PNGs are
# classified as `cnn eval` classifies them from the IDX file.
# CNN_PHOTOS_MODEL=FILE uses that model instead of training one.
# Usage: bash tests/cli_mnist_photos.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
DATA=$SRC/data/mnist
need_data "$DATA" MNIST train-images
PY=
for p in python3 /usr/bin/python3; do
    if "$p" -c "import numpy, PIL" > /dev/null 2>&1; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with numpy and PIL (apt-get install python3-numpy python3-pil)"; exit 77; }

if [ -n "$CNN_PHOTOS_MODEL" ]; then
    cp "$CNN_PHOTOS_MODEL" model.safetensors
else
    mkdir data && ln -s "$DATA" data/mnist
    "$CNN" train --arch lenet5 --epochs 5 > train.txt 2>&1 \
        || { echo "FAIL: cnn train exited $?"; cat train.txt; exit 1; }
    grep -E "^Test accuracy" train.txt
fi

"$PY" "$SRC/tests/photo_digits.py" "$DATA" photos 32 || { echo "FAIL: could not make the pictures"; exit 1; }
files=$(tail -n +2 photos/index.csv | cut -d, -f1 | sed 's|^|photos/|')
"$CNN" predict --model model.safetensors $files > out.txt 2> err.txt \
    || { echo "FAIL: cnn predict exited $?"; head err.txt; exit 1; }

"$PY" - <<'PY' || fail=1
import collections, csv, re, sys
pred = {}
for line in open("out.txt"):
    m = re.match(r"^(\S+): (\S+) \(([0-9.]+)%\)", line)
    if m: pred[m.group(1)] = m.group(2)
total, right = collections.Counter(), collections.Counter()
order = []
for r in csv.DictReader(open("photos/index.csv")):
    c = r["condition"]
    if c not in order: order.append(c)
    total[c] += 1
    right[c] += pred.get("photos/" + r["file"]) == r["label"]
print("condition   right  accuracy")
for c in order:
    print("%-10s %3d/%-3d  %5.1f%%" % (c, right[c], total[c], 100.0 * right[c] / total[c]))
n, k = sum(total.values()), sum(right.values())
print("%-10s %3d/%-3d  %5.1f%%" % ("all", k, n, 100.0 * k / n))
ok = k >= 0.9 * n
if not ok: print("FAIL: %.1f%% of the photographed digits read right, below 90%%" % (100.0 * k / n))
for c in order:
    if right[c] < 0.8 * total[c]:
        print("FAIL: %s: %d of %d right, below 80%%" % (c, right[c], total[c])); ok = False
sys.exit(0 if ok else 1)
PY

# clean MNIST digits: the same predictions from PNG files as from the IDX file
"$PY" - "$DATA" <<'PY' || { echo "FAIL: could not write the MNIST PNGs"; exit 1; }
import os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
raw = open(os.path.join(d, "t10k-images-idx3-ubyte"), "rb").read()[16:] if os.path.exists(os.path.join(d, "t10k-images-idx3-ubyte")) \
    else __import__("gzip").open(os.path.join(d, "t10k-images-idx3-ubyte.gz")).read()[16:]
x = np.frombuffer(raw, np.uint8)[:300 * 784].reshape(300, 28, 28)
os.mkdir("mnist")
for i in range(300): Image.fromarray(x[i]).save("mnist/%03d.png" % i)
PY
"$CNN" eval --model model.safetensors --data "$DATA" --test-limit 300 --predictions eval.csv > /dev/null 2>&1 \
    || { echo "FAIL: cnn eval"; exit 1; }
"$CNN" predict --model model.safetensors mnist/*.png > mnist.txt 2>&1 || { echo "FAIL: cnn predict on the MNIST PNGs"; exit 1; }
"$PY" - <<'PY' || fail=1
import csv, re, sys
ev = {int(r["index"]): r["predicted"] for r in csv.DictReader(open("eval.csv"))}
same = 0
for line in open("mnist.txt"):
    m = re.match(r"^mnist/(\d+)\.png: (\S+) ", line)
    if m: same += ev[int(m.group(1))] == m.group(2)
print("MNIST test digits as PNG: %d of 300 predicted as from the IDX file" % same)
# measured: 997 of the first 1000 (3 digits the model is unsure of), before and after the photo steps
sys.exit(0 if same >= 297 else 1)
PY

[ $fail = 0 ] && echo "PASS: cli_mnist_photos"
exit $fail
