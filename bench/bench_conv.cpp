/* bench_conv.cpp — the layers of the presets, reference kernel vs fast
 * kernel, at batch 64, forward and backward, over a list of thread counts.
 *
 *   bench_conv [--threads=1,2,3,4] [Google Benchmark flags]
 *
 * Benchmarks are named  <kind>/<case>/<op>/<kernel>/threads:<T>  with
 *   op  fwd    y = f(x)
 *       bwd    the layer's backward as the model calls it: dL/dx and the
 *              parameter gradients together
 *       bwd_w  the same with dx = NULL, which every layer skips: parameter
 *              gradients only (bwd - bwd_w is the cost of dL/dx)
 *       fwd1   conv and dense layers, fast kernel only: the inference
 *              forward of ONE image (single-image latency, where one image
 *              is split over the threads; a dense layer's is a read of its
 *              weights, hence its GBs counter)
 *   kernel ref (the seed report's loops; serial, so run on 1 thread only)
 *          or fast (l->kernels = CNN_KERNELS_FAST).
 * Counters: GFLOPs (a multiply-add = 2; bwd counts dW and dX, 2x forward;
 * bwd_w counts 1x forward) or, for pooling, GBs (bytes read + written);
 * a dense fwd1 has both, its GBs counting the weights read.
 * `flop` and `bytes` are per call, for bench/make_results.py.
 *
 * Before any timing, every case runs once through both kernels on the same
 * data and the largest relative error of y, dx and each gradient is printed
 * (and stored in the JSON context as relerr:<case>).
 *
 * All times are wall clock (UseRealTime): with several OpenMP threads the
 * CPU time of the main thread means nothing.
 */
#include "bench_common.h"

#include <cstdio>
#include <map>

