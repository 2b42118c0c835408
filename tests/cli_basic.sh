#!/bin/bash
# The cnn program's surface: --help and --version, every subcommand's help,
# usage errors (exit 2 with a message naming the flag), data and model errors
# (exit 1), and `cnn info`'s numbers for LeNet-5 (checked by hand below).
# Usage: bash tests/cli_basic.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"

expect 0 "Usage: cnn <command>" -- "$CNN" --help
expect 0 "^cnn [0-9]+\.[0-9]+\.[0-9]+" -- "$CNN" --version
expect 2 "Usage: cnn" -- "$CNN"
expect 2 "unknown command 'frobnicate'" -- "$CNN" frobnicate
for sub in train eval predict info; do
    expect 0 "Usage: cnn $sub" -- "$CNN" $sub --help
done
# every train flag is documented with its default
for flag in arch dataset data epochs batch lr opt momentum weight-decay sched clip loss \
            init-weights seed threads kernels val limit test-limit no-shuffle augment init out \
            checkpoint-every resume history plot mem-limit; do
    expect 0 "--$flag .*\(default: " -- "$CNN" train --help
done

# usage errors: exit 2, "cnn <cmd>: --flag: ..." naming the value
expect 2 "^cnn train: --epochs: expected a whole number from 1 to 100000, got 'x'" -- "$CNN" train --epochs x
expect 2 "--epochs: expected a whole number from 1 to 100000, got '0'" -- "$CNN" train --epochs 0
expect 2 "--lr: expected a number above 0 and at most 100, got 'fast'" -- "$CNN" train --lr fast
expect 2 "--lr: expected a number above 0 and at most 100, got '0'" -- "$CNN" train --lr 0
expect 2 "--lr: expected a number above 0 and at most 100, got '-1'" -- "$CNN" train --lr -1
expect 2 "--lr-gamma: expected a number above 0 and at most 1, got '0'" -- "$CNN" train --lr-gamma 0
expect 2 "--min-lr: 0.5 is above the learning rate 0.1 \(--lr\)" -- "$CNN" train --lr 0.1 --min-lr 0.5
expect 2 "--min-lr: 0.02 is above the learning rate 0.01" -- "$CNN" train --opt sgd --min-lr 0.02
expect 2 "--lr: expected a number .* got 'nan'" -- "$CNN" train --lr nan
expect 2 "--batch: expected a whole number from 1 to 1000000 or 'all', got '-3'" -- "$CNN" train --data . --batch -3
expect 2 "unknown option '--epoch'" -- "$CNN" train --epoch 3
expect 2 "--epochs: missing value" -- "$CNN" train --epochs
expect 2 "--no-shuffle takes no value" -- "$CNN" train --no-shuffle=1
expect 2 "unexpected argument 'extra'" -- "$CNN" train extra
expect 2 "--resume and --init conflict" -- "$CNN" train --resume a.ckpt --init b.safetensors
expect 2 "--data and --dataset conflict" -- "$CNN" train --data . --dataset fashion
expect 2 "--dataset: expected mnist or fashion, got 'cifar'" -- "$CNN" train --dataset cifar
expect 2 "--arch: 'nosuchnet' is neither a preset \(.*lenet5.*\) nor an architecture file" -- "$CNN" train --arch nosuchnet
expect 2 "--opt: expected sgd, momentum, nesterov, adam or adamw, got 'rmsprop'" -- "$CNN" train --opt rmsprop
expect 2 "--loss: expected .* got 'l3'" -- "$CNN" train --loss l3
# cce is -sum t log p: a model without a final softmax is refused before any
# data is read (the --data directory does not exist); xent on the same model,
# and cce on a preset, get as far as the data
printf 'input 1x28x28\nconv 4 3x3\nrelu\nflatten\ndense 10\n' > nosoftmax.txt
expect 2 "^cnn train: --loss: loss cce .* the model ends in 'dense 10' \(line 5\), not softmax: .*use xent" -- \
    "$CNN" train --arch nosoftmax.txt --loss cce --data "$T/nope"
