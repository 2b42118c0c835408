/*
 * gemm_avx512.c — the AVX-512 macro-kernel: 14 x 32 register tiles.
 *
 * 14 rows x 2 zmm = 28 accumulators, 2 for the B row, 1 spare: each k step
 * issues 28 FMAs against 2 vector loads and 14 broadcasts, so the two FMA
 * pipes stay busy and the 4-cycle FMA latency is covered 7 times over.
 * Edge tiles get kernels specialised for their row count (1..14) and for
 * 1 or 2 vectors of columns, so a 16 x 196 conv GEMM does not pay for 28
 * rows or 224 columns.
 *
 * Compiled with a target attribute rather than -mavx512f so the library
 * builds for any x86-64 and picks this at run time.
 */
#include "gemm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include "simd_avx512.h"

#define MR CNN_GEMM_AVX512_MR
#define NR CNN_GEMM_AVX512_NR
#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define KERNEL static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,fma")))

/* One tile: M_ rows (compile-time after inlining), NV_ vectors of 16
 * columns, n valid columns. a: row i of step k at a[k*ldak + i] (AR: at
 * a[i*lda + k]); b: row k
 * at b + k*ldbk. Only the n valid columns of B are read (masked loads), so
 * B's right edge is read in place, without a padded copy. */
KERNEL void tile(const int M_, const int NV_, const int AR, int n, int kc, const float *a,
                 long ldak, long lda, const float *b, long ldbk, float *c, long ldc,
                 float alpha, float beta)
{
    /* AR (row-major A read in place): element (i, k) at a[i*lda + k] */
    if (AR) ldak = 1;
    __m512 acc[MR][2];
    __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF
                 : n > 16  ? (__mmask16)((1u << (n - 16)) - 1) : (__mmask16)0;
    {
        /* k = 0 multiplies instead of adding to zeroed accumulators: with
         * K = 9 the 28 zeroing moves are a tenth of the tile's work */
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = NV_ > 1 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
        for (int i = 0; i < M_; i++) {
            __m512 ai = _mm512_set1_ps(AR ? a[i * lda] : a[i]);
            acc[i][0] = _mm512_mul_ps(ai, b0);
            if (NV_ > 1) acc[i][1] = _mm512_mul_ps(ai, b1);
        }
        a += ldak;
        b += ldbk;
    }
    for (int p = 1; p < kc; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = NV_ > 1 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
        for (int i = 0; i < M_; i++) {
            __m512 ai = _mm512_set1_ps(AR ? a[i * lda] : a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            if (NV_ > 1) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += ldak;
        b += ldbk;
    }

    /* C's row addresses from one register here: without this GCC keeps
     * the tile's 14 row pointers live across the panel's slivers, spills
     * them and reloads them for every store */
    __asm__("" : "+r"(c));
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (alpha == 1.0f && beta == 0.0f && n >= 16 * NV_) {
        /* the common case; 1 * acc == acc exactly, so skipping the multiply
         * (which would occupy the FMA pipes) changes no bits */
#pragma GCC unroll 14
        for (int i = 0; i < M_; i++)
            for (int v = 0; v < NV_; v++) _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
        return;
    }
    if (n >= 16 * NV_) {
        /* full tile: plain stores, masked ones are slower on Zen */
#pragma GCC unroll 14
        for (int i = 0; i < M_; i++) {
            float *ci = c + i * ldc;
            for (int v = 0; v < NV_; v++) {
                __m512 r = _mm512_mul_ps(acc[i][v], va);
                if (beta != 0.0f)
                    r = _mm512_fmadd_ps(acc[i][v], va, _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16 * v)));
                _mm512_storeu_ps(ci + 16 * v, r);
            }
        }
        return;
    }
#pragma GCC unroll 14
    for (int i = 0; i < M_; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < NV_; v++) {
            __mmask16 mv = v ? m1 : m0;
            __m512 r = _mm512_mul_ps(acc[i][v], va);
            if (beta != 0.0f)
                r = _mm512_fmadd_ps(acc[i][v], va,
                                    _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mv, ci + 16 * v)));
            _mm512_mask_storeu_ps(ci + 16 * v, mv, r);
        }
    }
}

