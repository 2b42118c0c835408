#!/bin/bash
# Stopping a run by a signal loses nothing:
#  1. SIGINT (Ctrl-C) and SIGTERM (timeout, kill, a container stopping)
#     mid-run save the checkpoint and the model so far, exit 130 / 143, and
#     print a resume command carrying every option given (--history,
#     --threads, --test-limit, ...), shell-quoted: run as printed it ends
#     with the uninterrupted run's model, byte for byte, and its history.
#     A stop during the (long) test pass is seen between its batches.
#  2. Signals arriving while the checkpoint is being written (a library
#     shim holds the save's rename for a second, so they do) wait for the
#     save: the process is not killed and the checkpoint resumes exactly.
#  3. A save killed by SIGKILL leaves only a temporary file, which the next
#     save of the same file removes.
# Usage: bash tests/cli_signals.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"
syn_data 700 200
# a small net with state besides its weights: batchnorm statistics, and
# dropout drawing from the model RNG
cp "$SRC/tests/data/net_with_state.txt" net.txt
# 30 small epochs: long enough to be stopped in the middle on any machine
RUN=(--data syn --arch net.txt --batch 4 --val 100 --opt momentum --lr 0.01 --augment --seed 5
     --threads 2 --test-limit 150 --epochs 30)
"$CNN" train "${RUN[@]}" --out full.safetensors --history full.csv > full.txt 2>&1 \
    || { echo "FAIL: the uninterrupted run"; cat full.txt; exit 1; }

same_history() {  # the numbers of two history files (not the wall times)
    python3 - "$1" "$2" <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
keys = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc")
if [[r[k] for k in keys] for r in a] != [[r[k] for k in keys] for r in b]:
    print("FAIL: the histories %s and %s differ" % (sys.argv[1], sys.argv[2])); sys.exit(1)
PY
}

# start_run OUT LOG [env...]: the run in the background, its pid in $pid;
# returns once it has printed its first epoch
start_run() {
    local out=$1 log=$2; shift 2
    env "$@" "$CNN" train "${RUN[@]}" --out "$out" --history "$out.csv" > "$log" 2>&1 &
    pid=$!
    for i in $(seq 1 1500); do grep -q "^epoch 1/" "$log" && return 0; sleep 0.02; done
    echo "FAIL: the run printed no epoch in 30 s"; cat "$log"; return 1
}

# resume_as_printed LOG OUT: run the printed command, compare with the full run
resume_as_printed() {
    local log=$1 out=$2
    local cmd; cmd=$(sed -n 's/^Resume with: //p' "$log")
    [ -n "$cmd" ] || { echo "FAIL: no resume command in $log"; cat "$log"; fail=1; return; }
    for opt in "--history" "--threads 2" "--test-limit 150" "--augment" "--epochs 30" "--out"; do
        case "$cmd" in *"$opt"*) ;; *) echo "FAIL: the resume command lacks $opt: $cmd"; fail=1 ;; esac
    done
    eval "$cmd" > "$log.resumed" 2>&1 || { echo "FAIL: the printed resume command: $cmd"; cat "$log.resumed"; fail=1; return; }
    grep -q "^resuming " "$log.resumed" || { echo "FAIL: the command did not resume"; fail=1; }
    cmp full.safetensors "$out" || { echo "FAIL: $out resumed after a signal differs from the uninterrupted run's"; fail=1; }
    same_history full.csv "$out.csv" || fail=1
}

# 1. SIGINT and SIGTERM mid-run; the output names have a space and a quote
for sig in INT TERM; do
    out="run $sig's.safetensors"; log=$sig.txt
    start_run "$out" $log || { fail=1; continue; }
    kill -$sig $pid; wait $pid; rc=$?
    want=$([ $sig = INT ] && echo 130 || echo 143)
    if [ $rc = 0 ]; then
        echo "FAIL: the run finished before SIG$sig arrived"; fail=1; continue
    fi
    [ $rc = $want ] || { echo "FAIL: stopped by SIG$sig, exit $rc (expected $want)"; cat $log; fail=1; continue; }
    grep -q "stopped by SIG$sig" $log && grep -q "saved the checkpoint to $out.ckpt and the model so far to $out" $log \
        || { echo "FAIL: the SIG$sig message"; cat $log; fail=1; }
    [ -f "$out.ckpt" ] && [ -f "$out" ] || { echo "FAIL: SIG$sig: the checkpoint or the model was not saved"; ls; fail=1; continue; }
    "$CNN" info --model "$out" > info.txt 2>&1 || { echo "FAIL: the model saved at SIG$sig does not load"; cat info.txt; fail=1; }
    resume_as_printed $log "$out"
done

