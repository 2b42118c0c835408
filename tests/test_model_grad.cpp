/* test_model_grad.cpp — numerical gradient checks of a whole model (conv,
 * relu, max-pool, dense, then a final softmax, sigmoid or nothing) through
 * every loss it can take: the parameter gradients of
 * cnn_model_compute_grads against central differences of the batch loss
 * (cnn_model_eval_batch), on three paths: the reference kernels, the fast
 * kernels on a whole batch, and the fast kernels on a batch cut into shards
 * run by two threads (src/model/shard.c). The single layers are checked one
 * by one elsewhere (tu_gradcheck_layer); this checks what joins them: which
 * tensor each loss reads and where backward starts (cnn_model_loss_plan).
 *
 * The input gradient is not checked here: the model never computes it
 * (layer 0's backward gets dx = NULL). The conv weights' gradients depend
 * on every layer's dx above them, so they check that chain instead. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "model/model.h"
}

namespace {

enum Path { REF_WHOLE, FAST_WHOLE, FAST_SHARDS };
const char *const kPathNames[] = {"RefWhole", "FastWhole", "FastShards"};
const char *const kEndings[] = {"softmax", "sigmoid", "none"};

struct GradCase {
    cnn_loss loss;
    int ending; /* index into kEndings */
    Path path;
};

std::string case_name(const GradCase &c)
{
    std::string s = cnn_loss_name(c.loss.kind);
    if (c.loss.kind == CNN_LOSS_HUBER && c.loss.delta != 1.0f) s += "Delta03";
    s += std::string("_") + kEndings[c.ending] + "_" + kPathNames[c.path];
    return s;
}

/* Every loss the model can take, with each ending, on each path: cce only
 * with a final softmax (the other two are refused: tests/test_loss.cpp). */
std::vector<GradCase> all_cases()
{
    const cnn_loss losses[] = {{CNN_LOSS_XENT, 1.0f}, {CNN_LOSS_CCE, 1.0f},
                               {CNN_LOSS_BCE, 1.0f},  {CNN_LOSS_HINGE, 1.0f},
                               {CNN_LOSS_MSE, 1.0f},  {CNN_LOSS_MAE, 1.0f},
                               {CNN_LOSS_HUBER, 1.0f}, {CNN_LOSS_HUBER, 0.3f}};
    std::vector<GradCase> v;
    for (const cnn_loss &l : losses)
        for (int e = 0; e < 3; e++)
            for (Path p : {REF_WHOLE, FAST_WHOLE, FAST_SHARDS})
                if (l.kind != CNN_LOSS_CCE || e == 0) v.push_back({l, e, p});
    return v;
}

std::string arch_for(int ending)
{
    std::string a = "input 1x8x8\n"
                    "conv 3 3x3 pad=1\n"
                    "relu\n"
                    "maxpool 2\n"
                    "flatten\n"
                    "dense 5\n";
    if (ending < 2) a += std::string(kEndings[ending]) + "\n";
    return a;
}

void PrintTo(const GradCase &c, std::ostream *os) { *os << case_name(c); }

class ModelGrad : public ::testing::TestWithParam<GradCase> {
protected:
    int keep_threads = 1;
    void SetUp() override { keep_threads = cnn_get_threads(); }
    void TearDown() override { cnn_set_threads(keep_threads); }
};

/* The batch loss with the model's current weights. */
double batch_loss(cnn_model *m, const std::vector<float> &x, const std::vector<uint8_t> &y,
                  int n, cnn_loss loss)
{
    cnn_batch_stats st;
    EXPECT_EQ(cnn_model_eval_batch(m, x.data(), y.data(), n, loss, &st), CNN_OK)
        << cnn_errmsg();
    return st.loss;
}

} // namespace

/* One coordinate's check. loss(h, &taken) is the loss at w_i + h (taken:
 * the step made in float); l0 the loss at w_i. The analytic gradient ana
 * is matched by the central difference at step h1 within tol1 * scale
 * (returns 0), else by the central, forward or backward difference at step
 * h2 within tol2 * scale (returns 1), else not (returns -1, the estimates
 * in *what). *err1: the first estimate's error relative to scale. */
