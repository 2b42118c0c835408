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
 * unrolling it into a matrix would only add a copy. The common 2x2
 * stride-2 unpadded case has vector kernels (AVX-512 in
 * src/kernels/pool_avx512.c, picked at run time; portable C here
 * otherwise, with the same bits) that walk a whole batch as one run of row
 * pairs; other windows go plane by plane.
 */
#include "internal.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    cnn_layer base;
    int is_max;
    cnn_window g;   /* c, h, w, kernel, stride, pad (mode unused: zero) */
    /* maxpool: (max_batch, C, Ho, Wo), the index into the input plane of
     * each window's winner; the 2x2 stride-2 kernels keep a byte code per
     * window in the same buffer instead (see "fast") */
    int32_t *argmax;
    int max_batch;
} pool2d;

static double pool_flops(const cnn_layer *l)
{
    const cnn_window *g = &((const pool2d *)l)->g;
    return (double)g->kh * g->kw * g->c * g->ho * g->wo;
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

/* The 2x2 stride-2 unpadded pool (every preset's) has its own kernels.
 * They see the batch as rows of windows: output row r reads input rows
 * x + 2r*w and x + 2r*w + w and writes y + r*wo. With an even H the rows of
 * all planes follow each other at that stride, so a whole batch is one
 * call and a 7-wide plane costs no per-plane loop; with an odd H each
 * plane is a call (its last input row is in no window).
 *
 * The max records which cell of each window won as one byte, 0 1 / 2 3
 * for a b / c d, rather than an int32 index: a quarter of the index
 * traffic, and the backward then writes each 2x2 block of dx whole
 * (winner gets dy, the rest 0) with no memset and no scatter.
 *
 * Bench/FINDINGS.md F3 gives the history: the if-chain per window ran at
 * branch-miss speed, so every kernel here is branch-free selects. */

static int is_2x2(const cnn_window *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0;
}

/* ---- portable 2x2 kernels: plain C that GCC and clang vectorise */

/* The same beats() chain as the reference, a then b, c, d in scan order,
 * written as selects over fixed-length blocks of MAX_LANES windows: GCC
 * (with or without -march, and clang) turns them into vector compares and
 * blends. (Reordered as
 * (a vs b) vs (c vs d), or with _Bool and ||, GCC 12 no longer
 * vectorises it, at least without AVX-512.) */
#define MAX_LANES 16

static inline void max2x2_lanes(const float *a, const float *b, const float *c, const float *d,
                                float *m, int *o)
{
#pragma omp simd
    for (int j = 0; j < MAX_LANES; j++) {
        const int tb = (b[j] > a[j]) | (b[j] != b[j]);
        float v = tb ? b[j] : a[j];
        int k = tb;
        const int tc = (c[j] > v) | (c[j] != c[j]);
        v = tc ? c[j] : v;
        k = tc ? 2 : k;
        const int td = (d[j] > v) | (d[j] != d[j]);
        m[j] = td ? d[j] : v;
        o[j] = td ? 3 : k;
    }
}

/* The windows of all `rows` rows are taken in one sequence, MAX_LANES at a
 * time, so 5- or 7-wide rows still fill the blocks. */
static void max2x2_rows_c(const float *x, int w, int wo, size_t rows, float *y, uint8_t *win)
{
    const size_t total = rows * wo;
    size_t r = 0;
    int j = 0; /* window j of row r is the next to gather */
    for (size_t e0 = 0; e0 < total; e0 += MAX_LANES) {
        const int n = total - e0 < MAX_LANES ? (int)(total - e0) : MAX_LANES;
        float a[MAX_LANES] = {0}, b[MAX_LANES] = {0}, c[MAX_LANES] = {0}, d[MAX_LANES] = {0},
              m[MAX_LANES];
        int o[MAX_LANES]; /* not uint8_t: mixed widths stop GCC vectorising */
        for (int t = 0; t < n; t++) {
            const float *p = x + 2 * r * w + 2 * j;
            a[t] = p[0];
            b[t] = p[1];
            c[t] = p[w];
            d[t] = p[w + 1];
            if (++j == wo) {
                j = 0;
                r++;
            }
        }
        max2x2_lanes(a, b, c, d, m, o);
        memcpy(y + e0, m, sizeof(float) * n);
        for (int t = 0; t < n; t++) win[e0 + t] = (uint8_t)o[t];
    }
}

/* dy -> the two dx rows under output row r: zeroed, then each window's
 * winner gets dy (an odd W's last column, in no window, stays 0). A store
 * to a computed cell rather than four selects: those only vectorise for
 * rows of 16+ windows and ran branchy, 4x slower, on 7-wide ones. */
static void max2x2_back_rows_c(const float *dy, const uint8_t *win, int w, int wo, size_t rows,
                               float *dx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *d = dy + r * wo;
        const uint8_t *o = win + r * wo;
        float *r0 = dx + 2 * r * w;
        memset(r0, 0, sizeof(float) * 2 * w);
        for (int j = 0; j < wo; j++) r0[(o[j] >> 1) * w + 2 * j + (o[j] & 1)] = d[j];
    }
}

