/* conv2d.c — 2-D convolution (cross-correlation, as in PyTorch's Conv2d).
 *
 *   conv F KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same] [padmode=zero|reflect|replicate]
 *        [bias=1|0]
 *
 * Two kernels compute the same thing:
 *  - reference: the seed report's loops (eq. 3.3 forward, eq. 3.4 / 3.5
 *    backward), with padding read through cnn_pad_index;
 *  - fast: per image, y = W (F x C*kh*kw) * im2col(x) (C*kh*kw x Ho*Wo), so
 *    all the arithmetic happens inside the cache-blocked GEMM; or, for
 *    layers of at most 32 filters on an AVX-512 CPU, the shifted-plane
 *    kernels below (no im2col, no GEMM: see "fast, small layers"); or, for
 *    other 3x3 stride-1 layers of at least 8 channels, Winograd F(4x4, 3x3)
 *    (conv2d_winograd.c: 4x fewer multiplies; the forward, and dx and dW
 *    for zero padding; see "fast, Winograd").
 *
 * Threads. With a batch at least as large as the thread count each thread
 * takes whole images (its own im2col buffer, serial GEMM); a smaller batch
 * runs image by image with the GEMM itself parallel over output tiles (the
 * shifted-plane path runs such a batch on one thread: its layers are too
 * small to split one image). Images (and gradient chunks) are handed out dynamically: on a machine
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
#include "../kernels/gemm_internal.h"
#include "conv2d_winograd.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define CONV_HAVE_AVX512 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,fma")))
#endif

/* S for v = 0, 1, ... while v < N (N a constant after inlining), written
 * out: clang keeps a register tile in registers only when every index is
 * a literal (it leaves "#pragma GCC unroll" loops over one on the stack). */
#define SP_REP(v, N, k, ...) { const int v = k; if (v < (N)) { __VA_ARGS__ } }
#define SP_U2(v, N, ...) SP_REP(v, N, 0, __VA_ARGS__) SP_REP(v, N, 1, __VA_ARGS__)
#define SP_U4(v, N, ...) SP_U2(v, N, __VA_ARGS__) SP_REP(v, N, 2, __VA_ARGS__) SP_REP(v, N, 3, __VA_ARGS__)
#define SP_U5(v, N, ...) SP_U4(v, N, __VA_ARGS__) SP_REP(v, N, 4, __VA_ARGS__)
#define SP_U8(v, N, ...)                                                                  \
    SP_U5(v, N, __VA_ARGS__) SP_REP(v, N, 5, __VA_ARGS__) SP_REP(v, N, 6, __VA_ARGS__)     \
    SP_REP(v, N, 7, __VA_ARGS__)
#define SP_U10(v, N, ...) SP_U8(v, N, __VA_ARGS__) SP_REP(v, N, 8, __VA_ARGS__) SP_REP(v, N, 9, __VA_ARGS__)
#define SP_U12(v, N, ...) SP_U10(v, N, __VA_ARGS__) SP_REP(v, N, 10, __VA_ARGS__) SP_REP(v, N, 11, __VA_ARGS__)

#define SP_MAX_PHASES 16 /* sh*sw above this: dx through the GEMM */
/* Smallest channel and filter counts for the Winograd path. Measured per
 * image at batch 16, 1 thread, against im2col + GEMM: C >= 8 wins or ties
 * at every F tried (AVX2: 64->8 on 14x14 37 against 80 us, 8->8 8.4
 * against 10.3 us); C = 4 loses 7-15% (its transforms pad 4 channels to a
 * vector of 16); F = 4 ties at C = 8. Layers of at most 32 filters take
 * the shifted planes first on AVX-512 anyway. */
#define WG_MIN_C 8
#define WG_MIN_F 4
/* From this many channels the Winograd forward beats the shifted planes
 * too (their backward stays: it beats GEMM dW + Winograd dx at every
 * shape tried). Per image at batch 16, 1 thread, 3x3 pad 1: C=32 F=32
 * 28x28 43 against 98 us, 16->32 14x14 8.5 against 12.6, 16->16 6.4
 * against 7.3; at C = 8 the planes win (8->16 28x28: 12.8 against 16.2). */
#define WG_OVER_SP_MIN_C 16
#define WG_VALID_STRIDE 16 /* ints: one cache line per thread's flag */

/* One Winograd path: its plan and per-thread buffers */
typedef struct {
    int ok;          /* the layer takes it */
    int dx;          /* the input gradient's (flipped filters) */
    cnn_wino p;
    size_t wsz;      /* floats of a weight copy, rounded to a cache line */
    size_t size;     /* floats of one thread's part: weights, their transform, scratch */
    float *buf;      /* threads x size */
    int *valid;      /* per thread (WG_VALID_STRIDE apart): its part holds a transform */
} conv_wg;

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
    /* The shifted-plane path (see "fast, small layers" below) */
    int sp_ok;       /* the layer is small enough for it */
    int hq, wq;      /* one phase plane of the padded input: hq x wq */
    int qf;          /* forward / dW grid: ho*wq rounded up to a vector */
    int sdx;         /* dx by the shifted-plane kernel (else GEMM + col2im) */
    int ka, kb;      /* its taps per phase: ceil(kh/sh) x ceil(kw/sw) */
    int qx;          /* its grid, one phase: hq*wq rounded up to a vector */
    int mt, ml;      /* dy grid margins: ka-1, kb-1 with sdx, else 0 */
    size_t xin_size; /* floats of one image's phase planes, with slack */
    size_t pz;       /* floats of one filter's dy grid, with margins and slack */
    int dz0;         /* where a grid starts in its pz: dy's first row on a vector boundary */
    int dwt;         /* dW by sp_dwt (filters in the lanes) rather than sp_dw */
    int lf;          /* sp_dwt, sp_fwt: filters padded to whole vectors */
    int fwt;         /* forward by sp_fwt (filters in the lanes) rather than sp_shift */
    float *wft;      /* sp_fwt's weights: (C*kh*kw + 1) x lf, W transposed, then the bias */
    int grp;         /* images per dW group (<= SP_GROUP; fixed by the geometry) */
    size_t sp_size;  /* floats of one thread's shifted-plane scratch: */
    size_t o_dyz, o_dyt, o_wtt, o_out, o_yt; /* where its parts start */
    int *off_x;      /* C*kh*kw tap offsets into the phase planes */
    int *off_d;      /* F*ka*kb tap offsets into the dy grids (dx) */
    float *wt;       /* (C*sh*sw) x (F*ka*kb): W by phase, for dx */
    int st_kmax;     /* the forward's sp_store table */
    int *st_cnt, *st_off;
    unsigned short *st_mask;
    float *sp;       /* threads x sp_size */
    /* The Winograd paths (3x3, stride 1: conv2d_winograd.c), taken when
     * the shifted planes are not (the forward also from WG_OVER_SP_MIN_C
     * channels) */
    conv_wg wg, wgd, wgw; /* forward, dx, dW */
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

/* One image on nt threads (a batch smaller than the thread count: single-
 * image inference). Each thread takes a band of output rows: it builds the
 * im2col columns of its band, in its own contiguous buffer, and multiplies
 * them. Measured on pytorchnet.conv2 at n = 1 (bench/NOTES.md):
 *  - a serial im2col and a split GEMM was slower than one thread (200 vs
 *    140 us): the im2col rewrote lines the other core had just read, a
 *    cross-core invalidation per line (30 -> 175 us);
 *  - bands of one shared col matrix (disjoint cache lines) still ran each
 *    half 3-4x slower than alone, the prefetchers pulling the neighbour's
 *    lines across; a buffer per thread runs at single-thread speed.
 * The GEMM never splits K, so each output is the same bits as on one
 * thread. */
static void conv_image_forward_split(const conv2d *cv, const float *x, float *y, int nt)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const float *b = bias_of(cv), *w = weight_of(cv);
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int oy0 = g->ho * t / T, oy1 = g->ho * (t + 1) / T;
        const int p0 = oy0 * g->wo, np = (oy1 - oy0) * g->wo;
        const float *a = x + p0;
        int lda = hw;
        if (np > 0) {
            if (!cv->direct) {
                float *col = cv->col + (size_t)t * cv->col_size;
                cnn_im2col_rows(g, x, oy0, oy1, col, (size_t)np);
                a = col;
                lda = np;
            }
            if (b)
                for (int f = 0; f < F; f++)
                    for (int p = p0; p < p0 + np; p++) y[(size_t)f * hw + p] = b[f];
            cnn_sgemm_serial(0, 0, F, np, ckk, 1.0f, w, ckk, a, lda, b ? 1.0f : 0.0f, y + p0, hw);
        }
    }
}

