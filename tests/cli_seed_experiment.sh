#!/bin/bash
# The seed report's experiment (simplecnn, 300/50/100 images of MNIST, full
# batch, SGD lr 0.07, 40 epochs, no shuffling) prints the report's table and
# a plausible accuracy (the seed reached 78%).
# Usage: bash tests/cli_seed_experiment.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
need_data "$SRC/data/mnist" MNIST train-images
# the script reads data/mnist of the current directory
mkdir data && ln -s "$SRC/data/mnist" data/mnist
start=$(date +%s.%N)
sh "$SRC/models/seed-experiment.sh" "$CNN" > out.txt 2>&1
rc=$?
[ $rc = 0 ] || { echo "FAIL: the seed experiment exited $rc"; cat out.txt; exit 1; }
[ -f seed-experiment.safetensors ] && [ -f seed-experiment.svg ] || { echo "FAIL: no model or curves written"; fail=1; }
cat out.txt | sed -n '/^Class/,/^Weighted avg/p'
grep -q "300 training, 50 validation, 100 test images" out.txt || { echo "FAIL: wrong split"; fail=1; }
[ "$(grep -c '^epoch [0-9]*/40 ' out.txt)" = 40 ] || { echo "FAIL: not 40 epochs"; fail=1; }
grep -Eq "^Class +Precision +Recall +F1-Score +Support$" out.txt || { echo "FAIL: no table header"; fail=1; }
for c in 0 1 2 3 4 5 6 7 8 9; do
    grep -Eq "^$c +[01]\.[0-9]{2} +[01]\.[0-9]{2} +[01]\.[0-9]{2} +[0-9]+$" out.txt || { echo "FAIL: no row for class $c"; fail=1; }
done
grep -Eq "^Accuracy +0\.[0-9]{2} +100$" out.txt || { echo "FAIL: no Accuracy row"; fail=1; }
grep -Eq "^Macro avg +[01]\.[0-9]{2} +[01]\.[0-9]{2} +[01]\.[0-9]{2} +100$" out.txt || { echo "FAIL: no Macro avg row"; fail=1; }
grep -Eq "^Weighted avg +[01]\.[0-9]{2} +[01]\.[0-9]{2} +[01]\.[0-9]{2} +100$" out.txt || { echo "FAIL: no Weighted avg row"; fail=1; }
acc=$(sed -n 's/^Test accuracy: \([0-9.]*\)%.*/\1/p' out.txt)
python3 -c "import sys; sys.exit(0 if float('$acc') > 60 else 1)" || { echo "FAIL: accuracy $acc% <= 60%"; fail=1; }
grep "^Training:" out.txt
echo "the seed experiment took $(python3 -c "print('%.1f' % ($(date +%s.%N) - $start))") s (the seed report: about 15 minutes); test accuracy $acc% (the seed: 78%)"
[ $fail = 0 ] && echo "PASS: cli_seed_experiment"
exit $fail
