#!/bin/bash
# Bad data sets are refused naming the file (and the line of a CSV), exit
# 1: a class folder missing from the test tree (both lists named), an empty
# class folder, pictures without class folders, a class name with a comma, more than 256 classes, a picture
# that cannot be decoded (skipped with a warning naming it; --strict refuses
# it), a tree of no usable picture, CSV rows of the wrong width or with a
# non-numeric or out-of-range value, a damaged cache file given as --data,
# a model of fewer outputs than classes (before training; more outputs is
# a warning), a model evaluated on a data set of other classes. Also: the
# cache is rebuilt when a file changes, goes to the cache folder when the
# data's own folder cannot take it, a tree of many files is read under a
# limit of 12 open files, a tree's val/ folder validates, and a single
# tree's --test-split is recorded and reproduced by eval.
# Usage: bash tests/cli_data_errors.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
PY=/usr/bin/python3
export XDG_CACHE_HOME=$T/xdg

# pgm DIR/NAME VALUE: an 8x8 grey picture, bright in one corner per class
pgm() {
    $PY - "$1" "$2" <<'PY'
import sys
v = int(sys.argv[2])
px = bytearray(64)
for y in range(4):
    for x in range(4):
        px[(y + 4 * (v // 2 % 2)) * 8 + x + 4 * (v % 2)] = 200 + (v * 7) % 50
open(sys.argv[1], "wb").write(b"P5\n8 8\n255\n" + bytes(px))
PY
}
tree() { # tree ROOT CLASS... : 6 pictures a class
    local root=$1; shift
    local k=0
    for c in "$@"; do
        mkdir -p "$root/$c"
        for i in 1 2 3 4 5 6; do pgm "$root/$c/$i.pgm" $k; done
        k=$((k + 1))
    done
}
printf 'input 1x8x8\nflatten\ndense 3\nsoftmax\n' > a3.txt
printf 'input 1x8x8\nflatten\ndense 2\nsoftmax\n' > a2.txt
printf 'input 1x8x8\nflatten\ndense 5\nsoftmax\n' > a5.txt
TR="--epochs 1 --val 2 --threads 1"

# a good tree trains; its caches are where they should be
tree good/train a b c; tree good/test a b c
expect 0 "decoded 18 images into good/train/.cnn-cache/1x8x8-pad.cnncache" -- "$CNN" train --arch a3.txt --data good $TR --out g.safetensors
expect 0 "good/train: 18 images from the cache" -- "$CNN" train --arch a3.txt --data good $TR --out g.safetensors
# a changed picture rebuilds the cache
sleep 0.01; pgm good/train/a/1.pgm 1
expect 0 "good/train: decoded 18 images" -- "$CNN" train --arch a3.txt --data good $TR --out g.safetensors
# more outputs than classes: a warning; fewer: refused before training
expect 0 "warning: the model has 5 outputs but good has 3 classes" -- "$CNN" train --arch a5.txt --data good $TR --out g5.safetensors
expect 1 "good has 3 classes but the model has only 2 outputs" -- "$CNN" train --arch a2.txt --data good $TR --out g2.safetensors
grep -q "^epoch" out.txt && { echo "FAIL: trained before refusing"; fail=1; }

# train and test class lists that differ: both named
tree diff/train a b c; tree diff/test a b
expect 1 "the classes differ: diff/train has 3 \(a,b,c\) but diff/test has 2 \(a,b\)" -- "$CNN" train --arch a3.txt --data diff $TR
# an empty class folder
tree empty/train a b; mkdir -p empty/train/c; tree empty/test a b c
expect 1 "empty/train/c: an empty class folder" -- "$CNN" train --arch a3.txt --data empty $TR
# a class name that cannot be one
tree comma a "b,c"
expect 1 "comma/b,c: the name of a class folder holds a comma" -- "$CNN" train --arch a3.txt --data comma $TR
# more than 256 classes
mkdir many; for k in $(seq 1 257); do mkdir many/c$k; done
expect 1 "many: more than 256 class folders: at most 256 classes can be trained \(labels are one byte\)" -- \
    "$CNN" train --arch a3.txt --data many $TR

# a picture that cannot be decoded: skipped with a warning, or refused with --strict
tree broken/train a b c; tree broken/test a b c
echo "not a picture" > broken/train/b/9.png
expect 0 "warning: broken/train/b/9.png: .*\(skipped; --strict refuses it\)" -- "$CNN" train --arch a3.txt --data broken $TR --out b.safetensors
rm -rf broken/train/.cnn-cache
expect 1 "broken/train/b/9.png" -- "$CNN" train --arch a3.txt --data broken $TR --strict --out b.safetensors
# no usable picture at all
mkdir -p none/a none/b; echo x > none/a/1.png; echo y > none/b/1.jpg
expect 1 "none: none of its 2 pictures could be used" -- "$CNN" train --arch a3.txt --data none $TR
# pictures but no class folder; a split tree missing a class folder in test/
mkdir -p flat; pgm flat/1.pgm 0
expect 1 "--data: 'flat' holds no data set: .*one folder per class" -- "$CNN" train --arch a3.txt --data flat $TR
tree gone/train a b c; tree gone/test a c
expect 1 "the classes differ: gone/train has 3 \(a,b,c\) but gone/test has 2 \(a,c\)" -- "$CNN" train --arch a3.txt --data gone $TR

# CSV files: the line, the column and what is wrong
hdr=$(printf 'label'; for i in $(seq 0 63); do printf ',p%d' $i; done)
row() { printf '%s' "$1"; for i in $(seq 1 64); do printf ',%s' "${2:-0}"; done; echo; }
mkdir csv; { echo "$hdr"; row 0; row 1 9; row 2 200; } > csv/train.csv; { row 0; row 1; row 2; } > csv/test.csv
expect 0 "csv/train.csv: decoded 3 images" -- "$CNN" train --arch a3.txt --data csv --epochs 1 --val 1 --out c.safetensors
{ echo "$hdr"; row 0; echo "1,2,3,4"; } > short.csv
expect 1 "short.csv:3: 4 columns, expected 65 \(a label and 64 pixels for 1x8x8 images\)" -- "$CNN" train --arch a3.txt --data short.csv $TR
{ row 0; row 1 x; } > nan.csv
expect 1 "nan.csv:2: column 2 \(a pixel\): 'x' is not a whole number" -- "$CNN" train --arch a3.txt --data nan.csv $TR
{ row 0; row 1 256; } > big.csv
expect 1 "big.csv:2: column 2 \(a pixel\): '256' is out of range \(0 to 255\)" -- "$CNN" train --arch a3.txt --data big.csv $TR
{ row 0; row 999; } > label.csv
expect 1 "label.csv:2: column 1 \(the label\): '999' is out of range" -- "$CNN" train --arch a3.txt --data label.csv $TR

# a damaged cache file given as --data
printf 'CNNCACHE\1\0\0\0garbage' > bad.cnncache
expect 1 "bad.cnncache: not a usable cache file" -- "$CNN" train --arch a3.txt --data bad.cnncache $TR

# the data's folder cannot take the cache (a file stands where its folder
# would be): the cache folder ($XDG_CACHE_HOME/cnn) holds it
tree ro a b c; echo "in the way" > ro/.cnn-cache
expect 0 "decoded 18 images into $T/xdg/cnn/[0-9a-f]{16}-1x8x8-pad.cnncache" -- "$CNN" train --arch a3.txt --data ro $TR --out ro.safetensors
expect 0 "ro: 18 images from the cache $T/xdg/cnn/" -- "$CNN" train --arch a3.txt --data ro $TR --out ro.safetensors
expect 0 "decoded 18 images into $T/cd/" -- "$CNN" train --arch a3.txt --data ro $TR --cache-dir "$T/cd" --out ro.safetensors

# a single tree is cut by --test-split, recorded, and eval cuts it the same way
expect 0 "ro has no test split: 0.25 of its 18 images held out" -- "$CNN" train --arch a3.txt --data ro $TR --test-split 0.25 --out split.safetensors
grep -q "5 test images" out.txt || { echo "FAIL: 0.25 of 18 is not 5 test images"; cat out.txt; fail=1; }
acc=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' out.txt)
expect 0 "Test accuracy: $acc%" -- "$CNN" eval --model split.safetensors --data ro
grep -q "on 5 test images" out.txt || { echo "FAIL: eval did not cut the same 5 images"; cat out.txt; fail=1; }

# DIR/val is the validation set; its classes must be the training tree's
tree withval/train a b c; tree withval/test a b c; tree withval/val a b c
expect 0 "18 training, 18 validation, 18 test images" -- "$CNN" train --arch a3.txt --data withval --epochs 1 --threads 1 --out v.safetensors
tree badval/train a b c; tree badval/test a b c; tree badval/val a b
expect 1 "the classes differ: badval/train has 3 \(a,b,c\) but badval/val has 2 \(a,b\)" -- "$CNN" train --arch a3.txt --data badval $TR
# without DIR/test, the training tree is cut by --test-split; DIR/val still validates
tree notest/train a b c; tree notest/val a b c
expect 0 "14 training, 18 validation, 4 test images" -- "$CNN" train --arch a3.txt --data notest --epochs 1 --threads 1 --out nt.safetensors

# a tree of many files is read with few files open at a time: 3,000
# pictures decoded under a limit of 12 open files
$PY - <<'PY'
import os
for k in range(3):
    os.makedirs("many3k/c%d" % k)
    for i in range(1000):
        px = bytearray(64); px[k * 8 + i % 8] = 255
        open("many3k/c%d/%04d.pgm" % (k, i), "wb").write(b"P5\n8 8\n255\n" + bytes(px))
PY
expect 0 "many3k: decoded 3000 images" -- bash -c "ulimit -n 12 && exec \"$CNN\" train --arch a3.txt --data many3k $TR --out m3k.safetensors"

# a model evaluated on a data set of other classes: refused, naming both
tree other/train x y z; tree other/test x y z
expect 1 "the classes differ: the model g.safetensors has 3 \(a,b,c\) but the data set other has 3 \(x,y,z\)" -- \
    "$CNN" eval --model g.safetensors --data other

[ $fail = 0 ] && echo "PASS: cli_data_errors"
exit $fail
