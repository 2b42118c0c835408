#!/bin/bash
# Nothing lost: a run resumed from its checkpoint (at an epoch boundary, and
# mid-epoch after Ctrl-C) ends with a model file byte-identical to the
# uninterrupted run's, with shuffling, augmentation, dropout and momentum all
# in play; a numeric fault stops with "epoch E, step S: ..." and exit 1 and
# leaves the existing model file untouched.
# Usage: bash tests/cli_resume.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T"

python3 - <<'PY' || { echo "FAIL: could not write the synthetic data"; exit 1; }
import os, random, struct
random.seed(11)
def image(k):
    px = bytearray(random.randrange(0, 40) for _ in range(28 * 28))
    x0 = 1 + (k % 5) * 5 + random.randrange(-1, 2); y0 = 4 + (k // 5) * 12 + random.randrange(-1, 2)
    for y in range(y0, y0 + 6):
        for x in range(max(0, x0), min(28, x0 + 6)): px[y * 28 + x] = random.randrange(180, 256)
    return bytes(px)
os.mkdir("syn")
for prefix, n in (("train", 700), ("t10k", 200)):
    labels = [random.randrange(10) for _ in range(n)]
    with open("syn/%s-images-idx3-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        for k in labels: f.write(image(k))
    with open("syn/%s-labels-idx1-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">II", 0x801, n)); f.write(bytes(labels))
PY
cat > net.txt <<'NET'
input 1x28x28
conv 8 3x3 pad=1
batchnorm
relu
maxpool 2
flatten
dropout 0.2
dense 10
softmax
NET

RUN=(--data syn --arch net.txt --batch 16 --val 100 --opt momentum --lr 0.02 --augment --seed 5 --threads 2)

# 1. the uninterrupted run, checkpointing every 2 epochs
"$CNN" train "${RUN[@]}" --epochs 4 --checkpoint-every 2 --out a.safetensors --history a.csv > a.txt 2>&1 \
    || { echo "FAIL: the uninterrupted run"; cat a.txt; exit 1; }
[ -f a.safetensors.ckpt ] || { echo "FAIL: no checkpoint a.safetensors.ckpt"; exit 1; }
# 2. resume from the epoch-2 checkpoint: the options come from it
"$CNN" train --resume a.safetensors.ckpt --out b.safetensors --threads 2 --history b.csv > b.txt 2>&1 \
    || { echo "FAIL: the resumed run"; cat b.txt; exit 1; }
grep -q "resuming a.safetensors.ckpt at epoch 3" b.txt || { echo "FAIL: resume did not start at epoch 3"; cat b.txt; fail=1; }
cmp a.safetensors b.safetensors || { echo "FAIL: resumed model differs from the uninterrupted one"; fail=1; }
# the resumed history holds all four epochs with the same numbers
python3 - <<'PY' || fail=1
import csv, sys
a = list(csv.DictReader(open("a.csv"))); b = list(csv.DictReader(open("b.csv")))
keys = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc")
if [[r[k] for k in keys] for r in a] != [[r[k] for k in keys] for r in b]:
    print("FAIL: histories differ"); print(a); print(b); sys.exit(1)
PY
# an option that contradicts the checkpoint is refused
"$CNN" train --resume a.safetensors.ckpt --lr 0.5 --out c.safetensors > c.txt 2>&1
rc=$?
[ $rc = 2 ] && grep -q -- "--lr 0.5 conflicts with the checkpoint" c.txt || { echo "FAIL: conflicting --lr on resume (rc $rc)"; cat c.txt; fail=1; }

# 3. Ctrl-C mid-run: a checkpoint, a message saying how to resume, exit 130;
# resuming it gives the uninterrupted run's file
LONG=("${RUN[@]}" --epochs 4 --batch 4)
"$CNN" train "${LONG[@]}" --out full.safetensors > full.txt 2>&1 || { echo "FAIL: the long run"; cat full.txt; exit 1; }
"$CNN" train "${LONG[@]}" --out int.safetensors > int.txt 2>&1 &
pid=$!
# wait for the first epoch, then interrupt
for i in $(seq 1 200); do grep -q "^epoch 1/" int.txt && break; sleep 0.05; done
sleep 0.3
kill -INT $pid
wait $pid; rc=$?
if [ $rc = 0 ]; then
    echo "SKIP (part): the run finished before Ctrl-C arrived"
elif [ $rc != 130 ]; then
    echo "FAIL: interrupted run exited $rc, expected 130"; cat int.txt; fail=1
else
    grep -q "checkpoint saved to int.safetensors.ckpt" int.txt && grep -q "Resume with: cnn train --resume int.safetensors.ckpt" int.txt \
        || { echo "FAIL: the interrupt message"; cat int.txt; fail=1; }
    [ -f int.safetensors ] && { echo "FAIL: an interrupted run wrote its final model"; fail=1; }
    "$CNN" train --resume int.safetensors.ckpt --out int.safetensors --threads 2 > res.txt 2>&1 \
        || { echo "FAIL: resuming after Ctrl-C"; cat res.txt; fail=1; }
    grep resuming res.txt
    if ! cmp full.safetensors int.safetensors; then
        echo "FAIL: the model resumed after Ctrl-C differs"; fail=1
        python3 - <<'PY'
import json, struct
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
(ha, da), (hb, db) = load("full.safetensors"), load("int.safetensors")
ma, mb = ha.pop("__metadata__"), hb.pop("__metadata__")
for k in sorted(set(ma) | set(mb)):
    if ma.get(k) != mb.get(k): print("  metadata %s: %.200s | %.200s" % (k, ma.get(k), mb.get(k)))
for k in ha:
    if da[slice(*ha[k]["data_offsets"])] != db[slice(*hb[k]["data_offsets"])]: print("  tensor %s differs" % k)
PY
    fi
fi

# 4. a numeric fault: exit 1, "epoch E, step S:", the old model untouched
echo "precious" > keep.safetensors
printf 'input 1x28x28\nconv 4 3x3\nrelu\nflatten\ndense 10\n' > linear.txt
"$CNN" train --data syn --arch linear.txt --epochs 3 --val 100 --lr 100 --loss mse --threads 2 --out keep.safetensors > nan.txt 2>&1
rc=$?
if [ $rc != 1 ] || ! grep -Eq "^cnn train: epoch [0-9]+, step [0-9]+: " nan.txt; then
    echo "FAIL: a diverging run should stop with exit 1 and 'epoch E, step S:' (rc $rc)"; cat nan.txt; fail=1
fi
[ "$(head -c 8 keep.safetensors)" = precious ] || { echo "FAIL: the numeric fault overwrote the model file"; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_resume"
exit $fail
