/* bench_gemm.cpp — our SGEMM vs the naive loop vs OpenBLAS (when linked),
 * on square sizes and on the GEMMs the conv and dense layers issue.
 *
 * Counters: GFLOPs (rate, 2*M*N*K per call) and, on our benchmarks,
 * vs_openblas = OpenBLAS time / our time (> 1: we are faster), measured by
 * interleaving the two in the same run so load on the other core hits both.
 *
 * Run the comparison with `env -u OPENBLAS_CORETYPE ./bench_gemm`: the
 * environment may pin OpenBLAS to its Haswell (AVX2) kernels.
 */
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <omp.h>
#include <vector>

extern "C" {
#include "internal.h"
#include "kernels/gemm_internal.h"
}

#ifdef CNN_HAVE_OPENBLAS
/* declared here rather than through cblas.h, whose include path varies */
extern "C" {
void cblas_sgemm(int order, int transa, int transb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C,
                 int ldc);
void openblas_set_num_threads(int n);
}
static void blas(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float *C, int ldc)
{
    cblas_sgemm(101 /* RowMajor */, ta ? 112 : 111, tb ? 112 : 111, M, N, K, 1.0f, A, lda, B,
                ldb, 0.0f, C, ldc);
}
#endif

namespace {

struct Problem {
    int ta, tb, M, N, K, lda, ldb;
    std::vector<float> A, B, C;
    Problem(int ta_, int tb_, int M_, int N_, int K_)
        : ta(ta_), tb(tb_), M(M_), N(N_), K(K_), lda(ta_ ? M_ : K_), ldb(tb_ ? K_ : N_),
          A((size_t)M_ * K_), B((size_t)K_ * N_), C((size_t)M_ * N_)
    {
        uint32_t s = 7;
        for (auto *v : {&A, &B})
            for (auto &x : *v) {
                s = s * 1664525u + 1013904223u;
                x = (float)(s >> 8) / 16777216.0f - 0.5f;
            }
    }
    double flops() const { return 2.0 * M * N * K; }
};

void set_counters(benchmark::State &st, const Problem &p)
{
    st.counters["GFLOPs"] = benchmark::Counter(p.flops() * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

/* Seconds per call: this thread's CPU time on one thread (teammates'
 * builds on the other core then cost us little), wall time on several. */
double now(bool cpu)
{
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

template <class F> double best_seconds(F f, int reps, int rounds, bool cpu)
{
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t0 = now(cpu);
        for (int i = 0; i < reps; i++) f();
        best = std::min(best, (now(cpu) - t0) / reps);
    }
    return best;
}

/* args: ta, tb, M, N, K, threads */
void BM_ours(benchmark::State &st)
{
    Problem p((int)st.range(0), (int)st.range(1), (int)st.range(2), (int)st.range(3),
              (int)st.range(4));
    int threads = (int)st.range(5);
    cnn_set_threads(threads);
    auto ours = [&] {
        cnn_sgemm(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.0f,
                  p.C.data(), p.N);
    };
    for (auto _ : st) {
        ours();
        benchmark::DoNotOptimize(p.C.data());
        benchmark::ClobberMemory();
    }
    set_counters(st, p);
#ifdef CNN_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
    auto theirs = [&] {
        blas(p.ta, p.tb, p.M, p.N, p.K, p.A.data(), p.lda, p.B.data(), p.ldb, p.C.data(), p.N);
    };
    /* about 20 ms per round, best of 5 rounds each, interleaved */
    int reps = std::max(1, (int)(2e-2 * 100e9 / p.flops()));
    double tours = 1e30, ttheirs = 1e30;
    for (int r = 0; r < 5; r++) {
        tours = std::min(tours, best_seconds(ours, reps, 1, threads == 1));
        ttheirs = std::min(ttheirs, best_seconds(theirs, reps, 1, threads == 1));
    }
    st.counters["vs_openblas"] = ttheirs / tours;
    st.counters["blas_GFLOPs"] = p.flops() / ttheirs * 1e-9;
#endif
    st.SetLabel(cnn_simd_name());
}

#ifdef CNN_HAVE_OPENBLAS
void BM_openblas(benchmark::State &st)
{
    Problem p((int)st.range(0), (int)st.range(1), (int)st.range(2), (int)st.range(3),
              (int)st.range(4));
    openblas_set_num_threads((int)st.range(5));
    for (auto _ : st) {
        blas(p.ta, p.tb, p.M, p.N, p.K, p.A.data(), p.lda, p.B.data(), p.ldb, p.C.data(), p.N);
        benchmark::DoNotOptimize(p.C.data());
        benchmark::ClobberMemory();
    }
    set_counters(st, p);
}
#endif

void BM_naive(benchmark::State &st)
{
    Problem p((int)st.range(0), (int)st.range(1), (int)st.range(2), (int)st.range(3),
              (int)st.range(4));
    for (auto _ : st) {
        cnn_sgemm_ref(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.A.data(), p.lda, p.B.data(), p.ldb,
                      0.0f, p.C.data(), p.N);
        benchmark::DoNotOptimize(p.C.data());
        benchmark::ClobberMemory();
    }
    set_counters(st, p);
}

/* A loop of independent FMAs: the ceiling any kernel can reach here.
 * 12 chains in registers cover 2 pipes x 4-cycle latency with room. */
__attribute__((target("avx512f,fma"))) void BM_fma_peak(benchmark::State &st)
{
    typedef float v16 __attribute__((vector_size(64)));
    for (auto _ : st) {
        v16 z = {}, a = z + 1.0001f, b = z + 0.9999f;
        v16 c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z, c8 = z, c9 = z,
            c10 = z, c11 = z;
        for (int i = 0; i < 100000; i++) {
            /* contracted to one FMA each (-ffp-contract=fast is GCC's default) */
            c0 = c0 * a + b; c1 = c1 * a + b; c2 = c2 * a + b; c3 = c3 * a + b;
            c4 = c4 * a + b; c5 = c5 * a + b; c6 = c6 * a + b; c7 = c7 * a + b;
            c8 = c8 * a + b; c9 = c9 * a + b; c10 = c10 * a + b; c11 = c11 * a + b;
            asm volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5),
                              "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
        }
        v16 sum = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        benchmark::DoNotOptimize(sum);
    }
    st.counters["GFLOPs"] = benchmark::Counter(100000.0 * 12 * 16 * 2 * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

/* {ta, tb, M, N, K}: forward y = W*col, dW = dY*col^T, dcol = W^T*dY for
 * each conv layer of the presets; dense forward / dW / dX at batch 64. */
const int kLayerShapes[][5] = {
    {0, 0, 16, 196, 9},    {0, 1, 16, 9, 196},    {1, 0, 9, 196, 16},
    {0, 0, 6, 784, 25},    {0, 1, 6, 25, 784},    {1, 0, 25, 784, 6},
    {0, 0, 16, 100, 150},  {0, 1, 16, 150, 100},  {1, 0, 150, 100, 16},
    {0, 0, 32, 676, 9},    {0, 1, 32, 9, 676},    {1, 0, 9, 676, 32},
    {0, 0, 64, 576, 288},  {0, 1, 64, 288, 576},  {1, 0, 288, 576, 64},
    {0, 0, 64, 196, 576},  {0, 1, 64, 576, 196},  {1, 0, 576, 196, 64},
    {0, 1, 64, 128, 784},  {1, 0, 128, 784, 64},  {0, 0, 64, 784, 128},
    {0, 1, 64, 10, 128},   {1, 0, 10, 128, 64},   {0, 0, 64, 128, 10},
    {0, 1, 64, 128, 9216}, {1, 0, 128, 9216, 64}, {0, 0, 64, 9216, 128},
};

void square_args(benchmark::internal::Benchmark *b, int threads, int maxn)
{
    for (int n = 128; n <= maxn; n *= 2) b->Args({0, 0, n, n, n, threads});
}

void layer_args(benchmark::internal::Benchmark *b, int threads)
{
    for (auto &s : kLayerShapes) b->Args({s[0], s[1], s[2], s[3], s[4], threads});
}

} // namespace

BENCHMARK(BM_fma_peak);
BENCHMARK(BM_ours)
    ->Apply([](auto *b) { square_args(b, 1, 2048); })
    ->ArgNames({"ta", "tb", "M", "N", "K", "thr"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ours)
    ->Apply([](auto *b) { layer_args(b, 1); })
    ->ArgNames({"ta", "tb", "M", "N", "K", "thr"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ours)
    ->Apply([](auto *b) { square_args(b, 2, 2048); layer_args(b, 2); })
    ->ArgNames({"ta", "tb", "M", "N", "K", "thr"})
    ->Unit(benchmark::kMicrosecond);
#ifdef CNN_HAVE_OPENBLAS
BENCHMARK(BM_openblas)
    ->Apply([](auto *b) { square_args(b, 1, 1024); })
    ->ArgNames({"ta", "tb", "M", "N", "K", "thr"})
    ->Unit(benchmark::kMicrosecond);
#endif
BENCHMARK(BM_naive)
    ->Apply([](auto *b) {
        b->Args({0, 0, 128, 128, 128, 1});
        for (int i = 0; i < 12; i++) {
            auto &s = kLayerShapes[i];
            b->Args({s[0], s[1], s[2], s[3], s[4], 1});
        }
    })
    ->ArgNames({"ta", "tb", "M", "N", "K", "thr"})
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
