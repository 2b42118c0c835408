/*
 * image.c — a user's picture of a digit, made to look like an MNIST image.
 *
 * Decoding: PNG, JPEG, BMP and GIF through stb_image (Debian's libstb); PGM
 * and PPM (P2, P3, P5, P6) by our own small reader, because stb_image has no
 * ASCII PNM and does not notice a truncated binary one. The format is chosen
 * by the file's magic bytes, never by its name, and anything else is refused
 * (stb_image would otherwise take random bytes for a headerless TGA).
 *
 * Preprocessing follows how MNIST was made (LeCun et al.): ink bright on a
 * black background, cropped to the ink, fitted into 20x20 with its aspect
 * ratio kept and antialiased, then placed in a 28x28 field so that its
 * centre of mass sits at the centre.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb/stb_image.h>

#define IMG_MAX_SIDE 16384
#define IMG_MAX_PIXELS ((long long)64 << 20)
/* No compressed picture of a digit needs more; it bounds what we read. */
#define IMG_MAX_FILE ((long long)256 << 20)
/* No format we decode packs more pixels into a byte: deflate stops near
 * 1032:1, GIF's 12-bit LZW codes near 2730:1, a flat JPEG block needs a few
 * bits per 64 pixels. A header promising more is truncated or a
 * decompression bomb (30 bytes of GIF asking for 57 Mpixel took 2.5 s and
 * 280 MB to decode to nothing: tests/fuzz/FINDINGS.md F3). */
#define IMG_MAX_PIXELS_PER_BYTE 4096
/* Fewer grey levels between background and ink than this is a blank page. */
#define IMG_MIN_CONTRAST 24
/* Pixels fainter than this fraction of the ink's contrast are background. */
#define IMG_INK_LEVEL 0.10f
#define MNIST_SIDE 28
#define MNIST_BOX 20

static cnn_status check_size(const char *name, long long w, long long h)
{
    if (w <= 0 || h <= 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: zero-size image (%lldx%lld)", name, w, h);
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || w * h > IMG_MAX_PIXELS)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: image too large (%lldx%lld; the limit is %d pixels a side and "
                        "%lld Mpixel)",
                        name, w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS >> 20);
    return CNN_OK;
}

/* ------------------------------------------------------------ PGM / PPM */

typedef struct {
    const uint8_t *p, *end;
} cursor;

static void pnm_skip_space(cursor *c)
{
    while (c->p < c->end) {
        if (*c->p == '#') {
            while (c->p < c->end && *c->p != '\n') c->p++;
        } else if (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r' ||
                   *c->p == '\v' || *c->p == '\f') {
            c->p++;
        } else {
            break;
        }
    }
}

/* A decimal number of at most 9 digits (values are bounded by the caller).
 * Returns -1 at the end of the data, -2 on anything that is not a number. */
static long pnm_number(cursor *c)
{
    pnm_skip_space(c);
    if (c->p >= c->end) return -1;
    if (*c->p < '0' || *c->p > '9') return -2;
    long v = 0;
    int digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (++digits > 9) return -2;
        v = v * 10 + (*c->p++ - '0');
    }
    return v;
}

