# syn_data.py — the synthetic IDX data set of the CLI tests: class k is a
# bright 6x6 square at one of ten places, jittered by a pixel, on a noisy
# background. Usage: python3 syn_data.py DIR [TRAIN [TEST [TEST_SIZE [gz]]]]
# writes DIR/train-* and DIR/t10k-* (TEST_SIZE: the test images' side,
# 28 unless given, for a data set whose splits disagree; gz: the test files
# gzipped).
import gzip, os, random, struct, sys

out = sys.argv[1]
ntrain = int(sys.argv[2]) if len(sys.argv) > 2 else 700
ntest = int(sys.argv[3]) if len(sys.argv) > 3 else 200
test_side = int(sys.argv[4]) if len(sys.argv) > 4 else 28
gz_test = len(sys.argv) > 5 and sys.argv[5] == "gz"
random.seed(11)


def image(k, side):
    px = bytearray(random.randrange(0, 40) for _ in range(side * side))
    x0 = 1 + (k % 5) * 5 + random.randrange(-1, 2)
    y0 = 4 + (k // 5) * 12 + random.randrange(-1, 2)
    for y in range(y0, min(side, y0 + 6)):
        for x in range(max(0, x0), min(side, x0 + 6)):
            px[y * side + x] = random.randrange(180, 256)
    return bytes(px)


os.makedirs(out, exist_ok=True)
for prefix, n, side, gz in (("train", ntrain, 28, False), ("t10k", ntest, test_side, gz_test)):
    labels = [random.randrange(10) for _ in range(n)]
    opener, ext = (gzip.open, ".gz") if gz else (open, "")
    with opener(os.path.join(out, "%s-images-idx3-ubyte%s" % (prefix, ext)), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, side, side))
        for k in labels:
            f.write(image(k, side))
    with opener(os.path.join(out, "%s-labels-idx1-ubyte%s" % (prefix, ext)), "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(labels))
