/* test_bits.cpp — the bits the fast kernels produce, as hashes: every
 * preset trained for a few steps at batch 64, and the conv layers of the
 * presets (and some edge shapes) forward and backward on fixed random data
 * at batch 64, 5 and 1, at each SIMD level this CPU has and at 1 and 2
 * threads. The test checks that 1 and 2 threads give the same bits; with
 * CNN_BITS_RECORD=FILE it writes the hashes to FILE, and with
 * CNN_BITS_EXPECT=FILE it checks them against a table written earlier
 * (the same build options on the same CPU): a change meant to move code
 * without changing any result must leave every hash as it was. */
#include "testutil.h"
#include "kernels/gemm_internal.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

uint64_t fnv1a(const void *data, size_t bytes, uint64_t h = 1469598103934665603ull)
{
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t hash_floats(const std::vector<float> &v) { return fnv1a(v.data(), v.size() * sizeof(float)); }

const char *level_name(int level)
{
    return level == CNN_SIMD_AVX512 ? "avx512" : level == CNN_SIMD_AVX2 ? "avx2" : "generic";
}

/* name -> hash, in the order computed */
struct Table {
    std::vector<std::pair<std::string, uint64_t>> rows;
    void add(const std::string &name, uint64_t h) { rows.emplace_back(name, h); }
};

std::string read_file(const std::string &path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

/* ----------------------------------------------------------- presets */

struct ModelPtr {
    cnn_model *m = nullptr;
    ~ModelPtr() { cnn_model_free(m); }
};

/* The weights after 2 Adam steps on one batch of 64, then the eval-mode
 * outputs of the batch and of its first image alone. */
void preset_hashes(const std::string &name, int threads, const std::string &tag, Table &t)
{
    const std::string text = read_file(std::string(CNN_SOURCE_DIR) + "/models/" + name + ".txt");
    ASSERT_FALSE(text.empty()) << name;
    cnn_set_threads(threads);
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(text.c_str(), name.c_str(), &p.m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_init(p.m, CNN_INIT_HE_NORMAL, 7), CNN_OK);
    const int n = 64;
    ASSERT_EQ(cnn_model_set_batch(p.m, n), CNN_OK) << cnn_errmsg();
    int c, h, w;
    cnn_model_input_shape(p.m, &c, &h, &w);
    std::vector<float> x = tu_randn((size_t)n * c * h * w, 11);
    std::vector<uint8_t> y(n);
    cnn_rng r;
    cnn_rng_seed(&r, 12);
    for (auto &v : y) v = (uint8_t)cnn_rng_below(&r, 10);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
    oc.lr = 0.003f;
    ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK);
    cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
    cnn_batch_stats st;
    for (int s = 0; s < 2; s++)
        ASSERT_EQ(cnn_model_train_batch(p.m, x.data(), y.data(), n, loss, &st), CNN_OK)
            << cnn_errmsg();
    uint64_t hw = 1469598103934665603ull;
    for (int i = 0; i < cnn_model_num_tensors(p.m); i++) {
        cnn_tensor tt;
        ASSERT_EQ(cnn_model_tensor(p.m, i, &tt), CNN_OK);
        hw = fnv1a(tt.data, tt.size * sizeof(float), hw);
    }
    t.add("preset/" + name + "/weights/" + tag, hw);
    const int classes = cnn_model_output_size(p.m);
    for (int nb : {64, 1}) {
        const float *out;
        ASSERT_EQ(cnn_model_forward(p.m, x.data(), nb, 0, &out), CNN_OK) << cnn_errmsg();
        t.add("preset/" + name + "/infer" + std::to_string(nb) + "/" + tag,
              fnv1a(out, (size_t)nb * classes * sizeof(float)));
    }
}

/* ------------------------------------------------------- conv layers */

struct ConvShape {
    const char *name, *line;
    cnn_shape in;
};

const ConvShape kConvs[] = {
    {"simplecnn.conv1", "conv 16 3x3 stride=2 pad=1", {1, 28, 28}},
    {"lenet5.conv1", "conv 6 5x5 pad=2", {1, 28, 28}},
    {"lenet5.conv2", "conv 16 5x5", {6, 14, 14}},
    {"pytorchnet.conv1", "conv 32 3x3", {1, 28, 28}},
    {"pytorchnet.conv2", "conv 64 3x3", {32, 26, 26}},
    {"best.conv1", "conv 32 5x5 pad=2", {1, 28, 28}},
    {"best.conv2", "conv 64 3x3 pad=1", {32, 14, 14}},
    {"best.conv3", "conv 128 3x3 pad=1", {64, 7, 7}},
    {"deep.conv64", "conv 64 3x3 pad=1", {64, 14, 14}},
    {"planes.wino16", "conv 32 3x3 pad=1", {16, 14, 14}},
    {"wino.dx_only", "conv 16 3x3 pad=1", {4, 12, 12}},
    {"reflect3x3", "conv 9 3 pad=1 padmode=reflect", {3, 23, 19}},
    {"wino.reflect", "conv 24 3 pad=1 padmode=replicate", {12, 10, 11}},
    {"stride2.pad2", "conv 5 3 stride=2 pad=2", {2, 9, 12}},
    {"phases6", "conv 4 4x3 stride=3x2 pad=1x0", {1, 13, 11}},
    {"phases.many", "conv 3 5 stride=5", {2, 20, 20}},
    {"one.channel.f16", "conv 16 3", {1, 12, 12}},
    {"direct1x1", "conv 12 1", {9, 10, 10}},
    {"gemm.f33", "conv 33 3", {2, 8, 8}},
    {"wide.rows", "conv 31 2 stride=2", {2, 9, 40}},
    {"stride1x4", "conv 32 5 stride=1x4 pad=2", {1, 11, 37}},
    {"large.k", "conv 40 5 pad=2", {12, 12, 12}},
};

/* y, dx, dW and db of n images, reserved for 64 at `threads` threads */
void conv_hashes(const ConvShape &c, int threads, const std::string &tag, Table &t)
{
    cnn_set_threads(threads);
    TestLayer L;
    ASSERT_TRUE(tu_make_layer(L, c.line, c.in, 64, 5));
    cnn_layer *l = L.layer;
    l->kernels = CNN_KERNELS_FAST;
    for (int n : {64, 5, 1}) {
        const size_t nin = (size_t)n * cnn_shape_size(l->in), nout = (size_t)n * cnn_shape_size(l->out);
        std::vector<float> x = tu_randn(nin, 21), dy = tu_randn(nout, 22), y(nout), dx(nin);
        l->ops->forward(l, x.data(), y.data(), n, 1, cnn_threads());
        std::fill(L.grad.begin(), L.grad.end(), 0.0f);
        l->ops->backward(l, x.data(), y.data(), dy.data(), dx.data(), n, cnn_threads());
        const std::string base = std::string("conv/") + c.name + "/n" + std::to_string(n) + "/";
        t.add(base + "y/" + tag, hash_floats(y));
        t.add(base + "dx/" + tag, hash_floats(dx));
        t.add(base + "grad/" + tag, hash_floats(L.grad));
        /* the weight gradient alone, without dx */
        std::fill(L.grad.begin(), L.grad.end(), 0.0f);
        l->ops->backward(l, x.data(), y.data(), dy.data(), nullptr, n, cnn_threads());
        t.add(base + "grad_nodx/" + tag, hash_floats(L.grad));
    }
}

class Bits : public ::testing::Test {
    KeepThreadsAndSimd keep_;
};

/* The hashes at every level and at 1 and 2 threads; "t1"/"t2" are dropped
 * from the names when 1 and 2 threads agree, which the test requires. */
Table all_hashes()
{
    Table t;
    for (int level : {CNN_SIMD_AVX512, CNN_SIMD_AVX2, CNN_SIMD_GENERIC}) {
        if (cnn_gemm_set_simd_level(level) != level) continue;
        Table per[2];
        for (int k = 0; k < 2; k++) {
            const int threads = k + 1;
            for (const char *name : {"simplecnn", "lenet5", "pytorchnet", "best"})
                preset_hashes(name, threads, level_name(level), per[k]);
            for (const ConvShape &c : kConvs) conv_hashes(c, threads, level_name(level), per[k]);
        }
        EXPECT_EQ(per[0].rows.size(), per[1].rows.size());
        for (size_t i = 0; i < per[0].rows.size() && i < per[1].rows.size(); i++) {
            EXPECT_EQ(per[0].rows[i].second, per[1].rows[i].second)
                << per[0].rows[i].first << ": 1 and 2 threads differ";
            t.add(per[0].rows[i].first, per[0].rows[i].second);
        }
    }
    return t;
}

} // namespace

TEST_F(Bits, SameAtOneAndTwoThreadsAndAsRecorded)
{
    Table t = all_hashes();
    if (const char *rec = std::getenv("CNN_BITS_RECORD")) {
        std::FILE *f = std::fopen(rec, "w");
        ASSERT_NE(f, nullptr) << rec;
        for (auto &r : t.rows) std::fprintf(f, "%s %016llx\n", r.first.c_str(), (unsigned long long)r.second);
        std::fclose(f);
    }
    if (const char *exp = std::getenv("CNN_BITS_EXPECT")) {
        std::map<std::string, std::string> want;
        std::istringstream in(read_file(exp));
        std::string name, hex;
        while (in >> name >> hex) want[name] = hex;
        ASSERT_FALSE(want.empty()) << exp;
        size_t seen = 0;
        for (auto &r : t.rows) {
            char hexbuf[17];
            std::snprintf(hexbuf, sizeof hexbuf, "%016llx", (unsigned long long)r.second);
            auto it = want.find(r.first);
            if (it == want.end()) continue;
            seen++;
            EXPECT_EQ(it->second, hexbuf) << r.first;
        }
        EXPECT_EQ(seen, want.size()) << "hashes of the table not computed here";
    }
}
