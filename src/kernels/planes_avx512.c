/* planes_avx512.c — the AVX-512 micro-kernels of conv's shifted-plane
 * algorithm (src/layers/conv2d_planes.c says what it computes and when it
 * runs) and the data movement around them.
 *
 * The register tiles are templates: sp_tile(MB, PB, ...) is written once
 * and instantiated for every tile shape the drivers below cut, each
 * instance a function of its own in a table indexed by the shape, so that
 * inside an instance every loop bound is a constant and the accumulators
 * stay in registers. Built with target attributes, not -mavx512f, so the
 * library builds for any x86-64 and runs these only where the SIMD level
 * is AVX-512. */
#include "kernels.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)

#include "simd_avx512.h"

#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,fma")))
#define SP_V CNN_PLANES_V

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

/* d[k] = src[k*sw + off] for k in [lo, hi), from a row of w <= 32 floats:
 * one two-register permute per 16 outputs instead of a strided scalar loop */
AVX512 void cnn_planes_pick_row_avx512(float *d, const float *src, int w, int sw, int off, int lo, int hi)
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

/* rows x width floats from s (row stride sld) to d (row stride dld): a
 * memcpy call per 10-float row costs more than the copy */
AVX512 void cnn_copy_rows_avx512(float *d, long dld, const float *s, long sld, int rows, int width)
{
    const __mmask16 tail = (__mmask16)((1u << (width % SP_V)) - 1);
    for (int r = 0; r < rows; r++, d += dld, s += sld) {
        int k = 0;
        for (; k + SP_V <= width; k += SP_V) _mm512_storeu_ps(d + k, _mm512_loadu_ps(s + k));
        if (tail) _mm512_mask_storeu_ps(d + k, tail, _mm512_maskz_loadu_ps(tail, s + k));
    }
}

/* For a zero pad, sw = 2 and rows of at most 32 padded pixels, every pixel of dx is one pixel of one phase, so each row of dx
 * is its two column phases interleaved by two permutes (the scalar
 * scatter took longer than the FMAs that made the phases). */
AVX512 void cnn_planes_interleave_dx_avx512(const float *ph, long qx, int wq, int C, int H, int W,
                                            int sh, int pad_h, int pad_w, float *dx)
{
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __mmask16 mrow = (__mmask16)((1u << wq) - 1);
    /* lane l of the first vector is padded column l, of the second 16 + l */
    unsigned m0 = 0, m1 = 0;
    for (int l = 0; l < 16; l++) {
        if (l >= pad_w && l < pad_w + W) m0 |= 1u << l;
        if (16 + l >= pad_w && 16 + l < pad_w + W) m1 |= 1u << l;
    }
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            const int row = y + pad_h, pr = row % sh, r = row / sh;
            const float *p0 = ph + (size_t)((c * sh + pr) * 2) * qx + (size_t)r * wq;
            const __m512 v0 = _mm512_maskz_loadu_ps(mrow, p0);
            const __m512 v1 = _mm512_maskz_loadu_ps(mrow, p0 + qx);
            /* the row's base sits pw floats before dx's row; only lanes inside are stored */
            const uintptr_t base = (uintptr_t)(dx + ((size_t)c * H + y) * W) - (uintptr_t)pad_w * 4;
            _mm512_mask_storeu_ps((float *)base, (__mmask16)m0, _mm512_permutex2var_ps(v0, lo, v1));
            _mm512_mask_storeu_ps((float *)(base + 64), (__mmask16)m1, _mm512_permutex2var_ps(v0, hi, v1));
        }
}

/* out[i][q] = bias[i] + sum_t a[i*lda + t] * in[off[t] + q] for i < MB and
 * PB vectors of q. MB, PB are constants after inlining: the MB x PB
 * accumulators live in registers (<= 24 of the 32). */
AVX512_INLINE void sp_tile(const int MB, const int PB, int T, const float *a, int lda,
                           const int *off, const float *in, float *out, int ldo,
                           const float *bias, const cnn_planes_store *st, int v0)
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
                           const float *, const cnn_planes_store *, int);
