# photo_digits.py — "photographed digits" made from MNIST test digits (which
# no model here trains on): each digit is drawn as ink on paper at a larger
# size and photographed badly, one kind of trouble per condition:
#
#   clean     dark pen on white paper, even light (PNG)
#   lighting  a brightness gradient and vignetting (the corners at 35-60%)
#   shadow    a hard- or soft-edged shadow over part of the page
#   rotation  the digit turned 6-15 degrees either way
#   exif      saved turned a quarter or half turn, with the EXIF orientation
#             tag that turns it back (JPEG)
#   noise     sensor noise, a little blur and strong JPEG compression
#   small     a digit 35-70 px tall in a frame of up to 1200x900, with specks,
#             the table beyond the paper's edge and a line along the frame
#   pencil    faint, thin, grainy strokes
#   marker    thick, dark strokes
#   colour    tinted paper, blue, black or red ink
#   photo     all of the above at once, at random
#
# Usage: python3 photo_digits.py MNIST_DIR OUT_DIR [PER_CONDITION]
# Writes OUT_DIR/<condition>/<label>/<n>.<png|jpg> (the folder names the true
# label) and OUT_DIR/index.csv (file, condition, label, MNIST test index,
# and where the digit's 28x28 field was drawn in the upright picture).
# Deterministic: a fixed seed, and each image is drawn from its own stream.
import csv, gzip, io, os, sys

import numpy as np
from PIL import Image, ImageFilter, ImageOps

CONDITIONS = ["clean", "lighting", "shadow", "rotation", "exif", "noise", "small", "pencil",
              "marker", "colour", "photo"]
SEED = 20261126


