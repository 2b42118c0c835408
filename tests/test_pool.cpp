/* test_pool.cpp — max and average pooling: by-hand examples on both
 * kernels, shapes and parse errors, numerical gradients, reference vs fast. */
#include "testutil.h"
#include "kernels/gemm_internal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

static const cnn_kernels kBoth[] = {CNN_KERNELS_REF, CNN_KERNELS_FAST};

struct Pass {
    std::vector<float> y, dx;
};

static Pass run(TestLayer &t, cnn_kernels k, const std::vector<float> &x,
                const std::vector<float> &dy, int n)
{
    cnn_layer *l = t.layer;
    Pass r;
    r.y.assign((size_t)n * cnn_shape_size(l->out), NAN);
    r.dx.assign((size_t)n * cnn_shape_size(l->in), NAN);
    l->kernels = k;
    l->ops->forward(l, x.data(), r.y.data(), n, 1, cnn_threads());
    l->ops->backward(l, x.data(), r.y.data(), dy.data(), r.dx.data(), n, cnn_threads());
    return r;
}

/* ------------------------------------------------------------ by hand */

/* The pool of `line` over the 4x4 picture below on both kernel sets: its
 * output is y and, for the output gradient dy, its input gradient dx. */
static void by_hand(const char *line, const std::vector<float> &dy, const std::vector<float> &y,
                    const std::vector<float> &dx)
{
    const std::vector<float> x = {1, 5, 2, 0, 6, -1, 8, 3, 0, 9, 7, 7, 2, 4, 7, 1};
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, line, {1, 4, 4}, 1));
        Pass r = run(t, k, x, dy, 1);
        EXPECT_EQ(r.y, y) << line << " kernels " << k;
        EXPECT_EQ(r.dx, dx) << line << " kernels " << k;
    }
}

TEST(Pool, ByHandMaxpool4x4)
{
    /*  1  5 | 2  0        y = 6 8      dy = 10 20   dx: 10 at the 6, 20 at the 8,
     *  6 -1 | 8  3            9 7           30 40       30 at the 9, 40 at the 7
     *  ----------
     *  0  9 | 7  7   <- tie: the first 7 in scan order wins
     *  2  4 | 7  1 */
    by_hand("maxpool 2", {10, 20, 30, 40}, {6, 8, 9, 7},
            {0, 0, 0, 0, 10, 0, 20, 0, 0, 30, 40, 0, 0, 0, 0, 0});
}

TEST(Pool, ByHandAvgpool4x4)
{
    by_hand("avgpool 2", {4, 8, 12, 16}, {2.75f, 3.25f, 3.75f, 5.5f},
            {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
}

TEST(Pool, ByHandOverlappingPadded)
{
    /* maxpool 3 stride=2 pad=1 on 1 2 3 / 4 5 6 / 7 8 9 (PyTorch pads with
     * -inf): windows centred on (0,0) (0,2) (2,0) (2,2) -> 5 6 8 9.
     * avgpool counts the padded cells: (1+2+4+5)/9, (2+3+5+6)/9, ... */
    std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "maxpool 3 stride=2 pad=1", {1, 3, 3}, 1));
        Pass r = run(t, k, x, {1, 1, 1, 1}, 1);
        EXPECT_EQ(r.y, (std::vector<float>{5, 6, 8, 9})) << k;
        EXPECT_EQ(r.dx, (std::vector<float>{0, 0, 0, 0, 1, 1, 0, 1, 1})) << k;

        TestLayer a;
        ASSERT_TRUE(tu_make_layer(a, "avgpool 3 stride=2 pad=1", {1, 3, 3}, 1));
        r = run(a, k, x, {9, 9, 9, 9}, 1);
        std::vector<float> want = {12.0f / 9, 16.0f / 9, 24.0f / 9, 28.0f / 9};
        for (int i = 0; i < 4; i++) EXPECT_FLOAT_EQ(r.y[i], want[i]) << k;
        /* the centre pixel is in all four windows, the corners in one */
        EXPECT_EQ(r.dx, (std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1})) << k;
    }
}

