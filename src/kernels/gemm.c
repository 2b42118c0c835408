/*
 * gemm.c — single-precision GEMM: C = alpha * op(A) * op(B) + beta * C,
 * row-major. The fast path follows GotoBLAS/BLIS:
 *
 *   for jc over N in nc columns            (B panel, L3)
 *     for pc over K in kc steps            (never split across threads)
 *       pack op(B)[pc.., jc..] in NR-column slivers  (or read B in place)
 *       for ic over M in mc rows           (A block, L2)
 *         pack op(A)[ic.., pc..] in MR-row slivers
 *         macro-kernel: MR x NR register tiles of FMAs
 *
 * B is read in place (no packing) when it is stored untransposed and few A
 * rows share it: packing costs as much as the FMAs it feeds when M is small,
 * which is the common case for conv layers (M = filters). Likewise A stored
 * transposed is read in place (it already has the packed layout, with
 * stride lda), and for K <= 32 A is packed as one K x mc block rather than
 * in MR-row tiles (bench/NOTES.md, 2026-11-25).
 *
 * Threads split C into column (or row) blocks; each thread runs the serial
 * algorithm on its block with its own pack buffers. Since kc depends only
 * on K and every element is computed by the same arithmetic wherever it
 * lands (see gemm_internal.h), any thread count gives the same bits.
 */
#include "internal.h"
#include "gemm_internal.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ reference */

/* C = alpha * sum_k op(A)[i][k] op(B)[k][j] + beta * C — the definition,
 * accumulated in double so it is a trustworthy yardstick for the fast path. */
void cnn_sgemm_ref(int transa, int transb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float a = transa ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            /* beta == 0 must not read C: it may hold NaN */
            *c = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *c);
        }
    }
}

/* --------------------------------------------------------------- tiling */

int cnn_gemm_mtiles(int mc, int mr, int *starts)
{
    /* Full mr-row tiles, but a short remainder is merged with the last full
     * tile and the pair split evenly: 16 rows with mr = 14 run as 8 + 8,
     * not 14 + 2 (a 2-row tile leaves the FMA pipes mostly idle). */
    int nt = 0, r = 0;
    while (mc - r > 0) {
        int left = mc - r, h = mr;
        if (left > mr && left < 2 * mr) h = (left + 1) / 2;
        else if (left < mr) h = left;
        starts[nt++] = r;
        r += h;
    }
    starts[nt] = mc;
    return nt;
}

/* ----------------------------------------------------------------- plan */

/* Every choice the GEMM makes for a call, made once here from the shape
 * and the SIMD level; run(), run_single() and the threaded driver only
 * follow it. */
typedef struct {
    int mr, nr;     /* register tile */
    int kc, mc, nc; /* cache blocks */
    int direct_b;   /* read op(B) in place instead of packing it */
    int edge_copy;  /* direct_b: copy B's partial last sliver (no masked loads) */
    int direct_a;   /* read A in place: stored K x M it is already "packed" */
    int a_kmajor;   /* pack op(A) as one K x mc block instead of MR-row tiles */
    int row_a;      /* read untransposed A in place (cnn_gemm_macro_avx512_rowa) */
    int dot;        /* A * B^T as dot products (cnn_gemm_dot_avx512) */
    int pack_t;     /* transposing packs by 16 x 16 register transposes */
    int single;     /* one block (kc = K, B read in place): run_single */
    cnn_gemm_macro_fn macro;
} plan;

/* Untransposed A is read in place (plan.row_a) from this K on. Below it,
 * the per-tile set-up of 14 row addresses is not paid back: measured, K = 9
 * (16x196x9, 32x676x9) ran 5-7% slower in place than packed k-major (one
 * transpose per 16 rows), K = 10 (64x128x10) 7% faster. */
#define ROW_A_MIN_K 10
/* B is read in place up to this M (and A stored transposed) */
#define DIRECT_MAX_M 640

