/*
 * gemm_avx2.c — the AVX2 micro-kernel: 6 x 16 register tiles, walked by
 * cnn_gemm_walk (gemm_internal.h).
 *
 * 6 rows x 2 ymm = 12 accumulators + 2 for the B row + 1 broadcast fit the
 * 16 ymm registers; 12 independent FMA chains cover the FMA latency of
 * two pipes. The same arithmetic order as the AVX-512 file.
 */
#include "gemm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#define MR CNN_GEMM_AVX2_MR
#define NR CNN_GEMM_AVX2_NR
#define TARGET __attribute__((target("avx2,fma")))
#define KERNEL static inline __attribute__((always_inline, target("avx2,fma")))

/* Lanes [0, n) of an 8-float vector, as a maskload/maskstore mask. */
KERNEL __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

KERNEL void tile(const int M_, const int NV_, int n, int kc, const float *a, long ldak,
                 const float *b, long ldbk, float *c, long ldc, float alpha, float beta)
{
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < M_; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = NV_ > 1 ? _mm256_loadu_ps(b + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
        for (int i = 0; i < M_; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            if (NV_ > 1) acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += ldak;
        b += ldbk;
    }

    __m256i m0 = lanes(n), m1 = lanes(n - 8);
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < M_; i++) {
        float *ci = c + i * ldc;
        __m256 r0 = _mm256_mul_ps(acc[i][0], va);
        if (beta != 0.0f)
            r0 = _mm256_fmadd_ps(acc[i][0], va, _mm256_mul_ps(vb, _mm256_maskload_ps(ci, m0)));
        _mm256_maskstore_ps(ci, m0, r0);
        if (NV_ > 1) {
            __m256 r1 = _mm256_mul_ps(acc[i][1], va);
            if (beta != 0.0f)
                r1 = _mm256_fmadd_ps(acc[i][1], va,
                                     _mm256_mul_ps(vb, _mm256_maskload_ps(ci + 8, m1)));
            _mm256_maskstore_ps(ci + 8, m1, r1);
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
    int nv = n > 8 ? 2 : 1;
    switch (m) {
        ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6)
    default: break;
    }
}

TARGET void cnn_gemm_macro_avx2(CNN_GEMM_MACRO_ARGS)
{
    cnn_gemm_walk(tile_any, MR, NR, mc, nc, kc, a, atile, arow, ldak, b, ldbk, bsl, bedge, c,
                  ldc, alpha, beta);
}

#else

void cnn_gemm_macro_avx2(CNN_GEMM_MACRO_ARGS)
{
    cnn_gemm_macro_generic(mc, nc, kc, a, atile, arow, ldak, b, ldbk, bsl, bedge, c, ldc,
                           alpha, beta);
}

#endif
