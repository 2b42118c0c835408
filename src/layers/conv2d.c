/* conv2d.c — 2-D convolution (cross-correlation, as in PyTorch's Conv2d).
 *
 *   conv F KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same] [padmode=zero|reflect|replicate]
 *        [bias=1|0]
 *
 * Two kernels compute the same thing:
 *  - reference: the seed report's loops (eq. 3.3 forward, eq. 3.4 / 3.5
 *    backward), with padding read through cnn_pad_index (this file);
 *  - fast: for each of the forward, dW and dx one of several algorithms,
 *    chosen per layer by conv_choose below when the layer is reserved
 *    (its plan): im2col + GEMM (conv2d_gemm.c), the shifted planes
 *    (conv2d_planes.c) or Winograd F(4x4, 3x3) (conv2d_winograd.c).
 *    conv_forward_fast and conv_backward_fast run the plan.
 *
 * Threads. A batch of at least as many images as threads gives each
 * thread whole images (forward) or gradient chunks (backward), handed out
 * dynamically: on a machine whose cores are shared, a thread that gets
 * less CPU simply takes fewer of them instead of holding everyone at the
 * barrier. A smaller batch splits each image where its algorithm can
 * (conv_fwd_algo_for).
 *
 * Determinism. dW and db are sums over the batch; summing per thread would
 * make the rounding depend on the thread count. Instead the batch is split
 * into chunks whose size depends only on the batch size, each chunk sums its
 * images in order into its own partial dW, and the partials are added in
 * chunk order. Whatever thread runs a chunk, the same additions happen in
 * the same order, so weights are bit-identical for any thread count.
 */
#include "conv2d.h"
#include "kernels/kernels.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Images per gradient chunk: at least CONV_CHUNK, and never more than
 * CONV_MAX_CHUNKS chunks so the partial buffers stay a small multiple of
 * the weights. Depends on the batch size only (see Determinism above). */
#define CONV_CHUNK 4
#define CONV_MAX_CHUNKS 16

static int chunk_size(int n)
{
    int c = (n + CONV_MAX_CHUNKS - 1) / CONV_MAX_CHUNKS;
    return c < CONV_CHUNK ? CONV_CHUNK : c;
}

static double conv_flops(const cnn_layer *l)
{
    const conv2d *cv = (const conv2d *)l;
    const cnn_window *g = &cv->g;
    double hw = (double)g->ho * g->wo;
    return 2.0 * cv->filters * g->c * g->kh * g->kw * hw + (cv->has_bias ? cv->filters * hw : 0.0);
}

/* Threads worth using for a batch of n when up to nt may run: never more
 * than reserve() made buffers for (cv->threads, once reserved). */
static int conv_threads(const conv2d *cv, int n, int nt)
{
    if (cv->threads > 0 && nt > cv->threads) nt = cv->threads;
    return cnn_threads_for(conv_flops(&cv->base) * n, nt);
}

/* ------------------------------------------------------------ reference */

/* x: (N, C, H, W)  w: (F, C, kh, kw)  b: (F)  y: (N, F, Ho, Wo)
 * eq. 3.3, with X read through the padding (the seed pads with zeros; other
 * modes read the mirrored or repeated pixel), plus the bias. */
static void conv_forward_ref(conv2d *cv, const float *x, float *y, int n)
{
    const cnn_window *g = &cv->g;
    const float *w = conv_weight(cv), *b = conv_bias(cv);
    const int F = cv->filters;
    for (int in = 0; in < n; in++)
        for (int f = 0; f < F; f++)
            for (int i = 0; i < g->ho; i++)
                for (int j = 0; j < g->wo; j++) {
                    float acc = 0.0f;
                    for (int c = 0; c < g->c; c++)
                        for (int h = 0; h < g->kh; h++) {
                            int xh = cnn_pad_index(i * g->sh + h - g->ph, g->h, g->mode);
                            if (xh < 0) continue;
                            for (int v = 0; v < g->kw; v++) {
                                int xw = cnn_pad_index(j * g->sw + v - g->pw, g->w, g->mode);
                                if (xw < 0) continue;
                                acc += x[(((size_t)in * g->c + c) * g->h + xh) * g->w + xw] *
                                       w[(((size_t)f * g->c + c) * g->kh + h) * g->kw + v];
                            }
                        }
                    y[(((size_t)in * F + f) * g->ho + i) * g->wo + j] = acc + (b ? b[f] : 0.0f);
                }
}

