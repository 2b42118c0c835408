# colour_digits.py — a synthetic colour data set for the tests: MNIST digits
# drawn in a random colour on a random background colour, 3x32x32, the digit
# at a random place. Written as an image-folder tree (OUT/tree/train/<digit>/,
# OUT/tree/test/<digit>/; every other picture at 48x48 or 40x24 instead, so
# that fitting is exercised) and as CSV files (OUT/csv/train.csv,
# OUT/csv/test.csv: the 32x32 pictures, label then pixels in planar order:
# R plane, G, B).
# Usage: colour_digits.py IDX_DIR OUT [TRAIN [TEST]]
import os, sys

import numpy as np
from PIL import Image

from idx import read_idx


src, out = sys.argv[1], sys.argv[2]
counts = {"train": int(sys.argv[3]) if len(sys.argv) > 3 else 3000,
          "test": int(sys.argv[4]) if len(sys.argv) > 4 else 500}
rng = np.random.default_rng(7)


def colours():
    """Ink and background colours whose lumas differ by at least 90."""
    while True:
        ink, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        luma = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
        if abs(luma(ink) - luma(bg)) >= 90:
            return ink, bg


for split, prefix in (("train", "train"), ("test", "t10k")):
    images = read_idx(os.path.join(src, prefix + "-images-idx3-ubyte"))[:counts[split]]
    labels = read_idx(os.path.join(src, prefix + "-labels-idx1-ubyte"))[:counts[split]]
    rows = []
    for i, (digit, k) in enumerate(zip(images, labels)):
        ink, bg = colours()
        canvas = np.zeros((32, 32), np.float32)
        ox, oy = rng.integers(0, 5, 2)
        canvas[oy:oy + 28, ox:ox + 28] = digit / 255.0
        rgb = (bg[None, None, :] * (1 - canvas[..., None]) + ink[None, None, :] * canvas[..., None])
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        rows.append(np.concatenate([[k], rgb.transpose(2, 0, 1).reshape(-1)]))
        d = os.path.join(out, "tree", split, str(k))
        os.makedirs(d, exist_ok=True)
        pic = Image.fromarray(rgb, "RGB")
        if i % 4 == 1:
            pic = pic.resize((48, 48), Image.BILINEAR)
        elif i % 4 == 3:
            # wider than tall: pad leaves black bands, as the training data had
            pic = pic.resize((40, 24), Image.BILINEAR)
        pic.save(os.path.join(d, "%05d.png" % i), compress_level=1)
    os.makedirs(os.path.join(out, "csv"), exist_ok=True)
    with open(os.path.join(out, "csv", split + ".csv"), "w") as f:
        np.savetxt(f, np.array(rows, dtype=np.int32), fmt="%d", delimiter=",")