/* ((a + b) + c) + d, then / 4 written as * 0.25f: the same bits, since a
 * power of two scales exactly. The sum order is the reference's. */
static void avg2x2_rows_c(const float *x, int w, int wo, size_t rows, float *y)
{
    for (size_t r = 0; r < rows; r++) {
        const float *r0 = x + 2 * r * w, *r1 = r0 + w;
        float *yr = y + r * wo;
#pragma omp simd
        for (int j = 0; j < wo; j++)
            yr[j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) * 0.25f;
    }
}

/* The windows do not overlap, so each of a window's cells is dy / 4 (the
 * reference's 0 + dy / 4), and an odd W's last column gets 0. */
static void avg2x2_back_rows_c(const float *dy, int w, int wo, size_t rows, float *dx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *dr = dy + r * wo;
        float *r0 = dx + 2 * r * w, *r1 = r0 + w;
#pragma omp simd
        for (int j = 0; j < wo; j++) {
            const float d = dr[j] * 0.25f;
            r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = d;
        }
        if (w & 1) r0[w - 1] = r1[w - 1] = 0.0f;
    }
}


/* The AVX-512 loops (src/kernels/pool_avx512.c) when the CPU has byte masks
 * and the SIMD level is AVX-512 (tests lower it to check the portable ones
 * above, which give the same bits). */
static int use_avx512(void)
{
    return cnn_simd_level() >= CNN_SIMD_AVX512 && cnn_cpu_has_avx512bw();
}

/* 2x2 forward over `rows` output rows (see the top of this section). */
static void pool2x2_rows(const pool2d *p, int avx512, const float *x, size_t rows, float *y,
                         uint8_t *win)
{
    const int w = p->g.w, wo = p->g.wo;
    if (avx512) {
        cnn_pool2x2_rows_avx512(p->is_max, x, w, wo, rows, y, win);
        return;
    }
    if (p->is_max) max2x2_rows_c(x, w, wo, rows, y, win);
    else avg2x2_rows_c(x, w, wo, rows, y);
}

static void pool2x2_back_rows(const pool2d *p, int avx512, const float *dy, const uint8_t *win,
                              size_t rows, float *dx)
{
    const int w = p->g.w, wo = p->g.wo;
    if (avx512) {
        cnn_pool2x2_back_rows_avx512(p->is_max, dy, win, w, wo, rows, dx);
        return;
    }
    if (p->is_max) max2x2_back_rows_c(dy, win, w, wo, rows, dx);
    else avg2x2_back_rows_c(dy, w, wo, rows, dx);
}

/* ---- any other window: one plane at a time */