/* Decode P2/P3/P5/P6 into a malloc'd grayscale buffer. */
static cnn_status pnm_decode(const char *name, const uint8_t *buf, size_t len, uint8_t **gray,
                             int *w, int *h)
{
    char kind = (char)buf[1];
    int channels = (kind == '3' || kind == '6') ? 3 : 1;
    int ascii = kind == '2' || kind == '3';
    cursor c = {buf + 2, buf + len};
    long v[3];
    static const char *field[3] = {"width", "height", "maximum value"};
    for (int i = 0; i < 3; i++) {
        v[i] = pnm_number(&c);
        if (v[i] == -1)
            return cnn_fail(CNN_ERR_FORMAT, "%s: truncated P%c header (no %s)", name, kind,
                            field[i]);
        if (v[i] < 0)
            return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt P%c header (bad %s)", name, kind,
                            field[i]);
    }
    cnn_status s = check_size(name, v[0], v[1]);
    if (s) return s;
    long maxval = v[2];
    if (maxval < 1 || maxval > 65535)
        return cnn_fail(CNN_ERR_FORMAT, "%s: P%c maximum value %ld is not in 1..65535", name,
                        kind, maxval);
    size_t npix = (size_t)v[0] * (size_t)v[1];
    int bytes = maxval > 255 ? 2 : 1;
    if (!ascii) {
        /* exactly one whitespace byte separates the header from the pixels */
        if (c.p >= c.end)
            return cnn_fail(CNN_ERR_FORMAT, "%s: truncated: P%c file has no pixel data", name,
                            kind);
        c.p++;
        size_t need = npix * channels * bytes;
        size_t have = (size_t)(c.end - c.p);
        if (have < need)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated: %ldx%ld P%c image needs %zu bytes of pixels, file "
                            "holds %zu",
                            name, v[0], v[1], kind, need, have);
    }
    if (ascii) {
        /* every sample takes a digit and a separator: a file announcing more
         * samples than it could hold is refused before the allocation */
        size_t have = (size_t)(c.end - c.p), least = npix * channels * 2 - 1;
        if (have < least)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated: %ldx%ld P%c image needs at least %zu bytes of "
                            "pixels, file holds %zu",
                            name, v[0], v[1], kind, least, have);
    }
    uint8_t *g = malloc(npix);
    if (!g) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu pixels", name, npix);
    for (size_t i = 0; i < npix; i++) {
        long rgb[3];
        for (int ch = 0; ch < channels; ch++) {
            long x;
            if (ascii) {
                x = pnm_number(&c);
                if (x == -1) {
                    free(g);
                    return cnn_fail(CNN_ERR_FORMAT,
                                    "%s: truncated: P%c file ends after %zu of %zu pixels", name,
                                    kind, i, npix);
                }
                if (x < 0 || x > maxval) {
                    free(g);
                    return cnn_fail(CNN_ERR_FORMAT,
                                    "%s: corrupt P%c data at pixel %zu (not a number in 0..%ld)",
                                    name, kind, i, maxval);
                }
            } else if (bytes == 2) {
                x = (long)c.p[0] << 8 | c.p[1];
                c.p += 2;
                if (x > maxval) x = maxval;
            } else {
                x = *c.p++;
                if (x > maxval) x = maxval;
            }
            rgb[ch] = (x * 255 + maxval / 2) / maxval;
        }
        /* the same luma weights stb_image uses for colour files */
        g[i] = channels == 1 ? (uint8_t)rgb[0]
                             : (uint8_t)((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
    }
    *gray = g;
    *w = (int)v[0];
    *h = (int)v[1];
    return CNN_OK;
}

/* ------------------------------------------------------ stb_image formats */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* stb_image fills a truncated BMP or JPEG with whatever it has and reports
 * success, so these two are checked for completeness here. */
static cnn_status check_complete(const char *name, const char *fmt, const uint8_t *buf,
                                 size_t len)
{
    if (!strcmp(fmt, "JPEG")) {
        /* Entropy-coded data never holds FF DA or FF D9 (an FF in it is
         * followed by 00 or a restart marker), so the last start-of-scan is
         * the main image's, and its end-of-image marker must follow. An EXIF
         * thumbnail's markers all come earlier. */
        size_t sos = 0;
        for (size_t i = 0; i + 1 < len; i++)
            if (buf[i] == 0xFF && buf[i + 1] == 0xDA) sos = i;
        for (size_t i = sos; sos && i + 1 < len; i++)
            if (buf[i] == 0xFF && buf[i + 1] == 0xD9) return CNN_OK;
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated JPEG (no end-of-image marker)", name);
    }
    if (!strcmp(fmt, "BMP") && len >= 30) {
        uint32_t off = le32(buf + 10), dib = le32(buf + 14);
        long long w, h;
        unsigned bpp, compression = 0;
        if (dib == 12) { /* OS/2 BITMAPCOREHEADER */
            w = buf[18] | buf[19] << 8;
            h = buf[20] | buf[21] << 8;
            bpp = buf[24] | buf[25] << 8;
        } else if (dib >= 40 && len >= 34) {
            w = (int32_t)le32(buf + 18);
            h = (int32_t)le32(buf + 22);
            bpp = buf[28] | buf[29] << 8;
            compression = le32(buf + 30);
        } else {
            return CNN_OK; /* stb_image judges the rest */
        }
        if (h < 0) h = -h;
        /* uncompressed rows are padded to 4 bytes; RLE sizes are unknown */
        if ((compression == 0 || compression == 3) && w > 0 && w <= IMG_MAX_SIDE &&
            h <= IMG_MAX_SIDE && bpp > 0 && bpp <= 32) {
            long long need = off + ((bpp * w + 31) / 32) * 4 * h;
            if ((long long)len < need)
                return cnn_fail(CNN_ERR_FORMAT,
                                "%s: truncated BMP: %lldx%lld at %u bits needs %lld bytes, file "
                                "holds %zu",
                                name, w, h, bpp, need, len);
        }
    }
    return CNN_OK;
}

static cnn_status stb_decode(const char *name, const char *fmt, const uint8_t *buf,
                             size_t len, uint8_t **gray, int *w, int *h)
{
    int x, y, comp;
    /* stbi_info reads only the header, so a huge image is refused before a
     * single pixel is decoded. */
    if (!stbi_info_from_memory(buf, (int)len, &x, &y, &comp))
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt %s file (%s)", name, fmt,
                        stbi_failure_reason() ? stbi_failure_reason() : "unreadable header");
    cnn_status s = check_size(name, x, y);
    if (s) return s;
    if ((long long)x * y > (long long)len * IMG_MAX_PIXELS_PER_BYTE)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: truncated %s: a %dx%d image cannot fit in %zu bytes", name, fmt, x,
                        y, len);
    s = check_complete(name, fmt, buf, len);
    if (s) return s;
    /* Keep alpha so a transparent background can become paper (white):
     * drawing programs save ink on transparency. */
    int want = comp == 2 ? 2 : comp == 4 ? 4 : 1;
    int lx, ly, lc;
    uint8_t *px = stbi_load_from_memory(buf, (int)len, &lx, &ly, &lc, want);
    if (!px)
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt %s file (%s)", name, fmt,
                        stbi_failure_reason() ? stbi_failure_reason() : "cannot decode");
    if (lx != x || ly != y) {
        stbi_image_free(px);
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt %s file (size changed while decoding)",
                        name, fmt);
    }
    size_t n = (size_t)x * y;
    uint8_t *g = malloc(n);
    if (!g) {
        stbi_image_free(px);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu pixels", name, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (want == 1) {
            g[i] = px[i];
            continue;
        }
        unsigned lum, a;
        if (want == 2) {
            lum = px[2 * i];
            a = px[2 * i + 1];
        } else {
            const uint8_t *q = px + 4 * i;
            lum = (q[0] * 77u + q[1] * 150u + q[2] * 29u) >> 8;
            a = q[3];
        }
        g[i] = (uint8_t)((lum * a + 255u * (255u - a) + 127u) / 255u);
    }
    stbi_image_free(px);
    *gray = g;
    *w = x;
    *h = y;
    return CNN_OK;
}

