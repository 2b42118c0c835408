/* test_batchnorm.cpp — batch normalisation: a forward worked by hand,
 * PyTorch's numbers on a small BatchNorm2d case, running statistics, eval
 * mode, shapes and names, parse errors, numerical gradients, ref vs fast.
 *
 * The BatchNorm2d numbers were produced with torch 1.13 (Debian's
 * python3-torch): x = sin(1.3 * arange(24)) * 2 + 0.5 reshaped (2, 3, 2, 2),
 * BatchNorm2d(3) with weight [1, 0.5, 2], bias [0, 0.1, -0.2], fresh
 * running stats (0, 1); one train-mode forward printed y, running_mean,
 * running_var; then .eval() and the same x printed y again (%.9g). */
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "testutil.h"

namespace {

enum { W = 0, B, RM, RV };

const cnn_kernels KERNELS[2] = {CNN_KERNELS_REF, CNN_KERNELS_FAST};

void set(cnn_layer *l, int p, std::vector<float> v)
{
    ASSERT_EQ(v.size(), l->params[p].size);
    std::memcpy(l->params[p].data, v.data(), v.size() * sizeof(float));
}

std::vector<float> get(cnn_layer *l, int p)
{
    return std::vector<float>(l->params[p].data, l->params[p].data + l->params[p].size);
}

std::vector<float> torch_x()
{
    std::vector<float> x(24);
    for (int i = 0; i < 24; i++) x[i] = std::sin((float)i * 1.3f) * 2 + 0.5f;
    return x;
}

} // namespace

/* One feature, batch of 2: x = [1, 3] -> mean 2, biased var 1, unbiased 2.
 * weight 2, bias 0.5: y = 2 * (+-1)/sqrt(1 + eps) + 0.5.
 * running_mean = 0.9 * 0 + 0.1 * 2 = 0.2; running_var = 0.9 * 1 + 0.1 * 2 = 1.1 */
TEST(BatchNorm, HandWorked1d)
{
    for (cnn_kernels k : KERNELS) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "batchnorm", cnn_shape{1, 1, 1}, 2));
        cnn_layer *l = t.layer;
        l->kernels = k;
        set(l, W, {2});
        set(l, B, {0.5f});
        set(l, RM, {0});
        set(l, RV, {1});
        float x[2] = {1, 3}, y[2];
        l->ops->forward(l, x, y, 2, 1, cnn_threads());
        const double s = 1 / std::sqrt(1 + 1e-5);
        EXPECT_NEAR(y[0], -2 * s + 0.5, 1e-6);
        EXPECT_NEAR(y[1], 2 * s + 0.5, 1e-6);
        EXPECT_NEAR(get(l, RM)[0], 0.2f, 1e-7);
        EXPECT_NEAR(get(l, RV)[0], 1.1f, 1e-7);
        /* dy = [1, 1]: the shift cancels through the batch mean, dx = 0;
         * dbias = 2, dweight = sum dy * x_hat = 0 */
        float dy[2] = {1, 1}, dx[2];
        l->ops->backward(l, x, y, dy, dx, 2, cnn_threads());
        EXPECT_NEAR(dx[0], 0.0f, 1e-6);
        EXPECT_NEAR(dx[1], 0.0f, 1e-6);
        EXPECT_FLOAT_EQ(l->params[B].grad[0], 2.0f);
        EXPECT_NEAR(l->params[W].grad[0], 0.0f, 1e-6);

        /* eval: (x - 0.2) / sqrt(1.1 + eps) * 2 + 0.5 */
        l->ops->forward(l, x, y, 2, 0, cnn_threads());
        EXPECT_NEAR(y[0], (1 - 0.2) / std::sqrt(1.1 + 1e-5) * 2 + 0.5, 1e-6);
        EXPECT_NEAR(y[1], (3 - 0.2) / std::sqrt(1.1 + 1e-5) * 2 + 0.5, 1e-6);
    }
}

