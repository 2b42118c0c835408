/*
 * fit.c — a picture of any size and channel count made into a model's input
 * (c x h x w bytes, planar), by the policy the model records (cnn_prep):
 * the same function for training data, evaluation data and predict, so a
 * model sees its inputs prepared exactly as it was trained.
 *
 * Resampling is separable. Shrinking averages each output pixel's footprint
 * (a box filter weighted by coverage: antialiased, no aliasing of stripes);
 * enlarging interpolates bilinearly between pixel centres. Same size is an
 * exact copy, so IDX data saved as PNG comes back bit for bit.
 */
#include "io/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *cnn_prep_name(cnn_prep p)
{
    switch (p) {
    case CNN_PREP_DIGIT: return "digit";
    case CNN_PREP_PAD: return "pad";
    case CNN_PREP_CROP: return "crop";
    }
    return "?";
}

cnn_status cnn_prep_parse(const char *s, cnn_prep *out)
{
    static const cnn_prep all[] = {CNN_PREP_DIGIT, CNN_PREP_PAD, CNN_PREP_CROP};
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, cnn_prep_name(all[i])) == 0) {
            *out = all[i];
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG, "expected digit, pad or crop, got '%s'", s ? s : "(null)");
}

/* ------------------------------------------------------------- resampling */

/* The weights that make m samples out of n along one axis: output o reads
 * taps[o * ntaps + t] at index first[o] + t. */
typedef struct {
    int ntaps;
    int *first;
    float *taps;
} axis_weights;

static void axis_free(axis_weights *a)
{
    free(a->first);
    free(a->taps);
}

static cnn_status axis_make(int n, int m, axis_weights *a)
{
    memset(a, 0, sizeof *a);
    double step = (double)n / m;
    a->ntaps = m < n ? (int)ceil(step) + 1 : 2;
    a->first = malloc(sizeof(int) * (size_t)m);
    a->taps = calloc((size_t)m * (size_t)a->ntaps, sizeof(float));
    if (!a->first || !a->taps) {
        axis_free(a);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory for resampling weights");
    }
    for (int o = 0; o < m; o++) {
        float *w = a->taps + (size_t)o * a->ntaps;
        if (m < n) {
            /* area: the mean of [o*step, (o+1)*step), partial pixels by coverage */
            double lo = o * step, hi = (o + 1) * step;
            int i0 = (int)floor(lo);
            a->first[o] = i0;
            for (int t = 0; t < a->ntaps; t++) {
                int i = i0 + t;
                if (i >= n) break;
                double l = i > lo ? i : lo, h = i + 1 < hi ? i + 1 : hi;
                if (h > l) w[t] = (float)((h - l) / step);
            }
        } else {
            /* bilinear between the centres of the pixels, edges repeated */
            double x = (o + 0.5) * step - 0.5;
            if (x < 0) x = 0;
            if (x > n - 1) x = n - 1;
            int i0 = (int)floor(x);
            if (i0 > n - 2) i0 = n > 1 ? n - 2 : 0;
            double f = x - i0;
            a->first[o] = i0;
            w[0] = (float)(1.0 - f);
            if (n > 1) w[1] = (float)f;
            else w[0] = 1.0f;
        }
    }
    return CNN_OK;
}

/* Resize one plane: the sw x sh region at src (row stride sstride) into a
 * dw x dh region at dst (row stride dstride). */