/* dy: (N, F, Ho, Wo)  ->  dw: (F, C, kh, kw)  db: (F)  dx: (N, C, H, W)
 * dw by eq. 3.4; db = sum of dy; dx by eq. 3.5 written as a scatter: every
 * tap adds dy * w to the pixel it read, so a padded tap of reflect/replicate
 * lands on the pixel it copied and a zero-padded one is trimmed away. */
static void conv_backward_ref(conv2d *cv, const float *x, const float *dy, float *dx, int n)
{
    const cnn_window *g = &cv->g;
    const float *w = conv_weight(cv);
    float *dw = cv->base.params[0].grad;
    float *db = cv->has_bias ? cv->base.params[1].grad : NULL;
    const int F = cv->filters;

    for (int f = 0; f < F; f++)
        for (int c = 0; c < g->c; c++)
            for (int h = 0; h < g->kh; h++)
                for (int v = 0; v < g->kw; v++) {
                    float acc = 0.0f;
                    for (int in = 0; in < n; in++)
                        for (int i = 0; i < g->ho; i++) {
                            int xh = cnn_pad_index(i * g->sh + h - g->ph, g->h, g->mode);
                            if (xh < 0) continue;
                            for (int j = 0; j < g->wo; j++) {
                                int xw = cnn_pad_index(j * g->sw + v - g->pw, g->w, g->mode);
                                if (xw < 0) continue;
                                acc += dy[(((size_t)in * F + f) * g->ho + i) * g->wo + j] *
                                       x[(((size_t)in * g->c + c) * g->h + xh) * g->w + xw];
                            }
                        }
                    dw[(((size_t)f * g->c + c) * g->kh + h) * g->kw + v] = acc;
                }

    if (db)
        for (int f = 0; f < F; f++) {
            float acc = 0.0f;
            for (int in = 0; in < n; in++)
                for (int p = 0; p < g->ho * g->wo; p++)
                    acc += dy[((size_t)in * F + f) * g->ho * g->wo + p];
            db[f] = acc;
        }

    if (!dx) return;
    memset(dx, 0, sizeof(float) * (size_t)n * g->c * g->h * g->w);
    for (int in = 0; in < n; in++)
        for (int f = 0; f < F; f++)
            for (int i = 0; i < g->ho; i++)
                for (int j = 0; j < g->wo; j++) {
                    float d = dy[(((size_t)in * F + f) * g->ho + i) * g->wo + j];
                    for (int c = 0; c < g->c; c++)
                        for (int h = 0; h < g->kh; h++) {
                            int xh = cnn_pad_index(i * g->sh + h - g->ph, g->h, g->mode);
                            if (xh < 0) continue;
                            for (int v = 0; v < g->kw; v++) {
                                int xw = cnn_pad_index(j * g->sw + v - g->pw, g->w, g->mode);
                                if (xw < 0) continue;
                                dx[(((size_t)in * g->c + c) * g->h + xh) * g->w + xw] +=
                                    d * w[(((size_t)f * g->c + c) * g->kh + h) * g->kw + v];
                            }
                        }
                }
}

/* ------------------------------------------------------------ the plan */

/* Thresholds of conv_choose; the measurements behind them are in
 * bench/NOTES.md ("Conv algorithms"). */
#define SP_MAX_F 32           /* the shifted planes: at most this many filters */
#define SP_MAX_PLANES 65536.0 /* ... floats of one image's phase planes */
#define SP_MAX_OUT 262144.0   /* ... floats of F padded planes (dx's phase grids) */
#define SP_MAX_PHASES 16      /* ... their dx: sh*sw phases at most */
#define WG_MIN_C 8            /* Winograd's forward and dW: channels */
#define WG_MIN_F 4            /* ... filters */
#define WG_OVER_SP_MIN_C 16   /* Winograd's forward over the planes: channels */
#define CONV_DW_DOTS_MAX_K 32 /* dW by dot products up to this C*kh*kw */

