/* test_optim.cpp — optimizer updates against PyTorch, schedules, weight
 * initialisation statistics.
 *
 * The PyTorch numbers below were produced with torch 1.13 (Debian's
 * python3-torch) by running each optimizer for 5 steps on the quadratic
 *   L(w) = 0.5 * sum_i a_i (w_i - c_i)^2,  a = [1, 2, 0.5, 3],
 *   c = [0.5, -1, 2, 0.25],  w0 = [1, 1, -1, 0.5]
 * (opt.zero_grad(); L.backward(); [clip_grad_norm_]; opt.step()) and
 * printing w with %.9g; the schedules by stepping StepLR(step_size=4,
 * gamma=0.5) and CosineAnnealingLR(T_max=12, eta_min=0.001) on lr=0.1. */
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

extern "C" {
#include "internal.h"
#include "train/train.h"
}

namespace {

const float A[4] = {1.0f, 2.0f, 0.5f, 3.0f};
const float C[4] = {0.5f, -1.0f, 2.0f, 0.25f};
const float W0[4] = {1.0f, 1.0f, -1.0f, 0.5f};

/* Run `steps` steps of cnn_optim_update on the quadratic; clip > 0 scales
 * the gradient to that global norm like torch.nn.utils.clip_grad_norm_. */
std::vector<float> run(const cnn_optim_config &c, int steps, float clip = 0.0f)
{
    std::vector<float> w(W0, W0 + 4), g(4), m(4, 0.0f), v(4, 0.0f);
    for (int t = 1; t <= steps; t++) {
        for (int i = 0; i < 4; i++) g[i] = A[i] * (w[i] - C[i]);
        float scale = 1.0f;
        if (clip > 0) {
            double norm = std::sqrt(cnn_grad_sq_norm(g.data(), 4));
            if (norm > clip) scale = (float)(clip / norm);
        }
        cnn_optim_update(&c, c.lr, t, scale, w.data(), g.data(), m.data(), v.data(), 4);
    }
    return w;
}

void expect_close(const std::vector<float> &got, const float (&want)[4], double tol = 2e-6)
{
    for (int i = 0; i < 4; i++)
        EXPECT_NEAR(got[i], want[i], tol * std::max(1.0f, std::fabs(want[i]))) << "w[" << i << "]";
}

cnn_optim_config cfg(cnn_opt_kind k, float lr, float wd)
{
    cnn_optim_config c = cnn_optim_defaults(k);
    c.lr = lr;
    c.weight_decay = wd;
    return c;
}

} // namespace

TEST(Optim, Defaults)
{
    cnn_optim_config s = cnn_optim_defaults(CNN_OPT_SGD);
    EXPECT_FLOAT_EQ(s.lr, 0.01f);
    EXPECT_EQ(s.sched, CNN_SCHED_CONSTANT);
    EXPECT_EQ(s.step_epochs, 10);
    EXPECT_FLOAT_EQ(s.gamma, 0.1f);
    EXPECT_FLOAT_EQ(s.min_lr, 0.0f);
    EXPECT_FLOAT_EQ(s.clip_norm, 0.0f);
    EXPECT_FLOAT_EQ(cnn_optim_defaults(CNN_OPT_MOMENTUM).momentum, 0.9f);
    EXPECT_FLOAT_EQ(cnn_optim_defaults(CNN_OPT_NESTEROV).momentum, 0.9f);
    cnn_optim_config a = cnn_optim_defaults(CNN_OPT_ADAM);
    EXPECT_FLOAT_EQ(a.lr, 1e-3f);
    EXPECT_FLOAT_EQ(a.beta1, 0.9f);
    EXPECT_FLOAT_EQ(a.beta2, 0.999f);
    EXPECT_FLOAT_EQ(a.eps, 1e-8f);
    EXPECT_FLOAT_EQ(a.weight_decay, 0.0f);
    EXPECT_FLOAT_EQ(cnn_optim_defaults(CNN_OPT_ADAMW).weight_decay, 0.01f);
}

