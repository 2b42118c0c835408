#!/bin/bash
# A data set that is a folder of many small files: 100,000 PGM pictures of
# 28x28 in 10 class folders (a single tree, cut by --test-split), decoded
# into the cache by `cnn train` under a limit of 16 open files, then read
# again from the cache. For each run: the data line, the peak resident
# memory and elapsed time (/usr/bin/time -v) and the most files the process
# had open (its /proc/PID/fd sampled every 20 ms).
# Usage: bash bench/manyfiles.sh BUILD_DIR [DIR] [FILES]
# DIR (default /tmp/cnn-manyfiles) keeps the tree between runs; remove it
# afterwards (FILES pictures take about 4 KB of disk each).
BUILD=${1:-build}; DIR=${2:-/tmp/cnn-manyfiles}; N=${3:-100000}
CNN=$BUILD/cnn
[ -x "$CNN" ] || { echo "no $CNN: build first"; exit 2; }
mkdir -p "$DIR"
if [ "$(cat "$DIR/tree.count" 2>/dev/null)" != "$N" ]; then
    rm -rf "$DIR/tree"
    t0=$(date +%s.%N)
    /usr/bin/python3 - "$DIR/tree" "$N" <<'PY' || exit 1
import os, sys
import numpy as np
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(5)
for k in range(10):
    os.makedirs(os.path.join(root, str(k)), exist_ok=True)
for i in range(n):
    # class k: a bright 6x6 block at one of ten places on dark noise
    k = i % 10
    px = rng.integers(0, 40, (28, 28), dtype=np.uint8)
    px[4 + (k // 5) * 12:10 + (k // 5) * 12, 2 + (k % 5) * 5:8 + (k % 5) * 5] = 230
    with open(os.path.join(root, str(k), "%06d.pgm" % i), "wb") as f:
        f.write(b"P5\n28 28\n255\n" + px.tobytes())
PY
    echo "$N" > "$DIR/tree.count"
    echo "wrote $N pictures in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}') s"
fi
rm -rf "$DIR/tree/.cnn-cache"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'); cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "files: $(find "$DIR/tree" -type f | wc -l); du: $(du -sh "$DIR/tree" | cut -f1)"
status=0
for run in first second; do
    ( ulimit -n 16 && exec /usr/bin/time -v "$CNN" train --data "$DIR/tree" --arch lenet5 --epochs 1 \
        --limit 1000 --val 100 --test-limit 100 --threads 2 --out "$DIR/m.safetensors" ) \
        > "$DIR/$run.txt" 2> "$DIR/$run.time" &
    tpid=$!
    # the most descriptors cnn (time's child) held at once
    maxfd=0; pid=""
    while kill -0 $tpid 2> /dev/null; do
        [ -n "$pid" ] || pid=$(pgrep -P $tpid)
        if [ -n "$pid" ]; then
            fds=$(ls /proc/$pid/fd 2> /dev/null | wc -l)
            [ "$fds" -gt "$maxfd" ] && maxfd=$fds
        fi
        sleep 0.02
    done
    wait $tpid; rc=$?
    [ $rc = 0 ] || status=1
    echo "$run run (exit $rc, under ulimit -n 16): at most $maxfd files open"
    grep -E "^data|images from the cache|decoded" "$DIR/$run.txt"
    grep -E "Maximum resident|Elapsed" "$DIR/$run.time"
done
exit $status
