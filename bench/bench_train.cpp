/* bench_train.cpp — end-to-end throughput of the presets.
 *
 *   bench_train [--threads=1,2] [--models=simplecnn,lenet5,pytorchnet]
 *               [--epoch_threads=2] [--alloc_trace=N] [Google Benchmark flags]
 *
 *   train/<model>/threads:T    one cnn_model_train_batch (forward, softmax
 *                              cross-entropy, backward, SGD momentum step) on
 *                              a batch of 64; counter img_s
 *   infer/<model>/threads:T    eval-mode cnn_model_forward of 1000 images
 *   latency/<model>/threads:T  eval-mode forward of one image (time per call)
 *   epoch/<model>/threads:T    60000 images (937 batches of 64 and one of 32,
 *                              MNIST's training set) timed once: seconds per
 *                              epoch, and every malloc/calloc/realloc/
 *                              aligned_alloc during it
 *
 * Allocations are counted by defining malloc and friends in this program:
 * the executable's definitions take precedence over libc's for the whole
 * process (libcnn, libgomp, libstdc++), and forward to glibc's __libc_*
 * entry points. Every train benchmark also reports allocs_step, the count
 * during its timed loop over the steps taken (after three warm-up steps).
 *
 * Inputs are random images normalised as MNIST would be ((x/255 - 0.1307) /
 * 0.3081 with x uniform) and random labels; the arithmetic does not care.
 * Times are wall clock.
 */
#include "bench_common.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <map>

/* ----------------------------------------------------- allocation counter */

extern "C" {
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);
}

static std::atomic<long> g_allocs{0};

/* --alloc_trace=N: keep the call stacks of the first N allocations made
 * while tracing is armed (inside the timed loops), printed at exit, so an
 * allocation in the loop can be pinned on its caller. */
#include <execinfo.h>
#include <unistd.h>
static const int kTraceMax = 64, kTraceDepth = 10;
static std::atomic<int> g_trace_armed{0}, g_trace_n{0};
static int g_trace_limit = 0;
static void *g_trace[kTraceMax][kTraceDepth];
static int g_trace_depth[kTraceMax];
static thread_local bool t_in_trace = false;

static inline void count_alloc()
{
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (g_trace_armed.load(std::memory_order_relaxed) && !t_in_trace) {
        int i = g_trace_n.fetch_add(1);
        if (i < g_trace_limit && i < kTraceMax) {
            t_in_trace = true;
            g_trace_depth[i] = backtrace(g_trace[i], kTraceDepth);
            t_in_trace = false;
        }
    }
}

static void print_traces()
{
    int n = std::min(g_trace_n.load(), std::min(g_trace_limit, kTraceMax));
    for (int i = 0; i < n; i++) {
        std::fprintf(stderr, "allocation %d in a timed loop:\n", i);
        backtrace_symbols_fd(g_trace[i], g_trace_depth[i], STDERR_FILENO);
    }
}

extern "C" {
void *malloc(size_t n)
{
    count_alloc();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    count_alloc();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    count_alloc();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n)
{
    count_alloc();
    return __libc_memalign(al, n);
}
void *memalign(size_t al, size_t n)
{
    count_alloc();
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n)
{
    count_alloc();
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void free(void *p) { __libc_free(p); }
}

static long allocs_now() { return g_allocs.load(std::memory_order_relaxed); }

#include <sys/resource.h>
/* minor page faults of the process so far: a fault in the loop is a first
 * touch of fresh memory (~20 us per 4 KiB page on these VMs) */
static long faults_now()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* -------------------------------------------------------------- the models */

#ifndef CNN_SOURCE_DIR
#error "bench/CMakeLists.txt defines CNN_SOURCE_DIR (the source tree, for models/*.txt)"
#endif

namespace {

struct Data {
    int n = 0;
    size_t img = 0;
    std::vector<float> x;
    std::vector<uint8_t> y;
};

/* n random images of the model's input shape, MNIST-normalised */
Data make_data(cnn_model *m, int n, uint64_t seed)
{
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    Data d;
    d.n = n;
    d.img = (size_t)c * h * w;
    d.x.resize(d.img * n);
    d.y.resize(n);
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    for (auto &v : d.x) v = (cnn_rng_uniform(&r) - 0.1307f) / 0.3081f;
    int k = cnn_model_output_size(m);
    for (auto &v : d.y) v = (uint8_t)cnn_rng_below(&r, (uint32_t)k);
    return d;
}

std::string model_path(const std::string &name)
{
    return std::string(CNN_SOURCE_DIR) + "/models/" + name + ".txt";
}

/* A model ready to run batches of up to `batch` on `threads` threads, with
 * SGD momentum attached, or nullptr (and the reason in *err). */
cnn_model *open_model(const std::string &name, int batch, int threads, std::string *err)
{
    cnn_set_threads(threads);
    cnn_model *m = nullptr;
    if (cnn_model_from_file(model_path(name).c_str(), &m) != CNN_OK) {
        *err = cnn_errmsg();
        return nullptr;
    }
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_MOMENTUM);
    oc.lr = 0.01f;
    oc.momentum = 0.9f;
    if (cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 1) != CNN_OK ||
        cnn_model_set_batch(m, batch) != CNN_OK || cnn_model_set_optimizer(m, &oc) != CNN_OK) {
        *err = cnn_errmsg();
        cnn_model_free(m);
        return nullptr;
    }
    return m;
}

