/* test_model.cpp — the sequential model: parsing, shape inference, counts,
 * whole-model ref-vs-fast, determinism across thread counts, numeric faults,
 * and a small training run whose loss falls. */
#include "testutil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

static const char *kSimpleCNN =
    "input 1x28x28\n"
    "conv 16 3x3 stride=2 pad=1 padmode=zero\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 10\n"
    "softmax\n";

struct ModelPtr {
    cnn_model *m = nullptr;
    ~ModelPtr() { cnn_model_free(m); }
};

static std::string parse_error(const char *text)
{
    cnn_model *m = nullptr;
    cnn_status st = cnn_model_from_text(text, "arch.txt", &m);
    EXPECT_EQ(st, CNN_ERR_PARSE) << text;
    EXPECT_EQ(m, nullptr);
    cnn_model_free(m);
    return cnn_errmsg();
}

TEST(Model, SimpleCNNShapesParamsFlops)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kSimpleCNN, "simplecnn", &p.m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_num_layers(p.m), 6);
    cnn_layer_info li;
    const int shapes[6][3] = {{16, 14, 14}, {16, 14, 14}, {16, 7, 7}, {784, 1, 1}, {10, 1, 1},
                              {10, 1, 1}};
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(cnn_model_layer_info(p.m, i, &li), CNN_OK);
        EXPECT_EQ(li.out_c, shapes[i][0]) << i;
        EXPECT_EQ(li.out_h, shapes[i][1]) << i;
        EXPECT_EQ(li.out_w, shapes[i][2]) << i;
    }
    /* conv 16*1*3*3 + 16, dense 784*10 + 10 (section 3.3) */
    EXPECT_EQ(cnn_model_num_params(p.m), (size_t)(144 + 16 + 7840 + 10));
    /* conv: 2*16*9*14*14 multiply-adds as FLOPs dominate; dense 2*784*10 */
    EXPECT_GE(cnn_model_flops(p.m), 2.0 * 16 * 9 * 196 + 2.0 * 7840);
    EXPECT_EQ(cnn_model_output_size(p.m), 10);
    EXPECT_TRUE(cnn_model_ends_in_softmax(p.m));
    ASSERT_EQ(cnn_model_num_tensors(p.m), 4);
    cnn_tensor t;
    ASSERT_EQ(cnn_model_tensor(p.m, 0, &t), CNN_OK);
    EXPECT_STREQ(t.name, "0.weight");
    EXPECT_EQ(t.ndim, 4);
    EXPECT_EQ(t.dims[0], 16);
    ASSERT_EQ(cnn_model_tensor(p.m, 2, &t), CNN_OK);
    EXPECT_STREQ(t.name, "4.weight"); /* PyTorch's nn.Sequential index of the Linear */
    EXPECT_EQ(t.dims[0], 10);
    EXPECT_EQ(t.dims[1], 784);
}

TEST(Model, ParseErrorsNameTheLineAndWhatWasExpected)
{
    /* an architecture and the parts its error must hold */
    const struct {
        const char *arch;
        std::vector<const char *> want;
    } cases[] = {
        {"input 1x28x28\nconvv 16 3x3\n", {"arch.txt:2", "unknown layer 'convv'"}},
        {"input 1x28x28\nconv sixteen 3x3\n", {"arch.txt:2", "sixteen"}},
        {"input 1x28x28\nconv -4 3x3\n", {"arch.txt:2"}},
        {"input 1x4x4\nconv 4 5x5\nflatten\ndense 2\n", {"arch.txt:2"}},
        {"input 1x28x28\nconv 4 3x3\ndense 10\n", {"arch.txt:3", "flatten"}},
        {"conv 4 3x3\n", {"input"}},
        {"input 1x28\nflatten\n", {"CxHxW"}},
        {"input 1x28x28\nrelu bogus=1\nflatten\n", {"bogus"}},
        {"input 1x28x28\nmaxpool 2\n", {"flat"}},
        {"", {"empty"}},
        {"# only a comment\ninput 1x28x28\n", {"no layers"}},
        {"input 1x28x28\nflatten\ninput 1x2x2\n", {"arch.txt:3"}},
    };
    for (const auto &c : cases) {
        const std::string e = parse_error(c.arch);
        for (const char *w : c.want) EXPECT_NE(e.find(w), std::string::npos) << c.arch << ": " << e;
    }
}