/* ---------------------------------------------------- fast, small layers
 *
 * The shifted-plane path, for layers with few filters (the first layers of
 * the presets: F = 6..16, K = C*kh*kw = 9..150). There the per-image GEMM
 * wastes most of its register tile on M = F rows and im2col writes and
 * reads a matrix kh*kw times the image. Instead:
 *
 *  - the image is copied once, padded, into sh*sw "phase planes" per
 *    channel (plane (pr, pc) holds the padded pixels (r*sh + pr, c*sw + pc)),
 *    each hq x wq, so that for a stride of 1 there is one plane per channel;
 *  - output (oy, ox) is computed at grid position q = oy*wq + ox, and tap
 *    (c, i, j) reads plane (c, i%sh, j%sw) at q + (i/sh)*wq + j/sw: for
 *    every tap the whole output is ONE contiguous run of the input, read at
 *    a fixed offset. Grid columns ox >= wo are computed and thrown away
 *    (wq - wo = (kw-1)/sw of them per row).
 *
 * So y[f][q] = b[f] + sum_t W[f][t] * in[off[t] + q] (sp_shift): a tile of
 * MB filters x PB vectors of q keeps its accumulators in registers and each
 * tap costs PB loads and MB broadcasts for MB*PB FMAs, with no im2col. The
 * tiles store straight into y through a table of masked row pieces.
 *
 * The same kernel computes dx: phase (pr, pc) of the padded dx is the full
 * correlation of dy, laid out on zero-margined grids of width wq, with the
 * taps (pr + sh*a, pc + sw*b) flipped: dxpad[c][pr][pc][q] = sum over (f,
 * a, b) of W[f][c][pr + sh*a][pc + sw*b] * dygrid[f][q + (ka-1-a)*wq +
 * (kb-1-b)], one sp_shift row per (channel, phase). The phases are then
 * interleaved, or folded, back onto the pixels they came from.
 *
 * dW[f][t] = sum over q of dy[f][q] * in[off[t] + q] runs one of two ways:
 *  - sp_dw: dot products with dy zero at the thrown-away grid positions,
 *    summed over a group of up to SP_GROUP images in the vector lanes
 *    before one horizontal add per (f, t);
 *  - sp_dwt: filters in the lanes (dy transposed to (q, F)), broadcasting
 *    the input: no horizontal adds and only kept positions, but empty
 *    lanes when F is not a multiple of 16. Chosen by a cost estimate.
 * Groups are fixed within a chunk, so the bits still depend on n alone.
 * The forward has the same two shapes (sp_shift, or sp_fwt with filters in
 * the lanes when the thrown-away grid columns cost more: lenet5.conv2).
 *
 * AVX-512 only (target attribute, chosen at run time); elsewhere the
 * im2col + GEMM path runs.
 */
#define SP_V 16       /* floats per vector */
#define SP_GROUP 4    /* images summed in registers for dW, at most */
#define SP_GROUP_FLOATS (96 * 1024) /* and their scratch kept to about this */
#define SP_MAX_F 32   /* measured: at F = 64 (deep.conv64) the GEMM path wins */

static int round_v(int q) { return (q + SP_V - 1) / SP_V * SP_V; }

#ifdef CONV_HAVE_AVX512
/* d[k] = src[k*sw + off] for k in [lo, hi), from a row of w <= 32 floats:
 * one two-register permute per 16 outputs instead of a strided scalar loop */
static AVX512 void sp_pick_row(float *d, const float *src, int w, int sw, int off, int lo, int hi)
{
    const __mmask16 m0 = (__mmask16)(w >= 16 ? 0xFFFF : (1u << w) - 1);
    const __mmask16 m1 = (__mmask16)(w <= 16 ? 0 : w >= 32 ? 0xFFFF : (1u << (w - 16)) - 1);
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, src), v1 = _mm512_maskz_loadu_ps(m1, src + 16);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int k0 = lo; k0 < hi; k0 += SP_V) {
        const int nk = hi - k0 < SP_V ? hi - k0 : SP_V;
        __m512i idx = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(k0)),
                                                          _mm512_set1_epi32(sw)),
                                       _mm512_set1_epi32(off));
        _mm512_mask_storeu_ps(d + k0, (__mmask16)((1u << nk) - 1), _mm512_permutex2var_ps(v0, idx, v1));
    }
}
#endif

/* x: (C, H, W) -> phase planes (C, sh, sw, hq, wq), every position written */
static void sp_pack_x(const conv2d *cv, const float *x, float *xin)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw, hq = cv->hq, wq = cv->wq;
    float *d = xin;
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * g->w;
        for (int pr = 0; pr < g->sh; pr++)
            for (int pc = 0; pc < g->sw; pc++) {
                /* plane columns [lo, hi) read inside the image row; the
                 * rest are padding (or past wp: never read for a kept output) */
                const int off = pc - g->pw; /* ix = k*sw + off */
                int lo = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
                int hi = g->w - 1 - off < 0 ? 0 : (g->w - 1 - off) / g->sw + 1;
                if (hi > wq) hi = wq;
                if (lo > hi) lo = hi;
                for (int r = 0; r < hq; r++, d += wq) {
                    const int row = r * g->sh + pr;
                    const int ry = row < hp ? cnn_pad_index(row - g->ph, g->h, g->mode) : -1;
                    if (ry < 0) {
                        memset(d, 0, sizeof(float) * (size_t)wq);
                        continue;
                    }
                    const float *src = xc + (size_t)ry * g->w;
                    for (int k = 0; k < lo; k++) {
                        int rx = cnn_pad_index(k * g->sw + off, g->w, g->mode);
                        d[k] = rx < 0 ? 0.0f : src[rx];
                    }
#ifdef CONV_HAVE_AVX512
                    if (g->w <= 32) sp_pick_row(d, src, g->w, g->sw, off, lo, hi);
                    else
#endif
                    if (g->sw == 1) memcpy(d + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
                    else
                        for (int k = lo; k < hi; k++) d[k] = src[k * g->sw + off];
                    for (int k = hi; k < wq; k++) {
                        const int col = k * g->sw + pc;
                        int rx = col < wp ? cnn_pad_index(col - g->pw, g->w, g->mode) : -1;
                        d[k] = rx < 0 ? 0.0f : src[rx];
                    }
                }
            }
    }
}

#ifdef CONV_HAVE_AVX512
/* rows x width floats from s (row stride sld) to d (row stride dld): a
 * memcpy call per 10-float row costs more than the copy */
static AVX512 void sp_copy_rows(float *d, long dld, const float *s, long sld, int rows, int width)
{
    const __mmask16 tail = (__mmask16)((1u << (width % SP_V)) - 1);
    for (int r = 0; r < rows; r++, d += dld, s += sld) {
        int k = 0;
        for (; k + SP_V <= width; k += SP_V) _mm512_storeu_ps(d + k, _mm512_loadu_ps(s + k));
        if (tail) _mm512_mask_storeu_ps(d + k, tail, _mm512_maskz_loadu_ps(tail, s + k));
    }
}
#else
static void sp_copy_rows(float *d, long dld, const float *s, long sld, int rows, int width)
{
    for (int r = 0; r < rows; r++, d += dld, s += sld) memcpy(d, s, sizeof(float) * (size_t)width);
}
#endif

/* dy: (F, Ho, Wo) -> the data positions of the grids (F, pz); everything
 * else in them is zero since reserve() and never written */
static void sp_pack_dy(const conv2d *cv, const float *dy, float *dyz)
{
    const cnn_window *g = &cv->g;
    for (int f = 0; f < cv->filters; f++)
        sp_copy_rows(dyz + f * cv->pz + cv->dz0 + (size_t)cv->mt * cv->wq + cv->ml, cv->wq,
                     dy + (size_t)f * g->ho * g->wo, g->wo, g->ho, g->wo);
}

#ifdef CONV_HAVE_AVX512
/* sp_scatter_dx for a zero pad, sw = 2 and rows of at most 32 padded
 * pixels: every pixel of dx is one pixel of one phase, so each row of dx
 * is its two column phases interleaved by two permutes (the scalar
 * scatter took longer than the FMAs that made the phases). */
static AVX512 void sp_interleave_dx(const conv2d *cv, const float *ph, float *dx)
{
    const cnn_window *g = &cv->g;
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __mmask16 mrow = (__mmask16)((1u << cv->wq) - 1);
    /* lane l of the first vector is padded column l, of the second 16 + l */
    unsigned m0 = 0, m1 = 0;
    for (int l = 0; l < 16; l++) {
        if (l >= g->pw && l < g->pw + g->w) m0 |= 1u << l;
        if (16 + l >= g->pw && 16 + l < g->pw + g->w) m1 |= 1u << l;
    }
    for (int c = 0; c < g->c; c++)
        for (int y = 0; y < g->h; y++) {
            const int row = y + g->ph, pr = row % g->sh, r = row / g->sh;
            const float *p0 = ph + (size_t)((c * g->sh + pr) * 2) * cv->qx + (size_t)r * cv->wq;
            const __m512 v0 = _mm512_maskz_loadu_ps(mrow, p0);
            const __m512 v1 = _mm512_maskz_loadu_ps(mrow, p0 + cv->qx);
            /* the row's base sits pw floats before dx's row; only lanes inside are stored */
            const uintptr_t base = (uintptr_t)(dx + ((size_t)c * g->h + y) * g->w) - (uintptr_t)g->pw * 4;
            _mm512_mask_storeu_ps((float *)base, (__mmask16)m0, _mm512_permutex2var_ps(v0, lo, v1));
            _mm512_mask_storeu_ps((float *)(base + 64), (__mmask16)m1, _mm512_permutex2var_ps(v0, hi, v1));
        }
}
#endif

