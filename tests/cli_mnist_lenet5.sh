#!/bin/bash
# Integration: LeNet-5 trained for one epoch on the full 60,000 MNIST training
# images reaches at least 98.5% on the 10,000 test images; `cnn eval` of the
# saved model reproduces the same accuracy.
# Usage: bash tests/cli_mnist_lenet5.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
DATA=$SRC/data/mnist
if ! ls "$DATA"/train-images* > /dev/null 2>&1; then
    echo "SKIP: no MNIST in $DATA (run data/fetch.sh)"; exit 77
fi
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T"
"$CNN" train --data "$DATA" --arch lenet5 --epochs 1 --val 0 --opt adam --lr 0.005 --batch 64 --sched cosine \
    --threads 2 --out lenet5.safetensors > train.txt 2>&1 \
    || { echo "FAIL: cnn train exited $?"; cat train.txt; exit 1; }
grep -E "^epoch|^Training:|^Test accuracy" train.txt
grep -q "60000 training, 0 validation, 10000 test images" train.txt || { echo "FAIL: not the full data set"; fail=1; }
acc=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' train.txt)
python3 -c "import sys; sys.exit(0 if float('$acc') >= 98.5 else 1)" \
    || { echo "FAIL: test accuracy $acc% < 98.5%"; fail=1; }
"$CNN" eval --model lenet5.safetensors --data "$DATA" --threads 2 > eval.txt 2>&1 || { echo "FAIL: cnn eval"; fail=1; }
acc2=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' eval.txt)
[ "$acc" = "$acc2" ] || { echo "FAIL: eval gives $acc2%, train gave $acc%"; fail=1; }
[ $fail = 0 ] && echo "PASS: cli_mnist_lenet5 ($acc%)"
exit $fail