/* One row tile of M_ rows across nc columns (several slivers): one call
 * per row tile instead of one per tile. With K = 9 a 8 x 32 tile is only
 * ~70 cycles of FMAs, and the call, frame and epilogue set-up per tile
 * cost a third of that again. */
KERNEL void panel(const int M_, const int AR, int nc, int kc, const float *a, long ldak,
                  const float *b, long ldbk, long bsl, float *c, long ldc, float alpha,
                  float beta)
{
    for (int s = 0; s * NR < nc; s++) {
        int n = nc - s * NR;
        /* each case inlined once: GCC spilled B to the stack when the
         * three tile variants shared one loop body */
        if (n >= NR)
            tile(M_, 2, AR, NR, kc, a, ldak, ldak, b + s * bsl, ldbk, c + s * NR, ldc, alpha, beta);
        else if (n > 16)
            tile(M_, 2, AR, n, kc, a, ldak, ldak, b + s * bsl, ldbk, c + s * NR, ldc, alpha, beta);
        else
            tile(M_, 1, AR, n, kc, a, ldak, ldak, b + s * bsl, ldbk, c + s * NR, ldc, alpha, beta);
    }
}

typedef void (*panel_fn)(int nc, int kc, const float *a, long ldak, const float *b, long ldbk,
                         long bsl, float *c, long ldc, float alpha, float beta);

/* panel_M: A k-major (packed or stored transposed), element (i, k) at
 * a[k*ldak + i]; rpanel_M: A row-major read in place, at a[i*ldak + k]. */
#define PANEL_FN(M)                                                                       \
    TARGET static void panel_##M(int nc, int kc, const float *a, long ldak, const float *b, \
                                 long ldbk, long bsl, float *c, long ldc, float alpha,     \
                                 float beta)                                               \
    {                                                                                     \
        panel(M, 0, nc, kc, a, ldak, b, ldbk, bsl, c, ldc, alpha, beta);                  \
    }                                                                                     \
    TARGET static void rpanel_##M(int nc, int kc, const float *a, long lda, const float *b, \
                                  long ldbk, long bsl, float *c, long ldc, float alpha,    \
                                  float beta)                                              \
    {                                                                                     \
        panel(M, 1, nc, kc, a, lda, b, ldbk, bsl, c, ldc, alpha, beta);                   \
    }
PANEL_FN(1) PANEL_FN(2) PANEL_FN(3) PANEL_FN(4) PANEL_FN(5) PANEL_FN(6) PANEL_FN(7)
PANEL_FN(8) PANEL_FN(9) PANEL_FN(10) PANEL_FN(11) PANEL_FN(12) PANEL_FN(13) PANEL_FN(14)

static const panel_fn panels[MR + 1] = {
    0,        panel_1,  panel_2,  panel_3,  panel_4,  panel_5,  panel_6,  panel_7,
    panel_8,  panel_9,  panel_10, panel_11, panel_12, panel_13, panel_14,
};
static const panel_fn rpanels[MR + 1] = {
    0,         rpanel_1,  rpanel_2,  rpanel_3,  rpanel_4,  rpanel_5,  rpanel_6,  rpanel_7,
    rpanel_8,  rpanel_9,  rpanel_10, rpanel_11, rpanel_12, rpanel_13, rpanel_14,
};

/* 128-bit lane i of v (i a constant after unrolling). */
KERNEL __m128 quarter(__m512 v, int i)
{
    switch (i) {
    case 0: return _mm512_extractf32x4_ps(v, 0);
    case 1: return _mm512_extractf32x4_ps(v, 1);
    case 2: return _mm512_extractf32x4_ps(v, 2);
    default: return _mm512_extractf32x4_ps(v, 3);
    }
}

/* Stores 16 rows x nj columns of C from x[j] (lane i = row i of column j)
 * with tile()'s alpha/beta arithmetic. A call of its own, taking the
 * vectors in zmm0-3: inlined into edge_tile, its 16 row addresses made
 * GCC spill an A vector inside the k loop. */
