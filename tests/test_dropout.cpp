/* test_dropout.cpp — inverted dropout: eval is the identity, train keeps
 * about 1 - p of the elements scaled by 1/(1 - p), backward reuses the mask,
 * the mask comes from the layer's RNG in element order (same seed, same mask,
 * any thread count), parse errors, numerical gradients, ref vs fast. */
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "testutil.h"

namespace {

const cnn_kernels KERNELS[2] = {CNN_KERNELS_REF, CNN_KERNELS_FAST};

} // namespace

/* p = 0.5 on x = [1, 2, 3, 4]: every output is 0 or 2x, and the gradient
 * passes exactly where the value did (dx = dy * 2 or 0). */
TEST(Dropout, HandWorked)
{
    for (cnn_kernels k : KERNELS) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "dropout 0.5", cnn_shape{4, 1, 1}, 1));
        t.layer->kernels = k;
        float x[4] = {1, 2, 3, 4}, y[4], dy[4] = {1, 1, 1, 1}, dx[4];
        t.layer->ops->forward(t.layer, x, y, 1, 1, cnn_threads());
        t.layer->ops->backward(t.layer, x, y, dy, dx, 1, cnn_threads());
        for (int i = 0; i < 4; i++) {
            EXPECT_TRUE(y[i] == 0.0f || y[i] == 2 * x[i]) << y[i];
            EXPECT_EQ(dx[i], y[i] == 0.0f ? 0.0f : 2.0f);
        }
    }
}

TEST(Dropout, EvalIsIdentity)
{
    for (cnn_kernels k : KERNELS) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "dropout 0.7", cnn_shape{3, 4, 5}, 2));
        t.layer->kernels = k;
        std::vector<float> x = tu_randn(120, 1), y(120), dy = tu_randn(120, 2), dx(120);
        cnn_rng before = t.rng;
        t.layer->ops->forward(t.layer, x.data(), y.data(), 2, 0, cnn_threads());
        t.layer->ops->backward(t.layer, x.data(), y.data(), dy.data(), dx.data(), 2, cnn_threads());
        EXPECT_EQ(y, x);
        EXPECT_EQ(dx, dy);
        /* eval draws nothing: the model's random stream is untouched */
        EXPECT_EQ(std::memcmp(&before, &t.rng, sizeof before), 0);
    }
}

TEST(Dropout, ZeroProbabilityIsIdentityInTraining)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dropout 0", cnn_shape{10, 1, 1}, 3));
    std::vector<float> x = tu_randn(30, 1), y(30);
    t.layer->ops->forward(t.layer, x.data(), y.data(), 3, 1, cnn_threads());
    EXPECT_EQ(y, x);
}

TEST(Dropout, KeepRateAndScale)
{
    const int n = 16, f = 4096;
    const double p = 0.3;
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dropout 0.3", cnn_shape{f, 1, 1}, n));
    std::vector<float> x(n * f, 1.0f), y(n * f);
    t.layer->ops->forward(t.layer, x.data(), y.data(), n, 1, cnn_threads());
    size_t kept = 0;
    double sum = 0;
    for (float v : y) {
        ASSERT_TRUE(v == 0.0f || std::fabs(v - 1 / (1 - p)) < 1e-6) << v;
        kept += v != 0.0f;
        sum += v;
    }
    const double total = (double)n * f, sd = std::sqrt(total * p * (1 - p));
    EXPECT_NEAR((double)kept, total * (1 - p), 5 * sd);
    /* inverted dropout keeps the expectation: mean output ~ 1 */
    EXPECT_NEAR(sum / total, 1.0, 5 * sd / total / (1 - p));
}

TEST(Dropout, MaskFollowsSeedNotThreads)
{
    const int n = 64, f = 4096;
    std::vector<float> x = tu_randn(n * f, 4), y[3];
    const int saved = cnn_get_threads();
    for (int k = 0; k < 3; k++) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "dropout 0.4", cnn_shape{16, 16, 16}, n, k == 2 ? 99 : 5));
        cnn_set_threads(k == 1 ? 2 : 1);
        y[k].assign(x.size(), 0);
        t.layer->ops->forward(t.layer, x.data(), y[k].data(), n, 1, cnn_threads());
    }
    cnn_set_threads(saved);
    EXPECT_EQ(y[0], y[1]); /* same seed, 1 vs 2 threads */
    EXPECT_NE(y[0], y[2]); /* another seed, another mask */
}

