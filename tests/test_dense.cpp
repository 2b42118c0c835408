/* test_dense.cpp — the fully connected layer: a forward worked by hand,
 * shapes and parameters, parse errors, numerical gradients, reference vs
 * fast (including a large 9216 -> 128 layer), thread-count determinism. */
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "testutil.h"

namespace {

cnn_shape flat(int n) { return cnn_shape{n, 1, 1}; }

std::vector<float> forward(TestLayer &t, const std::vector<float> &x, int n, cnn_kernels k)
{
    t.layer->kernels = k;
    std::vector<float> y((size_t)n * cnn_shape_size(t.layer->out));
    t.layer->ops->forward(t.layer, x.data(), y.data(), n, 1, cnn_threads());
    return y;
}

} // namespace

/* x = [1, 2, 3] and [0, -1, 0.5]; weight (2, 3) = [[1, 0, -1], [0.5, 0.5, 0.5]],
 * bias = [0.1, -0.2]:
 *   y0 = [1 - 3 + 0.1, 0.5 + 1 + 1.5 - 0.2] = [-1.9, 2.8]
 *   y1 = [0 - 0.5 + 0.1, -0.5 + 0.25 - 0.2] = [-0.4, -0.45]
 * backward with dy = [[1, 0], [0, 2]]:
 *   dx0 = 1 * w row 0 = [1, 0, -1];  dx1 = 2 * w row 1 = [1, 1, 1]
 *   dW = dy^T x = [[1, 2, 3], [0, -2, 1]];  db = [1, 2] */
TEST(Dense, HandWorked)
{
    for (cnn_kernels k : {CNN_KERNELS_REF, CNN_KERNELS_FAST}) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "dense 2", flat(3), 2));
        const float w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {0.1f, -0.2f};
        std::memcpy(t.layer->params[0].data, w, sizeof w);
        std::memcpy(t.layer->params[1].data, b, sizeof b);
        std::vector<float> x = {1, 2, 3, 0, -1, 0.5f};
        std::vector<float> y = forward(t, x, 2, k);
        EXPECT_NEAR(y[0], -1.9f, 1e-6);
        EXPECT_NEAR(y[1], 2.8f, 1e-6);
        EXPECT_NEAR(y[2], -0.4f, 1e-6);
        EXPECT_NEAR(y[3], -0.45f, 1e-6);

        std::vector<float> dy = {1, 0, 0, 2}, dx(6);
        t.layer->ops->backward(t.layer, x.data(), y.data(), dy.data(), dx.data(), 2, cnn_threads());
        const float dx_want[6] = {1, 0, -1, 1, 1, 1};
        const float dw_want[6] = {1, 2, 3, 0, -2, 1};
        for (int i = 0; i < 6; i++) {
            EXPECT_FLOAT_EQ(dx[i], dx_want[i]) << i;
            EXPECT_FLOAT_EQ(t.layer->params[0].grad[i], dw_want[i]) << i;
        }
        EXPECT_FLOAT_EQ(t.layer->params[1].grad[0], 1.0f);
        EXPECT_FLOAT_EQ(t.layer->params[1].grad[1], 2.0f);

        /* dx == NULL (first layer): the parameter gradients still come out */
        std::fill(t.grad.begin(), t.grad.end(), 0.0f);
        t.layer->ops->backward(t.layer, x.data(), y.data(), dy.data(), nullptr, 2, cnn_threads());
        EXPECT_FLOAT_EQ(t.layer->params[0].grad[2], 3.0f);
    }
}

TEST(Dense, ShapesAndParams)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dense 10", flat(784), 4));
    cnn_layer *l = t.layer;
    tu_expect_layer(l, flat(10), "dense", "Linear", "dense 10");
    ASSERT_EQ(l->nparams, 2);
    /* torch.nn.Linear's layout: weight (out, in) */
    EXPECT_STREQ(l->params[0].name, "weight");
    EXPECT_EQ(l->params[0].ndim, 2);
    EXPECT_EQ(l->params[0].dims[0], 10);
    EXPECT_EQ(l->params[0].dims[1], 784);
    EXPECT_EQ(l->params[0].fan_in, 784);
    EXPECT_EQ(l->params[0].fan_out, 10);
    EXPECT_EQ(l->params[0].init, CNN_PINIT_WEIGHT);
    EXPECT_STREQ(l->params[1].name, "bias");
    EXPECT_EQ(l->params[1].size, 10u);
    EXPECT_EQ(l->params[1].init, CNN_PINIT_ZERO);
    EXPECT_DOUBLE_EQ(l->ops->flops(l), 2.0 * 784 * 10);

    TestLayer nb;
    ASSERT_TRUE(tu_make_layer(nb, "dense 3 bias=0", flat(5), 2));
    EXPECT_EQ(nb.layer->nparams, 1);
    EXPECT_STREQ(nb.layer->desc, "dense 3 bias=0");
}

TEST(Dense, ParseErrors)
{
    tu_expect_parse_error("dense", flat(8), "test:1: dense: expected an output size");
    tu_expect_parse_error("dense 0", flat(8), "output size");
    tu_expect_parse_error("dense ten", flat(8), "'ten'");
    tu_expect_parse_error("dense 4 bias=2", flat(8), "bias=");
    tu_expect_parse_error("dense 4 5", flat(8), "unexpected word '5'");
    tu_expect_parse_error("dense 10", cnn_shape{16, 7, 7}, "test:1: dense: needs a flat input (got 16x7x7)");
    tu_expect_parse_error("dense 10", cnn_shape{16, 7, 7}, "'flatten'");
}

TEST(Dense, GradientCheck)
{
    for (const char *line : {"dense 5", "dense 3 bias=0"}) {
        for (cnn_kernels k : {CNN_KERNELS_REF, CNN_KERNELS_FAST}) {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, line, flat(7), 3));
            t.layer->kernels = k;
            std::string where;
            double e = tu_gradcheck_layer(t, 3, 5, 1, 1e-2, &where);
            EXPECT_LT(e, 1e-3) << line << " kernels " << k << " at " << where;
        }
    }
}

TEST(Dense, RefVsFastSmallOdd)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dense 13", flat(37), 5));
    std::string where;
    EXPECT_LT(tu_ref_vs_fast(t, 5, 9, 1, &where), 1e-5) << where;
}

TEST(Dense, RefVsFastLarge)
{
    /* AlexNet-ish classifier head: batch 64, 9216 -> 128 */
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dense 128", flat(9216), 64, 3, 0.02f));
    std::string where;
    EXPECT_LT(tu_ref_vs_fast(t, 64, 4, 1, &where), 1e-5) << where;
}

TEST(Dense, FastIsSameForAnyThreadCount)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "dense 96", flat(1000), 32, 6, 0.05f));
    std::vector<float> x = tu_randn(32 * 1000, 8), dy = tu_randn(32 * 96, 9);
    std::vector<float> y[2], dx[2], g[2];
    const int saved = cnn_get_threads();
    for (int k = 0; k < 2; k++) {
        cnn_set_threads(k + 1);
        y[k] = forward(t, x, 32, CNN_KERNELS_FAST);
        dx[k].assign(x.size(), 0.0f);
        t.layer->ops->backward(t.layer, x.data(), y[k].data(), dy.data(), dx[k].data(), 32, cnn_threads());
        g[k] = t.grad;
    }
    cnn_set_threads(saved);
    EXPECT_EQ(y[0], y[1]);
    EXPECT_EQ(dx[0], dx[1]);
    EXPECT_EQ(g[0], g[1]);
}