TEST(Model, TooLargeIsRefusedWithTheSizeItWouldNeed)
{
    cnn_model *m = nullptr;
    cnn_status st = cnn_model_from_text("input 1x32768x1\nflatten\ndense 32768\ndense 32768\ndense 32768\ndense 32768\ndense 32768\n", "big", &m);
    EXPECT_NE(st, CNN_OK);
    EXPECT_EQ(m, nullptr);
    std::string e = cnn_errmsg();
    EXPECT_NE(e.find("GiB"), std::string::npos) << e;
}

TEST(Model, BatchMustBeSetAndRespected)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kSimpleCNN, "simplecnn", &p.m), CNN_OK);
    std::vector<float> x(784 * 4, 0.5f);
    const float *out;
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), 1, 0, &out), CNN_ERR_ARG);
    ASSERT_EQ(cnn_model_set_batch(p.m, 2), CNN_OK);
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), 3, 0, &out), CNN_ERR_ARG);
    EXPECT_NE(std::string(cnn_errmsg()).find("1 to 2"), std::string::npos) << cnn_errmsg();
    ASSERT_EQ(cnn_model_forward(p.m, x.data(), 2, 0, &out), CNN_OK);
    float sum = 0;
    for (int j = 0; j < 10; j++) sum += out[j];
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
    uint8_t bad[2] = {3, 12};
    cnn_batch_stats st;
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    EXPECT_EQ(cnn_model_eval_batch(p.m, x.data(), bad, 2, loss, &st), CNN_ERR_ARG);
    EXPECT_NE(std::string(cnn_errmsg()).find("label 12"), std::string::npos) << cnn_errmsg();
}

/* A synthetic 10-class problem: class c is a bar pattern at angle c plus
 * noise, so a small conv net can learn it quickly. */
static void synthetic(int n, int h, int w, uint64_t seed, std::vector<float> &x,
                      std::vector<uint8_t> &y)
{
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    x.assign((size_t)n * h * w, 0.0f);
    y.resize(n);
    for (int i = 0; i < n; i++) {
        int c = (int)cnn_rng_below(&r, 10);
        y[i] = (uint8_t)c;
        double a = c * M_PI / 10;
        for (int py = 0; py < h; py++)
            for (int px = 0; px < w; px++) {
                double u = (px - w / 2.0) * cos(a) + (py - h / 2.0) * sin(a);
                float v = std::fabs(u) < 1.5 ? 1.0f : 0.0f;
                x[((size_t)i * h + py) * w + px] = v + 0.3f * cnn_rng_normal(&r);
            }
    }
}

static const char *kMixed =
    "input 1x12x12\n"
    "conv 6 3x3 pad=1 padmode=reflect\n"
    "batchnorm\n"
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

static std::vector<float> train_weights(const char *arch, int threads, cnn_kernels k, int steps,
                                        cnn_opt_kind opt)
{
    cnn_set_threads(threads);
    ModelPtr p;
    EXPECT_EQ(cnn_model_from_text(arch, "mixed", &p.m), CNN_OK) << cnn_errmsg();
    if (!p.m) return {};
    int c, h, w;
    cnn_model_input_shape(p.m, &c, &h, &w);
    std::vector<float> x;
    std::vector<uint8_t> y;
    synthetic(64, h, w, 5, x, y);
    cnn_model_set_kernels(p.m, k);
    EXPECT_EQ(cnn_model_init(p.m, CNN_INIT_HE_NORMAL, 11), CNN_OK);
    EXPECT_EQ(cnn_model_set_batch(p.m, 64), CNN_OK);
    cnn_optim_config oc = cnn_optim_defaults(opt);
    oc.lr = opt == CNN_OPT_ADAM ? 0.01f : 0.05f;
    oc.clip_norm = 5.0f;
    EXPECT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st;
    for (int s = 0; s < steps; s++)
        EXPECT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), 64, loss, &st), CNN_OK)
            << cnn_errmsg();
    std::vector<float> all;
    for (int i = 0; i < cnn_model_num_tensors(p.m); i++) {
        cnn_tensor t;
        cnn_model_tensor(p.m, i, &t);
        all.insert(all.end(), t.data, t.data + t.size);
    }
    return all;
}

