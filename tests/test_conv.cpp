/* test_conv.cpp — conv layer: by-hand examples on both kernels, shapes and
 * parse errors, numerical gradients, reference vs fast, determinism across
 * thread counts, and (printed, not asserted) the fast/reference speed ratio. */
#include "testutil.h"
#include "kernels/gemm_internal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

static const cnn_kernels kBoth[] = {CNN_KERNELS_REF, CNN_KERNELS_FAST};

struct Pass {
    std::vector<float> y, dx, grad;
};

/* forward + backward of t's layer with kernels k on x, dy */
static Pass run(TestLayer &t, cnn_kernels k, const std::vector<float> &x,
               const std::vector<float> &dy, int n)
{
    cnn_layer *l = t.layer;
    Pass r;
    r.y.assign((size_t)n * cnn_shape_size(l->out), NAN);
    r.dx.assign((size_t)n * cnn_shape_size(l->in), NAN);
    l->kernels = k;
    l->ops->forward(l, x.data(), r.y.data(), n, 1, cnn_threads());
    std::fill(t.grad.begin(), t.grad.end(), NAN); /* backward must overwrite */
    l->ops->backward(l, x.data(), r.y.data(), dy.data(), r.dx.data(), n, cnn_threads());
    r.grad = t.grad;
    return r;
}

static void set_params(TestLayer &t, const std::vector<float> &w, float b)
{
    cnn_layer *l = t.layer;
    ASSERT_EQ(l->params[0].size, w.size());
    std::memcpy(l->params[0].data, w.data(), w.size() * sizeof(float));
    if (l->nparams > 1) l->params[1].data[0] = b;
}

/* ------------------------------------------------------------ by hand */

TEST(Conv, ByHand3x3Input2x2Kernel)
{
    /* x = 1 2 3 / 4 5 6 / 7 8 9, w = 1 2 / 3 4, b = 0.5:
     * y00 = 1+4+12+20 = 37, y01 = 2+6+15+24 = 47, y10 = 67, y11 = 77, plus b.
     * With dy = 1: dW(h,v) = sum of the pixels tap (h,v) saw, db = 4, and dx
     * counts the weights covering each pixel. */
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "conv 1 2x2", {1, 3, 3}, 1));
        set_params(t, {1, 2, 3, 4}, 0.5f);
        Pass r = run(t, k, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 1, 1}, 1);
        EXPECT_EQ(r.y, (std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f})) << k;
        EXPECT_EQ(r.grad, (std::vector<float>{12, 16, 24, 28, 4})) << k;
        EXPECT_EQ(r.dx, (std::vector<float>{1, 3, 2, 4, 10, 6, 3, 7, 4})) << k;
    }
}

TEST(Conv, ByHandPaddingModes)
{
    /* x = [1 2 3], w = [1 1 1], pad 1 on the width:
     * zero      0 1 2 3 0 -> y = 3 6 5, each pixel read by the taps that reach it
     * reflect   2 1 2 3 2 -> y = 5 6 7; pad taps read x1 twice: dx = 2 5 2
     * replicate 1 1 2 3 3 -> y = 4 6 8; dx = 3 3 3 */
    struct { const char *mode; std::vector<float> y, dx; } cases[] = {
        {"zero", {3, 6, 5}, {2, 3, 2}},
        {"reflect", {5, 6, 7}, {2, 5, 2}},
        {"replicate", {4, 6, 8}, {3, 3, 3}},
    };
    for (auto &c : cases)
        for (cnn_kernels k : kBoth) {
            TestLayer t;
            std::string line = std::string("conv 1 1x3 pad=0x1 bias=0 padmode=") + c.mode;
            ASSERT_TRUE(tu_make_layer(t, line, {1, 1, 3}, 1));
            set_params(t, {1, 1, 1}, 0);
            Pass r = run(t, k, {1, 2, 3}, {1, 1, 1}, 1);
            EXPECT_EQ(r.y, c.y) << line << " kernels " << k;
            EXPECT_EQ(r.dx, c.dx) << line << " kernels " << k;
        }
}

TEST(Conv, ByHandStride2TwoChannelsTwoFilters)
{
    /* 2x4x4 input (channel 0 all 1, channel 1 all 2), conv 2 2x2 stride=2:
     * filter 0 = all 1 -> 4*1 + 4*2 = 12; filter 1 = channel 0 only, weight -1 -> -4 */
    std::vector<float> x(32, 1.0f);
    std::fill(x.begin() + 16, x.end(), 2.0f);
    std::vector<float> w = {1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, 0, 0, 0, 0};
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "conv 2 2 stride=2 bias=0", {2, 4, 4}, 1));
        set_params(t, w, 0);
        Pass r = run(t, k, x, std::vector<float>(8, 1.0f), 1);
        EXPECT_EQ(r.y, (std::vector<float>{12, 12, 12, 12, -4, -4, -4, -4})) << k;
    }
}

