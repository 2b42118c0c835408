/* test_loss.cpp — every loss: a value worked by hand, PyTorch's value on a
 * small batch, a numerical gradient check, and the parser; then which
 * tensor of a model each loss reads, and the pairs a model refuses.
 *
 * The PyTorch values were produced with torch 1.13 (Debian's python3-torch)
 * on z = [[1, -2, 0.5, 3], [0.1, 0.2, -0.3, 0], [-1.5, 2.5, 0.7, -0.2]],
 * labels [3, 0, 2] (one-hot t), default reduction 'mean':
 *   CrossEntropyLoss()(z, y), MultiMarginLoss()(z, y),
 *   BCEWithLogitsLoss()(z, t), MSELoss()(z, t), L1Loss()(z, t),
 *   HuberLoss()(z, t), HuberLoss(delta=0.5)(z, t),
 *   BCELoss()(softmax(z, 1), t), printed with %.12g. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
#include "model/model.h"
#include "train/train.h"
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

/* ------------------------------------------- BCE on probabilities (BCELoss) */

/* The mean BCELoss of probabilities p against t, through the row function
 * a model uses after a final softmax (probs = 1). */
static double bce_probs(const float *p, const float *t, int n, int k, float *g)
{
    cnn_loss l = L(CNN_LOSS_BCE);
    return cnn_loss_mean(l, cnn_loss_rows(l, 1, p, t, n, k, n, g), n, k);
}

/* p = [0.25, 0.75], t = [0, 1]: -(ln 0.75 + ln 0.75) / 2 = -ln 0.75; the
 * gradient (p - t) / (p (1 - p)) / 2 = +-(0.25 / 0.1875) / 2. */
TEST(Loss, BceOnProbabilitiesByHand)
{
    float p[2] = {0.25f, 0.75f}, t[2] = {0, 1}, g[2];
    EXPECT_NEAR(bce_probs(p, t, 1, 2, g), -std::log(0.75), 1e-7);
    EXPECT_NEAR(g[0], 2.0 / 3, 1e-6);
    EXPECT_NEAR(g[1], -2.0 / 3, 1e-6);
    /* the scores form would be a different number on the same values */
    EXPECT_GT(std::fabs(cnn_loss_compute(L(CNN_LOSS_BCE), p, t, 1, 2, nullptr) + std::log(0.75)),
              0.1);
}

/* torch: BCELoss()(p, t) for p = [0, 1, 0.3, 1e-30, 0.999999] and
 * t = [1, 0, 1, 1, 0] is 56.8167724609375 and p.grad = [-2e11, 2e11,
 * -0.666667, -2e11, 1.9738e5]: each log clamped at -100, the gradient's
 * denominator p (1 - p) at 1e-12. */
TEST(Loss, BceOnProbabilitiesClampsAsTorch)
{
    float p[5] = {0.0f, 1.0f, 0.3f, 1e-30f, 0.999999f}, t[5] = {1, 0, 1, 1, 0}, g[5];
    EXPECT_NEAR(bce_probs(p, t, 1, 5, g), 56.8167724609375, 1e-4);
    const double want[5] = {-2e11, 2e11, -0.666667, -2e11, 1.9738e5};
    for (int j = 0; j < 5; j++) EXPECT_NEAR(g[j], want[j], 1e-4 * std::fabs(want[j])) << j;
}

TEST(Loss, BceOnSoftmaxMatchesTorch)
{
    std::vector<float> p = softmax_rows(Z, 3, 4), g(12);
    EXPECT_NEAR(bce_probs(p.data(), T, 3, 4, g.data()), 0.51985502243, 1e-6);
    /* and its gradient matches central differences */
    for (int i = 0; i < 12; i++) {
        std::vector<float> q = p;
        const double eps = 1e-4;
        q[i] = p[i] + (float)eps;
        double lp = bce_probs(q.data(), T, 3, 4, nullptr);
        q[i] = p[i] - (float)eps;
        double lm = bce_probs(q.data(), T, 3, 4, nullptr);
        EXPECT_NEAR((lp - lm) / (2 * eps), g[i], 2e-3 * std::fabs(g[i]) + 1e-5) << i;
    }
}