TEST(Pool, MaxpoolPropagatesNaN)
{
    std::vector<float> x = {1, NAN, 3, 2};
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "maxpool 2", {1, 2, 2}, 1));
        Pass r = run(t, k, x, {1}, 1);
        EXPECT_TRUE(std::isnan(r.y[0])) << k;
    }
}

/* --------------------------------------------------- shapes and parsing */

TEST(Pool, ShapesAndDescription)
{
    struct { const char *line; cnn_shape in, out; int kh, kw; const char *desc, *torch; } cases[] = {
        {"maxpool 2", {16, 14, 14}, {16, 7, 7}, 2, 2, "maxpool 2", "MaxPool2d"},
        {"maxpool 2", {3, 7, 5}, {3, 3, 2}, 2, 2, "maxpool 2", "MaxPool2d"}, /* eq. 3.7/3.8 floor */
        {"maxpool 3 stride=2 pad=1", {4, 8, 8}, {4, 4, 4}, 3, 3, "maxpool 3 stride=2 pad=1",
         "MaxPool2d"},
        {"avgpool 2x3 stride=1x3", {2, 5, 9}, {2, 4, 3}, 2, 3, "avgpool 2x3 stride=1x3",
         "AvgPool2d"},
        {"avgpool 2 stride=2", {1, 4, 4}, {1, 2, 2}, 2, 2, "avgpool 2", "AvgPool2d"},
        {"maxpool 4 pad=2x1", {1, 6, 6}, {1, 2, 2}, 4, 4, "maxpool 4 pad=2x1", "MaxPool2d"},
    };
    for (auto &c : cases) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, c.line, c.in, 2)) << c.line;
        cnn_layer *l = t.layer;
        tu_expect_layer(l, c.out, nullptr, c.torch, c.desc);
        EXPECT_EQ(l->nparams, 0);
        EXPECT_DOUBLE_EQ(l->ops->flops(l), (double)c.kh * c.kw * c.out.c * c.out.h * c.out.w)
            << c.line;
        /* the description parses back to the same layer */
        TestLayer again;
        ASSERT_TRUE(tu_make_layer(again, l->desc, c.in, 1));
        EXPECT_STREQ(again.layer->desc, c.desc);
        EXPECT_EQ(again.layer->out.h, c.out.h);
    }
}

TEST(Pool, ParseErrors)
{
    struct { const char *line; cnn_shape in; const char *want; } cases[] = {
        {"maxpool", {1, 8, 8}, "test:1: maxpool: expected a pool size"},
        {"maxpool 0", {1, 8, 8}, "pool size"},
        {"avgpool 2 stride=0", {1, 8, 8}, "stride="},
        {"maxpool 2 pad=2", {1, 8, 8}, "pad must be at most half the pool size"},
        {"maxpool 3x2 pad=1x2", {1, 8, 8}, "pad must be at most half"},
        {"maxpool 3", {1, 2, 2}, "test:1: maxpool: output would be 0x0 for input 1x2x2"},
        {"avgpool 2 padmode=zero", {1, 8, 8}, "unknown option 'padmode=zero'"},
    };
    for (auto &c : cases) tu_expect_parse_error(c.line, c.in, c.want);
}

/* ------------------------------------------------ numerical gradients */

static const LayerCase kCases[] = {
    {"maxpool 2", {2, 6, 6}, 2},
    {"maxpool 2", {1, 7, 5}, 2},
    {"maxpool 3 stride=2 pad=1", {2, 7, 6}, 2},
    {"maxpool 2x3 stride=1x2 pad=1", {1, 5, 8}, 1},
    {"maxpool 3 stride=1", {1, 5, 5}, 2},
    {"avgpool 2", {2, 6, 6}, 2},
    {"avgpool 3 stride=2 pad=1", {2, 7, 6}, 2},
    {"avgpool 3x2 stride=3x1 pad=1", {1, 8, 5}, 2},
    {"avgpool 4 stride=1 pad=2", {1, 5, 6}, 1},
};

