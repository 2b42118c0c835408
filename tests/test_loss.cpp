/* test_loss.cpp — every loss: a value worked by hand, PyTorch's value on a
 * small batch, a numerical gradient check, and the parser.
 *
 * The PyTorch values were produced with torch 1.13 (Debian's python3-torch)
 * on z = [[1, -2, 0.5, 3], [0.1, 0.2, -0.3, 0], [-1.5, 2.5, 0.7, -0.2]],
 * labels [3, 0, 2] (one-hot t), default reduction 'mean':
 *   CrossEntropyLoss()(z, y), MultiMarginLoss()(z, y),
 *   BCEWithLogitsLoss()(z, t), MSELoss()(z, t), L1Loss()(z, t),
 *   HuberLoss()(z, t), HuberLoss(delta=0.5)(z, t), printed with %.12g. */
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
}

namespace {

const float Z[12] = {1.0f, -2.0f, 0.5f, 3.0f, 0.1f, 0.2f, -0.3f, 0.0f, -1.5f, 2.5f, 0.7f, -0.2f};
const float T[12] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0};

cnn_loss L(cnn_loss_kind k, float delta = 1.0f) { return cnn_loss{k, delta}; }

/* Central differences of cnn_loss_compute against its own gradient. */
double gradcheck(cnn_loss loss, const std::vector<float> &out0, const std::vector<float> &t,
                 int n, int k, double eps = 1e-3)
{
    std::vector<float> out = out0, g(out.size());
    cnn_loss_compute(loss, out.data(), t.data(), n, k, g.data());
    double worst = 0, big = 1e-6;
    for (size_t i = 0; i < out.size(); i++) {
        float keep = out[i];
        out[i] = keep + (float)eps;
        double lp = cnn_loss_compute(loss, out.data(), t.data(), n, k, nullptr);
        out[i] = keep - (float)eps;
        double lm = cnn_loss_compute(loss, out.data(), t.data(), n, k, nullptr);
        out[i] = keep;
        double num = (lp - lm) / (2 * eps);
        worst = std::max(worst, std::fabs(num - g[i]));
        big = std::max(big, std::fabs(num));
    }
    return worst / big;
}

std::vector<float> softmax_rows(const float *z, int n, int k)
{
    std::vector<float> p(n * k);
    for (int r = 0; r < n; r++) {
        double mx = z[r * k], s = 0;
        for (int j = 0; j < k; j++) mx = std::max(mx, (double)z[r * k + j]);
        for (int j = 0; j < k; j++) s += std::exp(z[r * k + j] - mx);
        for (int j = 0; j < k; j++) p[r * k + j] = (float)(std::exp(z[r * k + j] - mx) / s);
    }
    return p;
}

} // namespace

/* One row z = [0, ln 3], target class 1: softmax = [1/4, 3/4], loss = -ln(3/4). */
TEST(Loss, XentByHand)
{
    float z[2] = {0.0f, (float)std::log(3.0)}, t[2] = {0, 1}, g[2];
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_XENT), z, t, 1, 2, g), -std::log(0.75), 1e-7);
    EXPECT_NEAR(g[0], 0.25, 1e-7);
    EXPECT_NEAR(g[1], -0.25, 1e-7);
}

/* p = [0.2, 0.8], t = [0, 1] twice: loss = -ln 0.8, grad = -t/(p n) = -1/(0.8*2) */
TEST(Loss, CceByHand)
{
    float p[4] = {0.2f, 0.8f, 0.2f, 0.8f}, t[4] = {0, 1, 0, 1}, g[4];
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_CCE), p, t, 2, 2, g), -std::log(0.8), 1e-7);
    EXPECT_FLOAT_EQ(g[0], 0.0f);
    EXPECT_FLOAT_EQ(g[1], -0.625f);
    /* a zero probability is clamped, not log(0) */
    float p0[2] = {1.0f, 0.0f}, t0[2] = {0, 1};
    double l0 = cnn_loss_compute(L(CNN_LOSS_CCE), p0, t0, 1, 2, g);
    EXPECT_NEAR(l0, -std::log(1e-12), 1e-6);
    EXPECT_TRUE(std::isfinite(g[1]));
}

/* z = [0, 2], t = [1, 0]: ln 2 for the first; 2 + ln(1 + e^-2) for the
 * second; mean over the 2 elements. */