/* ph: (C, sh, sw, hq*wq grid), padded pixel (r*sh + pr, k*sw + pc) of
 * channel c in plane (c, pr, pc) at [r*wq + k] -> added into dx: (C, H, W)
 * where that pixel came from (nowhere for a zero pad). */
static void sp_scatter_dx(const conv2d *cv, const float *ph, float *dx)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw;
    for (int c = 0; c < g->c; c++) {
        float *d = dx + (size_t)c * g->h * g->w;
        for (int pr = 0; pr < g->sh; pr++)
            for (int pc = 0; pc < g->sw; pc++) {
                const float *s = ph + (size_t)((c * g->sh + pr) * g->sw + pc) * cv->qx;
                for (int r = 0; r * g->sh + pr < hp; r++) {
                    const int ry = cnn_pad_index(r * g->sh + pr - g->ph, g->h, g->mode);
                    if (ry < 0) continue;
                    float *drow = d + (size_t)ry * g->w;
                    const float *srow = s + (size_t)r * cv->wq;
                    for (int k = 0; k * g->sw + pc < wp; k++) {
                        const int ix = k * g->sw + pc - g->pw;
                        const int rx = (unsigned)ix < (unsigned)g->w ? ix
                                                                     : cnn_pad_index(ix, g->w, g->mode);
                        if (rx >= 0) drow[rx] += srow[k];
                    }
                }
            }
    }
}

/* dxpad: (C, hp*wp grid) -> dx: (C, H, W), overwritten. A padded position
 * adds into the pixel it copied (reflect, replicate) or is dropped (zero). */
static void sp_fold_dx(const conv2d *cv, const float *dxpad, float *dx)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = cv->wq;
    for (int c = 0; c < g->c; c++) {
        const float *s = dxpad + (size_t)c * cv->qx;
        float *d = dx + (size_t)c * g->h * g->w;
        sp_copy_rows(d, g->w, s + (size_t)g->ph * wp + g->pw, wp, g->h, g->w);
        if (g->mode == CNN_PAD_ZERO || (g->ph == 0 && g->pw == 0)) continue;
        for (int r = 0; r < hp; r++) {
            const int ry = cnn_pad_index(r - g->ph, g->h, g->mode);
            const int inner = r >= g->ph && r < g->ph + g->h;
            for (int col = 0; col < wp; col++) {
                if (inner && col >= g->pw && col < g->pw + g->w) continue;
                const int rx = cnn_pad_index(col - g->pw, g->w, g->mode);
                d[(size_t)ry * g->w + rx] += s[(size_t)r * wp + col];
            }
        }
    }
}

#ifdef CONV_HAVE_AVX512

/* Where the grid vectors of an output land in a compact (rows x cols)
 * image: vector v has cnt[v] pieces (one per image row it touches); piece
 * k stores lanes mask[v*k_max + k] at element off[v*k_max + k] + lane.
 * Lets the forward store straight into y instead of a grid-shaped scratch
 * copied out afterwards (pytorchnet.conv1's is 94 KB per image). */
typedef struct {
    int k_max;
    const int *cnt, *off;
    const unsigned short *mask;
} sp_store;

/* out[i][q] = bias[i] + sum_t a[i*lda + t] * in[off[t] + q] for i < MB and
 * PB vectors of q. MB, PB are constants after inlining: the MB x PB
 * accumulators live in registers (<= 24 of the 32). */
AVX512_INLINE void sp_tile(const int MB, const int PB, int T, const float *a, int lda,
                           const int *off, const float *in, float *out, int ldo,
                           const float *bias, const sp_store *st, int v0)
{
    __m512 acc[8][4];
    SP_U8(i, MB, {
        const __m512 b0 = _mm512_set1_ps(bias ? bias[i] : 0.0f);
        SP_U4(p, PB, acc[i][p] = b0;)
    })
    for (int t = 0; t < T; t++) {
        const float *s = in + off[t];
        __m512 v[4];
        SP_U4(p, PB, v[p] = _mm512_loadu_ps(s + p * SP_V);)
        SP_U8(i, MB, {
            const __m512 ai = _mm512_set1_ps(a[(size_t)i * lda + t]);
            SP_U4(p, PB, acc[i][p] = _mm512_fmadd_ps(ai, v[p], acc[i][p]);)
        })
    }
    if (st) {
        SP_U4(p, PB, {
            const int v = v0 + p, nk = st->cnt[v];
            for (int k = 0; k < nk; k++) {
                const __mmask16 m = st->mask[v * st->k_max + k];
                /* the piece's base may sit before out; only lanes inside are stored */
                const intptr_t o = st->off[v * st->k_max + k];
                SP_U8(i, MB, _mm512_mask_storeu_ps((float *)((uintptr_t)(out + (size_t)i * ldo) + o * 4),
                                                   m, acc[i][p]);)
            }
        })
        return;
    }
    SP_U8(i, MB, SP_U4(p, PB, _mm512_storeu_ps(out + (size_t)i * ldo + p * SP_V, acc[i][p]);))
}

typedef void (*sp_tile_fn)(int, const float *, int, const int *, const float *, float *, int,
                           const float *, const sp_store *, int);
#define SP_TILE(MB, PB)                                                                       \
    static AVX512 void sp_tile_##MB##_##PB(int T, const float *a, int lda, const int *off,   \
                                           const float *in, float *out, int ldo,             \
                                           const float *bias, const sp_store *st, int v0)    \
    {                                                                                         \
        sp_tile(MB, PB, T, a, lda, off, in, out, ldo, bias, st, v0);                          \
    }
#define SP_ROW(MB) SP_TILE(MB, 1) SP_TILE(MB, 2) SP_TILE(MB, 3) SP_TILE(MB, 4)
SP_ROW(1) SP_ROW(2) SP_ROW(3) SP_ROW(4) SP_ROW(5) SP_ROW(6) SP_ROW(7) SP_ROW(8)
#define SP_FNS(MB) {sp_tile_##MB##_1, sp_tile_##MB##_2, sp_tile_##MB##_3, sp_tile_##MB##_4}
static const sp_tile_fn sp_tiles[8][4] = {SP_FNS(1), SP_FNS(2), SP_FNS(3), SP_FNS(4),
                                          SP_FNS(5), SP_FNS(6), SP_FNS(7), SP_FNS(8)};

/* out (M x q, ld ldo) = bias + A (M x T) * shifted runs of in; q a multiple
 * of SP_V. Rows go in even tiles of at most 8, columns in tiles of up to
 * 24 / rows vectors (at most 4). */
static void sp_shift(int M, int T, int q, const float *a, int lda, const int *off,
                     const float *in, float *out, int ldo, const float *bias, const sp_store *st)
{
    const int mtiles = (M + 7) / 8, nv = q / SP_V;
    for (int mt = 0, m0 = 0; mt < mtiles; mt++) {
        const int mb = (M - m0) / (mtiles - mt);
        /* vectors in even tiles too: 13 as 4+3+3+3, not 4+4+4+1, whose lone
         * vector would leave mb FMA chains waiting on each other */
        const int pbmax = mb >= 7 ? 3 : 4, ptiles = (nv + pbmax - 1) / pbmax;
        for (int v = 0, pt = 0; v < nv; pt++) {
            const int pb = (nv - v) / (ptiles - pt);
            sp_tiles[mb - 1][pb - 1](T, a + (size_t)m0 * lda, lda, off, in + v * SP_V,
                                     out + (size_t)m0 * ldo + (st ? 0 : v * SP_V), ldo,
                                     bias ? bias + m0 : NULL, st, v);
            v += pb;
        }
        m0 += mb;
    }
}

/* part[f*ldp + t] (+)= sum over images g < G and q of
 * dy[g*dgs + f*pz + q] * x[g*xgs + off[t] + q], for FB filters and TB taps */
AVX512_INLINE void sp_dw_tile(const int FB, const int TB, int G, int q, const float *dy,
                              long dgs, long pz, const float *x, long xgs, const int *off,
                              float *part, int ldp, int add)
{
    __m512 acc[4][5];
    SP_U4(f, FB, SP_U5(t, TB, acc[f][t] = _mm512_setzero_ps();))
    for (int g = 0; g < G; g++) {
        const float *d = dy + g * dgs, *xg = x + g * xgs;
        for (int p = 0; p < q; p += SP_V) {
            __m512 xv[5];
            SP_U5(t, TB, {
                xv[t] = _mm512_loadu_ps(xg + off[t] + p);
                /* one load per tap, not one per FMA: most of these loads
                 * straddle two cache lines and cost double */
                __asm__("" : "+v"(xv[t]));
            })
            SP_U4(f, FB, {
                const __m512 dv = _mm512_loadu_ps(d + f * pz + p);
                SP_U5(t, TB, acc[f][t] = _mm512_fmadd_ps(dv, xv[t], acc[f][t]);)
            })
        }
    }
    SP_U4(f, FB, SP_U5(t, TB, {
        const float sum = _mm512_reduce_add_ps(acc[f][t]);
        float *o = part + (size_t)f * ldp + t;
        *o = add ? *o + sum : sum;
    }))
}

typedef void (*sp_dw_fn)(int, int, const float *, long, long, const float *, long, const int *,
                         float *, int, int);
