#!/bin/bash
# Data-parallel training over MPI (a build with -DCNN_MPI=ON):
#  1. mpirun -np N for N = 1, 2, 3, 4 (and 2 ranks of 2 threads) trains the
#     tensors of one process, byte for byte, and reports the same loss and
#     accuracy; only rank 0 prints and writes. lenet5 (batches of 4 shards
#     and a tail of one) and pytorchnet (dropout: per-shard masks), batch
#     32 too (2 shards: 3 and 4 ranks leave a rank without shards).
#  2. A run checkpointed at 2 ranks resumes at 3 and ends as one process's
#     run does.
#  3. A killed rank ends the job within seconds; a rank that cannot read
#     its data ends the job with its message; ranks that disagree on the
#     data or options stop before training; a batchnorm model is refused.
#  4. Each rank reads and prepares only its shards' images: the share rank 0
#     counts, augmented runs that still give one process's bits, and a
#     fault in another rank's images (a test or a training batch) diagnosed
#     by that rank.
# Usage: bash tests/mpi_train.sh <cnn-binary> <source-dir> <build-dir> [plain-cnn]
# plain-cnn: the program of a build without MPI (default: the same program
# started without mpirun, which takes the one-process path).
CNN=$1; SRC=$2; BUILD=$3; PLAIN=${4:-$1}
. "$SRC/tests/lib/cli.sh"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
syn_data 700 150
EQ=(python3 "$SRC/tests/tensors_equal.py")

# the numbers an epoch line reports, without its times
stats() { grep '^epoch ' "$1" | sed 's/  [0-9.]*s  [0-9]* img\/s$//'; }

# ---- 1. the same bits at every rank count
check_same() {  # name, then the run's options
    local name=$1; shift
    "$PLAIN" train "$@" --threads 1 --out "$name-ref.safetensors" > "$name-ref.txt" 2>&1 \
        || { echo "FAIL: $name: the one-process run"; cat "$name-ref.txt"; fail=1; return; }
    for n in 1 2 3 4; do
        local out="$name-np$n"
        if ! timeout 300 "${MPIRUN[@]}" -np $n "$CNN" train "$@" --threads 1 \
                --out "$out.safetensors" --history "$out.csv" > "$out.txt" 2>&1; then
            echo "FAIL: $name: mpirun -np $n"; sed 's/^/    /' "$out.txt" | head -20; fail=1; continue
        fi
        msg=$("${EQ[@]}" "$name-ref.safetensors" "$out.safetensors" 2>&1) \
            || { echo "FAIL: $name: -np $n: $msg"; fail=1; }
        [ "$(stats "$out.txt")" = "$(stats "$name-ref.txt")" ] \
            || { echo "FAIL: $name: -np $n reports other numbers:"; stats "$out.txt"; stats "$name-ref.txt"; fail=1; }
        grep -q "batch [0-9]*, .* $n MPI rank$([ $n = 1 ] || echo s) x 1 thread," "$out.txt" \
            || { echo "FAIL: $name: -np $n: the header does not name the ranks"; head -3 "$out.txt"; fail=1; }
        [ "$(grep -c '^epoch ' "$out.txt")" = "$(grep -c '^epoch ' "$name-ref.txt")" ] \
            || { echo "FAIL: $name: -np $n: more than one rank printed"; fail=1; }
        [ "$(grep -c '^Saved the model' "$out.txt")" = 1 ] || { echo "FAIL: $name: -np $n: saved twice?"; fail=1; }
    done
    # ranks of two threads each (shards shared by threads within a rank)
    if timeout 300 "${MPIRUN[@]}" --bind-to none -np 2 "$CNN" train "$@" --threads 2 \
            --out "$name-2x2.safetensors" > "$name-2x2.txt" 2>&1; then
        msg=$("${EQ[@]}" "$name-ref.safetensors" "$name-2x2.safetensors" 2>&1) \
            || { echo "FAIL: $name: 2 ranks x 2 threads: $msg"; fail=1; }
    else
        echo "FAIL: $name: 2 ranks x 2 threads"; sed 's/^/    /' "$name-2x2.txt" | head -20; fail=1
    fi
    echo "ok: $name: -np 1..4 x 1 thread and -np 2 x 2 threads byte-identical to one process"
}
SYN=(--data syn --val 100 --test-limit 150 --epochs 1 --seed 3)
check_same lenet5 "${SYN[@]}" --arch lenet5 --limit 600 --batch 64
check_same lenet5-b32 "${SYN[@]}" --arch lenet5 --limit 300 --batch 32 --opt sgd --lr 0.05
check_same pytorchnet "${SYN[@]}" --arch pytorchnet --limit 160 --batch 64 --val 40 --test-limit 40
check_same lenet5-augment "${SYN[@]}" --arch lenet5 --limit 600 --batch 64 --augment