# 1b. a stop during the test pass (every epoch trained; the test is long:
# 3000 images through the textbook loops) is seen between its batches; the
# resumed run only tests
python3 "$SRC/tests/syn_data.py" big 700 3000 || { echo "FAIL: could not write the big test set"; exit 1; }
printf 'input 1x28x28\nconv 32 3x3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 10\nsoftmax\n' > net32.txt
TEST_RUN=(--data big --arch net32.txt --kernels ref --epochs 1 --limit 32 --batch 16 --val 0 --threads 2)
"$CNN" train "${TEST_RUN[@]}" --out tfull.safetensors > tfull.txt 2>&1 || { echo "FAIL: the run with a long test"; cat tfull.txt; fail=1; }
"$CNN" train "${TEST_RUN[@]}" --out tint.safetensors > tint.txt 2>&1 &
pid=$!
for i in $(seq 1 1500); do grep -q "^epoch 1/1" tint.txt && break; sleep 0.02; done
kill -INT $pid; wait $pid; rc=$?
if [ $rc != 130 ] || ! grep -q "stopped by SIGINT (Ctrl-C) testing" tint.txt; then
    echo "FAIL: a Ctrl-C during the test pass (exit $rc)"; cat tint.txt; fail=1
else
    "$CNN" train --resume tint.safetensors.ckpt > tres.txt 2>&1 || { echo "FAIL: resuming before the test"; cat tres.txt; fail=1; }
    grep -q "^epoch " tres.txt && { echo "FAIL: the resumed run trained again"; fail=1; }
    cmp tfull.safetensors tint.safetensors || { echo "FAIL: the model resumed at the test differs"; fail=1; }
fi

# 2. more signals while the checkpoint is written. The shim makes rename()
# of a *.ckpt file announce itself (a file "saving") and wait a second.
CC=${CC:-cc}
cat > shim.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    size_t n = strlen(to);
    const char *mode = getenv("SHIM_MODE");
    if (mode && n > 5 && strcmp(to + n - 5, ".ckpt") == 0) {
        if (strcmp(mode, "kill") == 0) raise(SIGKILL);
        close(open("saving", O_WRONLY | O_CREAT, 0644));
        struct timespec ts = {1, 0};
        while (nanosleep(&ts, &ts) != 0) {}
    }
    return real(from, to);
}
C
if ! $CC -shared -fPIC -o shim.so shim.c -ldl 2> cc.txt; then
    echo "SKIP (parts 2, 3): no C compiler for the shim"; cat cc.txt
else
    # a sanitizer build must accept a preloaded library ahead of its runtime
    SHIM=(LD_PRELOAD="$T/shim.so" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
    out=burst.safetensors
    if start_run $out burst.txt "${SHIM[@]}" SHIM_MODE=slow; then
        kill -INT $pid
        for i in $(seq 1 500); do [ -f saving ] && break; sleep 0.01; done
        [ -f saving ] || echo "FAIL: the checkpoint save did not begin"
        # the save is under way: a second Ctrl-C, a third, and a SIGTERM
        kill -INT $pid; sleep 0.05; kill -INT $pid; kill -TERM $pid
        wait $pid; rc=$?
        [ $rc = 130 ] && grep -q "stopped by SIGINT" burst.txt \
            || { echo "FAIL: signals during the save: exit $rc"; cat burst.txt; fail=1; }
        ls burst.safetensors.ckpt.tmp.* > /dev/null 2>&1 && { echo "FAIL: a temporary file is left"; fail=1; }
        [ -f $out.ckpt ] && resume_as_printed burst.txt $out
    else
        fail=1
    fi

    # 3. SIGKILL in the middle of saving a checkpoint
    rm -f saving
    # (in a subshell, whose stderr takes the shell's "Killed" notice)
    ( env "${SHIM[@]}" SHIM_MODE=kill "$CNN" train "${RUN[@]}" --epochs 2 --checkpoint-every 1 \
        --out k.safetensors > k.txt 2>&1; echo $? > k.rc ) 2> /dev/null
    rc=$(cat k.rc)
    [ $rc = 137 ] || { echo "FAIL: the shim did not kill the save (exit $rc)"; cat k.txt; fail=1; }
    ls k.safetensors.ckpt.tmp.* > /dev/null 2>&1 || { echo "FAIL: the killed save left no temporary file"; ls; fail=1; }
    [ -e k.safetensors.ckpt ] && { echo "FAIL: a killed save left a checkpoint"; fail=1; }
    "$CNN" train "${RUN[@]}" --epochs 2 --checkpoint-every 1 --out k.safetensors > k2.txt 2>&1 \
        || { echo "FAIL: the run after the killed one"; cat k2.txt; fail=1; }
    ls k.safetensors.ckpt.tmp.* > /dev/null 2>&1 && { echo "FAIL: the stale temporary file was not removed"; ls; fail=1; }
    "$CNN" train --resume k.safetensors.ckpt --epochs 3 --out k3.safetensors > k3.txt 2>&1 \
        || { echo "FAIL: the checkpoint saved after the killed save does not resume"; cat k3.txt; fail=1; }
fi

[ $fail = 0 ] && echo "PASS: cli_signals"
exit $fail