static cnn_status resize_plane(const uint8_t *src, int sw, int sh, size_t sstride, uint8_t *dst,
                               int dw, int dh, size_t dstride)
{
    if (sw == dw && sh == dh) {
        for (int y = 0; y < sh; y++) memcpy(dst + (size_t)y * dstride, src + (size_t)y * sstride, (size_t)sw);
        return CNN_OK;
    }
    axis_weights ax, ay;
    cnn_status s = axis_make(sw, dw, &ax);
    if (s) return s;
    if ((s = axis_make(sh, dh, &ay))) {
        axis_free(&ax);
        return s;
    }
    float *tmp = malloc(sizeof(float) * (size_t)sh * (size_t)dw);
    if (!tmp) {
        axis_free(&ax);
        axis_free(&ay);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory resizing a %dx%d picture", sw, sh);
    }
    /* rows first (sh x dw), then columns (dh x dw) */
    for (int y = 0; y < sh; y++) {
        const uint8_t *row = src + (size_t)y * sstride;
        for (int o = 0; o < dw; o++) {
            const float *w = ax.taps + (size_t)o * ax.ntaps;
            int i0 = ax.first[o];
            float acc = 0;
            for (int t = 0; t < ax.ntaps && i0 + t < sw; t++) acc += w[t] * row[i0 + t];
            tmp[(size_t)y * dw + o] = acc;
        }
    }
    for (int o = 0; o < dh; o++) {
        const float *w = ay.taps + (size_t)o * ay.ntaps;
        int i0 = ay.first[o];
        for (int x = 0; x < dw; x++) {
            float acc = 0;
            for (int t = 0; t < ay.ntaps && i0 + t < sh; t++) acc += w[t] * tmp[(size_t)(i0 + t) * dw + x];
            long v = lroundf(acc);
            dst[(size_t)o * dstride + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    return CNN_OK;
}

/* ------------------------------------------------------------- geometry */

/* c planes of sw x sh into c planes of w x h by PAD or CROP. */
static cnn_status fit_planes(const uint8_t *src, int sw, int sh, cnn_prep prep, int c, int h,
                             int w, uint8_t *out)
{
    memset(out, 0, (size_t)c * h * w); /* the padding: black */
    int x0 = 0, y0 = 0, cw = sw, ch = sh; /* the source region */
    int ox = 0, oy = 0, nw = w, nh = h;   /* where it lands */
    if (prep == CNN_PREP_CROP) {
        /* the widest centred region of the input's aspect ratio */
        if ((long long)sw * h > (long long)sh * w) {
            cw = (int)llround((double)sh * w / h);
            if (cw < 1) cw = 1;
            x0 = (sw - cw) / 2;
        } else {
            ch = (int)llround((double)sw * h / w);
            if (ch < 1) ch = 1;
            y0 = (sh - ch) / 2;
        }
    } else {
        double scale = fmin((double)w / sw, (double)h / sh);
        nw = (int)lround(sw * scale);
        nh = (int)lround(sh * scale);
        if (nw < 1) nw = 1;
        if (nh < 1) nh = 1;
        if (nw > w) nw = w;
        if (nh > h) nh = h;
        ox = (w - nw) / 2;
        oy = (h - nh) / 2;
    }
    for (int k = 0; k < c; k++) {
        const uint8_t *plane = src + (size_t)k * sw * sh;
        cnn_status s = resize_plane(plane + (size_t)y0 * sw + x0, cw, ch, (size_t)sw,
                                    out + (size_t)k * h * w + (size_t)oy * w + ox, nw, nh,
                                    (size_t)w);
        if (s) return s;
    }
    return CNN_OK;
}

static cnn_status check_target(int c, int h, int w)
{
    if ((c != 1 && c != 3) || h < 1 || w < 1 || h > IMG_MAX_SIDE || w > IMG_MAX_SIDE)
        return cnn_fail(CNN_ERR_ARG, "pictures are prepared for inputs of 1 or 3 channels and up to "
                        "%d pixels a side, not %dx%dx%d", IMG_MAX_SIDE, c, h, w);
    return CNN_OK;
}

/* BT.601 luma in 8-bit fixed point, as cnn_image_to_gray. */
static uint8_t luma3(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 77u + g * 150u + b * 29u) >> 8);
}

cnn_status cnn_planes_prepare(const uint8_t *src, int sc, int sh, int sw, cnn_prep prep, int c,
                              int h, int w, uint8_t *out)
{
    if (!src || !out) return cnn_fail(CNN_ERR_ARG, "cnn_planes_prepare: NULL argument");
    cnn_status s = check_target(c, h, w);
    if (s) return s;
    if (sh < 1 || sw < 1 || sh > IMG_MAX_SIDE || sw > IMG_MAX_SIDE || (sc != c && sc != 1 && sc != 3))
        return cnn_fail(CNN_ERR_ARG, "cnn_planes_prepare: cannot make %dx%dx%d into %dx%dx%d", sc,
                        sh, sw, c, h, w);
    if (prep == CNN_PREP_DIGIT) prep = CNN_PREP_PAD;
    if (sc == c) return fit_planes(src, sw, sh, prep, c, h, w, out);
    size_t n = (size_t)sw * sh;
    uint8_t *conv = malloc(n * (size_t)c);
    if (!conv) return cnn_fail(CNN_ERR_NOMEM, "out of memory converting a %dx%d picture", sw, sh);
    if (sc == 1) /* grey into every channel */
        for (int k = 0; k < c; k++) memcpy(conv + (size_t)k * n, src, n);
    else /* colour into luma */
        for (size_t i = 0; i < n; i++) conv[i] = luma3(src[i], src[n + i], src[2 * n + i]);
    s = fit_planes(conv, sw, sh, prep, c, h, w, out);
    free(conv);
    return s;
}

/* A decoded picture (interleaved 1-4 channels) into c planes at its own
 * size: grey through cnn_image_to_gray, colour with alpha composited over
 * the same background cnn_image_to_gray would choose. */
static cnn_status to_planes(const cnn_image *img, int c, uint8_t *planes)
{
    size_t n = (size_t)img->w * img->h;
    if (c == 1) return cnn_image_to_gray(img, planes);
    const int ch = img->channels, alpha = ch == 2 || ch == 4;
    if (ch < 3) {
        cnn_status s = cnn_image_to_gray(img, planes);
        if (s) return s;
        memcpy(planes + n, planes, n);
        memcpy(planes + 2 * n, planes, n);
        return CNN_OK;
    }
    unsigned bg = 255;
    if (alpha) {
        double sum = 0, weight = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = img->px + i * ch;
            sum += (double)luma3(p[0], p[1], p[2]) * p[3];
            weight += p[3];
        }
        if (weight > 0 && sum / weight > 127.5) bg = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->px + i * ch;
        for (int k = 0; k < 3; k++) {
            unsigned v = p[k];
            if (alpha) v = (v * p[3] + bg * (255u - p[3]) + 127u) / 255u;
            planes[(size_t)k * n + i] = (uint8_t)v;
        }
    }
    return CNN_OK;
}