/* The format named by the magic bytes, or NULL. */
static const char *sniff(const uint8_t *b, size_t len)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= 8 && !memcmp(b, png, 8)) return "PNG";
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "JPEG";
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return "GIF";
    if (len >= 2 && b[0] == 'P' && (b[1] == '2' || b[1] == '3' || b[1] == '5' || b[1] == '6'))
        return "PNM";
    return NULL;
}

cnn_status cnn_image_load_mnist(const char *path, uint8_t out[28 * 28])
{
    if (!path || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_load_mnist: NULL argument");
    FILE *f;
    long long fsize;
    cnn_status ost = cnn_fopen_input(path, "an image", &f, &fsize);
    if (ost != CNN_OK) return ost;
    if (fsize == 0) {
        fclose(f);
        return cnn_fail(CNN_ERR_FORMAT, "%s: empty file", path);
    }
    if (fsize > IMG_MAX_FILE) {
        fclose(f);
        return cnn_fail(CNN_ERR_FORMAT, "%s: file too large for an image of a digit (%lld "
                        "bytes, the limit is %lld)", path, fsize, IMG_MAX_FILE);
    }
    size_t len = (size_t)fsize;
    uint8_t *buf = malloc(len);
    if (!buf) {
        fclose(f);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got != len) {
        free(buf);
        return cnn_fail(CNN_ERR_IO, "%s: read error after %zu of %zu bytes", path, got, len);
    }

    const char *fmt = sniff(buf, len);
    if (!fmt) {
        free(buf);
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: not a PNG, JPEG, BMP, GIF or PGM/PPM file (unknown magic bytes)",
                        path);
    }
    uint8_t *gray = NULL;
    int w = 0, h = 0;
    cnn_status s = !strcmp(fmt, "PNM") ? pnm_decode(path, buf, len, &gray, &w, &h)
                                       : stb_decode(path, fmt, buf, len, &gray, &w, &h);
    free(buf);
    if (s) return s;
    s = cnn_image_preprocess_mnist(gray, w, h, out);
    free(gray);
    if (s) return cnn_fail_prefix(s, "%s", path);
    return CNN_OK;
}

