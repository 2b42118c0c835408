/* bench_live.cpp — natively, what the report page's live panel does on
 * every frame of a drawing: a 64x64 RGBA drawing of a digit prepared as
 * `cnn predict` prepares a picture (cnn_image_prepare, digit preparation),
 * normalised (cli_normalise) and run through lenet5 with every layer's
 * output kept (cnn_model_forward_layers), one image on one thread. The
 * page's own figure comes from tests/browser/check_live.mjs; bench/NOTES.md
 * has both.
 *
 *   bench_live [Google Benchmark flags]
 *
 * Benchmarks: live/prepare, live/forward, live/prepare+forward. */
extern "C" {
#include "cli/cli.h"
}

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

const int kSide = 64;

/* models/lenet5.txt */
const char *kLenet5 = "input 1x28x28\nconv 6 5x5 pad=2\nrelu\nmaxpool 2\nconv 16 5x5\nrelu\nmaxpool 2\n"
                      "flatten\ndense 120\nrelu\ndense 84\nrelu\ndense 10\nsoftmax\n";

/* A 7 in black ink on white, strokes about 4 pixels wide, as the panel's
 * 64x64 drawing holds it. */
std::vector<uint8_t> drawing()
{
    std::vector<uint8_t> px((size_t)kSide * kSide * 4, 255);
    const float seg[3][4] = {{16, 14, 49, 14}, {49, 14, 41, 30}, {41, 30, 32, 55}};
    for (int y = 0; y < kSide; y++)
        for (int x = 0; x < kSide; x++)
            for (const auto &s : seg) {
                float dx = s[2] - s[0], dy = s[3] - s[1];
                float t = ((x - s[0]) * dx + (y - s[1]) * dy) / (dx * dx + dy * dy);
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                if (std::hypot(x - s[0] - t * dx, y - s[1] - t * dy) <= 2.1f)
                    for (int c = 0; c < 3; c++) px[((size_t)y * kSide + x) * 4 + c] = 0;
            }
    return px;
}

struct Live {
    cnn_model *m = nullptr;
    cli_norm norm;
    std::vector<uint8_t> rgba = drawing(), pixels = std::vector<uint8_t>(28 * 28);
    std::vector<float> x = std::vector<float>(28 * 28);
    std::vector<const float *> acts;
    cnn_image img{kSide, kSide, 4, nullptr};
    Live()
    {
        cnn_set_threads(1);
        if (cnn_model_from_text(kLenet5, "lenet5", &m) != CNN_OK || cnn_model_init(m, CNN_INIT_HE_NORMAL, 1) != CNN_OK ||
            cnn_model_set_batch(m, 1) != CNN_OK) {
            std::fprintf(stderr, "bench_live: %s\n", cnn_errmsg());
            std::exit(1);
        }
        cli_norm_init(&norm, 0.1307f, 0.3081f);
        acts.resize((size_t)cnn_model_num_layers(m));
        img.px = rgba.data();
    }
    ~Live() { cnn_model_free(m); }
    void prepare()
    {
        if (cnn_image_prepare(&img, CNN_PREP_DIGIT, 1, 28, 28, pixels.data()) != CNN_OK) std::abort();
        cli_normalise(pixels.data(), 1, 28 * 28, &norm, x.data());
    }
    void forward()
    {
        if (cnn_model_forward_layers(m, x.data(), 1, acts.data()) != CNN_OK) std::abort();
    }
};

void BM_prepare(benchmark::State &st)
{
    Live l;
    for (auto _ : st) l.prepare();
}

void BM_forward(benchmark::State &st)
{
    Live l;
    l.prepare();
    for (auto _ : st) l.forward();
}

void BM_both(benchmark::State &st)
{
    Live l;
    for (auto _ : st) {
        l.prepare();
        l.forward();
    }
}

} // namespace

BENCHMARK(BM_prepare)->Name("live/prepare")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_forward)->Name("live/forward")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_both)->Name("live/prepare+forward")->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