/* ----------------------------------------- which tensor a model's loss reads */

namespace {

struct Model {
    cnn_model *m = nullptr;
    ~Model() { cnn_model_free(m); }
};

/* dense 6 on a 1x3x3 input, then `ending` ("softmax", "sigmoid" or ""):
 * the same weights for any ending (softmax and sigmoid have none). */
bool build(Model &p, const std::string &ending, int batch)
{
    std::string arch = "input 1x3x3\nflatten\ndense 6\n" + ending + "\n";
    EXPECT_EQ(cnn_model_from_text(arch.c_str(), "loss-test", &p.m), CNN_OK) << cnn_errmsg();
    if (!p.m) return false;
    EXPECT_EQ(cnn_model_init(p.m, CNN_INIT_XAVIER_NORMAL, 5), CNN_OK);
    EXPECT_EQ(cnn_model_set_batch(p.m, batch), CNN_OK);
    return true;
}

const int kN = 4, kK = 6;
const uint8_t kLabels[kN] = {1, 4, 0, 5};

std::vector<float> batch_x() { return tu_randn((size_t)kN * 9, 21, 2.0f); }

std::vector<float> onehot()
{
    std::vector<float> t((size_t)kN * kK, 0.0f);
    for (int i = 0; i < kN; i++) t[(size_t)i * kK + kLabels[i]] = 1.0f;
    return t;
}

/* The model's outputs for batch_x(). */
std::vector<float> outputs(Model &p)
{
    std::vector<float> x = batch_x();
    const float *out = nullptr;
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), kN, 0, &out), CNN_OK);
    return out ? std::vector<float>(out, out + kN * kK) : std::vector<float>();
}

double model_loss(Model &p, cnn_loss loss)
{
    std::vector<float> x = batch_x();
    cnn_batch_stats st;
    EXPECT_EQ(cnn_model_eval_batch(p.m, x.data(), kLabels, kN, loss, &st), CNN_OK)
        << cnn_errmsg();
    return st.loss;
}

} // namespace

/* Before, hinge read a final softmax's probabilities, where every margin
 * 1 - p_y + p_j is positive: the loss was sum (1 - p_y) / n, exactly k/2
 * times the MAE of the same probabilities. It reads the scores now. */
TEST(LossOfModel, HingeReadsTheScoresNotTheSoftmax)
{
    Model sm, raw;
    ASSERT_TRUE(build(sm, "softmax", kN));
    ASSERT_TRUE(build(raw, "", kN));
    std::vector<float> probs = outputs(sm), scores = outputs(raw), t = onehot();
    const double hinge = model_loss(sm, L(CNN_LOSS_HINGE));
    EXPECT_NEAR(hinge, cnn_loss_compute(L(CNN_LOSS_HINGE), scores.data(), t.data(), kN, kK, nullptr),
                1e-6);
    /* what it used to be: k/2 times the MAE */
    const double mae = model_loss(sm, L(CNN_LOSS_MAE));
    const double old = cnn_loss_compute(L(CNN_LOSS_HINGE), probs.data(), t.data(), kN, kK, nullptr);
    EXPECT_NEAR(old, kK / 2.0 * mae, 1e-6);
    EXPECT_GT(std::fabs(hinge - old), 0.1 * old) << "hinge " << hinge << ", k/2 MAE " << old;
    /* a final sigmoid is skipped the same way */
    Model sg;
    ASSERT_TRUE(build(sg, "sigmoid", kN));
    EXPECT_NEAR(model_loss(sg, L(CNN_LOSS_HINGE)), model_loss(raw, L(CNN_LOSS_HINGE)), 1e-9);
}