/* --------------------------------------------------- shapes and parsing */

TEST(Conv, ShapesParamsAndDescription)
{
    struct {
        const char *line;
        cnn_shape in, out;
        const char *desc;
    } cases[] = {
        {"conv 16 3x3 stride=2 pad=1 padmode=zero", {1, 28, 28}, {16, 14, 14},
         "conv 16 3x3 stride=2 pad=1 padmode=zero"},
        {"conv 8 5", {1, 28, 28}, {8, 24, 24}, "conv 8 5x5 stride=1 pad=0 padmode=zero"},
        {"conv 4 3x5 pad=same padmode=reflect", {3, 7, 9}, {4, 7, 9},
         "conv 4 3x5 stride=1 pad=1x2 padmode=reflect"},
        {"conv 6 2x3 stride=2x1 pad=1x0 bias=0", {2, 9, 6}, {6, 5, 4},
         "conv 6 2x3 stride=2x1 pad=1x0 padmode=zero bias=0"},
        {"conv 3 4 stride=3 padmode=replicate pad=2", {1, 5, 5}, {3, 2, 2},
         "conv 3 4x4 stride=3 pad=2 padmode=replicate"},
        {"conv 5 1", {7, 3, 2}, {5, 3, 2}, "conv 5 1x1 stride=1 pad=0 padmode=zero"},
    };
    for (auto &c : cases) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, c.line, c.in, 2)) << c.line;
        cnn_layer *l = t.layer;
        tu_expect_layer(l, c.out, "conv", "Conv2d", c.desc);
        const cnn_param &w = l->params[0];
        EXPECT_STREQ(w.name, "weight");
        ASSERT_EQ(w.ndim, 4);
        int kh = w.dims[2], kw = w.dims[3];
        EXPECT_EQ(w.dims[0], c.out.c);
        EXPECT_EQ(w.dims[1], c.in.c);
        EXPECT_EQ(w.fan_in, c.in.c * kh * kw);
        EXPECT_EQ(w.fan_out, c.out.c * kh * kw);
        EXPECT_EQ(w.init, CNN_PINIT_WEIGHT);
        bool bias = std::strstr(c.line, "bias=0") == nullptr;
        ASSERT_EQ(l->nparams, bias ? 2 : 1) << c.line;
        if (bias) {
            EXPECT_STREQ(l->params[1].name, "bias");
            EXPECT_EQ(l->params[1].size, (size_t)c.out.c);
            EXPECT_EQ(l->params[1].init, CNN_PINIT_ZERO);
        }
        double hw = (double)c.out.h * c.out.w;
        EXPECT_DOUBLE_EQ(l->ops->flops(l),
                         2.0 * c.out.c * c.in.c * kh * kw * hw + (bias ? c.out.c * hw : 0));

        /* the description parses back to the same layer */
        TestLayer again;
        ASSERT_TRUE(tu_make_layer(again, l->desc, c.in, 1));
        EXPECT_STREQ(again.layer->desc, c.desc);
    }
}

TEST(Conv, ParseErrors)
{
    struct { const char *line; cnn_shape in; const char *want; } cases[] = {
        {"conv", {1, 8, 8}, "test:1: conv: expected a filter count"},
        {"conv 16", {1, 8, 8}, "expected a kernel size"},
        {"conv 0 3", {1, 8, 8}, "filter count must be"},
        {"conv 16 3x", {1, 8, 8}, "kernel size"},
        {"conv 16 3 stride=0", {1, 8, 8}, "stride="},
        {"conv 16 3 pad=-1", {1, 8, 8}, "pad="},
        {"conv 16 3 padmode=circular", {1, 8, 8}, "padmode= must be zero, reflect or replicate"},
        {"conv 16 2 pad=same", {1, 8, 8}, "pad=same needs stride 1 and an odd kernel"},
        {"conv 16 3 stride=2 pad=same", {1, 8, 8}, "pad=same needs stride 1"},
        {"conv 4 3x3", {1, 2, 2}, "test:1: conv: output would be 0x0 for input 1x2x2"},
        {"conv 4 3 stride=2 pad=2 padmode=reflect", {1, 2, 5}, "padmode=reflect needs pad"},
        {"conv 4 3 bias=2", {1, 8, 8}, "bias="},
        {"conv 4 3 frobnicate=1", {1, 8, 8}, "unknown option 'frobnicate=1'"},
        {"conv 4 3 7", {1, 8, 8}, "unexpected word '7'"},
    };
    for (auto &c : cases) {
        tu_expect_parse_error(c.line, c.in, c.want);
        tu_expect_parse_error(c.line, c.in, "test:1:");
    }
    /* reflect with pad equal to the input size is PyTorch's error too */
    std::string msg;
    EXPECT_EQ(tu_layer_error("conv 1 3 pad=2 padmode=reflect", {1, 2, 9}, &msg), CNN_ERR_PARSE);
    EXPECT_EQ(tu_layer_error("conv 1 3 pad=1 padmode=reflect", {1, 2, 9}, &msg), CNN_OK) << msg;
}

