#!/bin/bash
# `cnn predict` on pictures made here from MNIST test digits — scaled up,
# shifted on a larger canvas, inverted to dark ink on white paper, as PNG and
# PGM — gives the right digits with a model trained in the test; --grid
# writes a valid PNG; a corrupt file is named and skipped with exit 1.
# Pictures in folders named after classes are judged right or wrong, in the
# output, the grid and the --predictions CSV.
# Usage: bash tests/cli_predict.sh <cnn-binary> <source-dir> <build-dir>
# The model is trained with --fit digit (MNIST's preparation, recorded as the
# model's prep), which predict applies to the pictures.
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
DATA=$SRC/data/mnist
need_data "$DATA" MNIST t10k-images

"$CNN" train --data "$DATA" --fit digit --arch simplecnn --epochs 2 --limit 20000 --val 1000 --test-limit 2000 \
    --opt adam --lr 0.002 --threads 2 --out m.safetensors > train.txt 2>&1 \
    || { echo "FAIL: training the model"; cat train.txt; exit 1; }
acc=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' train.txt)
python3 -c "import sys; sys.exit(0 if float('$acc') >= 93 else 1)" \
    || { echo "FAIL: the test model reached only $acc%"; exit 1; }
"$CNN" eval --model m.safetensors --data "$DATA" --test-limit 100 --predictions pred.csv > /dev/null 2>&1 \
    || { echo "FAIL: cnn eval"; exit 1; }

# the first 12 test digits this model gets right from the IDX file, made into pictures
DATA="$DATA" python3 - <<'PY' || { echo "FAIL: could not make the pictures"; exit 1; }
import csv, gzip, os, struct, zlib
d = os.environ["DATA"]
def opener(base):
    for name in (base, base + ".gz"):
        p = os.path.join(d, name)
        if os.path.exists(p): return (gzip.open if name.endswith(".gz") else open)(p, "rb")
    raise SystemExit("no " + base)
raw = opener("t10k-images-idx3-ubyte").read()[16:]
right = [r for r in csv.DictReader(open("pred.csv")) if r["label"] == r["predicted"]][:12]
def png(path, w, h, px):
    def chunk(t, data): return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))
    rows = b"".join(b"\0" + bytes(px[y * w:(y + 1) * w]) for y in range(h))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
