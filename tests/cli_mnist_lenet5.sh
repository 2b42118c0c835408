#!/bin/bash
# Integration: the defaults a user can trust. `cnn train --arch lenet5
# --epochs 1`, with no other flag (55,000 training images, 5,000 held out
# for validation, the default optimizer and schedule), reaches at least
# 98.3% on the 10,000 MNIST test images; `cnn eval` of the saved model
# reproduces the same accuracy.
# Usage: bash tests/cli_mnist_lenet5.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
DATA=$SRC/data/mnist
need_data "$DATA" MNIST train-images
# the program looks for data/mnist in the current directory first
mkdir data && ln -s "$DATA" data/mnist
"$CNN" train --arch lenet5 --epochs 1 > train.txt 2>&1 \
    || { echo "FAIL: cnn train exited $?"; cat train.txt; exit 1; }
grep -E "^batch|^epoch|^Training:|^Test accuracy" train.txt
grep -q "55000 training, 5000 validation, 10000 test images" train.txt || { echo "FAIL: not the default split"; fail=1; }
acc=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' train.txt)
python3 -c "import sys; sys.exit(0 if float('$acc') >= 98.3 else 1)" \
    || { echo "FAIL: test accuracy $acc% < 98.3% with the defaults"; fail=1; }
"$CNN" eval --model model.safetensors > eval.txt 2>&1 || { echo "FAIL: cnn eval"; cat eval.txt; fail=1; }
acc2=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' eval.txt)
[ "$acc" = "$acc2" ] || { echo "FAIL: eval gives $acc2%, train gave $acc%"; fail=1; }
[ $fail = 0 ] && echo "PASS: cli_mnist_lenet5 ($acc%)"
exit $fail