cnn_status cnn_image_prepare(const cnn_image *img, cnn_prep prep, int c, int h, int w,
                             uint8_t *out)
{
    if (!img || !img->px || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_prepare: NULL argument");
    cnn_status s = check_target(c, h, w);
    if (s) return s;
    if (img->w < 1 || img->h < 1 || img->channels < 1 || img->channels > 4)
        return cnn_fail(CNN_ERR_ARG, "cnn_image_prepare: bad image (%dx%d, %d channels)", img->w,
                        img->h, img->channels);
    if (prep == CNN_PREP_DIGIT) {
        uint8_t *gray = malloc((size_t)img->w * img->h), digit[28 * 28];
        if (!gray) return cnn_fail(CNN_ERR_NOMEM, "out of memory for %dx%d grey levels", img->w, img->h);
        s = cnn_image_to_gray(img, gray);
        if (!s) s = cnn_image_preprocess_mnist(gray, img->w, img->h, digit);
        free(gray);
        if (s) return s;
        return cnn_planes_prepare(digit, 1, 28, 28, CNN_PREP_PAD, c, h, w, out);
    }
    uint8_t *planes = malloc((size_t)img->w * img->h * (size_t)c);
    if (!planes) return cnn_fail(CNN_ERR_NOMEM, "out of memory for a %dx%d picture", img->w, img->h);
    s = to_planes(img, c, planes);
    if (!s) s = fit_planes(planes, img->w, img->h, prep, c, h, w, out);
    free(planes);
    return s;
}
