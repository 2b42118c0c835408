#!/bin/bash
# mpi_scaling.sh — data parallelism over MPI against threads, on one machine:
# 2 MPI ranks x 1 thread against 1 process x 2 threads (and x 1 thread, for
# scale), one epoch of lenet5
# and of pytorchnet (PyTorch's MNIST example net) on MNIST, interleaved so
# that both see the same machine; images per second (training only, from
# the epoch line), the median of REPEATS runs, and their ratio. Also the
# bytes rank 0 received per training step and the time its exchanges took,
# waiting for the other rank included (CNN_MPI_STATS). All settings
# train the same bits, so only the time differs.
#
#   bench/mpi_scaling.sh [CNN_MPI_BINARY] [REPEATS]
#
# CNN_MPI_BINARY: the program of a build with -DCNN_MPI=ON (started without
# mpirun it is one process). Needs data/mnist (data/fetch.sh mnist).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CNN=${1:-$SRC/build-mpi/cnn}
REPEATS=${2:-3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none)

# net limit -> the run's options: lenet5 a whole epoch, pytorchnet 6000 images
opts() {
    local net=$1 limit=$2
    echo --arch "$net" --epochs 1 --val 0 --test-limit 100 --batch 64 --limit "$limit" \
         --data "$SRC/data/mnist" --out "$OUT/m.safetensors"
}
rate() { sed -n 's/^epoch 1\/1 .*  \([0-9]*\) img\/s$/\1/p' "$1"; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC');" \
     "load $(cut -d' ' -f1-3 /proc/loadavg); $REPEATS runs each, median"
printf '| %-10s | %12s | %13s | %11s | %13s | %17s | %12s |\n' net "1 x 1 thread" "1 x 2 threads" \
    "2 ranks x 1" "ranks/threads" "bytes/step rank 0" "exchange ms"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ -------------- --------------- ------------- \
    --------------- ------------------- --------------
for spec in lenet5:0 pytorchnet:6000; do
    net=${spec%%:*}; limit=${spec##*:}
    : > "$OUT/one"; : > "$OUT/threads"; : > "$OUT/ranks"
    for ((r = 0; r < REPEATS; r++)); do
        # shellcheck disable=SC2046
        "$CNN" train $(opts "$net" "$limit") --threads 1 > "$OUT/t.txt" 2>&1
        rate "$OUT/t.txt" >> "$OUT/one"
        # shellcheck disable=SC2046
        "$CNN" train $(opts "$net" "$limit") --threads 2 > "$OUT/t.txt" 2>&1
        rate "$OUT/t.txt" >> "$OUT/threads"
        # shellcheck disable=SC2046
        CNN_MPI_STATS=1 "${MPIRUN[@]}" -x CNN_MPI_STATS -np 2 "$CNN" train $(opts "$net" "$limit") \
            --threads 1 > "$OUT/r.txt" 2>&1
        rate "$OUT/r.txt" >> "$OUT/ranks"
    done
    bytes=$(sed -n 's/^cnn: MPI: rank 0 received \([0-9]*\) bytes per training step.*/\1/p' "$OUT/r.txt")
    ms=$(sed -n 's/^cnn: MPI: .*, \([0-9.]*\) ms each).*/\1/p' "$OUT/r.txt")
    o=$(median < "$OUT/one"); t=$(median < "$OUT/threads"); m=$(median < "$OUT/ranks")
    printf '| %-10s | %12s | %13s | %11s | %12.2fx | %17s | %12s |\n' "$net" "$o" "$t" "$m" \
        "$(echo "$m / $t" | bc -l)" "$bytes" "$ms"
done
