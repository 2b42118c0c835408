# mnist_to_folder.py — an IDX data set written out as an image-folder tree
# of PNG files (DIR/train/<class>/<n>.png and DIR/test/<class>/<n>.png), or
# as CSV files (DIR/train.csv, DIR/test.csv: label,pixel0,...), for the
# round-trip tests. Usage:
#   mnist_to_folder.py IDX_DIR OUT_DIR [png|csv] [TRAIN_LIMIT [TEST_LIMIT]]
import os, sys

import numpy as np
from PIL import Image

from idx import read_idx


src, out = sys.argv[1], sys.argv[2]
kind = sys.argv[3] if len(sys.argv) > 3 else "png"
limits = [int(a) for a in sys.argv[4:6]] + [0, 0]
for split, prefix, limit in (("train", "train", limits[0]), ("test", "t10k", limits[1])):
    images = read_idx(os.path.join(src, prefix + "-images-idx3-ubyte"))
    labels = read_idx(os.path.join(src, prefix + "-labels-idx1-ubyte"))
    if limit:
        images, labels = images[:limit], labels[:limit]
    if kind == "csv":
        os.makedirs(out, exist_ok=True)
        rows = np.concatenate([labels[:, None].astype(np.int32),
                               images.reshape(len(images), -1).astype(np.int32)], axis=1)
        with open(os.path.join(out, split + ".csv"), "w") as f:
            f.write("label," + ",".join("pixel%d" % i for i in range(rows.shape[1] - 1)) + "\n")
            np.savetxt(f, rows, fmt="%d", delimiter=",")
        continue
    for k in sorted(set(labels.tolist())):
        os.makedirs(os.path.join(out, split, str(k)), exist_ok=True)
    for i, (img, k) in enumerate(zip(images, labels)):
        Image.fromarray(img, "L").save(os.path.join(out, split, str(k), "%05d.png" % i), compress_level=1)