TEST(Optim, ParseAndNames)
{
    const char *names[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
    for (int i = 0; i < 5; i++) {
        cnn_opt_kind k;
        ASSERT_EQ(cnn_optim_parse(names[i], &k), CNN_OK);
        EXPECT_EQ((int)k, i);
        EXPECT_STREQ(cnn_optim_name(k), names[i]);
    }
    cnn_opt_kind k;
    EXPECT_EQ(cnn_optim_parse("adagrad", &k), CNN_ERR_ARG);
    EXPECT_NE(std::string(cnn_errmsg()).find("adagrad"), std::string::npos);
    EXPECT_NE(std::string(cnn_errmsg()).find("nesterov"), std::string::npos);
    cnn_sched_kind s;
    ASSERT_EQ(cnn_sched_parse("cosine", &s), CNN_OK);
    EXPECT_EQ(s, CNN_SCHED_COSINE);
    ASSERT_EQ(cnn_sched_parse("step", &s), CNN_OK);
    EXPECT_EQ(s, CNN_SCHED_STEP);
    ASSERT_EQ(cnn_sched_parse("constant", &s), CNN_OK);
    EXPECT_EQ(s, CNN_SCHED_CONSTANT);
    EXPECT_EQ(cnn_sched_parse("linear", &s), CNN_ERR_ARG);
    EXPECT_NE(std::string(cnn_errmsg()).find("linear"), std::string::npos);
}

/* Plain SGD on a quadratic has a closed form: w_t - c = (1 - lr a)^t (w0 - c)
 * (eq. 3.16 applied t times). */
TEST(Optim, SgdClosedForm)
{
    std::vector<float> w = run(cfg(CNN_OPT_SGD, 0.1f, 0.0f), 5);
    for (int i = 0; i < 4; i++) {
        double want = C[i] + std::pow(1.0 - 0.1 * A[i], 5) * (W0[i] - C[i]);
        EXPECT_NEAR(w[i], want, 1e-6) << i;
    }
    const float torch_sgd[4] = {0.795244932f, -0.344640017f, -0.321342826f, 0.29201749f};
    expect_close(w, torch_sgd);
}

TEST(Optim, SgdFirstStepByHand)
{
    /* w = 2, g = 4, wd = 0.5: g' = 4 + 0.5*2 = 5, w = 2 - 0.1*5 = 1.5 */
    cnn_optim_config c = cfg(CNN_OPT_SGD, 0.1f, 0.5f);
    float w = 2.0f, g = 4.0f;
    cnn_optim_update(&c, c.lr, 1, 1.0f, &w, &g, nullptr, nullptr, 1);
    EXPECT_FLOAT_EQ(w, 1.5f);
    /* grad_scale applies to g before the decay term: g' = 0.5*4 + 0.5*1.5 */
    cnn_optim_update(&c, c.lr, 2, 0.5f, &w, &g, nullptr, nullptr, 1);
    EXPECT_FLOAT_EQ(w, 1.5f - 0.1f * (2.0f + 0.75f));
}

TEST(Optim, SgdWeightDecayMatchesTorch)
{
    const float want[4] = {0.776997983f, -0.348220915f, -0.305688798f, 0.287104368f};
    expect_close(run(cfg(CNN_OPT_SGD, 0.1f, 0.05f), 5), want);
}

TEST(Optim, MomentumMatchesTorch)
{
    const float want[4] = {0.485420048f, -2.16084003f, 0.748531997f, 0.0554299839f};
    expect_close(run(cfg(CNN_OPT_MOMENTUM, 0.1f, 0.0f), 5), want);
}

TEST(Optim, MomentumTwoStepsByHand)
{
    /* g1 = 1: buf = 1, w = -0.1; g2 = 1: buf = 0.9 + 1 = 1.9, w = -0.1 - 0.19 */
    cnn_optim_config c = cfg(CNN_OPT_MOMENTUM, 0.1f, 0.0f);
    float w = 0.0f, g = 1.0f, m = 0.0f;
    cnn_optim_update(&c, c.lr, 1, 1.0f, &w, &g, &m, nullptr, 1);
    EXPECT_FLOAT_EQ(w, -0.1f);
    cnn_optim_update(&c, c.lr, 2, 1.0f, &w, &g, &m, nullptr, 1);
    EXPECT_FLOAT_EQ(m, 1.9f);
    EXPECT_FLOAT_EQ(w, -0.29f);
    /* Nesterov steps along g + mu*buf: first step 1 + 0.9 = 1.9 */
    c.kind = CNN_OPT_NESTEROV;
    w = 0.0f;
    m = 0.0f;
    cnn_optim_update(&c, c.lr, 1, 1.0f, &w, &g, &m, nullptr, 1);
    EXPECT_FLOAT_EQ(w, -0.19f);
}

TEST(Optim, NesterovWeightDecayMatchesTorch)
{
    const float want[4] = {0.439105749f, -1.82567358f, 1.05716717f, 0.162315786f};
    expect_close(run(cfg(CNN_OPT_NESTEROV, 0.1f, 0.01f), 5), want);
}

TEST(Optim, AdamMatchesTorch)
{
    const float want[4] = {0.527814507f, 0.502955854f, -0.501779437f, 0.122396059f};
    expect_close(run(cfg(CNN_OPT_ADAM, 0.1f, 0.0f), 5), want);
}

TEST(Optim, AdamFirstStepIsLrTimesSign)
{
    /* After bias correction m/sqrt(v) = g/|g|: the first step is lr * sign(g)
     * (up to eps). */
    cnn_optim_config c = cfg(CNN_OPT_ADAM, 0.01f, 0.0f);
    float w[2] = {1.0f, 1.0f}, g[2] = {3.0f, -0.02f}, m[2] = {0, 0}, v[2] = {0, 0};
    cnn_optim_update(&c, c.lr, 1, 1.0f, w, g, m, v, 2);
    EXPECT_NEAR(w[0], 0.99f, 1e-6);
    EXPECT_NEAR(w[1], 1.01f, 1e-6);
}

TEST(Optim, AdamL2MatchesTorch)
{
    const float want[4] = {0.52333951f, 0.503050387f, -0.502053857f, 0.114890605f};
    expect_close(run(cfg(CNN_OPT_ADAM, 0.1f, 0.1f), 5), want);
}

TEST(Optim, AdamWMatchesTorch)
{
    const float want[4] = {0.493963599f, 0.464168519f, -0.462846369f, 0.117501408f};
    expect_close(run(cfg(CNN_OPT_ADAMW, 0.1f, 0.1f), 5), want);
}

TEST(Optim, ClipMatchesTorch)
{
    /* torch divides by (norm + 1e-6), we by norm: a 2e-6 relative gap. */
    const float want[4] = {0.970795512f, 0.771886349f, -0.911332309f, 0.458239347f};
    expect_close(run(cfg(CNN_OPT_SGD, 0.1f, 0.0f), 5, 0.5f), want, 1e-5);
}

TEST(Optim, GradSqNorm)
{
    const float g[3] = {3.0f, -4.0f, 12.0f};
    EXPECT_DOUBLE_EQ(cnn_grad_sq_norm(g, 3), 169.0);
    EXPECT_DOUBLE_EQ(cnn_grad_sq_norm(g, 0), 0.0);
}

TEST(Optim, NeedsState)
{
    EXPECT_FALSE(cnn_optim_needs_m(CNN_OPT_SGD));
    EXPECT_FALSE(cnn_optim_needs_v(CNN_OPT_SGD));
    EXPECT_TRUE(cnn_optim_needs_m(CNN_OPT_NESTEROV));
    EXPECT_FALSE(cnn_optim_needs_v(CNN_OPT_MOMENTUM));
    EXPECT_TRUE(cnn_optim_needs_v(CNN_OPT_ADAMW));
}

TEST(Schedule, ConstantStepCosine)
{
    cnn_optim_config c = cnn_optim_defaults(CNN_OPT_SGD);
    c.lr = 0.1f;
    for (int e = 0; e < 30; e += 7) EXPECT_FLOAT_EQ(cnn_optim_lr_at(&c, e, 30), 0.1f);

    c.sched = CNN_SCHED_STEP;
    c.step_epochs = 4;
    c.gamma = 0.5f;
    const float step[12] = {0.1f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f, 0.05f,
                            0.025f, 0.025f, 0.025f, 0.025f};
    for (int e = 0; e < 12; e++) EXPECT_NEAR(cnn_optim_lr_at(&c, e, 12), step[e], 1e-8) << e;

    c.sched = CNN_SCHED_COSINE;
    c.min_lr = 0.001f;
    const float cosine[12] = {0.1f, 0.0983133284f, 0.0933682575f, 0.0855017857f,
                              0.07525f, 0.0633115427f, 0.0505f, 0.0376884573f,
                              0.02575f, 0.0154982143f, 0.00763174251f, 0.0026866716f};
    for (int e = 0; e < 12; e++) EXPECT_NEAR(cnn_optim_lr_at(&c, e, 12), cosine[e], 1e-7) << e;
    EXPECT_NEAR(cnn_optim_lr_at(&c, 12, 12), 0.001f, 1e-9); /* the floor at the end */
}

/* ------------------------------------------------------------- init */

namespace {

struct Stats {
    double mean, var, lo, hi;
};

Stats draw(cnn_init how, cnn_pinit kind, int fan_in, int fan_out, size_t n, uint64_t seed,
           std::vector<float> *out = nullptr)
{
    std::vector<float> buf(n, -7.0f);
    cnn_param p{};
    p.name = "weight";
    p.size = n;
    p.init = kind;
    p.fan_in = fan_in;
    p.fan_out = fan_out;
    p.trainable = 1;
    p.data = buf.data();
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    cnn_param_init(&p, how, &r);
    double s = 0, s2 = 0, lo = 1e30, hi = -1e30;
    for (float x : buf) {
        s += x;
        s2 += (double)x * x;
        lo = std::min(lo, (double)x);
        hi = std::max(hi, (double)x);
    }
    if (out) *out = buf;
    double mean = s / n;
    return {mean, s2 / n - mean * mean, lo, hi};
}

/* n draws whose mean is 0 and variance var, as far as n draws can tell */
void expect_normal(const Stats &s, double var, size_t n)
{
    EXPECT_NEAR(s.mean, 0.0, 4 * std::sqrt(var / n));
    EXPECT_NEAR(s.var, var, 0.02 * var);
}

} // namespace

TEST(Init, XavierNormalIsN0OneOverFanIn)
{
    const size_t n = 200000;
    expect_normal(draw(CNN_INIT_XAVIER_NORMAL, CNN_PINIT_WEIGHT, 50, 10, n, 1), 1.0 / 50, n);
}

TEST(Init, XavierUniformBoundsAndVariance)
{
    const size_t n = 200000;
    Stats s = draw(CNN_INIT_XAVIER_UNIFORM, CNN_PINIT_WEIGHT, 40, 20, n, 2);
    double a = std::sqrt(6.0 / 60);
    EXPECT_GE(s.lo, -a);
    EXPECT_LE(s.hi, a);
    EXPECT_LT(s.lo, -0.99 * a); /* it fills the interval */
    EXPECT_GT(s.hi, 0.99 * a);
    EXPECT_NEAR(s.mean, 0.0, 4 * std::sqrt(a * a / 3 / n));
    EXPECT_NEAR(s.var, a * a / 3, 0.02 * a * a / 3);
}

TEST(Init, HeNormalIsN0TwoOverFanIn)
{
    const size_t n = 200000;
    expect_normal(draw(CNN_INIT_HE_NORMAL, CNN_PINIT_WEIGHT, 72, 16, n, 3), 2.0 / 72, n);
}

TEST(Init, ZeroAndOneIgnoreTheScheme)
{
    Stats z = draw(CNN_INIT_HE_NORMAL, CNN_PINIT_ZERO, 9, 9, 1000, 4);
    EXPECT_EQ(z.lo, 0.0);
    EXPECT_EQ(z.hi, 0.0);
    Stats o = draw(CNN_INIT_XAVIER_UNIFORM, CNN_PINIT_ONE, 9, 9, 1000, 4);
    EXPECT_EQ(o.lo, 1.0);
    EXPECT_EQ(o.hi, 1.0);
}

TEST(Init, SameSeedSameValues)
{
    for (cnn_init how : {CNN_INIT_XAVIER_NORMAL, CNN_INIT_XAVIER_UNIFORM, CNN_INIT_HE_NORMAL}) {
        std::vector<float> a, b, c;
        draw(how, CNN_PINIT_WEIGHT, 30, 30, 5001, 77, &a);
        draw(how, CNN_PINIT_WEIGHT, 30, 30, 5001, 77, &b);
        draw(how, CNN_PINIT_WEIGHT, 30, 30, 5001, 78, &c);
        EXPECT_EQ(a, b) << how;
        EXPECT_NE(a, c) << how;
    }
}