/* The plan of a layer: which algorithm runs its forward, dW and dx at SIMD
 * level `simd`. Every condition of every choice is here. */
static conv_plan conv_choose(const conv2d *cv, int simd)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, C = g->c, T = C * g->kh * g->kw, hw = g->ho * g->wo;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw, nph = g->sh * g->sw;
    conv_plan p = {.simd = simd};

    /* Winograd F(4x4, 3x3) computes 3x3 kernels at stride 1 only. Its
     * forward wins or ties against im2col + GEMM from 8 channels at every
     * filter count tried from 4; at 4 channels its transforms, 16 channels
     * to a vector, cost more than they save. */
    const int wino = g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1;
    const int wino_fwd = wino && C >= WG_MIN_C && F >= WG_MIN_F;
    /* dx is that forward on dy, with C and F swapped and the kernels
     * rotated: a full correlation, so zero padding of at most 2 only
     * (reflect and replicate fold their border taps back, which col2im
     * does). */
    const int zero_pad = g->mode == CNN_PAD_ZERO || (g->ph == 0 && g->pw == 0);
    const int wino_dx = wino && F >= WG_MIN_C && C >= WG_MIN_F && zero_pad && g->ph <= 2 &&
                        g->pw <= 2;

    /* The shifted planes: AVX-512 micro-kernels, for small layers (the
     * first layers of the presets), where the GEMM's register tiles are
     * mostly empty: few filters (at 64 the GEMM wins), and planes small
     * enough for a few images to stay in L1/L2. */
    conv_planes sp;
    conv_planes_geometry(cv, &sp);
    const int planes = simd == CNN_SIMD_AVX512 && !cv->direct && F <= SP_MAX_F &&
                       (double)C * nph * sp.hq * sp.wq <= SP_MAX_PLANES &&
                       (double)F * hp * wp <= SP_MAX_OUT;

    /* The forward. The planes, unless Winograd takes the layer: from 16
     * channels its forward beats theirs (at 8 the planes win). They put
     * the filters in the vector lanes when the grid's thrown-away columns
     * cost more than empty lanes and broadcasts (lenet5.conv2). */
    if (planes && !(wino_fwd && C >= WG_OVER_SP_MIN_C))
        p.fwd = 1.3 * (sp.lf / CNN_PLANES_V) * hw < (double)F * (sp.qf / CNN_PLANES_V)
                    ? CONV_FWD_PLANES_FILTERS
                    : CONV_FWD_PLANES;
    else if (wino_fwd)
        p.fwd = CONV_FWD_WINOGRAD;
    else
        p.fwd = CONV_FWD_IM2COL_GEMM;
    /* Fewer images than threads: im2col + GEMM splits each image into
     * bands of output rows, Winograd into tile rows (inside the same
     * algorithm); the planes run such a batch on one thread. */
    p.fwd_few = p.fwd == CONV_FWD_IM2COL_GEMM ? CONV_FWD_IM2COL_BANDS : p.fwd;

    if (planes) {
        /* The backward of a layer the planes take is theirs, even where the
         * forward is Winograd's: it beats GEMM dW + Winograd dx at every
         * shape tried. dW by the cheaper in vector FMAs: filters in the
         * lanes (loads bound it a little) or dot products over the grid
         * (thrown-away columns, horizontal sums). */
        const double lanes_cost = 1.15 * (sp.lf / CNN_PLANES_V) * (double)T * hw;
        const double dots_cost = 1.35 * (double)F * T * (sp.qf / CNN_PLANES_V);
        p.dw = lanes_cost < dots_cost ? CONV_DW_PLANES_FILTERS : CONV_DW_PLANES_DOTS;
        /* dx by the planes needs dy's margins to fit in a row of wq and at
         * most SP_MAX_PHASES phases; a single phase row (one channel,
         * stride 1) feeds one FMA chain per load, which only pays below 16
         * filters. Otherwise W^T dy and col2im. */
        const int sdx = nph <= SP_MAX_PHASES && sp.kb - 1 + g->wo <= sp.wq &&
                        (C * nph >= 2 || F < 16);
        if (!sdx)
            p.dx = CONV_DX_IM2COL_GEMM;
        else if (g->sh == 1 && g->sw == 1)
            p.dx = CONV_DX_PLANES_FOLD;
        else if (g->sw == 2 && sp.wq <= 16 && g->mode == CNN_PAD_ZERO)
            p.dx = CONV_DX_PLANES_INTERLEAVE; /* a row of dx: two phases, two permutes */
        else
            p.dx = CONV_DX_PLANES_SCATTER;
        return p;
    }
    /* dW by Winograd where both its forward and dx run (the im2col path
     * computes a chunk's dW and dx from one im2col, which Winograd's dx
     * would leave half used); else dot products below CONV_DW_DOTS_MAX_K
     * taps, where the GEMM's register tiles would be mostly empty. */
    if (wino_fwd && wino_dx) p.dw = CONV_DW_WINOGRAD;
    else if (T <= CONV_DW_DOTS_MAX_K) p.dw = CONV_DW_IM2COL_DOTS;
    else p.dw = CONV_DW_IM2COL_GEMM;
    p.dx = wino_dx ? CONV_DX_WINOGRAD : CONV_DX_IM2COL_GEMM;
    return p;
}

