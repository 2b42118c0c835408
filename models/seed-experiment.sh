#!/bin/sh
# The seed report's experiment (sections 3.2-3.5) as one command: SimpleCNN,
# 300 training / 50 validation / 100 test images of MNIST, the full batch,
# plain SGD at lr 0.07 for 40 epochs, no shuffling. Prints the report's table
# (Class, Precision, Recall, F1-Score, Support; Accuracy; Macro and Weighted
# avg) and how long it took. Every setting is given, none left to the
# defaults, so the experiment stays the same when they change.
# Run from the source tree: sh models/seed-experiment.sh [cnn]
CNN=${1:-cnn}
exec "$CNN" train --arch simplecnn --dataset mnist --limit 300 --val 50 --test-limit 100 \
    --batch all --opt sgd --lr 0.07 --sched constant --weight-decay 0 --clip 0 \
    --loss xent --init-weights xavier --seed 1 --kernels fast --epochs 40 --no-shuffle \
    --out seed-experiment.safetensors --history seed-experiment.csv --plot seed-experiment.svg
