/* conv2d.c — 2-D convolution (cross-correlation, as in PyTorch's Conv2d).
 *
 *   conv F KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same] [padmode=zero|reflect|replicate]
 *        [bias=1|0]
 *
 * Two kernels compute the same thing:
 *  - reference: the seed report's loops (eq. 3.3 forward, eq. 3.4 / 3.5
 *    backward), with padding read through cnn_pad_index;
 *  - fast: per image, y = W (F x C*kh*kw) * im2col(x) (C*kh*kw x Ho*Wo), so
 *    all the arithmetic happens inside the cache-blocked GEMM.
 *
 * Threads. With a batch at least as large as the thread count each thread
 * takes whole images (its own im2col buffer, serial GEMM); a smaller batch
 * runs image by image with the GEMM itself parallel over output tiles.
 * Images (and gradient chunks) are handed out dynamically: on a machine
 * whose cores are shared, a thread that gets less CPU simply takes fewer
 * images instead of holding everyone at the barrier.
 *
 * Determinism. dW and db are sums over the batch; summing per thread would
 * make the rounding depend on the thread count. Instead the batch is split
 * into chunks whose size depends only on the batch size, each chunk sums its
 * images in order into its own partial dW, and the partials are added in
 * chunk order. Whatever thread runs a chunk, the same additions happen in
 * the same order, so weights are bit-identical for any thread count.
 */
#include "internal.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    cnn_layer base;
    int filters;
    int has_bias;
    cnn_window g;
    int direct;     /* 1x1, stride 1, no pad: im2col(x) is x itself */
    /* from reserve() */
    int max_batch, threads;
    size_t col_size; /* floats per thread's im2col buffer */
    float *col;      /* threads x col_size */
    float *dw_part;  /* max chunks x (F * C*kh*kw) partial weight gradients */
} conv2d;

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

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static float *weight_of(const conv2d *cv) { return cv->base.params[0].data; }
static float *bias_of(const conv2d *cv) { return cv->has_bias ? cv->base.params[1].data : NULL; }

static double conv_flops(const cnn_layer *l)
{
    const conv2d *cv = (const conv2d *)l;
    const cnn_window *g = &cv->g;
    double hw = (double)g->ho * g->wo;
    return 2.0 * cv->filters * g->c * g->kh * g->kw * hw + (cv->has_bias ? cv->filters * hw : 0.0);
}

/* Threads worth using for a batch of n: one below the work threshold, and
 * never more than reserve() made buffers for. */
static int conv_threads(const conv2d *cv, int n)
{
    int nt = cnn_threads();
    if (nt > cv->threads) nt = cv->threads;
    if (nt < 1 || conv_flops(&cv->base) * n < CNN_PARALLEL_MIN_FLOPS) nt = 1;
    return nt;
}

/* ------------------------------------------------------------ reference */

/* x: (N, C, H, W)  w: (F, C, kh, kw)  b: (F)  y: (N, F, Ho, Wo)
 * eq. 3.3, with X read through the padding (the seed pads with zeros; other
 * modes read the mirrored or repeated pixel), plus the bias. */
static void conv_forward_ref(conv2d *cv, const float *x, float *y, int n)
{
    const cnn_window *g = &cv->g;
    const float *w = weight_of(cv), *b = bias_of(cv);
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
    const float *w = weight_of(cv);
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

/* ----------------------------------------------------------------- fast */

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);

/* Fixed-order sums in LANES independent lanes: the j loops below become one
 * vector FMA each (a single running sum would be a chain of dependent adds
 * the compiler may not reorder), and the order never depends on threads. */
#define LANES 16

static inline float lanes_total(float *l)
{
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++) l[j] += l[j + w];
    return l[0];
}

/* Weight gradient of one image by dot products, for layers whose C*kh*kw
 * is too small for the GEMM's register tiles (a 1-channel 3x3 layer has
 * K = 9: the GEMM would compute a 14x32 tile to use 16x9 of it).
 * dy: (F, hw)  col: (ckk, hw)  part: (F, ckk), overwritten or added to. */
static void conv_dw_dots(int F, int ckk, int hw, const float *restrict dy,
                         const float *restrict col, float *restrict part, int add)
{
    for (int f = 0; f < F; f += 4) {
        const int nf = F - f < 4 ? F - f : 4;
        for (int r = 0; r < ckk; r++) {
            const float *b = col + (size_t)r * hw;
            /* up to 4 filters share each load of the col row */
            float l[4][LANES] = {{0}};
            const float *a[4];
            for (int q = 0; q < 4; q++) a[q] = dy + (size_t)(f + (q < nf ? q : 0)) * hw;
            int p = 0;
            for (; p + LANES <= hw; p += LANES)
                for (int j = 0; j < LANES; j++) {
                    float bv = b[p + j];
                    l[0][j] += a[0][p + j] * bv;
                    l[1][j] += a[1][p + j] * bv;
                    l[2][j] += a[2][p + j] * bv;
                    l[3][j] += a[3][p + j] * bv;
                }
            for (int j = 0; p + j < hw; j++)
                for (int q = 0; q < 4; q++) l[q][j] += a[q][p + j] * b[p + j];
            for (int q = 0; q < nf; q++) {
                float s = lanes_total(l[q]);
                float *d = part + (size_t)(f + q) * ckk + r;
                *d = add ? *d + s : s;
            }
        }
    }
}