/* The forward a call of n images on nt threads runs: the plan's, or its
 * split of each image when there are fewer images than threads. */
static conv_fwd_algo conv_fwd_algo_for(const conv_plan *p, int n, int nt)
{
    return nt > 1 && n < nt ? p->fwd_few : p->fwd;
}

static const char *const fwd_names[] = {
    [CONV_FWD_IM2COL_GEMM] = "im2col-gemm", [CONV_FWD_IM2COL_BANDS] = "im2col-bands",
    [CONV_FWD_PLANES] = "planes", [CONV_FWD_PLANES_FILTERS] = "planes-filters",
    [CONV_FWD_WINOGRAD] = "winograd"};
static const char *const dw_names[] = {
    [CONV_DW_IM2COL_GEMM] = "im2col-gemm", [CONV_DW_IM2COL_DOTS] = "im2col-dots",
    [CONV_DW_PLANES_DOTS] = "planes-dots", [CONV_DW_PLANES_FILTERS] = "planes-filters",
    [CONV_DW_WINOGRAD] = "winograd"};
static const char *const dx_names[] = {
    [CONV_DX_IM2COL_GEMM] = "im2col-gemm", [CONV_DX_PLANES_FOLD] = "planes-fold",
    [CONV_DX_PLANES_INTERLEAVE] = "planes-interleave", [CONV_DX_PLANES_SCATTER] = "planes-scatter",
    [CONV_DX_WINOGRAD] = "winograd"};

/* The plan as text for a batch of n on `threads` threads: the reserved
 * layer's, or the one reserve() would make now. */
static void conv_plan_text(const cnn_layer *l, int n, int threads, char *buf, size_t len)
{
    const conv2d *cv = (const conv2d *)l;
    const conv_plan p = cv->max_batch > 0 ? cv->plan : conv_choose(cv, cnn_simd_level());
    const int nt = conv_threads(cv, n, threads);
    snprintf(buf, len, "fwd %s, dw %s, dx %s", fwd_names[conv_fwd_algo_for(&p, n, nt)],
             dw_names[p.dw], dx_names[p.dx]);
}

/* ----------------------------------------------------------------- fast */

/* x: (N, C, H, W)  w: (F, C, kh, kw)  y: (N, F, Ho, Wo) */
static void conv_forward_fast(conv2d *cv, const float *x, float *y, int n, int nt)
{
    nt = conv_threads(cv, n, nt);
    switch (conv_fwd_algo_for(&cv->plan, n, nt)) {
    case CONV_FWD_IM2COL_GEMM: conv_gemm_forward(cv, x, y, n, nt); break;
    case CONV_FWD_IM2COL_BANDS: conv_gemm_forward_bands(cv, x, y, n, nt); break;
    case CONV_FWD_PLANES:
    case CONV_FWD_PLANES_FILTERS: conv_planes_forward(cv, x, y, n, nt); break;
    case CONV_FWD_WINOGRAD: conv_wg_run(cv, &cv->wg, x, y, conv_bias(cv), n, nt); break;
    }
}