/* Google Benchmark calls a benchmark function several times (to size the
 * iteration count, then once per repetition); building a model and its
 * data each time would make set-up, not the loop, most of the run (and of
 * any profile). The last model built is kept and reused while the same
 * (model, batch, threads, data) is asked for. */
struct Cached {
    std::string key;
    cnn_model *m = nullptr;
    Data d;
} g_cache;

cnn_model *cached_model(const std::string &name, int batch, int threads, int nimg, uint64_t seed,
                        Data **d, std::string *err)
{
    std::string key = name + "/" + std::to_string(batch) + "/" + std::to_string(threads) + "/" +
                      std::to_string(nimg) + "/" + std::to_string(seed);
    cnn_set_threads(threads);
    if (g_cache.m && g_cache.key == key) {
        *d = &g_cache.d;
        return g_cache.m;
    }
    cnn_model_free(g_cache.m);
    g_cache = Cached();
    cnn_model *m = open_model(name, batch, threads, err);
    if (!m) return nullptr;
    g_cache.key = key;
    g_cache.m = m;
    g_cache.d = make_data(m, nimg, seed);
    *d = &g_cache.d;
    return m;
}

const cnn_loss kXent = {CNN_LOSS_XENT, 1.0f};
const int kTrainBatch = 64, kInferBatch = 1000, kEpoch = 60000;

void set_model_counters(benchmark::State &st, cnn_model *m, int threads)
{
    st.counters["threads"] = threads;
    st.counters["fwd_flop_img"] = cnn_model_flops(m);
    st.SetLabel(cnn_simd_name());
}