TEST(Model, SameSeedSameBitsAtOneTwoAndFourThreads)
{
    int keep = cnn_get_threads();
    std::vector<float> w1 = train_weights(kMixed, 1, CNN_KERNELS_FAST, 5, CNN_OPT_ADAM);
    std::vector<float> w2 = train_weights(kMixed, 2, CNN_KERNELS_FAST, 5, CNN_OPT_ADAM);
    std::vector<float> w4 = train_weights(kMixed, 4, CNN_KERNELS_FAST, 5, CNN_OPT_ADAM);
    cnn_set_threads(keep);
    ASSERT_FALSE(w1.empty());
    ASSERT_EQ(w1.size(), w2.size());
    ASSERT_EQ(w1.size(), w4.size());
    EXPECT_EQ(std::memcmp(w1.data(), w2.data(), w1.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(w1.data(), w4.data(), w1.size() * sizeof(float)), 0);
}

/* Without the dropout layer: the fast kernels train a batch of 64 in
 * shards, each drawing its dropout masks from a seed of its own, where the
 * reference kernels draw the whole batch's from the model's RNG. */
TEST(Model, ReferenceAndFastKernelsTrainTheSameModel)
{
    std::string arch = kMixed;
    arch.erase(arch.find("dropout 0.2\n"), std::strlen("dropout 0.2\n"));
    std::vector<float> ref = train_weights(arch.c_str(), 2, CNN_KERNELS_REF, 3, CNN_OPT_MOMENTUM);
    std::vector<float> fast = train_weights(arch.c_str(), 2, CNN_KERNELS_FAST, 3, CNN_OPT_MOMENTUM);
    ASSERT_EQ(ref.size(), fast.size());
    ASSERT_FALSE(ref.empty());
    EXPECT_LT(tu_max_rel_err(ref.data(), fast.data(), ref.size()), 1e-4);
}

/* simplecnn (initialised with init_seed unless 0) set up for plain SGD at
 * lr on n synthetic images drawn with `seed` */
struct Batch {
    std::vector<float> x;
    std::vector<uint8_t> y;
};

static void simplecnn_sgd(ModelPtr &p, int n, uint64_t seed, uint64_t init_seed, float lr, Batch &b)
{
    ASSERT_EQ(cnn_model_from_text(kSimpleCNN, "simplecnn", &p.m), CNN_OK);
    synthetic(n, 28, 28, seed, b.x, b.y);
    if (init_seed) ASSERT_EQ(cnn_model_init(p.m, CNN_INIT_XAVIER_NORMAL, init_seed), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, n), CNN_OK);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
    oc.lr = lr;
    ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
}

TEST(Model, SimpleCNNLossFallsOnAFewHundredImages)
{
    ModelPtr p;
    Batch b; /* the seed's full-batch setting (section 3.4) */
    ASSERT_NO_FATAL_FAILURE(simplecnn_sgd(p, 300, 3, 1, 0.07f, b));
    const std::vector<float> &x = b.x;
    const std::vector<uint8_t> &y = b.y;
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats first, st;
    ASSERT_EQ(cnn_model_eval_batch(p.m, x.data(), y.data(), 300, loss, &first), CNN_OK);
    for (int e = 0; e < 40; e++)
        ASSERT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), 300, loss, &st), CNN_OK)
            << cnn_errmsg();
    ASSERT_EQ(cnn_model_eval_batch(p.m, x.data(), y.data(), 300, loss, &st), CNN_OK);
    EXPECT_LT(st.loss, 0.5 * first.loss) << "loss " << first.loss << " -> " << st.loss;
    EXPECT_GT(st.correct, 200);
}

