#!/usr/bin/env bash
# A short training run, an evaluation, a prediction, `info` and `report` under valgrind
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
# One test digit as a PGM for `predict`, and as PNGs through libpng: white
# ink on a transparent page (RGBA, Adam7-interlaced) and a 2-bit palette
# with a transparent entry.
python3 - "$work/data" "$work" <<'EOF'
import struct, sys, zlib
with open(sys.argv[1] + "/t10k-images-idx3-ubyte", "rb") as f:
    f.read(16); px = f.read(784)
out = sys.argv[2]
open(out + "/digit.pgm", "wb").write(b"P5 28 28 255\n" + px)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
def png(name, depth, ctype, ch, samples, interlace=False, extra=b""):
    def rows(x0, y0, dx, dy):
        out = b""
        for y in range(y0, 28, dy):
            vals = [samples[(y * 28 + x) * ch + c] for x in range(x0, 28, dx) for c in range(ch)]
            if not vals: continue
            if depth == 8: row = bytes(vals)
            else:
                per, row = 8 // depth, bytearray()
                for i in range(0, len(vals), per):
                    row.append(sum(v << (8 - depth * (j + 1)) for j, v in enumerate(vals[i:i + per])))
            out += b"\0" + bytes(row)
        return out
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b"".join(rows(*p) for p in passes) if interlace else rows(0, 0, 1, 1)
    open(out + "/" + name, "wb").write(b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, depth, ctype, 0, 0, int(interlace)))
        + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png("white-on-clear.png", 8, 6, 4, [x for v in px for x in (255, 255, 255, v)], interlace=True)
png("palette.png", 2, 3, 1, [min(3, v // 64) for v in px],
    extra=chunk(b"PLTE", bytes([250, 250, 250, 160, 160, 160, 80, 80, 80, 0, 0, 90])) + chunk(b"tRNS", b"\0"))
EOF
# JPEGs through libjpeg: fuzz seeds (progressive, EXIF-rotated, Adobe CMYK)
for j in digit_progressive digit_exif6_le digit_cmyk; do
    cp "$src/tests/fuzz/corpus/image/$j.jpg" "$work/$j.jpg"
done

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
    run predict --model "$work/model.safetensors" --threads 1 --grid "$work/grid.png" \
        "$work/digit.pgm" "$work/white-on-clear.png" "$work/palette.png" \
        "$work/digit_progressive.jpg" "$work/digit_exif6_le.jpg" "$work/digit_cmyk.jpg"
    run info --model "$work/model.safetensors"
    run report --model "$work/model.safetensors" --data "$work/data" --test-limit 100 --threads 1 \
        --out "$work/report.html"
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
# Damaged pictures take the decoders' error paths (libpng's and libjpeg's
# longjmp back to our cleanup): refused, exit 1, nothing leaked.
if [ -f "$work/model.safetensors" ]; then
    head -c 300 "$work/digit_progressive.jpg" > "$work/cut.jpg"
    head -c 200 "$work/palette.png" > "$work/cut.png"
    echo "== valgrind: cnn predict (two damaged pictures; exit 1 expected)"
    "${vg[@]}" --error-exitcode=99 "$cnn" predict --model "$work/model.safetensors" --threads 1 \
        "$work/cut.jpg" "$work/cut.png" \
        "$src/tests/fuzz/corpus/image/regress_F6_png_chunk_512mb.png" > /dev/null 2> "$work/err.txt" \
        && rc=0 || rc=$?
    if [ "$rc" != 1 ]; then
        echo "   FAILED (exit $rc):"; tail -n 60 "$work/err.txt"; status=1
    else
        echo "   clean (exit $rc)"
    fi
fi
[ $status = 0 ] && echo "valgrind: all runs clean" || echo "valgrind: errors found"
exit $status