TEST(Pool, GradientsMatchNumerical)
{
    /* eps small enough that no probe moves a window's arg-max on these seeds */
    for (cnn_kernels k : kBoth)
        for (auto &c : kCases) tu_expect_gradients(c, k, 1, 31, 1e-3, 2e-3);
}

/* ------------------------------------------------ reference vs fast */

TEST(Pool, ReferenceAndFastAgree)
{
    std::vector<LayerCase> cases(std::begin(kCases), std::end(kCases));
    cases.push_back({"maxpool 2", {16, 14, 14}, 64});
    cases.push_back({"avgpool 2", {32, 28, 28}, 16});
    cases.push_back({"maxpool 3 stride=2 pad=1", {8, 27, 27}, 12});
    cases.push_back({"maxpool 1", {1, 1, 1}, 1});
    for (auto &c : cases) tu_expect_ref_matches_fast(c, 1, 4, 1e-6);
}

TEST(Pool, BitIdenticalAcrossThreadCounts)
{
    const int saved = cnn_threads();
    for (const char *line : {"maxpool 2", "avgpool 3 stride=2 pad=1"}) {
        cnn_set_threads(4);
        TestLayer t;
        cnn_shape in = {16, 14, 14};
        ASSERT_TRUE(tu_make_layer(t, line, in, 32));
        auto x = tu_randn(32 * cnn_shape_size(in), 1);
        auto dy = tu_randn(32 * cnn_shape_size(t.layer->out), 2);
        cnn_set_threads(1);
        Pass one = run(t, CNN_KERNELS_FAST, x, dy, 32);
        for (int threads : {2, 4}) {
            cnn_set_threads(threads);
            Pass r = run(t, CNN_KERNELS_FAST, x, dy, 32);
            EXPECT_EQ(0, std::memcmp(one.y.data(), r.y.data(), one.y.size() * 4)) << line;
            EXPECT_EQ(0, std::memcmp(one.dx.data(), r.dx.data(), one.dx.size() * 4)) << line;
        }
    }
    cnn_set_threads(saved);
}

TEST(Pool, MaxpoolTwoByTwoBlocksTiesAndNaN)
{
    /* the 2x2 stride-2 fast path works in vectors of 16 outputs: widths of
     * 1, 7, 16, 17 and 33 outputs (odd inputs leave a dropped column/row),
     * cells drawn from a few values so ties are common, and NaNs sprinkled
     * at every window position; y and dx must equal the reference exactly
     * (ties to the first cell in scan order, a NaN always wins) */
    const cnn_shape shapes[] = {{1, 2, 3}, {2, 15, 14}, {1, 4, 32}, {3, 5, 35}, {1, 6, 67}};
    for (const cnn_shape &in : shapes) {
        const int n = 3;
        const size_t total = (size_t)n * cnn_shape_size(in);
        std::vector<float> x(total);
        for (size_t i = 0; i < total; i++) x[i] = (float)((i * 7919u) % 5) - 2.0f;
        for (size_t i = 3; i < total; i += 13) x[i] = NAN;
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "maxpool 2", in, n));
        std::vector<float> dy(n * cnn_shape_size(t.layer->out));
        for (size_t i = 0; i < dy.size(); i++) dy[i] = 1.0f + (float)i;
        Pass ref = run(t, CNN_KERNELS_REF, x, dy, n), fast = run(t, CNN_KERNELS_FAST, x, dy, n);
        for (size_t i = 0; i < ref.y.size(); i++)
            if (std::isnan(ref.y[i])) EXPECT_TRUE(std::isnan(fast.y[i])) << in.w << " y " << i;
            else EXPECT_EQ(ref.y[i], fast.y[i]) << in.w << " y " << i;
        EXPECT_EQ(ref.dx, fast.dx) << in.c << "x" << in.h << "x" << in.w;
    }
}

