#!/bin/bash
# run_all.sh — every benchmark of bench/, ours and PyTorch's, in one run, then
# bench/make_results.py to turn the JSON into markdown.
#
#   bench/run_all.sh [BUILD_DIR] [OUT_DIR]
#
#   BUILD_DIR  a configured Release build (default: build next to the source)
#   OUT_DIR    where the JSON goes (default: BUILD_DIR/bench-results); the
#              markdown is written to OUT_DIR/RESULTS.md and, with
#              WRITE_RESULTS=1, also to bench/RESULTS.md
#
# Environment: THREADS (thread counts for the main tables, default 1,2),
# SCALING (thread counts for the scaling table, default 1,2,3,4),
# QUICK=1 for a short smoke run (fewer repetitions, the example net's epoch
# skipped), SKIP_GEMM=1, SKIP_TORCH=1.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath -m "${1:-$SRC/build}")
OUT=$(realpath -m "${2:-$BUILD/bench-results}")
SCALING=${SCALING:-1,2,3,4}
QUICK=${QUICK:-0}
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
# jemalloc that keeps freed pages: first touch of fresh memory costs ~20 us
# per 4 KiB page on these VMs, and PyTorch frees and re-allocates its
# activations every step
TORCH_MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1"

mkdir -p "$OUT"
rm -f "$OUT"/*.json
BENCH="$BUILD/bench"

echo "== building" >&2
cmake --build "$BUILD" -j2 --target bench_conv bench_train bench_peak $( [ "${SKIP_GEMM:-0}" = 1 ] || echo bench_gemm ) >&2

COMMANDS=()
LOADS=()
note_load() { LOADS+=("$1|$(cut -d' ' -f1-3 /proc/loadavg)"); }
# run NAME CMD...: log the command line and the load before it, run it
# with its console output in OUT/NAME.log
run() {
    local name=$1
    shift
    note_load "$name"
    COMMANDS+=("$*")
    echo "== $name ($(cut -d' ' -f1-3 /proc/loadavg)): $*" >&2
    "$@" > "$OUT/$name.log" 2>&1 || { echo "run_all: $name failed, see $OUT/$name.log" >&2; tail -5 "$OUT/$name.log" >&2; return 1; }
}

REPS=(); [ "$QUICK" = 1 ] && REPS=(--benchmark_repetitions=1)
GB() { echo --benchmark_format=console --benchmark_out_format=json --benchmark_out="$OUT/$1.json"; }

run peak "$BENCH/bench_peak" --threads=1,2 $(GB peak) "${REPS[@]}"
run conv "$BENCH/bench_conv" --threads="$SCALING" $(GB conv) "${REPS[@]}"
if [ "$QUICK" = 1 ]; then EPOCH=(--epoch_threads=0); else EPOCH=(--epoch_threads=2); fi
run train "$BENCH/bench_train" --threads="$SCALING" "${EPOCH[@]}" $(GB train) "${REPS[@]}"
# the same steps with sleeping instead of spinning OpenMP workers (FINDINGS.md F2)
if [ "$QUICK" = 1 ]; then PEPOCH=(--epoch_threads=0); else PEPOCH=(--epoch_threads=2); fi
run train_passive env OMP_WAIT_POLICY=passive "$BENCH/bench_train" --threads="$SCALING" \
    "${PEPOCH[@]}" --benchmark_filter='train|latency|epoch/pytorchnet' $(GB train_passive) "${REPS[@]}"
if [ "${SKIP_GEMM:-0}" != 1 ] && [ -x "$BENCH/bench_gemm" ]; then
    # OpenBLAS's AVX-512 kernels: the environment may pin it to Haswell's
    # single-threaded only: the GEMM targets are 1-thread figures
    run gemm env -u OPENBLAS_CORETYPE "$BENCH/bench_gemm" --benchmark_filter='BM_ours/.*/thr:1$|BM_fma' \
        $(GB gemm) "${REPS[@]}"
fi
if [ "${SKIP_TORCH:-0}" != 1 ]; then
    MIN=0.5; [ "$QUICK" = 1 ] && MIN=0.2
    for t in 1 2; do
        run torch_t$t env -u OPENBLAS_CORETYPE LD_PRELOAD=$JEMALLOC MALLOC_CONF=$TORCH_MALLOC_CONF \
            OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
            /usr/bin/python3 "$SRC/bench/peer_pytorch.py" --threads $t --min-time $MIN \
            --models-dir "$SRC/models" --out "$OUT/torch_t$t.json"
    done
fi
note_load end

# the machine, the run, the commands: meta.json for make_results.py
INVOCATION="$( if [ "$QUICK" = 1 ]; then echo "QUICK=1 "; fi )SCALING=$SCALING bench/run_all.sh ${1:-} ${2:-}"
python3 - "$OUT/meta.json" "$SRC" "$TORCH_MALLOC_CONF" "$INVOCATION" "${COMMANDS[@]}" -- "${LOADS[@]}" <<'EOF'
import json, subprocess, sys, re, time
out, src, mconf, invocation = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rest = sys.argv[5:]
cut = rest.index("--")
commands, loads = rest[:cut], rest[cut + 1:]
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return ""
lscpu = sh("lscpu")
def field(name):
    m = re.search(r"^%s:\s*(.*)$" % re.escape(name), lscpu, re.M)
    return m.group(1).strip() if m else ""
flags = field("Flags").split()
dirty = sh("git", "-C", src, "status", "--porcelain", "--untracked-files=no")
meta = {
    "cpu": "%s (family %s, model %s)" % (field("Model name"), field("CPU family"), field("Model")),
    "cores": sh("nproc"),
    "isa": "avx2: %s, avx512f: %s" % ("avx2" in flags, "avx512f" in flags),
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "commit": sh("git", "-C", src, "rev-parse", "--short", "HEAD") + (" (+ uncommitted changes)" if dirty else ""),
    "compiler": sh("cc", "--version").splitlines()[0] if sh("cc", "--version") else "",
    "torch": sh("/usr/bin/python3", "-c", "import torch; print(torch.__version__)"),
    "malloc_conf": mconf,
    "commands": commands,
    "load": [l.split("|", 1) for l in loads],
    "script": "bench/run_all.sh",
    "invocation": invocation,
}
try:
    meta["simd"] = json.load(open(out.replace("meta.json", "conv.json")))["context"].get("simd", "")
except Exception:
    pass
json.dump(meta, open(out, "w"), indent=1)
EOF

python3 "$SRC/bench/make_results.py" "$OUT" --out "$OUT/RESULTS.md" --headline "$OUT/HEADLINE.md"
if [ "${WRITE_RESULTS:-0}" = 1 ]; then cp "$OUT/RESULTS.md" "$SRC/bench/RESULTS.md"; fi
echo "== wrote $OUT/RESULTS.md" >&2
