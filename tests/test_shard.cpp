/* test_shard.cpp — a batch run shard by shard (src/model/shard.c): the same
 * gradients as the whole batch, the same bits at any thread count, faults
 * found in any shard, and evaluation that matches a whole-batch run. A
 * worker shares its model's parameters. */
#include "testutil.h"

extern "C" {
#include "model/model.h"
}

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct ModelPtr {
    cnn_model *m = nullptr;
    ~ModelPtr() { cnn_model_free(m); }
};

/* Every layer kind that runs per image, with dropout (per-shard RNG). */
const char *kPerImage =
    "input 1x12x12\n"
    "conv 6 3x3 pad=1 padmode=reflect\n"
    "relu\n"
    "maxpool 2\n"
    "conv 8 3x3 stride=2 pad=1 padmode=replicate\n"
    "tanh\n"
    "avgpool 2 stride=1\n"
    "flatten\n"
    "dropout 0.2\n"
    "dense 16\n"
    "leaky_relu 0.1\n"
    "dense 10\n"
    "softmax\n";

/* The same without dropout, so a shard's gradient can be compared with a
 * separate run on the same images. */
const char *kNoDropout =
    "input 1x12x12\n"
    "conv 6 3x3 pad=1 padmode=reflect\n"
    "relu\n"
    "maxpool 2\n"
    "conv 8 3x3 stride=2 pad=1 padmode=replicate\n"
    "sigmoid\n"
    "flatten\n"
    "dense 16\n"
    "relu\n"
    "dense 10\n"
    "softmax\n";

/* batchnorm: trained in shards layer by layer, evaluated shard by shard */
const char *kBatchNorm =
    "input 1x12x12\n"
    "conv 6 3x3 pad=1\n"
    "batchnorm\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 10\n"
    "softmax\n";

void random_batch(int n, uint64_t seed, std::vector<float> &x, std::vector<uint8_t> &y)
{
    x = tu_randn((size_t)n * 144, seed);
    cnn_rng r;
    cnn_rng_seed(&r, seed + 1);
    y.resize(n);
    for (auto &v : y) v = (uint8_t)cnn_rng_below(&r, 10);
}

void make_model(ModelPtr &p, const char *arch, int batch, int threads)
{
    cnn_set_threads(threads);
    ASSERT_EQ(cnn_model_from_text(arch, "arch", &p.m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_init(p.m, CNN_INIT_HE_NORMAL, 7), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, batch), CNN_OK) << cnn_errmsg();
}

std::vector<float> all_of(cnn_model *m, bool grads)
{
    std::vector<float> v;
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        cnn_model_tensor(m, i, &t);
        const float *src = grads ? t.grad : t.data;
        if (src) v.insert(v.end(), src, src + t.size);
    }
    return v;
}

/* Weights after `steps` Adam steps on a batch of n, at `threads` threads. */
/* `steps` Adam steps at lr on the batch (x, y) of n: the weights after. */
std::vector<float> train_steps(ModelPtr &p, const std::vector<float> &x, const std::vector<uint8_t> &y,
                               int n, float lr, int steps)
{
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
    oc.lr = lr;
    EXPECT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st;
    for (int s = 0; s < steps; s++)
        EXPECT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), n, loss, &st), CNN_OK)
            << cnn_errmsg();
    return all_of(p.m, false);
}

std::vector<float> trained(const char *arch, int n, int threads, int steps)
{
    ModelPtr p;
    make_model(p, arch, n, threads);
    if (!p.m) return {};
    std::vector<float> x;
    std::vector<uint8_t> y;
    random_batch(n, 3, x, y);
    return train_steps(p, x, y, n, 0.01f, steps);
}

/* The weights after training arch on a batch of n at 1 thread, and the same
 * bits at every count in `others`. Returns the 1-thread weights. */
std::vector<float> expect_same_bits(const char *arch, int n, int steps,
                                    std::initializer_list<int> others)
{
    std::vector<float> w1 = trained(arch, n, 1, steps);
    EXPECT_FALSE(w1.empty());
    for (int t : others) {
        std::vector<float> wt = trained(arch, n, t, steps);
        EXPECT_EQ(wt.size(), w1.size()) << t << " threads";
        if (wt.size() == w1.size())
            EXPECT_EQ(std::memcmp(w1.data(), wt.data(), w1.size() * sizeof(float)), 0)
                << t << " threads";
    }
    return w1;
}

class Shard : public ::testing::Test {
  protected:
    int keep_ = cnn_get_threads();
    void TearDown() override { cnn_set_threads(keep_); }
};

}  // namespace