TEST(BatchNorm, MatchesTorchBatchNorm2d)
{
    const float y_train[24] = {
        0.00573831797f, 1.51182556f,  0.811491549f, -1.06927276f, -0.534296334f, 0.247460723f,
        0.804952741f,   0.321453214f, -2.37043333f, -2.20008278f, 0.858425081f,  2.32436848f,
        0.174163297f,   -1.44652641f, -0.939645529f, 0.952225924f, 0.755319595f, 0.0170732979f,
        -0.607920051f,  -0.204043135f, 1.74427402f, 1.91184914f,  -1.05640578f,  -2.81199455f};
    const float rm[3] = {0.0492657535f, 0.0515797623f, 0.0522145592f};
    const float rv[3] = {1.08711338f, 1.12568641f, 1.17317224f};
    const float y_eval[24] = {
        0.432295918f, 2.28057909f,  1.42112327f,  -0.886966884f, -0.52134949f, 0.514076233f,
        1.25246632f,  0.612078249f, -2.43031597f, -2.18716049f,  2.17850137f,  4.27096367f,
        0.638988495f, -1.34993589f, -0.727887273f, 1.59383357f,  1.18672788f,  0.208931491f,
        -0.618862987f, -0.0839339793f, 3.44294691f, 3.68214083f, -0.554695427f, -3.06059265f};
    std::vector<float> x = torch_x(), y(24);
    for (cnn_kernels k : KERNELS) {
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, "batchnorm", cnn_shape{3, 2, 2}, 2));
        cnn_layer *l = t.layer;
        l->kernels = k;
        set(l, W, {1, 0.5f, 2});
        set(l, B, {0, 0.1f, -0.2f});
        set(l, RM, {0, 0, 0});
        set(l, RV, {1, 1, 1});
        l->ops->forward(l, x.data(), y.data(), 2, 1, cnn_threads());
        for (int i = 0; i < 24; i++) EXPECT_NEAR(y[i], y_train[i], 2e-6) << i;
        for (int c = 0; c < 3; c++) {
            EXPECT_NEAR(get(l, RM)[c], rm[c], 1e-7) << c;
            EXPECT_NEAR(get(l, RV)[c], rv[c], 1e-6) << c;
        }
        l->ops->forward(l, x.data(), y.data(), 2, 0, cnn_threads());
        for (int i = 0; i < 24; i++) EXPECT_NEAR(y[i], y_eval[i], 2e-6) << i;
        /* eval leaves the running statistics alone */
        for (int c = 0; c < 3; c++) EXPECT_NEAR(get(l, RM)[c], rm[c], 1e-7) << c;
    }
}

/* Running statistics after several train steps follow
 * r <- (1 - m) r + m * stat, with the unbiased variance, m = momentum=. */
TEST(BatchNorm, RunningStatsFormula)
{
    const int n = 4, c = 2, hw = 3, M = n * hw;
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "batchnorm momentum=0.3", cnn_shape{c, 1, hw}, n));
    cnn_layer *l = t.layer;
    double rm[2] = {0, 0}, rv[2] = {1, 1};
    set(l, RM, {0, 0});
    set(l, RV, {1, 1});
    std::vector<float> y(n * c * hw);
    for (int step = 0; step < 3; step++) {
        std::vector<float> x = tu_randn(n * c * hw, 100 + step, 2.0f);
        for (auto &v : x) v += 1.5f;
        l->ops->forward(l, x.data(), y.data(), n, 1, cnn_threads());
        for (int ch = 0; ch < c; ch++) {
            double s = 0, s2 = 0;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < hw; p++) s += x[(i * c + ch) * hw + p];
            double mean = s / M;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < hw; p++) {
                    double d = x[(i * c + ch) * hw + p] - mean;
                    s2 += d * d;
                }
            rm[ch] = 0.7 * rm[ch] + 0.3 * mean;
            rv[ch] = 0.7 * rv[ch] + 0.3 * s2 / (M - 1);
            EXPECT_NEAR(get(l, RM)[ch], rm[ch], 1e-5) << step;
            EXPECT_NEAR(get(l, RV)[ch], rv[ch], 1e-5) << step;
        }
    }
}

