/*
 * image.c — a user's picture of a digit, made to look like an MNIST image.
 *
 * Decoding is image_decode.c's (any format to upright 8-bit pixels); here
 * the pixels become grey levels, then go through the preprocessing that
 * made MNIST (LeCun et al.): ink bright on a black background, cropped to
 * the ink, fitted into 20x20 with its aspect ratio kept and antialiased,
 * then placed in a 28x28 field so that its centre of mass sits at the
 * centre.
 */
#include "io/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fewer grey levels between background and ink than this is a blank page. */
#define IMG_MIN_CONTRAST 24
/* Pixels fainter than this fraction of the ink's contrast are background. */
#define IMG_INK_LEVEL 0.10f
#define MNIST_SIDE 28
#define MNIST_BOX 20

/* ------------------------------------------------------------ grey levels */

/* The luma weights of ITU-R BT.601 in 8-bit fixed point (what stb_image
 * and most converters use). */
static unsigned luma(const uint8_t *p, int channels)
{
    return channels >= 3 ? (p[0] * 77u + p[1] * 150u + p[2] * 29u) >> 8 : p[0];
}

cnn_status cnn_image_to_gray(const cnn_image *img, uint8_t *gray)
{
    if (!img || !img->px || !gray) return cnn_fail(CNN_ERR_ARG, "cnn_image_to_gray: NULL argument");
    if (img->w <= 0 || img->h <= 0 || img->channels < 1 || img->channels > 4)
        return cnn_fail(CNN_ERR_ARG, "cnn_image_to_gray: bad image (%dx%d, %d channels)", img->w,
                        img->h, img->channels);
    size_t n = (size_t)img->w * img->h;
    int ch = img->channels, alpha = ch == 2 || ch == 4;
    /* The background behind transparent pixels: ink is what is opaque, so
     * the background must contrast with it. The mean grey level of the
     * opaque content (each pixel weighted by its alpha) decides: light
     * content (white ink on a transparent page) goes over black, dark or
     * coloured content over white. A fully opaque picture is unchanged
     * either way; a fully transparent one is blank. */
    unsigned bg = 255;
    if (alpha) {
        double sum = 0, weight = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = img->px + i * ch;
            sum += (double)luma(p, ch) * p[ch - 1];
            weight += p[ch - 1];
        }
        if (weight > 0 && sum / weight > 127.5) bg = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->px + i * ch;
        unsigned v = luma(p, ch);
        if (alpha) {
            unsigned a = p[ch - 1];
            v = (v * a + bg * (255u - a) + 127u) / 255u;
        }
        gray[i] = (uint8_t)v;
    }
    return CNN_OK;
}

cnn_status cnn_image_load_mnist(const char *path, uint8_t out[28 * 28])
{
    if (!path || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_load_mnist: NULL argument");
    cnn_image img;
    cnn_status s = cnn_image_decode_file(path, &img);
    if (s) return s;
    uint8_t *gray = malloc((size_t)img.w * img.h);
    if (!gray) {
        cnn_image_free(&img);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %dx%d grey levels", path, img.w,
                        img.h);
    }
    s = cnn_image_to_gray(&img, gray);
    if (!s) s = cnn_image_preprocess_mnist(gray, img.w, img.h, out);
    free(gray);
    cnn_image_free(&img);
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
