/* bench_peak.cpp — the machine's single-precision FMA limit, the yardstick
 * for every GFLOP/s figure: independent FMA chains, all in registers, on T
 * threads at once (one OpenMP team, each thread running the same loop).
 *
 *   fma_peak/<isa>/threads:T   counter GFLOPs (a multiply-add = 2)
 *
 *   read_bw/bytes:B            counter GBs: one thread summing B bytes of
 *                              floats again and again
 *
 * 12 independent accumulators cover 2 FMA pipes x 4 cycles of latency with
 * room to spare, so the loop is throughput-bound. Wall-clock time.
 *
 * The read bandwidth is the yardstick of the layers that only stream their
 * weights, such as a dense layer's forward of one image (bench_conv's
 * dense fwd1): 256 KiB stays in L2, 4.5 MiB is pytorchnet.fc1's weights
 * (in L3 when read again and again, as in single-image inference), 1 GiB
 * comes from memory.
 */
#include "bench_common.h"

#include <cstring>
#include <vector>

#include <omp.h>
#include <time.h>

namespace {

const int kIters = 200000;
const int kChains = 12;

/* GCC drops vector_size on a template-dependent typedef, hence a macro */
#define FMA_LOOP(NAME, TARGET, W)                                                                \
    __attribute__((target(TARGET))) float NAME()                                                 \
    {                                                                                            \
        typedef float v __attribute__((vector_size(W * 4)));                                     \
        v z = {}, a = z + 1.0001f, b = z + 0.9999f;                                              \
        v c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z, c8 = z, c9 = z,        \
          c10 = z, c11 = z;                                                                      \
        for (int i = 0; i < kIters; i++) {                                                       \
            /* each line contracts to one FMA (GCC's default -ffp-contract=fast) */              \
            c0 = c0 * a + b; c1 = c1 * a + b; c2 = c2 * a + b; c3 = c3 * a + b;                  \
            c4 = c4 * a + b; c5 = c5 * a + b; c6 = c6 * a + b; c7 = c7 * a + b;                  \
            c8 = c8 * a + b; c9 = c9 * a + b; c10 = c10 * a + b; c11 = c11 * a + b;              \
            asm volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5),        \
                         "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));          \
        }                                                                                        \
        v s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;                       \
        float t = 0;                                                                             \
        for (int i = 0; i < W; i++) t += s[i];                                                   \
        return t;                                                                                \
    }

FMA_LOOP(loop512, "avx512f,fma", 16)
FMA_LOOP(loop256, "avx2,fma", 8)

double thread_cpu_seconds()
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* GFLOPs is wall-clock: what T threads deliver together. GFLOPs_cpu sums
 * each thread's work over its own CPU time: the same figure with time spent
 * descheduled (a teammate's build on the other core) taken out, so it
 * estimates the peak even on a busy machine. */
void BM_peak(benchmark::State &st, int width, int threads)
{
    omp_set_num_threads(threads);
    float sink = 0;
    std::vector<double> cpu(threads, 0.0);
    for (auto _ : st) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        {
            double t0 = thread_cpu_seconds();
            sink += width == 16 ? loop512() : loop256();
            cpu[omp_get_thread_num()] += thread_cpu_seconds() - t0;
        }
    }
    benchmark::DoNotOptimize(sink);
    double flop_thread = 2.0 * kIters * kChains * width;
    double cpu_rate = 0;
    for (double c : cpu)
        if (c > 0) cpu_rate += flop_thread * st.iterations() / c;
    st.counters["GFLOPs"] = benchmark::Counter(flop_thread * threads * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
    st.counters["GFLOPs_cpu"] = cpu_rate * 1e-9;
    st.counters["threads"] = threads;
}

/* Sums n floats with 4 independent 16-float accumulators: the loads, not
 * the adds, set the pace. */
float sum_floats(const float *p, size_t n)
{
    typedef float v __attribute__((vector_size(64)));
    v a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (size_t i = 0; i + 64 <= n; i += 64) {
        v x0, x1, x2, x3;
        std::memcpy(&x0, p + i, sizeof x0);
        std::memcpy(&x1, p + i + 16, sizeof x1);
        std::memcpy(&x2, p + i + 32, sizeof x2);
        std::memcpy(&x3, p + i + 48, sizeof x3);
        a0 += x0; a1 += x1; a2 += x2; a3 += x3;
    }
    v s = a0 + a1 + a2 + a3;
    float t = 0;
    for (int i = 0; i < 16; i++) t += s[i];
    return t;
}

void BM_read(benchmark::State &st)
{
    const size_t bytes = (size_t)st.range(0), n = bytes / sizeof(float);
    std::vector<float> buf(n, 1.0f);
    float sink = 0;
    for (auto _ : st) {
        sink += sum_floats(buf.data(), n);
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(sink);
    st.counters["GBs"] = benchmark::Counter((double)bytes * 1e-9,
                                            benchmark::Counter::kIsIterationInvariantRate);
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<int> threads = bench::take_threads_flag(&argc, argv);
    bool avx512 = __builtin_cpu_supports("avx512f");
    for (int t : threads) {
        if (avx512)
            benchmark::RegisterBenchmark(("fma_peak/avx512/threads:" + std::to_string(t)).c_str(),
                                         BM_peak, 16, t)
                ->UseRealTime()->MinTime(0.2)->Repetitions(3);
        benchmark::RegisterBenchmark(("fma_peak/avx2/threads:" + std::to_string(t)).c_str(), BM_peak,
                                     8, t)
            ->UseRealTime()->MinTime(0.2)->Repetitions(3);
    }
    benchmark::RegisterBenchmark("read_bw", BM_read)
        ->ArgName("bytes")->Arg(256 << 10)->Arg(4718592)->Arg(1 << 30)
        ->UseRealTime()->MinTime(0.2)->Repetitions(3);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