/* --------------------------------------------------------- preprocessing */

/* Resample n samples (spaced `stride` apart) to m by area averaging: each
 * output sample is the mean of the input over its footprint, partial pixels
 * weighted by coverage. This is a box filter, antialiased when shrinking. */
static void resample_1d(const float *src, int n, int sstride, float *dst, int m, int dstride)
{
    double step = (double)n / m;
    for (int o = 0; o < m; o++) {
        double a = o * step, b = (o + 1) * step;
        int i0 = (int)a, i1 = (int)ceil(b);
        if (i1 > n) i1 = n;
        double sum = 0;
        for (int i = i0; i < i1; i++) {
            double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
            if (hi > lo) sum += (hi - lo) * src[(size_t)i * sstride];
        }
        dst[(size_t)o * dstride] = (float)(sum / step);
    }
}

/* The median of a histogram; the mean of the two middle values for an even
 * count, so that inverting the image inverts the median exactly. */
static float median_of(const unsigned hist[256], unsigned count)
{
    unsigned lower_rank = (count + 1) / 2, upper_rank = count / 2 + 1, acc = 0;
    int lower = -1, upper = -1;
    for (int v = 0; v < 256 && upper < 0; v++) {
        acc += hist[v];
        if (lower < 0 && acc >= lower_rank) lower = v;
        if (acc >= upper_rank) upper = v;
    }
    return 0.5f * (float)(lower + upper);
}