/* Chunk k (images [k*cs, min((k+1)*cs, n))): its dW into its partial by
 * plan.dw, and its dx with it (if dx is not NULL: the algorithms that
 * compute dx image by image beside dW). t: the thread (its buffers). */
static void conv_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                                int k, int cs, int n, int t, int gemm_nt)
{
    const int i0 = k * cs, i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
    const size_t wsz = (size_t)cv->filters * cv->g.c * cv->g.kh * cv->g.kw;
    float *part = cv->dw_part + k * wsz;
    switch (cv->plan.dw) {
    case CONV_DW_IM2COL_GEMM:
    case CONV_DW_IM2COL_DOTS:
        conv_gemm_chunk_backward(cv, x, dy, dx, i0, i1, part, conv_col(cv, t), gemm_nt);
        break;
    case CONV_DW_PLANES_DOTS:
    case CONV_DW_PLANES_FILTERS: conv_planes_chunk_backward(cv, x, dy, dx, i0, i1, part, t); break;
    case CONV_DW_WINOGRAD: conv_wg_chunk_dw(cv, x, dy, i0, i1, part, t); break;
    }
}

/* One backward call, split over threads by gradient chunks or filters */
typedef struct {
    const conv2d *cv;
    const float *x, *dy;
    float *dx;
    int cs, n;
} conv_job;

/* chunks [k0, k1) on thread t, its GEMMs on that thread */
static void chunks_backward(void *ctx, long k0, long k1, int t)
{
    const conv_job *j = ctx;
    for (long k = k0; k < k1; k++)
        conv_chunk_backward(j->cv, j->x, j->dy, j->dx, (int)k, j->cs, j->n, t, 1);
}

/* db[f] = sum of dy: (N, F, Ho, Wo) over n, Ho, Wo for filter f, in one
 * fixed order whichever thread runs it (cnn_lanes_total). */
static float conv_bias_grad(const float *dy, int n, int F, int hw, int f)
{
    float l[CNN_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *d = dy + ((size_t)i * F + f) * hw;
        int p = 0;
        for (; p + CNN_LANES <= hw; p += CNN_LANES)
            for (int j = 0; j < CNN_LANES; j++) l[j] += d[p + j];
        for (int j = 0; p + j < hw; j++) l[j] += d[p + j];
    }
    return cnn_lanes_total(l);
}

static void bias_grads(void *ctx, long f0, long f1, int t)
{
    const conv_job *j = ctx;
    const int F = j->cv->filters, hw = j->cv->g.ho * j->cv->g.wo;
    float *db = j->cv->base.params[1].grad;
    for (long f = f0; f < f1; f++) db[f] = conv_bias_grad(j->dy, j->n, F, hw, (int)f);
}