/* 77 images: shards of uneven sizes (77 is prime). */
TEST_F(Shard, SameBitsAtOneTwoThreeAndFourThreads)
{
    expect_same_bits(kPerImage, 77, 4, {2, 3, 4});
}

std::string read_text(const std::string &path)
{
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/* A preset (models/NAME.txt) trained for `steps` Adam steps on a batch of
 * n random images at `threads` threads: its weights. */
std::vector<float> trained_preset(const std::string &name, int n, int threads, int steps)
{
    const std::string text = read_text(std::string(CNN_SOURCE_DIR) + "/models/" + name + ".txt");
    EXPECT_FALSE(text.empty()) << name;
    ModelPtr p;
    make_model(p, text.c_str(), n, threads);
    if (!p.m) return {};
    int c, h, w;
    cnn_model_input_shape(p.m, &c, &h, &w);
    std::vector<float> x = tu_randn((size_t)n * c * h * w, 13);
    std::vector<uint8_t> y(n);
    for (int i = 0; i < n; i++) y[i] = (uint8_t)(i * 7 % 10);
    return train_steps(p, x, y, n, 0.003f, steps);
}

void expect_preset_same_bits(const std::string &name, int n, int steps,
                             const std::vector<int> &threads)
{
    std::vector<float> w1 = trained_preset(name, n, 1, steps);
    ASSERT_FALSE(w1.empty());
    for (int t : threads) {
        std::vector<float> wt = trained_preset(name, n, t, steps);
        ASSERT_EQ(wt.size(), w1.size()) << t << " threads";
        EXPECT_EQ(std::memcmp(w1.data(), wt.data(), w1.size() * sizeof(float)), 0)
            << name << ", batch " << n << ", " << t << " threads";
    }
}

/* More threads than shards: the threads of a group share each shard's
 * layers, over images, chunks, filters, rows or GEMM panels, and the
 * weights stay those of one thread at every count up to 16 (on 2 cores,
 * oversubscribed). Batch 50 cuts uneven shards, 40 three shards, 32 two. */
TEST_F(Shard, Lenet5SameBitsAtOneToSixteenThreads)
{
    std::vector<int> all;
    for (int t = 2; t <= 16; t++) all.push_back(t);
    expect_preset_same_bits("lenet5", 64, 3, all);
    expect_preset_same_bits("lenet5", 50, 3, all);
    expect_preset_same_bits("lenet5", 40, 2, {3, 4, 6, 9, 16});
    expect_preset_same_bits("lenet5", 32, 2, {3, 4, 8, 16});
}

/* Each thread's share of a batch's work, counted (cnn_work_count) as on a
 * machine with a core per thread: at 4, 8 and 16 threads the largest share
 * is at most 1.25 times the mean (bench/balance.c prints them). */
TEST_F(Shard, WorkIsBalancedAtFourEightAndSixteenThreads)
{
    for (const char *name : {"lenet5", "pytorchnet"}) {
        const std::string text = read_text(std::string(CNN_SOURCE_DIR) + "/models/" + name + ".txt");
        for (int T : {4, 8, 16}) {
            ModelPtr p;
            make_model(p, text.c_str(), 64, T);
            ASSERT_TRUE(p.m);
            std::vector<float> x = tu_randn((size_t)64 * 784, 3);
            std::vector<uint8_t> y(64, 1);
            cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
            cnn_batch_stats st;
            cnn_work_count(1);
            ASSERT_EQ(cnn_model_compute_grads(p.m, x.data(), y.data(), 64, loss, &st), CNN_OK)
                << cnn_errmsg();
            double w[CNN_WORK_MAX_THREADS];
            const int used = cnn_work_counts(w, CNN_WORK_MAX_THREADS);
            cnn_work_count(0);
            EXPECT_EQ(used, T) << name << ": threads with work";
            double total = 0, most = 0;
            for (int t = 0; t < used; t++) {
                total += w[t];
                most = std::max(most, w[t]);
            }
            EXPECT_LE(most / (total / T), 1.25) << name << " at " << T << " threads";
        }
    }
}

/* The example net: Winograd and im2col layers, dense 9216x128 */
TEST_F(Shard, PytorchnetSameBitsAtMoreThreadsThanShards)
{
    expect_preset_same_bits("pytorchnet", 64, 2, {5, 8, 12, 16});
}

/* Two shards give exactly the mean of the same two halves run as batches
 * too small to shard: halving is exact in floating point, so the bits must
 * agree. */
TEST_F(Shard, GradientIsTheMeanOfTheHalves)
{
    const int h = CNN_SHARD, n = 2 * CNN_SHARD;
    for (int threads : {1, 2}) {
        ModelPtr whole, half;
        make_model(whole, kNoDropout, n, threads);
        make_model(half, kNoDropout, h, threads);
        ASSERT_TRUE(whole.m && half.m);
        std::vector<float> x;
        std::vector<uint8_t> y;
        random_batch(n, 9, x, y);
        cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
        cnn_batch_stats s64, sa, sb;
        ASSERT_EQ(cnn_model_compute_grads(whole.m, x.data(), y.data(), n, loss, &s64), CNN_OK)
            << cnn_errmsg();
        ASSERT_EQ(cnn_model_compute_grads(half.m, x.data(), y.data(), h, loss, &sa), CNN_OK);
        std::vector<float> ga = all_of(half.m, true);
        ASSERT_EQ(cnn_model_compute_grads(half.m, x.data() + (size_t)h * 144, y.data() + h, h,
                                          loss, &sb),
                  CNN_OK);
        std::vector<float> gb = all_of(half.m, true), g = all_of(whole.m, true);
        ASSERT_EQ(g.size(), ga.size());
        size_t bad = 0;
        for (size_t i = 0; i < g.size(); i++)
            if (g[i] != ga[i] * 0.5f + gb[i] * 0.5f) bad++;
        EXPECT_EQ(bad, 0u) << "of " << g.size() << " gradients at " << threads << " threads";
        EXPECT_NEAR(s64.loss, 0.5 * (sa.loss + sb.loss), 1e-12 * std::fabs(s64.loss) + 1e-15);
        EXPECT_EQ(s64.correct, sa.correct + sb.correct);
    }
}

/* Evaluation in shards against the same images one at a time (never
 * sharded), for a model with batchnorm too. */
TEST_F(Shard, EvaluationMatchesSingleImages)
{
    for (const char *arch : {kPerImage, kBatchNorm}) {
        ModelPtr p;
        make_model(p, arch, 100, 2);
        ASSERT_TRUE(p.m);
        std::vector<float> x;
        std::vector<uint8_t> y;
        random_batch(100, 5, x, y);
        cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
        cnn_batch_stats all, one;
        const float *out;
        ASSERT_EQ(cnn_model_forward(p.m, x.data(), 100, 0, &out), CNN_OK) << cnn_errmsg();
        std::vector<float> sharded(out, out + 1000), single;
        ASSERT_EQ(cnn_model_eval_batch(p.m, x.data(), y.data(), 100, loss, &all), CNN_OK);
        double loss_sum = 0;
        int correct = 0;
        for (int i = 0; i < 100; i++) {
            ASSERT_EQ(cnn_model_eval_batch(p.m, x.data() + i * 144, y.data() + i, 1, loss, &one),
                      CNN_OK);
            loss_sum += one.loss;
            correct += one.correct;
            ASSERT_EQ(cnn_model_forward(p.m, x.data() + i * 144, 1, 0, &out), CNN_OK);
            single.insert(single.end(), out, out + 10);
        }
        EXPECT_LT(tu_max_rel_err(sharded.data(), single.data(), 1000), 1e-6);
        EXPECT_NEAR(all.loss, loss_sum / 100, 1e-6 * all.loss);
        EXPECT_EQ(all.correct, correct);
    }
}

/* batchnorm needs the whole batch's statistics: a batch-coupled model
 * trains in shards layer by layer, on the same bits at 1 to 16 threads
 * (batch 50: uneven shards), the `best` preset (four batchnorm layers,
 * one of them 1-d, and dropout) too. */
TEST_F(Shard, BatchNormModelTrainsInShardsAtAnyThreadCount)
{
    expect_same_bits(kBatchNorm, 96, 3, {2, 3, 4, 6, 7, 16});
    expect_preset_same_bits("best", 64, 2, {2, 4, 8, 16});
}

TEST_F(Shard, BatchNormSmallModelSameBitsAtOneToSixteenThreads)
{
    std::vector<int> all;
    for (int t = 2; t <= 16; t++) all.push_back(t);
    ModelPtr p;
    make_model(p, kBatchNorm, 64, 1);
    ASSERT_TRUE(p.m);
    EXPECT_TRUE(cnn_shards_coupled(p.m));
    EXPECT_EQ(cnn_shards_for(p.m, 64, 1), 4) << "a batchnorm model's training batch runs in shards";
    for (int n : {64, 50}) {
        std::vector<float> w1 = trained(kBatchNorm, n, 1, 3);
        for (int t : all) {
            std::vector<float> wt = trained(kBatchNorm, n, t, 3);
            ASSERT_EQ(wt.size(), w1.size());
            EXPECT_EQ(std::memcmp(w1.data(), wt.data(), w1.size() * sizeof(float)), 0)
                << "batch " << n << ", " << t << " threads";
        }
    }
}

/* The statistics of a batch trained in shards are those of the same batch
 * run whole (the per-image sums added in image order either way): the
 * running statistics and the outputs bit for bit; the gradients agree with
 * the reference kernels' whole-batch computation within float rounding. */
TEST_F(Shard, BatchNormShardsGiveTheWholeBatchStatistics)
{
    const char *arch =
        "input 1x12x12\n"
        "conv 6 3x3 pad=1\n"
        "batchnorm\n"
        "relu\n"
        "maxpool 2\n"
        "flatten\n"
        "dense 16\n"
        "batchnorm\n"
        "relu\n"
        "dense 10\n";
    const int n = 64;
    std::vector<float> x;
    std::vector<uint8_t> y;
    random_batch(n, 21, x, y);
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    for (int threads : {1, 3, 8}) {
        ModelPtr sharded, whole, ref;
        make_model(sharded, arch, n, threads);
        make_model(whole, arch, n, threads);
        make_model(ref, arch, n, 1);
        ASSERT_TRUE(sharded.m && whole.m && ref.m);
        cnn_model_set_kernels(ref.m, CNN_KERNELS_REF);
        cnn_set_threads(threads);
        cnn_batch_stats st, rst;
        ASSERT_EQ(cnn_model_compute_grads(sharded.m, x.data(), y.data(), n, loss, &st), CNN_OK)
            << cnn_errmsg();
        std::vector<float> out_sharded(sharded.m->act[sharded.m->nlayers],
                                       sharded.m->act[sharded.m->nlayers] + n * 10);
        const float *out = nullptr;
        ASSERT_EQ(cnn_model_forward(whole.m, x.data(), n, 1, &out), CNN_OK) << cnn_errmsg();
        EXPECT_EQ(std::memcmp(out, out_sharded.data(), sizeof(float) * n * 10), 0)
            << threads << " threads: outputs";
        for (int i = 0; i < cnn_model_num_tensors(whole.m); i++) {
            cnn_tensor a, b;
            cnn_model_tensor(whole.m, i, &a);
            cnn_model_tensor(sharded.m, i, &b);
            if (!a.grad) /* running statistics */
                EXPECT_EQ(std::memcmp(a.data, b.data, sizeof(float) * a.size), 0)
                    << threads << " threads: " << a.name;
        }
        ASSERT_EQ(cnn_model_compute_grads(ref.m, x.data(), y.data(), n, loss, &rst), CNN_OK)
            << cnn_errmsg();
        EXPECT_NEAR(st.loss, rst.loss, 1e-5 * std::fabs(rst.loss));
        for (int i = 0; i < cnn_model_num_tensors(ref.m); i++) {
            cnn_tensor a, b;
            cnn_model_tensor(ref.m, i, &a);
            cnn_model_tensor(sharded.m, i, &b);
            if (!a.grad) continue;
            /* a bias just before a batchnorm has a gradient of zero (the
             * normalisation takes its shift away): rounding noise there */
            float big = 0;
            for (size_t e = 0; e < a.size; e++) big = std::max(big, std::fabs(a.grad[e]));
            if (big < 1e-6f) {
                for (size_t e = 0; e < a.size; e++)
                    EXPECT_NEAR(b.grad[e], 0.0f, 1e-6f) << threads << " threads: " << a.name;
                continue;
            }
            EXPECT_LT(tu_max_rel_err(a.grad, b.grad, a.size), 1e-4) << threads << " threads: " << a.name;
        }
    }
}

/* A NaN in the last shard's images: a numeric fault naming the first layer,
 * and the weights untouched; a batchnorm model's too (trained layer by
 * layer, its activations scanned shard by shard), whose running statistics
 * take the batch's forward as a whole-batch run's do. */
TEST_F(Shard, NaNInALaterShardIsCaughtAndNamesTheLayer)
{
    for (const char *arch : {kNoDropout, kBatchNorm})
    for (int threads : {1, 2, 8}) {
        ModelPtr p;
        make_model(p, arch, 96, threads);
        ASSERT_TRUE(p.m);
        cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
        ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
        std::vector<float> x;
        std::vector<uint8_t> y;
        random_batch(96, 11, x, y);
        x[(size_t)90 * 144 + 17] = NAN;
        auto weights = [&]() {
            std::vector<float> v;
            for (int i = 0; i < cnn_model_num_tensors(p.m); i++) {
                cnn_tensor t;
                cnn_model_tensor(p.m, i, &t);
                if (t.grad) v.insert(v.end(), t.data, t.data + t.size);
            }
            return v;
        };
        std::vector<float> before = weights();
        cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
        cnn_batch_stats st;
        EXPECT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), 96, loss, &st), CNN_ERR_NUMERIC);
        std::string e = cnn_errmsg();
        EXPECT_NE(e.find("layer 0"), std::string::npos) << e;
        std::vector<float> after = weights();
        EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)), 0);
        /* and the model goes on working on good data */
        x[(size_t)90 * 144 + 17] = 0.0f;
        EXPECT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), 96, loss, &st), CNN_OK)
            << cnn_errmsg();
    }
}

