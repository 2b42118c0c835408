/* pool.c — max and average pooling (PyTorch's MaxPool2d / AvgPool2d with
 * ceil_mode=False; average pooling counts padded cells, count_include_pad).
 *
 *   maxpool K[xK2] [stride=S|SxS2] [pad=P|PxP2]      stride defaults to K
 *   avgpool K[xK2] [stride=S|SxS2] [pad=P|PxP2]
 *
 * Output floor((H + 2p - k) / s) + 1, which is eq. 3.7 / 3.8 for the seed's
 * s = k, p = 0. Padded cells never win a max and add zero to an average.
 *
 * The fast kernels are direct loops, not im2col: a pooling window does a
 * handful of compares or adds per output with no reuse to exploit, so
 * unrolling it into a matrix would only add a copy. What pays is walking
 * each (image, channel) plane contiguously, one plane per OpenMP iteration,
 * with a specialised path for the common 2x2 stride-2 unpadded case.
 */
#include "internal.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    cnn_layer base;
    int is_max;
    cnn_window g;   /* c, h, w, kernel, stride, pad (mode unused: zero) */
    int32_t *argmax; /* maxpool: (max_batch, C, Ho, Wo) index into the input plane */
    int max_batch;
} pool2d;

static double pool_flops(const cnn_layer *l)
{
    const cnn_window *g = &((const pool2d *)l)->g;
    return (double)g->kh * g->kw * g->c * g->ho * g->wo;
}

static int pool_threads(const cnn_layer *l, int n)
{
    return pool_flops(l) * n < CNN_PARALLEL_MIN_FLOPS ? 1 : cnn_threads();
}

/* The first cell of a window that beats the best so far wins, so ties go to
 * the first in scan order; a NaN always takes over so it is not hidden. */
static inline int beats(float v, float best) { return v > best || v != v; }

/* ------------------------------------------------------------ reference */

/* Window (i, j) of a plane, clipped to the real cells: rows [*y0, *y1),
 * columns [*x0, *x1). Never empty, because pad <= k/2. */
static inline void window(const cnn_window *g, int i, int j, int *y0, int *y1, int *x0, int *x1)
{
    int a = i * g->sh - g->ph, b = j * g->sw - g->pw;
    *y0 = a < 0 ? 0 : a;
    *y1 = a + g->kh > g->h ? g->h : a + g->kh;
    *x0 = b < 0 ? 0 : b;
    *x1 = b + g->kw > g->w ? g->w : b + g->kw;
}

/* x: (N, C, H, W)  y: (N, C, Ho, Wo)
 * eq. 3.9 (max) or the window mean, over the real cells of each window. */
static void pool_forward_ref(pool2d *p, const float *x, float *y, int n)
{
    const cnn_window *g = &p->g;
    for (int nc = 0; nc < n * g->c; nc++) {
        const float *xp = x + (size_t)nc * g->h * g->w;
        for (int i = 0; i < g->ho; i++)
            for (int j = 0; j < g->wo; j++) {
                int y0, y1, x0, x1;
                window(g, i, j, &y0, &y1, &x0, &x1);
                float r;
                if (p->is_max) {
                    r = xp[y0 * g->w + x0];
                    for (int m = y0; m < y1; m++)
                        for (int q = x0; q < x1; q++)
                            if (beats(xp[m * g->w + q], r)) r = xp[m * g->w + q];
                } else {
                    r = 0.0f;
                    for (int m = y0; m < y1; m++)
                        for (int q = x0; q < x1; q++) r += xp[m * g->w + q];
                    r /= (float)(g->kh * g->kw);
                }
                y[((size_t)nc * g->ho + i) * g->wo + j] = r;
            }
    }
}

/* dy: (N, C, Ho, Wo)  ->  dx: (N, C, H, W)
 * eq. 3.10: dy goes to the window's arg-max (found again from x, first in
 * scan order on ties); for the average every real cell gets dy / (kh*kw).
 * Windows may overlap (stride < k), so contributions add. */
