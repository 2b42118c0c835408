#!/bin/bash
# Outputs are checked before any work: a missing folder, or a folder given
# as a file, for --out, the checkpoint (<out>.ckpt), --history or --plot
# exits 1 with the path named and no epoch trained; two outputs naming one
# file exit 2 (devices such as /dev/null may be shared). Also: a data set
# whose test images differ in size from its training images is refused with
# the test split's shape named.
# Usage: bash tests/cli_outputs.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
syn_data 300 100
RUN=(--data syn --arch simplecnn --epochs 2 --val 50 --threads 2)

# refused CODE PATTERN -- command...: as expect, and no epoch trained
# before the refusal
refused() {
    expect "$@"
    if grep -q "^epoch " out.txt; then echo "FAIL: '${*:4}' trained before refusing"; fail=1; fi
}

mkdir adir
mkdir m2.safetensors.ckpt
refused 1 "--out: nodir/m.safetensors: cannot write: the folder 'nodir' does not exist" -- \
    "$CNN" train "${RUN[@]}" --out nodir/m.safetensors
refused 1 "--out: adir: is a directory" -- "$CNN" train "${RUN[@]}" --out adir
refused 1 "--out: adir/: is a folder name" -- "$CNN" train "${RUN[@]}" --out adir/
refused 1 "the checkpoint \(--out \+ .ckpt\): m2.safetensors.ckpt: is a directory" -- \
    "$CNN" train "${RUN[@]}" --out m2.safetensors
refused 1 "--history: nodir/h.csv: cannot write: the folder 'nodir' does not exist" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history nodir/h.csv
refused 1 "--plot: adir: is a directory" -- "$CNN" train "${RUN[@]}" --out m.safetensors --plot adir
[ -e m.safetensors ] && { echo "FAIL: a refused run wrote its model"; fail=1; }
ls adir | grep -q . && { echo "FAIL: a probe file was left in adir"; fail=1; }

# outputs that alias each other: usage errors
refused 2 "--out m.safetensors and --history m.safetensors name the same file" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history m.safetensors
refused 2 "--history x and --plot ./x name the same file" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history x --plot ./x
refused 2 "--plot m.safetensors.ckpt is the run's checkpoint" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --plot m.safetensors.ckpt
# a device may take several outputs
expect 0 "Wrote the curves to /dev/null" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history /dev/null --plot /dev/null
# a link and the file it names are one file
ln -s m.safetensors link.safetensors
refused 2 "--out link.safetensors and --history .*m.safetensors name the same file" -- \
    "$CNN" train "${RUN[@]}" --out link.safetensors --history "$T/m.safetensors"
# a history or plot over the checkpoint being resumed
"$CNN" train "${RUN[@]}" --checkpoint-every 1 --out r.safetensors > r.txt 2>&1 || { echo "FAIL: a run"; cat r.txt; fail=1; }
refused 2 "--history r.safetensors.ckpt and --resume r.safetensors.ckpt name the same file" -- \
    "$CNN" train --resume r.safetensors.ckpt --epochs 3 --out r2.safetensors --history r.safetensors.ckpt

# a test split of 20x20 images next to 28x28 training images
python3 "$SRC/tests/syn_data.py" mixed 300 100 20 || { echo "FAIL: could not write the mixed data"; exit 1; }
refused 1 "the model takes 1x28x28 images but the test split in mixed holds 1x20x20" -- \
    "$CNN" train --data mixed --arch simplecnn --epochs 1 --val 50 --out m.safetensors
refused 1 "the test split in mixed holds 1x20x20" -- "$CNN" eval --model m.safetensors --data mixed

[ $fail = 0 ] && echo "PASS: cli_outputs"
exit $fail