TEST(BatchNorm, ShapesNamesParams)
{
    TestLayer t2;
    ASSERT_TRUE(tu_make_layer(t2, "batchnorm", cnn_shape{16, 7, 5}, 2));
    cnn_layer *l = t2.layer;
    tu_expect_layer(l, cnn_shape{16, 7, 5}, "batchnorm", "BatchNorm2d", "batchnorm");
    ASSERT_EQ(l->nparams, 4);
    const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    const cnn_pinit inits[4] = {CNN_PINIT_ONE, CNN_PINIT_ZERO, CNN_PINIT_ZERO, CNN_PINIT_ONE};
    const int trainable[4] = {1, 1, 0, 0};
    for (int i = 0; i < 4; i++) {
        EXPECT_STREQ(l->params[i].name, names[i]);
        EXPECT_EQ(l->params[i].ndim, 1);
        EXPECT_EQ(l->params[i].dims[0], 16);
        EXPECT_EQ(l->params[i].init, inits[i]);
        EXPECT_EQ(l->params[i].trainable, trainable[i]);
        EXPECT_EQ(l->params[i].grad == nullptr, !trainable[i]);
    }
    EXPECT_GT(l->ops->flops(l), 0.0);

    TestLayer t1;
    ASSERT_TRUE(tu_make_layer(t1, "batchnorm eps=0.001 momentum=0.01", cnn_shape{10, 1, 1}, 2));
    EXPECT_STREQ(t1.layer->ops->torch, "BatchNorm1d");
    EXPECT_STREQ(t1.layer->desc, "batchnorm eps=0.001 momentum=0.01");
}

TEST(BatchNorm, ParseErrors)
{
    cnn_shape in{4, 3, 3};
    tu_expect_parse_error("batchnorm eps=0", in, "test:1: batchnorm: eps= must be a number");
    tu_expect_parse_error("batchnorm momentum=1.5", in, "momentum= must be a number from 0 to 1");
    tu_expect_parse_error("batchnorm 4", in, "unexpected word '4'");
    tu_expect_parse_error("batchnorm affine=0", in, "unknown option 'affine=0'");
}

TEST(BatchNorm, GradientCheck)
{
    struct {
        cnn_shape in;
        int n, train;
    } cases[] = {{{3, 3, 5}, 4, 1}, {{7, 1, 1}, 5, 1}, {{3, 3, 5}, 4, 0}, {{7, 1, 1}, 5, 0}};
    for (auto &c : cases)
        for (cnn_kernels k : KERNELS) {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, "batchnorm", c.in, c.n));
            t.layer->kernels = k;
            std::string where;
            double e = tu_gradcheck_layer(t, c.n, 31, c.train, 1e-2, &where);
            EXPECT_LT(e, 1e-3) << c.in.c << "x" << c.in.h << "x" << c.in.w << " train " << c.train
                               << " kernels " << k << " at " << where;
        }
}

TEST(BatchNorm, RefVsFast)
{
    struct {
        cnn_shape in;
        int n;
    } cases[] = {{{3, 3, 5}, 4}, {{7, 1, 1}, 5}, {{16, 14, 14}, 32}, {{128, 1, 1}, 64}};
    for (auto &c : cases)
        for (int train = 0; train < 2; train++) {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, "batchnorm", c.in, c.n));
            std::string where;
            EXPECT_LT(tu_ref_vs_fast(t, c.n, 12, train, &where), 1e-5)
                << c.in.c << "x" << c.in.h << "x" << c.in.w << " train " << train << " at " << where;
        }
}

TEST(BatchNorm, FastIsSameForAnyThreadCount)
{
    const int n = 32;
    std::vector<float> x = tu_randn(n * 16 * 14 * 14, 1), dy = tu_randn(x.size(), 2);
    const int saved = cnn_get_threads();
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "batchnorm", cnn_shape{16, 14, 14}, n));
    const std::vector<float> data0 = t.data;
    std::vector<float> y[2], dx[2], g[2], d[2];
    for (int k = 0; k < 2; k++) {
        cnn_set_threads(k + 1);
        t.data = data0;
        y[k].assign(x.size(), 0);
        dx[k].assign(x.size(), 0);
        t.layer->ops->forward(t.layer, x.data(), y[k].data(), n, 1, cnn_threads());
        t.layer->ops->backward(t.layer, x.data(), y[k].data(), dy.data(), dx[k].data(), n, cnn_threads());
        g[k] = t.grad;
        d[k] = t.data; /* running statistics */
    }
    cnn_set_threads(saved);
    EXPECT_EQ(y[0], y[1]);
    EXPECT_EQ(dx[0], dx[1]);
    EXPECT_EQ(g[0], g[1]);
    EXPECT_EQ(d[0], d[1]);
}
