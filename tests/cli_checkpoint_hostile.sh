#!/bin/bash
# A checkpoint's metadata is hostile input: each field of a real mid-epoch
# checkpoint is edited in turn (negative, out-of-range, junk text, counts
# that disagree with each other, NaN, a history that does not match the
# epoch, options that do not parse or contradict each other, an RNG state
# that is not 64 hex digits, a missing key) and `cnn train --resume` must
# refuse each with exit 1 and a message naming the checkpoint and the
# field: never crash, hang, or train on. Output paths a checkpoint holds
# are never written to.
# Usage: bash tests/cli_checkpoint_hostile.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
syn_data 700 200
printf 'input 1x28x28\nconv 4 3x3 pad=1\nrelu\nmaxpool 2\nflatten\ndropout 0.2\ndense 10\nsoftmax\n' > net.txt

# the checkpoint: a run stopped by SIGTERM part-way through
"$CNN" train --data syn --arch net.txt --batch 4 --val 100 --opt adam --lr 0.002 --seed 3 --threads 2 \
    --epochs 30 --out base.safetensors > base.txt 2>&1 &
pid=$!
for i in $(seq 1 1500); do grep -q "^epoch 1/" base.txt && break; sleep 0.02; done
kill -TERM $pid; wait $pid; rc=$?
[ $rc = 143 ] && [ -f base.safetensors.ckpt ] || { echo "FAIL: no checkpoint from the stopped run (exit $rc)"; cat base.txt; exit 1; }
# it resumes as it is (for one more epoch), so the edits are what is refused
"$CNN" train --resume base.safetensors.ckpt --epochs 31 --out good.safetensors > good.txt 2>&1 \
    || { echo "FAIL: the unedited checkpoint does not resume"; cat good.txt; exit 1; }

# Output paths in a checkpoint are never followed: one that names other
# files still resumes, writing next to the checkpoint and nowhere else
echo precious > victim.txt
python3 - <<'PY' || { echo "FAIL: could not write the redirected checkpoint"; exit 1; }
import json, struct
b = open("base.safetensors.ckpt", "rb").read(); n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
head["__metadata__"].update({"train.out.out": "victim.txt", "train.out.history": "victim.txt",
                             "train.out.plot": "../victim.svg"})
js = json.dumps(head, separators=(",", ":")).encode(); js += b" " * (-len(js) % 8)
open("redirect.safetensors.ckpt", "wb").write(struct.pack("<Q", len(js)) + js + b[8 + n:])
PY
"$CNN" train --resume redirect.safetensors.ckpt --epochs 31 > redirect.txt 2>&1 \
    || { echo "FAIL: a checkpoint naming other outputs does not resume"; cat redirect.txt; fail=1; }
[ "$(cat victim.txt)" = precious ] && [ ! -e ../victim.svg ] && [ -f redirect.safetensors ] \
    || { echo "FAIL: --resume wrote where the checkpoint said"; fail=1; }

