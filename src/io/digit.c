/*
 * digit.c — a picture of a handwritten digit made to look like an MNIST
 * image (cnn_image_preprocess_mnist), photographs included.
 *
 * MNIST's own preparation (LeCun et al.) was made for clean scans: ink
 * bright on black, cropped to the ink, fitted into 20x20 keeping the aspect
 * ratio, centre of mass at the centre of 28x28. A photo of a digit on paper
 * needs more before that, and every decision is local:
 *
 *   1. Polarity. Most of a picture is paper: when its median is nearer the
 *      brightest grey than the darkest, the ink is dark. From here on the
 *      paper is bright and the ink dark.
 *   2. The paper's brightness at each pixel: a morphological closing (max
 *      filter, then min filter) with a window a quarter of the picture
 *      wide. It removes strokes narrower than the window and keeps lighting
 *      gradients, vignetting and the hard edges of shadows. Ink darkness is
 *      then 1 - I / B: the same for a stroke in the light as in a shadow.
 *   3. What is ink: darker than the paper's noise (its median + 5 robust
 *      sigmas), in 8-connected components. The digit is the component with
 *      the most ink, the centre of the picture preferred; components that
 *      touch the frame (paper edges, shadows, borders) are ignored while
 *      another remains, as are specks: a component joins the digit only when
 *      it is close to it and not tiny beside it (the pieces of a broken
 *      pencil stroke, the bar of a 5).
 *   4. Contrast. The digit's strong ink (the 90th percentile of its
 *      darkness) becomes full ink, so a faint pencil stroke comes out like a
 *      pen's; a tenth of it is background, as in MNIST.
 *   5. Thickness. The stroke width (twice the area over the perimeter) is
 *      brought into MNIST's range when it is far outside it: thin pencil
 *      lines are thickened, broad marker strokes thinned. Only for crops
 *      larger than the 20x20 box: a small picture is already at MNIST's
 *      scale.
 *   6. MNIST's steps: fit 20x20, centre of mass at (14, 14).
 *
 * A clean digital picture (paper one grey level, no specks) comes out as
 * before: the closing of a uniform page is the page, and steps 3-4 reduce
 * to MNIST's crop to the ink above a tenth of its contrast.
 */
#include "io/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fewer grey levels between background and ink than this is a blank page. */
#define IMG_MIN_CONTRAST 24
/* Pixels fainter than this fraction of the digit's ink are background. */
#define IMG_INK_LEVEL 0.10f
#define MNIST_SIDE 28
#define MNIST_BOX 20
/* Pictures are analysed at most this many pixels a side (a phone's 4000x3000
 * photo at a third of its size: a digit a twentieth of its height is still
 * 50 pixels tall, more than the 20 it becomes). */
#define WORK_SIDE 1600
/* Pictures up to this side are not smoothed before finding the ink: they
 * are digital drawings or MNIST-sized already, not noisy photos. */
#define SMOOTH_ABOVE 64
/* MNIST's stroke width in the 20x20 box, by twice the area over the
 * perimeter of the pixels at half the ink or more: 2.1 to 4.1 for 90% of
 * its test digits, median 2.7. Outside [THIN, THICK] a stroke is brought to
 * TARGET. */
#define STROKE_THIN 1.9
#define STROKE_THICK 5.5
#define STROKE_TARGET 2.8
#define STROKE_TARGET_THICK 4.0

/* ----------------------------------------------------------- filters */

/* Max (is_max) or min filter of one line of n samples, `stride` apart, over
 * windows of 2r + 1 samples (cut short at the ends), in O(n) whatever r
 * (van Herk / Gil-Werman: running extremes within blocks of the window's
 * length, from the left and from the right). tmp holds 3 * (n + 2r) floats. */
