#!/bin/bash
# A data set larger than it should take in memory: 1,000,000 colour images
# of 3x32x32 (a 3 GB cache file, written here directly in the documented
# format by numpy: class k is a bright square at one of ten places on a
# noisy background) trained by lenet5-rgb for one epoch, read in shuffled
# order. Prints the run's peak resident memory as the kernel counts it
# (file-backed pages of the mapping included: /usr/bin/time's maximum
# resident set size) and its timings. Needs ~3.1 GB of free disk in DIR.
# Usage: bash bench/bigdata_rss.sh BUILD_DIR [DIR] [IMAGES]
BUILD=${1:-build}; DIR=${2:-/tmp/cnn-bigdata}; N=${3:-1000000}
CNN=$BUILD/cnn
mkdir -p "$DIR"
F=$DIR/big-$N.cnncache
if [ ! -s "$F" ]; then
    /usr/bin/python3 - "$F" "$N" <<'PY'
import struct, sys
import numpy as np
path, n = sys.argv[1], int(sys.argv[2])
c, h, w, classes = 3, 32, 32, 10
px = c * h * w
rng = np.random.default_rng(3)
labels = rng.integers(0, classes, n).astype("<u2")
names = b"".join(str(k).encode() + b"\0" for k in range(classes))
labels_at = 128 + n * px
names_at = labels_at + 2 * n
size = names_at + len(names)
head = (b"CNNCACHE" + struct.pack("<IIIIII", 1, 128, c, h, w, classes) +
        struct.pack("<QQQQQQ", n, 0, 128, labels_at, names_at, len(names)) +
        struct.pack("<IIQ", 1, 0, size))
with open(path + ".tmp", "wb") as f:
    f.write(head + b"\0" * (128 - len(head)))
    chunk = 20000
    for s in range(0, n, chunk):
        lab = labels[s:s + chunk]
        img = rng.integers(0, 60, (len(lab), c, h, w), dtype=np.uint8)
        for k in range(classes):
            sel = lab == k
            y, x = 2 + (k // 5) * 14, 2 + (k % 5) * 6
            img[sel, k % 3, y:y + 8, x:x + 5] = 230
        f.write(img.tobytes())
    f.write(labels.tobytes())
    f.write(names)
import os
os.rename(path + ".tmp", path)
PY
fi
ls -l "$F"
echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; cores: $(nproc)"
/usr/bin/time -v "$CNN" train --data "$F" --arch lenet5-rgb --epochs 1 --batch 64 --val 10000 \
    --test-split 0.01 --out "$DIR/big.safetensors" "${@:4}" > "$DIR/train.txt" 2> "$DIR/time.txt"
rc=$?
grep -E "^cnn train|^batch|^data|^epoch|^Test accuracy|^Training" "$DIR/train.txt"
grep -E "Maximum resident|Elapsed|Major|Minor|File system inputs" "$DIR/time.txt"
exit $rc
