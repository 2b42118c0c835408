#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Valid small files of each kind (plus a few near-misses), so the fuzzers start
deep inside the formats. Run from anywhere: python3 tests/fuzz/make_seeds.py
Needs the standard library, and Pillow (Debian: python3-pil) for the JPEG
seeds, which are skipped without it. The checkpoint seeds come from tiny
training runs: give the cnn program with --cnn build/cnn (skipped without
it). The corpora are committed; rerun this only to change the seeds."""
import argparse
import gzip
import io
import json
import os
import shutil
import struct
import sys
import subprocess
import sysconfig
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def digit(w, h, ink=255, paper=0):
    """A w x h grayscale picture of a '7'-ish stroke."""
    px = bytearray([paper] * (w * h))
    for x in range(w // 5, 4 * w // 5):
        px[(h // 5) * w + x] = ink
    for y in range(h // 5, 4 * h // 5):
        x = 4 * w // 5 - (y - h // 5) * (3 * w // 5) // max(1, 3 * h // 5)
        px[y * w + max(0, min(w - 1, x))] = ink
    return bytes(px)


# ------------------------------------------------------------------- IDX
def idx_images(n, h, w):
    pix = bytes((i * 37 + 11) % 256 for i in range(n * h * w))
    return struct.pack(">BBBBIII", 0, 0, 8, 3, n, h, w) + pix


def idx_labels(n, classes=10):
    return struct.pack(">BBBBI", 0, 0, 8, 1, n) + bytes(i % classes for i in range(n))


def idx_pair(flags, images, labels):
    """fuzz_idx's input: flag byte, LE32 length of the images file, images, labels."""
    return bytes([flags]) + struct.pack("<I", len(images)) + images + labels


def idx_seeds():
    img, lab = idx_images(3, 4, 5), idx_labels(3)
    put("idx", "pair3_raw", idx_pair(0, img, lab))
    put("idx", "pair3_harness_gzip", idx_pair(3, img, lab))
    put("idx", "pair3_file_gzip", idx_pair(0, gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)))
    put("idx", "pair1_28x28", idx_pair(0, idx_images(1, 28, 28), idx_labels(1)))
    put("idx", "count_mismatch", idx_pair(0, idx_images(2, 2, 2), idx_labels(3)))
    put("idx", "truncated_images", idx_pair(0, img[:-3], lab))
    put("idx", "trailing_labels", idx_pair(0, img, lab + b"xx"))
    put("idx", "swapped", idx_pair(0, lab, img))
    put("idx", "empty", idx_pair(0, b"", b""))