#define SP_TILE(MB, PB)                                                                       \
    static AVX512 void sp_tile_##MB##_##PB(int T, const float *a, int lda, const int *off,   \
                                           const float *in, float *out, int ldo,             \
                                           const float *bias, const cnn_planes_store *st, int v0)    \
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
void cnn_planes_shift_avx512(int M, int T, int q, const float *a, int lda, const int *off,
                             const float *in, float *out, int ldo, const float *bias,
                             const cnn_planes_store *st)
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
void cnn_planes_dw_avx512(int F, int T, int G, int q, const float *dy, long dgs, long pz,
                          const float *x, long xgs, const int *off, float *part, int add)
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
void cnn_planes_dwt_avx512(int T, int FV, int G, const float *x, long xgs, const int *off,
                           int ho, int wo, int wq, const float *dyt, long dgs, float *wtt,
                           int add)
{
    const int tmax = FV == 1 ? 10 : 8, ntiles = (T + tmax - 1) / tmax;
    for (int k = 0, t0 = 0; k < ntiles; k++) {
        const int tb = (T - t0) / (ntiles - k);
        sp_dwts[tb - 1][FV - 1](G, x, xgs, off + t0, ho, wo, wq, dyt, dgs,
                                wtt + (size_t)t0 * FV * SP_V, add);
        t0 += tb;
    }
}

/* One 16 x 16 block of a transposing copy: d[k*dld + i] = s[i*sld + k] for
 * i < 16, k < cols, rows i >= rows read as zeros. Each row is loaded as
 * `cols` floats, or whole when `whole` (its 16 are readable); the stores
 * are whole vectors, or the first `lanes` floats when lanes < 16. */
AVX512_INLINE void transpose_block(const float *s, long sld, int rows, int cols, int whole,
                                   float *d, long dld, int lanes)
{
    const __mmask16 m = (__mmask16)((1u << cols) - 1), sm = (__mmask16)((1u << lanes) - 1);
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i >= rows ? _mm512_setzero_ps()
               : whole   ? _mm512_loadu_ps(s + (size_t)i * sld)
                         : _mm512_maskz_loadu_ps(m, s + (size_t)i * sld);
    cnn_transpose16_avx512(r);
    for (int k = 0; k < cols; k++) {
        if (lanes >= 16) _mm512_storeu_ps(d + (size_t)k * dld, r[k]);
        else _mm512_mask_storeu_ps(d + (size_t)k * dld, sm, r[k]);
    }
}

/* Between (F, hw) and (hw, lf) in 16 x 16 blocks: dy -> dyt (to_lanes),
 * lanes F..lf written as zeros, or yt -> y. Register transposes: a gather
 * per position costs several times more. */
AVX512_INLINE void lanes_transpose(const int to_lanes, int F, int hw, int lf, const float *s,
                                   float *d)
{
    for (int f0 = 0; f0 < F; f0 += SP_V) {
        const int nf = F - f0 < SP_V ? F - f0 : SP_V;
        for (int p0 = 0; p0 < hw; p0 += SP_V) {
            const int np = hw - p0 < SP_V ? hw - p0 : SP_V;
            if (to_lanes)
                transpose_block(s + (size_t)f0 * hw + p0, hw, nf, np, 0, d + (size_t)p0 * lf + f0,
                                lf, 16);
            else
                transpose_block(s + (size_t)p0 * lf + f0, lf, np, nf, 1, d + (size_t)f0 * hw + p0,
                                hw, np);
        }
    }
}

AVX512 void cnn_to_lanes_avx512(int F, int hw, int lf, const float *dy, float *dyt)
{
    lanes_transpose(1, F, hw, lf, dy, dyt);
}

AVX512 void cnn_from_lanes_avx512(int F, int hw, int lf, const float *yt, float *y)
{
    lanes_transpose(0, F, hw, lf, yt, y);
}