def load_mnist_test(d):
    def opener(base):
        for name in (base, base + ".gz"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return (gzip.open if name.endswith(".gz") else open)(p, "rb")
        raise SystemExit("no %s in %s" % (base, d))
    raw = opener("t10k-images-idx3-ubyte").read()
    labels = opener("t10k-labels-idx1-ubyte").read()[8:]
    n = len(labels)
    images = np.frombuffer(raw[16:16 + n * 784], dtype=np.uint8).reshape(n, 28, 28)
    return images, np.frombuffer(labels, dtype=np.uint8)


def smooth_noise(rng, h, w, cell):
    """Low-frequency noise in [-1, 1]: a coarse random grid, resized smoothly."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    g = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    im = Image.fromarray(g, mode="F").resize((w, h), Image.BICUBIC)
    return np.clip(np.asarray(im), -1, 1)


def ink_map(rng, digit, scale, stroke):
    """The digit's ink coverage (0..1) at `scale` times MNIST's size, its
    strokes thin (pencil), normal (pen) or thick (marker)."""
    side = 28 * scale
    d = np.asarray(Image.fromarray(digit).resize((side, side), Image.BICUBIC), dtype=np.float32) / 255
    d = np.clip(d, 0, 1)
    if stroke == "marker":
        # strokes 1.3 to 2 times MNIST's width (about 2.5 of its pixels)
        k = 2 * int(round(scale * rng.uniform(0.4, 1.0))) + 1
        d = np.asarray(Image.fromarray(d, mode="F").filter(ImageFilter.MaxFilter(k)))
        lo, hi = 0.30, 0.50
    elif stroke == "pencil":
        # thinned to a third to a half of MNIST's width (a pencil line is
        # about a fortieth of a digit's height)
        k = 2 * int(round(scale * rng.uniform(0.25, 0.45))) + 1
        d = np.asarray(Image.fromarray(d, mode="F").filter(ImageFilter.MinFilter(k)))
        lo, hi = rng.uniform(0.45, 0.65), 0.9
    else:
        lo, hi = rng.uniform(0.35, 0.5), 0.65
    return np.clip((d - lo) / (hi - lo), 0, 1)


def rotate(cov, degrees):
    im = Image.fromarray(cov.astype(np.float32), mode="F")
    return np.asarray(im.rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=0)).clip(0, 1)


def lighting(rng, h, w, strength):
    """A multiplicative light field: a linear gradient in a random direction
    times a vignette, down to `strength` at the darkest."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    t = (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5)) + 0.5   # about 0..1
    grad = 1 - (1 - rng.uniform(strength, 0.8)) * np.clip(t, 0, 1)
    r2 = ((xx - w * rng.uniform(0.35, 0.65)) / w) ** 2 + ((yy - h * rng.uniform(0.35, 0.65)) / h) ** 2
    vig = 1 - (1 - strength) * np.clip(r2 / 0.5, 0, 1) ** 1.2
    return grad * vig


def shadow(rng, h, w):
    """A shadow: a half-plane (an object or a hand between the lamp and the
    page) darkened to 40-65%, its edge hard or soft."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    cx, cy = w * rng.uniform(0.25, 0.75), h * rng.uniform(0.25, 0.75)
    dist = np.cos(a) * (xx - cx) + np.sin(a) * (yy - cy)
    soft = max(1.0, rng.choice([1.0, rng.uniform(0.02, 0.12) * min(h, w)]))
    inside = 1 / (1 + np.exp(np.clip(-dist / soft, -50, 50)))
    return 1 - (1 - rng.uniform(0.40, 0.65)) * inside


def make(rng, digit, cond):
    photo = cond == "photo"
    pick = lambda c: photo and rng.random() < 0.5 or cond == c   # noqa: E731
    small = cond == "small" or (photo and rng.random() < 0.3)
    stroke = "pen"
    if cond in ("pencil", "marker"):
        stroke = cond
    elif photo:
        # a pencil line on a digit 40 pixels tall is a fraction of a pixel:
        # nobody could read it, so small digits are in pen or marker
        stroke = rng.choice(["pen", "marker"] if small else ["pen", "pencil", "marker"])
    scale = int(rng.integers(2, 4)) if small else int(rng.integers(6, 13))
    cov = ink_map(rng, digit, scale, stroke)
    if cond == "rotation" or (photo and rng.random() < 0.6):
        cov = rotate(cov, rng.choice([-1, 1]) * rng.uniform(6, 15))
    ch, cw = cov.shape
    if small:
        W, H = int(rng.integers(700, 1201)), 0
        H = int(W * rng.uniform(0.7, 0.8))
    else:
        W, H = int(cw * rng.uniform(1.25, 1.9)), int(ch * rng.uniform(1.25, 1.9))
    ox, oy = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
    if small:   # away from the frame, where specks and edges are
        ox = int(rng.integers(W // 5, W - cw - W // 5))
        oy = int(rng.integers(H // 5, H - ch - H // 5))
    ink = np.zeros((H, W), np.float32)
    ink[oy:oy + ch, ox:ox + cw] = cov

    # paper and ink colours (RGB, 0..1)
    paper = np.array([rng.uniform(0.88, 0.97)] * 3, np.float32)
    ink_rgb = np.array([rng.uniform(0.05, 0.2)] * 3, np.float32)
    if pick("colour"):
        tint = [np.array(t, np.float32) for t in ((1.0, 0.93, 0.55), (0.62, 0.80, 1.0), (1.0, 0.72, 0.80),
                                                  (0.70, 0.95, 0.70), (1.0, 0.80, 0.55))]
        paper = paper * tint[int(rng.integers(len(tint)))]
        ink_rgb = [np.array((0.10, 0.12, 0.55), np.float32), np.array((0.08, 0.08, 0.10), np.float32),
                   np.array((0.65, 0.08, 0.08), np.float32)][int(rng.integers(3))]
    if stroke == "pencil":
        # graphite: grey, faint, grainy
        ink_rgb = paper * rng.uniform(0.5, 0.72)
        grain = np.clip(1 + 0.45 * rng.standard_normal((H, W)).astype(np.float32), 0, 1.3)
        ink = np.clip(ink * grain * (0.6 + 0.4 * (smooth_noise(rng, H, W, 6) + 1) / 2), 0, 1)
    img = paper[None, None, :] * (1 - ink[..., None]) + ink_rgb[None, None, :] * ink[..., None]
    # the paper's own texture
    img *= (1 + 0.02 * smooth_noise(rng, H, W, 40))[..., None]

    if small or (photo and rng.random() < 0.3):
        # specks of dirt, the table beyond one edge of the paper, a line along the frame
        for _ in range(int(rng.integers(6, 30))):
            r = rng.uniform(0.8, 2.5)
            x, y = rng.uniform(0, W), rng.uniform(0, H)
            if ox - 10 < x < ox + cw + 10 and oy - 10 < y < oy + ch + 10:
                continue
            yy, xx = np.ogrid[0:H, 0:W]
            m = ((xx - x) ** 2 + (yy - y) ** 2) <= r * r
            img[m] *= rng.uniform(0.2, 0.6)
        side = int(rng.integers(4))
        band = int(rng.uniform(0.04, 0.12) * (W if side % 2 == 0 else H))
        table = np.array(rng.uniform(0.15, 0.45, 3), np.float32)
        yy, xx = np.mgrid[0:H, 0:W]
        slope = rng.uniform(-0.05, 0.05)
        if side == 0: m = xx < band + slope * yy
        elif side == 1: m = yy < band + slope * xx
        elif side == 2: m = xx > W - band + slope * yy
        else: m = yy > H - band + slope * xx
        img[m] = table
        if rng.random() < 0.7:
            t = int(rng.integers(2, 5))
            e = int(rng.integers(4))
            if e == 0: img[:t, :] *= 0.3
            elif e == 1: img[-t:, :] *= 0.3
            elif e == 2: img[:, :t] *= 0.3
            else: img[:, -t:] *= 0.3

    if pick("lighting") or cond == "exif" or small:
        img *= lighting(rng, H, W, rng.uniform(0.35, 0.6))[..., None]
    if pick("shadow"):
        img *= shadow(rng, H, W)[..., None]
    noisy = pick("noise")
    if noisy:
        img += rng.normal(0, rng.uniform(0.04, 0.07), img.shape).astype(np.float32)
    out = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    if noisy:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
    if cond not in ("colour",) and not (photo and rng.random() < 0.3):
        out = out.convert("L")  # most phones' "document" mode is grey anyway; colour is kept for some

    orientation = 1
    if cond == "exif" or (photo and rng.random() < 0.4):
        orientation = int(rng.choice([3, 6, 8]))
    return out, orientation, (rng.integers(25, 50) if noisy else rng.integers(70, 96)), (ox, oy, cw, ch)


def save(img, orientation, quality, path):
    """PNG for the clean pictures, else JPEG. A picture with an orientation is
    stored turned the other way, with the tag that turns it upright."""
    if path.endswith(".png"):
        img.save(path)
        return
    stored = img
    if orientation != 1:
        # 3: stored upside down; 6: stored turned 90 degrees counter-clockwise
        # (shown turned clockwise); 8: the other way
        stored = {3: img.transpose(Image.ROTATE_180), 6: img.transpose(Image.ROTATE_90),
                  8: img.transpose(Image.ROTATE_270)}[orientation]
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(path, quality=int(quality), exif=exif.tobytes())
        # the tag must turn it back: PIL's reading of it agrees
        back = ImageOps.exif_transpose(Image.open(path))
        assert back.size == img.size, (path, back.size, img.size)
    else:
        stored.save(path, quality=int(quality))


def main():
    mnist, out = sys.argv[1], sys.argv[2]
    per = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    images, labels = load_mnist_test(mnist)
    order = np.random.default_rng(SEED).permutation(len(labels))
    rows = []
    n = 0
    for ci, cond in enumerate(CONDITIONS):
        for j in range(per):
            idx = int(order[n])
            n += 1
            rng = np.random.default_rng([SEED, ci, j])
            img, orientation, quality, box = make(rng, images[idx], cond)
            label = int(labels[idx])
            folder = os.path.join(out, cond, str(label))
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "%s%03d.%s" % (cond, j, "png" if cond == "clean" else "jpg"))
            save(img, orientation, quality, path)
            rows.append((os.path.relpath(path, out), cond, label, idx) + box)
    with open(os.path.join(out, "index.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "condition", "label", "mnist_index", "x", "y", "w", "h"])
        w.writerows(rows)
    print("wrote %d pictures in %d conditions to %s" % (len(rows), len(CONDITIONS), out))


if __name__ == "__main__":
    main()