#define SP_DW(FB, TB)                                                                         \
    static AVX512 void sp_dw_##FB##_##TB(int G, int q, const float *dy, long dgs, long pz,    \
                                         const float *x, long xgs, const int *off,            \
                                         float *part, int ldp, int add)                       \
    {                                                                                         \
        sp_dw_tile(FB, TB, G, q, dy, dgs, pz, x, xgs, off, part, ldp, add);                    \
    }
#define SP_DW_ROW(FB) SP_DW(FB, 1) SP_DW(FB, 2) SP_DW(FB, 3) SP_DW(FB, 4) SP_DW(FB, 5)
SP_DW_ROW(1) SP_DW_ROW(2) SP_DW_ROW(3) SP_DW_ROW(4)
#define SP_DW_FNS(FB) {sp_dw_##FB##_1, sp_dw_##FB##_2, sp_dw_##FB##_3, sp_dw_##FB##_4, sp_dw_##FB##_5}
static const sp_dw_fn sp_dws[4][5] = {SP_DW_FNS(1), SP_DW_FNS(2), SP_DW_FNS(3), SP_DW_FNS(4)};

/* part (F x T) (+)= dW of G images: filters in even tiles of at most 4,
 * taps in tiles of 5 */
static void sp_dw(int F, int T, int G, int q, const float *dy, long dgs, long pz, const float *x,
                  long xgs, const int *off, float *part, int add)
{
    const int ftiles = (F + 3) / 4;
    for (int ft = 0, f0 = 0; ft < ftiles; ft++) {
        const int fb = (F - f0) / (ftiles - ft);
        for (int t = 0; t < T; t += 5) {
            const int tb = T - t < 5 ? T - t : 5;
            sp_dws[fb - 1][tb - 1](G, q, dy + f0 * pz, dgs, pz, x, xgs, off + t,
                                   part + (size_t)f0 * T + t, T, add);
        }
        f0 += fb;
    }
}

/* wtt[t][v*16 + l] (+)= sum over images g < G and kept outputs (oy, ox) of
 * x[g*xgs + off[t] + oy*wq + ox] * dyt[g*dgs + (oy*wo + ox)*FV*16 + v*16 + l]:
 * dW transposed, filters in the lanes, for TB taps. No horizontal sums and
 * no thrown-away grid columns; the TB tap pointers stay in registers. */
AVX512_INLINE void sp_dwt_tile(const int TB, const int FV, int G, const float *x, long xgs,
                               const int *off, int ho, int wo, int wq, const float *dyt, long dgs,
                               float *wtt, int add)
{
    __m512 acc[10][2];
    SP_U10(t, TB, SP_U2(v, FV, acc[t][v] = _mm512_setzero_ps();))
    for (int g = 0; g < G; g++) {
        const float *p[10];
        SP_U10(t, TB, p[t] = x + g * xgs + off[t];)
        const float *d = dyt + g * dgs;
        for (int oy = 0; oy < ho; oy++) {
            for (int ox = 0; ox < wo; ox++, d += FV * SP_V) {
                const __m512 d0 = _mm512_loadu_ps(d);
                const __m512 d1 = FV > 1 ? _mm512_loadu_ps(d + SP_V) : d0;
                SP_U10(t, TB, {
                    const __m512 xv = _mm512_set1_ps(p[t][ox]);
                    acc[t][0] = _mm512_fmadd_ps(xv, d0, acc[t][0]);
                    if (FV > 1) acc[t][1] = _mm512_fmadd_ps(xv, d1, acc[t][1]);
                })
            }
            SP_U10(t, TB, p[t] += wq;)
        }
    }
    SP_U10(t, TB, SP_U2(v, FV, {
        float *o = wtt + ((size_t)t * FV + v) * SP_V;
        _mm512_storeu_ps(o, add ? _mm512_add_ps(_mm512_loadu_ps(o), acc[t][v]) : acc[t][v]);
    }))
}

typedef void (*sp_dwt_fn)(int, const float *, long, const int *, int, int, int, const float *,
                          long, float *, int);
#define SP_DWT(TB, FV)                                                                        \
    static AVX512 void sp_dwt_##TB##_##FV(int G, const float *x, long xgs, const int *off,    \
                                          int ho, int wo, int wq, const float *dyt, long dgs, \
                                          float *wtt, int add)                                \
    {                                                                                         \
        sp_dwt_tile(TB, FV, G, x, xgs, off, ho, wo, wq, dyt, dgs, wtt, add);                   \
    }
#define SP_DWT_ROW(TB) SP_DWT(TB, 1) SP_DWT(TB, 2)
SP_DWT_ROW(1) SP_DWT_ROW(2) SP_DWT_ROW(3) SP_DWT_ROW(4) SP_DWT_ROW(5) SP_DWT_ROW(6)
SP_DWT_ROW(7) SP_DWT_ROW(8) SP_DWT(9, 1) SP_DWT(10, 1)
#define SP_DWT_FNS(TB) {sp_dwt_##TB##_1, sp_dwt_##TB##_2}
static const sp_dwt_fn sp_dwts[10][2] = {SP_DWT_FNS(1), SP_DWT_FNS(2), SP_DWT_FNS(3),
                                         SP_DWT_FNS(4), SP_DWT_FNS(5), SP_DWT_FNS(6),
                                         SP_DWT_FNS(7), SP_DWT_FNS(8), {sp_dwt_9_1, NULL},
                                         {sp_dwt_10_1, NULL}};

/* wtt (T x FV*16) (+)= dW^T of G images, taps in even tiles of at most
 * 10 (one vector of filters) or 8 (two): as many accumulators as the FMA
 * pipes need in flight, and one register per tap pointer */
static void sp_dwt(int T, int FV, int G, const float *x, long xgs, const int *off, int ho, int wo,
                   int wq, const float *dyt, long dgs, float *wtt, int add)
{
    const int tmax = FV == 1 ? 10 : 8, ntiles = (T + tmax - 1) / tmax;
    for (int k = 0, t0 = 0; k < ntiles; k++) {
        const int tb = (T - t0) / (ntiles - k);
        sp_dwts[tb - 1][FV - 1](G, x, xgs, off + t0, ho, wo, wq, dyt, dgs,
                                wtt + (size_t)t0 * FV * SP_V, add);
        t0 += tb;
    }
}

/* r[i] = row i of a 16 x 16 block -> r[j] = column j */
AVX512_INLINE void sp_transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* per 128-bit lane: a0 b0 a1 b1 / a2 b2 a3 b3 */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* r[4i+k], lane L: rows 4i..4i+3 of column 4L+k */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512 a = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        __m512 b = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        __m512 c = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        __m512 d = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
        t[k] = _mm512_shuffle_f32x4(a, b, 0x88);
        t[8 + k] = _mm512_shuffle_f32x4(a, b, 0xDD);
        t[4 + k] = _mm512_shuffle_f32x4(c, d, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(c, d, 0xDD);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) r[j] = t[j];
}

/* dy: (F, hw) -> dyt: (hw, lf), lanes F..lf written as zeros. 16 x 16
 * register transposes: a gather per position costs several times more. */
static AVX512 void sp_transpose_dy(int F, int hw, int lf, const float *dy, float *dyt)
{
    for (int f0 = 0; f0 < F; f0 += SP_V) {
        const int nf = F - f0 < SP_V ? F - f0 : SP_V;
        for (int p0 = 0; p0 < hw; p0 += SP_V) {
            const int np = hw - p0 < SP_V ? hw - p0 : SP_V;
            const __mmask16 m = (__mmask16)((1u << np) - 1);
            __m512 r[16];
#pragma GCC unroll 16
            for (int f = 0; f < 16; f++)
                r[f] = f < nf ? _mm512_maskz_loadu_ps(m, dy + (size_t)(f0 + f) * hw + p0)
                              : _mm512_setzero_ps();
            sp_transpose16(r);
            for (int k = 0; k < np; k++) _mm512_storeu_ps(dyt + (size_t)(p0 + k) * lf + f0, r[k]);
        }
    }
}

/* db: conv_bias_grad's fixed-order lane sums in vectors (the same bits),
 * eight filters at a time so the eight chains of adds overlap */
static AVX512 void sp_bias_grad(const float *dy, int n, int F, int hw, float *db)
{
    const __mmask16 tail = (__mmask16)((1u << (hw % SP_V)) - 1);
    for (int f0 = 0; f0 < F; f0 += 8) {
        const int nf = F - f0 < 8 ? F - f0 : 8;
        __m512 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
        for (int i = 0; i < n; i++) {
            const float *d = dy + ((size_t)i * F + f0) * hw;
            int p = 0;
            for (; p + SP_V <= hw; p += SP_V)
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++)
                    if (k < nf) acc[k] = _mm512_add_ps(acc[k], _mm512_loadu_ps(d + (size_t)k * hw + p));
            if (tail)
                for (int k = 0; k < nf; k++)
                    acc[k] = _mm512_mask_add_ps(acc[k], tail, acc[k],
                                                _mm512_maskz_loadu_ps(tail, d + (size_t)k * hw + p));
        }
        for (int k = 0; k < nf; k++) {
            float l[LANES];
            _mm512_storeu_ps(l, acc[k]);
            db[f0 + k] = lanes_total(l);
        }
    }
}

