/* test_pool.cpp — max and average pooling: by-hand examples on both
 * kernels, shapes and parse errors, numerical gradients, reference vs fast. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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
    l->ops->forward(l, x.data(), r.y.data(), n, 1);
    l->ops->backward(l, x.data(), r.y.data(), dy.data(), r.dx.data(), n);
    return r;
}

/* ------------------------------------------------------------ by hand */

TEST(Pool, ByHandMaxpool4x4)
{
    /*  1  5 | 2  0        y = 6 8      dy = 10 20   dx: 10 at the 6, 20 at the 8,
     *  6 -1 | 8  3            9 7           30 40       30 at the 9, 40 at the 7
     *  ----------
     *  0  9 | 7  7   <- tie: the first 7 in scan order wins
     *  2  4 | 7  1 */
    std::vector<float> x = {1, 5, 2, 0, 6, -1, 8, 3, 0, 9, 7, 7, 2, 4, 7, 1};
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "maxpool 2", {1, 4, 4}, 1));
        Pass r = run(t, k, x, {10, 20, 30, 40}, 1);
        EXPECT_EQ(r.y, (std::vector<float>{6, 8, 9, 7})) << k;
        EXPECT_EQ(r.dx, (std::vector<float>{0, 0, 0, 0, 10, 0, 20, 0, 0, 30, 40, 0, 0, 0, 0, 0}))
            << k;
    }
}

TEST(Pool, ByHandAvgpool4x4)
{
    std::vector<float> x = {1, 5, 2, 0, 6, -1, 8, 3, 0, 9, 7, 7, 2, 4, 7, 1};
    for (cnn_kernels k : kBoth) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "avgpool 2", {1, 4, 4}, 1));
        Pass r = run(t, k, x, {4, 8, 12, 16}, 1);
        EXPECT_EQ(r.y, (std::vector<float>{2.75f, 3.25f, 3.75f, 5.5f})) << k;
        EXPECT_EQ(r.dx, (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4})) << k;
    }
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
        EXPECT_EQ(l->out.c, c.out.c) << c.line;
        EXPECT_EQ(l->out.h, c.out.h) << c.line;
        EXPECT_EQ(l->out.w, c.out.w) << c.line;
        EXPECT_STREQ(l->desc, c.desc);
        EXPECT_STREQ(l->ops->torch, c.torch);
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
    for (auto &c : cases) {
        std::string msg;
        EXPECT_EQ(tu_layer_error(c.line, c.in, &msg), CNN_ERR_PARSE) << c.line;
        EXPECT_NE(msg.find(c.want), std::string::npos) << c.line << " gave: " << msg;
    }
}

/* ------------------------------------------------ numerical gradients */

struct PoolCase {
    const char *line;
    cnn_shape in;
    int n;
};

static const PoolCase kCases[] = {
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
        for (auto &c : kCases) {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, c.line, c.in, c.n));
            t.layer->kernels = k;
            std::string where;
            double e = tu_gradcheck_layer(t, c.n, 31, 1, 1e-3, &where);
            EXPECT_LT(e, 2e-3) << c.line << " kernels " << k << " at " << where;
        }
}

/* ------------------------------------------------ reference vs fast */

TEST(Pool, ReferenceAndFastAgree)
{
    std::vector<PoolCase> cases(std::begin(kCases), std::end(kCases));
    cases.push_back({"maxpool 2", {16, 14, 14}, 64});
    cases.push_back({"avgpool 2", {32, 28, 28}, 16});
    cases.push_back({"maxpool 3 stride=2 pad=1", {8, 27, 27}, 12});
    cases.push_back({"maxpool 1", {1, 1, 1}, 1});
    for (auto &c : cases) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, c.line, c.in, c.n));
        std::string where;
        EXPECT_LT(tu_ref_vs_fast(t, c.n, 4, 1, &where), 1e-6) << c.line << " at " << where;
    }
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
    /* the 2x2 stride-2 fast path works in blocks of 16 outputs: widths of
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