TARGET static void edge_store(__m512 x0, __m512 x1, __m512 x2, __m512 x3, int rows, int nj,
                              float *c, long ldc, float alpha, float beta)
{
    __m512 x[4] = {x0, x1, x2, x3};
    if (beta == 0.0f && alpha != 1.0f) /* alpha*acc, as tile() rounds it */
        for (int j = 0; j < 4; j++) x[j] = _mm512_mul_ps(x[j], _mm512_set1_ps(alpha));
    /* 16 x 4 transpose: r[q] 128-bit lane L = row 4L + q */
    __m512 t0 = _mm512_unpacklo_ps(x[0], x[1]), t1 = _mm512_unpackhi_ps(x[0], x[1]);
    __m512 t2 = _mm512_unpacklo_ps(x[2], x[3]), t3 = _mm512_unpackhi_ps(x[2], x[3]);
    __m512 r[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                   _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
    const __m128 xa = _mm_set1_ps(alpha), xb = _mm_set1_ps(beta);
    const __mmask8 jm = (__mmask8)((1u << nj) - 1);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        if (i >= rows) break;
        float *ci = c + i * ldc;
        __m128 v = quarter(r[i % 4], i / 4);
        if (beta != 0.0f) v = _mm_fmadd_ps(v, xa, _mm_mul_ps(xb, _mm_maskz_loadu_ps(jm, ci)));
        if (nj == 4) _mm_storeu_ps(ci, v);
        else _mm_mask_storeu_ps(ci, jm, v);
    }
}

/* Right edge of at most 4 columns with the rows in the lanes: C[i][j] for
 * G groups of 16 rows (the last one short when MASKED: `last` rows) and NJ
 * columns. A k-major (element (i, k) at a[k*ldak + i]) gives the 16 rows of
 * a step as one vector load and B's NJ values are broadcast, so a step
 * costs G*NJ FMAs instead of the 16*G of a 16-lane tile whose lanes are
 * mostly padding (N = 100, 196, 676 leave 4 columns). Each element is the
 * same FMA chain over k and the same alpha/beta arithmetic as in tile(),
 * so the bits do not depend on which kernel computed it. */
KERNEL void edge_tile(const int G, const int NJ, const int MASKED, int last, int kc,
                      const float *a, long ldak, const float *b, long ldbk, float *c,
                      long ldc, float alpha, float beta)
{
    __m512 acc[4][4];
    __mmask16 lm = (__mmask16)((1u << last) - 1);
    {
        __m512 av[4];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++)
            av[g] = MASKED && g == G - 1 ? _mm512_maskz_loadu_ps(lm, a + 16 * g)
                                         : _mm512_loadu_ps(a + 16 * g);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            __m512 bj = _mm512_set1_ps(b[j]);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) acc[g][j] = _mm512_mul_ps(av[g], bj);
        }
        a += ldak;
        b += ldbk;
    }
    for (int p = 1; p < kc; p++) {
        __m512 av[4];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            av[g] = MASKED && g == G - 1 ? _mm512_maskz_loadu_ps(lm, a + 16 * g)
                                         : _mm512_loadu_ps(a + 16 * g);
            if (NJ > 1) __asm__("" : "+v"(av[g])); /* one load, not one per FMA */
        }
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            __m512 bj = _mm512_set1_ps(b[j]);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) acc[g][j] = _mm512_fmadd_ps(av[g], bj, acc[g][j]);
        }
        a += ldak;
        b += ldbk;
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
        edge_store(acc[g][0], NJ > 1 ? acc[g][1] : _mm512_setzero_ps(),
                   NJ > 2 ? acc[g][2] : _mm512_setzero_ps(),
                   NJ > 3 ? acc[g][3] : _mm512_setzero_ps(), MASKED && g == G - 1 ? last : 16,
                   NJ, c + 16 * g * ldc, ldc, alpha, beta);
}