TEST(Model, AbsurdLearningRateStopsWithANumericFaultNamingTheLayer)
{
    ModelPtr p;
    Batch b;
    ASSERT_NO_FATAL_FAILURE(simplecnn_sgd(p, 32, 4, 0, 1e30f, b));
    const std::vector<float> &x = b.x;
    const std::vector<uint8_t> &y = b.y;
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st;
    cnn_status s = CNN_OK;
    int steps = 0;
    for (; steps < 10 && s == CNN_OK; steps++)
        s = cnn_model_train_batch(p.m, x.data(), y.data(), 32, loss, &st);
    EXPECT_EQ(s, CNN_ERR_NUMERIC);
    std::string e = cnn_errmsg();
    EXPECT_NE(e.find("non-finite"), std::string::npos) << e;
    EXPECT_TRUE(e.find("layer") != std::string::npos || e.find("weights") != std::string::npos)
        << e;
}

TEST(Model, NaNInputIsCaughtAtTheFirstLayer)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kSimpleCNN, "simplecnn", &p.m), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, 2), CNN_OK);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
    ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
    std::vector<float> x(2 * 784, 0.1f);
    x[100] = NAN;
    uint8_t y[2] = {1, 2};
    cnn_batch_stats st;
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    std::vector<float> before;
    cnn_tensor t;
    cnn_model_tensor(p.m, 0, &t);
    before.assign(t.data, t.data + t.size);
    EXPECT_EQ(cnn_model_train_batch(p.m, x.data(), y, 2, loss, &st), CNN_ERR_NUMERIC);
    std::string e = cnn_errmsg();
    EXPECT_NE(e.find("layer 0"), std::string::npos) << e;
    /* the weights were not touched */
    EXPECT_EQ(std::memcmp(before.data(), t.data, t.size * sizeof(float)), 0);
}

TEST(Model, MetadataSetGetAndOverwrite)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kSimpleCNN, "simplecnn", &p.m), CNN_OK);
    EXPECT_EQ(cnn_model_get_meta(p.m, "classes"), nullptr);
    ASSERT_EQ(cnn_model_set_meta(p.m, "classes", "a,b"), CNN_OK);
    ASSERT_EQ(cnn_model_set_meta(p.m, "classes", "0,1,2"), CNN_OK);
    EXPECT_STREQ(cnn_model_get_meta(p.m, "classes"), "0,1,2");
    EXPECT_STREQ(cnn_model_get_meta(p.m, "arch"), kSimpleCNN);
}

extern "C" {
#include "model/model.h"
}

TEST(Model, LimitedParseRefusesBeforeAllocating)
{
    cnn_model *m = nullptr;
    /* simplecnn needs 144+16+7840+10 floats, each tensor padded to 16 */
    EXPECT_EQ(cnn_model_from_text_limited(kSimpleCNN, "small", 1000, &m), CNN_ERR_FORMAT);
    EXPECT_EQ(m, nullptr);
    EXPECT_NE(std::string(cnn_errmsg()).find("more than the 1000"), std::string::npos)
        << cnn_errmsg();
    ASSERT_EQ(cnn_model_from_text_limited(kSimpleCNN, "small", 8100, &m), CNN_OK) << cnn_errmsg();
    cnn_model_free(m);
}

TEST(Model, MoreThan1024LayersAreRefused)
{
    std::string text = "input 1x2x2\nflatten\n";
    for (int i = 0; i < 1100; i++) text += "relu\n";
    std::string e = parse_error(text.c_str());
    EXPECT_NE(e.find("more than 1024 layers"), std::string::npos) << e;
    EXPECT_NE(e.find("arch.txt:1026"), std::string::npos) << e;
}