/* One plane. x: (H, W)  y: (Ho, Wo)  idx: (Ho, Wo) index into the plane */
static void maxpool_plane(const cnn_window *g, const float *x, float *y, int32_t *idx)
{
    const int w = g->w;
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

/* dy: (Ho, Wo)  ->  dx: (H, W); windows may overlap, so contributions add */
static void pool_plane_backward(const pool2d *p, const float *dyp, const int32_t *ip, float *dxp)
{
    const cnn_window *g = &p->g;
    const float kk = (float)(g->kh * g->kw);
    memset(dxp, 0, sizeof(float) * g->h * g->w);
    if (p->is_max) {
        for (int o = 0; o < g->ho * g->wo; o++) dxp[ip[o]] += dyp[o];
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

/* ---- planes [k0, k1) of a batch */

/* x: (N, C, H, W)  y: (N, C, Ho, Wo)  winners / argmax: (N, C, Ho, Wo) */
static void pool_planes_forward(const pool2d *p, int avx512, const float *x, float *y, int k0,
                                int k1)
{
    const cnn_window *g = &p->g;
    const size_t isz = (size_t)g->h * g->w, osz = (size_t)g->ho * g->wo;
    if (is_2x2(g)) {
        uint8_t *win = (uint8_t *)p->argmax;
        if (g->h % 2 == 0) {
            pool2x2_rows(p, avx512, x + k0 * isz, (size_t)(k1 - k0) * g->ho, y + k0 * osz,
                         win ? win + k0 * osz : NULL);
            return;
        }
        for (int k = k0; k < k1; k++)
            pool2x2_rows(p, avx512, x + k * isz, g->ho, y + k * osz, win ? win + k * osz : NULL);
        return;
    }
    for (int k = k0; k < k1; k++) {
        if (p->is_max) maxpool_plane(g, x + k * isz, y + k * osz, p->argmax + k * osz);
        else avgpool_plane(g, x + k * isz, y + k * osz);
    }
}

/* dy: (N, C, Ho, Wo)  ->  dx: (N, C, H, W) */
static void pool_planes_backward(const pool2d *p, int avx512, const float *dy, float *dx, int k0,
                                 int k1)
{
    const cnn_window *g = &p->g;
    const size_t isz = (size_t)g->h * g->w, osz = (size_t)g->ho * g->wo;
    if (is_2x2(g)) {
        const uint8_t *win = (const uint8_t *)p->argmax;
        if (g->h % 2 == 0) {
            pool2x2_back_rows(p, avx512, dy + k0 * osz, win ? win + k0 * osz : NULL,
                              (size_t)(k1 - k0) * g->ho, dx + k0 * isz);
            return;
        }
        for (int k = k0; k < k1; k++) {
            float *dxp = dx + k * isz;
            pool2x2_back_rows(p, avx512, dy + k * osz, win ? win + k * osz : NULL, g->ho, dxp);
            /* an odd H's last row is in no window */
            memset(dxp + (isz - g->w), 0, sizeof(float) * g->w);
        }
        return;
    }
    for (int k = k0; k < k1; k++)
        pool_plane_backward(p, dy + k * osz, p->is_max ? p->argmax + k * osz : NULL, dx + k * isz);
}

/* Each thread takes an equal run of whole planes: every output depends on
 * its own window only, so the split cannot change a bit. */

/* planes [k0, k1) of a batch, from `in` to `out`: pool_planes_forward
 * (x to y) or pool_planes_backward (dy to dx) */
typedef void (*pool_planes_fn)(const pool2d *p, int avx512, const float *in, float *out, int k0,
                               int k1);

typedef struct {
    const pool2d *p;
    pool_planes_fn run;
    const float *in;
    float *out;
    int avx512;
} pool_job;

static void pool_planes(void *ctx, long k0, long k1, int t)
{
    const pool_job *j = ctx;
    j->run(j->p, j->avx512, j->in, j->out, (int)k0, (int)k1);
}

/* The n * C planes of a batch through `run`, split over up to nt threads */
static void pool_fast(pool2d *p, pool_planes_fn run, const float *in, float *out, int n, int nt)
{
    pool_job j = {p, run, in, out, use_avx512()};
    const double work = pool_flops(&p->base) * n;
    cnn_parallel_for(cnn_threads_for(work, nt), (long)n * p->g.c, CNN_SPLIT_EVEN, work,
                     pool_planes, &j);
}

/* ------------------------------------------------------------ the layer */

static void pool_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    pool2d *p = (pool2d *)l;
    /* the max's reference backward finds the arg-max again from x */
    if (l->kernels == CNN_KERNELS_REF) pool_forward_ref(p, x, y, n);
    else pool_fast(p, pool_planes_forward, x, y, n, nt);
}

static void pool_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                          float *dx, int n, int nt)
{
    if (!dx) return; /* no parameters: nothing else to compute */
    pool2d *p = (pool2d *)l;
    if (l->kernels == CNN_KERNELS_REF) pool_backward_ref(p, x, dy, dx, n);
    else pool_fast(p, pool_planes_backward, dy, dx, n, nt);
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

static size_t maxpool_workspace(const cnn_layer *l, int max_batch, int threads)
{
    size_t cells = cnn_mul_size((size_t)(max_batch > 0 ? max_batch : 1), cnn_shape_size(l->out));
    return cnn_alloc_charge(cnn_mul_size(cells, sizeof(int32_t)));
}

static void pool_destroy(cnn_layer *l)
{
    pool2d *p = (pool2d *)l;
    cnn_free(p->argmax);
    p->argmax = NULL;
}

static void pool_detach(cnn_layer *l)
{
    pool2d *p = (pool2d *)l;
    p->argmax = NULL;
    p->max_batch = 0;
}

static const cnn_layer_ops maxpool_ops = {
    .kind = "maxpool",
    .torch = "MaxPool2d",
    .reserve = maxpool_reserve,
    .workspace = maxpool_workspace,
    .forward = pool_forward,
    .backward = pool_backward,
    .flops = pool_flops,
    .destroy = pool_destroy,
    .detach = pool_detach,
};

static const cnn_layer_ops avgpool_ops = {
    .kind = "avgpool",
    .torch = "AvgPool2d",
    .forward = pool_forward,
    .backward = pool_backward,
    .flops = pool_flops,
    .destroy = pool_destroy,
    .detach = pool_detach,
};


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
    l->window = &p->g;

    char k[24], st_[24], pd[24];
    cnn_fmt_pair(k, sizeof k, kh, kw);
    cnn_fmt_pair(st_, sizeof st_, sh, sw);
    cnn_fmt_pair(pd, sizeof pd, ph, pw);
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