TEST(Pool, AvgpoolTwoByTwoMatchesReferenceExactly)
{
    /* the 2x2 stride-2 fast backward writes dy / 4 directly; odd inputs
     * leave a last row/column that no window covers, which must stay 0 */
    const cnn_shape shapes[] = {{1, 2, 2}, {2, 7, 9}, {3, 28, 28}, {1, 5, 35}};
    for (const cnn_shape &in : shapes) {
        const int n = 2;
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "avgpool 2", in, n));
        auto x = tu_randn((size_t)n * cnn_shape_size(in), 3);
        auto dy = tu_randn((size_t)n * cnn_shape_size(t.layer->out), 4);
        Pass ref = run(t, CNN_KERNELS_REF, x, dy, n), fast = run(t, CNN_KERNELS_FAST, x, dy, n);
        EXPECT_EQ(ref.dx, fast.dx) << in.c << "x" << in.h << "x" << in.w;
    }
}

/* ------------------------------------- the 2x2 stride-2 kernels, in depth */

/* Runs `body` once with each SIMD level the CPU offers for the pooling
 * kernels: the GEMM's level switch also picks AVX-512 or portable C here. */
template <class F> static void each_simd_level(F body)
{
    const int saved = cnn_gemm_simd_level();
    for (int level : {CNN_SIMD_AVX512, CNN_SIMD_GENERIC}) {
        const int got = cnn_gemm_set_simd_level(level);
        if (got != level) continue; /* the CPU lacks it: nothing to test */
        body(level);
    }
    cnn_gemm_set_simd_level(saved);
}