cnn_status cnn_image_preprocess_mnist(const uint8_t *gray, int w, int h, uint8_t out[28 * 28])
{
    if (!gray || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_preprocess_mnist: NULL argument");
    if (w <= 0 || h <= 0 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE ||
        (long long)w * h > IMG_MAX_PIXELS)
        return cnn_fail(CNN_ERR_ARG, "cnn_image_preprocess_mnist: bad image size %dx%d", w, h);
    size_t n = (size_t)w * h;

    int lo = 255, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (gray[i] < lo) lo = gray[i];
        if (gray[i] > hi) hi = gray[i];
    }
    if (hi - lo < IMG_MIN_CONTRAST)
        return cnn_fail(CNN_ERR_FORMAT, "no ink found (the image is blank: grey levels %d..%d)",
                        lo, hi);

    /* The background is what the border mostly shows: its median, robust to
     * a stroke that touches the edge. Light paper means dark ink: invert so
     * that ink is bright, as in MNIST. */
    unsigned hist[256] = {0}, count = 0;
    for (int x = 0; x < w; x++) {
        hist[gray[x]]++;
        count++;
        if (h > 1) {
            hist[gray[(size_t)(h - 1) * w + x]]++;
            count++;
        }
    }
    for (int y = 1; y < h - 1; y++) {
        hist[gray[(size_t)y * w]]++;
        count++;
        if (w > 1) {
            hist[gray[(size_t)y * w + w - 1]]++;
            count++;
        }
    }
    float bg = median_of(hist, count);
    int invert = bg > 0.5f * (lo + hi);
    int ink_peak = invert ? 255 - lo : hi;
    if (invert) bg = 255.f - bg;
    if (ink_peak - bg < IMG_MIN_CONTRAST)
        return cnn_fail(CNN_ERR_FORMAT,
                        "no ink found (nothing stands out from the background by %d grey levels)",
                        IMG_MIN_CONTRAST);

    /* Stretch contrast: the background and everything within 10% of the
     * ink's contrast above it become 0, the strongest ink 1, linearly in
     * between (no hard threshold, so stroke edges stay antialiased). */
    float level = bg + IMG_INK_LEVEL * (ink_peak - bg);
    float lut[256];
    for (int v = 0; v < 256; v++) {
        float ink = (float)(invert ? 255 - v : v);
        lut[v] = ink > level ? (ink - level) / (ink_peak - level) : 0.f;
    }

    int x0 = w, x1 = -1, y0 = h, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (lut[gray[(size_t)y * w + x]] > 0) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    if (x1 < 0) return cnn_fail(CNN_ERR_FORMAT, "no ink found");
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1;

    /* Fit the longer side to 20 pixels, the shorter one in proportion. */
    double scale = (double)MNIST_BOX / (cw > ch ? cw : ch);
    int nw = (int)lround(cw * scale), nh = (int)lround(ch * scale);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    if (nw > MNIST_BOX) nw = MNIST_BOX;
    if (nh > MNIST_BOX) nh = MNIST_BOX;

    /* Rows first (ch x nw), then columns (nh x nw). */
    float *row = malloc(sizeof(float) * (size_t)cw);
    float *tmp = malloc(sizeof(float) * (size_t)ch * nw);
    if (!row || !tmp) {
        free(row);
        free(tmp);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d crop", cw, ch);
    }
    for (int y = 0; y < ch; y++) {
        const uint8_t *src = gray + (size_t)(y0 + y) * w + x0;
        for (int x = 0; x < cw; x++) row[x] = lut[src[x]];
        resample_1d(row, cw, 1, tmp + (size_t)y * nw, nw, 1);
    }
    free(row);
    float box[MNIST_BOX * MNIST_BOX];
    for (int x = 0; x < nw; x++) resample_1d(tmp + x, ch, nw, box + x, nh, nw);
    free(tmp);

    /* Strokes thinned by shrinking are brought back to full strength. */
    float peak = 0;
    double mass = 0, mx = 0, my = 0;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            float v = box[y * nw + x];
            if (v > peak) peak = v;
            mass += v;
            mx += (double)x * v;
            my += (double)y * v;
        }
    if (peak <= 0 || mass <= 0) return cnn_fail(CNN_ERR_FORMAT, "no ink found");

    /* Centre of mass at (14, 14) of the 28x28 field, by a whole-pixel
     * shift; what a lopsided digit pushes past the edge is clipped. */
    int ox = (int)lround(MNIST_SIDE / 2.0 - mx / mass);
    int oy = (int)lround(MNIST_SIDE / 2.0 - my / mass);
    memset(out, 0, MNIST_SIDE * MNIST_SIDE);
    for (int y = 0; y < nh; y++) {
        int ty = y + oy;
        if (ty < 0 || ty >= MNIST_SIDE) continue;
        for (int x = 0; x < nw; x++) {
            int tx = x + ox;
            if (tx < 0 || tx >= MNIST_SIDE) continue;
            long v = lroundf(255.f * box[y * nw + x] / peak);
            out[ty * MNIST_SIDE + tx] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    return CNN_OK;
}
