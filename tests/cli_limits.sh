#!/bin/bash
# Memory: --mem-limit parses sizes and rejects junk (exit 2); a model or a
# batch that needs more than the limit is refused before it is allocated,
# with what it needs and what the limit is (exit 1), by train, eval and
# predict, under --mem-limit and under the default; `cnn info` on a
# 446M-parameter architecture takes well under a second and a few MB, and
# still prints the right totals; a model file declaring a huge architecture
# with few bytes is refused by the loader.
# Usage: bash tests/cli_limits.sh <cnn-binary> <source-dir> <build-dir>
CNN=$1; SRC=$2; BUILD=$3
. "$SRC/tests/lib/cli.sh"

# Runs a command and prints "seconds peak-RSS-in-KiB" of it (its children
# included) to stats.txt; its output goes to out.txt.
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
with open("out.txt", "w") as out:
    rc = subprocess.call(sys.argv[1:], stdout=out, stderr=subprocess.STDOUT)
dt = time.time() - t
open("stats.txt", "w").write("%.3f %d\n" % (dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
PY
}

# a small 28x28 data set, and a model file written here: a conv layer of
# 2048 filters pooled to one value each (1.3 TiB of activations at batch
# 65536), its weights zero
python3 - <<'PY' || { echo "FAIL: could not write the files"; exit 1; }
import json, os, struct
os.mkdir("syn")
for prefix, n in (("train", 40), ("t10k", 20)):
    labels = [i % 10 for i in range(n)]
    with open("syn/%s-images-idx3-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28)); f.write(bytes((i * 7 + j) % 256 for i in range(n) for j in range(784)))
    with open("syn/%s-labels-idx1-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">II", 0x801, n)); f.write(bytes(labels))
open("p.pgm", "wb").write(b"P5\n28 28\n255\n" + bytes(255 if 8 < x < 20 and 5 < y < 23 else 0 for y in range(28) for x in range(28)))
def model(path, arch, tensors):
    header, data = {"__metadata__": {"format": "cnn", "format_version": "1", "arch": arch}}, b""
    for name, shape in tensors:
        n = 1
        for d in shape: n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += b"\0" * (4 * n)
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
model("wide.safetensors", "input 1x28x28\nconv 2048 3x3 pad=1\nmaxpool 28\nflatten\ndense 10\n",
      [("0.weight", [2048, 1, 3, 3]), ("0.bias", [2048]), ("3.weight", [10, 2048]), ("3.bias", [10])])
# an architecture of 785 million parameters in a file of 40 bytes of data
model("liar.safetensors", "input 1x28x28\nflatten\ndense 1000000\n",
      [("1.weight", [2, 4]), ("1.bias", [2])])
PY

# ---- --mem-limit: sizes and junk
for cmd in train eval predict; do
    expect 0 "--mem-limit SIZE .*\(default: 80%\)" -- "$CNN" $cmd --help
done
for v in 0 -1G abc 12Q 150% 0x10 2GG nan 1e400 "2 G" 50%x; do
    expect 2 "^cnn eval: --mem-limit: expected a size such as 2G, 512M, 1.5GiB or 50%, got '$v'" -- \
        "$CNN" eval --model wide.safetensors --mem-limit "$v"
done
expect 2 "^cnn train: --mem-limit: expected a size" -- "$CNN" train --data syn --mem-limit lots
expect 2 "^cnn predict: --mem-limit: expected a size" -- "$CNN" predict --model wide.safetensors --mem-limit 1Z p.pgm
# what each size means, read back from the refusal of a 1-image batch
# that needs ~20 MiB
for pair in "10M:10.0 MiB" "10m:10.0 MiB" "10MiB:10.0 MiB" "10MB:10.0 MiB" "0.5G:512.0 MiB" \
            "1.5g:1.5 GiB" "4096K:4.0 MiB" "1048576:1.0 MiB" "1000000B:976.6 KiB"; do
    v=${pair%%:*}; shown=${pair#*:}
    if [ "$v" = 0.5G ] || [ "$v" = 1.5g ]; then
        expect 0 "^p.pgm: " -- "$CNN" predict --model wide.safetensors --mem-limit "$v" p.pgm
    else
        expect 1 "the memory limit is $shown \(--mem-limit $v\)" -- \
            "$CNN" predict --model wide.safetensors --mem-limit "$v" p.pgm
    fi
done
expect 1 "memory limit (is|of) [0-9.]+ [KMG]iB \(--mem-limit 0.001%\)" -- \
    "$CNN" predict --model wide.safetensors --mem-limit 0.001% p.pgm

# ---- refusals with the need and the limit, before allocating
# parameters: 78.5 million of them need 599 MiB with their gradients
printf 'input 1x28x28\nflatten\ndense 100000\n' > params.txt
measure "$CNN" train --data syn --arch params.txt --mem-limit 100M
rc=$?
[ $rc = 1 ] && grep -q "params.txt: the model's 78500000 parameters and their gradients need 598.9 MiB; the memory limit is 100.0 MiB (--mem-limit 100M)" out.txt \
    || { echo "FAIL: train refusing parameters over the limit (rc $rc)"; cat out.txt; fail=1; }
[ "$(cut -d' ' -f2 stats.txt)" -lt 150000 ] || { echo "FAIL: the refused run peaked at $(cut -d' ' -f2 stats.txt) KiB"; fail=1; }
# a batch: 16 filters of 28x28 need ~50 MiB at batch 256 (train sets up 256)
printf 'input 1x28x28\nconv 16 3x3 pad=1\nrelu\nflatten\ndense 10\n' > acts.txt
expect 1 "^cnn train: batch 256 of this model needs [0-9.]+ MiB \(.* of parameters and gradients, .* of activations and layer workspaces, .* to run in shards on 2 threads\); the memory limit is 20.0 MiB \(--mem-limit 20M\)$" -- \
    "$CNN" train --data syn --arch acts.txt --mem-limit 20M --threads 2 --val 10
# info's estimates on one thread, to train (X) and to evaluate (Y), hold:
# a limit between them leaves room for the batch but not for the
# optimizer's state; a little above X, training runs
OMP_NUM_THREADS=1 "$CNN" info --arch acts.txt > info.txt 2>&1
read X Y <<< "$(sed -n 's/^Memory at batch 256: *\([0-9.]*\) MiB to train, \([0-9.]*\) MiB to evaluate on 1 thread;.*/\1 \2/p' info.txt)"
[ -n "$X" ] && [ -n "$Y" ] || { echo "FAIL: info's memory line"; cat info.txt; fail=1; X=60 Y=50; }
mid=$(python3 -c "print('%.1fM' % (($X + $Y) / 2))")
expect 1 "^cnn train: training at batch 256, this model needs $X MiB \(.* of optimizer state, .*\); the memory limit is .* \(--mem-limit $mid\)$" -- \
    "$CNN" train --data syn --arch acts.txt --mem-limit "$mid" --threads 1 --val 10 --opt adam
above=$(python3 -c "print('%.1fM' % ($X + 2))")
expect 0 "Saved the model" -- "$CNN" train --data syn --arch acts.txt --mem-limit "$above" --threads 1 \
    --epochs 1 --val 10 --opt adam --out acts.safetensors
expect 1 "^cnn eval: batch 256 of this model needs .*; the memory limit is 5.0 MiB \(--mem-limit 5M\)$" -- \
    "$CNN" eval --model acts.safetensors --data syn --mem-limit 5M
expect 0 "Test accuracy" -- "$CNN" eval --model acts.safetensors --data syn --mem-limit 5M --batch 8
# the default limit: 80% of the memory; this batch would need 1.3 TiB
measure "$CNN" eval --model wide.safetensors --data syn --batch 65536
rc=$?
[ $rc = 1 ] && grep -Eq "batch 65536 of this model needs [0-9.]+ GiB .*; the memory limit is [0-9.]+ [MG]iB \(80% of the memory; --mem-limit sets it\)$" out.txt \
    || { echo "FAIL: eval over the default limit (rc $rc)"; cat out.txt; fail=1; }
[ "$(cut -d' ' -f2 stats.txt)" -lt 150000 ] || { echo "FAIL: the refused run peaked at $(cut -d' ' -f2 stats.txt) KiB"; fail=1; }

# ---- info from shapes alone: fast and small, whatever the model's size
printf 'input 3x224x224\nflatten\ndense 2944\nrelu\ndense 1000\n' > huge.txt
measure "$CNN" info --arch huge.txt
rc=$?
read secs rss < stats.txt
[ $rc = 0 ] || { echo "FAIL: cnn info --arch huge.txt exited $rc"; cat out.txt; fail=1; }
grep -q "Total params: *446,102,376$" out.txt || { echo "FAIL: info's total"; cat out.txt; fail=1; }
grep -Eq "dense 2944 +2944 +443,157,376 " out.txt || { echo "FAIL: info's dense row"; cat out.txt; fail=1; }
grep -q "Weights memory: *1.7 GiB (float32, 446,102,376 floats)" out.txt || { echo "FAIL: info's weights memory"; cat out.txt; fail=1; }
grep -Eq "Memory at batch 256: +[0-9.]+ GiB to train, [0-9.]+ GiB to evaluate" out.txt || { echo "FAIL: info's memory line"; cat out.txt; fail=1; }
python3 -c "import sys; sys.exit(0 if $secs < 1.0 else 1)" || { echo "FAIL: cnn info took $secs s"; fail=1; }
[ "$rss" -lt 100000 ] || { echo "FAIL: cnn info peaked at $rss KiB"; fail=1; }
echo "info --arch huge.txt: $secs s, peak $rss KiB"
# a model file that is fine keeps working
expect 0 "Total params: *40,970$" -- "$CNN" info --model wide.safetensors
# an architecture far larger than its file is refused by the loader
expect 1 "cannot load the model: liar.safetensors: arch: the architecture needs" -- "$CNN" info --model liar.safetensors

[ $fail = 0 ] && echo "PASS: cli_limits"
exit $fail
