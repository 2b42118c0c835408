/* test_activation.cpp — relu, leaky_relu, sigmoid, tanh, softmax: values
 * worked by hand, shapes, parse errors, numerical gradients, reference vs
 * fast, and softmax's stability at logits of +-1e4. */
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "testutil.h"

namespace {

const cnn_kernels KERNELS[2] = {CNN_KERNELS_REF, CNN_KERNELS_FAST};

/* forward then backward with the given dy on one layer */
void run(TestLayer &t, cnn_kernels k, const std::vector<float> &x, int n, std::vector<float> &y,
         const std::vector<float> &dy, std::vector<float> &dx, int train = 1)
{
    t.layer->kernels = k;
    y.assign(x.size(), 0.0f);
    dx.assign(x.size(), 0.0f);
    t.layer->ops->forward(t.layer, x.data(), y.data(), n, train, cnn_threads());
    t.layer->ops->backward(t.layer, x.data(), y.data(), dy.data(), dx.data(), n, cnn_threads());
}

} // namespace

TEST(Activation, ReluAndLeakyByHand)
{
    std::vector<float> x = {-2, -0.5f, 0, 1.5f}, dy = {1, 2, 3, 4}, y, dx;
    for (cnn_kernels k : KERNELS) {
        TestLayer r;
        ASSERT_TRUE(tu_make_layer(r, "relu", cnn_shape{4, 1, 1}, 1));
        run(r, k, x, 1, y, dy, dx);
        EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 1.5f}));
        EXPECT_EQ(dx, (std::vector<float>{0, 0, 0, 4})); /* 0 at x == 0, as torch */

        TestLayer lr;
        ASSERT_TRUE(tu_make_layer(lr, "leaky_relu 0.1", cnn_shape{4, 1, 1}, 1));
        run(lr, k, x, 1, y, dy, dx);
        EXPECT_FLOAT_EQ(y[0], -0.2f);
        EXPECT_FLOAT_EQ(y[1], -0.05f);
        EXPECT_FLOAT_EQ(y[3], 1.5f);
        EXPECT_FLOAT_EQ(dx[0], 0.1f);
        EXPECT_FLOAT_EQ(dx[1], 0.2f);
        EXPECT_FLOAT_EQ(dx[3], 4.0f);
    }
}

/* sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid'(x) = s(1 - s);
 * tanh(0) = 0, tanh(atanh(0.5)) = 0.5, tanh' = 1 - t^2 */
TEST(Activation, SigmoidTanhByHand)
{
    std::vector<float> x = {0.0f, (float)std::log(3.0)}, dy = {1, 1}, y, dx;
    for (cnn_kernels k : KERNELS) {
        TestLayer s;
        ASSERT_TRUE(tu_make_layer(s, "sigmoid", cnn_shape{2, 1, 1}, 1));
        run(s, k, x, 1, y, dy, dx);
        EXPECT_NEAR(y[0], 0.5f, 1e-7);
        EXPECT_NEAR(y[1], 0.75f, 1e-7);
        EXPECT_NEAR(dx[0], 0.25f, 1e-7);
        EXPECT_NEAR(dx[1], 0.1875f, 1e-7);

        TestLayer th;
        ASSERT_TRUE(tu_make_layer(th, "tanh", cnn_shape{2, 1, 1}, 1));
        std::vector<float> xt = {0.0f, (float)std::atanh(0.5)};
        run(th, k, xt, 1, y, dy, dx);
        EXPECT_NEAR(y[0], 0.0f, 1e-7);
        EXPECT_NEAR(y[1], 0.5f, 1e-6);
        EXPECT_NEAR(dx[0], 1.0f, 1e-7);
        EXPECT_NEAR(dx[1], 0.75f, 1e-6);
    }
}

/* softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6; with dy = [1, 0, 0]:
 * dx = y .* (dy - y0) = [1/6 * 5/6, -2/6 * 1/6, -3/6 * 1/6] */
TEST(Activation, SoftmaxByHand)
{
    std::vector<float> x = {0.0f, (float)std::log(2.0), (float)std::log(3.0), 5, 5, 5};
    std::vector<float> dy = {1, 0, 0, 0, 1, 0}, y, dx;
    for (cnn_kernels k : KERNELS) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "softmax", cnn_shape{3, 1, 1}, 2));
        run(t, k, x, 2, y, dy, dx);
        EXPECT_NEAR(y[0], 1.0 / 6, 1e-7);
        EXPECT_NEAR(y[1], 2.0 / 6, 1e-7);
        EXPECT_NEAR(y[2], 3.0 / 6, 1e-7);
        for (int j = 3; j < 6; j++) EXPECT_NEAR(y[j], 1.0 / 3, 1e-7);
        EXPECT_NEAR(dx[0], 5.0 / 36, 1e-7);
        EXPECT_NEAR(dx[1], -2.0 / 36, 1e-7);
        EXPECT_NEAR(dx[2], -3.0 / 36, 1e-7);
        EXPECT_NEAR(dx[4], 2.0 / 9, 1e-7);
    }
}