/* inline: the small GEMMs pay for every instruction here */
static inline __attribute__((always_inline)) plan make_plan(int M, int N, int K, int transa,
                                                            int transb)
{
    plan p;
    int kcmax;
    const int level = cnn_simd_level(), avx512 = level == CNN_SIMD_AVX512;
    switch (level) {
    case CNN_SIMD_AVX512:
        /* kc*NR*4 = 40 KB B sliver shared by every tile of the A block
         * (L1 48 KB); mc*kc*4 = 230 KB A block in the 1 MB L2 */
        p.mr = CNN_GEMM_AVX512_MR; p.nr = CNN_GEMM_AVX512_NR;
        kcmax = CNN_GEMM_AVX512_MAX_KC; p.mc = 14 * 12; p.nc = 4096;
        p.macro = cnn_gemm_macro_avx512;
        break;
    case CNN_SIMD_AVX2:
        p.mr = CNN_GEMM_AVX2_MR; p.nr = CNN_GEMM_AVX2_NR;
        kcmax = 256; p.mc = 6 * 24; p.nc = 4096;
        p.macro = cnn_gemm_macro_avx2;
        break;
    default:
        p.mr = CNN_GEMM_GENERIC_MR; p.nr = CNN_GEMM_GENERIC_NR;
        kcmax = 256; p.mc = 6 * 16; p.nc = 4096;
        p.macro = cnn_gemm_macro_generic;
        break;
    }
    /* kc from K alone (equal blocks): the thread split must not change it;
     * no division in the common case (a few percent of a K = 9 GEMM) */
    if (K <= kcmax) {
        p.kc = K;
    } else {
        int nb = (K + kcmax - 1) / kcmax;
        p.kc = (K + nb - 1) / nb;
    }
    (void)N;
    p.pack_t = avx512;
    /* Reading B in place beat packing it on every conv and dense shape
     * measured (bench/NOTES.md); packing wins back only on large squares,
     * where TLB and prefetch streams start to matter. */
    p.direct_b = !transb && M <= DIRECT_MAX_M;
    p.edge_copy = p.direct_b && !avx512;
    /* A stored transposed holds each k's rows contiguously, as the packed
     * layout does but with stride lda: copying it only costs time (20% of
     * the 150x100x16 conv dcol GEMM). */
    p.direct_a = transa && M <= DIRECT_MAX_M;
    /* With K <= 32 the tile's FMAs are few and packing A in MR-row tiles
     * (one 16 x 16 transpose per tile, even for the 8-row tiles of M = 16)
     * cost 5-8% of a K = 9 conv GEMM. Packed as the K x M matrix that
     * transposed storage would give, it takes one transpose per 16 rows and
     * is read like transposed A; the short k-rows keep the strided reads
     * inside L1. */
    p.a_kmajor = !transa && avx512 && K <= 32;
    /* Untransposed A read in place by broadcasts from its rows: the
     * broadcasts cost the same from any address, and packing A was 5-8% of
     * the small conv GEMMs (bench/NOTES.md, 2026-11-25). */
    p.row_a = !transa && p.direct_b && avx512 && K >= ROW_A_MIN_K;
    if (p.row_a) p.a_kmajor = 0;
    p.dot = !transa && transb && avx512 && (long)M * N <= 1024 && K >= 32;
    /* The single-block GEMMs of small conv and dense layers go straight to
     * the kernel: no thread buffers, no block loops. For a 16x196x9 GEMM
     * (~1300 cycles) those cost ~13% (perf, bench/NOTES.md, 2026-11-25). One
     * kc block, B read in place, and A read in place or packed k-major
     * (K < ROW_A_MIN_K) on the stack; mc = M, nc = N: the same arithmetic
     * per element as the blocked loops, so the same bits. */
    p.single = avx512 && K <= kcmax && p.direct_b;
    return p;
}

/* -------------------------------------------------------- pack buffers */

/* Per-thread pack buffers, grown on demand and kept: OpenMP reuses its
 * threads, so the steady state allocates nothing. The holders live on a
 * global list (so a leak checker sees them as reachable) and a thread's
 * exit frees its buffers and hands the holder to the next new thread. */
typedef struct bufs {
    float *pa, *pb;
    size_t pa_cap, pb_cap;
    int in_use;
    struct bufs *next;
} bufs;

static bufs *g_bufs;                 /* every holder ever made */
static _Thread_local bufs *tl_bufs;  /* this thread's */
static pthread_key_t g_bufs_key;
static pthread_once_t g_bufs_once = PTHREAD_ONCE_INIT;