/* The whole right edge (n <= 4 columns) down mc rows of k-major A. */
KERNEL void edge_nj(const int NJ, int mc, int kc, const float *a, long ldak, const float *b,
                    long ldbk, float *c, long ldc, float alpha, float beta)
{
    int i = 0;
    for (; mc - i >= 64; i += 64)
        edge_tile(4, NJ, 0, 16, kc, a + i, ldak, b, ldbk, c + i * ldc, ldc, alpha, beta);
    int r = mc - i, full = r / 16, last = r % 16;
    const float *ai = a + i;
    float *ci = c + i * ldc;
    if (last) {
        switch (full) {
        case 0: edge_tile(1, NJ, 1, last, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        case 1: edge_tile(2, NJ, 1, last, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        case 2: edge_tile(3, NJ, 1, last, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        default: edge_tile(4, NJ, 1, last, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        }
    } else {
        switch (full) {
        case 0: break;
        case 1: edge_tile(1, NJ, 0, 16, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        case 2: edge_tile(2, NJ, 0, 16, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        default: edge_tile(3, NJ, 0, 16, kc, ai, ldak, b, ldbk, ci, ldc, alpha, beta); break;
        }
    }
}

#define EDGE_FN(NJ)                                                                       \
    TARGET static void edge_##NJ(int mc, int kc, const float *a, long ldak, const float *b, \
                                 long ldbk, float *c, long ldc, float alpha, float beta)    \
    {                                                                                     \
        edge_nj(NJ, mc, kc, a, ldak, b, ldbk, c, ldc, alpha, beta);                       \
    }
EDGE_FN(1) EDGE_FN(2) EDGE_FN(3) EDGE_FN(4)

typedef void (*edge_fn)(int mc, int kc, const float *a, long ldak, const float *b, long ldbk,
                        float *c, long ldc, float alpha, float beta);
static const edge_fn edges[5] = {0, edge_1, edge_2, edge_3, edge_4};

/* Columns of B's last sliver that go to the edge kernel instead of a
 * 16-lane tile: nc % 16 when that is 1..EDGE_MAX_N (the rest of the
 * sliver, 0 or 16 columns, stays with the tiles). */
#define EDGE_MAX_N 4
#define EDGE_ROWS 32

/* The column-chunk walk of cnn_gemm_macro_avx512, for either A layout. */
KERNEL void macro(const panel_fn *pf, int mc, int nc, int kc, const float *a, long atile,
                  long arow, long ldak, const float *b, long ldbk, long bsl, float *c,
                  long ldc, float alpha, float beta)
{
    int starts[64 + 1];
    int nt = cnn_gemm_mtiles(mc, MR, starts);
    /* A k-major across the whole block (stored transposed or packed as one
     * K x mc block): a narrow right edge goes down the rows in one pass */
    int ne = atile == 0 && nc % 16 <= EDGE_MAX_N ? nc % 16 : 0;
    if (ne) {
        int j0 = nc - ne;
        const float *be = b + j0 / NR * bsl + j0 % NR;
        if (arow == 1) {
            edges[ne](mc, kc, a, ldak, be, ldbk, c + j0, ldc, alpha, beta);
        } else {
            /* row-major A: 32 rows at a time transposed to k-major (two
             * groups of 16 keep 8 FMA chains in flight) */
            _Alignas(64) float at[EDGE_ROWS * CNN_GEMM_AVX512_MAX_KC];
            for (int i = 0; i < mc; i += EDGE_ROWS) {
                int rows = mc - i < EDGE_ROWS ? mc - i : EDGE_ROWS;
                for (int r = 0; r < rows; r += 16) {
                    int m = rows - r < 16 ? rows - r : 16;
                    cnn_transpose_avx512(a + (i + r) * arow, ldak, m, kc, at + r, rows, m);
                }
                edges[ne](rows, kc, at, rows, be, ldbk, c + i * ldc + j0, ldc, alpha, beta);
            }
        }
        nc = j0;
    }
    /* Columns in chunks of slivers whose B rows fit in 32 KB of L1, each
     * chunk swept by every row tile. Large kc gives one sliver per chunk,
     * the GotoBLAS order (a B sliver stays in L1 across the A block);
     * small kc gives one chunk for all of N and one call per row tile. */
    int nch = 8192 / (kc * NR);
    if (nch < 1) nch = 1;
    for (int j = 0; j < nc; j += nch * NR) {
        int w = nc - j < nch * NR ? nc - j : nch * NR;
        for (int t = 0; t < nt; t++) {
            int r0 = starts[t];
            pf[starts[t + 1] - r0](w, kc, a + t * atile + r0 * arow, ldak, b + j / NR * bsl,
                                   ldbk, bsl, c + r0 * ldc + j, ldc, alpha, beta);
        }
    }
}

TARGET void cnn_gemm_macro_avx512(CNN_GEMM_MACRO_ARGS)
{
    (void)bedge; /* tile() reads B's edge with masked loads */
    macro(panels, mc, nc, kc, a, atile, arow, ldak, b, ldbk, bsl, c, ldc, alpha, beta);
}

TARGET void cnn_gemm_macro_avx512_rowa(int mc, int nc, int kc, const float *a, long lda,
                                       const float *b, long ldbk, long bsl, float *c,
                                       long ldc, float alpha, float beta)
{
    macro(rpanels, mc, nc, kc, a, 0, lda, lda, b, ldbk, bsl, c, ldc, alpha, beta);
}

TARGET void cnn_transpose_avx512(const float *src, long ld, int rows, int kc, float *d,
                                 long dstride, int lanes)
{
    __mmask16 sm = (__mmask16)((1u << lanes) - 1);
    for (int k = 0; k < kc; k += 16) {
        int kk = kc - k < 16 ? kc - k : 16;
        __mmask16 km = (__mmask16)((1u << kk) - 1);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * ld + k) : _mm512_setzero_ps();
        cnn_transpose16_avx512(r);
        for (int q = 0; q < kk; q++) _mm512_mask_storeu_ps(d + (k + q) * dstride, sm, r[q]);
    }
}


/* Rows i < mi (of at most ROWS) and columns j < nj of C from lane 4i + j
 * of sum: alpha * sum (beta == 0) or fma(sum, alpha, beta * C), as tile()
 * rounds them. */
KERNEL void dot_store(const int ROWS, __m512 sum, int mi, int nj, float alpha, float beta,
                      float *C, long ldc)
{
    __m512 vs = _mm512_mul_ps(sum, _mm512_set1_ps(alpha));
    __mmask8 jm = (__mmask8)((1u << nj) - 1);
#pragma GCC unroll 4
    for (int i = 0; i < ROWS; i++) {
        if (i >= mi) break;
        float *c = C + i * ldc;
        __m128 ri = quarter(vs, i);
        if (beta != 0.0f)
            ri = _mm_fmadd_ps(quarter(sum, i), _mm_set1_ps(alpha),
                              _mm_mul_ps(_mm_set1_ps(beta), _mm_maskz_loadu_ps(jm, c)));
        _mm_mask_storeu_ps(c, jm, ri);
    }
}

/* C[i][j] = alpha * (sum of the lanes of x[4i + j]) + beta * C[i][j] for
 * i < mi, j < nj, given y, the first level of the sum (see dot_tile). All
 * 16 horizontal sums at once, four add levels; after
 * them lane 4i + j of sum holds the sum of x[4i + j]. 45 shuffles and adds
 * instead of 16 separate reductions (~130), which cost as much as the
 * FMAs when K = 128 (dense dW). Each sum's order is fixed by its lanes,
 * not by the tile shape, so edge tiles round the same way. Not inlined
 * into the tiles: inlined, it made GCC spill a B vector in their k loop. */
TARGET static void dot_finish(__m512 y0, __m512 y1, __m512 y2, __m512 y3, __m512 y4,
                              __m512 y5, __m512 y6, __m512 y7, int mi, int nj, float alpha,
                              float beta, float *C, long ldc)
{
    __m512 y[8] = {y0, y1, y2, y3, y4, y5, y6, y7}, q[4], r[2];
    /* per 128-bit lane: q[g] element e = partial sum of x[4g + e] */
    for (int g = 0; g < 4; g++)
        q[g] = _mm512_add_ps(_mm512_shuffle_ps(y[2 * g], y[2 * g + 1], 0x44),
                             _mm512_shuffle_ps(y[2 * g], y[2 * g + 1], 0xEE));
    /* add the four 128-bit lanes of each q: pairs, then pairs of pairs */
    for (int h = 0; h < 2; h++)
        r[h] = _mm512_add_ps(_mm512_shuffle_f32x4(q[2 * h], q[2 * h + 1], 0x88),
                             _mm512_shuffle_f32x4(q[2 * h], q[2 * h + 1], 0xDD));
    __m512 sum = _mm512_add_ps(_mm512_shuffle_f32x4(r[0], r[1], 0x88),
                               _mm512_shuffle_f32x4(r[0], r[1], 0xDD));
    dot_store(4, sum, mi, nj, alpha, beta, C, ldc);
}

/* dot_finish for at most 2 rows (x[0..7], y[0..3]): the same four levels
 * on half the vectors, 23 shuffles and adds instead of 45. Every sum is
 * added in the same order as in dot_finish ((e0+e2)+(e1+e3) within a
 * 128-bit lane, then (L0+L1)+(L2+L3)), so the bits do not depend on which
 * of the two an element goes through. */
TARGET static void dot_finish_half(__m512 y0, __m512 y1, __m512 y2, __m512 y3, int mi, int nj,
                                   float alpha, float beta, float *C, long ldc)
{
    __m512 q0 = _mm512_add_ps(_mm512_shuffle_ps(y0, y1, 0x44), _mm512_shuffle_ps(y0, y1, 0xEE));
    __m512 q1 = _mm512_add_ps(_mm512_shuffle_ps(y2, y3, 0x44), _mm512_shuffle_ps(y2, y3, 0xEE));
    /* 128-bit lanes: q0 L0+L1, q0 L2+L3, q1 L0+L1, q1 L2+L3 */
    __m512 r = _mm512_add_ps(_mm512_shuffle_f32x4(q0, q1, 0x88), _mm512_shuffle_f32x4(q0, q1, 0xDD));
    __m512 sum = _mm512_add_ps(_mm512_shuffle_f32x4(r, r, 0x88), _mm512_shuffle_f32x4(r, r, 0xDD));
    dot_store(2, sum, mi, nj, alpha, beta, C, ldc);
}

/* Dot-product tile for C = A * B^T with both operands K-contiguous:
 * MI x NJ dot products (MI <= 6 and NJ <= 4, or MI <= 2 and NJ = 8), 16 k
 * at a time, then one horizontal sum each, 4 x 4 of them per dot_finish. */
KERNEL void dot_tile(const int MI, const int NJ, int K, float alpha, const float *A, long lda,
                     const float *B, long ldb, float beta, float *C, long ldc)
{
    __m512 acc[6][8], a[6];
#pragma GCC unroll 6
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        /* Plain loads, kept out of the FMAs by the empty asm (folded in, B
         * would be loaded once per FMA): +16% on dense 64x10x128 over masked
         * loads, which this CPU issues more slowly. */
#pragma GCC unroll 6
        for (int i = 0; i < MI; i++) {
            a[i] = _mm512_loadu_ps(A + i * lda + k);
            __asm__("" : "+v"(a[i]));
        }
        /* one B vector live at a time: 24 accumulators + 6 A rows leave
         * room for just one */
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) {
            __m512 bj = _mm512_loadu_ps(B + j * ldb + k);
            __asm__("" : "+v"(bj));
#pragma GCC unroll 6
            for (int i = 0; i < MI; i++) acc[i][j] = _mm512_fmadd_ps(a[i], bj, acc[i][j]);
        }
    }
    if (k < K) {
        /* the tail reads zeros past K: they add nothing */
        __mmask16 km = (__mmask16)((1u << (K - k)) - 1);
#pragma GCC unroll 6
        for (int i = 0; i < MI; i++) a[i] = _mm512_maskz_loadu_ps(km, A + i * lda + k);
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) {
            __m512 bj = _mm512_maskz_loadu_ps(km, B + j * ldb + k);
#pragma GCC unroll 6
            for (int i = 0; i < MI; i++) acc[i][j] = _mm512_fmadd_ps(a[i], bj, acc[i][j]);
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < (MI + 3) / 4; g++)
#pragma GCC unroll 2
        for (int h = 0; h < (NJ + 3) / 4; h++) {
            const int gi = MI - 4 * g < 4 ? MI - 4 * g : 4;
            const int hj = NJ - 4 * h < 4 ? NJ - 4 * h : 4;
            /* x[4i + j] = acc[4g + i][4h + j], zero outside the tile */
            __m512 x[16], y[8];
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++)
                x[q] = q / 4 < gi && q % 4 < hj ? acc[4 * g + q / 4][4 * h + q % 4]
                                                : _mm512_setzero_ps();
            /* first level here, so the other eight travel in registers (the
             * ABI passes eight vector arguments in zmm0-7): per 128-bit lane,
             * y[p] holds x[2p] at elements 0, 2 and x[2p+1] at 1, 3 */
#pragma GCC unroll 8
            for (int p = 0; p < 8; p++)
                y[p] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * p], x[2 * p + 1]),
                                     _mm512_unpackhi_ps(x[2 * p], x[2 * p + 1]));
            float *cg = C + 4 * g * ldc + 4 * h;
            if (gi <= 2)
                dot_finish_half(y[0], y[1], y[2], y[3], gi, hj, alpha, beta, cg, ldc);
            else
                dot_finish(y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7], gi, hj, alpha, beta,
                           cg, ldc);
        }
}

