#!/bin/bash
# Models of many classes and the names they carry: predict, eval and info on
# 300- and 1000-output models trained here on a 10-class synthetic IDX set;
# the report of a large model stays short (the classes that occur, their
# matrix or the most frequent confusions); class-name metadata that is
# short, long, has commas, repeats or is not UTF-8 is used or refused up
# front; labels beyond the outputs are refused before work; non-finite
# results (overflowing weights, a zero or denormal std) are errors naming
# the layer or the field, never a report.
# Usage: bash tests/cli_classes.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"

# Ten classes of 28x28 pictures (a bright square at one of ten places), and
# a few of them as PGM files for predict.
python3 - <<'PY' || { echo "FAIL: could not write the synthetic data"; exit 1; }
import os, random, struct
random.seed(11)
def image(k):
    px = bytearray(random.randrange(0, 30) for _ in range(28 * 28))
    x0, y0 = 2 + (k % 5) * 5, 4 + (k // 5) * 12
    for y in range(y0, y0 + 6):
        for x in range(x0, x0 + 6):
            px[y * 28 + x] = random.randrange(200, 256)
    return bytes(px)
def write(prefix, labels):
    imgs = [image(k) for k in labels]
    with open(prefix + "-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(labels), 28, 28)); f.write(b"".join(imgs))
    with open(prefix + "-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels))); f.write(bytes(labels))
    return imgs
os.mkdir("syn")
write("syn/train", [random.randrange(10) for _ in range(300)])
test = write("syn/t10k", [i % 10 for i in range(60)])
for i in range(3):
    open("p%d.pgm" % i, "wb").write(b"P5\n28 28\n255\n" + test[i])
PY

# safetensors metadata and weights rewritten by hand
cat > st.py <<'PY'
import json, os, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
def save(path, header, data, raw=None):
    h = json.dumps(header).encode()
    if raw:  # replace a placeholder with raw bytes (not valid UTF-8 JSON text)
        h = h.replace(b"@RAW@", raw)
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
def meta(src, dst, key, value, raw=None):
    h, d = load(src)
    h["__metadata__"][key] = value
    save(dst, h, d, raw)
def fill(src, dst, value):
    h, d = load(src)
    d = bytearray(d)
    for k, v in h.items():
        if k == "__metadata__": continue
        b, e = v["data_offsets"]
        d[b:e] = struct.pack("<f", value) * ((e - b) // 4)
    save(dst, h, bytes(d))
if __name__ == "__main__":
    if sys.argv[1] == "meta":
        raw = os.fsencode(sys.argv[6]) if len(sys.argv) > 6 else None
        meta(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], raw)
    else:
        fill(sys.argv[2], sys.argv[3], float(sys.argv[4]))
PY

printf 'input 1x28x28\nflatten\ndense 300\n' > a300.txt
printf 'input 1x28x28\nconv 4 3x3 pad=1\nrelu\nflatten\ndense 1000\n' > a1000.txt
"$CNN" train --data syn --arch a300.txt --epochs 3 --val 20 --opt adam --lr 0.01 --threads 2 \
    --out m300.safetensors > train300.txt 2>&1 \
    || { echo "FAIL: training the 300-class model"; cat train300.txt; exit 1; }
# a barely trained 1000-class model: its predictions spread over many classes
"$CNN" train --data syn --arch a1000.txt --epochs 1 --val 20 --lr 1e-9 --threads 2 \
    --out m1000.safetensors > train1000.txt 2>&1 \
    || { echo "FAIL: training the 1000-class model"; cat train1000.txt; exit 1; }

# ---- predict, eval, info on many classes
# (predict's MNIST preprocessing centres the squares, so which class wins
# is not the point here: that every class can, with its name)
expect 0 "^p0.pgm: [0-9]+ \([0-9.]+%\)$" -- "$CNN" predict --model m300.safetensors p0.pgm p1.pgm p2.pgm
[ "$(grep -c '^p[0-2].pgm: ' out.txt)" = 3 ] || { echo "FAIL: predict on the 300-class model"; cat out.txt; fail=1; }
# the top 5 by default for a large model, all 300 on request
[ "$(sed -n 2p out.txt | wc -w)" = 10 ] || { echo "FAIL: predict's default --top on 300 classes"; cat out.txt; fail=1; }
expect 0 "^p0.pgm: " -- "$CNN" predict --model m300.safetensors --top 0 p0.pgm
[ "$(sed -n 2p out.txt | wc -w)" = 600 ] || { echo "FAIL: predict --top 0 lists $(sed -n 2p out.txt | wc -w) words, not 300 classes"; fail=1; }
expect 0 "^p0.pgm: " -- "$CNN" predict --model m1000.safetensors --top 1000 --grid g.png p0.pgm p1.pgm
[ -s g.png ] || { echo "FAIL: no grid for the 1000-class model"; fail=1; }

expect 0 "Test accuracy: " -- "$CNN" eval --model m300.safetensors --data syn --predictions p300.csv
# the classes that occur are listed, with their matrix; the rest summed up
grep -Eq "^\(1[0-9] of the model's 300 classes occur" out.txt || { echo "FAIL: 300-class report summary line"; cat out.txt; fail=1; }
grep -q "^Confusion matrix" out.txt || { echo "FAIL: 300-class report has no matrix of the classes that occur"; fail=1; }
[ "$(wc -l < out.txt)" -lt 80 ] || { echo "FAIL: the 300-class report is $(wc -l < out.txt) lines"; fail=1; }
head -1 p300.csv | grep -q ",p299$" || { echo "FAIL: --predictions lacks p299"; fail=1; }

expect 0 "Most frequent confusions" -- "$CNN" eval --model m1000.safetensors --data syn --predictions p1000.csv
[ "$(wc -c < out.txt)" -lt 20000 ] || { echo "FAIL: the 1000-class report is $(wc -c < out.txt) bytes"; fail=1; }
grep -q "Confusion matrix" out.txt && { echo "FAIL: a matrix printed for a 1000-class model with many classes occurring"; fail=1; }
# predictions above 255 are kept whole (they were bytes), and agree with the CSV
python3 - <<'PY' || fail=1
import csv, re, sys
rows = list(csv.DictReader(open("p1000.csv")))
pred = [int(r["predicted"]) for r in rows]
probs = [[float(r["p%d" % j]) for j in range(1000)] for r in rows]
ok = all(max(range(1000), key=lambda j: p[j]) == q for p, q in zip(probs, pred))
if not ok: print("FAIL: predicted is not the arg-max of 1000 probabilities"); sys.exit(1)
if max(pred) < 256: print("FAIL: no prediction above 255 to check (max %d)" % max(pred)); sys.exit(1)
text = open("out.txt").read()
listed = 0
for m in re.finditer(r"^ +(\d+)  true (\d+) predicted as (\d+)$", text, re.M):
    n, t, p = int(m.group(1)), int(m.group(2)), int(m.group(3))
    listed += 1
    want = sum(1 for r, q in zip(rows, pred) if int(r["label"]) == t and q == p)
    if n != want: print("FAIL: confusion %d->%d counted %d, listed %d" % (t, p, want, n)); sys.exit(1)
if listed == 0: print("FAIL: no confusion listed"); sys.exit(1)
PY

expect 0 "dense 1000 +1000 +3,137,000 " -- "$CNN" info --model m1000.safetensors
expect 0 "classes +0,1,2,3,4,5,6,7,8,9$" -- "$CNN" info --model m300.safetensors

# ---- class names stored in the model
python3 st.py meta m300.safetensors short.safetensors classes "zero,one,two"
expect 0 "^  (.* )?two [0-9.]+%" -- "$CNN" predict --model short.safetensors --top 0 p0.pgm
grep -Eq "^  (.* )?299 [0-9.]+%" out.txt || { echo "FAIL: outputs past the names in predict"; fail=1; }
# every class of a model whose names are all given, by its name
python3 st.py meta m300.safetensors all.safetensors classes "$(python3 -c "print(','.join('c%d' % i for i in range(300)))")"
expect 0 "^p0.pgm: c[0-9]+ \(" -- "$CNN" predict --model all.safetensors --top 300 p0.pgm
[ "$(sed -n 2p out.txt | grep -o ' c[0-9]* ' | sort -u | wc -l)" = 300 ] || { echo "FAIL: 300 named classes"; fail=1; }
expect 0 "^two  +[01]\.[0-9]{2} " -- "$CNN" eval --model short.safetensors --data syn
grep -Eq "^3 +[01]\.[0-9]{2} " out.txt || { echo "FAIL: outputs past the names are named by index"; cat out.txt; fail=1; }

long=$(python3 -c "print('n' * 100)")
python3 st.py meta m300.safetensors long.safetensors classes "$long,b,c"
expect 0 "^$long +[01]\.[0-9]{2} " -- "$CNN" eval --model long.safetensors --data syn
python3 st.py meta m300.safetensors toolong.safetensors classes "a,${long}x,c"
expect 1 "the name of class 1 is 101 bytes long" -- "$CNN" eval --model toolong.safetensors --data syn
expect 1 "the name of class 1 is 101 bytes long" -- "$CNN" predict --model toolong.safetensors p0.pgm

python3 st.py meta m300.safetensors utf8.safetensors classes "zéro,один,二"
expect 0 "^  (.* )?二 [0-9.]+%" -- "$CNN" predict --model utf8.safetensors --top 0 p2.pgm
expect 0 "^один +[01]\.[0-9]{2} " -- "$CNN" eval --model utf8.safetensors --data syn
python3 st.py meta m300.safetensors latin1.safetensors classes "a,@RAW@,c" "caf$(printf '\351')"
expect 1 "the name of class 1 is not UTF-8 text" -- "$CNN" eval --model latin1.safetensors --data syn
python3 st.py meta m300.safetensors esc.safetensors classes "$(printf 'a,b\033[2J,c')"
expect 1 "the name of class 1 holds a control character" -- "$CNN" predict --model esc.safetensors p0.pgm
python3 st.py meta m300.safetensors dup.safetensors classes "cat,dog,cat"
expect 1 "classes 0 and 2 have the same name" -- "$CNN" eval --model dup.safetensors --data syn
python3 st.py meta m300.safetensors empty.safetensors classes "a,,c"
expect 1 "the name of class 1 is empty" -- "$CNN" predict --model empty.safetensors p0.pgm
# a 10-class model whose names hold commas: more names than outputs
printf 'input 1x28x28\nflatten\ndense 10\n' > a10.txt
"$CNN" train --data syn --arch a10.txt --epochs 1 --val 20 --threads 2 --out m10.safetensors > /dev/null 2>&1 \
    || { echo "FAIL: training the 10-class model"; fail=1; }
python3 st.py meta m10.safetensors commas.safetensors classes "a,b,c,d,e,f,g,h,Tinca, tench,j"
expect 1 "lists 11 names but the model has 10 outputs" -- "$CNN" eval --model commas.safetensors --data syn
expect 1 "lists 11 names but the model has 10 outputs" -- "$CNN" predict --model commas.safetensors p0.pgm

# ---- labels beyond the model's outputs: refused before any work
printf 'input 1x28x28\nflatten\ndense 5\n' > a5.txt
expect 1 "has 10 classes but the model has only 5 outputs" -- "$CNN" train --data syn --arch a5.txt --epochs 1 --val 20
python3 - <<'PY'
import st
h, d = st.load("m10.safetensors")
h["__metadata__"]["arch"] = "input 1x28x28\nflatten\ndense 5\n"
W = h["1.weight"]; B = h["1.bias"]
W["shape"] = [5, 784]; W["data_offsets"] = [0, 5 * 784 * 4]
B["data_offsets"] = [5 * 784 * 4, 5 * 784 * 4 + 20]; B["shape"] = [5]
st.save("m5.safetensors", {k: v for k, v in h.items()}, d[:5 * 784 * 4] + d[10 * 784 * 4:10 * 784 * 4 + 20])
PY
expect 1 "has 10 classes but the model has only 5 outputs" -- "$CNN" eval --model m5.safetensors --data syn

# ---- non-finite results are errors naming the layer or the field
# weights of 3e38 after a relu: every image's sum overflows, in any order
printf 'input 1x28x28\nflatten\nrelu\ndense 300\n' > a300r.txt
"$CNN" train --data syn --arch a300r.txt --epochs 1 --val 20 --threads 2 --out m300r.safetensors > /dev/null 2>&1 \
    || { echo "FAIL: training the relu model"; fail=1; }
python3 st.py fill m300r.safetensors huge.safetensors 3e38
expect 1 "non-finite value \(NaN or Inf\) in the output of layer 2 \(dense 300, line 4\) for image 0 of the batch" -- \
    "$CNN" eval --model huge.safetensors --data syn --batch 16
grep -q "Test accuracy" out.txt && { echo "FAIL: eval printed a report from non-finite outputs"; fail=1; }
expect 1 "layer 2 \(dense 300, line 4\)" -- "$CNN" predict --model huge.safetensors p0.pgm
grep -q "^p0.pgm:" out.txt && { echo "FAIL: predict printed a prediction from non-finite outputs"; fail=1; }
# the same fault, sharded (60 images of a batch of 64 run as 4 shards), on 1 and 2 threads
for t in 1 2; do
    expect 1 "layer 2 \(dense 300, line 4\) for image 0 of the batch" -- \
        "$CNN" eval --model huge.safetensors --data syn --batch 64 --threads $t
done
for std in 0 1e-40 -1 nan inf x ""; do
    python3 st.py meta m300.safetensors std.safetensors norm_std "$std"
    expect 1 "norm_std '$std' is not a usable standard deviation" -- "$CNN" eval --model std.safetensors --data syn
    expect 1 "norm_std '$std' is not a usable standard deviation" -- "$CNN" predict --model std.safetensors p0.pgm
done
python3 st.py meta m300.safetensors mean.safetensors norm_mean 3e38
python3 st.py meta mean.safetensors mean2.safetensors norm_std 1e-3
expect 1 "norm_mean '3e38' and norm_std '1e-3' turn pixel value 0 into -inf" -- "$CNN" eval --model mean2.safetensors --data syn
# a huge std only shrinks the inputs: finite, so it runs
python3 st.py meta m300.safetensors bigstd.safetensors norm_std 1e30
expect 0 "Test accuracy" -- "$CNN" eval --model bigstd.safetensors --data syn

[ $fail = 0 ] && echo "PASS: cli_classes"
exit $fail
