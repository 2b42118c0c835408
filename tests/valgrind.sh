#!/usr/bin/env bash
# A short training run, an evaluation, a prediction and `info` under valgrind
# memcheck: no invalid reads or writes, no use of uninitialised values, no
# definite leaks. Not a ctest (it takes minutes); run it by hand or in CI:
#
#   bash tests/valgrind.sh [path/to/cnn] [source-dir]
#
# The data are the first 300 training and 100 test images of data/mnist when
# it is there (data/fetch.sh), else 300 + 100 synthetic digits. Use a Release
# build configured with -DCNN_NATIVE=OFF: valgrind does not know AVX-512
# instructions (SIGILL), and the GEMM picks its kernel at run time from what
# the (virtual) CPU reports. One thread keeps OpenMP's pool out of the way.
set -euo pipefail
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
cnn=${1:-$src/build/cnn}
[ -x "$cnn" ] || { echo "valgrind.sh: no cnn program at $cnn (build it first)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }

work=$(mktemp -d /tmp/cnn_valgrind_XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data"

# Small IDX files: a slice of MNIST, or strokes drawn per class.
python3 - "$src/data/mnist" "$work/data" <<'EOF'
import os, random, struct, sys
src, dst = sys.argv[1], sys.argv[2]
def slice_idx(split, n):
    with open(os.path.join(src, split + "-images-idx3-ubyte"), "rb") as f:
        _, _, h, w = struct.unpack(">IIII", f.read(16)); img = f.read(n * h * w)
    with open(os.path.join(src, split + "-labels-idx1-ubyte"), "rb") as f:
        f.read(8); lab = f.read(n)
    return img, lab, h, w
def synthetic(n, seed):
    r, img, lab = random.Random(seed), bytearray(), bytearray()
    for i in range(n):
        k = i % 10; px = bytearray(28 * 28)
        for t in range(40):  # a class-dependent stroke with noise
            y = 4 + (t * 20) // 40; x = 4 + (k * 2 + (t * (k + 1)) % 20) % 20
            px[y * 28 + x] = 255 - r.randrange(60)
        img += px; lab.append(k)
    return bytes(img), bytes(lab), 28, 28
for split, n, seed in (("train", 300, 1), ("t10k", 100, 2)):
    try:
        img, lab, h, w = slice_idx(split, n)
    except OSError:
        img, lab, h, w = synthetic(n, seed)
    with open(os.path.join(dst, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + img)
    with open(os.path.join(dst, split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + lab)
EOF
# One test digit as a PGM for `predict`.
python3 - "$work/data" "$work/digit.pgm" <<'EOF'
import sys
with open(sys.argv[1] + "/t10k-images-idx3-ubyte", "rb") as f:
    f.read(16); px = f.read(784)
open(sys.argv[2], "wb").write(b"P5 28 28 255\n" + px)
EOF

vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=yes --quiet)
status=0
run() {
    echo "== valgrind: cnn $*"
    local t0=$SECONDS
    if "${vg[@]}" "$cnn" "$@" > "$work/out.txt" 2> "$work/err.txt"; then
        echo "   clean ($((SECONDS - t0)) s); its last output line:"
        tail -n 1 "$work/out.txt" | sed 's/^/   | /'
    else
        local rc=$?
        echo "   FAILED (exit $rc, $((SECONDS - t0)) s):"
        tail -n 60 "$work/err.txt"
        [ $rc = 132 ] && echo "   (SIGILL: rebuild with -DCNN_NATIVE=OFF for valgrind)"
        status=1
    fi
}
run train --arch simplecnn --data "$work/data" --limit 200 --val 50 --test-limit 100 \
    --epochs 1 --threads 1 --out "$work/model.safetensors"
if [ -f "$work/model.safetensors" ]; then
    run eval --model "$work/model.safetensors" --data "$work/data" --test-limit 100 --threads 1
    run predict --model "$work/model.safetensors" --threads 1 "$work/digit.pgm"
    run info --model "$work/model.safetensors"
fi
# A hostile file takes the error paths: they must not leak or read wild.
printf 'not a model at all' > "$work/bad.safetensors"
echo "== valgrind: cnn info --model (a bad file; exit 1 expected)"
"${vg[@]}" --error-exitcode=99 "$cnn" info --model "$work/bad.safetensors" > /dev/null 2> "$work/err.txt" \
    && rc=0 || rc=$?
if [ "$rc" = 99 ] || [ "$rc" -ge 128 ]; then
    echo "   FAILED (exit $rc):"; tail -n 60 "$work/err.txt"; status=1
else
    echo "   clean (exit $rc)"
fi
[ $status = 0 ] && echo "valgrind: all runs clean" || echo "valgrind: errors found"
exit $status