void BM_train(benchmark::State &st, std::string name, int threads)
{
    std::string err;
    const int nb = 8; /* a few different batches, as an epoch would see */
    Data *dp;
    cnn_model *m = cached_model(name, kTrainBatch, threads, kTrainBatch * nb, 3, &dp, &err);
    if (!m) {
        st.SkipWithError(err.c_str());
        return;
    }
    const Data &d = *dp;
    cnn_batch_stats s;
    cnn_status rc = CNN_OK;
    /* warm-up: the first calls reserve per-thread buffers and start the
     * OpenMP team */
    for (int i = 0; i < 3 && rc == CNN_OK; i++)
        rc = cnn_model_train_batch(m, d.x.data(), d.y.data(), kTrainBatch, kXent, &s);
    long a0 = allocs_now(), f0 = faults_now(), steps = 0;
    g_trace_armed = 1;
    for (auto _ : st) {
        int b = (int)(steps++ % nb);
        rc = cnn_model_train_batch(m, d.x.data() + (size_t)b * kTrainBatch * d.img,
                                   d.y.data() + (size_t)b * kTrainBatch, kTrainBatch, kXent, &s);
        if (rc != CNN_OK) break;
    }
    g_trace_armed = 0;
    long allocs = allocs_now() - a0;
    if (rc != CNN_OK) st.SkipWithError(cnn_errmsg());
    st.counters["img_s"] = benchmark::Counter((double)kTrainBatch, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["allocs_step"] = steps ? (double)allocs / steps : 0.0;
    st.counters["faults_step"] = steps ? (double)(faults_now() - f0) / steps : 0.0;
    st.counters["batch"] = kTrainBatch;
    set_model_counters(st, m, threads);
}

void BM_infer(benchmark::State &st, std::string name, int threads, int batch)
{
    std::string err;
    Data *dp;
    cnn_model *m = cached_model(name, batch, threads, batch, 4, &dp, &err);
    if (!m) {
        st.SkipWithError(err.c_str());
        return;
    }
    const Data &d = *dp;
    const float *out = nullptr;
    cnn_status rc = cnn_model_forward(m, d.x.data(), batch, 0, &out);
    long a0 = allocs_now(), f0 = faults_now(), calls = 0;
    g_trace_armed = 1;
    for (auto _ : st) {
        rc = cnn_model_forward(m, d.x.data(), batch, 0, &out);
        benchmark::DoNotOptimize(out);
        calls++;
        if (rc != CNN_OK) break;
    }
    g_trace_armed = 0;
    long allocs = allocs_now() - a0;
    if (rc != CNN_OK) st.SkipWithError(cnn_errmsg());
    st.counters["img_s"] = benchmark::Counter((double)batch, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["allocs_call"] = calls ? (double)allocs / calls : 0.0;
    st.counters["faults_call"] = calls ? (double)(faults_now() - f0) / calls : 0.0;
    st.counters["batch"] = batch;
    set_model_counters(st, m, threads);
}

/* One epoch of MNIST's size, timed once; the allocation count over it is
 * the figure the performance targets ask for. */
void BM_epoch(benchmark::State &st, std::string name, int threads)
{
    std::string err;
    cnn_model_free(g_cache.m);
    g_cache = Cached();
    cnn_model *m = open_model(name, kTrainBatch, threads, &err);
    if (!m) {
        st.SkipWithError(err.c_str());
        return;
    }
    const int nb = 16;
    Data d = make_data(m, kTrainBatch * nb, 5);
    cnn_batch_stats s;
    cnn_status rc = CNN_OK;
    for (int i = 0; i < 3 && rc == CNN_OK; i++)
        rc = cnn_model_train_batch(m, d.x.data(), d.y.data(), kTrainBatch, kXent, &s);
    /* the last, partial batch (60000 = 937 * 64 + 32) also runs once
     * beforehand so a kernel that sizes something by n is warm too */
    if (rc == CNN_OK) rc = cnn_model_train_batch(m, d.x.data(), d.y.data(), 32, kXent, &s);
    long allocs = 0, steps = 0, faults = 0;
    for (auto _ : st) {
        long a0 = allocs_now(), f0 = faults_now();
        g_trace_armed = 1;
        for (int done = 0; done < kEpoch && rc == CNN_OK; done += kTrainBatch) {
            int n = std::min(kTrainBatch, kEpoch - done);
            int b = (int)(steps++ % nb);
            rc = cnn_model_train_batch(m, d.x.data() + (size_t)b * kTrainBatch * d.img,
                                       d.y.data() + (size_t)b * kTrainBatch, n, kXent, &s);
        }
        g_trace_armed = 0;
        allocs += allocs_now() - a0;
        faults += faults_now() - f0;
    }
    if (rc != CNN_OK) st.SkipWithError(cnn_errmsg());
    st.counters["allocs_epoch"] = (double)allocs / st.iterations();
    st.counters["faults_epoch"] = (double)faults / st.iterations();
    st.counters["steps_epoch"] = (double)steps / st.iterations();
    st.counters["img_s"] = benchmark::Counter((double)kEpoch, benchmark::Counter::kIsIterationInvariantRate);
    /* training FLOPs: forward + backward (dX and dW, 2x forward) */
    st.counters["train_flop_epoch"] = 3.0 * cnn_model_flops(m) * kEpoch;
    set_model_counters(st, m, threads);
    cnn_model_free(m);
}

std::vector<std::string> split(const std::string &s)
{
    std::vector<std::string> v;
    size_t p = 0;
    while (p <= s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        if (q > p) v.push_back(s.substr(p, q - p));
        p = q + 1;
    }
    return v;
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<int> threads = bench::take_threads_flag(&argc, argv);
    std::vector<std::string> models =
        split(bench::take_flag(&argc, argv, "models", "simplecnn,lenet5,pytorchnet"));
    g_trace_limit = std::atoi(bench::take_flag(&argc, argv, "alloc_trace", "0").c_str());
    std::vector<std::string> epoch_threads =
        split(bench::take_flag(&argc, argv, "epoch_threads", std::to_string(bench::hw_threads())));

    for (const std::string &name : models) {
        for (int t : threads) {
            auto *b = benchmark::RegisterBenchmark(("train/" + name + "/threads:" + std::to_string(t)).c_str(),
                                                   BM_train, name, t);
            b->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5)->Repetitions(3);
        }
        for (int t : threads) {
            auto *b = benchmark::RegisterBenchmark(("infer/" + name + "/threads:" + std::to_string(t)).c_str(),
                                                   BM_infer, name, t, kInferBatch);
            b->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3)->Repetitions(3);
        }
        for (int t : threads) {
            auto *b = benchmark::RegisterBenchmark(("latency/" + name + "/threads:" + std::to_string(t)).c_str(),
                                                   BM_infer, name, t, 1);
            b->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2)->Repetitions(3);
        }
        for (const std::string &ts : epoch_threads) {
            int t = std::atoi(ts.c_str());
            if (t < 1) continue;
            auto *b = benchmark::RegisterBenchmark(("epoch/" + name + "/threads:" + std::to_string(t)).c_str(),
                                                   BM_epoch, name, t);
            b->UseRealTime()->Unit(benchmark::kSecond)->Iterations(1);
        }
    }
    benchmark::AddCustomContext("simd", cnn_simd_name());
    benchmark::AddCustomContext("models_dir", std::string(CNN_SOURCE_DIR) + "/models");

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_traces();
    return 0;
}