static void bufs_release(void *p)
{
    bufs *b = p;
    free(b->pa);
    free(b->pb);
    b->pa = b->pb = NULL;
    b->pa_cap = b->pb_cap = 0;
    __atomic_store_n(&b->in_use, 0, __ATOMIC_RELEASE);
}

static void bufs_key_init(void) { pthread_key_create(&g_bufs_key, bufs_release); }

static bufs *thread_bufs(void)
{
    if (tl_bufs) return tl_bufs;
    pthread_once(&g_bufs_once, bufs_key_init);
    bufs *b;
    for (b = __atomic_load_n(&g_bufs, __ATOMIC_ACQUIRE); b; b = b->next) {
        int zero = 0;
        if (__atomic_compare_exchange_n(&b->in_use, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            break;
    }
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
        b->in_use = 1;
        b->next = __atomic_load_n(&g_bufs, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&g_bufs, &b->next, b, 1, __ATOMIC_RELEASE,
                                            __ATOMIC_RELAXED))
            ;
    }
    pthread_setspecific(g_bufs_key, b);
    tl_bufs = b;
    return b;
}

static float *grow(float **buf, size_t *cap, size_t n)
{
    if (*cap >= n) return *buf;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(*buf);
    *buf = p;
    *cap = n;
    return p;
}

/* ----------------------------------------------------------------- pack */

/* op(A)[r.., p0..p0+kc) in tiles as cnn_gemm_mtiles cuts them. */
static void pack_a(const plan *pl, int transa, const float *A, int lda, int r, int mc,
                   int p0, int kc, float *pa)
{
    const int mr = pl->mr;
    int starts[64 + 1];
    int nt = cnn_gemm_mtiles(mc, mr, starts);
    for (int t = 0; t < nt; t++) {
        int i0 = r + starts[t], m = starts[t + 1] - starts[t];
        float *d = pa + (size_t)t * kc * mr;
        if (!transa && pl->pack_t) {
            cnn_transpose_avx512(A + (size_t)i0 * lda + p0, lda, m, kc, d, mr, m);
        } else if (transa) {
            /* A stored K x M: each k gives m contiguous floats */
            for (int k = 0; k < kc; k++) {
                const float *s = A + (size_t)(p0 + k) * lda + i0;
                for (int i = 0; i < m; i++) d[k * mr + i] = s[i];
            }
        } else {
            for (int i = 0; i < m; i++) {
                const float *s = A + (size_t)(i0 + i) * lda + p0;
                for (int k = 0; k < kc; k++) d[k * mr + i] = s[k];
            }
        }
    }
}

/* op(B)[p0..p0+kc, j0..j0+nc) in nr-column slivers, zero-padded. Plain
 * loops, not memcpy/memset: the rows are 1..32 floats and a library call
 * per row costs more than the copy (K = 9 conv GEMMs). */
static void pack_b(const plan *pl, int transb, const float *B, int ldb, int p0, int kc,
                   int j0, int nc, float *pb)
{
    const int nr = pl->nr;
    for (int s = 0; s * nr < nc; s++) {
        int n = nc - s * nr < nr ? nc - s * nr : nr;
        float *restrict d = pb + (size_t)s * kc * nr;
        if (transb && pl->pack_t) {
            const float *bt = B + (size_t)(j0 + s * nr) * ldb + p0;
            cnn_transpose_avx512(bt, ldb, n < 16 ? n : 16, kc, d, nr, 16);
            cnn_transpose_avx512(bt + (size_t)16 * ldb, ldb, n - 16, kc, d + 16, nr, 16);
        } else if (transb) {
            /* B stored N x K: column j of op(B) is row j of B */
            for (int j = 0; j < n; j++) {
                const float *restrict src = B + (size_t)(j0 + s * nr + j) * ldb + p0;
                for (int k = 0; k < kc; k++) d[(size_t)k * nr + j] = src[k];
            }
            for (int k = 0; k < kc && n < nr; k++)
                for (int j = n; j < nr; j++) d[(size_t)k * nr + j] = 0.0f;
        } else {
            const float *restrict src = B + (size_t)p0 * ldb + j0 + s * nr;
            if (n == nr) {
                for (int k = 0; k < kc; k++, src += ldb, d += nr)
                    for (int j = 0; j < nr; j++) d[j] = src[j];
            } else {
                for (int k = 0; k < kc; k++, src += ldb, d += nr)
                    for (int j = 0; j < nr; j++) d[j] = j < n ? src[j] : 0.0f;
            }
        }
    }
}