/* ------------------------------------------------ numerical gradients */

static const LayerCase kGradCases[] = {
    {"conv 3 3x3", {2, 5, 5}, 2},
    {"conv 2 3x3 stride=2 pad=1", {1, 7, 6}, 2},
    {"conv 4 2x3 stride=3x2 pad=2x1 bias=0", {3, 9, 7}, 1},
    {"conv 3 3 pad=1 padmode=reflect", {2, 5, 4}, 2},
    {"conv 2 3x2 stride=2 pad=2x1 padmode=reflect", {2, 7, 5}, 1},
    {"conv 3 3 pad=2 padmode=replicate", {1, 4, 5}, 2},
    {"conv 2 4x3 stride=3 pad=1x3 padmode=replicate bias=0", {3, 8, 5}, 2},
    {"conv 5 1", {4, 3, 3}, 2},
    {"conv 2 5 pad=same", {1, 6, 7}, 1},
    {"conv 3 3 pad=same padmode=reflect", {2, 3, 3}, 1},
};

TEST(Conv, GradientsMatchNumerical)
{
    for (cnn_kernels k : kBoth)
        for (auto &c : kGradCases) tu_expect_gradients(c, k, 11, 21, 1e-2, 2e-3);
}

/* ------------------------------------------------ reference vs fast */

TEST(Conv, ReferenceAndFastAgree)
{
    const LayerCase cases[] = {
        {"conv 1 1", {1, 1, 1}, 1},
        {"conv 2 2", {1, 2, 3}, 3},
        {"conv 16 3x3 stride=2 pad=1", {1, 28, 28}, 8},
        {"conv 8 5 pad=2 padmode=reflect", {3, 13, 11}, 5},
        {"conv 7 3x4 stride=2x3 pad=3x1 padmode=replicate bias=0", {5, 17, 12}, 7},
        {"conv 12 1", {9, 10, 10}, 6},
        {"conv 6 3 stride=3", {4, 20, 19}, 33},
    };
    for (auto &c : cases) tu_expect_ref_matches_fast(c, 5, 8, 1e-5);
}

TEST(Conv, ReferenceAndFastAgreeLarge)
{
    /* 64 filters over 32 channels, batch 64 at 14x14: K = 288 crosses GEMM
     * blocking boundaries and the batch splits into many chunks */
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "conv 64 3 pad=1", {32, 14, 14}, 64, 3, 0.1f));
    std::string where;
    EXPECT_LT(tu_ref_vs_fast(t, 64, 4, 1, &where), 1e-5) << where;
}

/* The fast kernel takes the shifted-plane path (AVX-512, F <= 32) or
 * im2col + GEMM (any other CPU, or many filters). Each case runs on every
 * SIMD level this CPU has, so both paths are checked here. */
static void ref_vs_fast_all_levels(const char *line, cnn_shape in, int n, uint64_t seed)
{
    const int saved = cnn_gemm_simd_level();
    for (int level : {CNN_SIMD_AVX512, CNN_SIMD_AVX2, CNN_SIMD_GENERIC}) {
        int got = cnn_gemm_set_simd_level(level);
        if (got != level) continue; /* not on this CPU */
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, line, in, n, seed));
        std::string where;
        EXPECT_LT(tu_ref_vs_fast(t, n, seed + 1, 1, &where), 1e-5)
            << line << " on " << in.c << "x" << in.h << "x" << in.w << " n=" << n << " simd "
            << cnn_simd_name() << " at " << where;
    }
    cnn_gemm_set_simd_level(saved);
}

TEST(Conv, ReferenceAndFastAgreePresetShapes)
{
    const LayerCase cases[] = {
        {"conv 6 5x5 pad=2", {1, 28, 28}, 9},          /* lenet5.conv1: dW by dot tiles */
        {"conv 16 5x5", {6, 14, 14}, 9},               /* lenet5.conv2: dW filters-in-lanes */
        {"conv 32 3x3", {1, 28, 28}, 5},               /* pytorchnet.conv1: two filter vectors */
        {"conv 16 3x3 stride=2 pad=1", {1, 28, 28}, 37}, /* odd batch: a short last group */
        {"conv 6 5x5", {3, 14, 14}, 100},              /* 7-image chunks: groups of 4 + 3 */
    };
    for (auto &c : cases) ref_vs_fast_all_levels(c.line, c.in, c.n, 21);
}