/* yt[k*FV*16 + l] = bias[l] + sum_t x[off[t] + k] * wft[t*FV*16 + l] for
 * the QB outputs of a row segment: the forward with filters in the lanes.
 * Only kept outputs are computed (no grid columns thrown away); each tap
 * costs FV loads and QB broadcasts for QB*FV FMAs. */
AVX512_INLINE void sp_fwt_tile(const int QB, const int FV, int T, const float *x, const int *off,
                               const float *wft, float *yt)
{
    __m512 acc[12][2];
    const float *bias = wft + (size_t)T * FV * SP_V;
    SP_U12(k, QB, SP_U2(v, FV, acc[k][v] = _mm512_loadu_ps(bias + v * SP_V);))
    for (int t = 0; t < T; t++) {
        const float *px = x + off[t];
        const __m512 w0 = _mm512_loadu_ps(wft + (size_t)t * FV * SP_V);
        const __m512 w1 = FV > 1 ? _mm512_loadu_ps(wft + (size_t)t * FV * SP_V + SP_V) : w0;
        SP_U12(k, QB, {
            const __m512 xv = _mm512_set1_ps(px[k]);
            acc[k][0] = _mm512_fmadd_ps(xv, w0, acc[k][0]);
            if (FV > 1) acc[k][1] = _mm512_fmadd_ps(xv, w1, acc[k][1]);
        })
    }
    SP_U12(k, QB, SP_U2(v, FV, _mm512_storeu_ps(yt + ((size_t)k * FV + v) * SP_V, acc[k][v]);))
}

typedef void (*sp_fwt_fn)(int, const float *, const int *, const float *, float *);
#define SP_FWT(QB, FV)                                                                        \
    static AVX512 void sp_fwt_##QB##_##FV(int T, const float *x, const int *off,              \
                                          const float *wft, float *yt)                        \
    {                                                                                         \
        sp_fwt_tile(QB, FV, T, x, off, wft, yt);                                              \
    }
#define SP_FWT_ROW(QB) SP_FWT(QB, 1) SP_FWT(QB, 2)
SP_FWT_ROW(1) SP_FWT_ROW(2) SP_FWT_ROW(3) SP_FWT_ROW(4) SP_FWT_ROW(5) SP_FWT_ROW(6)
SP_FWT(7, 1) SP_FWT(8, 1) SP_FWT(9, 1) SP_FWT(10, 1) SP_FWT(11, 1) SP_FWT(12, 1)
#define SP_FWT_FNS(QB) {sp_fwt_##QB##_1, sp_fwt_##QB##_2}
static const sp_fwt_fn sp_fwts[12][2] = {
    SP_FWT_FNS(1), SP_FWT_FNS(2), SP_FWT_FNS(3), SP_FWT_FNS(4), SP_FWT_FNS(5), SP_FWT_FNS(6),
    {sp_fwt_7_1, NULL}, {sp_fwt_8_1, NULL}, {sp_fwt_9_1, NULL}, {sp_fwt_10_1, NULL},
    {sp_fwt_11_1, NULL}, {sp_fwt_12_1, NULL}};

/* yt: (Ho*Wo, lf) from the phase planes: each output row in even
 * segments of at most 12 (one filter vector) or 6 (two) outputs */
static void sp_fwt(const conv2d *cv, const float *xin, float *yt)
{
    const cnn_window *g = &cv->g;
    const int FV = cv->lf / SP_V, qmax = FV == 1 ? 12 : 6, T = g->c * g->kh * g->kw;
    const int segs = (g->wo + qmax - 1) / qmax;
    for (int oy = 0; oy < g->ho; oy++)
        for (int sg = 0, ox0 = 0; sg < segs; sg++) {
            const int qb = (g->wo - ox0) / (segs - sg);
            sp_fwts[qb - 1][FV - 1](T, xin + (size_t)oy * cv->wq + ox0, cv->off_x, cv->wft,
                                    yt + ((size_t)oy * g->wo + ox0) * cv->lf);
            ox0 += qb;
        }
}

/* yt: (hw, lf) -> y: (F, hw), through 16 x 16 register transposes */
static AVX512 void sp_untranspose_y(int F, int hw, int lf, const float *yt, float *y)
{
    for (int f0 = 0; f0 < F; f0 += SP_V) {
        const int nf = F - f0 < SP_V ? F - f0 : SP_V;
        for (int p0 = 0; p0 < hw; p0 += SP_V) {
            const int np = hw - p0 < SP_V ? hw - p0 : SP_V;
            __m512 r[16];
            for (int k = 0; k < 16; k++)
                r[k] = k < np ? _mm512_loadu_ps(yt + (size_t)(p0 + k) * lf + f0) : _mm512_setzero_ps();
            sp_transpose16(r);
            const __mmask16 m = (__mmask16)((1u << np) - 1);
            for (int k = 0; k < nf; k++) _mm512_mask_storeu_ps(y + (size_t)(f0 + k) * hw + p0, m, r[k]);
        }
    }
}

#endif /* CONV_HAVE_AVX512 */

static int sp_active(const conv2d *cv)
{
#ifdef CONV_HAVE_AVX512
    return cv->sp_ok && cnn_gemm_simd_level() == CNN_SIMD_AVX512;
#else
    (void)cv;
    return 0;
#endif
}

/* One image by the shifted-plane path. x: (C, H, W)  y: (F, Ho*Wo)
 * sp: the thread's scratch (phase planes, then the grid output) */
static void sp_image_forward(const conv2d *cv, const float *x, float *y, float *sp)
{
#ifdef CONV_HAVE_AVX512
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw;
    const sp_store st = {cv->st_kmax, cv->st_cnt, cv->st_off, cv->st_mask};
    sp_pack_x(cv, x, sp);
    if (cv->fwt) {
        sp_fwt(cv, sp, sp + cv->o_yt);
        sp_untranspose_y(F, g->ho * g->wo, cv->lf, sp + cv->o_yt, y);
        return;
    }
    sp_shift(F, ckk, cv->qf, weight_of(cv), ckk, cv->off_x, sp, y, g->ho * g->wo, bias_of(cv), &st);
#else
    (void)cv, (void)x, (void)y, (void)sp;
#endif
}

/* Images [i0, i1) by the shifted-plane path: dW summed into part in groups
 * of cv->grp (fixed by i0, so by n alone), dx written. col: the thread's
 * im2col buffer, for dx with a stride above 1 (through the GEMM). */
static void sp_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                              int i0, int i1, float *part, float *sp, float *col)
{
#ifdef CONV_HAVE_AVX512
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    const size_t dgs = (size_t)F * cv->pz;
    float *xin = sp, *dyz = sp + cv->o_dyz, *dyt = sp + cv->o_dyt, *out = sp + cv->o_out;
    for (int i = i0; i < i1; i += cv->grp) {
        const int ng = i1 - i < cv->grp ? i1 - i : cv->grp;
        for (int k = 0; k < ng; k++) {
            sp_pack_x(cv, x + (i + k) * isz, xin + k * cv->xin_size);
            if (cv->dwt) sp_transpose_dy(F, hw, cv->lf, dy + (i + k) * osz, dyt + (size_t)k * hw * cv->lf);
            if (!cv->dwt || (dx && cv->sdx)) sp_pack_dy(cv, dy + (i + k) * osz, dyz + k * dgs);
        }
        if (cv->dwt)
            sp_dwt(ckk, cv->lf / SP_V, ng, xin, (long)cv->xin_size, cv->off_x, g->ho, g->wo, cv->wq,
                   dyt, (long)hw * cv->lf, sp + cv->o_wtt, i != i0);
        else
            sp_dw(F, ckk, ng, cv->qf, dyz + cv->dz0 + (size_t)cv->mt * cv->wq + cv->ml, (long)dgs,
                  (long)cv->pz, xin, (long)cv->xin_size, cv->off_x, part, i != i0);
        if (!dx) continue;
        for (int k = 0; k < ng; k++) {
            float *dxi = dx + (i + k) * isz;
            if (cv->sdx) {
                const int td = F * cv->ka * cv->kb;
                sp_shift(g->c * g->sh * g->sw, td, cv->qx, cv->wt, td, cv->off_d,
                         dyz + k * dgs + cv->dz0, out, cv->qx, NULL, NULL);
                if (g->sh == 1 && g->sw == 1) {
                    sp_fold_dx(cv, out, dxi);
                } else if (g->sw == 2 && cv->wq <= 16 && g->mode == CNN_PAD_ZERO) {
                    sp_interleave_dx(cv, out, dxi);
                } else {
                    memset(dxi, 0, sizeof(float) * isz);
                    sp_scatter_dx(cv, out, dxi);
                }
            } else {
                cnn_sgemm_serial(1, 0, ckk, hw, F, 1.0f, weight_of(cv), ckk, dy + (i + k) * osz,
                                 hw, 0.0f, col, hw);
                memset(dxi, 0, sizeof(float) * isz);
                cnn_col2im(g, col, dxi);
            }
        }
    }
    if (cv->dwt) /* (ckk, lf) -> part (F, ckk) */
        for (int f = 0; f < F; f++)
            for (int t = 0; t < ckk; t++) part[(size_t)f * ckk + t] = sp[cv->o_wtt + (size_t)t * cv->lf + f];
#else
    (void)cv, (void)x, (void)dy, (void)dx, (void)i0, (void)i1, (void)part, (void)sp, (void)col;
#endif
}