# ---- 2. resume at another rank count
RES=(--data syn --arch lenet5 --val 100 --test-limit 100 --limit 400 --batch 64 --seed 4
     --checkpoint-every 1 --threads 1)
"$PLAIN" train "${RES[@]}" --epochs 1 --out ref.safetensors > r1.txt 2>&1 \
    && "$PLAIN" train --resume ref.safetensors.ckpt --epochs 2 > r2.txt 2>&1 \
    || { echo "FAIL: the one-process resumed run"; cat r1.txt r2.txt; fail=1; }
timeout 300 "${MPIRUN[@]}" -np 2 "$CNN" train "${RES[@]}" --epochs 1 --out mpi.safetensors > m1.txt 2>&1 \
    && timeout 300 "${MPIRUN[@]}" -np 3 "$CNN" train --resume mpi.safetensors.ckpt --epochs 2 > m2.txt 2>&1 \
    || { echo "FAIL: the MPI resumed run"; cat m1.txt m2.txt; fail=1; }
if msg=$("${EQ[@]}" ref.safetensors mpi.safetensors 2>&1); then
    echo "ok: checkpointed at 2 ranks, resumed at 3: $msg"
else
    echo "FAIL: resumed at another rank count: $msg"; fail=1
fi

# ---- 3. failures end the job
LONG=(--data syn --arch lenet5 --val 0 --test-limit 50 --batch 32 --epochs 200 --threads 1
      --out long.safetensors)
timeout 120 "${MPIRUN[@]}" -np 3 "$CNN" train "${LONG[@]}" > kill.txt 2>&1 &
job=$!
for _ in $(seq 100); do grep -q '^batch ' kill.txt && break; sleep 0.2; done
sleep 1
mpirun_pid=$(pgrep -P $job mpirun)
victim=$([ -n "$mpirun_pid" ] && pgrep -P "$mpirun_pid" | sed -n 2p)
if [ -z "$victim" ]; then
    echo "FAIL: no rank process to kill"; fail=1; kill $job
else
    t0=$(date +%s%N)
    kill -9 "$victim"
    wait $job; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    secs=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    if [ $rc = 0 ] || [ $rc = 124 ] || [ $ms -gt 10000 ]; then
        echo "FAIL: a killed rank: mpirun exited $rc after ${secs}s"; sed 's/^/    /' kill.txt | tail; fail=1
    else
        echo "ok: a killed rank ended the job in ${secs}s (exit $rc)"
    fi
fi

# one rank cannot read its data: its message, exit 1, in seconds
mkdir -p empty
t0=$(date +%s)
timeout 60 "${MPIRUN[@]}" -np 2 bash -c \
    'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then d=empty; else d=syn; fi
     exec "$0" train --data $d --arch lenet5 --epochs 1 --val 50 --threads 1 --out bad.safetensors' "$CNN" \
    > bad.txt 2>&1; rc=$?
if [ $rc = 1 ] && grep -q '^\[rank 1\] cnn train: ' bad.txt && [ $(( $(date +%s) - t0 )) -lt 20 ]; then
    echo "ok: a rank without its data ended the job (exit 1): $(grep '^\[rank 1\]' bad.txt | head -1)"
else
    echo "FAIL: a rank without its data: exit $rc"; sed 's/^/    /' bad.txt | head -20; fail=1
fi

# ranks that read different data (or options) stop before training
timeout 60 "${MPIRUN[@]}" -np 2 bash -c \
    'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then l=300; else l=400; fi
     exec "$0" train --data syn --arch lenet5 --epochs 1 --val 50 --limit $l --threads 1 --out d.safetensors' \
    "$CNN" > differ.txt 2>&1; rc=$?
if [ $rc = 1 ] && grep -q "the MPI ranks disagree: rank 1's options" differ.txt \
        && ! grep -q '^epoch ' differ.txt; then
    echo "ok: ranks that disagree stop before training"
else
    echo "FAIL: ranks that disagree: exit $rc"; sed 's/^/    /' differ.txt | head -20; fail=1
fi

# batchnorm: refused under more than one rank
timeout 60 "${MPIRUN[@]}" -np 2 "$CNN" train --data syn --arch best --epochs 1 --val 50 --threads 1 \
    --out bn.safetensors > bn.txt 2>&1; rc=$?