expect 1 "--data: '$T/nope' does not exist" -- "$CNN" train --arch nosoftmax.txt --loss xent --data "$T/nope"
expect 1 "--data: '$T/nope' does not exist" -- "$CNN" train --arch simplecnn --loss cce --data "$T/nope"
expect 2 "--kernels: expected ref or fast, got 'gpu'" -- "$CNN" train --kernels gpu
expect 2 "--momentum: needs --opt momentum or nesterov \(got --opt adam\)" -- "$CNN" train --momentum 0.5
expect 2 "--momentum: needs --opt momentum or nesterov \(got --opt sgd\)" -- "$CNN" train --opt sgd --momentum 0.5
expect 2 "--model FILE is required" -- "$CNN" eval
expect 2 "give exactly one of --arch and --model" -- "$CNN" info
expect 2 "give at least one image file" -- "$CNN" predict --model m.safetensors
expect 2 "--top: expected a whole number from 0 to 16777216, got 'many'" -- "$CNN" predict --top many --model m x.png
expect 2 "more than 4096 arguments \('4097' is one too many\): give at most 4096 at a time" -- \
    "$CNN" predict --model m.safetensors $(seq 1 4097)

# data and model errors: exit 1, naming the file
expect 1 "--data: '$T/nope' does not exist" -- "$CNN" train --data "$T/nope"
mkdir empty
expect 1 "train-images" -- "$CNN" train --data empty
expect 1 "cannot load the model: .*missing.safetensors" -- "$CNN" eval --model missing.safetensors
echo "this is not a model" > bad.safetensors
expect 1 "cannot load the model: .*bad.safetensors" -- "$CNN" info --model bad.safetensors
printf 'input 1x28x28\nconv 8 3x3\nfrobnicate\n' > bad.txt
expect 1 "bad.txt:3: unknown layer 'frobnicate'" -- "$CNN" info --arch bad.txt

# LeNet-5 at 28x28 with pad 2, counted by hand:
#   conv 6 5x5:    6*1*5*5 + 6    =    156
#   conv 16 5x5:   16*6*5*5 + 16  =  2,416
#   dense 120:     400*120 + 120  = 48,120   (16x5x5 = 400 inputs)
#   dense 84:      120*84 + 84    = 10,164
#   dense 10:      84*10 + 10     =    850   total 61,706
"$CNN" info --arch lenet5 > info.txt 2>&1 || { echo "FAIL: cnn info --arch lenet5"; fail=1; }
for pat in "conv 6 5x5.*6x28x28 +156 " "maxpool 2 +6x14x14" "conv 16 5x5.*16x10x10 +2,416 " \
           "flatten +400 " "dense 120 +120 +48,120 " "dense 84 +84 +10,164 " "dense 10 +10 +850 " \
           "Total params: +61,706" "Conv2d" "Linear" "MaxPool2d"; do
    grep -Eq -- "$pat" info.txt || { echo "FAIL: cnn info --arch lenet5 lacks /$pat/"; fail=1; }
done
# FLOPs of the first conv: 2 * 6 * 25 * 28 * 28 = 235,200 (bias adds not counted
# or counted: accept both conventions' first digits)
grep -Eq "conv 6 5x5.* 23[0-9],[0-9]{3} " info.txt || { echo "FAIL: conv1 FLOPs"; cat info.txt; fail=1; }
# every preset parses and has a table
for p in simplecnn lenet5 pytorchnet best; do
    "$CNN" info --arch $p > /dev/null 2>&1 || { echo "FAIL: cnn info --arch $p"; fail=1; }
done
grep -q "Total params: *1,199,882" <("$CNN" info --arch pytorchnet) || { echo "FAIL: pytorchnet params"; fail=1; }

[ $fail = 0 ] && echo "PASS: cli_basic"
exit $fail
