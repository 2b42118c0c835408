#!/bin/bash
# busy_threads.sh — the automatic thread count against fixed ones, on a quiet
# machine and beside busy loops: one epoch of lenet5 on MNIST at --threads 1,
# --threads N (every core) and the default (automatic), interleaved so that
# the three see the same machine, as images per second and ratios.
#
#   bench/busy_threads.sh [CNN_BINARY] [REPEATS]
#
# Conditions: quiet; 1 busy loop (the other core of a 2-core machine busy);
# N busy loops (every core shared). Needs data/mnist (data/fetch.sh mnist).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CNN=${1:-$SRC/build/cnn}
REPEATS=${2:-3}
N=$(nproc)
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

rate() { # threads-flag... -> images per second of the epoch
    "$CNN" train --arch lenet5 --epochs 1 --val 0 --test-limit 100 --opt adam --lr 0.005 \
        --data "$SRC/data/mnist" --out "$OUT/m.safetensors" "$@" 2>&1 |
        sed -n 's/^epoch 1\/1 .*  \([0-9]*\) img\/s$/\1/p'
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $N cores; $(date -u '+%Y-%m-%d %H:%M UTC'); $REPEATS runs each, median"
printf '| %-22s | %10s | %10s | %10s | %12s | %12s |\n' condition "1 thread" "$N threads" automatic "auto/1 thr" "auto/$N thr"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------------ ------------ ------------ ------------ -------------- --------------
for busy in 0 1 "$N"; do
    pids=()
    for ((b = 0; b < busy; b++)); do (while :; do :; done) & pids+=($!); done
    sleep 1
    : > "$OUT/one"; : > "$OUT/all"; : > "$OUT/auto"
    for ((r = 0; r < REPEATS; r++)); do
        rate --threads 1 >> "$OUT/one"
        rate --threads "$N" >> "$OUT/all"
        rate >> "$OUT/auto"
    done
    for p in "${pids[@]}"; do kill "$p"; done
    wait 2>/dev/null || true
    one=$(median < "$OUT/one"); all=$(median < "$OUT/all"); auto=$(median < "$OUT/auto")
    label=$([ "$busy" = 0 ] && echo quiet || echo "$busy busy loop(s)")
    printf '| %-22s | %10s | %10s | %10s | %11.2fx | %11.2fx |\n' "$label" "$one" "$all" "$auto" \
        "$(echo "$auto / $one" | bc -l)" "$(echo "$auto / $all" | bc -l)"
done