if [ $rc = 2 ] && grep -q "mixes the images of a batch" bn.txt && [ ! -e bn.safetensors ]; then
    echo "ok: a batchnorm model is refused under MPI (exit 2)"
else
    echo "FAIL: batchnorm under MPI: exit $rc"; sed 's/^/    /' bn.txt | head; fail=1
fi
# ---- 4. each rank prepares only the images of its shards
# 640 images in batches of 64 (4 shards): rank 0 runs 2 of 4 shards at 2
# ranks, 1 of 4 at 3 and 4
for spec in 2:320 3:160 4:160; do
    n=${spec%%:*}; want=${spec##*:}
    CNN_MPI_STATS=1 timeout 300 "${MPIRUN[@]}" -np $n "$CNN" train --data syn --arch lenet5 \
        --limit 640 --val 60 --test-limit 100 --batch 64 --epochs 1 --threads 1 \
        --out rows.safetensors > rows.txt 2>&1
    if grep -q "and prepared $want of the 640 images of the training batches" rows.txt; then
        echo "ok: -np $n: rank 0 prepared $want of the 640 training images"
    else
        echo "FAIL: -np $n: rank 0 should prepare $want of 640 images"; sed 's/^/    /' rows.txt | tail -5; fail=1
    fi
done
# a fault in the test set's image 40, which rank 1 runs (shards 2 and 3 of
# 4): rank 1 names it as one process does, though rank 0 never read it
python3 - <<'PY'
import os
def rows(bright_from):  # black images, then bright ones from bright_from on
    return "".join(",".join([str(i % 10)] + [str(0 if i < bright_from else 200)] * 784) + "\n"
                   for i in range(64))
os.makedirs("csvf", exist_ok=True)
open("csvf/train.csv", "w").write(rows(64))
open("csvf/test.csv", "w").write(rows(40))
os.makedirs("csvg", exist_ok=True)  # the fault in a training batch
open("csvg/train.csv", "w").write(rows(40))
open("csvg/test.csv", "w").write(rows(40))
PY
printf 'input 1x28x28\nflatten\nrelu\ndense 300\n' > a300r.txt
"$PLAIN" train --data syn --arch a300r.txt --epochs 1 --val 20 --limit 200 --threads 1 \
    --out m300r.safetensors > /dev/null 2>&1 || { echo "FAIL: training the relu model"; fail=1; }
# every weight 3e38: a black image's outputs stay finite, a bright one's overflow
python3 -c '
import struct, sys
b = open("m300r.safetensors", "rb").read(); n = 8 + struct.unpack("<Q", b[:8])[0]
open("huge.safetensors", "wb").write(b[:n] + struct.pack("<f", 3e38) * ((len(b) - n) // 4))'
HUGE=(train --data csvf --arch a300r.txt --init huge.safetensors --epochs 1 --val 0 --batch 64
      --opt sgd --lr 1e-30 --threads 1 --out h.safetensors)
"$PLAIN" "${HUGE[@]}" > huge1.txt 2>&1
want="non-finite value (NaN or Inf) in the output of layer 2 (dense 300, line 4) for image 40 of the batch"
grep -qF "$want" huge1.txt || { echo "FAIL: one process: no fault for image 40"; sed 's/^/    /' huge1.txt | tail -3; fail=1; }
timeout 60 "${MPIRUN[@]}" -np 2 "$CNN" "${HUGE[@]}" > huge2.txt 2>&1; rc=$?
if [ $rc = 1 ] && grep -qF "$want" huge2.txt && ! grep -q MPI_ABORT huge2.txt; then
    echo "ok: a fault in rank 1's test images: its message on rank 0, every rank exit 1"
else
    echo "FAIL: a fault in rank 1's images: exit $rc"; sed 's/^/    /' huge2.txt | head -20; fail=1
fi
# the same in a training step (rank 1's shards fail, rank 0's do not)
"$PLAIN" "${HUGE[@]/csvf/csvg}" --no-shuffle > step1.txt 2>&1
want=$(grep -m1 'epoch 1, step 1: ' step1.txt)
timeout 60 "${MPIRUN[@]}" -np 2 "$CNN" "${HUGE[@]/csvf/csvg}" --no-shuffle > step2.txt 2>&1; rc=$?
if [ -n "$want" ] && [ $rc = 1 ] && grep -qF "$want" step2.txt && ! grep -q MPI_ABORT step2.txt; then
    echo "ok: a fault in rank 1's training images: one process's message, every rank exit 1"
else
    echo "FAIL: a fault in rank 1's training images: exit $rc (one process: '$want')"
    sed 's/^/    /' step2.txt | head -20; fail=1
fi
exit $fail