/* dx's weights: row (c, pr, pc) of wt is phase (pr, pc) of channel c,
 * column (f*ka + a)*kb + b its tap (pr + sh*a, pc + sw*b), zero past the
 * kernel (the flip is in off_d). With a stride of 1: wt[c][(f*kh + i)*kw
 * + j] = w[f][c][i][j]. */
static void sp_transpose_weights(conv2d *cv)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ka = cv->ka, kb = cv->kb, td = F * ka * kb;
    const float *w = weight_of(cv);
    for (int c = 0; c < g->c; c++)
        for (int pr = 0; pr < g->sh; pr++)
            for (int pc = 0; pc < g->sw; pc++) {
                float *row = cv->wt + (size_t)((c * g->sh + pr) * g->sw + pc) * td;
                for (int f = 0; f < F; f++)
                    for (int a = 0; a < ka; a++)
                        for (int b = 0; b < kb; b++) {
                            const int i = pr + g->sh * a, j = pc + g->sw * b;
                            row[(f * ka + a) * kb + b] =
                                i < g->kh && j < g->kw
                                    ? w[(((size_t)f * g->c + c) * g->kh + i) * g->kw + j]
                                    : 0.0f;
                        }
            }
}

/* ------------------------------------------------- fast, Winograd
 *
 * 3x3 stride-1 layers that the shifted planes do not take: Winograd
 * F(4x4, 3x3) (conv2d_winograd.c), 4x fewer multiplies than im2col + GEMM
 * for 36 GEMMs of (tiles x F x C) plus the transforms. Each thread
 * transforms the filters into its own buffer (a few microseconds): a
 * shared copy written by one core costs the other a cross-core transfer
 * per line when it reads it (bench/NOTES.md). A batch splits by images;
 * fewer images than threads split each image by tile rows. Every output
 * is computed the same way in either case, so the bits do not depend on
 * the thread count. The backward's dx is the same forward run on dy
 * (wg_run with the dx plan); dW sums the transformed tiles of each
 * gradient chunk (wg_chunk_dw), in the chunks of "Determinism" above. */

/* Thread t's part of a path's buffer: a copy of the weights its filters
 * were transformed from, the transformed filters, then its scratch. */
static float *wg_part(const conv_wg *w, int t) { return w->buf + (size_t)t * w->size; }
static float *wg_u(const conv_wg *w, float *part) { return part + w->wsz; }
static float *wg_scratch(const conv_wg *w, float *part) { return part + w->wsz + w->p.u_size; }

/* Thread t's transformed filters, redone only when the weights differ from
 * the copy they were made from: inference reuses them (the transform costs
 * a few microseconds per call, the comparison well under one); in training
 * the weights differ in the first bytes compared. The transform is a pure
 * function of the weights' bits, so a reused copy is exactly what a new
 * one would be. */
static void wg_filters(const conv2d *cv, const conv_wg *wg, int t)
{
    float *part = wg_part(wg, t);
    const float *w = weight_of(cv);
    const size_t bytes = sizeof(float) * cv->filters * cv->g.c * 9;
    int *valid = wg->valid + (size_t)t * WG_VALID_STRIDE;
    if (*valid && memcmp(part, w, bytes) == 0) return;
    memcpy(part, w, bytes);
    if (wg->dx) cnn_wino_filters_dx(&wg->p, w, wg_u(wg, part), wg_scratch(wg, part));
    else cnn_wino_filters(&wg->p, w, wg_u(wg, part), wg_scratch(wg, part));
    *valid = 1;
}

/* n images of in (p.c, p.h, p.w) -> out (p.f, p.ho, p.wo) by the path wg,
 * plus b if not NULL: y from x, or dx from dy */
static void wg_run(const conv2d *cv, const conv_wg *wg, const float *in, float *out,
                   const float *b, int n, int nt)
{
    const cnn_wino *p = &wg->p;
    const size_t isz = (size_t)p->c * p->h * p->w, osz = (size_t)p->f * p->ho * p->wo;
    if (nt > 1 && n >= nt) {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num();
            float *part = wg_part(wg, t);
            wg_filters(cv, wg, t);
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < n; i++)
                cnn_wino_image(p, wg_u(wg, part), b, in + i * isz, out + i * osz, 0, p->th,
                               wg_scratch(wg, part));
        }
    } else if (nt > 1) {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), T = omp_get_num_threads();
            const int ty0 = p->th * t / T, ty1 = p->th * (t + 1) / T;
            float *part = wg_part(wg, t);
            if (ty1 > ty0) {
                wg_filters(cv, wg, t);
                for (int i = 0; i < n; i++)
                    cnn_wino_image(p, wg_u(wg, part), b, in + i * isz, out + i * osz, ty0, ty1,
                                   wg_scratch(wg, part));
            }
        }
    } else {
        float *part = wg_part(wg, 0);
        wg_filters(cv, wg, 0);
        for (int i = 0; i < n; i++)
            cnn_wino_image(p, wg_u(wg, part), b, in + i * isz, out + i * osz, 0, p->th,
                           wg_scratch(wg, part));
    }
}

/* Images [i0, i1) of the batch: their dW summed in order (in the
 * transformed domain) into part, by Winograd (conv2d_winograd.c) */
static void wg_chunk_dw(const conv2d *cv, const float *x, const float *dy, int i0, int i1,
                        float *part, int t)
{
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    float *scratch = wg_part(&cv->wgw, t);
    for (int i = i0; i < i1; i++)
        cnn_wino_dw_image(&cv->wgw.p, x + i * isz, dy + i * osz, i == i0, scratch);
    cnn_wino_dw_finish(&cv->wgw.p, scratch, part);
}

/* x: (N, C, H, W)  w: (F, C, kh, kw)  y: (N, F, Ho, Wo) */
static void conv_forward_fast(conv2d *cv, const float *x, float *y, int n)
{
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    const int nt = conv_threads(cv, n);
    if (sp_active(cv) && !(cv->wg.ok && cv->g.c >= WG_OVER_SP_MIN_C)) {
        if (cv->fwt) { /* wft[t][f] = w[f][t], then the bias; lanes f >= F stay zero */
            const int F = cv->filters, T = cv->g.c * cv->g.kh * cv->g.kw;
            const float *w = weight_of(cv), *b = bias_of(cv);
            for (int f = 0; f < F; f++) {
                for (int t = 0; t < T; t++) cv->wft[(size_t)t * cv->lf + f] = w[(size_t)f * T + t];
                cv->wft[(size_t)T * cv->lf + f] = b ? b[f] : 0.0f;
            }
        }
        /* too little work per image to split one across threads */
        if (nt > 1 && n >= nt) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int i = 0; i < n; i++)
                sp_image_forward(cv, x + i * isz, y + i * osz,
                                 cv->sp + (size_t)omp_get_thread_num() * cv->sp_size);
        } else {
            for (int i = 0; i < n; i++) sp_image_forward(cv, x + i * isz, y + i * osz, cv->sp);
        }
        return;
    }
    if (cv->wg.ok) {
        wg_run(cv, &cv->wg, x, y, bias_of(cv), n, nt);
        return;
    }
    if (nt > 1 && n >= nt) {
        /* one image per thread at a time, each with its own im2col buffer */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int i = 0; i < n; i++)
            conv_image_forward(cv, x + i * isz, y + i * osz,
                               cv->col + (size_t)omp_get_thread_num() * cv->col_size,
                               cnn_sgemm_serial);
    } else {
        /* One thread, or fewer images than threads: each image split over
         * the threads by output rows. Never a region with if(0) or one
         * thread: libgomp would malloc a one-thread team on every call
         * (bench/FINDINGS.md F1). */
        for (int i = 0; i < n; i++) {
            if (nt > 1) conv_image_forward_split(cv, x + i * isz, y + i * osz, nt);
            else conv_image_forward(cv, x + i * isz, y + i * osz, cv->col, cnn_sgemm_serial);
        }
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
    if (sp_active(cv)) {
        if (dx && cv->sdx) sp_transpose_weights(cv);
        if (nt > 1 && nchunks >= nt) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int k = 0; k < nchunks; k++) {
                const int t = omp_get_thread_num();
                int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
                sp_chunk_backward(cv, x, dy, dx, k * cs, i1, cv->dw_part + k * wsz,
                                  cv->sp + (size_t)t * cv->sp_size,
                                  cv->col + (size_t)t * cv->col_size);
            }
        } else {
            for (int k = 0; k < nchunks; k++) {
                int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
                sp_chunk_backward(cv, x, dy, dx, k * cs, i1, cv->dw_part + k * wsz, cv->sp,
                                  cv->col);
            }
        }
    } else {
        /* dx by Winograd in a pass of its own after dW, or by the GEMM
         * with each image's dW */
        float *dxg = cv->wgd.ok ? NULL : dx;
        if (cv->wgw.ok && nt > 1 && nchunks >= nt) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int k = 0; k < nchunks; k++) {
                int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
                wg_chunk_dw(cv, x, dy, k * cs, i1, cv->dw_part + k * wsz, omp_get_thread_num());
            }
        } else if (cv->wgw.ok) {
            /* a batch of fewer chunks than threads: one thread (dW by
             * Winograd is the same arithmetic at any thread count) */
            for (int k = 0; k < nchunks; k++) {
                int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
                wg_chunk_dw(cv, x, dy, k * cs, i1, cv->dw_part + k * wsz, 0);
            }
        } else if (nt > 1 && nchunks >= nt) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
            for (int k = 0; k < nchunks; k++) {
                int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
                conv_chunk_backward(cv, x, dy, dxg, k * cs, i1, cv->dw_part + k * wsz,
                                    cv->col + (size_t)omp_get_thread_num() * cv->col_size,
                                    cnn_sgemm_serial);
            }
        } else {
            /* as in conv_forward_fast: no one-thread region (F1) */
            const gemm_fn gemm = nt > 1 ? cnn_sgemm : cnn_sgemm_serial;
            for (int k = 0; k < nchunks; k++) {
                int i1 = (k + 1) * cs < n ? (k + 1) * cs : n;
                conv_chunk_backward(cv, x, dy, dxg, k * cs, i1, cv->dw_part + k * wsz, cv->col,
                                    gemm);
            }
        }
        if (dx && cv->wgd.ok) wg_run(cv, &cv->wgd, dy, dx, NULL, n, nt);
    }

    float *dw = cv->base.params[0].grad;
    memcpy(dw, cv->dw_part, sizeof(float) * wsz);
    for (int k = 1; k < nchunks; k++) {
        const float *p = cv->dw_part + k * wsz;
        for (size_t e = 0; e < wsz; e++) dw[e] += p[e];
    }

    if (cv->has_bias) {
        float *db = cv->base.params[1].grad;
#ifdef CONV_HAVE_AVX512
        if (nt == 1 && cnn_gemm_simd_level() == CNN_SIMD_AVX512) {
            /* the same lane sums, so the same bits as the threaded loop below */
            sp_bias_grad(dy, n, F, hw, db);
        } else
#endif
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
    cnn_free(cv->off_x);
    cnn_free(cv->off_d);
    cnn_free(cv->wt);
    cnn_free(cv->wft);
    cnn_free(cv->sp);
    cnn_free(cv->st_cnt);
    cnn_free(cv->st_off);
    cnn_free(cv->st_mask);
    conv_wg *const paths[3] = {&cv->wg, &cv->wgd, &cv->wgw};
    for (int k = 0; k < 3; k++) {
        conv_wg *w = paths[k];
        cnn_free(w->buf);
        cnn_free(w->valid);
        w->buf = NULL;
        w->valid = NULL;
        w->ok = 0;
    }
    cv->col = cv->dw_part = cv->wt = cv->wft = cv->sp = NULL;
    cv->off_x = cv->off_d = cv->st_cnt = cv->st_off = NULL;
    cv->st_mask = NULL;
    cv->sp_ok = 0;
    cv->max_batch = cv->threads = 0;
}