TEST(Conv, ReferenceAndFastAgreeEdgeShapes)
{
    const LayerCase cases[] = {
        {"conv 17 1x3 pad=0x1", {2, 5, 9}, 3},          /* kh = 1: no dy margin rows */
        {"conv 3 3x1 pad=2x0 padmode=replicate", {2, 7, 5}, 3},
        {"conv 9 3 pad=1 padmode=reflect", {3, 23, 19}, 4}, /* dx folds the reflected border */
        {"conv 5 4 pad=3 padmode=replicate", {2, 6, 8}, 2},  /* pad larger than half the kernel */
        {"conv 4 3 pad=5", {1, 4, 4}, 2},              /* zero pad wider than the image */
        {"conv 2 7x2 stride=3x2 pad=3x1 padmode=reflect", {3, 19, 33}, 3},
        {"conv 31 2 stride=2", {2, 9, 40}, 2},         /* rows wider than two vectors */
        {"conv 32 5 stride=1x4 pad=2", {1, 11, 37}, 2},
        {"conv 5 3 stride=2 pad=2", {2, 9, 12}, 3},    /* dx phases interleaved, pad 2 */
        {"conv 4 4x3 stride=3x2 pad=1x0", {1, 13, 11}, 2}, /* 6 phases, zero taps in some */
        {"conv 1 3", {1, 3, 3}, 1},                    /* a 1x1 output */
        {"conv 33 3", {2, 8, 8}, 2},                   /* just past the filter limit: GEMM */
    };
    for (auto &c : cases) ref_vs_fast_all_levels(c.line, c.in, c.n, 31);
}

TEST(Conv, ReferenceAndFastAgreeRandomShapes)
{
    /* small random layers: every stride, padding mode and odd size mix */
    cnn_rng r;
    cnn_rng_seed(&r, 2024);
    const char *modes[] = {"zero", "reflect", "replicate"};
    for (int k = 0; k < 40; k++) {
        int c = 1 + (int)cnn_rng_below(&r, 4), h = 3 + (int)cnn_rng_below(&r, 14),
            w = 3 + (int)cnn_rng_below(&r, 20);
        int kh = 1 + (int)cnn_rng_below(&r, 4), kw = 1 + (int)cnn_rng_below(&r, 4);
        int sh = 1 + (int)cnn_rng_below(&r, 3), sw = 1 + (int)cnn_rng_below(&r, 3);
        int mode = (int)cnn_rng_below(&r, 3);
        int lim = mode == 1 ? 1 : 3; /* reflect needs pad < the image: keep it small */
        int ph = (int)cnn_rng_below(&r, (uint32_t)lim + 1), pw = (int)cnn_rng_below(&r, (uint32_t)lim + 1);
        int F = 1 + (int)cnn_rng_below(&r, 20), n = 1 + (int)cnn_rng_below(&r, 9);
        if (h + 2 * ph < kh || w + 2 * pw < kw) continue;
        char line[160];
        std::snprintf(line, sizeof line, "conv %d %dx%d stride=%dx%d pad=%dx%d padmode=%s bias=%d", F,
                      kh, kw, sh, sw, ph, pw, modes[mode], k % 3 ? 1 : 0);
        ref_vs_fast_all_levels(line, {c, h, w}, n, 40 + k);
    }
}

/* ------------------------------------------------ determinism */