/* bce: BCELoss on a final softmax's output, BCEWithLogitsLoss on the scores
 * going into a final sigmoid or on a raw output. */
TEST(LossOfModel, BceReadsProbabilitiesAfterSoftmaxAndScoresOtherwise)
{
    Model sm, sg, raw;
    ASSERT_TRUE(build(sm, "softmax", kN));
    ASSERT_TRUE(build(sg, "sigmoid", kN));
    ASSERT_TRUE(build(raw, "", kN));
    std::vector<float> probs = outputs(sm), scores = outputs(raw), t = onehot();
    EXPECT_NEAR(model_loss(sm, L(CNN_LOSS_BCE)), bce_probs(probs.data(), t.data(), kN, kK, nullptr),
                1e-9);
    const double logits = cnn_loss_compute(L(CNN_LOSS_BCE), scores.data(), t.data(), kN, kK, nullptr);
    EXPECT_NEAR(model_loss(sg, L(CNN_LOSS_BCE)), logits, 1e-9);
    EXPECT_NEAR(model_loss(raw, L(CNN_LOSS_BCE)), logits, 1e-9);
}

/* xent reads the scores into a final softmax (the same number as without
 * it), cce the probabilities out of it (the same number again); mse, mae and
 * huber read the output after any final activation. */
TEST(LossOfModel, XentCceAndRegressionLossesReadWhatTheTableSays)
{
    Model sm, sg, raw;
    ASSERT_TRUE(build(sm, "softmax", kN));
    ASSERT_TRUE(build(sg, "sigmoid", kN));
    ASSERT_TRUE(build(raw, "", kN));
    std::vector<float> t = onehot();
    const double xent = model_loss(raw, L(CNN_LOSS_XENT));
    EXPECT_NEAR(model_loss(sm, L(CNN_LOSS_XENT)), xent, 1e-9);
    EXPECT_NEAR(model_loss(sm, L(CNN_LOSS_CCE)), xent, 1e-6);
    for (cnn_loss l : {L(CNN_LOSS_MSE), L(CNN_LOSS_MAE), L(CNN_LOSS_HUBER, 0.3f)})
        for (Model *p : {&sm, &sg, &raw}) {
            std::vector<float> out = outputs(*p);
            EXPECT_NEAR(model_loss(*p, l),
                        cnn_loss_compute(l, out.data(), t.data(), kN, kK, nullptr), 1e-9)
                << cnn_loss_name(l.kind);
        }
}

/* cce is -sum t log p: without a final softmax there is no p. The check,
 * evaluation and training all refuse, name the last layer, and leave the
 * weights alone. */
TEST(LossOfModel, CceWithoutAFinalSoftmaxIsRefused)
{
    for (const char *ending : {"sigmoid", "", "relu"}) {
        Model p;
        ASSERT_TRUE(build(p, ending, kN));
        cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
        ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
        const std::string last = *ending ? ending : "dense 6";
        EXPECT_EQ(cnn_model_check_loss(p.m, L(CNN_LOSS_CCE)), CNN_ERR_ARG) << ending;
        std::string e = cnn_errmsg();
        EXPECT_NE(e.find("cce"), std::string::npos) << e;
        EXPECT_NE(e.find("not softmax"), std::string::npos) << e;
        EXPECT_NE(e.find("'" + last + "'"), std::string::npos) << e;
        EXPECT_NE(e.find("xent"), std::string::npos) << e;

        cnn_tensor w;
        ASSERT_EQ(cnn_model_tensor(p.m, 0, &w), CNN_OK);
        std::vector<float> before(w.data, w.data + w.size), x = batch_x();
        cnn_batch_stats st = {-1.0, -1};
        EXPECT_EQ(cnn_model_eval_batch(p.m, x.data(), kLabels, kN, L(CNN_LOSS_CCE), &st), CNN_ERR_ARG);
        EXPECT_EQ(cnn_model_compute_grads(p.m, x.data(), kLabels, kN, L(CNN_LOSS_CCE), &st),
                  CNN_ERR_ARG);
        EXPECT_EQ(cnn_model_train_batch(p.m, x.data(), kLabels, kN, L(CNN_LOSS_CCE), &st),
                  CNN_ERR_ARG);
        EXPECT_NE(std::string(cnn_errmsg()).find("cce"), std::string::npos) << cnn_errmsg();
        EXPECT_EQ(st.loss, -1.0); /* nothing ran */
        EXPECT_EQ(std::memcmp(before.data(), w.data, w.size * sizeof(float)), 0);
        /* every other loss is accepted */
        for (int k = 0; k < 7; k++)
            if (k != CNN_LOSS_CCE)
                EXPECT_EQ(cnn_model_check_loss(p.m, L((cnn_loss_kind)k)), CNN_OK) << k << ending;
    }
    Model sm;
    ASSERT_TRUE(build(sm, "softmax", kN));
    EXPECT_EQ(cnn_model_check_loss(sm.m, L(CNN_LOSS_CCE)), CNN_OK);
}

