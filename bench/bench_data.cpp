/* bench_data.cpp — the data path of a training step: gathering a shuffled
 * batch of 64 images from a cache file and turning them into normalised
 * floats (what cli_batch does: cnn_cache_image, then a 256-entry table per
 * channel), to set against the training rate (bench_train: lenet5 about
 * 40k images/s on one thread here).
 *
 *   gather/<shape>/mapped   a cache small enough to read through its mapping
 *   gather/<shape>/pread    the same cache read image by image with pread, as
 *                           a cache larger than CNN_CACHE_MAP_MAX is (warm
 *                           page cache: the data set was just written)
 *   gather_file             the cache file named by $CNN_BENCH_CACHE (e.g. the
 *                           3 GB one of bench/bigdata_rss.sh), as cnn train
 *                           opens it: pread for a large one, whatever part of
 *                           it the page cache holds
 *
 * Counter img_s: images gathered and converted per second, one thread. */
#include "bench_common.h"

extern "C" {
#include "io/dataset.h"
}

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

struct Cache {
    std::string path;
    cnn_cache c{};
    int n = 0;
    Cache(int c_, int h, int w, int n_) : n(n_)
    {
        path = "/tmp/bench_data_" + std::to_string(getpid()) + "_" + std::to_string(c_ * 10000 + h * 100 + w) + ".cnncache";
        cnn_cache_writer wr;
        if (cnn_cache_begin(&wr, path.c_str(), c_, h, w, CNN_PREP_PAD, 1) != CNN_OK) abort();
        std::vector<uint8_t> img((size_t)c_ * h * w);
        for (int i = 0; i < n; i++) {
            for (size_t j = 0; j < img.size(); j++) img[j] = (uint8_t)(i * 31 + j * 7);
            cnn_cache_add(&wr, img.data(), i % 10);
        }
        char a[] = "0", b[] = "1", cc[] = "2", d[] = "3", e[] = "4", f[] = "5", g[] = "6", h2[] = "7", i2[] = "8", j2[] = "9";
        char *names[] = {a, b, cc, d, e, f, g, h2, i2, j2};
        if (cnn_cache_finish(&wr, names, 10) != CNN_OK) abort();
        if (cnn_cache_open(path.c_str(), &c) != CNN_OK) abort();
    }
    ~Cache()
    {
        cnn_cache_close(&c);
        unlink(path.c_str());
    }
};

void gather(benchmark::State &state, int c, int h, int w, bool pread_path)
{
    static Cache *caches[2] = {nullptr, nullptr};
    Cache *&cache = caches[c == 3];
    if (!cache) cache = new Cache(c, h, w, 60000);
    const uint8_t *mapped = cache->c.images;
    if (pread_path) cache->c.images = nullptr;
    const size_t plane = (size_t)h * w, px = plane * c;
    std::vector<uint8_t> scratch(px);
    std::vector<float> x(px * 64), lut(256);
    for (int p = 0; p < 256; p++) lut[p] = ((float)p / 255.0f - 0.13f) / 0.31f;
    std::vector<int> perm(cache->n);
    for (int i = 0; i < cache->n; i++) perm[i] = (int)((uint64_t)i * 2654435761u % (uint64_t)cache->n);
    std::vector<uint8_t> labels(64);
    int at = 0;
    for (auto _ : state) {
        for (int i = 0; i < 64; i++) {
            int j = perm[(at + i) % cache->n];
            const uint8_t *img = cnn_cache_image(&cache->c, j, scratch.data());
            float *dst = x.data() + (size_t)i * px;
            for (size_t p = 0; p < px; p++) dst[p] = lut[img[p]];
            labels[i] = cache->c.labels[j];
        }
        at = (at + 64) % cache->n;
        benchmark::DoNotOptimize(x.data());
    }
    cache->c.images = mapped;
    state.counters["img_s"] = benchmark::Counter((double)state.iterations() * 64, benchmark::Counter::kIsRate);
}

/* The same gather from a cache file given by the environment. */
void gather_file(benchmark::State &state, const char *path)
{
    static cnn_cache c{};
    if (!c.path && cnn_cache_open(path, &c) != CNN_OK) {
        state.SkipWithError(cnn_errmsg());
        return;
    }
    const size_t px = (size_t)c.c * c.h * c.w;
    std::vector<uint8_t> scratch(px);
    std::vector<float> x(px * 64), lut(256);
    for (int p = 0; p < 256; p++) lut[p] = ((float)p / 255.0f - 0.13f) / 0.31f;
    const uint64_t n = (uint64_t)c.n;
    uint64_t at = 0;
    for (auto _ : state) {
        for (int i = 0; i < 64; i++) {
            /* a shuffled order: a multiplicative stride by a prime */
            int j = (int)((at + (uint64_t)i) * 2654435761u % n);
            const uint8_t *img = cnn_cache_image(&c, j, scratch.data());
            float *dst = x.data() + (size_t)i * px;
            for (size_t p = 0; p < px; p++) dst[p] = lut[img[p]];
        }
        at += 64;
        benchmark::DoNotOptimize(x.data());
    }
    state.counters["img_s"] = benchmark::Counter((double)state.iterations() * 64, benchmark::Counter::kIsRate);
    state.counters["images"] = (double)n;
    state.counters["mapped"] = c.images != nullptr;
}

} // namespace

BENCHMARK_CAPTURE(gather, 1x28x28_mapped, 1, 28, 28, false)->UseRealTime();
BENCHMARK_CAPTURE(gather, 1x28x28_pread, 1, 28, 28, true)->UseRealTime();
BENCHMARK_CAPTURE(gather, 3x32x32_mapped, 3, 32, 32, false)->UseRealTime();
BENCHMARK_CAPTURE(gather, 3x32x32_pread, 3, 32, 32, true)->UseRealTime();

int main(int argc, char **argv)
{
    if (const char *f = getenv("CNN_BENCH_CACHE"))
        benchmark::RegisterBenchmark("gather_file", gather_file, f)->UseRealTime();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
