# tensors_equal.py — whether two safetensors files hold the same tensors:
# the same names, dtypes and shapes, and byte-identical data (metadata such
# as the run's record may differ). Usage: python3 tensors_equal.py A B
import json, struct, sys


def tensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    data = blob[8 + hlen:]
    header.pop("__metadata__", None)
    return {name: (t["dtype"], t["shape"], data[t["data_offsets"][0]:t["data_offsets"][1]])
            for name, t in header.items()}


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if a.keys() != b.keys():
    sys.exit("different tensors: %s vs %s" % (sorted(a), sorted(b)))
bad = [n for n in sorted(a) if a[n] != b[n]]
if bad:
    sys.exit("%d of %d tensors differ: %s" % (len(bad), len(a), ", ".join(bad[:8])))
print("%d tensors, byte-identical" % len(a))