template <class Loss>
int check_coord(Loss loss, double l0, double ana, double scale, double h1, double tol1, double h2,
                double tol2, double *err1, std::string *what)
{
    double hp, hm;
    double lp = loss(h1, &hp), lm = loss(-h1, &hm);
    const double first = (lp - lm) / (hp - hm);
    *err1 = std::fabs(first - ana) / scale;
    if (*err1 <= tol1) return 0;
    lp = loss(h2, &hp);
    lm = loss(-h2, &hm);
    const double central = (lp - lm) / (hp - hm), forward = (lp - l0) / hp, backward = (l0 - lm) / -hm;
    const double best = std::min({std::fabs(central - ana), std::fabs(forward - ana),
                                  std::fabs(backward - ana)});
    if (best <= tol2 * scale) return 1;
    std::ostringstream o;
    o << "analytic " << ana << ", numerical " << first << " at step " << h1 << ", " << central
      << " (central), " << forward << " (forward), " << backward << " (backward) at step " << h2;
    *what = o.str();
    return -1;
}

/* Every parameter gradient of m (computed at the current weights, whose
 * loss is l0) against differences of loss(), coordinate by coordinate
 * (check_coord: step 1e-2 within tol1 of the tensor's largest gradient,
 * else step 1e-3 within 5e-3). A tensor whose gradient is all zero fails
 * unless zero_ok (then its errors are measured against 1e-3). Kinks near
 * the point are the exception, not the rule: under a quarter of the
 * coordinates may need the second step. */
template <class Loss>
void check_model_grads(cnn_model *m, Loss loss, double l0, double tol1, bool zero_ok,
                       const std::string &label)
{
    const double h1 = 1e-2, h2 = 1e-3, tol2 = 5e-3;
    int retried = 0, coords = 0, failed = 0;
    for (int ti = 0; ti < cnn_model_num_tensors(m); ti++) {
        cnn_tensor t;
        ASSERT_EQ(cnn_model_tensor(m, ti, &t), CNN_OK);
        if (!t.grad) continue;
        const std::vector<float> ana(t.grad, t.grad + t.size);
        double scale = 0;
        for (float g : ana) scale = std::max(scale, (double)std::fabs(g));
        if (scale < 1e-6) {
            /* a tensor with no gradient at all would pass vacuously */
            ASSERT_TRUE(zero_ok) << label << ": " << t.name << " has an all-zero gradient";
            scale = 1e-3;
        }
        double worst = 0; /* of the first estimates, for the log */
        for (size_t i = 0; i < t.size; i++, coords++) {
            const float keep = t.data[i];
            /* the loss at w_i = keep + h, and the step actually taken in float */
            auto at = [&](double h, double *taken) {
                t.data[i] = keep + (float)h;
                *taken = (double)t.data[i] - keep;
                double l = loss();
                t.data[i] = keep;
                return l;
            };
            double err;
            std::string what;
            const int r = check_coord(at, l0, ana[i], scale, h1, tol1, h2, tol2, &err, &what);
            worst = std::max(worst, err);
            retried += r != 0;
            if (r < 0 && ++failed <= 5) ADD_FAILURE() << label << ": " << t.name << "[" << i << "]: " << what;
        }
        if (getenv("CNN_GRAD_LOG"))
            printf("%s %s: max relative error %.3g at step %g (largest gradient %.3g)\n",
                   label.c_str(), t.name, worst, h1, scale);
    }
    if (getenv("CNN_GRAD_LOG"))
        printf("%s: %d of %d coordinates measured again at step %g\n", label.c_str(), retried,
               coords, h2);
    EXPECT_EQ(failed, 0) << label << ": coordinates whose gradient no difference matches";
    EXPECT_LT(retried, coords / 4) << label << ": " << retried << " of " << coords
                                   << " needed the second step";
}