TEST(Activation, SoftmaxStableAtHugeLogits)
{
    /* each row sums to one; +-1e4 neither overflows nor underflows to NaN */
    std::vector<float> x = {1e4f, -1e4f, 0.0f, 1e4f, -1e4f, -1e4f, -1e4f, -1e4f};
    std::vector<float> dy = tu_randn(8, 3), y, dx;
    for (cnn_kernels k : KERNELS) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "softmax", cnn_shape{4, 1, 1}, 2));
        run(t, k, x, 2, y, dy, dx);
        EXPECT_FLOAT_EQ(y[0], 0.5f);
        EXPECT_EQ(y[1], 0.0f);
        EXPECT_EQ(y[2], 0.0f);
        EXPECT_FLOAT_EQ(y[3], 0.5f);
        for (int j = 4; j < 8; j++) EXPECT_FLOAT_EQ(y[j], 0.25f);
        for (int r = 0; r < 2; r++) {
            double s = 0;
            for (int j = 0; j < 4; j++) s += y[r * 4 + j];
            EXPECT_NEAR(s, 1.0, 1e-6);
        }
        for (float v : dx) EXPECT_TRUE(std::isfinite(v));
    }
}

TEST(Activation, ShapesNamesDescs)
{
    struct {
        const char *line, *kind, *torch, *desc;
    } cases[] = {{"relu", "relu", "ReLU", "relu"},
                 {"leaky_relu", "leaky_relu", "LeakyReLU", "leaky_relu 0.01"},
                 {"leaky_relu alpha=0.2", "leaky_relu", "LeakyReLU", "leaky_relu 0.2"},
                 {"sigmoid", "sigmoid", "Sigmoid", "sigmoid"},
                 {"tanh", "tanh", "Tanh", "tanh"},
                 {"softmax", "softmax", "Softmax", "softmax"}};
    for (auto &c : cases) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, c.line, cnn_shape{3, 5, 4}, 2));
        cnn_layer *l = t.layer;
        tu_expect_layer(l, cnn_shape{3, 5, 4}, c.kind, c.torch, c.desc);
        EXPECT_EQ(l->nparams, 0);
        EXPECT_GT(l->ops->flops(l), 0.0);
    }
}

TEST(Activation, ParseErrors)
{
    cnn_shape in{4, 1, 1};
    tu_expect_parse_error("relu 3", in, "test:1: relu: unexpected word '3'");
    tu_expect_parse_error("softmax dim=0", in, "test:1: softmax: unknown option 'dim=0'");
    tu_expect_parse_error("leaky_relu steep", in, "test:1: leaky_relu: a slope must be a number");
    tu_expect_parse_error("leaky_relu alpha=x", in, "alpha=");
    tu_expect_parse_error("leaky_relu 0.1 0.2", in, "unexpected word '0.2'");
}

TEST(Activation, GradientCheck)
{
    /* eps 1e-3: relu's kink must not fall inside a probe (the inputs are
     * N(0,1); none of the probed ones is that close to 0) */
    for (const char *line : {"relu", "leaky_relu 0.2", "sigmoid", "tanh", "softmax"}) {
        for (cnn_kernels k : KERNELS) {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, line, cnn_shape{3, 2, 5}, 3));
            t.layer->kernels = k;
            std::string where;
            double e = tu_gradcheck_layer(t, 3, 21, 1, 1e-3, &where);
            EXPECT_LT(e, 1e-3) << line << " kernels " << k << " at " << where;
        }
    }
}

TEST(Activation, RefVsFast)
{
    /* small (one thread) and large enough to go parallel */
    for (const char *line : {"relu", "leaky_relu 0.05", "sigmoid", "tanh", "softmax"}) {
        for (int big = 0; big < 2; big++) {
            TestLayer t;
            cnn_shape in = big ? cnn_shape{16, 16, 16} : cnn_shape{3, 1, 7};
            int n = big ? 64 : 5;
            ASSERT_TRUE(tu_make_layer(t, line, in, n));
            std::string where;
            EXPECT_LT(tu_ref_vs_fast(t, n, 17, 1, &where), 1e-5) << line << " big " << big << " at "
                                                                 << where;
        }
    }
}

TEST(Activation, EvalEqualsTrain)
{
    std::vector<float> x = tu_randn(2 * 10, 5), dy = tu_randn(2 * 10, 6);
    for (const char *line : {"relu", "sigmoid", "softmax"}) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, line, cnn_shape{10, 1, 1}, 2));
        std::vector<float> y1, y0, dx1, dx0;
        run(t, CNN_KERNELS_FAST, x, 2, y1, dy, dx1, 1);
        run(t, CNN_KERNELS_FAST, x, 2, y0, dy, dx0, 0);
        EXPECT_EQ(y1, y0) << line;
        EXPECT_EQ(dx1, dx0) << line;
    }
}

TEST(Activation, FastIsSameForAnyThreadCount)
{
    std::vector<float> x = tu_randn(64 * 4096, 1), dy = tu_randn(64 * 4096, 2);
    const int saved = cnn_get_threads();
    for (const char *line : {"sigmoid", "softmax"}) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, line, cnn_shape{16, 16, 16}, 64));
        std::vector<float> y[2], dx[2];
        for (int k = 0; k < 2; k++) {
            cnn_set_threads(k + 1);
            run(t, CNN_KERNELS_FAST, x, 64, y[k], dy, dx[k]);
        }
        EXPECT_EQ(y[0], y[1]) << line;
        EXPECT_EQ(dx[0], dx[1]) << line;
    }
    cnn_set_threads(saved);
}