/* --------------------------------------------------------------- driver */

static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* The serial algorithm on one block of C. Returns 0, or -1 if a pack buffer
 * could not be allocated (C untouched then). */
static int run(const plan *pl, int transa, int transb, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta, float *C,
               int ldc)
{
    const int mr = pl->mr, nr = pl->nr, kc0 = pl->kc;
    const int mcb = pl->mc < M ? pl->mc : M;
    const int ncb = pl->direct_b ? N : (pl->nc < N ? pl->nc : N);
    float *pa = NULL, *pb = NULL;
    if (!(pl->direct_b && !pl->edge_copy && (pl->direct_a || pl->row_a))) {
        /* something is packed; with both operands read in place the
         * small-GEMM path skips the buffer look-up altogether */
        size_t na = (size_t)((mcb + mr - 1) / mr) * mr * kc0;
        size_t nb = pl->direct_b ? (size_t)kc0 * nr : (size_t)((ncb + nr - 1) / nr) * nr * kc0;
        bufs *tb = thread_bufs();
        if (!tb) return -1;
        pa = grow(&tb->pa, &tb->pa_cap, na);
        pb = grow(&tb->pb, &tb->pb_cap, nb);
        if (!pa || !pb) return -1;
    }

    for (int jc = 0; jc < N; jc += ncb) {
        int nc = N - jc < ncb ? N - jc : ncb;
        for (int pc = 0; pc < K; pc += kc0) {
            int kc = K - pc < kc0 ? K - pc : kc0;
            float beta_k = pc == 0 ? beta : 1.0f;
            const float *b, *bedge = NULL;
            long ldbk, bsl;
            if (pl->direct_b) {
                b = B + (size_t)pc * ldb + jc;
                ldbk = ldb;
                bsl = nr;
                if (nc % nr && pl->edge_copy) {
                    /* the last sliver is narrower than a vector row: copy
                     * it padded rather than read past the end of B */
                    pack_b(pl, 0, B, ldb, pc, kc, jc + nc / nr * nr, nc % nr, pb);
                    bedge = pb;
                }
            } else {
                pack_b(pl, transb, B, ldb, pc, kc, jc, nc, pb);
                b = pb;
                ldbk = nr;
                bsl = (long)kc * nr;
            }
            for (int ic = 0; ic < M; ic += mcb) {
                int mc = M - ic < mcb ? M - ic : mcb;
                float *c = C + (size_t)ic * ldc + jc;
                if (pl->row_a) {
                    cnn_gemm_macro_avx512_rowa(mc, nc, kc, A + (size_t)ic * lda + pc, lda, b,
                                               ldbk, bsl, c, ldc, alpha, beta_k);
                } else if (pl->direct_a) {
                    pl->macro(mc, nc, kc, A + (size_t)pc * lda + ic, 0, 1, lda, b, ldbk, bsl,
                              bedge, c, ldc, alpha, beta_k);
                } else if (pl->a_kmajor) {
                    for (int i = 0; i < mc; i += 16) {
                        int rows = mc - i < 16 ? mc - i : 16;
                        cnn_transpose_avx512(A + (size_t)(ic + i) * lda + pc, lda, rows, kc,
                                             pa + i, mc, rows);
                    }
                    pl->macro(mc, nc, kc, pa, 0, 1, mc, b, ldbk, bsl, bedge, c, ldc, alpha,
                              beta_k);
                } else {
                    pack_a(pl, transa, A, lda, ic, mc, pc, kc, pa);
                    pl->macro(mc, nc, kc, pa, (long)kc * mr, 0, mr, b, ldbk, bsl, bedge, c,
                              ldc, alpha, beta_k);
                }
            }
        }
    }
    return 0;
}