static uint32_t bits(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

/* Values drawn from {-1, -0, +0, 1} so most windows tie (and -0 / +0 tie
 * while differing in bits), with NaNs of distinct payloads: y must equal
 * the reference bit for bit, which shows the first cell wins a tie and the
 * last NaN in scan order wins over everything. */
static std::vector<float> ties_and_nans(size_t total, uint32_t seed)
{
    std::vector<float> x(total);
    uint32_t s = seed;
    for (size_t i = 0; i < total; i++) {
        s = s * 1664525u + 1013904223u;
        const float v[4] = {-1.0f, -0.0f, 0.0f, 1.0f};
        x[i] = v[(s >> 16) & 3];
        if (((s >> 8) & 15) == 0) {
            const uint32_t nan = 0x7fc00000u | (uint32_t)(i & 0x3fffff);
            std::memcpy(&x[i], &nan, 4);
        }
    }
    return x;
}

TEST(Pool, TwoByTwoKernelsMatchReferenceOnEveryWidth)
{
    /* W <= 16 packs two output rows per vector, wider rows go in blocks of
     * 16 windows plus a masked tail: widths around 16, 32 and 64 and odd
     * ones (a last column in no window), odd H (each plane a call, its last
     * row in no window), n = 1 and the row counts that leave a lone last
     * row in the packed path */
    const int widths[] = {2, 3, 4, 5, 10, 14, 15, 16, 17, 18, 24, 28, 31, 32, 33, 34, 47, 64, 67};
    const int heights[] = {2, 3, 5, 10};
    each_simd_level([&](int level) {
        for (const char *line : {"maxpool 2", "avgpool 2"})
            for (int w : widths)
                for (int h : heights)
                    for (int n : {1, 3}) {
                        const cnn_shape in = {3, h, w};
                        TestLayer t;
                        ASSERT_TRUE(tu_make_layer(t, line, in, n));
                        const auto x = ties_and_nans((size_t)n * cnn_shape_size(in), 17u * w + h);
                        std::vector<float> dy = tu_randn((size_t)n * cnn_shape_size(t.layer->out), 5);
                        Pass ref = run(t, CNN_KERNELS_REF, x, dy, n);
                        Pass fast = run(t, CNN_KERNELS_FAST, x, dy, n);
                        for (size_t i = 0; i < ref.y.size(); i++) {
                            if (line[0] == 'm')
                                ASSERT_EQ(bits(ref.y[i]), bits(fast.y[i]))
                                    << line << " level " << level << " " << h << "x" << w << " n "
                                    << n << " y " << i;
                            else if (!std::isnan(ref.y[i]))
                                ASSERT_EQ(ref.y[i], fast.y[i]) << line << " " << h << "x" << w;
                            else
                                ASSERT_TRUE(std::isnan(fast.y[i])) << line << " " << h << "x" << w;
                        }
                        /* every dx cell is written, the uncovered ones 0 */
                        ASSERT_EQ(ref.dx, fast.dx)
                            << line << " level " << level << " " << h << "x" << w << " n " << n;
                    }
    });
}

TEST(Pool, TwoByTwoByHandOnBothLevels)
{
    /* one 2x4 plane = two windows, then a 4x2 plane = two rows of one
     * window (the packed path's lone last row when H/2 is odd, here 2) */
    each_simd_level([&](int level) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "maxpool 2", {1, 2, 4}, 1));
        /* 3 1 | 2 2     window 0: 3 at a;  window 1: the tie 2 2 / 5 5 -> c */
        /* 0 3 | 5 5 */
        Pass r = run(t, CNN_KERNELS_FAST, {3, 1, 2, 2, 0, 3, 5, 5}, {7, 9}, 1);
        EXPECT_EQ(r.y, (std::vector<float>{3, 5})) << level;
        EXPECT_EQ(r.dx, (std::vector<float>{7, 0, 0, 0, 0, 0, 9, 0})) << level;

        TestLayer a;
        ASSERT_TRUE(tu_make_layer(a, "avgpool 2", {1, 5, 3}, 1));
        r = run(a, CNN_KERNELS_FAST, {1, 2, 9, 3, 4, 9, 5, 6, 9, 7, 8, 9, 9, 9, 9}, {4, 8}, 1);
        EXPECT_EQ(r.y, (std::vector<float>{2.5f, 6.5f})) << level;
        EXPECT_EQ(r.dx, (std::vector<float>{1, 1, 0, 1, 1, 0, 2, 2, 0, 2, 2, 0, 0, 0, 0})) << level;
    });
}

TEST(Pool, TwoByTwoThreadedSplitIsBitIdentical)
{
    /* large enough that the fast kernels really go parallel (the layer's
     * flops times n reach CNN_PARALLEL_MIN_FLOPS), with an odd H and W so
     * the per-plane calls are split too */
    const int saved = cnn_threads();
    const cnn_shape in = {32, 33, 29};
    const int n = 40;
    each_simd_level([&](int level) {
        for (const char *line : {"maxpool 2", "avgpool 2"}) {
            cnn_set_threads(3);
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, line, in, n));
            ASSERT_GE(t.layer->ops->flops(t.layer) * n, CNN_PARALLEL_MIN_FLOPS);
            const auto x = ties_and_nans((size_t)n * cnn_shape_size(in), 99);
            const auto dy = tu_randn((size_t)n * cnn_shape_size(t.layer->out), 2);
            cnn_set_threads(1);
            Pass one = run(t, CNN_KERNELS_FAST, x, dy, n);
            Pass ref = run(t, CNN_KERNELS_REF, x, dy, n);
            EXPECT_EQ(ref.dx, one.dx) << line << " level " << level;
            for (int threads : {2, 3}) {
                cnn_set_threads(threads);
                Pass r = run(t, CNN_KERNELS_FAST, x, dy, n);
                EXPECT_EQ(0, std::memcmp(one.y.data(), r.y.data(), one.y.size() * 4))
                    << line << " " << threads;
                EXPECT_EQ(0, std::memcmp(one.dx.data(), r.dx.data(), one.dx.size() * 4))
                    << line << " " << threads;
            }
        }
    });
    cnn_set_threads(saved);
}
