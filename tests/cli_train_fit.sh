#!/bin/bash
# What Keras users expect of fit: --val as a fraction (the right count,
# recorded as given), --early-stop N stopping at the first epoch N epochs
# past the lowest validation loss (computed here from the history), the
# best epoch's model kept in <out stem>.best.safetensors (its weights those
# of a run trained for exactly that many epochs) while <out> is the last;
# refusals without a validation set (exit 2); a run extended from a
# checkpoint on either side of its best epoch ends with the uninterrupted
# run's model and best model; and checkpoints that contradict early
# stopping are refused naming the field (exit 1).
# Usage: bash tests/cli_train_fit.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
syn_data 700 200
# random labels: nothing to learn, so the validation loss soon rises
python3 - <<'PY' || { echo "FAIL: could not write the random-label data"; exit 1; }
import os, random, struct
random.seed(3)
os.makedirs("rnd")
for prefix, n in (("train", 500), ("t10k", 100)):
    with open("rnd/%s-images-idx3-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        f.write(bytes(random.randrange(256) for _ in range(n * 784)))
    with open("rnd/%s-labels-idx1-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">II", 0x801, n)); f.write(bytes(random.randrange(10) for _ in range(n)))
PY
# a python helper: the tensors of a model file (everything after the header)
# and one metadata value
cat > st.py <<'PY'
import json, struct, sys
def read(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
if sys.argv[1] == "meta":
    print(read(sys.argv[2])[0]["__metadata__"].get(sys.argv[3], "(none)"))
elif sys.argv[1] == "same-weights":
    (ha, da), (hb, db) = read(sys.argv[2]), read(sys.argv[3])
    ta = {k: v for k, v in ha.items() if k != "__metadata__"}
    tb = {k: v for k, v in hb.items() if k != "__metadata__"}
    sys.exit(0 if ta == tb and da == db else 1)
PY

# 1. --val as a fraction: rounded to the nearest image, recorded as given
SYN=(--data syn --arch simplecnn --epochs 1 --batch 32 --threads 2 --test-limit 20)
expect 0 "630 training, 70 validation, 20 test images" -- "$CNN" train "${SYN[@]}" --val 0.1 --out f.safetensors
[ "$(python3 st.py meta f.safetensors train.opt.val)" = 0.1 ] || { echo "FAIL: --val 0.1 not recorded as 0.1"; fail=1; }
expect 0 "595 training, 105 validation" -- "$CNN" train "${SYN[@]}" --val 0.15 --out g.safetensors
expect 0 "699 training, 1 validation" -- "$CNN" train "${SYN[@]}" --val 0.0015 --out g.safetensors
expect 0 "650 training, 50 validation" -- "$CNN" train "${SYN[@]}" --val 50 --out g.safetensors
expect 2 "--val: 0.0001 of 700 images is no image" -- "$CNN" train "${SYN[@]}" --val 0.0001 --out g.safetensors
expect 2 "--val: expected a whole number of images or a fraction below 1, got 1.5" -- \
    "$CNN" train "${SYN[@]}" --val 1.5 --out g.safetensors
expect 2 "--val: expected a number from 0 to" -- "$CNN" train "${SYN[@]}" --val -0.1 --out g.safetensors
# early stopping and the best model need a validation set
expect 2 "--early-stop: needs a validation set" -- "$CNN" train "${SYN[@]}" --val 0 --early-stop 2 --out g.safetensors
expect 2 "--best: needs a validation set" -- "$CNN" train "${SYN[@]}" --val 0 --best b.safetensors --out g.safetensors
expect 2 "--best g.safetensors and --out g.safetensors name the same file|--out g.safetensors and --best g.safetensors name the same file" -- \
    "$CNN" train "${SYN[@]}" --best g.safetensors --out g.safetensors

# 2. early stopping on random labels: 30 epochs at most, patience 3; a
# constant schedule, so that a run of E epochs is the first E epochs of it
RUN=(--data rnd --arch simplecnn --val 100 --batch 16 --opt adam --lr 0.002 --sched constant
     --early-stop 3 --seed 3 --threads 2)
"$CNN" train "${RUN[@]}" --epochs 30 --checkpoint-every 1 --out a.safetensors --history a.csv > a.txt 2>&1 \
    || { echo "FAIL: the early-stopping run"; cat a.txt; exit 1; }
read -r stop best < <(python3 - <<'PY'
import csv
rows = list(csv.DictReader(open("a.csv")))
loss = [float(r["val_loss"]) for r in rows]
# Keras's rule: stop once `patience` epochs have passed since the lowest
stop, best = None, None
for e in range(1, 31):
    b = min(range(e), key=lambda i: (loss[i], i)) + 1 if e <= len(loss) else None
    if b is not None and e - b >= 3: stop, best = e, b; break
print(stop, best)
PY
)
rows=$(($(wc -l < a.csv) - 1))
if [ -z "$stop" ] || [ "$stop" = None ] || [ "$rows" != "$stop" ]; then
    echo "FAIL: the run trained $rows epochs; its history says it should stop after epoch $stop"; cat a.txt; fail=1
fi
grep -q "^Stopped early after epoch $stop of 30: no lower validation loss in 3 epochs (the lowest, [0-9.]*, at epoch $best)" a.txt \
    || { echo "FAIL: no early-stop message for epoch $stop (best $best)"; cat a.txt; fail=1; }
grep -q "^Saved the best model (epoch $best, validation loss [0-9.]*) to a.best.safetensors" a.txt \
    || { echo "FAIL: the best model was not saved to a.best.safetensors"; cat a.txt; fail=1; }
[ "$(python3 st.py meta a.safetensors train.epoch)" = "$stop" ] || { echo "FAIL: a.safetensors is not epoch $stop's model"; fail=1; }
[ "$(python3 st.py meta a.best.safetensors train.epoch)" = "$best" ] || { echo "FAIL: a.best.safetensors is not epoch $best's model"; fail=1; }
# the best model's weights are those of a run of exactly $best epochs
"$CNN" train "${RUN[@]}" --epochs "$best" --out exact.safetensors > exact.txt 2>&1 || { echo "FAIL: the $best-epoch run"; cat exact.txt; fail=1; }
python3 st.py same-weights a.best.safetensors exact.safetensors \
    || { echo "FAIL: the best model's weights are not those after epoch $best"; fail=1; }
python3 st.py same-weights a.safetensors exact.safetensors && [ "$stop" != "$best" ] \
    && { echo "FAIL: the last model is the best one"; fail=1; }
# --best names the file
"$CNN" train "${RUN[@]}" --epochs 30 --best named.safetensors --out n.safetensors > n.txt 2>&1 || { echo "FAIL: --best FILE"; fail=1; }
cmp -s named.safetensors a.best.safetensors && [ ! -e n.best.safetensors ] || { echo "FAIL: --best named.safetensors"; fail=1; }

# 3. extended from a checkpoint before the best epoch and after it (the
# run must then remember that it is waiting): the same last model, byte for
# byte; the same best model (byte for byte when the resumed run wrote it)
for k in $((best - 1)) $((best + 1)); do
    [ "$k" -ge 1 ] && [ "$k" -lt "$stop" ] || continue
    "$CNN" train "${RUN[@]}" --epochs "$k" --checkpoint-every "$k" --out b$k.safetensors > b$k.txt 2>&1 \
        || { echo "FAIL: the $k-epoch run"; cat b$k.txt; fail=1; continue; }
    "$CNN" train --resume b$k.safetensors.ckpt --epochs 30 > r$k.txt 2>&1 \
        || { echo "FAIL: extending the $k-epoch run"; cat r$k.txt; fail=1; continue; }
    cmp a.safetensors b$k.safetensors || { echo "FAIL: resumed after epoch $k: the last model differs"; fail=1; }
    if [ "$k" -lt "$best" ]; then
        cmp a.best.safetensors b$k.best.safetensors || { echo "FAIL: resumed after epoch $k: the best model differs"; fail=1; }
    else
        python3 st.py same-weights a.best.safetensors b$k.best.safetensors \
            || { echo "FAIL: resumed after epoch $k: the best model's weights differ"; fail=1; }
        grep -q "Saved the best model (epoch $best, .*(by the run this one resumed)" r$k.txt \
            || { echo "FAIL: resumed after epoch $k: no note of the earlier best model"; cat r$k.txt; fail=1; }
    fi
    grep -q "^Stopped early after epoch $stop of 30" r$k.txt || { echo "FAIL: resumed after epoch $k: no early stop"; fail=1; }
done
# the finished run's checkpoint: resuming it stops again at once, same model
"$CNN" train --resume a.safetensors.ckpt --out again.safetensors > again.txt 2>&1 || { echo "FAIL: resuming the stopped run"; cat again.txt; fail=1; }
grep -q "^epoch " again.txt && { echo "FAIL: a run that stopped early trained again"; fail=1; }
cmp a.safetensors again.safetensors || { echo "FAIL: resuming the stopped run changed its model"; fail=1; }
expect 2 "--early-stop 5 conflicts with the checkpoint, which was made with --early-stop 3" -- \
    "$CNN" train --resume a.safetensors.ckpt --early-stop 5 --out x.safetensors

# 4. hostile checkpoints: the early-stop option and a history or step that
# contradicts it are refused naming the field, before any training
python3 - "$stop" <<'PY' || { echo "FAIL: could not write the edited checkpoints"; exit 1; }
import json, struct, sys
b = open("a.safetensors.ckpt", "rb").read(); n = struct.unpack("<Q", b[:8])[0]
head, data = json.loads(b[8:8 + n]), b[8 + n:]
cases = [("train.opt.early-stop", "x", "train.opt.early-stop"), ("train.opt.early-stop", "-1", "train.opt.early-stop"),
         ("train.opt.early-stop", "1", "train.history"), ("train.opt.early-stop", "2", "train.history"),
         ("step", None, "train.step")]
with open("cases.txt", "w") as f:
    for i, (k, v, field) in enumerate(cases):
        m = dict(head["__metadata__"])
        if k == "step":   # a step into the epoch after the stop, with sums that fit it
            m.update({"train.step": "1", "train.seen": "16", "train.correct": "0", "train.loss_sum": "30"})
        else:
            m[k] = v
        h = dict(head); h["__metadata__"] = m
        js = json.dumps(h, separators=(",", ":")).encode(); js += b" " * (-len(js) % 8)
        open("bad%d.ckpt" % i, "wb").write(struct.pack("<Q", len(js)) + js + data)
        f.write("%d\t%s\n" % (i, field))
# an older checkpoint without the option resumes as a run without early stopping
m = dict(head["__metadata__"]); del m["train.opt.early-stop"]
h = dict(head); h["__metadata__"] = m
js = json.dumps(h, separators=(",", ":")).encode(); js += b" " * (-len(js) % 8)
open("old.ckpt", "wb").write(struct.pack("<Q", len(js)) + js + data)
PY
while IFS=$'\t' read -r i field; do
    timeout 60 "$CNN" train --resume bad$i.ckpt --out out$i.safetensors > out$i.txt 2>&1
    rc=$?
    if [ $rc != 1 ] || ! grep -q "bad$i.ckpt" out$i.txt || ! grep -qF -- "$field" out$i.txt || grep -q "^epoch " out$i.txt; then
        echo "FAIL: bad$i.ckpt ($field): exit $rc"; sed 's/^/    /' out$i.txt | head -5; fail=1
    fi
done < cases.txt
"$CNN" train --resume old.ckpt --epochs $((stop + 1)) --out old.safetensors > old.txt 2>&1 \
    && grep -q "^epoch $((stop + 1))/" old.txt || { echo "FAIL: a checkpoint without train.opt.early-stop"; cat old.txt; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_train_fit (stopped after epoch $stop, best $best)"
exit $fail