/* Block [m0, m1) x [n0, n1) of C, falling back to the reference loop if
 * memory runs out (the GEMM has no error channel; slow beats wrong). */
static void run_block(const plan *pl, int transa, int transb, int m0, int m1, int n0,
                      int n1, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc)
{
    const float *a = transa ? A + m0 : A + (size_t)m0 * lda;
    const float *b = transb ? B + (size_t)n0 * ldb : B + n0;
    float *c = C + (size_t)m0 * ldc + n0;
    if (run(pl, transa, transb, m1 - m0, n1 - n0, K, alpha, a, lda, b, ldb, beta, c, ldc))
        cnn_sgemm_ref(transa, transb, m1 - m0, n1 - n0, K, alpha, a, lda, b, ldb, beta, c,
                      ldc);
}

/* A single-block plan (plan.single): the whole GEMM in one call of the
 * macro-kernel. The k-major packing of A for K < ROW_A_MIN_K goes to a
 * stack buffer of at most ROW_A_MIN_K x DIRECT_MAX_M floats (25 KB). */
static inline __attribute__((always_inline)) void
run_single(const plan *pl, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc)
{
    const int nr = pl->nr;
    if (pl->direct_a) {
        cnn_gemm_macro_avx512(M, N, K, A, 0, 1, lda, B, ldb, nr, NULL, C, ldc, alpha, beta);
    } else if (pl->row_a) {
        cnn_gemm_macro_avx512_rowa(M, N, K, A, lda, B, ldb, nr, C, ldc, alpha, beta);
    } else {
        /* a_kmajor: op(A) as one K x M block, one transpose per 16 rows */
        _Alignas(64) float pa[(ROW_A_MIN_K - 1) * DIRECT_MAX_M];
        for (int i = 0; i < M; i += 16) {
            int rows = M - i < 16 ? M - i : 16;
            cnn_transpose_avx512(A + (size_t)i * lda, lda, rows, K, pa + i, M, rows);
        }
        cnn_gemm_macro_avx512(M, N, K, pa, 0, 1, M, B, ldb, nr, NULL, C, ldc, alpha, beta);
    }
}