/* dy: (N, F, Ho, Wo)  ->  dw: (F, C, kh, kw)  db: (F)  dx: (N, C, H, W) */
static void conv_backward_fast(conv2d *cv, const float *x, const float *dy, float *dx, int n,
                               int nt)
{
    const conv_plan *p = &cv->plan;
    const cnn_window *g = &cv->g;
    const int F = cv->filters, hw = g->ho * g->wo;
    const size_t wsz = (size_t)F * g->c * g->kh * g->kw;
    const int cs = chunk_size(n), nchunks = (n + cs - 1) / cs;
    nt = conv_threads(cv, n, nt);
    /* dx beside dW, chunk by chunk, except Winograd's: a pass of its own */
    float *dx_chunks = p->dx == CONV_DX_WINOGRAD ? NULL : dx;
    if (dx && (p->dx == CONV_DX_PLANES_FOLD || p->dx == CONV_DX_PLANES_INTERLEAVE ||
               p->dx == CONV_DX_PLANES_SCATTER))
        conv_planes_dx_weights(cv);

    /* The chunks are fixed by n alone, so dW sums in the same order for
     * any nt. Fewer chunks than threads: one chunk at a time on this
     * thread, the GEMMs in it on all of them (the planes' and Winograd's
     * dW stay on one: the same arithmetic at any thread count). */
    conv_job j = {cv, x, dy, dx_chunks, cs, n};
    const double work = conv_flops(&cv->base) * n * (dx_chunks ? 2 : 1);
    if (nchunks >= nt) {
        cnn_parallel_for(nt, nchunks, CNN_SPLIT_EACH, work, chunks_backward, &j);
    } else {
        /* the GEMMs count themselves; the planes and Winograd run here */
        if (p->dw != CONV_DW_IM2COL_GEMM && p->dw != CONV_DW_IM2COL_DOTS) cnn_work_add(work);
        for (int k = 0; k < nchunks; k++) conv_chunk_backward(cv, x, dy, dx_chunks, k, cs, n, 0, nt);
    }
    if (dx && p->dx == CONV_DX_WINOGRAD) conv_wg_run(cv, &cv->wgd, dy, dx, NULL, n, nt);

    float *dw = cv->base.params[0].grad;
    memcpy(dw, cv->dw_part, sizeof(float) * wsz);
    cnn_work_add((double)wsz * nchunks);
    for (int k = 1; k < nchunks; k++) {
        const float *part = cv->dw_part + k * wsz;
        for (size_t e = 0; e < wsz; e++) dw[e] += part[e];
    }

    if (cv->has_bias) {
        /* the same lane sums in each, so the same bits */
        float *db = cv->base.params[1].grad;
        if (nt > 1) {
            cnn_parallel_for(nt, F, CNN_SPLIT_EVEN, (double)n * F * hw, bias_grads, &j);
        } else if (p->simd == CNN_SIMD_AVX512) {
            cnn_work_add((double)n * F * hw);
            cnn_bias_grad_avx512(dy, n, F, hw, db);
        } else {
            cnn_work_add((double)n * F * hw);
            bias_grads(&j, 0, F, 0);
        }
    }
}

/* ------------------------------------------------------------ the layer */

static void conv_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    if (l->kernels == CNN_KERNELS_REF) conv_forward_ref((conv2d *)l, x, y, n);
    else conv_forward_fast((conv2d *)l, x, y, n, nt);
}

static void conv_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                          float *dx, int n, int nt)
{
    if (l->kernels == CNN_KERNELS_REF) conv_backward_ref((conv2d *)l, x, dy, dx, n);
    else conv_backward_fast((conv2d *)l, x, dy, dx, n, nt);
}

static void conv_free_buffers(conv2d *cv)
{
    cnn_free(cv->col);
    cnn_free(cv->dw_part);
    cv->col = cv->dw_part = NULL;
    cv->col_size = 0;
    conv_planes_free(cv);
    conv_wg_free(cv);
    cv->max_batch = cv->threads = 0;
}

/* The im2col buffers: the im2col algorithms' (but a 1x1 layer's im2col is
 * x itself), and the planes' dx through the GEMM */
static int conv_needs_col(const conv2d *cv)
{
    const conv_plan *p = &cv->plan;
    return !cv->direct && (p->fwd == CONV_FWD_IM2COL_GEMM || p->fwd_few == CONV_FWD_IM2COL_BANDS ||
                           p->dw == CONV_DW_IM2COL_GEMM || p->dw == CONV_DW_IM2COL_DOTS ||
                           p->dx == CONV_DX_IM2COL_GEMM);
}

static int conv_uses_planes(const conv_plan *p)
{
    return p->fwd == CONV_FWD_PLANES || p->fwd == CONV_FWD_PLANES_FILTERS ||
           p->dw == CONV_DW_PLANES_DOTS || p->dw == CONV_DW_PLANES_FILTERS;
}

/* The bytes of the partial weight gradients (every dW algorithm sums each
 * chunk into a partial of its own) and of the im2col buffers (0 when the
 * plan has no use for them) */