static void pool_backward_ref(pool2d *p, const float *x, const float *dy, float *dx, int n)
{
    const cnn_window *g = &p->g;
    memset(dx, 0, sizeof(float) * (size_t)n * g->c * g->h * g->w);
    for (int nc = 0; nc < n * g->c; nc++) {
        const float *xp = x + (size_t)nc * g->h * g->w;
        float *dxp = dx + (size_t)nc * g->h * g->w;
        for (int i = 0; i < g->ho; i++)
            for (int j = 0; j < g->wo; j++) {
                int y0, y1, x0, x1;
                window(g, i, j, &y0, &y1, &x0, &x1);
                float d = dy[((size_t)nc * g->ho + i) * g->wo + j];
                if (p->is_max) {
                    int best = y0 * g->w + x0;
                    for (int m = y0; m < y1; m++)
                        for (int q = x0; q < x1; q++)
                            if (beats(xp[m * g->w + q], xp[best])) best = m * g->w + q;
                    dxp[best] += d;
                } else {
                    for (int m = y0; m < y1; m++)
                        for (int q = x0; q < x1; q++) dxp[m * g->w + q] += d / (float)(g->kh * g->kw);
                }
            }
    }
}

/* ----------------------------------------------------------------- fast */

/* MAX_LANES 2x2 windows given as their four cells a b / c d: the max, and
 * the winner's offset from a (0, 1, w, w + 1). The same three beats() tests
 * in the same order as the generic path, written as selects (| not ||, so
 * no short-circuit jump) that GCC turns into vector compares and blends. */
#define MAX_LANES 16
static inline void max2x2_lanes(const float *a, const float *b, const float *c, const float *d,
                                int w, float *m, int *o)
{
#pragma omp simd
    for (int j = 0; j < MAX_LANES; j++) {
        const int tb = (b[j] > a[j]) | (b[j] != b[j]);
        float v = tb ? b[j] : a[j];
        int k = tb;
        const int tc = (c[j] > v) | (c[j] != c[j]);
        v = tc ? c[j] : v;
        k = tc ? w : k;
        const int td = (d[j] > v) | (d[j] != d[j]);
        m[j] = td ? d[j] : v;
        o[j] = td ? w + 1 : k;
    }
}

/* One plane. x: (H, W)  y: (Ho, Wo)  idx: (Ho, Wo) */
static void maxpool_plane(const cnn_window *g, const float *x, float *y, int32_t *idx)
{
    const int w = g->w;
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0) {
        for (int i = 0; i < g->ho; i++) {
            const float *r0 = x + (size_t)2 * i * w, *r1 = r0 + w;
            float *yr = y + (size_t)i * g->wo;
            int32_t *ir = idx + (size_t)i * g->wo;
            const int base = 2 * i * w;
            /* Why branch-free, in blocks of MAX_LANES: on real activations
             * the winner of a window is unpredictable, and the if-chain ran
             * at branch-miss speed (bench/FINDINGS.md F3). A fixed-length
             * block vectorises fully even for the narrow rows of small
             * layers (7 or 5 outputs), where a plain loop would leave a
             * scalar epilogue with branches. */
            for (int j0 = 0; j0 < g->wo; j0 += MAX_LANES) {
                const int nj = g->wo - j0 < MAX_LANES ? g->wo - j0 : MAX_LANES;
                float a[MAX_LANES] = {0}, b[MAX_LANES] = {0}, c[MAX_LANES] = {0},
                      d[MAX_LANES] = {0}, m[MAX_LANES];
                int o[MAX_LANES];
                for (int j = 0; j < nj; j++) {
                    a[j] = r0[2 * (j0 + j)];
                    b[j] = r0[2 * (j0 + j) + 1];
                    c[j] = r1[2 * (j0 + j)];
                    d[j] = r1[2 * (j0 + j) + 1];
                }
                max2x2_lanes(a, b, c, d, w, m, o);
                for (int j = 0; j < nj; j++) {
                    yr[j0 + j] = m[j];
                    ir[j0 + j] = base + 2 * (j0 + j) + o[j];
                }
            }
        }
        return;
    }
    for (int i = 0; i < g->ho; i++)
        for (int j = 0; j < g->wo; j++) {
            int y0, y1, x0, x1;
            window(g, i, j, &y0, &y1, &x0, &x1);
            int b = y0 * w + x0;
            float m = x[b];
            for (int r = y0; r < y1; r++) {
                const float *row = x + (size_t)r * w;
                for (int q = x0; q < x1; q++)
                    if (beats(row[q], m)) { m = row[q]; b = r * w + q; }
            }
            y[(size_t)i * g->wo + j] = m;
            idx[(size_t)i * g->wo + j] = b;
        }
}