# ----------------------------------------------------------------- images
def png(w, h, px, color_type=0, channels=1):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + px[y * w * channels:(y + 1) * w * channels] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_any(w, h, depth, ctype, samples, palette=None, trns=None, exif=None, interlace=False):
    """Any PNG: samples are w*h*channels numbers below 2**depth (palette
    indices for colour type 3), packed and, if asked, Adam7-interlaced here."""
    ch = CHANNELS[ctype]

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    def rows(x0, y0, dx, dy):
        out = b""
        for y in range(y0, h, dy):
            vals = [samples[(y * w + x) * ch + c] for x in range(x0, w, dx) for c in range(ch)]
            if not vals:
                continue
            if depth == 16:
                row = b"".join(struct.pack(">H", v) for v in vals)
            elif depth == 8:
                row = bytes(vals)
            else:
                per, row = 8 // depth, bytearray()
                for i in range(0, len(vals), per):
                    byte = 0
                    for j, v in enumerate(vals[i:i + per]):
                        byte |= v << (8 - depth * (j + 1))
                    row.append(byte)
                row = bytes(row)
            out += b"\0" + row
        return out

    raw = b"".join(rows(*p) for p in ADAM7) if interlace else rows(0, 0, 1, 1)
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    if exif:
        body += chunk(b"eXIf", exif)
    if palette:
        body += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        body += chunk(b"tRNS", trns)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def tiff_orientation(o, big_endian):
    e = ">" if big_endian else "<"
    return ((b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", 1)
            + struct.pack(e + "HHIHH", 0x0112, 3, 1, o, 0) + struct.pack(e + "I", 0))


def jpeg_seeds(w, h, px):
    try:
        from PIL import Image
    except ImportError:
        print("make_seeds: no Pillow (python3-pil): JPEG seeds skipped")
        return
    grey = Image.frombytes("L", (w, h), px)
    colour = Image.merge("RGB", (grey, grey.point(lambda v: v // 2), grey.point(lambda v: 255 - v)))

    def jpeg(img, **kw):
        b = io.BytesIO()
        img.save(b, "JPEG", quality=90, **kw)
        return b.getvalue()
    put("image", "digit_grey.jpg", jpeg(grey))
    put("image", "digit_420.jpg", jpeg(colour, subsampling=2))
    put("image", "digit_progressive.jpg", jpeg(colour, progressive=True))
    put("image", "digit_grey_progressive.jpg", jpeg(grey, progressive=True))
    put("image", "digit_restart.jpg", jpeg(colour, subsampling=0, restart_marker_blocks=1))
    put("image", "digit_exif6_le.jpg", jpeg(grey, exif=b"Exif\0\0" + tiff_orientation(6, False)))
    put("image", "digit_exif8_be.jpg", jpeg(colour, exif=b"Exif\0\0" + tiff_orientation(8, True)))
    put("image", "digit_cmyk.jpg", jpeg(Image.merge("CMYK", (grey, grey, grey, grey.point(lambda v: v // 3)))))


def bmp8(w, h, px):
    row = (w + 3) & ~3
    data = b"".join(px[(h - 1 - y) * w:(h - y) * w] + b"\0" * (row - w) for y in range(h))
    pal = b"".join(bytes([i, i, i, 0]) for i in range(256))
    off = 14 + 40 + len(pal)
    return (b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off)
            + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 0, len(data), 2835, 2835, 256, 0)
            + pal + data)


def gif(w, h, px):
    """A 2-colour GIF with a clear code before every pixel (valid, if fat)."""
    pal = b"\0\0\0\xff\xff\xff" + b"\0" * 6  # 4 entries, min code size 2
    codes = []
    for v in px:
        codes += [4, 1 if v > 127 else 0]
    codes.append(5)
    bits, nbits, out = 0, 0, bytearray()
    for c in codes:  # 3-bit codes: a clear before each keeps the width fixed
        bits |= c << nbits
        nbits += 3
        while nbits >= 8:
            out.append(bits & 255)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 255)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0x81, 0, 0) + pal
            + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02" + blocks + b"\0;")


def image_seeds():
    w, h = 12, 16
    px = digit(w, h)
    dark_on_light = digit(w, h, ink=20, paper=230)
    put("image", "digit.png", png(w, h, px))
    put("image", "digit_rgba.png", png(w, h, b"".join(bytes([v, v, v, 255 if v else 0]) for v in px), 6, 4))
    put("image", "digit_light.png", png(w, h, dark_on_light))
    put("image", "digit.pgm", b"P5\n%d %d\n255\n" % (w, h) + px)
    put("image", "digit16.pgm", b"P5 %d %d 65535\n" % (w, h) + b"".join(struct.pack(">H", v * 257) for v in px))
    put("image", "digit_ascii.pgm", b"P2\n# a comment\n%d %d\n255\n" % (w, h)
        + b" ".join(b"%d" % v for v in px) + b"\n")
    put("image", "digit.ppm", b"P6\n%d %d\n255\n" % (w, h) + b"".join(bytes([v, v // 2, 0]) for v in px))
    put("image", "digit_ascii.ppm", b"P3 %d %d 15\n" % (w, h) + b" ".join(b"%d %d %d" % (v >> 4, v >> 4, v >> 4) for v in px))
    put("image", "digit.bmp", bmp8(w, h, px))
    put("image", "digit.gif", gif(w, h, px))
    put("image", "blank.pgm", b"P5 4 4 255\n" + b"\x80" * 16)
    # PNG variants: palettes of every depth (with and without tRNS), grey
    # below 8 bits and at 16, colour keys, alpha, interlacing, eXIf
    ink = [1 if v else 0 for v in px]
    for depth in (1, 2, 4, 8):
        put("image", "digit_pal%d.png" % depth, png_any(w, h, depth, 3, ink, palette=[(250, 250, 240), (20, 20, 90)]))
        put("image", "digit_grey%d.png" % depth, png_any(w, h, depth, 0, [v * ((1 << depth) - 1) for v in ink]))
    put("image", "digit_pal_trns.png", png_any(w, h, 8, 3, ink, palette=[(0, 0, 0), (255, 255, 255)], trns=b"\0"))
    put("image", "digit_grey16.png", png_any(w, h, 16, 0, [v * 257 for v in px]))
    put("image", "digit_grey_key.png", png_any(w, h, 8, 0, list(px), trns=struct.pack(">H", 0)))
    put("image", "digit_rgb16_key.png", png_any(w, h, 16, 2, [v * 257 for v in px for _ in range(3)],
                                               trns=struct.pack(">HHH", 0, 0, 0)))
    put("image", "digit_ga.png", png_any(w, h, 8, 4, [x for v in px for x in (255, v)]))
    put("image", "digit_rgba16.png", png_any(w, h, 16, 6, [x for v in px for x in (65535, 65535, 65535, v * 257)]))
    put("image", "digit_adam7.png", png_any(w, h, 8, 0, list(dark_on_light), interlace=True))
    put("image", "digit_adam7_pal2.png", png_any(w, h, 2, 3, ink, palette=[(255, 255, 255), (0, 0, 0)], interlace=True))
    put("image", "digit_exif6.png", png_any(w, h, 8, 0, list(dark_on_light), exif=tiff_orientation(6, True)))
    jpeg_seeds(w, h, dark_on_light)
    # Small real-world files of the Python test suite (PSF licence).
    for name in ("python.jpg", "python.gif", "python.bmp", "python.png"):
        p = os.path.join(sysconfig.get_paths()["stdlib"], "test", "test_email", "data", name)
        if os.path.exists(p):
            put("image", name, open(p, "rb").read())


# ------------------------------------------------------------ architectures
ARCHS = {
    "all_layers": "input 1x8x8\nconv 4 3x3 stride=1 pad=1 padmode=reflect\nbatchnorm\nleaky_relu 0.1\n"
                  "maxpool 2\nconv 4 3x3 pad=1 padmode=replicate\ntanh\navgpool 2 stride=2\n"
                  "dropout 0.25\nflatten\ndense 8\nsigmoid\ndense 3\nsoftmax\n",
    "dense_only": "input 3x2x2\nflatten\ndense 4\nrelu\ndense 2\n",
    "comments": "# a comment\ninput 1x5x5   # trailing\n\nconv 2 5x5\nrelu\nflatten\ndense 2\n",
    "conv_rect": "input 2x9x7\nconv 3 3x2 stride=2x1 pad=1x0\nmaxpool 2x3 stride=1\nflatten\ndense 5\nsoftmax\n",
    "bad_unknown": "input 1x4x4\nfrobnicate 3\n",
    "bad_dense_first": "input 1x4x4\ndense 3\n",
    "bad_shrink": "input 1x2x2\nconv 1 5x5\nflatten\ndense 2\n",
    "bad_negative": "input 1x4x4\nconv -3 3x3\n",
    "bad_huge": "input 1x65536x65536\nflatten\ndense 100000\n",
}


def arch_seeds():
    for name, text in ARCHS.items():
        put("arch", name + ".txt", text.encode())
    models = os.path.join(ROOT, "models")
    for f in sorted(os.listdir(models)):
        if f.endswith(".txt"):
            put("arch", "preset_" + f, open(os.path.join(models, f), "rb").read())


# ------------------------------------------------------------- safetensors
FIXED_ARCH = ("input 1x6x6\nconv 2 3x3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nflatten\ndense 3\nsoftmax\n")
FIXED_TENSORS = [("0.weight", [2, 1, 3, 3]), ("0.bias", [2]), ("1.weight", [2]), ("1.bias", [2]),
                 ("1.running_mean", [2]), ("1.running_var", [2]), ("1.num_batches_tracked", []),
                 ("5.weight", [3, 18]), ("5.bias", [3])]


def safetensors(tensors, meta):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file."""
    header, off, data = {"__metadata__": meta}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def fixed_tensors():
    out = []
    for name, shape in FIXED_TENSORS:
        n = 1
        for d in shape:
            n *= d
        if name.endswith("num_batches_tracked"):
            out.append((name, "I64", shape, struct.pack("<q", 7)))
        else:
            vals = [1.0 if name.endswith("running_var") else ((i * 13) % 7 - 3) / 10 for i in range(n)]
            out.append((name, "F32", shape, struct.pack("<%df" % n, *vals)))
    return out


def st_seeds():
    meta = {"format": "cnn", "format_version": "1", "arch": FIXED_ARCH}
    t = fixed_tensors()
    put("safetensors", "fixed.safetensors", safetensors(t, meta))
    put("safetensors", "fixed_classes.safetensors", safetensors(t, dict(meta, classes="a,b,c")))
    put("safetensors", "no_metadata.safetensors", safetensors(t, {}))
    put("safetensors", "missing_tensor.safetensors", safetensors(t[:-1], meta))
    put("safetensors", "extra_tensor.safetensors", safetensors(t + [("9.weight", "F32", [1], b"\0" * 4)], meta))
    put("safetensors", "f64.safetensors", safetensors([(n, "F64", s, b"\0" * (len(r) * 2)) if d == "F32" else (n, d, s, r)
                                                      for n, d, s, r in t], meta))
    dense = "input 1x2x2\nflatten\ndense 2\n"
    put("safetensors", "dense.safetensors", safetensors(
        [("1.weight", "F32", [2, 4], struct.pack("<8f", *range(8))), ("1.bias", "F32", [2], b"\0" * 8)],
        {"format": "cnn", "format_version": "1", "arch": dense}))
    put("safetensors", "bad_arch.safetensors", safetensors(t, dict(meta, arch="input 1x6x6\nwhat 3\n")))
    put("safetensors", "header_too_long", struct.pack("<Q", 1 << 40) + b"{}")


# ------------------------------------------------------ CSV, caches, folders
def csv_seeds():
    """The shape byte (fuzz_csv.c), then CSV text."""
    put("csv", "kaggle_1x2x2.csv", bytes([0b00010]) + b"label,p0,p1,p2,p3\n3,0,1,2,255\n7,4,5,6,7\n")
    put("csv", "no_header_3x1x1.csv", bytes([1]) + b"1,10,20,30\r\n0,255,0,0\r\n")
    put("csv", "quoted_floats.csv", bytes([0]) + b'"label","p"\n"2","7"\n3, 8.0 \n\n')
    put("csv", "wrong_columns.csv", bytes([0]) + b"1,2,3\n")
    put("csv", "out_of_range.csv", bytes([0]) + b"1,256\n300,1\n")
    put("csv", "not_a_number.csv", bytes([0]) + b"1,2\n1,x\n")


def cache_file(c, h, w, labels, names, prep=1, images=None, fp=0x1234):
    n = len(labels)
    px = c * h * w
    images = images if images is not None else bytes((i * 7) % 256 for i in range(n * px))
    names_blob = b"".join(x.encode() + b"\0" for x in names)
    labels_at = 128 + n * px
    names_at = labels_at + 2 * n
    size = names_at + len(names_blob)
    head = (b"CNNCACHE" + struct.pack("<IIIIII", 1, 128, c, h, w, len(names)) +
            struct.pack("<QQQQQQ", n, fp, 128, labels_at, names_at, len(names_blob)) +
            struct.pack("<IIQ", prep, 0, size))
    head += b"\0" * (128 - len(head))
    return head + images + b"".join(struct.pack("<H", l) for l in labels) + names_blob


def cache_seeds():
    good = cache_file(1, 2, 3, [0, 1, 2, 1], ["cat", "dog", "\u00e9l\u00e9phant"])
    put("cache", "small.cnncache", good)
    put("cache", "colour.cnncache", cache_file(3, 2, 2, [1, 0], ["0", "1"], prep=2))
    put("cache", "truncated.cnncache", good[:-5])
    put("cache", "label_past_classes.cnncache", cache_file(1, 1, 1, [0, 3], ["a", "b"]))
    put("cache", "comma_name.cnncache", cache_file(1, 1, 1, [0], ["a,b"]))
    put("cache", "header_only", good[:128])


def folder_seeds():
    put("folder", "tree.txt", b"cat\ndog\ncat/1.png\ncat/2.JPG\ndog/a.pgm\ndog/notes.txt\n.cnn-cache\n")
    put("folder", "byte_order.txt", b"b\nB\na\na/x.gif\nB/y.bmp\nb/z.ppm\nb/w.jpeg\n")
    put("folder", "empty_class.txt", b"a\nb\na/1.png\n")
    put("folder", "bad_name.txt", b"a,b\na,b/1.png\n")
    put("folder", "utf8.txt", "\u00e9t\u00e9\n\u00e9t\u00e9/1.png\n".encode())


# ------------------------------------------------------------- checkpoints
TINY_ARCH = "input 1x28x28\nmaxpool 4\nflatten\ndense 10\nsoftmax\n"
# three channels, read from CSV files: one normalisation per channel
RGB_ARCH = "input 3x8x8\nconv 4 3x3 pad=1\nrelu\nflatten\ndense 10\nsoftmax\n"
# a second small architecture: a strided convolution, batchnorm (running
# statistics in the checkpoint), dropout and a final sigmoid
CONV_ARCH = ("input 1x28x28\nconv 3 3x3 stride=2 pad=1\nbatchnorm\nrelu\nmaxpool 2\nflatten\n"
             "dense 16\ndropout 0.2\ndense 10\nsigmoid\n")


def read_st(b):
    """A safetensors file -> (header dict, data bytes)."""
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(head, data):
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def table(meta, extra=()):
    """fuzz_checkpoint's second reading of an input: key=value lines, a line
    break inside a value written as \\n, arguments as lines of their own."""
    lines = ["%s=%s" % (k, v.replace("\n", "\\n")) for k, v in meta.items()]
    return ("\n".join(lines + list(extra)) + "\n").encode()


def early_stop_edits(meta):
    """Edits of adam_val's finished checkpoint (2 epochs, validation) with
    --early-stop 1 and a validation loss that rose in epoch 2: stopped after
    it (accepted), and a 3-epoch run gone on training past the stop
    (refused)."""
    rows = meta["train.history"].split(";")
    f = rows[1].split(",")
    f[4] = "2.9"  # above epoch 1's validation loss
    hist = rows[0] + ";" + ",".join(f)
    stopped = dict(meta, **{"train.opt.early-stop": "1", "train.history": hist})
    past = dict(stopped, **{"epochs": "3", "train.opt.epochs": "3", "train.step": "2", "train.seen": "16",
                            "train.correct": "5", "train.loss_sum": "30.5", "train.epoch_seconds": "0.125"})
    return {"early_stop_stopped": stopped, "early_stop_step_after": past,
            "early_stop_step_after_run": dict(past, **{"fuzz.run": "3,5,8,40,1,1"})}


def first_epoch_done(meta, step, seen, correct, loss_sum, epoch_seconds):
    """meta cut back to its first finished epoch, `step` steps into the next."""
    return dict(meta, **{"train.epoch": "1", "train.step": step, "train.seen": seen, "train.correct": correct,
                         "train.loss_sum": loss_sum, "train.history": meta["train.history"].split(";")[0],
                         "train.seconds": meta["train.seconds"].split(",")[0],
                         "train.epoch_seconds": epoch_seconds})


def put_edits(head, data, edits, run=None):
    """Each edited metadata as a checkpoint (the tensors kept) and as a table,
    and with run(meta) as a table's fuzz.run line."""
    for name, m in edits.items():
        h = dict(head)
        h["__metadata__"] = m
        put("checkpoint", name + ".ckpt", write_st(h, data))
        put("checkpoint", name + ".table", table(m))
        if run:
            put("checkpoint", name + "_run.table", table(dict(m, **{"fuzz.run": run(m)})))


def rising(rows, vals):
    """History rows with their validation losses replaced by vals."""
    out = []
    for i, r in enumerate(rows):
        f = r.split(",")
        f[4] = vals[i % len(vals)]
        out.append(",".join(f))
    return out


def combined_edits(ckpt):
    """Edits of frac_stop_best's checkpoint (a validation fraction, an early
    stop of patience 2, --best): cut after its first epoch, the stop's
    patience met, not met or trained past, counts off by one, and options
    given next to --resume that agree or not."""
    head, data = ckpt
    meta = head["__metadata__"]
    rows = meta["train.history"].split(";")
    secs = meta["train.seconds"].split(",")
    one = first_epoch_done(meta, "3", "24", "9", "12.25", "0.5")
    # validation losses that fall, rise, rise: patience 2 is met after epoch 4
    worse = rising(rows, ["1.5", "1.25", "1.75", "2.0"])
    edits = {
        "combined_mid": one,
        "combined_patience_met": dict(meta, **{"train.history": ";".join(worse)}),
        "combined_patience_two": dict(meta, **{"train.opt.early-stop": "3", "train.history": ";".join(worse)}),
        "combined_val_count": dict(one, **{"train.opt.val": "10"}),
        "combined_val_fraction_big": dict(one, **{"train.opt.val": "0.99999"}),
        "combined_no_best": {k: v for k, v in one.items() if k != "train.out.best"},
        # a run that stopped early and trained on: the stop came at a shorter
        # history (patience 1 after epoch 3; patience 2 after epoch 3)
        "combined_trained_past_stop": dict(meta, **{"train.opt.early-stop": "1",
                                                    "train.history": ";".join(worse)}),
        "combined_trained_past_stop_two": dict(meta, **{"train.history": ";".join(
            rising(rows, ["1.0", "2.0", "3.0", "4.0"]))}),
        # counts off by one in each field that counts
        "combined_history_over": dict(one, **{"train.history": ";".join(rows[:2])}),
        "combined_seconds_one": dict(meta, **{"train.seconds": secs[0]}),
        "combined_seen_one_step": dict(one, **{"train.step": "1", "train.seen": "7"}),
        "combined_fashion": dict(one, **{"train.opt.dataset": "fashion"}),
    }
    put_edits(head, data, edits, lambda m: "4,5,8,40,1," + m.get("train.opt.early-stop", "0"))
    put("checkpoint", "combined_args_agree.table", table(one, ["--val=0.25", "--early-stop=2", "--epochs=6"]))
    put("checkpoint", "combined_args_disagree.table", table(one, ["--val=10", "--best=other.safetensors"]))
    put("checkpoint", "combined_args_stop_off.table", table(one, ["--early-stop=0"]))
    put("checkpoint", "combined_args_data.table", table(dict(one, **{"train.opt.data": ""}), ["--data=d"]))


def ckpt_seeds(cnn):
    """Checkpoints of tiny runs (40 training images of syn_data.py's set,
    as fuzz_checkpoint's training file of 60000 images with --limit 40
    gives), and edited ones, as files and as tables."""
    tmp = tempfile.mkdtemp()
    try:
        subprocess.run(["python3", os.path.join(ROOT, "tests", "syn_data.py"), os.path.join(tmp, "syn"), "100", "20"],
                       check=True)
        with open(os.path.join(tmp, "tiny.txt"), "w") as f:
            f.write(TINY_ARCH)
        with open(os.path.join(tmp, "conv.txt"), "w") as f:
            f.write(CONV_ARCH)
        with open(os.path.join(tmp, "rgb.txt"), "w") as f:
            f.write(RGB_ARCH)
        rgb = os.path.join(tmp, "rgb")
        os.makedirs(rgb)
        for split, n in (("train", 50), ("test", 10)):
            with open(os.path.join(rgb, split + ".csv"), "w") as f:
                for i in range(n):
                    px = [(i * 37 + j * (11 + c * 7)) % 256 for c in range(3) for j in range(64)]
                    f.write(",".join(map(str, [i % 10] + px)) + "\n")
        best = os.path.join(tmp, "best.safetensors")
        runs = {
            "adam_val": ["--epochs", "2", "--batch", "8", "--val", "20"],
            "sgd_noval": ["--epochs", "3", "--batch", "16", "--val", "0", "--opt", "sgd", "--lr", "0.05",
                          "--sched", "constant", "--no-shuffle"],
            "nesterov_step": ["--epochs", "2", "--batch", "all", "--val", "10", "--opt", "nesterov",
                              "--sched", "step", "--lr-step", "1", "--lr-gamma", "0.5", "--loss", "mse",
                              "--augment", "--clip", "5", "--weight-decay", "0.001", "--seed", "7"],
            "adamw_cce": ["--epochs", "1", "--batch", "12", "--val", "5", "--opt", "adamw", "--loss", "cce",
                          "--min-lr", "0.0001", "--init-weights", "he", "--kernels", "ref", "--test-limit", "10"],
            # options that act together: a validation fraction, an early
            # stop with its patience, --best, a step schedule, huber's delta
            "frac_stop_best": ["--epochs", "4", "--batch", "8", "--val", "0.25", "--early-stop", "2",
                               "--best", best, "--opt", "momentum", "--momentum", "0.8", "--sched", "step",
                               "--lr-step", "2", "--lr-gamma", "0.5", "--loss", "huber:0.5"],
            "conv_bce": ["--arch", os.path.join(tmp, "conv.txt"), "--epochs", "3", "--batch", "7", "--val", "0.1",
                         "--loss", "bce", "--opt", "nesterov", "--momentum", "0.7", "--weight-decay", "0.0005",
                         "--clip", "1", "--augment", "--init-weights", "xavier_uniform", "--test-limit", "5",
                         "--early-stop", "1", "--seed", "11"],
            "rgb_csv": ["--data", rgb, "--arch", os.path.join(tmp, "rgb.txt"), "--epochs", "2", "--batch", "10",
                        "--val", "10", "--opt", "adamw", "--early-stop", "3"],
            "hinge_cosine": ["--epochs", "2", "--batch", "40", "--val", "3", "--loss", "hinge", "--opt", "sgd",
                             "--lr", "0.02", "--min-lr", "0.001", "--best", best, "--mem-limit", "50%"],
        }
        # the run fuzz_checkpoint's state reader alone checks a table
        # against: epochs, steps, batch, images, validation
        shapes = {"adam_val": "2,5,8,40,1", "sgd_noval": "3,3,16,40,0", "nesterov_step": "2,1,40,40,1",
                  "adamw_cce": "1,4,12,40,1", "frac_stop_best": "4,5,8,40,1,2", "conv_bce": "3,6,7,40,1,1",
                  "hinge_cosine": "2,1,40,40,1", "rgb_csv": "2,4,10,40,1,3"}
        found = {}
        for name, args in runs.items():
            out = os.path.join(tmp, name + ".safetensors")
            arch = [] if "--arch" in args else ["--arch", os.path.join(tmp, "tiny.txt")]
            data = [] if "--data" in args else ["--data", os.path.join(tmp, "syn")]
            subprocess.run([cnn, "train", "--limit", "40", "--threads", "1", "--checkpoint-every", "1",
                            "--out", out] + data + arch + args,
                           check=True, stdout=subprocess.DEVNULL)
            ck = open(out + ".ckpt", "rb").read()
            put("checkpoint", name + ".ckpt", ck)
            head, _ = read_st(ck)
            put("checkpoint", name + ".table", table(head["__metadata__"]))
            put("checkpoint", name + "_run.table", table(dict(head["__metadata__"], **{"fuzz.run": shapes[name]})))
            found[name] = ck
            # the final model file: not a checkpoint
            put("checkpoint", name + "_model.safetensors", open(out, "rb").read())
        # edits of the first run's checkpoint: mid-epoch, extended, fields
        # just out of range, options that disagree
        head, data = read_st(found["adam_val"])
        meta = head["__metadata__"]
        rows = meta["train.history"].split(";")
        secs = meta["train.seconds"].split(",")
        mid = first_epoch_done(meta, "2", "16", "5", "30.5", "0.125")
        edits = {
            "mid_epoch": mid,
            "mid_epoch_last_step": dict(mid, **{"train.step": "5", "train.seen": "40"}),
            "epoch_past": dict(mid, **{"train.epoch": "3"}),
            "step_past": dict(mid, **{"train.step": "6"}),
            "seen_off": dict(mid, **{"train.seen": "17"}),
            "correct_over": dict(mid, **{"train.correct": "17"}),
            "loss_nan": dict(mid, **{"train.loss_sum": "nan"}),
            "rng_zero": dict(mid, **{"train.data_rng": "0" * 64}),
            "history_short": dict(meta, **{"train.history": rows[0]}),
            "history_semicolon": dict(mid, **{"train.history": rows[0] + ";"}),
            "seconds_extra": dict(mid, **{"train.seconds": secs[0] + ",1"}),
            "opt_lr_zero": dict(mid, **{"train.opt.lr": "0"}),
            "opt_batch_junk": dict(mid, **{"train.opt.batch": "8x"}),
            "opt_epochs_missing": {k: v for k, v in mid.items() if k != "train.opt.epochs"},
            "opt_momentum_adam": dict(mid, **{"train.opt.momentum": "0.5"}),
            "opt_val_all": dict(mid, **{"train.opt.val": "60000"}),
            "norm_std_zero": dict(mid, norm_std="0"),
            "classes_dup": dict(mid, classes="a,b,a"),
            "not_checkpoint": {k: v for k, v in mid.items() if k != "train.seconds"},
        }
        edits.update(early_stop_edits(meta))
        put_edits(head, data, edits)
        # arguments next to --resume: extend, cut, agree, disagree
        put("checkpoint", "args_extend.table", table(meta, ["--epochs=4", "--threads=2"]))
        put("checkpoint", "args_cut.table", table(mid, ["--epochs=1"]))
        put("checkpoint", "args_agree.table", table(mid, ["--batch=8", "--opt=adam", "--no-shuffle"]))
        put("checkpoint", "args_disagree.table", table(mid, ["--lr=0.5"]))
        put("checkpoint", "args_help.table", table(mid, ["--help"]))
        put("checkpoint", "no_arch.table", table({k: v for k, v in mid.items() if k != "arch"}))
        put("checkpoint", "args_early_stop_extend.table", table(edits["early_stop_stopped"], ["--epochs=4"]))
        combined_edits(read_st(found["frac_stop_best"]))
    finally:
        shutil.rmtree(tmp)


# -------------------------------------------------------------- command lines
CMDLINES = [
    # README
    "info --arch lenet5",
    "train --arch lenet5 --epochs 5 --threads 1 --out lenet5.safetensors",
    "eval --model lenet5.safetensors --predictions preds.csv",
    "predict --model lenet5.safetensors --grid grid.png my_digit.png",
    "train --arch lenet5 --epochs 5 --checkpoint-every 5 --out m.safetensors",
    "train --resume m.safetensors.ckpt --epochs 8",
    # the seed report's experiment (--help, models/seed-experiment.sh)
    "train --arch simplecnn --limit 300 --val 50 --test-limit 100 --batch all --opt sgd --lr 0.07 "
    "--sched constant --weight-decay 0 --clip 0 --loss xent --init-weights xavier --seed 1 --epochs 40 --no-shuffle",
    # the tests
    "train --data syn --arch net.txt --batch 4 --val 100 --opt adam --lr 0.002 --seed 3 --threads 2 --epochs 30 "
    "--out base.safetensors",
    "train --resume base.safetensors.ckpt --epochs 31 --out good.safetensors",
    "train --data syn --arch linear.txt --epochs 3 --val 100 --opt sgd --lr 100 --loss mse --threads 2",
    "train --data syn --mem-limit lots",
    "train --data syn --arch acts.txt --mem-limit 20M --threads 2 --val 10",
    "train --data syn --arch acts.txt --mem-limit 1.5GiB --threads 1 --val 10 --opt adam",
    "eval --model wide.safetensors --mem-limit 50%",
    "predict --model wide.safetensors --mem-limit 1Z p.pgm",
    "predict --model wide.safetensors --mem-limit 0.001% p.pgm",
    # every option, and the forms the parser takes
    "train --opt=momentum --momentum=0.95 --nesterov --lr=1e-3 --sched=step --lr-step=2 --lr-gamma=0.5",
    "train --opt nesterov --sched cosine --min-lr 0.0001 --lr 0.1 --augment --kernels ref",
    "train --opt adamw --weight-decay 0.05 --loss huber:0.5 --init-weights he --seed 18446744073709551615",
    "train --loss hinge --batch 0 --val 0 --limit 1000 --test-limit 10 --history h.csv --plot p.svg",
    "train --dataset fashion --init-weights xavier_uniform --init w.safetensors --checkpoint-every 1",
    "train --data dir --dataset mnist",
    "train --resume x.ckpt --init y.safetensors",
    "train --epochs 0",
    "train --epochs 100001",
    "train --lr 0",
    "train --momentum 0.5",
    "train --min-lr 1 --lr 0.5",
    "train --batch 1000001",
    "train --seed -1",
    "train --no-shuffle=1",
    "train -- extra",
    "train --help",
    "eval --model m.safetensors --dataset fashion --test-limit 5 --batch 65536 --threads 1024 --kernels fast",
    "eval --model m.safetensors --kernels gpu",
    "eval --model=m.safetensors --data=dir --mem-limit=2T",
    "eval -h",
    "predict --model m.safetensors --top 3 --scale 16 --threads 2 a.png b.jpg c.bmp",
    "predict --model m.safetensors --top 0 -- -a.png - b.gif",
    "predict --model m.safetensors --scale 0 a.png",
    "info --model m.safetensors",
    "info --arch lenet5 --model m.safetensors",
    "info --arch",
    "info --frobnicate",
]


def cli_seeds():
    for i, line in enumerate(CMDLINES):
        put("cli", "cmd%02d" % i, b"\0".join(a.encode() for a in line.split(" ")))
    # no command word: the arguments go to all four commands
    put("cli", "any_command", b"\0".join([b"--model", b"m.safetensors", b"--threads", b"2"]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnn", help="the cnn program, for the checkpoint seeds")
    ap.add_argument("only", nargs="?", choices=["data"], help="data: only the data sources' seeds")
    a = ap.parse_args()
    if a.only == "data":
        csv_seeds()
        cache_seeds()
        folder_seeds()
        sys.exit(0)
    idx_seeds()
    image_seeds()
    arch_seeds()
    st_seeds()
    csv_seeds()
    cache_seeds()
    folder_seeds()
    cli_seeds()
    if a.cnn:
        ckpt_seeds(os.path.abspath(a.cnn))
    else:
        print("make_seeds: no --cnn: checkpoint seeds skipped")