TEST(LossOfModel, UnknownKindsAndBadDeltasAreRefused)
{
    Model p;
    ASSERT_TRUE(build(p, "softmax", kN));
    std::vector<float> x = batch_x();
    cnn_batch_stats st;
    EXPECT_EQ(cnn_model_check_loss(p.m, L((cnn_loss_kind)42)), CNN_ERR_ARG);
    EXPECT_NE(std::string(cnn_errmsg()).find("unknown loss"), std::string::npos) << cnn_errmsg();
    EXPECT_EQ(cnn_model_eval_batch(p.m, x.data(), kLabels, kN, L((cnn_loss_kind)-1), &st),
              CNN_ERR_ARG);
    for (float d : {0.0f, -1.0f, NAN, INFINITY}) {
        EXPECT_EQ(cnn_model_check_loss(p.m, L(CNN_LOSS_HUBER, d)), CNN_ERR_ARG) << d;
        EXPECT_NE(std::string(cnn_errmsg()).find("delta"), std::string::npos) << cnn_errmsg();
    }
    EXPECT_EQ(cnn_model_check_loss(p.m, L(CNN_LOSS_HUBER, 0.25f)), CNN_OK);
}

/* A model that is only a softmax: xent's scores are the input batch itself
 * (act[0]), on the whole-batch path and on the shard path alike. */
TEST(LossOfModel, XentOnAModelThatIsOnlyASoftmaxReadsTheInput)
{
    const int keep = cnn_get_threads(), n = 40, k = 4;
    cnn_set_threads(2);
    Model p;
    ASSERT_EQ(cnn_model_from_text("input 4x1x1\nsoftmax\n", "softmax-only", &p.m), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, n), CNN_OK);
    std::vector<float> x = tu_randn((size_t)n * k, 8), t((size_t)n * k, 0.0f);
    std::vector<uint8_t> y(n);
    for (int i = 0; i < n; i++) t[(size_t)i * k + (y[i] = (uint8_t)(i % k))] = 1.0f;
    cnn_batch_stats st;
    for (int rows : {n, 8}) {
        ASSERT_EQ(cnn_shards_for(p.m, rows, 1) > 1, rows == n); /* both paths */
        const double want = cnn_loss_compute(L(CNN_LOSS_XENT), x.data(), t.data(), rows, k, nullptr);
        ASSERT_EQ(cnn_model_eval_batch(p.m, x.data(), y.data(), rows, L(CNN_LOSS_XENT), &st), CNN_OK);
        EXPECT_NEAR(st.loss, want, 1e-9) << rows;
        ASSERT_EQ(cnn_model_compute_grads(p.m, x.data(), y.data(), rows, L(CNN_LOSS_XENT), &st),
                  CNN_OK);
        EXPECT_NEAR(st.loss, want, 1e-9) << rows;
    }
    cnn_set_threads(keep);
}