/* Changing the thread count between batches rebuilds the workers; the
 * result does not change. */
TEST_F(Shard, ThreadCountMayChangeBetweenBatches)
{
    std::vector<float> ref = trained(kPerImage, 64, 2, 4);
    ModelPtr p;
    make_model(p, kPerImage, 64, 1);
    ASSERT_TRUE(p.m);
    std::vector<float> x;
    std::vector<uint8_t> y;
    random_batch(64, 3, x, y);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
    oc.lr = 0.01f;
    ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st;
    for (int s = 0; s < 4; s++) {
        cnn_set_threads(1 + s % 3);
        ASSERT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), 64, loss, &st), CNN_OK)
            << cnn_errmsg();
    }
    std::vector<float> w = all_of(p.m, false);
    ASSERT_EQ(w.size(), ref.size());
    EXPECT_EQ(std::memcmp(w.data(), ref.data(), w.size() * sizeof(float)), 0);
}

/* More than a million parameters: the gradient sum over shards and the
 * optimizer step both run on several threads, and still give the same bits. */
TEST_F(Shard, LargeModelSameBitsAtOneAndTwoThreads)
{
    const char *big =
        "input 1x12x12\n"
        "flatten\n"
        "dense 8000\n"
        "relu\n"
        "dense 10\n"
        "softmax\n";
    EXPECT_GT(expect_same_bits(big, 64, 2, {2}).size(), (size_t)1 << 20);
}