static void conv_sizes(const conv2d *cv, int max_batch, int threads, size_t bytes[2])
{
    const cnn_window *g = &cv->g;
    const int cs = chunk_size(max_batch), nchunks = (max_batch + cs - 1) / cs;
    const size_t wsz = (size_t)cv->filters * g->c * g->kh * g->kw;
    const size_t col_size = (size_t)g->c * g->kh * g->kw * g->ho * g->wo;
    bytes[0] = cnn_mul_size(cnn_mul_size(wsz, (size_t)nchunks), sizeof(float));
    bytes[1] = conv_needs_col(cv)
                   ? cnn_mul_size(cnn_mul_size(col_size, (size_t)threads), sizeof(float))
                   : 0;
}

/* What conv_reserve allocates, from the same plan and layouts, made on a
 * copy of the layer (the memory estimate: nothing is allocated) */
static size_t conv_workspace(const cnn_layer *l, int max_batch, int threads)
{
    if (threads < 1) threads = 1;
    if (max_batch < 1) max_batch = 1;
    conv2d cv = *(const conv2d *)l;
    cv.plan = conv_choose(&cv, cnn_simd_level());
    size_t bytes[CONV_PLANES_BUFS > CONV_WG_BUFS ? CONV_PLANES_BUFS : CONV_WG_BUFS], total = 0;
    conv_sizes(&cv, max_batch, threads, bytes);
    for (int k = 0; k < 2; k++) total += bytes[k] ? cnn_alloc_charge(bytes[k]) : 0;
    if (conv_uses_planes(&cv.plan)) {
        conv_planes_layout(&cv, threads, bytes);
        for (int k = 0; k < CONV_PLANES_BUFS; k++) total += bytes[k] ? cnn_alloc_charge(bytes[k]) : 0;
    }
    conv_wg_layout(&cv, threads, bytes);
    for (int k = 0; k < CONV_WG_BUFS; k++) total += bytes[k] ? cnn_alloc_charge(bytes[k]) : 0;
    return total;
}

/* The plan for the SIMD level in use, and exactly the buffers it needs */
static cnn_status conv_reserve(cnn_layer *l, int max_batch, int threads)
{
    conv2d *cv = (conv2d *)l;
    const cnn_window *g = &cv->g;
    conv_free_buffers(cv);
    if (threads < 1) threads = 1;
    if (max_batch < 1) max_batch = 1;
    cv->plan = conv_choose(cv, cnn_simd_level());
    size_t bytes[2];
    conv_sizes(cv, max_batch, threads, bytes);
    cv->dw_part = cnn_alloc(bytes[0], "conv partial weight gradients");
    int ok = cv->dw_part != NULL;
    if (ok && bytes[1]) {
        cv->col_size = (size_t)g->c * g->kh * g->kw * g->ho * g->wo;
        cv->col = cnn_alloc(bytes[1], "conv im2col buffers");
        ok = cv->col != NULL;
    }
    if (ok && conv_uses_planes(&cv->plan)) ok = conv_planes_reserve(cv, threads) == CNN_OK;
    if (ok) ok = conv_wg_reserve(cv, threads) == CNN_OK;
    if (!ok) {
        conv_free_buffers(cv);
        return CNN_ERR_NOMEM;
    }
    cv->max_batch = max_batch;
    cv->threads = threads;
    return CNN_OK;
}

static void conv_destroy(cnn_layer *l) { conv_free_buffers((conv2d *)l); }

/* everything from the plan on is reserve's */
static void conv_detach(cnn_layer *l)
{
    conv2d *cv = (conv2d *)l;
    memset(&cv->plan, 0, sizeof *cv - offsetof(conv2d, plan));
}

static const cnn_layer_ops conv_ops = {
    .kind = "conv",
    .torch = "Conv2d",
    .reserve = conv_reserve,
    .workspace = conv_workspace,
    .forward = conv_forward,
    .backward = conv_backward,
    .flops = conv_flops,
    .plan = conv_plan_text,
    .destroy = conv_destroy,
    .detach = conv_detach,
};


