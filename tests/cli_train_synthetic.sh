#!/bin/bash
# A small training run on a synthetic IDX data set written here: the loss
# falls, --history and --plot hold one point per epoch per series (the SVG
# is well-formed XML), and `cnn eval`'s report agrees with precision, recall,
# F1 and accuracy counted independently from its --predictions CSV.
# Usage: bash tests/cli_train_synthetic.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"

# the synthetic data set, the test files gzipped
syn_data 1200 400 28 gz

"$CNN" train --data syn --arch simplecnn --epochs 4 --batch 32 --val 200 --opt momentum --lr 0.02 \
    --threads 2 --out m.safetensors --history h.csv --plot p.svg > train.txt 2>&1
rc=$?
if [ $rc != 0 ]; then echo "FAIL: cnn train exited $rc"; cat train.txt; exit 1; fi
grep -q "^epoch 1/4  lr 0.0200  train loss" train.txt || { echo "FAIL: no per-epoch line"; cat train.txt; fail=1; }
grep -q "^Class  *Precision  *Recall  *F1-Score  *Support" train.txt || { echo "FAIL: train printed no report"; fail=1; }
grep -Eq "^Training: .* images/s" train.txt || { echo "FAIL: no throughput line"; fail=1; }

python3 - <<'PY' || fail=1
import csv, math, sys, xml.etree.ElementTree as ET
rows = list(csv.DictReader(open("h.csv")))
ok = True
def bad(msg):
    global ok; print("FAIL:", msg); ok = False
if [r["epoch"] for r in rows] != ["1", "2", "3", "4"]: bad("history epochs %r" % [r["epoch"] for r in rows])
loss = [float(r["train_loss"]) for r in rows]
if not loss[-1] < 0.5 * loss[0]: bad("train loss did not fall: %r" % loss)
if float(rows[-1]["val_acc"]) < 90: bad("val accuracy %s%% < 90%%" % rows[-1]["val_acc"])
for r in rows:
    for k in ("lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"):
        if not math.isfinite(float(r[k])): bad("history %s = %s" % (k, r[k]))
svg = ET.parse("p.svg").getroot()   # raises if not well-formed
ns = "{http://www.w3.org/2000/svg}"
if svg.tag != ns + "svg": bad("root is %s" % svg.tag)
for series in ("train-loss", "validation-loss", "train-acc", "validation-acc"):
    pts = [c for c in svg.iter(ns + "circle") if series in c.get("class", "").split()]
    if len(pts) != 4: bad("%s has %d points, expected 4" % (series, len(pts)))
    lines = [p for p in svg.iter(ns + "polyline") if p.get("class") == series]
    if len(lines) != 1 or len(lines[0].get("points").split()) != 4: bad("%s polyline" % series)
texts = " ".join(t.text or "" for t in svg.iter(ns + "text"))
for word in ("Loss", "Accuracy", "epoch", "train", "validation"):
    if word not in texts: bad("the SVG has no '%s' label" % word)
sys.exit(0 if ok else 1)
PY

"$CNN" eval --model m.safetensors --data syn --predictions pred.csv --threads 2 > eval.txt 2>&1 \
    || { echo "FAIL: cnn eval"; cat eval.txt; exit 1; }
python3 - <<'PY' || fail=1
import csv, re, sys
ok = True
def bad(msg):
    global ok; print("FAIL:", msg); ok = False
rows = list(csv.DictReader(open("pred.csv")))
if len(rows) != 400: bad("%d prediction rows, expected 400" % len(rows))
y = [int(r["label"]) for r in rows]; p = [int(r["predicted"]) for r in rows]
for r in rows:
    probs = [float(r["p%d" % j]) for j in range(10)]
    if abs(sum(probs) - 1) > 1e-3: bad("row %s: probabilities sum to %g" % (r["index"], sum(probs)))
    if max(range(10), key=lambda j: probs[j]) != int(r["predicted"]): bad("row %s: predicted is not the arg-max" % r["index"])
# the metrics, counted here
stats = {}
for k in range(10):
    tp = sum(1 for a, b in zip(y, p) if a == k and b == k)
    sup = y.count(k); pred = p.count(k)
    pr = tp / pred if pred else 0.0; rc = tp / sup if sup else 0.0
    f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
    stats[str(k)] = (pr, rc, f1, sup)
n = len(y); acc = sum(a == b for a, b in zip(y, p)) / n
macro = [sum(s[i] for s in stats.values()) / 10 for i in range(3)]
weighted = [sum(s[i] * s[3] for s in stats.values()) / n for i in range(3)]
text = open("eval.txt").read()
def row(name):
    m = re.search(r"^%s +(.*)$" % re.escape(name), text, re.M)
    if not m: bad("no report row '%s'" % name); return None
    return m.group(1).split()
def close(a, b): return abs(float(a) - b) <= 0.0051
for k, (pr, rc, f1, sup) in stats.items():
    got = row(k)
    if got and not (close(got[0], pr) and close(got[1], rc) and close(got[2], f1) and int(got[3]) == sup):
        bad("class %s: report %r, counted %.2f %.2f %.2f %d" % (k, got, pr, rc, f1, sup))
got = row("Accuracy")
if got and not (close(got[0], acc) and int(got[1]) == n): bad("accuracy: report %r, counted %.4f" % (got, acc))
for name, vals in (("Macro avg", macro), ("Weighted avg", weighted)):
    got = row(name)
    if got and not (all(close(g, v) for g, v in zip(got[:3], vals)) and int(got[3]) == n):
        bad("%s: report %r, counted %r" % (name, got, vals))
m = re.search(r"Test accuracy: ([0-9.]+)% \((\d+) of (\d+)\)", text)
if not m or int(m.group(2)) != sum(a == b for a, b in zip(y, p)) or int(m.group(3)) != n: bad("Test accuracy line")
# the confusion matrix, row by row
lines = text.split("Confusion matrix")[1].splitlines()[2:12]
for k in range(10):
    cells = [int(v) for v in lines[k].split()[1:]]
    want = [sum(1 for a, b in zip(y, p) if a == k and b == j) for j in range(10)]
    if cells != want: bad("confusion row %d: %r, counted %r" % (k, cells, want))
sys.exit(0 if ok else 1)
PY

# --test-limit and --kernels ref give the same predictions as fast kernels
"$CNN" eval --model m.safetensors --data syn --test-limit 50 --kernels ref --predictions ref.csv > /dev/null 2>&1 \
    || { echo "FAIL: cnn eval --kernels ref"; fail=1; }
python3 - <<'PY' || fail=1
import csv, sys
a = list(csv.DictReader(open("pred.csv")))[:50]; b = list(csv.DictReader(open("ref.csv")))
if len(b) != 50: print("FAIL: --test-limit 50 gave %d rows" % len(b)); sys.exit(1)
for r, s in zip(a, b):
    if r["predicted"] != s["predicted"] or any(abs(float(r["p%d" % j]) - float(s["p%d" % j])) > 1e-4 for j in range(10)):
        print("FAIL: ref and fast kernels disagree on image", r["index"]); sys.exit(1)
PY

# info on the saved model shows what training stored
"$CNN" info --model m.safetensors > info.txt 2>&1 || { echo "FAIL: cnn info --model"; fail=1; }
grep -q "norm_mean" info.txt && grep -q "dataset  *custom" info.txt || { echo "FAIL: model metadata"; cat info.txt; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_train_synthetic"
exit $fail