# Each case: a file badN.ckpt and a line "N<tab>field" in cases.txt
python3 - <<'PY' || { echo "FAIL: could not write the edited checkpoints"; exit 1; }
import json, struct
b = open("base.safetensors.ckpt", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head, data = json.loads(b[8:8 + n]), b[8 + n:]
meta = head["__metadata__"]
epoch, step, seen = int(meta["train.epoch"]), int(meta["train.step"]), int(meta["train.seen"])
rows = meta["train.history"].split(";") if meta["train.history"] else []
steps = (600 + 3) // 4
cases = [
    ("train.epoch", "-1"), ("train.epoch", "31"), ("train.epoch", "1x"), ("train.epoch", " 1"),
    ("train.epoch", ""), ("train.epoch", "99999999999999999999999"), ("train.epoch", "1e1"),
    ("train.epoch", str(epoch + 1)),                     # the history then has too few rows
    ("train.step", "-1"), ("train.step", str(steps + 1)), ("train.step", "1000000000"),
    ("train.step", "abc"), ("train.step", "+3"),
    ("train.seen", str(seen + 4)), ("train.seen", "-4"), ("train.seen", "lots"),
    ("train.correct", str(seen + 1)), ("train.correct", "-1"), ("train.correct", "0x10"),
    ("train.loss_sum", "nan"), ("train.loss_sum", "inf"), ("train.loss_sum", "-1"),
    ("train.loss_sum", "1.5junk"), ("train.loss_sum", ""),
    ("train.data_rng", "xyz"), ("train.data_rng", "0" * 63), ("train.data_rng", "g" * 64),
    ("train.data_rng", "0" * 64), ("train.data_rng", " " + "1" * 63), ("train.data_rng", "-" + "1" * 63),
    ("train.history", ""), ("train.history", ";".join(rows[:-1])),
    ("train.history", ";".join(rows + rows[-1:])), ("train.history", "junk"),
    ("train.history", rows[0].replace("1,", "7,", 1) if rows else "7,0.1,1,1,1,1"),
    ("train.history", ";".join([rows[0].split(",", 2)[0] + "," + rows[0].split(",", 2)[1] + ",nan," + rows[0].split(",", 3)[3]] + rows[1:])),
    ("train.history", ";".join([",".join(rows[0].split(",")[:4] + ["nan", "nan"])] + rows[1:])),
    ("train.history", ";".join(rows) + ";"),
    ("train.seconds", ""), ("train.seconds", "-1" + meta["train.seconds"][meta["train.seconds"].find(","):] if "," in meta["train.seconds"] else "-1"),
    ("train.seconds", meta["train.seconds"] + ",1"), ("train.epoch_seconds", "nan"),
    ("train.opt.lr", "abc"), ("train.opt.lr", "0"), ("train.opt.lr", "-0.1"), ("train.opt.lr", "1e999"),
    ("train.opt.opt", "rmsprop"), ("train.opt.sched", "sometimes"), ("train.opt.loss", "l3"),
    ("train.opt.batch", "-3"), ("train.opt.batch", "4x"), ("train.opt.epochs", "0"),
    ("train.opt.epochs", str(epoch + (step > 0) - 1)),  # fewer than the epochs begun
    ("train.opt.val", "100000000"), ("train.opt.val", "-5"), ("train.opt.momentum", "0.5"),
    ("train.opt.min-lr", "0.5"), ("train.opt.lr-gamma", "0"), ("train.opt.kernels", "gpu"),
    ("train.opt.init-weights", "zeros"), ("train.opt.dataset", "cifar"), ("train.opt.no-shuffle", "yes"),
    ("train.opt.seed", "-1"), ("train.opt.limit", "1.5"), ("train.opt.test-limit", "x"),
    ("train.out.threads", "many"), ("train.out.checkpoint-every", "-1"), ("train.out.out", ""),
    ("train.step", None), ("train.history", None), ("train.data_rng", None), ("train.opt.test-limit", None),
    ("train.seconds", None),
]
with open("cases.txt", "w") as f:
    for i, (k, v) in enumerate(cases):
        m = dict(meta)
        if v is None: del m[k]
        else: m[k] = v
        h = dict(head); h["__metadata__"] = m
        js = json.dumps(h, separators=(",", ":")).encode()
        js += b" " * (-len(js) % 8)
        open("bad%d.ckpt" % i, "wb").write(struct.pack("<Q", len(js)) + js + data)
        # the field a message must name; a removed train.seconds makes the
        # file a final model's
        f.write("%d\t%s\n" % (i, "not a checkpoint" if k == "train.seconds" and v is None else k))
PY

while IFS=$'\t' read -r i field; do
    timeout 60 "$CNN" train --resume bad$i.ckpt --out out$i.safetensors > out$i.txt 2>&1
    rc=$?
    if [ $rc = 124 ]; then
        echo "FAIL: bad$i.ckpt ($field): hung"; fail=1
    elif [ $rc != 1 ]; then
        echo "FAIL: bad$i.ckpt ($field): exit $rc, expected 1"; sed 's/^/    /' out$i.txt | head -5; fail=1
    elif ! grep -q -- "bad$i.ckpt" out$i.txt || ! grep -qF -- "$field" out$i.txt; then
        echo "FAIL: bad$i.ckpt: the message does not name the checkpoint and '$field'"; sed 's/^/    /' out$i.txt | head -5; fail=1
    elif grep -q "^epoch " out$i.txt || [ -e out$i.safetensors ]; then
        echo "FAIL: bad$i.ckpt ($field): refused only after training"; fail=1
    fi
done < cases.txt
echo "$(wc -l < cases.txt) edited checkpoints tried"

[ $fail = 0 ] && echo "PASS: cli_checkpoint_hostile"
exit $fail