static void extreme_1d(float *line, int n, int stride, int r, int is_max, float *tmp)
{
    int k = 2 * r + 1, len = n + 2 * r;
    float *f = tmp, *g = tmp + len, *h = tmp + 2 * len;
    const float none = is_max ? -INFINITY : INFINITY;
    for (int i = 0; i < len; i++) {
        int j = i - r;
        f[i] = j >= 0 && j < n ? line[(size_t)j * stride] : none;
    }
    for (int i = 0; i < len; i++) {
        if (i % k == 0) g[i] = f[i];
        else g[i] = is_max ? fmaxf(g[i - 1], f[i]) : fminf(g[i - 1], f[i]);
    }
    for (int i = len - 1; i >= 0; i--) {
        if (i % k == k - 1 || i == len - 1) h[i] = f[i];
        else h[i] = is_max ? fmaxf(h[i + 1], f[i]) : fminf(h[i + 1], f[i]);
    }
    /* the window of output j is f[j .. j + k - 1] */
    for (int j = 0; j < n; j++) {
        float a = h[j], b = g[j + k - 1];
        line[(size_t)j * stride] = is_max ? fmaxf(a, b) : fminf(a, b);
    }
}

/* A square max or min filter of radius r over a w x h image, in place. */
static void extreme_2d(float *img, int w, int h, int r, int is_max, float *tmp)
{
    if (r <= 0) return;
    for (int y = 0; y < h; y++) extreme_1d(img + (size_t)y * w, w, 1, r, is_max, tmp);
    for (int x = 0; x < w; x++) extreme_1d(img + x, h, w, r, is_max, tmp);
}

/* A morphological closing (a max filter, then a min filter) of a w x h
 * image with a square window of radius r, in place. The picture is first
 * extended by r pixels a side by repeating its edges: windows cut short by
 * the frame would flatten a gradient of light that reaches it, and the
 * paper would come out brighter than it is all along the frame. tmp holds
 * 3 * (max(w, h) + 4r + 2) floats. Returns -1 when out of memory. */
static int closing(float *img, int w, int h, int r, float *tmp)
{
    int pw = w + 2 * r, ph = h + 2 * r;
    float *p = malloc((size_t)pw * ph * sizeof *p);
    if (!p) return -1;
    for (int y = 0; y < ph; y++) {
        int sy = y - r < 0 ? 0 : y - r >= h ? h - 1 : y - r;
        for (int x = 0; x < pw; x++) {
            int sx = x - r < 0 ? 0 : x - r >= w ? w - 1 : x - r;
            p[(size_t)y * pw + x] = img[(size_t)sy * w + sx];
        }
    }
    extreme_2d(p, pw, ph, r, 1, tmp);
    extreme_2d(p, pw, ph, r, 0, tmp);
    for (int y = 0; y < h; y++)
        memcpy(img + (size_t)y * w, p + (size_t)(y + r) * pw + r, (size_t)w * sizeof *img);
    free(p);
    return 0;
}

/* The mean over a (2r + 1)-square window, cut short at the edges, in place;
 * tmp holds max(w, h) + 1 doubles. */
static void box_blur(float *img, int w, int h, int r, double *tmp)
{
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? h : w, lines = pass ? w : h;
        size_t step = pass ? (size_t)w : 1, next = pass ? 1 : (size_t)w;
        for (int l = 0; l < lines; l++) {
            float *p = img + (size_t)l * next;
            tmp[0] = 0;
            for (int i = 0; i < n; i++) tmp[i + 1] = tmp[i] + p[(size_t)i * step];
            for (int i = 0; i < n; i++) {
                int a = i - r < 0 ? 0 : i - r, b = i + r + 1 > n ? n : i + r + 1;
                p[(size_t)i * step] = (float)((tmp[b] - tmp[a]) / (b - a));
            }
        }
    }
}

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

/* ------------------------------------------------------------ statistics */

/* The median of a histogram; the mean of the two middle values for an even
 * count, so that inverting the image inverts the median exactly. */
static float median_of(const unsigned *hist, int bins, size_t count)
{
    size_t lower_rank = (count + 1) / 2, upper_rank = count / 2 + 1, acc = 0;
    int lower = -1, upper = -1;
    for (int v = 0; v < bins && upper < 0; v++) {
        acc += hist[v];
        if (lower < 0 && acc >= lower_rank) lower = v;
        if (acc >= upper_rank) upper = v;
    }
    return 0.5f * (float)(lower + upper);
}

