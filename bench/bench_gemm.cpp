/* bench_gemm.cpp — our SGEMM vs the naive loop vs OpenBLAS (when linked),
 * on square sizes and on the GEMMs the conv and dense layers issue.
 *
 * Counters: GFLOPs (rate, 2*M*N*K per call) and, on our benchmarks,
 * vs_openblas = OpenBLAS time / our time (> 1: we are faster), measured by
 * interleaving the two in the same run so load on the other core hits both.
 *
 * OpenBLAS must run its best kernel for this CPU: the kernel it picked
 * (openblas_get_corename) is printed and put in the JSON context. When it
 * picked one without the CPU's vector width (a CPU its version does not
 * know falls back to a generic kernel, and the environment may pin a
 * narrower one), the program runs itself again with OPENBLAS_CORETYPE set
 * to the kernel for what the CPU has (SkylakeX for AVX-512, Haswell for
 * AVX2); if the kernel is still narrower, no ratio against OpenBLAS is
 * reported.
 *
 * Names: BM_ours/<group>/<layer.op>/ta:../tb:../M:../N:../K:../thr:.. (the
 * groups are described above kShapes); bench/make_results.py reads them.
 */
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <strings.h>
#include <cstring>
#include <string>
#include <omp.h>
#include <unistd.h>
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
char *openblas_get_corename(void);
}
static void blas(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float *C, int ldc)
{
    cblas_sgemm(101 /* RowMajor */, ta ? 112 : 111, tb ? 112 : 111, M, N, K, 1.0f, A, lda, B,
                ldb, 0.0f, C, ldc);
}
#endif

