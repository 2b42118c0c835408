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

#include <immintrin.h>

#define MR CNN_GEMM_AVX512_MR
#define NR CNN_GEMM_AVX512_NR
#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define KERNEL static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,fma")))

/* One tile: M_ rows (compile-time after inlining), NV_ vectors of 16
 * columns, n valid columns. a: row i of step k at a[k*ldak + i]; b: row k
 * at b + k*ldbk. Only the n valid columns of B are read (masked loads), so
 * B's right edge is read in place, without a padded copy. */
KERNEL void tile(const int M_, const int NV_, int n, int kc, const float *a, long ldak,
                 const float *b, long ldbk, float *c, long ldc, float alpha, float beta)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < M_; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF
                 : n > 16  ? (__mmask16)((1u << (n - 16)) - 1) : (__mmask16)0;
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = NV_ > 1 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
        for (int i = 0; i < M_; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            if (NV_ > 1) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += ldak;
        b += ldbk;
    }

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

#define ROWS(M)                                                               \
    case M:                                                                   \
        if (nv == 2) tile(M, 2, n, kc, a, ldak, b, ldbk, c, ldc, alpha, beta);      \
        else tile(M, 1, n, kc, a, ldak, b, ldbk, c, ldc, alpha, beta);              \
        break;

TARGET static void tile_any(int m, int n, int kc, const float *a, long ldak, const float *b,
                            long ldbk,
                            float *c, long ldc, float alpha, float beta)
{
    int nv = n > 16 ? 2 : 1;
    switch (m) {
        ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7)
        ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12) ROWS(13) ROWS(14)
    default: break;
    }
}

TARGET void cnn_gemm_macro_avx512(CNN_GEMM_MACRO_ARGS)
{
    int starts[64 + 1];
    int nt = cnn_gemm_mtiles(mc, MR, starts);
    int nsl = (nc + NR - 1) / NR;
    for (int s = 0; s < nsl; s++) {
        int n = nc - s * NR < NR ? nc - s * NR : NR;
        const float *bs = b + s * bsl;
        long ldk = ldbk;
        (void)bedge; /* tile() reads the edge with masked loads */
        for (int t = 0; t < nt; t++) {
            int r0 = starts[t];
            tile_any(starts[t + 1] - r0, n, kc, a + t * atile + r0 * arow, ldak, bs, ldk,
                     c + r0 * ldc + s * NR, ldc, alpha, beta);
        }
    }
}

/* 16 x 16 transpose in registers: r[i] holds row i on entry, column i on
 * exit. Three shuffle stages: 2x2 within 128-bit lanes, 4x4 within lanes,
 * then 4x4 of lanes. */
KERNEL void transpose16(__m512 r[16])
{
    __m512 a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        b[4 * i + 0] = _mm512_shuffle_ps(a[4 * i], a[4 * i + 2], 0x44);
        b[4 * i + 1] = _mm512_shuffle_ps(a[4 * i], a[4 * i + 2], 0xEE);
        b[4 * i + 2] = _mm512_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0x44);
        b[4 * i + 3] = _mm512_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0xEE);
    }
    /* b[4g + c], 128-bit lane L = column 4L + c of rows 4g..4g+3 */
    for (int c = 0; c < 4; c++) {
        __m512 u0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xDD);
        __m512 u2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
        __m512 u3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        r[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
}

TARGET void cnn_gemm_pack_t_avx512(const float *src, long ld, int rows, int kc, float *d,
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
        transpose16(r);
        for (int q = 0; q < kk; q++) _mm512_mask_storeu_ps(d + (k + q) * dstride, sm, r[q]);
    }
}

/* Dot-product tile for C = A * B^T with both operands K-contiguous:
 * MI x NJ dot products, 16 k at a time, then one horizontal sum each. */
KERNEL void dot_tile(const int MI, const int NJ, int K, float alpha, const float *A, long lda,
                     const float *B, long ldb, float beta, float *C, long ldc)
{
    __m512 acc[4][4], a[4], b[4];
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        /* the tail reads zeros past K: they add nothing */
        __mmask16 km = K - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (K - k)) - 1);
#pragma GCC unroll 4
        for (int i = 0; i < MI; i++) a[i] = _mm512_maskz_loadu_ps(km, A + i * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) b[j] = _mm512_maskz_loadu_ps(km, B + j * ldb + k);
#pragma GCC unroll 4
        for (int i = 0; i < MI; i++)
#pragma GCC unroll 4
            for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_fmadd_ps(a[i], b[j], acc[i][j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            float sum = _mm512_reduce_add_ps(acc[i][j]);
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * sum : __builtin_fmaf(sum, alpha, beta * *c);
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
    for (int i0 = 0; i0 < M; i0 += 4) {
        int mi = M - i0 < 4 ? M - i0 : 4;
        const float *a = A + i0 * lda;
        for (int j0 = 0; j0 < N; j0 += 4) {
            int nj = N - j0 < 4 ? N - j0 : 4;
            const float *b = B + j0 * ldb;
            float *c = C + i0 * ldc + j0;
            switch (mi) {
            case 1: DOTJ(1) break;
            case 2: DOTJ(2) break;
            case 3: DOTJ(3) break;
            default: DOTJ(4) break;
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

void cnn_gemm_dot_avx512(int M, int N, int K, float alpha, const float *A, long lda,
                         const float *B, long ldb, float beta, float *C, long ldc)
{
    (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda; (void)B; (void)ldb;
    (void)beta; (void)C; (void)ldc; /* never selected off x86-64 */
}

void cnn_gemm_pack_t_avx512(const float *src, long ld, int rows, int kc, float *d,
                            long dstride, int lanes)
{
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < lanes; i++) d[k * dstride + i] = i < rows ? src[i * ld + k] : 0.0f;
}

#endif