cnn_status cnn_conv2d_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    int F = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, bias = 1, same = 0;
    const char *pad = NULL, *pm = NULL;
    cnn_padmode mode = CNN_PAD_ZERO;
    cnn_status st;
    *out = NULL;

    if ((st = cnn_spec_int(s, 1, "a filter count", 1, 1 << 16, 1, &F)) ||
        (st = cnn_spec_pair(s, 2, "a kernel size (K or KHxKW)", 1, 1024, 1, &kh, &kw)) ||
        (st = cnn_spec_opt_pair(s, "stride", 1, 1024, &sh, &sw)) ||
        (st = cnn_spec_opt_str(s, "pad", &pad)) ||
        (st = cnn_spec_opt_str(s, "padmode", &pm)) ||
        (st = cnn_spec_opt_int(s, "bias", 0, 1, &bias)))
        return st;
    if (pad && strcmp(pad, "same") == 0) same = 1;
    else if ((st = cnn_spec_opt_pair(s, "pad", 0, 1024, &ph, &pw))) return st;
    if (pm) {
        if (strcmp(pm, "zero") == 0) mode = CNN_PAD_ZERO;
        else if (strcmp(pm, "reflect") == 0) mode = CNN_PAD_REFLECT;
        else if (strcmp(pm, "replicate") == 0) mode = CNN_PAD_REPLICATE;
        else return cnn_spec_error(s, "padmode= must be zero, reflect or replicate, got '%s'", pm);
    }
    if (same) {
        if (sh != 1 || sw != 1 || kh % 2 == 0 || kw % 2 == 0)
            return cnn_spec_error(s, "pad=same needs stride 1 and an odd kernel, got kernel %dx%d "
                                     "stride %dx%d", kh, kw, sh, sw);
        ph = (kh - 1) / 2;
        pw = (kw - 1) / 2;
    }
    if (mode == CNN_PAD_REFLECT && (ph >= in.h || pw >= in.w))
        return cnn_spec_error(s, "padmode=reflect needs pad smaller than the input, got pad %dx%d "
                                 "for input %dx%dx%d", ph, pw, in.c, in.h, in.w);
    /* eq. 3.1 / 3.2, with floor for a window larger than the padded input */
    int ho = cnn_floor_div(in.h + 2 * ph - kh, sh) + 1;
    int wo = cnn_floor_div(in.w + 2 * pw - kw, sw) + 1;
    if (ho < 1 || wo < 1)
        return cnn_spec_error(s, "output would be %dx%d for input %dx%dx%d", ho < 0 ? 0 : ho,
                              wo < 0 ? 0 : wo, in.c, in.h, in.w);
    /* the GEMM takes int sizes */
    double ckk = (double)in.c * kh * kw;
    if (ckk * ho * wo > INT_MAX || ckk * F > INT_MAX || (double)F * ho * wo > INT_MAX)
        return cnn_spec_error(s, "layer too large (%d filters of %dx%dx%d over %dx%d outputs)", F,
                              in.c, kh, kw, ho, wo);

    cnn_shape o = {F, ho, wo};
    cnn_layer *l = cnn_layer_new(sizeof(conv2d), &conv_ops, in, o, s);
    if (!l) return CNN_ERR_NOMEM;
    conv2d *cv = (conv2d *)l;
    cv->filters = F;
    cv->has_bias = bias;
    cv->g = (cnn_window){.c = in.c, .h = in.h, .w = in.w, .kh = kh, .kw = kw, .sh = sh, .sw = sw,
                         .ph = ph, .pw = pw, .mode = mode, .ho = ho, .wo = wo};
    cv->direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    l->window = &cv->g;

    int wdims[4] = {F, in.c, kh, kw};
    cnn_layer_add_param(l, "weight", 4, wdims, CNN_PINIT_WEIGHT, in.c * kh * kw, F * kh * kw, 1);
    if (bias) cnn_layer_add_param(l, "bias", 1, &F, CNN_PINIT_ZERO, 0, 0, 1);

    char stride[24], padw[24];
    cnn_fmt_pair(stride, sizeof stride, sh, sw);
    cnn_fmt_pair(padw, sizeof padw, ph, pw);
    snprintf(l->desc, sizeof l->desc, "conv %d %dx%d stride=%s pad=%s padmode=%s%s", F, kh, kw,
             stride, padw, cnn_padmode_name(mode), bias ? "" : " bias=0");
    *out = l;
    return CNN_OK;
}