TEST_P(ModelGrad, ParameterGradientsMatchCentralDifferences)
{
    const GradCase c = GetParam();
    const int n = c.path == FAST_SHARDS ? 32 : 8;
    cnn_set_threads(c.path == FAST_SHARDS ? 2 : 1);
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_from_text(arch_for(c.ending).c_str(), "gradcheck", &m), CNN_OK)
        << cnn_errmsg();
    cnn_model_set_kernels(m, c.path == REF_WHOLE ? CNN_KERNELS_REF : CNN_KERNELS_FAST);
    ASSERT_EQ(cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 3), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(m, n), CNN_OK) << cnn_errmsg();
    /* the path under test is the one taken */
    ASSERT_EQ(cnn_shards_for(m, n, 1) > 1, c.path == FAST_SHARDS);

    std::vector<float> x = tu_randn((size_t)n * 64, 17);
    std::vector<uint8_t> y(n);
    for (int i = 0; i < n; i++) y[i] = (uint8_t)((i * 7 + 3) % 5);

    cnn_batch_stats st;
    ASSERT_EQ(cnn_model_compute_grads(m, x.data(), y.data(), n, c.loss, &st), CNN_OK)
        << cnn_errmsg();
    const double l0 = st.loss;
    /* The losses of the differences need no second thread (they are the
     * same bits at any count): one keeps the thousands of small forwards
     * quick on a busy machine. */
    cnn_set_threads(1);
    EXPECT_NEAR(batch_loss(m, x, y, n, c.loss), l0, 1e-12 + 1e-9 * std::fabs(l0));

    /* Central differences with step 1e-2, where truncation and the noise
     * of two float forwards keep the error near 1e-5 of the tensor's largest
     * gradient. But a relu input, two max-pool candidates, a hinge margin,
     * mae's |d| = 0 or Huber's |d| = delta may sit within a step of the
     * point (thousands of relu inputs in a batch of 32 move with each conv
     * weight); there the difference measures a kink, not the derivative. A
     * coordinate that misses is measured again with step 1e-3, by central
     * and by one-sided differences: a kink on one side leaves the other
     * side's difference the derivative (its truncation and float noise, a
     * few 1e-4 of the scale, allow a looser bound). Only a coordinate that
     * no estimate matches fails. */
    check_model_grads(m, [&]() { return batch_loss(m, x, y, n, c.loss); }, l0, 1e-3, false,
                      case_name(c));
    cnn_model_free(m);
}

INSTANTIATE_TEST_SUITE_P(EveryLossAndEnding, ModelGrad, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<GradCase> &i) {
                             return case_name(i.param);
                         });

/* A model with batchnorm (2-d and 1-d) trained in shards layer by layer
 * (src/model/shard.c): its parameter gradients against central differences
 * of the training-mode loss, whose batch statistics move with the weights.
 * The loss is measured on a whole-batch training forward, whose statistics
 * are the sharded run's bit for bit (tests/test_shard.cpp). Smooth layers
 * (tanh, average pooling) keep kinks from the differences; relu and max
 * pooling are checked above. */
TEST(ModelGradBatchNorm, ShardedGradientsMatchCentralDifferences)
{
    const int keep = cnn_get_threads();
    const char *arch = "input 1x8x8\n"
                       "conv 3 3x3 pad=1\n"
                       "batchnorm\n"
                       "tanh\n"
                       "avgpool 2\n"
                       "flatten\n"
                       "dense 6\n"
                       "batchnorm\n"
                       "tanh\n"
                       "dense 5\n";
    const int n = 40, k = 5;
    cnn_set_threads(3);
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_from_text(arch, "bn-gradcheck", &m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 5), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(m, n), CNN_OK) << cnn_errmsg();
    ASSERT_TRUE(cnn_shards_coupled(m));
    ASSERT_EQ(cnn_shards_for(m, n, 1), 3) << "the path under test: three shards";
    std::vector<float> x = tu_randn((size_t)n * 64, 19);
    std::vector<uint8_t> y(n);
    std::vector<float> target((size_t)n * k, 0.0f);
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)((i * 3 + 1) % k);
        target[(size_t)i * k + y[i]] = 1.0f;
    }
    const cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st;
    ASSERT_EQ(cnn_model_compute_grads(m, x.data(), y.data(), n, loss, &st), CNN_OK) << cnn_errmsg();
    auto train_loss = [&]() {
        const float *out = nullptr;
        EXPECT_EQ(cnn_model_forward(m, x.data(), n, 1, &out), CNN_OK) << cnn_errmsg();
        return cnn_loss_compute(loss, out, target.data(), n, k, nullptr);
    };
    const double l0 = train_loss();
    EXPECT_NEAR(l0, st.loss, 1e-9 * std::fabs(l0));
    /* a bias just before a batchnorm has no effect on the loss: its
     * gradient may be zero */
    check_model_grads(m, train_loss, l0, 2e-3, true, "bn-gradcheck");
    cnn_model_free(m);
    cnn_set_threads(keep);
}