static void avgpool_plane(const cnn_window *g, const float *x, float *y)
{
    const int w = g->w;
    const float kk = (float)(g->kh * g->kw);
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0) {
        for (int i = 0; i < g->ho; i++) {
            const float *r0 = x + (size_t)2 * i * w, *r1 = r0 + w;
            float *yr = y + (size_t)i * g->wo;
            for (int j = 0; j < g->wo; j++)
                yr[j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) / kk;
        }
        return;
    }
    for (int i = 0; i < g->ho; i++)
        for (int j = 0; j < g->wo; j++) {
            int y0, y1, x0, x1;
            window(g, i, j, &y0, &y1, &x0, &x1);
            float s = 0.0f;
            for (int r = y0; r < y1; r++) {
                const float *row = x + (size_t)r * w;
                for (int q = x0; q < x1; q++) s += row[q];
            }
            y[(size_t)i * g->wo + j] = s / kk;
        }
}

/* Plane k (image k / C, channel k % C) of x: (N, C, H, W)  ->  y: (N, C, Ho, Wo) */
static void pool_plane_forward(const pool2d *p, const float *x, float *y, int k)
{
    const cnn_window *g = &p->g;
    const size_t isz = (size_t)g->h * g->w, osz = (size_t)g->ho * g->wo;
    if (p->is_max) maxpool_plane(g, x + k * isz, y + k * osz, p->argmax + k * osz);
    else avgpool_plane(g, x + k * isz, y + k * osz);
}

/* Plane k of dy: (N, C, Ho, Wo)  ->  dx: (N, C, H, W) */
static void pool_plane_backward(const pool2d *p, const float *dy, float *dx, int k)
{
    const cnn_window *g = &p->g;
    const size_t isz = (size_t)g->h * g->w, osz = (size_t)g->ho * g->wo;
    const float kk = (float)(g->kh * g->kw);
    float *dxp = dx + k * isz;
    const float *dyp = dy + k * osz;
    memset(dxp, 0, sizeof(float) * isz);
    if (p->is_max) {
        const int32_t *ip = p->argmax + k * osz;
        for (size_t o = 0; o < osz; o++) dxp[ip[o]] += dyp[o];
        return;
    }
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0) {
        /* Why: the generic window() walk per output ran at 1.3x the
         * reference (bench/FINDINGS.md F3). The windows do not overlap, so
         * each cell of a window is just dy / 4 (0 + d, as the generic path). */
        for (int i = 0; i < g->ho; i++) {
            float *r0 = dxp + (size_t)2 * i * g->w, *r1 = r0 + g->w;
            const float *dr = dyp + (size_t)i * g->wo;
#pragma omp simd
            for (int j = 0; j < g->wo; j++) {
                const float d = dr[j] / kk;
                r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = d;
            }
        }
        return;
    }
    for (int i = 0; i < g->ho; i++)
        for (int j = 0; j < g->wo; j++) {
            int y0, y1, x0, x1;
            window(g, i, j, &y0, &y1, &x0, &x1);
            float d = dyp[(size_t)i * g->wo + j] / kk;
            for (int r = y0; r < y1; r++)
                for (int q = x0; q < x1; q++) dxp[(size_t)r * g->w + q] += d;
        }
}

/* The planes are shared out dynamically only for nt > 1: a region with
 * if(0) or one thread still enters libgomp, which mallocs a one-thread team
 * on every call (bench/FINDINGS.md F1). */

/* x: (N, C, H, W)  y: (N, C, Ho, Wo)  argmax: (N, C, Ho, Wo) */
static void pool_forward_fast(pool2d *p, const float *x, float *y, int n)
{
    const int planes = n * p->g.c, nt = pool_threads(&p->base, n);
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
        for (int k = 0; k < planes; k++) pool_plane_forward(p, x, y, k);
    } else {
        for (int k = 0; k < planes; k++) pool_plane_forward(p, x, y, k);
    }
}

/* dy: (N, C, Ho, Wo)  ->  dx: (N, C, H, W) */
static void pool_backward_fast(pool2d *p, const float *dy, float *dx, int n)
{
    const int planes = n * p->g.c, nt = pool_threads(&p->base, n);
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
        for (int k = 0; k < planes; k++) pool_plane_backward(p, dy, dx, k);
    } else {
        for (int k = 0; k < planes; k++) pool_plane_backward(p, dy, dx, k);
    }
}

/* ------------------------------------------------------------ the layer */

static void pool_forward(cnn_layer *l, const float *x, float *y, int n, int train)
{
    pool2d *p = (pool2d *)l;
    /* the max's reference backward finds the arg-max again from x */
    if (l->kernels == CNN_KERNELS_REF) pool_forward_ref(p, x, y, n);
    else pool_forward_fast(p, x, y, n);
}