/* Ink darkness 0..1 in NBINS bins, for medians and percentiles. */
#define NBINS 1024
static int bin_of(float a)
{
    int b = (int)(a * (NBINS - 1) + 0.5f);
    return b < 0 ? 0 : b >= NBINS ? NBINS - 1 : b;
}

/* ------------------------------------------------------------ components */

typedef struct {
    long area;
    int x0, y0, x1, y1;
    double mass, sx, sy; /* ink above the threshold, and its first moments */
    float contrast;      /* the most grey levels it is darker than the paper */
    int touches;         /* reaches the frame */
    int chosen;
} component;

/* Label the 8-connected components of mask (w x h, nonzero = ink) into
 * label (component index + 1, 0 = none), filling *comps. Returns the count,
 * or -1 when out of memory. */
static int label_components(const uint8_t *mask, int w, int h, const float *ink, float floor_,
                            const float *contrast, int *label, component **comps)
{
    size_t n = (size_t)w * h, cap = 64;
    int count = 0;
    component *c = malloc(cap * sizeof *c);
    int *stack = malloc(n * sizeof *stack);
    if (!c || !stack) {
        free(c);
        free(stack);
        return -1;
    }
    memset(label, 0, n * sizeof *label);
    for (size_t start = 0; start < n; start++) {
        if (!mask[start] || label[start]) continue;
        if ((size_t)count == cap) {
            component *g = realloc(c, 2 * cap * sizeof *c);
            if (!g) {
                free(c);
                free(stack);
                return -1;
            }
            c = g;
            cap *= 2;
        }
        component *k = &c[count++];
        memset(k, 0, sizeof *k);
        k->x0 = w, k->y0 = h, k->x1 = -1, k->y1 = -1;
        size_t top = 0;
        stack[top++] = (int)start;
        label[start] = count;
        while (top) {
            int p = stack[--top], x = p % w, y = p / w;
            float v = ink[p] - floor_;
            k->area++;
            k->mass += v;
            k->sx += (double)x * v;
            k->sy += (double)y * v;
            if (contrast[p] > k->contrast) k->contrast = contrast[p];
            if (x < k->x0) k->x0 = x;
            if (x > k->x1) k->x1 = x;
            if (y < k->y0) k->y0 = y;
            if (y > k->y1) k->y1 = y;
            if (x == 0 || y == 0 || x == w - 1 || y == h - 1) k->touches = 1;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
                    size_t q = (size_t)ny * w + nx;
                    if (mask[q] && !label[q]) {
                        label[q] = count;
                        stack[top++] = (int)q;
                    }
                }
        }
    }
    free(stack);
    *comps = c;
    return count;
}

/* The gap between two boxes (0 when they overlap), the larger of x and y. */
static int box_gap(int ax0, int ay0, int ax1, int ay1, int bx0, int by0, int bx1, int by1)
{
    int gx = bx0 > ax1 ? bx0 - ax1 : ax0 > bx1 ? ax0 - bx1 : 0;
    int gy = by0 > ay1 ? by0 - ay1 : ay0 > by1 ? ay0 - by1 : 0;
    return gx > gy ? gx : gy;
}

/* -------------------------------------------------------- MNIST's steps */

/* Fit a cw x ch crop of ink (0..1) into 20x20 keeping the aspect ratio,
 * bring its strongest pixel to 255 and put its centre of mass at the centre
 * of the 28x28 field. */