/* Below this C*kh*kw the dot-product kernel beats the GEMM for dW
 * (measured: K = 9 and 25 about 3x faster, K = 144 about 2x slower). */
#define CONV_DW_DOTS_MAX_K 32

/* One image. x: (C, H, W)  col: (C*kh*kw, Ho*Wo)  y: (F, Ho*Wo) */
static void conv_image_forward(const conv2d *cv, const float *x, float *y, float *col,
                               gemm_fn gemm)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const float *b = bias_of(cv);
    const float *a = x;
    if (!cv->direct) {
        cnn_im2col(g, x, col);
        a = col;
    }
    float beta = 0.0f;
    if (b) { /* start C at the bias so the GEMM adds it for free */
        for (int f = 0; f < F; f++)
            for (int p = 0; p < hw; p++) y[(size_t)f * hw + p] = b[f];
        beta = 1.0f;
    }
    gemm(0, 0, F, hw, ckk, 1.0f, weight_of(cv), ckk, a, hw, beta, y, hw);
}

/* x: (N, C, H, W)  w: (F, C, kh, kw)  y: (N, F, Ho, Wo) */
static void conv_forward_fast(conv2d *cv, const float *x, float *y, int n)
{
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    const int nt = conv_threads(cv, n);
    if (nt > 1 && n >= nt) {
        /* one image per thread at a time, each with its own im2col buffer */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int i = 0; i < n; i++)
            conv_image_forward(cv, x + i * isz, y + i * osz,
                               cv->col + (size_t)omp_get_thread_num() * cv->col_size,
                               cnn_sgemm_serial);
    } else {
        /* One thread, or fewer images than threads: the threads go to the GEMM.
         * Never a region with if(0) or one thread: libgomp would malloc a
         * one-thread team on every call (bench/FINDINGS.md F1). */
        const gemm_fn gemm = nt > 1 ? cnn_sgemm : cnn_sgemm_serial;
        for (int i = 0; i < n; i++)
            conv_image_forward(cv, x + i * isz, y + i * osz, cv->col, gemm);
    }
}

/* Images [i0, i1) of the batch: their dW summed in order into part, their
 * dx written. col is the thread's (C*kh*kw, Ho*Wo) scratch, reused for dcol
 * once dW no longer needs it. */
static void conv_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                                int i0, int i1, float *part, float *col, gemm_fn gemm)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    const float *w = weight_of(cv);
    for (int i = i0; i < i1; i++) {
        const float *xi = x + i * isz, *dyi = dy + i * osz;
        const float *a = xi;
        if (!cv->direct) {
            cnn_im2col(g, xi, col);
            a = col;
        }
        /* dW (F x ckk) += dY_i (F x hw) * col_i^T */
        if (ckk <= CONV_DW_DOTS_MAX_K) conv_dw_dots(F, ckk, hw, dyi, a, part, i != i0);
        else gemm(0, 1, F, ckk, hw, 1.0f, dyi, hw, a, hw, i == i0 ? 0.0f : 1.0f, part, ckk);
        if (!dx) continue;
        float *dxi = dx + i * isz;
        if (cv->direct) {
            gemm(1, 0, ckk, hw, F, 1.0f, w, ckk, dyi, hw, 0.0f, dxi, hw);
        } else {
            /* dcol (ckk x hw) = W^T dY_i, folded back onto the image */
            gemm(1, 0, ckk, hw, F, 1.0f, w, ckk, dyi, hw, 0.0f, col, hw);
            memset(dxi, 0, sizeof(float) * isz);
            cnn_col2im(g, col, dxi);
        }
    }
}

/* db[f] = sum of dy: (N, F, Ho, Wo) over n, Ho, Wo for filter f, in one
 * fixed order whichever thread runs it. */
static float conv_bias_grad(const float *dy, int n, int F, int hw, int f)
{
    float l[LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *d = dy + ((size_t)i * F + f) * hw;
        int p = 0;
        for (; p + LANES <= hw; p += LANES)
            for (int j = 0; j < LANES; j++) l[j] += d[p + j];
        for (int j = 0; p + j < hw; j++) l[j] += d[p + j];
    }
    return lanes_total(l);
}

