/*
 * gemm_internal.h — what gemm.c shares with its per-instruction-set
 * macro-kernels (gemm_avx512.c, gemm_avx2.c, gemm_generic.c) and the tests.
 *
 * The structure is GotoBLAS/BLIS: gemm.c packs a block of op(A) (mc x kc) in
 * MR-row slivers and, when it pays, a panel of op(B) (kc x nc) in NR-column
 * slivers, then calls the macro-kernel of the chosen level, which walks the
 * block in MR x NR register tiles.
 *
 * Every element of C is computed the same way whatever the tiling or thread
 * split: acc = FMA chain over k (in order) within one kc block, then
 * c = alpha*acc (beta == 0) or c = fma(acc, alpha, beta*c). Only kc depends
 * on anything, and it depends on K alone — so results are bit-identical for
 * any thread count.
 */
#ifndef CNN_GEMM_INTERNAL_H
#define CNN_GEMM_INTERNAL_H

#include "internal.h"
#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Packed A layout: tile t of an mc-row block starts at pa + t*kc*MR; inside
 * it element (row i, k) is at [k*MR + i]. Tile rows come from
 * cnn_gemm_mtiles so the packer and the macro-kernel agree. */
int cnn_gemm_mtiles(int mc, int mr, int *starts /* ntiles + 1 entries */);

/* C[0..mc, 0..nc) = alpha * op(A) * B + beta * C (beta == 0: C not read).
 * op(A): the tile that is the t-th of the block and starts at row r0 is
 * read from a + t*atile + r0*arow, element (row i, step k) at [k*ldak + i].
 * Packed A: atile = kc*MR, arow = 0, ldak = MR. A stored transposed
 * (K x M) already has that layout and is read in place: atile = 0,
 * arow = 1, ldak = lda.
 * B sliver s (NR columns) row k is at b + s*bsl + k*ldbk. If bedge != NULL
 * the last, partial sliver is read from bedge instead (row stride NR,
 * zero-padded): used when B is read in place and the edge must not be read
 * past its end. The AVX-512 kernel reads edges with masked loads and is
 * always given bedge == NULL. */
typedef void (*cnn_gemm_macro_fn)(int mc, int nc, int kc, const float *a, long atile,
                                  long arow, long ldak, const float *b, long ldbk, long bsl,
                                  const float *bedge, float *c, long ldc, float alpha,
                                  float beta);

#define CNN_GEMM_MACRO_ARGS                                                             \
    int mc, int nc, int kc, const float *a, long atile, long arow, long ldak,           \
        const float *b, long ldbk, long bsl, const float *bedge, float *c, long ldc,    \
        float alpha, float beta
void cnn_gemm_macro_generic(CNN_GEMM_MACRO_ARGS);
void cnn_gemm_macro_avx2(CNN_GEMM_MACRO_ARGS);
void cnn_gemm_macro_avx512(CNN_GEMM_MACRO_ARGS);

/* The AVX-512 macro-kernel with op(A) row-major and read in place: element
 * (row i, step k) at a[i*lda + k]. For small GEMMs with A untransposed,
 * where packing A (a 16 x 16 transpose per 16 rows and 16 k) cost 5-8% of
 * the whole GEMM; B as for cnn_gemm_macro_avx512, edge by masked loads. */
void cnn_gemm_macro_avx512_rowa(int mc, int nc, int kc, const float *a, long lda,
                                const float *b, long ldbk, long bsl, float *c, long ldc,
                                float alpha, float beta);

/* C = alpha * A * B^T + beta * C with A (M x K) and B (N x K) both stored
 * K-contiguous, as dot products: no packing at all. For the weight
 * gradients of small conv layers (M = filters, N = C*kh*kw small, K =
 * pixels large), where packing both operands would cost more than the
 * FMAs. Each element: 16 lane sums over k, one horizontal sum, then
 * alpha/beta — the same for every element, whatever the split. */
void cnn_gemm_dot_avx512(int M, int N, int K, float alpha, const float *A, long lda,
                         const float *B, long ldb, float beta, float *C, long ldc);

/* Register tile sizes of each level. */
#define CNN_GEMM_GENERIC_MR 6
#define CNN_GEMM_GENERIC_NR 16
#define CNN_GEMM_AVX2_MR 6
#define CNN_GEMM_AVX2_NR 16
#define CNN_GEMM_AVX512_MR 14
#define CNN_GEMM_AVX512_NR 32
/* The AVX-512 kc block's upper bound: kc*NR*4 = 40 KB of B rows in L1. */
#define CNN_GEMM_AVX512_MAX_KC 320

/* The SIMD level (src/core/cpu.c) under the names the tests and
 * benchmarks use. */
static inline int cnn_gemm_simd_level(void) { return cnn_simd_level(); }
static inline int cnn_gemm_set_simd_level(int level) { return cnn_simd_set_level(level); }

/* A micro-kernel of the portable and AVX2 macro-kernels: C (m x n, m <= MR,
 * n <= NR, row stride ldc) = alpha * A B + beta * C (beta == 0: C not
 * read) over kc steps, A's element (row i, step k) at a[k*ldak + i], B's
 * row k at b + k*ldbk (NR floats readable). */
typedef void (*cnn_gemm_tile_fn)(int m, int n, int kc, const float *a, long ldak,
                                 const float *b, long ldbk, float *c, long ldc, float alpha,
                                 float beta);

/* The tile walk those two macro-kernels share (CNN_GEMM_MACRO_ARGS as for
 * cnn_gemm_macro_fn): every mr x nr tile of the block, sliver by sliver,
 * rows as cnn_gemm_mtiles cuts them. Inlined into each, so `tile` is a
 * direct call. (The AVX-512 macro-kernel walks panels and narrow edges its
 * own way: gemm_avx512.c.) */
static inline __attribute__((always_inline)) void
cnn_gemm_walk(cnn_gemm_tile_fn tile, const int mr, const int nr, CNN_GEMM_MACRO_ARGS)
{
    int starts[64 + 1];
    int nt = cnn_gemm_mtiles(mc, mr, starts);
    int nsl = (nc + nr - 1) / nr;
    for (int s = 0; s < nsl; s++) {
        int n = nc - s * nr < nr ? nc - s * nr : nr;
        const float *bs = b + s * bsl;
        long ldk = ldbk;
        if (bedge && n < nr) {
            bs = bedge;
            ldk = nr;
        }
        for (int t = 0; t < nt; t++) {
            int r0 = starts[t];
            tile(starts[t + 1] - r0, n, kc, a + t * atile + r0 * arow, ldak, bs, ldk,
                 c + r0 * ldc + s * nr, ldc, alpha, beta);
        }
    }
}

#ifdef __cplusplus
}
#endif

#endif