expected = open("expected.txt", "w")
for n, r in enumerate(right):
    i = int(r["index"]); digit = raw[i * 784:(i + 1) * 784]
    scale = 2 + n % 3                      # 56, 84 or 112 pixels tall
    W, H = 28 * scale + 40 + 7 * n, 28 * scale + 30
    ox, oy = 5 + 3 * n, 25 - 2 * (n % 4)   # off centre
    px = [255] * (W * H)                   # white paper
    for y in range(28 * scale):
        for x in range(28 * scale):
            px[(oy + y) * W + ox + x] = 255 - digit[(y // scale) * 28 + x // scale]
    name = "d%02d_%s.%s" % (n, r["label"], "pgm" if n == 5 else "png")
    if name.endswith(".pgm"):
        open(name, "wb").write(b"P5\n%d %d\n255\n" % (W, H) + bytes(px))
    else:
        png(name, W, H, px)
    expected.write("%s %s\n" % (name, r["label"]))
PY

files=$(cut -d' ' -f1 expected.txt)
"$CNN" predict --model m.safetensors --grid grid.png --top 3 $files > out.txt 2>&1 \
    || { echo "FAIL: cnn predict exited $?"; cat out.txt; exit 1; }
wrong=0
while read -r name label; do
    got=$(sed -n "s/^$name: \([0-9]*\) (\([0-9.]*\)%)$/\1/p" out.txt)
    if [ "$got" != "$label" ]; then echo "wrong: $name is a $label, predicted '$got'"; wrong=$((wrong + 1)); fi
done < expected.txt
# preprocessing a resampled picture is not exactly MNIST's: allow one miss in 12
[ $wrong -le 1 ] || { echo "FAIL: $wrong of 12 pictures misread"; cat out.txt; fail=1; }
# --top 3: the line under each image lists three classes with percentages
[ "$(grep -Ec '^  [0-9] [0-9.]+% [0-9] [0-9.]+% [0-9] [0-9.]+%$' out.txt)" = 12 ] \
    || { echo "FAIL: --top 3 lines"; cat out.txt; fail=1; }
python3 - <<'PY' || fail=1
import struct, zlib, sys
b = open("grid.png", "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(b):
    n, t = struct.unpack(">I4s", b[pos:pos + 8]); data = b[pos + 8:pos + 8 + n]
    if zlib.crc32(t + data) != struct.unpack(">I", b[pos + 8 + n:pos + 12 + n])[0]: sys.exit("FAIL: grid.png bad CRC")
    if t == b"IHDR": w, h, depth, colour = struct.unpack(">IIBB", data[:10])
    if t == b"IDAT": idat += data
    pos += 12 + n
raw = zlib.decompress(idat)
if not (w >= 4 * 28 * 3 and h >= 4 * 28 * 3 and len(raw) == h * (w + 1)): sys.exit("FAIL: grid.png is %dx%d" % (w, h))
PY

# pictures in folders named after their class have true labels: each line
# says right or WRONG, the accuracy counts them, the grid frames a wrong one
# in thick black and --predictions writes them as CSV (a name with a comma
# quoted); a picture outside any class folder has no true label
mkdir -p digits/other
i=0
got0=$(sed -n 's/^d00_[0-9]*\.png: \([0-9]*\) (.*/\1/p' out.txt)
while read -r name label; do
    # the first misfiled: in the folder of a class the model did not predict
    if [ $i = 0 ]; then dir=digits/$(( (got0 + 1) % 10 )); else dir=digits/$label; fi
    mkdir -p "$dir"; cp "$name" "$dir/${name%.*}${i:+_$i}.${name##*.}"; i=$((i + 1))
done < expected.txt
mv digits/*/d03_*.png "digits/$(sed -n 4p expected.txt | cut -d' ' -f2)/a,b.png"
cp "$(sed -n 2p expected.txt | cut -d' ' -f1)" digits/other/loose.png
"$CNN" predict --model m.safetensors --grid tgrid.png --predictions p.csv --top 2 digits/*/* \
    > truth.txt 2>&1 || { echo "FAIL: predict with true labels exited $?"; cat truth.txt; exit 1; }
grep -q "^digits/[0-9]/d00_[0-9]_0.png: [0-9] ([0-9.]*%)  WRONG: is [0-9]$" truth.txt \
    || { echo "FAIL: the misfiled picture is not called WRONG"; cat truth.txt; fail=1; }
[ "$(grep -Ec '%\)  (right|WRONG: is [0-9])$' truth.txt)" = 12 ] \
    || { echo "FAIL: not every picture in a class folder is judged"; cat truth.txt; fail=1; }
grep -q '^digits/other/loose.png: [0-9] ([0-9.]*%)$' truth.txt \
    || { echo "FAIL: the picture outside the class folders"; cat truth.txt; fail=1; }
grep -Eq '^Accuracy: [0-9.]+% \((1[01]) of 12 pictures whose folder names their class; the others are not counted\)$' truth.txt \
    || { echo "FAIL: the accuracy line"; cat truth.txt; fail=1; }
python3 - <<'PY2' || fail=1
import csv, struct, sys, zlib
rows = list(csv.reader(open("p.csv", newline="")))
want = ["file", "true", "predicted", "probability", "correct", "top1", "p1", "top2", "p2"]
if rows[0] != want: sys.exit("FAIL: p.csv header %s" % rows[0])
rows = {r[0]: r for r in rows[1:]}
if len(rows) != 13: sys.exit("FAIL: p.csv has %d rows, not 13" % len(rows))
for f, r in rows.items():
    true, pred, p, ok, t1, p1 = r[1], r[2], float(r[3]), r[4], r[5], float(r[6])
    if f == "digits/other/loose.png":
        if true or ok: sys.exit("FAIL: p.csv gives the loose picture a true label: %s" % r)
    else:
        if true != f.split("/")[1] or ok != ("1" if true == pred else "0"): sys.exit("FAIL: p.csv row %s" % r)
    if t1 != pred or p1 != p or not (0 < float(r[8]) <= p <= 1): sys.exit("FAIL: p.csv ranks %s" % r)
if not any(f.endswith("/a,b.png") for f in rows): sys.exit("FAIL: the file name with a comma")
# the wrong prediction's thick black frame: rows of the grid black for the
# whole width of a scaled picture and more (ink never is)
b = open("tgrid.png", "rb").read()
pos, idat = 8, b""
while pos < len(b):
    n, t = struct.unpack(">I4s", b[pos:pos + 8]); data = b[pos + 8:pos + 8 + n]
    if t == b"IHDR": w, h = struct.unpack(">II", data[:8])
    if t == b"IDAT": idat += data
    pos += 12 + n
raw = zlib.decompress(idat)
img, prev = [], bytearray(w)
for y in range(h):  # undo each row's PNG filter (one byte per pixel)
    ft, row = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
    for x in range(w):
        a = row[x - 1] if x else 0; up = prev[x]; c = prev[x - 1] if x else 0
        if ft == 1: row[x] = (row[x] + a) & 255
        elif ft == 2: row[x] = (row[x] + up) & 255
        elif ft == 3: row[x] = (row[x] + (a + up) // 2) & 255
        elif ft == 4:
            pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
            row[x] = (row[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
    img.append(bytes(row)); prev = row
black = sum(1 for r in img if b"\0" * (28 * 4 + 8) in r)
if black < 10: sys.exit("FAIL: the grid frames no wrong prediction (%d black rows)" % black)
PY2
# outputs: one file for both is a usage error, an unwritable folder is
# refused before any work
"$CNN" predict --model m.safetensors --grid same.png --predictions same.png d01_*.png > same.txt 2>&1
[ $? = 2 ] && grep -q "name the same file" same.txt || { echo "FAIL: --grid and --predictions the same file"; cat same.txt; fail=1; }
"$CNN" predict --model m.safetensors --predictions nodir/p.csv d01_*.png > nodir.txt 2>&1
[ $? = 1 ] && grep -q "^cnn predict: --predictions: .*nodir" nodir.txt && ! grep -q "^d01_" nodir.txt \
    || { echo "FAIL: --predictions into a missing folder"; cat nodir.txt; fail=1; }

# a corrupt picture is named, the others still predicted, exit 1
head -c 60 d00_*.png > broken.png
"$CNN" predict --model m.safetensors broken.png d01_*.png > bad.txt 2>&1
rc=$?
[ $rc = 1 ] && grep -q "broken.png" bad.txt && grep -q "^d01_" bad.txt || { echo "FAIL: corrupt picture (rc $rc)"; cat bad.txt; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_predict"
exit $fail