TEST(Dropout, ConsecutiveBatchesGetNewMasks)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dropout 0.5", cnn_shape{256, 1, 1}, 1));
    std::vector<float> x(256, 1.0f), a(256), b(256);
    t.layer->ops->forward(t.layer, x.data(), a.data(), 1, 1, cnn_threads());
    t.layer->ops->forward(t.layer, x.data(), b.data(), 1, 1, cnn_threads());
    EXPECT_NE(a, b);
}

TEST(Dropout, ShapesAndNames)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dropout 0.25", cnn_shape{8, 3, 3}, 2));
    cnn_layer *l = t.layer;
    tu_expect_layer(l, cnn_shape{8, 3, 3}, "dropout", "Dropout", "dropout 0.25");
    EXPECT_EQ(l->nparams, 0);
}

TEST(Dropout, ParseErrors)
{
    cnn_shape in{4, 1, 1};
    tu_expect_parse_error("dropout", in, "test:1: dropout: expected a drop probability");
    tu_expect_parse_error("dropout 1", in, "test:1: dropout: the drop probability must be below 1");
    tu_expect_parse_error("dropout 1.5", in, "'1.5'");
    tu_expect_parse_error("dropout -0.1", in, "'-0.1'");
    tu_expect_parse_error("dropout half", in, "'half'");
    tu_expect_parse_error("dropout 0.5 p=0.5", in, "unknown option 'p=0.5'");
}

TEST(Dropout, GradientCheck)
{
    /* the helper resets the RNG before every forward, so every probe sees
     * the same mask */
    for (int train = 0; train < 2; train++)
        for (cnn_kernels k : KERNELS) {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, "dropout 0.3", cnn_shape{3, 3, 5}, 4));
            t.layer->kernels = k;
            std::string where;
            EXPECT_LT(tu_gradcheck_layer(t, 4, 31, train, 1e-2, &where), 1e-4)
                << "train " << train << " kernels " << k << " at " << where;
        }
}

TEST(Dropout, RefVsFast)
{
    for (int big = 0; big < 2; big++) {
        TestLayer t;
        cnn_shape in = big ? cnn_shape{16, 16, 16} : cnn_shape{3, 1, 7};
        int n = big ? 64 : 5;
        ASSERT_TRUE(tu_make_layer(t, "dropout 0.5", in, n));
        std::string where;
        EXPECT_LT(tu_ref_vs_fast(t, n, 17, 1, &where), 1e-6) << "big " << big << " at " << where;
    }
}

TEST(Dropout, KeepRateOddSizeAndTail)
{
    /* the mask takes four 16-bit slices per 64-bit draw: an element count
     * not divisible by 4 ends with a partial draw, which must still give
     * valid values at the usual rate and the same mask for the same seed */
    const int n = 3, f = 20001;
    const double p = 0.25;
    std::vector<float> x(n * f, 1.0f), y[2];
    for (int k = 0; k < 2; k++) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "dropout 0.25", cnn_shape{f, 1, 1}, n, 7));
        y[k].assign(x.size(), NAN);
        t.layer->ops->forward(t.layer, x.data(), y[k].data(), n, 1, cnn_threads());
    }
    size_t kept = 0;
    for (float v : y[0]) {
        ASSERT_TRUE(v == 0.0f || std::fabs(v - 1 / (1 - p)) < 1e-6) << v;
        kept += v != 0.0f;
    }
    const double total = (double)n * f, sd = std::sqrt(total * p * (1 - p));
    EXPECT_NEAR((double)kept, total * (1 - p), 5 * sd);
    EXPECT_EQ(0, std::memcmp(y[0].data(), y[1].data(), y[0].size() * 4));
}
