#!/bin/bash
# Nothing lost: a finished run's checkpoint, resumed with a larger --epochs,
# extends it to a model file byte-identical to the longer uninterrupted
# run's, with shuffling, augmentation, dropout and momentum all in play and
# without repeating --test-limit (the checkpoint remembers every option); the
# history keeps the earlier epochs' numbers and wall times; options that
# contradict the checkpoint, a smaller --epochs than already trained and a
# final model given as a checkpoint are refused; a numeric fault stops with
# "epoch E, step S: ..." and exit 1 and leaves the model file untouched.
# (Stopping by signals and resuming mid-epoch: cli_signals.sh.)
# Usage: bash tests/cli_resume.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
syn_data 700 200
# a small net with state besides its weights: batchnorm statistics, and
# dropout drawing from the model RNG
cp "$SRC/tests/data/net_with_state.txt" net.txt

# a constant schedule: 2 epochs then 2 more are the same run as 4 at once
RUN=(--data syn --arch net.txt --batch 16 --val 100 --opt momentum --lr 0.02 --sched constant
     --augment --seed 5 --threads 2 --test-limit 150)

# 1. the uninterrupted 4-epoch run; with checkpoints on, the checkpoint is
# written at the end too
"$CNN" train "${RUN[@]}" --epochs 4 --checkpoint-every 2 --out a.safetensors --history a.csv > a.txt 2>&1 \
    || { echo "FAIL: the uninterrupted run"; cat a.txt; exit 1; }
[ -f a.safetensors.ckpt ] || { echo "FAIL: no final checkpoint a.safetensors.ckpt"; exit 1; }
grep -q "150 test images" a.txt || { echo "FAIL: --test-limit 150 not in effect"; cat a.txt; fail=1; }

# 2. a 2-epoch run, then extended to 4 from its final checkpoint; neither
# --test-limit nor any other run option is given again
"$CNN" train "${RUN[@]}" --epochs 2 --checkpoint-every 2 --out c.safetensors --history c.csv > c.txt 2>&1 \
    || { echo "FAIL: the 2-epoch run"; cat c.txt; exit 1; }
"$CNN" train --resume c.safetensors.ckpt --epochs 4 --out b.safetensors --threads 1 --history b.csv > b.txt 2>&1 \
    || { echo "FAIL: extending the finished run"; cat b.txt; exit 1; }
grep -q "resuming c.safetensors.ckpt at epoch 3, step 0 (the run extended from 2 to 4 epochs)" b.txt \
    || { echo "FAIL: the extension did not start at epoch 3"; cat b.txt; fail=1; }
grep -q "150 test images" b.txt || { echo "FAIL: the resumed run forgot --test-limit 150"; cat b.txt; fail=1; }
cmp a.safetensors b.safetensors || { echo "FAIL: the extended run's model differs from the 4-epoch run's"; fail=1; }
# the history: all four epochs with the uninterrupted run's numbers, and the
# first two epochs' wall times those the 2-epoch run measured
python3 - <<'PY' || fail=1
import csv, sys
a = list(csv.DictReader(open("a.csv"))); b = list(csv.DictReader(open("b.csv"))); c = list(csv.DictReader(open("c.csv")))
keys = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc")
if [[r[k] for k in keys] for r in a] != [[r[k] for k in keys] for r in b]:
    print("FAIL: histories differ"); print(a); print(b); sys.exit(1)
if [r["seconds"] for r in b[:2]] != [r["seconds"] for r in c]:
    print("FAIL: the earlier epochs' wall times were not kept:", [r["seconds"] for r in b[:2]], [r["seconds"] for r in c]); sys.exit(1)
if any(not float(r["seconds"]) >= 0 for r in b):
    print("FAIL: a wall time is missing:", [r["seconds"] for r in b]); sys.exit(1)
PY

# 3. resuming a finished run with its own epoch count trains nothing and
# writes the same model again
"$CNN" train --resume a.safetensors.ckpt --out e.safetensors > e.txt 2>&1 || { echo "FAIL: resuming a finished run"; cat e.txt; fail=1; }
grep -q "^epoch " e.txt && { echo "FAIL: a finished run trained again"; fail=1; }
cmp a.safetensors e.safetensors || { echo "FAIL: re-finishing a finished run changed its model"; fail=1; }

# a bare --resume writes the model next to its checkpoint (<out>.ckpt ->
# <out>), never where the checkpoint's metadata says
cp c.safetensors.ckpt bare.safetensors.ckpt
"$CNN" train --resume bare.safetensors.ckpt --epochs 3 > bare.txt 2>&1 || { echo "FAIL: a bare --resume"; cat bare.txt; fail=1; }
[ -f bare.safetensors ] && [ ! -e model.safetensors ] || { echo "FAIL: a bare --resume did not write bare.safetensors"; ls; fail=1; }
grep -q "(the run wrote --history c.csv; this one does not: give the option to continue it)" bare.txt \
    || { echo "FAIL: no note of the history the run wrote"; cat bare.txt; fail=1; }

# 4. refused: options that contradict the checkpoint (exit 2, naming both
# values), fewer epochs than done (2), a model file instead of a checkpoint (1)
expect 2 "--lr 0.5 conflicts with the checkpoint, which was made with --lr 0.02" -- \
    "$CNN" train --resume a.safetensors.ckpt --lr 0.5 --out x.safetensors
expect 2 "--test-limit 10 conflicts with the checkpoint, which was made with --test-limit 150" -- \
    "$CNN" train --resume a.safetensors.ckpt --test-limit 10 --out x.safetensors
expect 2 "--no-shuffle conflicts with the checkpoint, which was made without it" -- \
    "$CNN" train --resume a.safetensors.ckpt --no-shuffle --out x.safetensors
expect 2 "--epochs 3: the checkpoint a.safetensors.ckpt has already trained 4 epochs; give --epochs 4 or more" -- \
    "$CNN" train --resume a.safetensors.ckpt --epochs 3 --out x.safetensors
expect 1 "--resume: a.safetensors is a model file, not a checkpoint.*--init a.safetensors" -- \
    "$CNN" train --resume a.safetensors --epochs 6 --out x.safetensors
# the same values given again agree, even written differently
"$CNN" train --resume a.safetensors.ckpt --lr 0.020 --batch 16 --test-limit 150 --out y.safetensors > y.txt 2>&1 \
    || { echo "FAIL: agreeing options refused"; cat y.txt; fail=1; }

# 5. a numeric fault: exit 1, "epoch E, step S:", the old model untouched
echo "precious" > keep.safetensors
printf 'input 1x28x28\nconv 4 3x3\nrelu\nflatten\ndense 10\n' > linear.txt
"$CNN" train --data syn --arch linear.txt --epochs 3 --val 100 --opt sgd --lr 100 --loss mse --threads 2 \
    --out keep.safetensors > nan.txt 2>&1
rc=$?
if [ $rc != 1 ] || ! grep -Eq "^cnn train: epoch [0-9]+, step [0-9]+: " nan.txt; then
    echo "FAIL: a diverging run should stop with exit 1 and 'epoch E, step S:' (rc $rc)"; cat nan.txt; fail=1
fi
[ "$(head -c 8 keep.safetensors)" = precious ] || { echo "FAIL: the numeric fault overwrote the model file"; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_resume"
exit $fail
