#!/bin/bash
# Outputs are checked before any work: a missing folder, or a folder given
# as a file, for --out, the checkpoint (<out>.ckpt), --history or --plot
# exits 1 with the path named and no epoch trained; two outputs naming one
# file exit 2 (devices such as /dev/null may be shared). Also: a data set
# whose test images differ in size from its training images is refused with
# the test split's shape named.
# Usage: bash tests/cli_outputs.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T"
python3 "$SRC/tests/syn_data.py" syn 300 100 || { echo "FAIL: could not write the synthetic data"; exit 1; }
RUN=(--data syn --arch simplecnn --epochs 2 --val 50 --threads 2)

# expect CODE PATTERN -- command...: the exit code, a regexp the output must
# match, and no epoch trained
expect() {
    local code=$1 pat=$2; shift 3
    "$@" > out.txt 2>&1; local rc=$?
    if [ "$rc" != "$code" ] || ! grep -Eq -- "$pat" out.txt; then
        echo "FAIL: '$*' exited $rc (expected $code) or lacks /$pat/"; sed 's/^/    /' out.txt | head; fail=1
    elif [ "$code" != 0 ] && grep -q "^epoch " out.txt; then
        echo "FAIL: '$*' trained before refusing"; fail=1
    fi
}

mkdir adir
mkdir m2.safetensors.ckpt
expect 1 "--out: nodir/m.safetensors: cannot write: the folder 'nodir' does not exist" -- \
    "$CNN" train "${RUN[@]}" --out nodir/m.safetensors
expect 1 "--out: adir: is a directory" -- "$CNN" train "${RUN[@]}" --out adir
expect 1 "--out: adir/: is a folder name" -- "$CNN" train "${RUN[@]}" --out adir/
expect 1 "the checkpoint \(--out \+ .ckpt\): m2.safetensors.ckpt: is a directory" -- \
    "$CNN" train "${RUN[@]}" --out m2.safetensors
expect 1 "--history: nodir/h.csv: cannot write: the folder 'nodir' does not exist" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history nodir/h.csv
expect 1 "--plot: adir: is a directory" -- "$CNN" train "${RUN[@]}" --out m.safetensors --plot adir
[ -e m.safetensors ] && { echo "FAIL: a refused run wrote its model"; fail=1; }
ls adir | grep -q . && { echo "FAIL: a probe file was left in adir"; fail=1; }

# outputs that alias each other: usage errors
expect 2 "--out m.safetensors and --history m.safetensors name the same file" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history m.safetensors
expect 2 "--history x and --plot ./x name the same file" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history x --plot ./x
expect 2 "--plot m.safetensors.ckpt is the run's checkpoint" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --plot m.safetensors.ckpt
# a device may take several outputs
expect 0 "Wrote the curves to /dev/null" -- \
    "$CNN" train "${RUN[@]}" --out m.safetensors --history /dev/null --plot /dev/null
# a link and the file it names are one file
ln -s m.safetensors link.safetensors
expect 2 "--out link.safetensors and --history .*m.safetensors name the same file" -- \
    "$CNN" train "${RUN[@]}" --out link.safetensors --history "$T/m.safetensors"
# a history or plot over the checkpoint being resumed
"$CNN" train "${RUN[@]}" --checkpoint-every 1 --out r.safetensors > r.txt 2>&1 || { echo "FAIL: a run"; cat r.txt; fail=1; }
expect 2 "--history r.safetensors.ckpt and --resume r.safetensors.ckpt name the same file" -- \
    "$CNN" train --resume r.safetensors.ckpt --epochs 3 --out r2.safetensors --history r.safetensors.ckpt

# a test split of 20x20 images next to 28x28 training images
python3 "$SRC/tests/syn_data.py" mixed 300 100 20 || { echo "FAIL: could not write the mixed data"; exit 1; }
expect 1 "the model takes 1x28x28 images but the test split in mixed holds 1x20x20" -- \
    "$CNN" train --data mixed --arch simplecnn --epochs 1 --val 50 --out m.safetensors
expect 1 "the test split in mixed holds 1x20x20" -- "$CNN" eval --model m.safetensors --data mixed

[ $fail = 0 ] && echo "PASS: cli_outputs"
exit $fail