static void pool_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                          float *dx, int n)
{
    if (!dx) return; /* no parameters: nothing else to compute */
    pool2d *p = (pool2d *)l;
    if (l->kernels == CNN_KERNELS_REF) pool_backward_ref(p, x, dy, dx, n);
    else pool_backward_fast(p, dy, dx, n);
}

static cnn_status maxpool_reserve(cnn_layer *l, int max_batch, int threads)
{
    pool2d *p = (pool2d *)l;
    cnn_free(p->argmax);
    p->argmax = NULL;
    p->max_batch = 0;
    if (max_batch < 1) max_batch = 1;
    size_t cells = cnn_mul_size((size_t)max_batch, cnn_shape_size(l->out));
    p->argmax = cnn_alloc(cnn_mul_size(cells, sizeof(int32_t)), "maxpool arg-max indices");
    if (!p->argmax) return CNN_ERR_NOMEM;
    p->max_batch = max_batch;
    return CNN_OK;
}

static void pool_destroy(cnn_layer *l)
{
    pool2d *p = (pool2d *)l;
    cnn_free(p->argmax);
    p->argmax = NULL;
}

static const cnn_layer_ops maxpool_ops = {
    .kind = "maxpool",
    .torch = "MaxPool2d",
    .reserve = maxpool_reserve,
    .forward = pool_forward,
    .backward = pool_backward,
    .flops = pool_flops,
    .destroy = pool_destroy,
};

static const cnn_layer_ops avgpool_ops = {
    .kind = "avgpool",
    .torch = "AvgPool2d",
    .forward = pool_forward,
    .backward = pool_backward,
    .flops = pool_flops,
    .destroy = pool_destroy,
};

static void fmt_pair(char *buf, size_t n, int a, int b)
{
    if (a == b) snprintf(buf, n, "%d", a);
    else snprintf(buf, n, "%dx%d", a, b);
}

static cnn_status pool_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out, int is_max)
{
    int kh = 0, kw = 0, sh, sw, ph = 0, pw = 0;
    cnn_status st;
    *out = NULL;
    if ((st = cnn_spec_pair(s, 1, "a pool size (K or KHxKW)", 1, 1024, 1, &kh, &kw))) return st;
    sh = kh;
    sw = kw;
    if ((st = cnn_spec_opt_pair(s, "stride", 1, 1024, &sh, &sw)) ||
        (st = cnn_spec_opt_pair(s, "pad", 0, 512, &ph, &pw)))
        return st;
    if (ph > kh / 2 || pw > kw / 2)
        return cnn_spec_error(s, "pad must be at most half the pool size, got pad %dx%d for pool "
                                 "%dx%d", ph, pw, kh, kw);
    int ho = in.h + 2 * ph - kh, wo = in.w + 2 * pw - kw;
    ho = ho < 0 ? 0 : ho / sh + 1;
    wo = wo < 0 ? 0 : wo / sw + 1;
    if (in.h + 2 * ph < kh || in.w + 2 * pw < kw)
        return cnn_spec_error(s, "output would be 0x0 for input %dx%dx%d (pool %dx%d, pad %dx%d)",
                              in.c, in.h, in.w, kh, kw, ph, pw);

    cnn_shape o = {in.c, ho, wo};
    cnn_layer *l = cnn_layer_new(sizeof(pool2d), is_max ? &maxpool_ops : &avgpool_ops, in, o, s);
    if (!l) return CNN_ERR_NOMEM;
    pool2d *p = (pool2d *)l;
    p->is_max = is_max;
    p->g = (cnn_window){.c = in.c, .h = in.h, .w = in.w, .kh = kh, .kw = kw, .sh = sh, .sw = sw,
                        .ph = ph, .pw = pw, .mode = CNN_PAD_ZERO, .ho = ho, .wo = wo};

    char k[24], st_[24], pd[24];
    fmt_pair(k, sizeof k, kh, kw);
    fmt_pair(st_, sizeof st_, sh, sw);
    fmt_pair(pd, sizeof pd, ph, pw);
    int n = snprintf(l->desc, sizeof l->desc, "%s %s", is_max ? "maxpool" : "avgpool", k);
    if (sh != kh || sw != kw) n += snprintf(l->desc + n, sizeof l->desc - n, " stride=%s", st_);
    if (ph || pw) snprintf(l->desc + n, sizeof l->desc - n, " pad=%s", pd);
    *out = l;
    return CNN_OK;
}

cnn_status cnn_maxpool_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    return pool_create(s, in, out, 1);
}

cnn_status cnn_avgpool_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    return pool_create(s, in, out, 0);
}