static cnn_status fit_and_centre(const float *crop, int cw, int ch, uint8_t out[28 * 28])
{
    /* Fit the longer side to 20 pixels, the shorter one in proportion. */
    double scale = (double)MNIST_BOX / (cw > ch ? cw : ch);
    int nw = (int)lround(cw * scale), nh = (int)lround(ch * scale);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    if (nw > MNIST_BOX) nw = MNIST_BOX;
    if (nh > MNIST_BOX) nh = MNIST_BOX;

    /* Rows first (ch x nw), then columns (nh x nw). */
    float *tmp = malloc(sizeof(float) * (size_t)ch * nw);
    if (!tmp) return cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d crop", cw, ch);
    for (int y = 0; y < ch; y++) resample_1d(crop + (size_t)y * cw, cw, 1, tmp + (size_t)y * nw, nw, 1);
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

/* Stroke width in pixels of the ink at half strength or more: twice its
 * area over its perimeter (the pixels with a 4-neighbour outside it); exact
 * for a long stroke of any width of 2 pixels or more. 0 when there is none. */
static double stroke_width(const float *v, int w, int h)
{
    long area = 0, edge = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (v[(size_t)y * w + x] < 0.5f) continue;
            area++;
            int inside = x > 0 && x < w - 1 && y > 0 && y < h - 1 &&
                         v[(size_t)y * w + x - 1] >= 0.5f && v[(size_t)y * w + x + 1] >= 0.5f &&
                         v[(size_t)(y - 1) * w + x] >= 0.5f && v[(size_t)(y + 1) * w + x] >= 0.5f;
            edge += !inside;
        }
    return edge ? 2.0 * area / edge : 0;
}

/* ------------------------------------------------------------ the steps */

typedef struct {
    float *work;   /* the picture, paper bright (W x H) */
    float *paper;  /* the paper's brightness */
    float *ink;    /* darkness 1 - work / paper, 0..1 */
    float *smooth; /* ink, smoothed, for finding it */
    float *contrast; /* paper - picture, in grey levels (smoothed) */
    uint8_t *mask;
    int *label;
    float *tmp;
    double *dtmp;
    component *comps;
    float *crop;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->work);
    free(s->paper);
    free(s->ink);
    free(s->smooth);
    free(s->contrast);
    free(s->mask);
    free(s->label);
    free(s->tmp);
    free(s->dtmp);
    free(s->comps);
    free(s->crop);
}

/* The picture at most WORK_SIDE a side: whole blocks of f x f pixels
 * averaged (the last ones cut short by the edge). */
static void shrink(const uint8_t *gray, int w, int h, int f, float *work, int W, int H)
{
    for (int Y = 0; Y < H; Y++)
        for (int X = 0; X < W; X++) {
            int x0 = X * f, y0 = Y * f, x1 = x0 + f > w ? w : x0 + f, y1 = y0 + f > h ? h : y0 + f;
            unsigned long sum = 0;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) sum += gray[(size_t)y * w + x];
            work[(size_t)Y * W + X] = (float)sum / (float)((x1 - x0) * (y1 - y0));
        }
}

