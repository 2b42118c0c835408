/*
 * gemm_generic.c — the portable micro-kernel: 6 x 16 tiles in plain C,
 * walked by cnn_gemm_walk (gemm_internal.h).
 *
 * Written so the compiler can vectorise the 16 columns of a tile (fixed
 * trip counts, restrict) on whatever the target is. Every element goes
 * through the same loop code, whatever tile it lands in, which is what
 * keeps results independent of the thread split.
 */
#include "gemm_internal.h"

#define MR CNN_GEMM_GENERIC_MR
#define NR CNN_GEMM_GENERIC_NR

static void tile(int m, int n, int kc, const float *restrict a, long ldak,
                 const float *restrict b, long ldbk, float *restrict c, long ldc, float alpha, float beta)
{
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < m; i++) {
            float ai = a[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[j];
        }
        a += ldak;
        b += ldbk;
    }
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < n; j++) ci[j] = alpha * acc[i][j];
        else
            for (int j = 0; j < n; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
}

void cnn_gemm_macro_generic(CNN_GEMM_MACRO_ARGS)
{
    cnn_gemm_walk(tile, MR, NR, mc, nc, kc, a, atile, arow, ldak, b, ldbk, bsl, bedge, c, ldc,
                  alpha, beta);
}