namespace {

const int kBatch = 64;

struct Case {
    const char *kind;  /* conv, pool, dense */
    const char *name;
    const char *line;
    cnn_shape in;
};

/* Every conv, pool and dense layer of the three presets, plus a deeper
 * 64->64 conv for a shape where the GEMM is not skinny. */
const Case kCases[] = {
    {"conv", "simplecnn.conv1", "conv 16 3x3 stride=2 pad=1", {1, 28, 28}},
    {"conv", "lenet5.conv1", "conv 6 5x5 pad=2", {1, 28, 28}},
    {"conv", "lenet5.conv2", "conv 16 5x5", {6, 14, 14}},
    {"conv", "pytorchnet.conv1", "conv 32 3x3", {1, 28, 28}},
    {"conv", "pytorchnet.conv2", "conv 64 3x3", {32, 26, 26}},
    {"conv", "deep.conv64", "conv 64 3x3 pad=1", {64, 14, 14}},
    {"pool", "simplecnn.maxpool", "maxpool 2", {16, 14, 14}},
    {"pool", "lenet5.pool1.max", "maxpool 2", {6, 28, 28}},
    {"pool", "lenet5.pool1.avg", "avgpool 2", {6, 28, 28}},
    {"pool", "lenet5.pool2.max", "maxpool 2", {16, 10, 10}},
    {"pool", "pytorchnet.maxpool", "maxpool 2", {64, 24, 24}},
    {"dense", "simplecnn.fc", "dense 10", {784, 1, 1}},
    {"dense", "lenet5.fc1", "dense 120", {400, 1, 1}},
    {"dense", "lenet5.fc2", "dense 84", {120, 1, 1}},
    {"dense", "pytorchnet.fc1", "dense 128", {9216, 1, 1}},
    {"dense", "pytorchnet.fc2", "dense 10", {128, 1, 1}},
};

enum Op { FWD, BWD, BWD_W, FWD1 };
const char *kOpName[] = {"fwd", "bwd", "bwd_w", "fwd1"};

struct Buffers {
    std::vector<float> x, y, dy, dx;
};

Buffers make_buffers(const bench::Layer &L)
{
    Buffers b;
    b.x = bench::randn(kBatch * L.in_size(), 11);
    b.dy = bench::randn(kBatch * L.out_size(), 12);
    b.y.assign(kBatch * L.out_size(), 0.0f);
    b.dx.assign(kBatch * L.in_size(), 0.0f);
    return b;
}

void run_case(benchmark::State &st, const Case &c, Op op, cnn_kernels k, int threads)
{
    cnn_set_threads(threads);
    bench::Layer L(c.line, c.in, kBatch, threads, 7);
    if (!L.ok()) {
        st.SkipWithError(L.error.c_str());
        return;
    }
    cnn_layer *l = L.l;
    l->kernels = k;
    Buffers b = make_buffers(L);
    /* backward needs the forward's y (and maxpool its arg-max) */
    l->ops->forward(l, b.x.data(), b.y.data(), kBatch, 1, cnn_threads());
    for (auto _ : st) {
        switch (op) {
        case FWD: l->ops->forward(l, b.x.data(), b.y.data(), kBatch, 1, cnn_threads()); break;
        case BWD: l->ops->backward(l, b.x.data(), b.y.data(), b.dy.data(), b.dx.data(), kBatch, cnn_threads()); break;
        case BWD_W: l->ops->backward(l, b.x.data(), b.y.data(), b.dy.data(), nullptr, kBatch, cnn_threads()); break;
        case FWD1: l->ops->forward(l, b.x.data(), b.y.data(), 1, 0, cnn_threads()); break;
        }
        benchmark::ClobberMemory();
    }
    double fwd = l->ops->flops(l) * kBatch;
    double flop = op == FWD ? fwd : op == BWD ? 2 * fwd : op == FWD1 ? fwd / kBatch : fwd;
    double bytes = 4.0 * (op == FWD1 ? 1 : kBatch) * (L.in_size() + L.out_size());
    const bool dense1 = op == FWD1 && std::string(c.kind) == "dense";
    if (dense1) bytes += 4.0 * L.data.size(); /* one image: every weight read once */
    if (std::string(c.kind) == "pool" || dense1)
        st.counters["GBs"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    if (std::string(c.kind) != "pool")
        st.counters["GFLOPs"] = benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["flop"] = flop;
    st.counters["bytes"] = bytes;
    st.counters["threads"] = threads;
    st.SetLabel(cnn_simd_name());
}

/* Runs both kernels once on the same inputs and parameters; returns the
 * worst relative error and which tensor it was in. */
double check_case(const Case &c, int threads, std::string *where)
{
    cnn_set_threads(threads);
    bench::Layer L(c.line, c.in, kBatch, threads, 7);
    if (!L.ok()) {
        *where = "build failed: " + L.error;
        return INFINITY;
    }
    cnn_layer *l = L.l;
    Buffers b = make_buffers(L);
    std::vector<float> y[2], dx[2], g[2];
    for (int k = 0; k < 2; k++) {
        l->kernels = k ? CNN_KERNELS_FAST : CNN_KERNELS_REF;
        std::fill(L.grad.begin(), L.grad.end(), 0.0f);
        y[k].assign(b.y.size(), 0.0f);
        dx[k].assign(b.dx.size(), 0.0f);
        l->ops->forward(l, b.x.data(), y[k].data(), kBatch, 1, cnn_threads());
        l->ops->backward(l, b.x.data(), y[k].data(), b.dy.data(), dx[k].data(), kBatch, cnn_threads());
        g[k] = L.grad;
    }
    double worst = -1;
    auto note = [&](double e, const std::string &name) {
        if (e > worst) {
            worst = e;
            *where = name;
        }
    };
    note(bench::max_rel_err(y[0].data(), y[1].data(), y[0].size()), "y");
    note(bench::max_rel_err(dx[0].data(), dx[1].data(), dx[0].size()), "dx");
    for (int j = 0; j < l->nparams; j++) {
        cnn_param *p = &l->params[j];
        if (!p->trainable) continue;
        size_t off = p->grad - L.grad.data();
        note(bench::max_rel_err(g[0].data() + off, g[1].data() + off, p->size),
             std::string("d") + p->name);
    }
    return worst;
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<int> threads = bench::take_threads_flag(&argc, argv);
    int tmax = *std::max_element(threads.begin(), threads.end());

    std::fprintf(stderr, "bench_conv: simd=%s batch=%d, fast vs reference, largest relative error:\n",
                 cnn_simd_name(), kBatch);
    bool all_ok = true;
    for (const Case &c : kCases) {
        std::string where;
        double e = check_case(c, tmax, &where);
        bool ok = e <= 1e-4;
        all_ok = all_ok && ok;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3g (%s)", e, where.c_str());
        std::fprintf(stderr, "  %-20s %-28s %s%s\n", c.name, c.line, buf, ok ? "" : "  <-- MISMATCH");
        benchmark::AddCustomContext(std::string("relerr:") + c.name, buf);
    }
    benchmark::AddCustomContext("simd", cnn_simd_name());
    benchmark::AddCustomContext("batch", std::to_string(kBatch));

    for (const Case &c : kCases) {
        bool has_params = std::string(c.kind) != "pool";
        for (int op = FWD; op <= FWD1; op++) {
            if (op == BWD_W && !has_params) continue;
            if (op == FWD1 && !has_params) continue;
            for (int k = op == FWD1 ? 1 : 0; k < 2; k++) {
                for (int t : threads) {
                    if (k == 0 && t != 1) continue; /* the reference is serial */
                    std::string name = std::string(c.kind) + "/" + c.name + "/" + kOpName[op] + "/" +
                                       (k ? "fast" : "ref") + "/threads:" + std::to_string(t);
                    auto *b = benchmark::RegisterBenchmark(
                        name.c_str(), [&c, op, k, t](benchmark::State &st) {
                            run_case(st, c, (Op)op, k ? CNN_KERNELS_FAST : CNN_KERNELS_REF, t);
                        });
                    b->UseRealTime()->Unit(benchmark::kMicrosecond);
                    /* the reference loops take up to seconds per call: one
                     * short round; the fast kernels get three and we keep
                     * the best (a busy second core only ever slows us) */
                    if (k == 0) b->MinTime(0.05);
                    else b->MinTime(0.1)->Repetitions(3);
                }
            }
        }
    }

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (!all_ok) std::fprintf(stderr, "bench_conv: fast and reference kernels disagree (see above)\n");
    return all_ok ? 0 : 1;
}