/* The shifted-plane geometry: sets the fields below and returns 1 for the
 * layers the path suits, 0 for the others. Allocates nothing (the memory
 * estimate runs it on a copy of the layer). */
static int sp_plan(conv2d *cv)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, C = g->c, kh = g->kh, kw = g->kw;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw;
    cv->sp_ok = 0;
    cv->hq = (hp + g->sh - 1) / g->sh;
    cv->wq = (wp + g->sw - 1) / g->sw;
    /* small layers only: the planes of a few images stay in L1/L2 */
    double planes = (double)C * g->sh * g->sw * cv->hq * cv->wq;
    if (cv->direct || F > SP_MAX_F || planes > 65536.0 || (double)F * hp * wp > 262144.0)
        return 0;
    cv->qf = round_v(g->ho * cv->wq);
    /* dx as full correlations of dy: phase (pr, pc) of the padded dx,
     * pixels (r*sh + pr, k*sw + pc), gets the taps (pr + sh*a, pc + sw*b)
     * from dy grids with ka-1 zero rows above and kb-1 zero columns to the
     * left (which must fit beside dy in a row of wq). Each (channel, phase)
     * is a row of one sp_shift. With a single row (one channel, stride 1)
     * each tap's loads feed one FMA chain only, and with 16 or more
     * filters the GEMM + col2im path is faster (pytorchnet.conv1: ~250
     * against ~550 us per 64 images; lenet5.conv1, 6 filters: ~240 against
     * 420). */
    cv->ka = (kh + g->sh - 1) / g->sh;
    cv->kb = (kw + g->sw - 1) / g->sw;
    const int nph = g->sh * g->sw;
    cv->sdx = nph <= SP_MAX_PHASES && cv->kb - 1 + g->wo <= cv->wq && (C * nph >= 2 || F < 16);
    cv->qx = cv->sdx ? round_v(cv->hq * cv->wq) : 0;
    cv->mt = cv->sdx ? cv->ka - 1 : 0;
    cv->ml = cv->sdx ? cv->kb - 1 : 0;
    /* every read runs at most a grid (plus a vector) past its tap's start */
    cv->xin_size = (size_t)round_v((int)planes + cv->qf + SP_V);
    cv->dz0 = (SP_V - (cv->mt * cv->wq + cv->ml) % SP_V) % SP_V;
    /* rows: dy with its margins, and every row a phase output reads */
    const int zrows = g->ho + cv->mt > cv->hq ? g->ho + 2 * cv->mt : cv->hq + cv->mt;
    cv->pz = (size_t)round_v(cv->dz0 + (zrows + 1) * cv->wq + 4 * SP_V);
    /* dx's phase grids (the forward stores into y) */
    size_t out = (size_t)C * nph * cv->qx;
    /* dW cost in vector FMAs: filters in the lanes (loads bound it a little)
     * against the dot tiles (thrown-away grid columns, horizontal sums) */
    const int T = C * kh * kw, hw = g->ho * g->wo;
    cv->lf = (F + SP_V - 1) / SP_V * SP_V;
    double dwt_cost = 1.15 * (cv->lf / SP_V) * (double)T * hw;
    double dw_cost = 1.35 * (double)F * T * (cv->qf / SP_V);
    cv->dwt = dwt_cost < dw_cost;
    /* images per group: as many as keep the group's scratch near L2's
     * size (pytorchnet.conv1 at 4 images: 0.9 MB, 20% slower dx) */
    size_t per_image = cv->xin_size + (size_t)F * cv->pz + (cv->dwt ? (size_t)hw * cv->lf : 0);
    cv->grp = (int)(SP_GROUP_FLOATS / per_image);
    if (cv->grp > SP_GROUP) cv->grp = SP_GROUP;
    if (cv->grp < 1) cv->grp = 1;
    cv->o_dyz = (size_t)cv->grp * cv->xin_size;
    cv->o_dyt = cv->o_dyz + (size_t)cv->grp * F * cv->pz;
    cv->o_wtt = cv->o_dyt + (cv->dwt ? (size_t)cv->grp * hw * cv->lf : 0);
    cv->o_out = cv->o_wtt + (cv->dwt ? (size_t)T * cv->lf : 0);
    /* forward: filters in the lanes when the grid's thrown-away columns
     * cost more than the empty lanes and the broadcasts (lenet5.conv2:
     * 100 kept of 144 grid outputs, 16 filters: ~20% faster) */
    cv->fwt = 1.3 * (cv->lf / SP_V) * hw < (double)F * (cv->qf / SP_V);
    cv->o_yt = cv->o_out + out;
    cv->sp_size = cv->o_yt + (cv->fwt ? (size_t)hw * cv->lf : 0);
    cv->st_kmax = SP_V / cv->wq + 2;
    return 1;
}

/* The sizes of the shifted-plane buffers (after sp_plan), in allocation
 * order: tap offsets, dx tap offsets, two weight copies, per-thread
 * scratch, the store table's three arrays. */
static void sp_sizes(const conv2d *cv, int threads, size_t bytes[8])
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, C = g->c, kh = g->kh, kw = g->kw, T = C * kh * kw;
    const int nv = cv->qf / SP_V;
    bytes[0] = sizeof(int) * (size_t)C * kh * kw;
    bytes[1] = sizeof(int) * (size_t)F * kh * kw;
    bytes[2] = sizeof(float) * (size_t)F * cv->ka * cv->kb * C * g->sh * g->sw;
    bytes[3] = sizeof(float) * ((size_t)T + 1) * cv->lf;
    bytes[4] = cnn_mul_size(cnn_mul_size(cv->sp_size, (size_t)threads), sizeof(float));
    bytes[5] = sizeof(int) * (size_t)nv;
    bytes[6] = sizeof(int) * (size_t)nv * cv->st_kmax;
    bytes[7] = sizeof(unsigned short) * (size_t)nv * cv->st_kmax;
}

/* The shifted-plane offsets and per-thread scratch, for layers it suits
 * (none of it is allocated otherwise). */