/* dy: (N, F, Ho, Wo)  ->  dw: (F, C, kh, kw)  db: (F)  dx: (N, C, H, W) */
static void conv_backward_fast(conv2d *cv, const float *x, const float *dy, float *dx, int n)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, hw = g->ho * g->wo;
    const size_t wsz = (size_t)F * g->c * g->kh * g->kw;
    const int cs = chunk_size(n), nchunks = (n + cs - 1) / cs;
    const int nt = conv_threads(cv, n);

    /* the chunks are fixed by n alone, so dW sums in the same order for any nt */
    if (nt > 1 && nchunks >= nt) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int k = 0; k < nchunks; k++) {
            int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
            conv_chunk_backward(cv, x, dy, dx, k * cs, i1, cv->dw_part + k * wsz,
                                cv->col + (size_t)omp_get_thread_num() * cv->col_size,
                                cnn_sgemm_serial);
        }
    } else {
        /* as in conv_forward_fast: no one-thread region (F1) */
        const gemm_fn gemm = nt > 1 ? cnn_sgemm : cnn_sgemm_serial;
        for (int k = 0; k < nchunks; k++) {
            int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
            conv_chunk_backward(cv, x, dy, dx, k * cs, i1, cv->dw_part + k * wsz, cv->col,
                                gemm);
        }
    }

    float *dw = cv->base.params[0].grad;
    memcpy(dw, cv->dw_part, sizeof(float) * wsz);
    for (int k = 1; k < nchunks; k++) {
        const float *p = cv->dw_part + k * wsz;
        for (size_t e = 0; e < wsz; e++) dw[e] += p[e];
    }

    if (cv->has_bias) {
        float *db = cv->base.params[1].grad;
        if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int f = 0; f < F; f++) db[f] = conv_bias_grad(dy, n, F, hw, f);
        } else {
            for (int f = 0; f < F; f++) db[f] = conv_bias_grad(dy, n, F, hw, f);
        }
    }
}

/* ------------------------------------------------------------ the layer */

static void conv_forward(cnn_layer *l, const float *x, float *y, int n, int train)
{
    if (l->kernels == CNN_KERNELS_REF) conv_forward_ref((conv2d *)l, x, y, n);
    else conv_forward_fast((conv2d *)l, x, y, n);
}

static void conv_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                          float *dx, int n)
{
    if (l->kernels == CNN_KERNELS_REF) conv_backward_ref((conv2d *)l, x, dy, dx, n);
    else conv_backward_fast((conv2d *)l, x, dy, dx, n);
}

static void conv_free_buffers(conv2d *cv)
{
    cnn_free(cv->col);
    cnn_free(cv->dw_part);
    cv->col = cv->dw_part = NULL;
    cv->max_batch = cv->threads = 0;
}

static cnn_status conv_reserve(cnn_layer *l, int max_batch, int threads)
{
    conv2d *cv = (conv2d *)l;
    const cnn_window *g = &cv->g;
    conv_free_buffers(cv);
    if (threads < 1) threads = 1;
    if (max_batch < 1) max_batch = 1;
    int cs = chunk_size(max_batch), nchunks = (max_batch + cs - 1) / cs;
    size_t wsz = (size_t)cv->filters * g->c * g->kh * g->kw;
    /* direct layers still get one float each so the pointers are never NULL */
    cv->col_size = cv->direct ? 1 : (size_t)g->c * g->kh * g->kw * g->ho * g->wo;
    cv->col = cnn_alloc(cnn_mul_size(cnn_mul_size(cv->col_size, (size_t)threads), sizeof(float)),
                        "conv im2col buffers");
    cv->dw_part = cnn_alloc(cnn_mul_size(cnn_mul_size(wsz, (size_t)nchunks), sizeof(float)),
                            "conv partial weight gradients");
    if (!cv->col || !cv->dw_part) {
        conv_free_buffers(cv);
        return CNN_ERR_NOMEM;
    }
    cv->max_batch = max_batch;
    cv->threads = threads;
    return CNN_OK;
}

static void conv_destroy(cnn_layer *l) { conv_free_buffers((conv2d *)l); }

static const cnn_layer_ops conv_ops = {
    .kind = "conv",
    .torch = "Conv2d",
    .reserve = conv_reserve,
    .forward = conv_forward,
    .backward = conv_backward,
    .flops = conv_flops,
    .destroy = conv_destroy,
};

/* "3" for 3x3, "3x5" otherwise */
static void fmt_pair(char *buf, size_t n, int a, int b)
{
    if (a == b) snprintf(buf, n, "%d", a);
    else snprintf(buf, n, "%dx%d", a, b);
}

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
    int ho = floor_div(in.h + 2 * ph - kh, sh) + 1;
    int wo = floor_div(in.w + 2 * pw - kw, sw) + 1;
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

    int wdims[4] = {F, in.c, kh, kw};
    cnn_layer_add_param(l, "weight", 4, wdims, CNN_PINIT_WEIGHT, in.c * kh * kw, F * kh * kw, 1);
    if (bias) cnn_layer_add_param(l, "bias", 1, &F, CNN_PINIT_ZERO, 0, 0, 1);

    char stride[24], padw[24];
    fmt_pair(stride, sizeof stride, sh, sw);
    fmt_pair(padw, sizeof padw, ph, pw);
    snprintf(l->desc, sizeof l->desc, "conv %d %dx%d stride=%s pad=%s padmode=%s%s", F, kh, kw,
             stride, padw, cnn_padmode_name(mode), bias ? "" : " bias=0");
    *out = l;
    return CNN_OK;
}