/* db: conv_bias_grad's fixed-order lane sums in vectors (the same bits),
 * eight filters at a time so the eight chains of adds overlap */
AVX512 void cnn_bias_grad_avx512(const float *dy, int n, int F, int hw, float *db)
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
            float l[CNN_LANES];
            _mm512_storeu_ps(l, acc[k]);
            db[f0 + k] = cnn_lanes_total(l);
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
void cnn_planes_fwt_avx512(const float *xin, int wq, const int *off, int T, const float *wft,
                           int FV, int ho, int wo, float *yt)
{
    const int lf = FV * SP_V, qmax = FV == 1 ? 12 : 6;
    const int segs = (wo + qmax - 1) / qmax;
    for (int oy = 0; oy < ho; oy++)
        for (int sg = 0, ox0 = 0; sg < segs; sg++) {
            const int qb = (wo - ox0) / (segs - sg);
            sp_fwts[qb - 1][FV - 1](T, xin + (size_t)oy * wq + ox0, off, wft,
                                    yt + ((size_t)oy * wo + ox0) * lf);
            ox0 += qb;
        }
}

#else /* not x86-64 GCC/clang: never called (the level is never AVX-512) */

void cnn_planes_shift_avx512(int M, int T, int q, const float *a, int lda, const int *off,
                             const float *in, float *out, int ldo, const float *bias,
                             const cnn_planes_store *st)
{
    (void)M, (void)T, (void)q, (void)a, (void)lda, (void)off, (void)in, (void)out, (void)ldo;
    (void)bias, (void)st;
}

void cnn_planes_dw_avx512(int F, int T, int G, int q, const float *dy, long dgs, long pz,
                          const float *x, long xgs, const int *off, float *part, int add)
{
    (void)F, (void)T, (void)G, (void)q, (void)dy, (void)dgs, (void)pz, (void)x, (void)xgs;
    (void)off, (void)part, (void)add;
}

void cnn_planes_dwt_avx512(int T, int FV, int G, const float *x, long xgs, const int *off,
                           int ho, int wo, int wq, const float *dyt, long dgs, float *wtt,
                           int add)
{
    (void)T, (void)FV, (void)G, (void)x, (void)xgs, (void)off, (void)ho, (void)wo, (void)wq;
    (void)dyt, (void)dgs, (void)wtt, (void)add;
}

void cnn_planes_fwt_avx512(const float *xin, int wq, const int *off, int T, const float *wft,
                           int FV, int ho, int wo, float *yt)
{
    (void)xin, (void)wq, (void)off, (void)T, (void)wft, (void)FV, (void)ho, (void)wo, (void)yt;
}

void cnn_planes_pick_row_avx512(float *d, const float *src, int w, int sw, int off, int lo,
                                int hi)
{
    (void)w;
    for (int k = lo; k < hi; k++) d[k] = src[k * sw + off];
}

void cnn_copy_rows_avx512(float *d, long dld, const float *s, long sld, int rows, int width)
{
    for (int r = 0; r < rows; r++, d += dld, s += sld) memcpy(d, s, sizeof(float) * (size_t)width);
}

void cnn_planes_interleave_dx_avx512(const float *ph, long qx, int wq, int C, int H, int W,
                                     int sh, int pad_h, int pad_w, float *dx)
{
    (void)ph, (void)qx, (void)wq, (void)C, (void)H, (void)W, (void)sh, (void)pad_h, (void)pad_w;
    (void)dx;
}

void cnn_to_lanes_avx512(int F, int hw, int lf, const float *dy, float *dyt)
{
    (void)F, (void)hw, (void)lf, (void)dy, (void)dyt;
}

void cnn_from_lanes_avx512(int F, int hw, int lf, const float *yt, float *y)
{
    (void)F, (void)hw, (void)lf, (void)yt, (void)y;
}

void cnn_bias_grad_avx512(const float *dy, int n, int F, int hw, float *db)
{
    (void)dy, (void)n, (void)F, (void)hw, (void)db;
}

#endif