#define DOTJ(MI)                                                                         \
    switch (nj) {                                                                        \
    case 1: dot_tile(MI, 1, K, alpha, a, lda, b, ldb, beta, c, ldc); break;             \
    case 2: dot_tile(MI, 2, K, alpha, a, lda, b, ldb, beta, c, ldc); break;             \
    case 3: dot_tile(MI, 3, K, alpha, a, lda, b, ldb, beta, c, ldc); break;             \
    default: dot_tile(MI, 4, K, alpha, a, lda, b, ldb, beta, c, ldc); break;            \
    }

TARGET void cnn_gemm_dot_avx512(int M, int N, int K, float alpha, const float *A, long lda,
                                const float *B, long ldb, float beta, float *C, long ldc)
{
    /* Tile shape. 4 x 4 keeps dot_finish's 16 sums full. With long K the
     * sums matter less than the loads: a 4 x 4 tile issues 8 loads per 16
     * FMAs and a 2 x 4 or 4 x 1 edge tile more loads than FMAs (masked
     * loads, about one per cycle here), so rows go in tiles of up to 6
     * (10 loads per 24 FMAs) and N = 9 in columns of 3. Each element's sum
     * is the same whatever the tile (see dot_finish). */
    const int tall = K >= 160;
    const int wj = N % 4 && N % 3 == 0 ? 3 : 4;
    const int nrt = (M + (tall ? 5 : 3)) / (tall ? 6 : 4);
    for (int t = 0; t < nrt; t++) {
        int i0 = (int)((long)M * t / nrt), mi = (int)((long)M * (t + 1) / nrt) - i0;
        const float *a = A + i0 * lda;
        int j0 = 0;
        if (mi <= 2) {
            /* one or two rows (a single image through a dense layer): 8
             * columns per tile, so each A vector serves 8 FMAs instead of
             * 4 and the loads are mostly the B rows that stream from memory */
            for (; N - j0 >= 8; j0 += 8) {
                const float *b = B + j0 * ldb;
                float *c = C + i0 * ldc + j0;
                if (mi == 1) dot_tile(1, 8, K, alpha, a, lda, b, ldb, beta, c, ldc);
                else dot_tile(2, 8, K, alpha, a, lda, b, ldb, beta, c, ldc);
            }
        }
        for (; j0 < N; j0 += wj) {
            int nj = N - j0 < wj ? N - j0 : wj;
            const float *b = B + j0 * ldb;
            float *c = C + i0 * ldc + j0;
            switch (mi) {
            case 1: DOTJ(1) break;
            case 2: DOTJ(2) break;
            case 3: DOTJ(3) break;
            case 4: DOTJ(4) break;
            case 5: DOTJ(5) break;
            default: DOTJ(6) break;
            }
        }
    }
}