namespace {

/* OpenBLAS's kernel, and whether it uses the CPU's vector width */
const char *g_blas_core = "none";
bool g_blas_fair = true;

#ifdef CNN_HAVE_OPENBLAS
/* The kernel OpenBLAS should run here, or NULL if the one it runs will do */
const char *blas_core_wanted(const char *core)
{
    auto is = [&](const char *name) { return strcasecmp(core, name) == 0; };
    const bool avx512 = is("SkylakeX") || is("CooperLake") || is("SapphireRapids");
    if (cnn_cpu_has_avx512() && !avx512) return "SkylakeX";
    if (cnn_cpu_has_avx2() && !avx512 && !is("Haswell") && !is("Zen")) return "Haswell";
    return nullptr;
}
#endif

/* one benchmark's GEMM: op shapes and our thread count */
struct Gemm {
    int ta, tb, M, N, K, threads;
};

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

void BM_ours(benchmark::State &st, Gemm g)
{
    Problem p(g.ta, g.tb, g.M, g.N, g.K);
    int threads = g.threads;
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
    if (g_blas_fair) {
        st.counters["vs_openblas"] = ttheirs / tours;
        st.counters["blas_GFLOPs"] = p.flops() / ttheirs * 1e-9;
    }
#endif
    st.SetLabel(cnn_simd_name());
}

#ifdef CNN_HAVE_OPENBLAS
void BM_openblas(benchmark::State &st, Gemm g)
{
    Problem p(g.ta, g.tb, g.M, g.N, g.K);
    if (!g_blas_fair) {
        st.SkipWithError((std::string("OpenBLAS runs its ") + g_blas_core +
                          " kernel, narrower than this CPU's vectors").c_str());
        return;
    }
    openblas_set_num_threads(g.threads);
    for (auto _ : st) {
        blas(p.ta, p.tb, p.M, p.N, p.K, p.A.data(), p.lda, p.B.data(), p.ldb, p.C.data(), p.N);
        benchmark::DoNotOptimize(p.C.data());
        benchmark::ClobberMemory();
    }
    set_counters(st, p);
}
#endif

void BM_naive(benchmark::State &st, Gemm g)
{
    Problem p(g.ta, g.tb, g.M, g.N, g.K);
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

/* The GEMMs the layers issue now, {group, where, ta, tb, M, N, K}, found
 * by tracing cnn_sgemm/cnn_sgemm_serial through bench_conv's cases (batch
 * 64, forward and backward, and fwd1: one image) and bench_train's train
 * (batch 64 in shards of 16), latency (batch 1) and infer (batch 1000 in
 * shards of 16 and 15) runs of simplecnn, lenet5 and pytorchnet on AVX-512
 * at commit 2acf601. Groups:
 *   conv     the conv layers' GEMMs. Layers of at most 32 filters use the
 *            shifted-plane kernel on AVX-512 and no GEMM; 3x3 stride-1
 *            layers with many channels run forward, dx and dW by Winograd
 *            F(4x4, 3x3): one GEMM per transform position, of (tiles x
 *            channels) by (channels x filters) with tiles = the 4x4 output
 *            tiles of an image (pytorchnet.conv2: 36 forward, 49 = 35 + 14
 *            for dx; "half": one image on 2 threads), and for dW (filters x
 *            channels) = dY^T X over the tiles, accumulated image by image
 *            (beta 0, then 1). pytorchnet.conv1's dx (W^T*dY) only in
 *            bench_conv (a model's first layer skips it).
 *   dense16  dense layers inside a training/inference shard of 16 images:
 *            fwd x*W^T, dx = dY*W, dW = dY^T*x.
 *   dense1   single-image inference (latency).
 *   legacy   the per-image im2col GEMMs of the small conv layers, which a
 *            CPU without AVX-512 still runs (no shifted-plane kernel there).
 * Re-trace when the conv layers change. */
struct Shape {
    const char *group, *where;
    int ta, tb, M, N, K;
};
const Shape kShapes[] = {
    {"conv", "pytorchnet.conv2.fwd_wino", 0, 0, 36, 64, 32},
    {"conv", "pytorchnet.conv2.fwd_wino_half", 0, 0, 18, 64, 32},
    {"conv", "pytorchnet.conv2.dx_wino35", 0, 0, 35, 32, 64},
    {"conv", "pytorchnet.conv2.dx_wino14", 0, 0, 14, 32, 64},
    {"conv", "pytorchnet.conv2.dW_wino", 1, 0, 64, 32, 36},
    {"conv", "pytorchnet.conv1.dx", 1, 0, 9, 676, 32},
    {"conv", "deep.conv64.fwd_dx_wino", 0, 0, 16, 64, 64},
    {"conv", "deep.conv64.fwd_wino_half", 0, 0, 8, 64, 64},
    {"conv", "deep.conv64.dW_wino", 1, 0, 64, 64, 16},

    {"dense16", "simplecnn.fc.fwd", 0, 1, 16, 10, 784},
    {"dense16", "simplecnn.fc.dx", 0, 0, 16, 784, 10},
    {"dense16", "simplecnn.fc.dW", 1, 0, 10, 784, 16},
    {"dense16", "lenet5.fc1.fwd", 0, 1, 16, 120, 400},
    {"dense16", "lenet5.fc1.dx", 0, 0, 16, 400, 120},
    {"dense16", "lenet5.fc1.dW", 1, 0, 120, 400, 16},
    {"dense16", "lenet5.fc2.fwd", 0, 1, 16, 84, 120},
    {"dense16", "lenet5.fc2.dx", 0, 0, 16, 120, 84},
    {"dense16", "lenet5.fc2.dW", 1, 0, 84, 120, 16},
    {"dense16", "lenet5.fc3.fwd", 0, 1, 16, 10, 84},
    {"dense16", "lenet5.fc3.dx", 0, 0, 16, 84, 10},
    {"dense16", "lenet5.fc3.dW", 1, 0, 10, 84, 16},
    {"dense16", "pytorchnet.fc1.fwd", 0, 1, 16, 128, 9216},
    {"dense16", "pytorchnet.fc1.dx", 0, 0, 16, 9216, 128},
    {"dense16", "pytorchnet.fc1.dW", 1, 0, 128, 9216, 16},
    {"dense16", "pytorchnet.fc2.fwd", 0, 1, 16, 10, 128},
    {"dense16", "pytorchnet.fc2.dx", 0, 0, 16, 128, 10},
    {"dense16", "pytorchnet.fc2.dW", 1, 0, 10, 128, 16},

    {"dense1", "simplecnn.fc.fwd", 0, 1, 1, 10, 784},
    {"dense1", "lenet5.fc1.fwd", 0, 1, 1, 120, 400},
    {"dense1", "lenet5.fc2.fwd", 0, 1, 1, 84, 120},
    {"dense1", "lenet5.fc3.fwd", 0, 1, 1, 10, 84},
    {"dense1", "pytorchnet.fc1.fwd", 0, 1, 1, 128, 9216},
    {"dense1", "pytorchnet.fc2.fwd", 0, 1, 1, 10, 128},

    {"legacy", "simplecnn.conv1.fwd", 0, 0, 16, 196, 9},
    {"legacy", "simplecnn.conv1.dW", 0, 1, 16, 9, 196},
    {"legacy", "simplecnn.conv1.dx", 1, 0, 9, 196, 16},
    {"legacy", "lenet5.conv1.fwd", 0, 0, 6, 784, 25},
    {"legacy", "lenet5.conv1.dW", 0, 1, 6, 25, 784},
    {"legacy", "lenet5.conv1.dx", 1, 0, 25, 784, 6},
    {"legacy", "lenet5.conv2.fwd", 0, 0, 16, 100, 150},
    {"legacy", "lenet5.conv2.dW", 0, 1, 16, 150, 100},
    {"legacy", "lenet5.conv2.dx", 1, 0, 150, 100, 16},
    {"legacy", "pytorchnet.conv1.fwd", 0, 0, 32, 676, 9},
    {"legacy", "pytorchnet.conv1.dW", 0, 1, 32, 9, 676},
    {"legacy", "pytorchnet.conv1.dx", 1, 0, 9, 676, 32},
};

/* Layer shapes that run on several threads in the models: one image
 * through pytorchnet.fc1 (the only layer GEMM of the presets above
 * CNN_PARALLEL_MIN_FLOPS that is not inside a shard or an image loop). */
bool runs_threaded(const Shape &s) { return !strcmp(s.group, "dense1") && s.K >= 9216; }

std::string shape_name(const char *bm, const char *group, const char *where, int ta, int tb,
                       int M, int N, int K, int threads)
{
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s/%s/%s/ta:%d/tb:%d/M:%d/N:%d/K:%d/thr:%d", bm, group,
                  where, ta, tb, M, N, K, threads);
    return buf;
}

/* the name is the whole benchmark name (no /arg suffixes), so filters like
 * 'BM_ours/.*\/thr:1$' (bench/run_all.sh) select by thread count */
void add(const std::string &name, void (*fn)(benchmark::State &, Gemm), Gemm g)
{
    benchmark::RegisterBenchmark(name.c_str(), fn, g)->Unit(benchmark::kMicrosecond);
}

void register_all()
{
    benchmark::RegisterBenchmark("BM_fma_peak", BM_fma_peak);
    for (int threads : {1, 2}) {
        for (int n = 128; n <= 2048; n *= 2)
            add(shape_name("BM_ours", "square", "square", 0, 0, n, n, n, threads), BM_ours,
                Gemm{0, 0, n, n, n, threads});
        for (const Shape &s : kShapes)
            if (threads == 1 || runs_threaded(s))
                add(shape_name("BM_ours", s.group, s.where, s.ta, s.tb, s.M, s.N, s.K, threads),
                    BM_ours, Gemm{s.ta, s.tb, s.M, s.N, s.K, threads});
    }
#ifdef CNN_HAVE_OPENBLAS
    for (int n = 128; n <= 1024; n *= 2)
        add(shape_name("BM_openblas", "square", "square", 0, 0, n, n, n, 1), BM_openblas,
            Gemm{0, 0, n, n, n, 1});
#endif
    add(shape_name("BM_naive", "square", "square", 0, 0, 128, 128, 128, 1), BM_naive,
        Gemm{0, 0, 128, 128, 128, 1});
    for (const Shape &s : kShapes)
        if (!strcmp(s.group, "legacy"))
            add(shape_name("BM_naive", s.group, s.where, s.ta, s.tb, s.M, s.N, s.K, 1), BM_naive,
                Gemm{s.ta, s.tb, s.M, s.N, s.K, 1});
}

} // namespace

int main(int argc, char **argv)
{
#ifdef CNN_HAVE_OPENBLAS
    g_blas_core = openblas_get_corename();
    if (const char *want = blas_core_wanted(g_blas_core)) {
        if (!getenv("CNN_BENCH_BLAS_RETRY")) {
            /* OpenBLAS reads the variable when it loads: run again with it
             * (also over a narrower one set in the environment) */
            setenv("OPENBLAS_CORETYPE", want, 1);
            setenv("CNN_BENCH_BLAS_RETRY", "1", 1);
            execv("/proc/self/exe", argv);
        }
        g_blas_fair = false;
    }
    std::fprintf(stderr, "OpenBLAS kernel: %s%s\n", g_blas_core,
                 g_blas_fair ? "" : " (narrower than this CPU's vectors: no ratios against it)");
    benchmark::AddCustomContext("openblas_core", g_blas_core);
#endif
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

