# idx.py — reading IDX files (MNIST's format) for the test data scripts.
import gzip, os

import numpy as np


def read_idx(path):
    """The array in path, or in path.gz; exits if neither exists."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            data = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            ndim = data[3]
            dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise SystemExit("no " + path)