static cnn_status sp_reserve(conv2d *cv, int threads)
{
    if (!sp_plan(cv)) return CNN_OK;
    const cnn_window *g = &cv->g;
    const int F = cv->filters, C = g->c, kh = g->kh, kw = g->kw, T = C * kh * kw;
    size_t bytes[8];
    sp_sizes(cv, threads, bytes);
    cv->off_x = cnn_alloc(bytes[0], "conv tap offsets");
    cv->off_d = cnn_alloc(bytes[1], "conv dx tap offsets");
    cv->wt = cnn_alloc(bytes[2], "conv transposed weights");
    cv->wft = cnn_alloc(bytes[3], "conv transposed weights");
    cv->sp = cnn_alloc(bytes[4], "conv shifted-plane buffers");
    /* a vector of 16 grid positions touches at most 16/wq + 2 image rows
     * (st_kmax, set by sp_plan) */
    const int nv = cv->qf / SP_V;
    cv->st_cnt = cnn_alloc(bytes[5], "conv store table");
    cv->st_off = cnn_alloc(bytes[6], "conv store table");
    cv->st_mask = cnn_alloc(bytes[7], "conv store table");
    if (!cv->off_x || !cv->off_d || !cv->wt || !cv->wft || !cv->sp || !cv->st_cnt ||
        !cv->st_off || !cv->st_mask)
        return CNN_ERR_NOMEM;
    memset(cv->wft, 0, sizeof(float) * ((size_t)T + 1) * cv->lf);
    for (int v = 0; v < nv; v++) {
        int k = -1, last_row = -1;
        for (int l = 0; l < SP_V; l++) {
            const int q = v * SP_V + l, row = q / cv->wq, col = q % cv->wq;
            if (row >= g->ho || col >= g->wo) continue;
            if (row != last_row) {
                k++;
                last_row = row;
                cv->st_off[v * cv->st_kmax + k] = v * SP_V - row * (cv->wq - g->wo);
                cv->st_mask[v * cv->st_kmax + k] = 0;
            }
            cv->st_mask[v * cv->st_kmax + k] |= (unsigned short)(1u << l);
        }
        cv->st_cnt[v] = k + 1;
    }
    /* the slack after the planes and the dy grids' margins must read as zeros */
    memset(cv->sp, 0, sizeof(float) * cv->sp_size * (size_t)threads);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                cv->off_x[(c * kh + i) * kw + j] =
                    ((c * g->sh + i % g->sh) * g->sw + j % g->sw) * cv->hq * cv->wq +
                    (i / g->sh) * cv->wq + j / g->sw;
    for (int f = 0; f < F; f++)
        for (int a = 0; a < cv->ka; a++)
            for (int b = 0; b < cv->kb; b++)
                cv->off_d[(f * cv->ka + a) * cv->kb + b] =
                    (int)(f * cv->pz) + (cv->mt - a) * cv->wq + (cv->ml - b);
    cv->sp_ok = 1;
    return CNN_OK;
}

/* A Winograd path's sizes (its plan set): `scratch` floats per thread,
 * after a weight copy and the transformed filters if the path has filters.
 * size > 0 marks the path as planned. */
static void wg_size(const conv2d *cv, conv_wg *w, int filters, size_t scratch)
{
    w->wsz = filters ? ((size_t)cv->filters * cv->g.c * 9 + 15) / 16 * 16 : 0;
    w->size = w->wsz + (filters ? w->p.u_size : 0) + scratch;
}

/* Bytes of a planned path's buffers for `threads` threads: buf, valid. */
static void wg_bytes(const conv_wg *w, int threads, size_t bytes[2])
{
    bytes[0] = cnn_mul_size(cnn_mul_size(w->size, (size_t)threads), sizeof(float));
    bytes[1] = sizeof(int) * WG_VALID_STRIDE * (size_t)threads;
}

/* The Winograd plans, for the layers they suit: 3x3, stride 1, enough
 * channels (the forward) or filters (dx, whose input is dy). dx as a full
 * correlation needs zero padding (reflect and replicate fold their border
 * taps back, which the GEMM path's col2im does) of at most 2. dW takes the
 * forward's plan; it runs where dx does, since the GEMM path computes a
 * chunk's dW and dx together. Allocates nothing: a path not planned has
 * size 0 (the memory estimate runs this on a copy of the layer). */
static void wg_plan(conv2d *cv)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters;
    cv->wg.ok = cv->wgd.ok = cv->wgw.ok = 0;
    cv->wg.size = cv->wgd.size = cv->wgw.size = 0;
    if (g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1) return;
    if (g->c >= WG_MIN_C && F >= WG_MIN_F) {
        cnn_wino_plan(&cv->wg.p, g->c, F, g->h, g->w, g->ph, g->pw, g->mode, g->ho, g->wo);
        cv->wg.dx = 0;
        wg_size(cv, &cv->wg, 1, cv->wg.p.scratch);
    }
    const int zero = g->mode == CNN_PAD_ZERO || (g->ph == 0 && g->pw == 0);
    if (F >= WG_MIN_C && g->c >= WG_MIN_F && zero && g->ph <= 2 && g->pw <= 2) {
        cnn_wino_plan(&cv->wgd.p, F, g->c, g->ho, g->wo, 2 - g->ph, 2 - g->pw, CNN_PAD_ZERO, g->h,
                      g->w);
        cv->wgd.dx = 1;
        wg_size(cv, &cv->wgd, 1, cv->wgd.p.scratch);
    }
    if (cv->wg.size && cv->wgd.size) {
        cv->wgw.p = cv->wg.p;
        wg_size(cv, &cv->wgw, 0, cv->wgw.p.dw_scratch);
    }
}

/* The planned Winograd paths' per-thread buffers. */
static cnn_status wg_reserve(conv2d *cv, int threads)
{
    wg_plan(cv);
    conv_wg *const paths[3] = {&cv->wg, &cv->wgd, &cv->wgw};
    for (int k = 0; k < 3; k++) {
        conv_wg *w = paths[k];
        if (!w->size) continue;
        size_t bytes[2];
        wg_bytes(w, threads, bytes);
        /* zeroed: the GEMMs never write M's lanes past F, which the output
         * transform reads (and throws away) */
        w->buf = cnn_alloc(bytes[0], "conv Winograd buffers");
        w->valid = cnn_alloc(bytes[1], "conv Winograd flags");
        if (!w->buf || !w->valid) return CNN_ERR_NOMEM;
        w->ok = 1;
    }
    return CNN_OK;
}

/* The im2col buffers (one per thread) and the per-chunk partial weight
 * gradients, in bytes. */
static void conv_sizes(const conv2d *cv, int max_batch, int threads, size_t bytes[2])
{
    const cnn_window *g = &cv->g;
    int cs = chunk_size(max_batch), nchunks = (max_batch + cs - 1) / cs;
    size_t wsz = (size_t)cv->filters * g->c * g->kh * g->kw;
    /* direct layers still get one float each so the pointers are never NULL */
    size_t col_size = cv->direct ? 1 : (size_t)g->c * g->kh * g->kw * g->ho * g->wo;
    bytes[0] = cnn_mul_size(cnn_mul_size(col_size, (size_t)threads), sizeof(float));
    bytes[1] = cnn_mul_size(cnn_mul_size(wsz, (size_t)nchunks), sizeof(float));
}

/* What conv_reserve allocates, from the same plans, run on a copy. */
static size_t conv_workspace(const cnn_layer *l, int max_batch, int threads)
{
    if (threads < 1) threads = 1;
    if (max_batch < 1) max_batch = 1;
    conv2d plan = *(const conv2d *)l;
    size_t bytes[8], total = 0;
    conv_sizes(&plan, max_batch, threads, bytes);
    total += cnn_alloc_charge(bytes[0]) + cnn_alloc_charge(bytes[1]);
    if (sp_plan(&plan)) {
        sp_sizes(&plan, threads, bytes);
        for (int i = 0; i < 8; i++) total += cnn_alloc_charge(bytes[i]);
    }
    wg_plan(&plan);
    const conv_wg *const paths[3] = {&plan.wg, &plan.wgd, &plan.wgw};
    for (int k = 0; k < 3; k++)
        if (paths[k]->size) {
            wg_bytes(paths[k], threads, bytes);
            total += cnn_alloc_charge(bytes[0]) + cnn_alloc_charge(bytes[1]);
        }
    return total;
}

static cnn_status conv_reserve(cnn_layer *l, int max_batch, int threads)
{
    conv2d *cv = (conv2d *)l;
    const cnn_window *g = &cv->g;
    conv_free_buffers(cv);
    if (threads < 1) threads = 1;
    if (max_batch < 1) max_batch = 1;
    size_t bytes[2];
    conv_sizes(cv, max_batch, threads, bytes);
    cv->col_size = cv->direct ? 1 : (size_t)g->c * g->kh * g->kw * g->ho * g->wo;
    cv->col = cnn_alloc(bytes[0], "conv im2col buffers");
    cv->dw_part = cnn_alloc(bytes[1], "conv partial weight gradients");
    if (!cv->col || !cv->dw_part || sp_reserve(cv, threads) != CNN_OK ||
        wg_reserve(cv, threads) != CNN_OK) {
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
    .workspace = conv_workspace,
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
    l->window = &cv->g;

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