void cnn_sgemm_serial(int transa, int transb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const plan pl = make_plan(M, N, K, transa, transb);
    if (pl.dot) cnn_gemm_dot_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (pl.single) run_single(&pl, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else run_block(&pl, transa, transb, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The dot path (A * B^T, few rows: one image through a dense layer) on nt
 * threads. Such a GEMM only streams B's rows once (pytorchnet.fc1 at batch
 * 1: 4.7 MB of weights, 2 x 128 FLOPs per 36 KB row), so it runs at the
 * memory speed of each core, and the cores do not stream alike (the second
 * vCPU is at times 8-16% slower, FINDINGS F5). A fixed half each waits for
 * the slower one; instead the threads work in pairs on a range of B's rows,
 * one from each end, DOT_CHUNK rows per claim, and meet wherever their
 * speeds put the meeting point. Each thread still reads one contiguous run
 * of rows (interleaved chunks made the prefetchers fetch the other core's
 * lines, as for conv bands in bench/NOTES.md), and an element's dot product
 * does not depend on the chunk it falls in (cnn_gemm_dot_avx512), so the
 * bits are those of one thread. With an odd count the last thread has a
 * range of half a pair's size to itself. */
#define DOT_CHUNK 8

/* One threaded GEMM call: the operands, its plan, and how it is split. */
typedef struct {
    int transa, transb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    const plan *pl;
    /* the dot path: chunks of DOT_CHUNK columns, the share count T, and
     * per pair the chunks claimed in its range */
    int nch, T;
    struct {
        _Alignas(64) int taken;
    } *pair;
    /* the tile path: units of un columns (split_n) or um rows */
    int split_n, un, um;
} gemm_job;

/* Shares [t0, t1) of the dot path (one per thread, unless OpenMP gave
 * fewer threads than asked: then one thread plays several in turn). */
static void dot_shares(void *ctx, long t0, long t1, int thread)
{
    const gemm_job *j = ctx;
    for (int t = (int)t0; t < (int)t1; t++) {
        const int T = j->T, p = t / 2;
        /* pair p covers the shares of threads 2p and 2p + 1 (if it exists) */
        const int c0 = (int)((long)j->nch * (2 * p) / T);
        const int c1 = (int)((long)j->nch * (2 * p + 2 < T ? 2 * p + 2 : T) / T);
        const int forward = t % 2 == 0;
        for (int mine = 0;; mine++) {
            int k = __atomic_fetch_add(&j->pair[p].taken, 1, __ATOMIC_RELAXED);
            if (k >= c1 - c0) break;
            int c = forward ? c0 + mine : c1 - 1 - mine;
            int j0 = c * DOT_CHUNK, nj = j->N - j0 < DOT_CHUNK ? j->N - j0 : DOT_CHUNK;
            cnn_gemm_dot_avx512(j->M, nj, j->K, j->alpha, j->A, j->lda, j->B + (size_t)j0 * j->ldb,
                                j->ldb, j->beta, j->C + j0, j->ldc);
        }
    }
}

static void dot_threads(int nt, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc)
{
    /* M * N <= 1024 on the dot path, so at most 128 chunks of 8 columns,
     * and nt <= chunks: at most 64 pairs */
    struct {
        _Alignas(64) int taken;
    } pair[128];
    const int nch = (N + DOT_CHUNK - 1) / DOT_CHUNK;
    if (nt > nch) nt = nch;
    for (int p = 0; p < (nt + 1) / 2; p++) pair[p].taken = 0;
    gemm_job j = {.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha,
                  .beta = beta, .A = A, .B = B, .C = C, .nch = nch, .T = nt,
                  .pair = (void *)pair};
    cnn_parallel_for(nt, nt, CNN_SPLIT_EVEN, 2.0 * M * N * K, dot_shares, &j);
}

/* Units [u0, u1) of the tile path: a run of columns or of rows of C */
static void tile_units(void *ctx, long u0, long u1, int t)
{
    const gemm_job *j = ctx;
    if (j->split_n) {
        int n0 = (int)u0 * j->un, n1 = (int)u1 * j->un < j->N ? (int)u1 * j->un : j->N;
        run_block(j->pl, j->transa, j->transb, 0, j->M, n0, n1, j->K, j->alpha, j->A, j->lda,
                  j->B, j->ldb, j->beta, j->C, j->ldc);
    } else {
        int m0 = (int)u0 * j->um, m1 = (int)u1 * j->um < j->M ? (int)u1 * j->um : j->M;
        run_block(j->pl, j->transa, j->transb, m0, m1, 0, j->N, j->K, j->alpha, j->A, j->lda,
                  j->B, j->ldb, j->beta, j->C, j->ldc);
    }
}

void cnn_sgemm_threads(int nt, int transa, int transb, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C,
                       int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    nt = cnn_threads_for(2.0 * M * N * K, nt);
    if (nt <= 1) {
        cnn_work_add(2.0 * M * N * K);
        cnn_sgemm_serial(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    plan pl = make_plan(M, N, K, transa, transb);
    if (pl.dot) {
        dot_threads(nt, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split along N in half-sliver units (finer units balance 2 threads on
     * N = 196 better), or along M in tiles when N is too narrow. */
    int un = pl.nr / 2, um = pl.mr;
    int unitsN = (N + un - 1) / un, unitsM = (M + um - 1) / um;
    int split_n = unitsN >= 2 * nt || unitsN >= unitsM;
    gemm_job j = {.transa = transa, .transb = transb, .M = M, .N = N, .K = K, .lda = lda,
                  .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
                  .pl = &pl, .split_n = split_n, .un = un, .um = um};
    cnn_parallel_for(nt, split_n ? unitsN : unitsM, CNN_SPLIT_EVEN, 2.0 * M * N * K, tile_units,
                     &j);
}

void cnn_sgemm(int transa, int transb, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    /* the size test first: cnn_threads() asks OpenMP, which cost 2% of a
     * 16x196x9 GEMM that runs on one thread anyway */
    const int nt = 2.0 * M * N * K < CNN_PARALLEL_MIN_FLOPS || omp_in_parallel() ? 1 : cnn_threads();
    cnn_sgemm_threads(nt, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