cnn_status cnn_image_preprocess_mnist(const uint8_t *gray, int w, int h, uint8_t out[28 * 28])
{
    if (!gray || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_preprocess_mnist: NULL argument");
    if (w <= 0 || h <= 0 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE ||
        (long long)w * h > IMG_MAX_PIXELS)
        return cnn_fail(CNN_ERR_ARG, "cnn_image_preprocess_mnist: bad image size %dx%d", w, h);
    size_t n0 = (size_t)w * h;

    /* a blank page */
    unsigned hist[256] = {0};
    int lo = 255, hi = 0;
    for (size_t i = 0; i < n0; i++) {
        hist[gray[i]]++;
        if (gray[i] < lo) lo = gray[i];
        if (gray[i] > hi) hi = gray[i];
    }
    if (hi - lo < IMG_MIN_CONTRAST)
        return cnn_fail(CNN_ERR_FORMAT, "no ink found (the image is blank: grey levels %d..%d)",
                        lo, hi);

    int side = w > h ? w : h, f = (side + WORK_SIDE - 1) / WORK_SIDE;
    int W = (w + f - 1) / f, H = (h + f - 1) / f, big = (W > H ? W : H) > SMOOTH_ABOVE;
    size_t n = (size_t)W * H, line = (size_t)(W > H ? W : H);
    int r_paper = (W > H ? W : H) / 8;
    if (r_paper < 8) r_paper = 8;
    scratch s = {0};
    s.work = malloc(n * sizeof *s.work);
    s.paper = malloc(n * sizeof *s.paper);
    s.ink = malloc(n * sizeof *s.ink);
    s.smooth = malloc(n * sizeof *s.smooth);
    s.contrast = malloc(n * sizeof *s.contrast);
    s.mask = malloc(n);
    s.label = malloc(n * sizeof *s.label);
    s.tmp = malloc(3 * (line + 4 * (size_t)r_paper + 2) * sizeof *s.tmp);
    s.dtmp = malloc((line + 1) * sizeof *s.dtmp);
    cnn_status st = CNN_OK;
    if (!s.work || !s.paper || !s.ink || !s.smooth || !s.contrast || !s.mask || !s.label ||
        !s.tmp || !s.dtmp) {
        st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d picture", w, h);
        goto done;
    }
    shrink(gray, w, h, f, s.work, W, H);
    /* the picture smoothed (a photo's noise would otherwise raise the
     * paper's estimate and speckle the ink) */
    memcpy(s.contrast, s.work, n * sizeof *s.contrast);
    if (big) box_blur(s.contrast, W, H, 2, s.dtmp);

    /* 1. polarity: where the picture varies, is it mostly near its local
     * maximum (paper with dark ink) or its local minimum (light ink on a
     * dark ground)? Local, so that a shadow over half the page does not
     * pass for the paper; the global median decides a picture too flat to
     * tell. */
    memcpy(s.paper, s.contrast, n * sizeof *s.paper);
    memcpy(s.ink, s.contrast, n * sizeof *s.ink);
    extreme_2d(s.paper, W, H, r_paper, 1, s.tmp);
    extreme_2d(s.ink, W, H, r_paper, 0, s.tmp);
    unsigned rel[256] = {0};
    size_t varied = 0;
    for (size_t i = 0; i < n; i++) {
        float range = s.paper[i] - s.ink[i];
        if (range < IMG_MIN_CONTRAST) continue;
        rel[(int)(255.f * (s.contrast[i] - s.ink[i]) / range + 0.5f)]++;
        varied++;
    }
    int dark_ink = varied ? median_of(rel, 256, varied) > 127.5f
                          : median_of(hist, 256, n0) > 0.5f * (lo + hi);
    if (!dark_ink)
        for (size_t i = 0; i < n; i++) {
            s.work[i] = 255.f - s.work[i];
            s.contrast[i] = 255.f - s.contrast[i];
        }

    /* 2. the paper: a closing of the smoothed picture, or of the picture
     * itself where that is darker (beside the sharp edge of a shadow, which
     * smoothing would spread into a band of "ink"); the ink's darkness
     * relative to it */
    memcpy(s.paper, s.contrast, n * sizeof *s.paper);
    if (closing(s.paper, W, H, r_paper, s.tmp)) {
        st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d picture", w, h);
        goto done;
    }
    if (big) {
        memcpy(s.ink, s.work, n * sizeof *s.ink);
        if (closing(s.ink, W, H, r_paper, s.tmp)) {
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d picture", w, h);
            goto done;
        }
        for (size_t i = 0; i < n; i++) s.paper[i] = fminf(s.paper[i], s.ink[i]);
    }
    for (size_t i = 0; i < n; i++) {
        float p = s.paper[i];
        float a = p > 0.5f ? 1.f - s.work[i] / p : 0.f;
        s.ink[i] = a < 0 ? 0 : a > 1 ? 1 : a;
        s.contrast[i] = p - s.contrast[i];
    }
    memcpy(s.smooth, s.ink, n * sizeof *s.smooth);
    if (big) box_blur(s.smooth, W, H, 1, s.dtmp);
    /* 3. ink: above the paper's noise, in components */
    unsigned *ahist = calloc(NBINS, sizeof *ahist);
    if (!ahist) {
        st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d picture", w, h);
        goto done;
    }
    for (size_t i = 0; i < n; i++) ahist[bin_of(s.smooth[i])]++;
    float med = median_of(ahist, NBINS, n);
    memset(ahist, 0, NBINS * sizeof *ahist);
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(s.smooth[i] * (NBINS - 1) - med);
        ahist[d >= NBINS ? NBINS - 1 : (int)d]++;
    }
    float mad = median_of(ahist, NBINS, n);
    free(ahist);
    float floor_ = (med + 5.f * 1.4826f * mad) / (NBINS - 1);
    if (floor_ < 0.02f) floor_ = 0.02f;
    for (size_t i = 0; i < n; i++) s.mask[i] = s.smooth[i] > floor_;
    int nc = label_components(s.mask, W, H, s.smooth, floor_, s.contrast, s.label, &s.comps);
    if (nc < 0) {
        st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d picture", w, h);
        goto done;
    }

    /* the digit: the most ink, nearer the centre the better, away from the
     * frame if anything is */
    int main_c = -1;
    double best = 0;
    for (int pass = 0; pass < 2 && main_c < 0; pass++)
        for (int i = 0; i < nc; i++) {
            const component *k = &s.comps[i];
            if (k->contrast < IMG_MIN_CONTRAST || (pass == 0 && k->touches) || k->mass <= 0) continue;
            double dx = (k->sx / k->mass - (W - 1) / 2.0) / (W / 2.0);
            double dy = (k->sy / k->mass - (H - 1) / 2.0) / (H / 2.0);
            double score = k->mass / (1 + dx * dx + dy * dy);
            if (score > best) best = score, main_c = i;
        }
    if (main_c < 0) {
        st = cnn_fail(CNN_ERR_FORMAT,
                      "no ink found (nothing stands out from the background by %d grey levels)",
                      IMG_MIN_CONTRAST);
        goto done;
    }
    component *dig = &s.comps[main_c];
    dig->chosen = 1;

    /* 4. contrast: the digit's strong ink (90th percentile of its darkness) */
    float strong = 0, peak = 0;
    {
        unsigned *ph = calloc(NBINS, sizeof *ph);
        if (!ph) {
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d picture", w, h);
            goto done;
        }
        size_t cnt = 0;
        for (int y = dig->y0; y <= dig->y1; y++)
            for (int x = dig->x0; x <= dig->x1; x++) {
                size_t i = (size_t)y * W + x;
                if (s.label[i] != main_c + 1) continue;
                ph[bin_of(s.ink[i])]++;
                cnt++;
                if (s.ink[i] > peak) peak = s.ink[i];
            }
        size_t acc = 0, rank = cnt - cnt / 10;
        for (int b = 0; b < NBINS; b++) {
            acc += ph[b];
            if (acc >= rank) {
                strong = (float)b / (NBINS - 1);
                break;
            }
        }
        free(ph);
    }

    /* the pieces near the digit that are not specks */
    int gx0 = dig->x0, gy0 = dig->y0, gx1 = dig->x1, gy1 = dig->y1;
    int dsize = (dig->x1 - dig->x0 > dig->y1 - dig->y0 ? dig->x1 - dig->x0 : dig->y1 - dig->y0) + 1;
    int reach = (int)(0.3 * dsize) + 2;
    for (int grown = 1; grown;) {
        grown = 0;
        for (int i = 0; i < nc; i++) {
            component *k = &s.comps[i];
            if (k->chosen || k->contrast < IMG_MIN_CONTRAST || (k->touches && !dig->touches)) continue;
            if (k->area * 100 < dig->area) continue; /* a speck */
            if (box_gap(gx0, gy0, gx1, gy1, k->x0, k->y0, k->x1, k->y1) > reach) continue;
            k->chosen = 1;
            grown = 1;
            if (k->x0 < gx0) gx0 = k->x0;
            if (k->y0 < gy0) gy0 = k->y0;
            if (k->x1 > gx1) gx1 = k->x1;
            if (k->y1 > gy1) gy1 = k->y1;
        }
    }

    /* the ink of the chosen components above a tenth of the strong ink,
     * stretched so that the strong ink is 1 */
    float level = IMG_INK_LEVEL * strong;
    if (level < floor_) level = floor_;
    if (strong <= level) strong = peak;
    if (strong <= level) {
        st = cnn_fail(CNN_ERR_FORMAT, "no ink found");
        goto done;
    }
    int x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (int y = gy0; y <= gy1; y++)
        for (int x = gx0; x <= gx1; x++) {
            size_t i = (size_t)y * W + x;
            int l = s.label[i];
            if (!l || !s.comps[l - 1].chosen || s.ink[i] <= level) continue;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    if (x1 < 0) {
        st = cnn_fail(CNN_ERR_FORMAT, "no ink found");
        goto done;
    }
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1, longest = cw > ch ? cw : ch;

    /* 5. thickness, measured on the crop as it is */
    int grow = 0;
    {
        float *v = malloc((size_t)cw * ch * sizeof *v);
        if (!v) {
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d crop", cw, ch);
            goto done;
        }
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++) {
                size_t i = (size_t)(y0 + y) * W + x0 + x;
                int l = s.label[i];
                float a = l && s.comps[l - 1].chosen ? (s.ink[i] - level) / (strong - level) : 0.f;
                v[(size_t)y * cw + x] = a < 0 ? 0 : a > 1 ? 1 : a;
            }
        if (longest >= 2 * MNIST_BOX) {
            double wbox = stroke_width(v, cw, ch) * MNIST_BOX / longest;
            double px_per_box = (double)longest / MNIST_BOX;
            if (wbox > 0 && wbox < STROKE_THIN) grow = (int)lround((STROKE_TARGET - wbox) / 2 * px_per_box);
            if (wbox > STROKE_THICK) grow = -(int)lround((wbox - STROKE_TARGET_THICK) / 2 * px_per_box);
        }
        if (grow == 0) {
            s.crop = v;
        } else {
            /* a margin for the strokes to grow into */
            int m = grow > 0 ? grow : 0, pw = cw + 2 * m, phh = ch + 2 * m;
            int pline = (pw > phh ? pw : phh);
            s.crop = calloc((size_t)pw * phh, sizeof *s.crop);
            float *t2 = malloc(3 * ((size_t)pline + 2 * (size_t)abs(grow) + 2) * sizeof *t2);
            if (!s.crop || !t2) {
                free(v);
                free(t2);
                st = cnn_fail(CNN_ERR_NOMEM, "out of memory preprocessing a %dx%d crop", cw, ch);
                goto done;
            }
            for (int y = 0; y < ch; y++)
                memcpy(s.crop + (size_t)(y + m) * pw + m, v + (size_t)y * cw, (size_t)cw * sizeof *v);
            free(v);
            extreme_2d(s.crop, pw, phh, abs(grow), grow > 0, t2);
            free(t2);
            /* crop again to what is left */
            int a0 = pw, b0 = phh, a1 = -1, b1 = -1;
            for (int y = 0; y < phh; y++)
                for (int x = 0; x < pw; x++)
                    if (s.crop[(size_t)y * pw + x] > 0) {
                        if (x < a0) a0 = x;
                        if (x > a1) a1 = x;
                        if (y < b0) b0 = y;
                        if (y > b1) b1 = y;
                    }
            if (a1 < 0) {
                st = cnn_fail(CNN_ERR_FORMAT, "no ink found");
                goto done;
            }
            cw = a1 - a0 + 1, ch = b1 - b0 + 1;
            for (int y = 0; y < ch; y++)
                memmove(s.crop + (size_t)y * cw, s.crop + (size_t)(b0 + y) * pw + a0,
                        (size_t)cw * sizeof *s.crop);
        }
    }

    /* 6. MNIST's steps */
    st = fit_and_centre(s.crop, cw, ch, out);
done:
    scratch_free(&s);
    return st;
}