TEST(Loss, BceByHand)
{
    float z[2] = {0.0f, 2.0f}, t[2] = {1, 0}, g[2];
    double want = (std::log(2.0) + 2.0 + std::log1p(std::exp(-2.0))) / 2;
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_BCE), z, t, 1, 2, g), want, 1e-7);
    EXPECT_NEAR(g[0], (0.5 - 1) / 2, 1e-7);
    EXPECT_NEAR(g[1], 1.0 / (1 + std::exp(-2.0)) / 2, 1e-7);
    /* stable at large logits: the wrong side of z = -1e4 costs 1e4 */
    float zb[1] = {-1e4f}, tb[1] = {1};
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_BCE), zb, tb, 1, 1, g), 1e4, 1e-3);
    EXPECT_NEAR(g[0], -1.0, 1e-7);
}

/* z = [1, 0.5, -1], class 0: margins 1 - 1 + 0.5 = 0.5 and 1 - 1 - 1 < 0;
 * loss = 0.5 / 3. */
TEST(Loss, HingeByHand)
{
    float z[3] = {1.0f, 0.5f, -1.0f}, t[3] = {1, 0, 0}, g[3];
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_HINGE), z, t, 1, 3, g), 0.5 / 3, 1e-7);
    EXPECT_NEAR(g[0], -1.0 / 3, 1e-7);
    EXPECT_NEAR(g[1], 1.0 / 3, 1e-7);
    EXPECT_EQ(g[2], 0.0f);
}

/* out = [0.5, 2, -1] against t = [0, 1, 0]: d = [0.5, 1, -1] */
TEST(Loss, MseMaeHuberByHand)
{
    float o[3] = {0.5f, 2.0f, -1.0f}, t[3] = {0, 1, 0}, g[3];
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_MSE), o, t, 1, 3, g), (0.25 + 1 + 1) / 3, 1e-7);
    EXPECT_NEAR(g[0], 2 * 0.5 / 3, 1e-7);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_MAE), o, t, 1, 3, g), 2.5 / 3, 1e-7);
    EXPECT_NEAR(g[2], -1.0 / 3, 1e-7);
    /* Huber delta 0.75: 0.5*0.25 inside; 0.75*(1 - 0.375) outside, twice */
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_HUBER, 0.75f), o, t, 1, 3, g),
                (0.125 + 2 * 0.75 * 0.625) / 3, 1e-7);
    EXPECT_NEAR(g[0], 0.5 / 3, 1e-7);
    EXPECT_NEAR(g[1], 0.75 / 3, 1e-7);
    EXPECT_NEAR(g[2], -0.75 / 3, 1e-7);
    /* MAE's sub-gradient is 0 where out == target */
    float o0[1] = {1.0f}, t0[1] = {1.0f};
    cnn_loss_compute(L(CNN_LOSS_MAE), o0, t0, 1, 1, g);
    EXPECT_EQ(g[0], 0.0f);
}

TEST(Loss, MatchesTorchReductions)
{
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_XENT), Z, T, 3, 4, nullptr), 1.17635166645, 1e-6);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_HINGE), Z, T, 3, 4, nullptr), 0.458333313465, 1e-6);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_BCE), Z, T, 3, 4, nullptr), 0.744543373585, 1e-6);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_MSE), Z, T, 3, 4, nullptr), 1.56833350658, 1e-6);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_MAE), Z, T, 3, 4, nullptr), 0.949999988079, 1e-6);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_HUBER), Z, T, 3, 4, nullptr), 0.596666693687, 1e-6);
    EXPECT_NEAR(cnn_loss_compute(L(CNN_LOSS_HUBER, 0.5f), Z, T, 3, 4, nullptr), 0.371250003576,
                1e-6);
}

TEST(Loss, XentEqualsCceOfSoftmax)
{
    std::vector<float> p = softmax_rows(Z, 3, 4);
    double x = cnn_loss_compute(L(CNN_LOSS_XENT), Z, T, 3, 4, nullptr);
    double c = cnn_loss_compute(L(CNN_LOSS_CCE), p.data(), T, 3, 4, nullptr);
    EXPECT_NEAR(x, c, 1e-6);
    EXPECT_NEAR(x, 1.17635166645, 1e-6);
}