/* Just over the size where the optimizer step goes parallel, in many small
 * tensors: its blocks cut across tensor boundaries, and the weights still
 * come out the same bits on 1, 2 and 3 threads. */
TEST_F(Shard, StepBlocksAcrossSmallTensorsSameBits)
{
    const char *mlp =
        "input 1x12x12\n"
        "flatten\n"
        "dense 100\n"
        "relu\n"
        "dense 100\n"
        "tanh\n"
        "dense 100\n"
        "relu\n"
        "dense 10\n"
        "softmax\n";
    EXPECT_GT(expect_same_bits(mlp, 40, 3, {2, 3}).size(), 32768u);
}

/* A worker shares its model's parameters (the same memory, no gradients),
 * owns its layer buffers, and computes the model's outputs. */
TEST(ShardWorker, SharesParametersAndComputesTheSameOutputs)
{
    ModelPtr a, w;
    ASSERT_EQ(cnn_model_from_text(kPerImage, "a", &a.m), CNN_OK) << cnn_errmsg();
    cnn_model_init(a.m, CNN_INIT_XAVIER_NORMAL, 5);
    ASSERT_EQ(cnn_model_set_batch(a.m, 4), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_share(a.m, &w.m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_set_batch(w.m, 4), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(w.m->ntensors, a.m->ntensors);
    for (int i = 0; i < a.m->ntensors; i++) {
        EXPECT_STREQ(w.m->tensors[i].name, a.m->tensors[i].name);
        EXPECT_EQ(w.m->tensors[i].p->data, a.m->tensors[i].p->data);
        EXPECT_EQ(w.m->tensors[i].p->grad, nullptr);
    }
    EXPECT_EQ(w.m->params, nullptr);
    EXPECT_NE(w.m->act[1], a.m->act[1]);
    std::vector<float> x = tu_randn(4 * 144, 9);
    const float *ya = nullptr;
    ASSERT_EQ(cnn_model_forward(a.m, x.data(), 4, 0, &ya), CNN_OK) << cnn_errmsg();
    cnn_model_run_forward(w.m, x.data(), 4, 0, 1);
    EXPECT_EQ(std::memcmp(ya, w.m->act[w.m->nlayers], sizeof(float) * 4 * 10), 0);
}