#else /* not x86-64 GCC/Clang: never selected, but the symbol must exist */

void cnn_gemm_macro_avx512(CNN_GEMM_MACRO_ARGS)
{
    cnn_gemm_macro_generic(mc, nc, kc, a, atile, arow, ldak, b, ldbk, bsl, bedge, c, ldc,
                           alpha, beta);
}

void cnn_gemm_macro_avx512_rowa(int mc, int nc, int kc, const float *a, long lda,
                                const float *b, long ldbk, long bsl, float *c, long ldc,
                                float alpha, float beta)
{
    (void)mc; (void)nc; (void)kc; (void)a; (void)lda; (void)b; (void)ldbk; (void)bsl;
    (void)c; (void)ldc; (void)alpha; (void)beta; /* never selected off x86-64 */
}

void cnn_gemm_dot_avx512(int M, int N, int K, float alpha, const float *A, long lda,
                         const float *B, long ldb, float beta, float *C, long ldc)
{
    (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda; (void)B; (void)ldb;
    (void)beta; (void)C; (void)ldc; /* never selected off x86-64 */
}

void cnn_transpose_avx512(const float *src, long ld, int rows, int kc, float *d,
                          long dstride, int lanes)
{
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < lanes; i++) d[k * dstride + i] = i < rows ? src[i * ld + k] : 0.0f;
}

#endif
