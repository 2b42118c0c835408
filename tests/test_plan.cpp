/* test_plan.cpp — the algorithms the conv layers of the presets choose
 * (cnn_layer_info.plan, the `cnn info` column), at batch 64 at the AVX-512
 * level (skipped on a CPU without it), at AVX2 and on the generic path;
 * and a batch of one image on two threads, which splits each image. */
#include "testutil.h"
#include "kernels/gemm_internal.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct ModelPtr {
    cnn_model *m = nullptr;
    ~ModelPtr() { cnn_model_free(m); }
};

std::string preset(const char *name)
{
    std::ifstream f(std::string(CNN_SOURCE_DIR) + "/models/" + name + ".txt");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

/* "layer: plan" for every layer with a plan; batch > 0 reserves the model
 * for it first, batch 0 leaves it as `cnn info` does (a batch of 64) */
std::vector<std::string> plans(const char *name, int batch)
{
    ModelPtr p;
    const std::string text = preset(name);
    EXPECT_EQ(cnn_model_from_text(text.c_str(), name, &p.m), CNN_OK) << cnn_errmsg();
    if (!p.m) return {};
    if (batch > 0) EXPECT_EQ(cnn_model_set_batch(p.m, batch), CNN_OK) << cnn_errmsg();
    std::vector<std::string> out;
    for (int i = 0; i < cnn_model_num_layers(p.m); i++) {
        cnn_layer_info li;
        EXPECT_EQ(cnn_model_layer_info(p.m, i, &li), CNN_OK);
        if (li.plan[0]) out.push_back(std::to_string(i) + ": " + li.plan);
    }
    return out;
}

class Plan : public ::testing::Test {
  protected:
    KeepThreadsAndSimd keep_;
    /* every preset's conv plans at `level`, unreserved and reserved for 64 */
    void expect_presets(int level, const std::vector<std::vector<std::string>> &want)
    {
        if (cnn_gemm_set_simd_level(level) != level) GTEST_SKIP() << "the CPU lacks this level";
        const char *names[] = {"simplecnn", "lenet5", "pytorchnet", "best"};
        for (int k = 0; k < 4; k++) {
            EXPECT_EQ(plans(names[k], 0), want[k]) << names[k] << " at " << cnn_simd_name();
            EXPECT_EQ(plans(names[k], 64), want[k]) << names[k] << " reserved, " << cnn_simd_name();
        }
    }
};

const char *kWino = "fwd winograd, dw winograd, dx winograd";
const char *kGemmDots = "fwd im2col-gemm, dw im2col-dots, dx im2col-gemm";

} // namespace

TEST_F(Plan, PresetsOnAvx512)
{
    expect_presets(CNN_SIMD_AVX512,
                   {{"0: fwd planes, dw planes-filters, dx planes-interleave"},
                    {"0: fwd planes, dw planes-dots, dx planes-fold",
                     "3: fwd planes-filters, dw planes-filters, dx planes-fold"},
                    {"0: fwd planes, dw planes-filters, dx im2col-gemm", std::string("2: ") + kWino},
                    {"0: fwd planes, dw planes-filters, dx im2col-gemm", std::string("4: ") + kWino,
                     std::string("8: ") + kWino}});
}

TEST_F(Plan, PresetsOnAvx2AndGeneric)
{
    const std::vector<std::vector<std::string>> want = {
        {std::string("0: ") + kGemmDots},
        {std::string("0: ") + kGemmDots, "3: fwd im2col-gemm, dw im2col-gemm, dx im2col-gemm"},
        {std::string("0: ") + kGemmDots, std::string("2: ") + kWino},
        {std::string("0: ") + kGemmDots, std::string("4: ") + kWino, std::string("8: ") + kWino}};
    expect_presets(CNN_SIMD_GENERIC, want);
    expect_presets(CNN_SIMD_AVX2, want);
}

TEST_F(Plan, OneImageOnTwoThreadsSplitsIt)
{
    /* best.conv1 (1.3 MFLOPs per image: worth two threads) in bands of
     * output rows; the Winograd layers by tile rows, inside the algorithm */
    cnn_set_threads(2);
    cnn_gemm_set_simd_level(CNN_SIMD_GENERIC);
    EXPECT_EQ(plans("best", 1),
              (std::vector<std::string>{"0: fwd im2col-bands, dw im2col-dots, dx im2col-gemm",
                                        std::string("4: ") + kWino, std::string("8: ") + kWino}));
}