TEST(Loss, XentStableAtHugeLogits)
{
    float z[4] = {1e4f, -1e4f, 0.0f, 1e4f}, t[4] = {1, 0, 0, 0}, g[4];
    double l = cnn_loss_compute(L(CNN_LOSS_XENT), z, t, 1, 4, g);
    EXPECT_NEAR(l, std::log(2.0), 1e-6);
    EXPECT_NEAR(g[0], -0.5, 1e-6);
    EXPECT_NEAR(g[3], 0.5, 1e-6);
    EXPECT_EQ(g[1], 0.0f);
    t[0] = 0;
    t[1] = 1; /* the worst case: 2e4 away from the top */
    l = cnn_loss_compute(L(CNN_LOSS_XENT), z, t, 1, 4, g);
    EXPECT_NEAR(l, 2e4 + std::log(2.0), 1e-2);
    for (float v : g) EXPECT_TRUE(std::isfinite(v));
}

TEST(Loss, GradientsMatchNumerical)
{
    const int n = 5, k = 7;
    cnn_rng r;
    cnn_rng_seed(&r, 11);
    std::vector<float> z(n * k), t(n * k, 0.0f), prob;
    for (auto &v : z) v = 1.5f * cnn_rng_normal(&r);
    for (int i = 0; i < n; i++) t[i * k + cnn_rng_below(&r, k)] = 1.0f;
    prob = softmax_rows(z.data(), n, k);

    /* kinks (hinge margins at 0, |d| at 0 or delta) are measure-zero; these
     * draws sit well away from them, which the checks below confirm */
    for (int i = 0; i < n * k; i++) {
        double d = z[i] - t[i];
        ASSERT_GT(std::fabs(d), 1e-2);
        ASSERT_GT(std::fabs(std::fabs(d) - 1.0), 1e-2);
        ASSERT_GT(std::fabs(std::fabs(d) - 0.4), 1e-2);
    }
    for (int i = 0; i < n; i++) {
        int y = 0;
        for (int j = 0; j < k; j++) y = t[i * k + j] > 0 ? j : y;
        for (int j = 0; j < k; j++)
            if (j != y) ASSERT_GT(std::fabs(1 - z[i * k + y] + z[i * k + j]), 1e-2);
    }
    struct Case {
        cnn_loss loss;
        const std::vector<float> *out;
        double eps; /* -log p curves hard at small p: a smaller step there */
    } cases[] = {{L(CNN_LOSS_XENT), &z, 1e-3},  {L(CNN_LOSS_CCE), &prob, 1e-4},
                 {L(CNN_LOSS_BCE), &z, 1e-3},   {L(CNN_LOSS_HINGE), &z, 1e-3},
                 {L(CNN_LOSS_MSE), &z, 1e-3},   {L(CNN_LOSS_MAE), &z, 1e-3},
                 {L(CNN_LOSS_HUBER), &z, 1e-3}, {L(CNN_LOSS_HUBER, 0.4f), &z, 1e-3}};
    for (const Case &c : cases)
        EXPECT_LT(gradcheck(c.loss, *c.out, t, n, k, c.eps), 2e-3) << cnn_loss_name(c.loss.kind);
}

TEST(Loss, ParseAndNames)
{
    const char *names[] = {"xent", "cce", "bce", "hinge", "mse", "mae", "huber"};
    for (int i = 0; i < 7; i++) {
        cnn_loss l;
        ASSERT_EQ(cnn_loss_parse(names[i], &l), CNN_OK) << names[i];
        EXPECT_EQ((int)l.kind, i);
        EXPECT_STREQ(cnn_loss_name(l.kind), names[i]);
        EXPECT_FLOAT_EQ(l.delta, 1.0f);
    }
    cnn_loss l;
    ASSERT_EQ(cnn_loss_parse("huber:0.5", &l), CNN_OK);
    EXPECT_EQ(l.kind, CNN_LOSS_HUBER);
    EXPECT_FLOAT_EQ(l.delta, 0.5f);
    for (const char *bad : {"huber:", "huber:0", "huber:-1", "huber:x", "nll", ""}) {
        EXPECT_EQ(cnn_loss_parse(bad, &l), CNN_ERR_ARG) << bad;
        EXPECT_NE(std::string(cnn_errmsg()).find("'" + std::string(bad) + "'"), std::string::npos)
            << cnn_errmsg();
    }
}