TEST(Conv, BitIdenticalAcrossThreadCounts)
{
    const LayerCase cases[] = {
        {"conv 16 3x3 stride=2 pad=1", {1, 28, 28}, 64}, /* SimpleCNN, batch-parallel */
        {"conv 16 3 pad=1 padmode=reflect", {8, 14, 14}, 3}, /* small batch: GEMM-parallel */
        {"conv 32 3", {16, 12, 12}, 1},
        {"conv 24 1", {32, 9, 9}, 10},
        {"conv 6 5x5 pad=2", {1, 28, 28}, 32},  /* lenet5 layers at a shard's batch */
        {"conv 16 5x5", {6, 14, 14}, 37},
        /* fewer images than threads, more than 32 filters: one image split
         * over the threads by bands of output rows (uneven bands, padding,
         * stride 2, and the 1x1 layer that needs no im2col) */
        {"conv 64 3", {32, 26, 26}, 1},
        {"conv 40 3 stride=2 pad=1 padmode=reflect", {9, 31, 29}, 1},
        {"conv 48 1", {40, 13, 11}, 2},
    };
    const int saved = cnn_threads();
    for (auto &c : cases) {
        cnn_set_threads(4);
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, c.line, c.in, c.n, 6));
        auto x = tu_randn((size_t)c.n * cnn_shape_size(c.in), 1);
        auto dy = tu_randn((size_t)c.n * cnn_shape_size(t.layer->out), 2);
        cnn_set_threads(1);
        Pass one = run(t, CNN_KERNELS_FAST, x, dy, c.n);
        for (int threads : {2, 4}) {
            cnn_set_threads(threads);
            Pass r = run(t, CNN_KERNELS_FAST, x, dy, c.n);
            EXPECT_EQ(0, std::memcmp(one.y.data(), r.y.data(), one.y.size() * 4)) << c.line << " " << threads;
            EXPECT_EQ(0, std::memcmp(one.dx.data(), r.dx.data(), one.dx.size() * 4)) << c.line << " " << threads;
            EXPECT_EQ(0, std::memcmp(one.grad.data(), r.grad.data(), one.grad.size() * 4)) << c.line << " " << threads;
        }
    }
    cnn_set_threads(saved);
}

TEST(Conv, NullDxSkipsInputGradient)
{
    /* the first layer gets dx == NULL: weights still come out the same */
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "conv 4 3 stride=2 pad=1", {2, 9, 9}, 5));
        auto x = tu_randn(5 * 2 * 81, 1), dy = tu_randn(5 * cnn_shape_size(t.layer->out), 2);
        Pass full = run(t, k, x, dy, 5);
        std::fill(t.grad.begin(), t.grad.end(), NAN);
        t.layer->ops->backward(t.layer, x.data(), full.y.data(), dy.data(), nullptr, 5, cnn_threads());
        EXPECT_EQ(0, std::memcmp(full.grad.data(), t.grad.data(), t.grad.size() * 4)) << k;
    }
}

/* ------------------------------------------------ speed (printed only) */

TEST(ConvSpeed, SimpleCnnFirstLayerPrintRatio)
{
    /* The seed's SimpleCNN conv: batch 64, 1x28x28, conv 16 3x3 stride 2 pad 1.
     * Timing is printed for the record, never asserted; the test checks the
     * two kernels agree on this exact shape. */
    const int n = 64;
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "conv 16 3x3 stride=2 pad=1", {1, 28, 28}, n));
    cnn_layer *l = t.layer;
    auto x = tu_randn((size_t)n * 784, 1), dy = tu_randn((size_t)n * cnn_shape_size(l->out), 2);
    std::vector<float> y(dy.size()), dx(x.size());
    /* mode 0 forward, 1 backward, 2 backward without dx (a first layer) */
    auto time = [&](cnn_kernels k, int mode) {
        l->kernels = k;
        l->ops->forward(l, x.data(), y.data(), n, 1, cnn_threads());
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            auto t0 = std::chrono::steady_clock::now();
            int iters = 0;
            double el;
            do {
                if (mode == 0) l->ops->forward(l, x.data(), y.data(), n, 1, cnn_threads());
                else l->ops->backward(l, x.data(), y.data(), dy.data(),
                                      mode == 1 ? dx.data() : nullptr, n, cnn_threads());
                iters++;
                el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            } while (el < 0.02);
            best = std::min(best, el / iters);
        }
        return best * 1e3;
    };
    double rf = time(CNN_KERNELS_REF, 0), ff = time(CNN_KERNELS_FAST, 0);
    double rb = time(CNN_KERNELS_REF, 1), fb = time(CNN_KERNELS_FAST, 1);
    double r0 = time(CNN_KERNELS_REF, 2), f0 = time(CNN_KERNELS_FAST, 2);
    std::printf("[ speed    ] conv 16 3x3 stride=2 pad=1, batch 64 of 1x28x28, %d threads, %s\n"
                "[ speed    ] forward:  ref %.3f ms  fast %.3f ms  ratio %.1fx\n"
                "[ speed    ] backward: ref %.3f ms  fast %.3f ms  ratio %.1fx\n"
                "[ speed    ] backward without dx: ref %.3f ms  fast %.3f ms  ratio %.1fx\n",
                cnn_threads(), cnn_simd_name(), rf, ff, rf / ff, rb, fb, rb / fb, r0, f0, r0 / f0);
    std::string where;
    EXPECT_LT(tu_ref_vs_fast(t, n, 9, 1, &where), 1e-5) << where;
}
