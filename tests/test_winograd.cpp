/* test_winograd.cpp — Winograd F(4x4, 3x3) for 3x3 stride-1 conv layers
 * (src/layers/conv2d_winograd.c): the forward, dx and dW against double-
 * precision direct sums, the forward's rounding error against that of a
 * plain fp32 sum, tile-row splits, and the conv layer's fast kernel (which
 * takes these paths for such layers) against the reference kernel at every
 * SIMD level and thread count. */
#include "testutil.h"
#include "kernels/gemm_internal.h"
#include "layers/conv2d_winograd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Shape {
    int c, f, h, w, pad;
    cnn_padmode mode;
};

int out_size(int n, int pad) { return n + 2 * pad - 2; }

/* eq. 3.3 for one image with a 3x3 kernel, stride 1, padding read through
 * cnn_pad_index, in double: the exact answer the fp32 kernels approximate */
std::vector<double> direct_double(const Shape &s, const std::vector<float> &x,
                                  const std::vector<float> &w, const float *b)
{
    const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad);
    std::vector<double> y((size_t)s.f * ho * wo);
    for (int f = 0; f < s.f; f++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                double acc = b ? b[f] : 0.0;
                for (int c = 0; c < s.c; c++)
                    for (int u = 0; u < 3; u++) {
                        int r = cnn_pad_index(i + u - s.pad, s.h, s.mode);
                        if (r < 0) continue;
                        for (int v = 0; v < 3; v++) {
                            int q = cnn_pad_index(j + v - s.pad, s.w, s.mode);
                            if (q < 0) continue;
                            acc += (double)x[((size_t)c * s.h + r) * s.w + q] *
                                   w[(((size_t)f * s.c + c) * 3 + u) * 3 + v];
                        }
                    }
                y[((size_t)f * ho + i) * wo + j] = acc;
            }
    return y;
}

/* The same sum in fp32, in the reference kernel's order: the rounding a
 * plain direct convolution has */
std::vector<float> direct_float(const Shape &s, const std::vector<float> &x,
                                const std::vector<float> &w, const float *b)
{
    const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad);
    std::vector<float> y((size_t)s.f * ho * wo);
    for (int f = 0; f < s.f; f++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                float acc = 0.0f;
                for (int c = 0; c < s.c; c++)
                    for (int u = 0; u < 3; u++) {
                        int r = cnn_pad_index(i + u - s.pad, s.h, s.mode);
                        if (r < 0) continue;
                        for (int v = 0; v < 3; v++) {
                            int q = cnn_pad_index(j + v - s.pad, s.w, s.mode);
                            if (q < 0) continue;
                            acc += x[((size_t)c * s.h + r) * s.w + q] *
                                   w[(((size_t)f * s.c + c) * 3 + u) * 3 + v];
                        }
                    }
                y[((size_t)f * ho + i) * wo + j] = acc + (b ? b[f] : 0.0f);
            }
    return y;
}

/* max |a - exact| / max |exact|: tu_max_rel_err's measure, against double */
template <class T> double rel_err(const std::vector<T> &a, const std::vector<double> &exact)
{
    double diff = 0, big = 1e-30;
    for (size_t i = 0; i < exact.size(); i++) {
        if (std::isnan((double)a[i])) return INFINITY;
        diff = std::max(diff, std::fabs((double)a[i] - exact[i]));
        big = std::max(big, std::fabs(exact[i]));
    }
    return diff / big;
}

/* One image through cnn_wino_*, tile rows [ty0, ty1) at a time for each
 * range in `cuts` (0, ..., th), every range with scratch of its own. */
std::vector<float> winograd(const Shape &s, const std::vector<float> &x,
                            const std::vector<float> &w, const float *b,
                            std::vector<int> cuts = {})
{
    const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad);
    cnn_wino p;
    cnn_wino_plan(&p, s.c, s.f, s.h, s.w, s.pad, s.pad, s.mode, ho, wo);
    if (cuts.empty()) cuts = {0, p.th};
    std::vector<float> u(p.u_size), y((size_t)s.f * ho * wo, NAN);
    std::vector<float> scratch(p.scratch, 0.0f); /* as cnn_alloc leaves it */
    cnn_wino_filters(&p, w.data(), u.data(), scratch.data());
    for (size_t k = 0; k + 1 < cuts.size(); k++) {
        std::vector<float> own(p.scratch, 0.0f);
        cnn_wino_image(&p, u.data(), b, x.data(), y.data(), cuts[k], cuts[k + 1], own.data());
    }
    return y;
}

const char *mode_name(cnn_padmode m) { return cnn_padmode_name(m); }

std::string describe(const Shape &s)
{
    char buf[128];
    std::snprintf(buf, sizeof buf, "C=%d F=%d %dx%d pad=%d %s simd=%s", s.c, s.f, s.h, s.w, s.pad,
                  mode_name(s.mode), cnn_simd_name());
    return buf;
}

/* Every SIMD level this CPU has (the transposes differ between them) */
template <class Fn> void each_level(Fn fn)
{
    const int saved = cnn_gemm_simd_level();
    for (int level : {CNN_SIMD_AVX512, CNN_SIMD_AVX2, CNN_SIMD_GENERIC}) {
        if (cnn_gemm_set_simd_level(level) != level) continue;
        fn();
    }
    cnn_gemm_set_simd_level(saved);
}

/* Winograd's rounding, relative to the largest output (N(0,1) data and
 * weights, the shapes of MatchesDoublePrecisionDirect, against a double-
 * precision direct sum) was measured at 2.3e-7 .. 5.9e-6 (pytorchnet.conv2
 * 3.8e-6, deep.conv64 5.9e-6); a plain fp32 direct sum of the same terms
 * in the reference kernel's order: 1.3e-7 .. 8.8e-7. Winograd is 1.7x ..
 * 15x worse: the transforms' constants (8 in A^T, 5 in B^T, 1/24 in G)
 * round with magnitudes up to ~100x those of the terms they combine. The
 * dx measured 1.1e-6 .. 6.2e-6, dW (3 images) 3.8e-7 .. 3.0e-6. The
 * fast-vs-reference checks elsewhere use 1e-5; 6e-6 leaves too little
 * room, so the Winograd cases use 2e-5 (3x the worst measured) and 30x
 * the direct sum's error. A wrong constant in any of the three matrices,
 * even off by 0.1%, gives 1e-3 or more: every test below fails. */
const double kWinoMaxErr = 2e-5;
const double kWinoVsDirect = 30.0;

} // namespace

TEST(Winograd, MatchesDoublePrecisionDirect)
{
    const Shape shapes[] = {
        {32, 64, 26, 26, 0, CNN_PAD_ZERO},      /* pytorchnet.conv2 */
        {64, 64, 14, 14, 1, CNN_PAD_ZERO},      /* deep.conv64: 14 = 3 tiles + 2 */
        {9, 17, 11, 13, 1, CNN_PAD_REFLECT},    /* C, F off the vector, odd sizes */
        {8, 8, 3, 3, 0, CNN_PAD_ZERO},          /* a single output pixel */
        {19, 33, 7, 22, 1, CNN_PAD_REPLICATE},
        {40, 50, 9, 5, 2, CNN_PAD_ZERO},        /* pad 2: the output outgrows the input */
        {16, 70, 10, 17, 2, CNN_PAD_REPLICATE},
        {23, 12, 6, 6, 1, CNN_PAD_REFLECT},
    };
    int k = 0;
    for (const Shape &s : shapes) {
        k++;
        auto x = tu_randn((size_t)s.c * s.h * s.w, 100 + k);
        auto w = tu_randn((size_t)s.f * s.c * 9, 200 + k);
        auto b = tu_randn(s.f, 300 + k);
        for (const float *bias : {(const float *)nullptr, (const float *)b.data()}) {
            auto exact = direct_double(s, x, w, bias);
            double e_direct = rel_err(direct_float(s, x, w, bias), exact);
            each_level([&] {
                double e = rel_err(winograd(s, x, w, bias), exact);
                EXPECT_LT(e, kWinoMaxErr) << describe(s);
                EXPECT_LT(e, kWinoVsDirect * std::max(e_direct, 1e-8)) << describe(s);
                if (bias && cnn_gemm_simd_level() == CNN_SIMD_AVX512)
                    std::printf("[ error    ] %-48s winograd %.2e  fp32 direct %.2e\n",
                                describe(s).c_str(), e, e_direct);
            });
        }
    }
}

TEST(Winograd, TileRowSplitsGiveTheSameBits)
{
    const Shape s = {21, 40, 23, 18, 1, CNN_PAD_REFLECT}; /* 6 tile rows, the last short */
    auto x = tu_randn((size_t)s.c * s.h * s.w, 1), w = tu_randn((size_t)s.f * s.c * 9, 2);
    auto b = tu_randn(s.f, 3);
    each_level([&] {
        auto whole = winograd(s, x, w, b.data());
        for (std::vector<int> cuts : {std::vector<int>{0, 3, 6}, {0, 1, 2, 3, 4, 5, 6}, {0, 5, 6}}) {
            auto parts = winograd(s, x, w, b.data(), cuts);
            EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * 4)) << describe(s);
        }
    });
}

TEST(Winograd, PlanCountsTilesAndBlocks)
{
    cnn_wino p;
    cnn_wino_plan(&p, 32, 64, 26, 26, 0, 0, CNN_PAD_ZERO, 24, 24);
    EXPECT_EQ(p.th, 6);
    EXPECT_EQ(p.tw, 6);
    EXPECT_EQ(p.cp, 32);
    EXPECT_EQ(p.fp, 64);
    EXPECT_EQ(p.block_rows, 6); /* the whole image in one block */
    cnn_wino_plan(&p, 9, 17, 14, 14, 1, 1, CNN_PAD_ZERO, 14, 14);
    EXPECT_EQ(p.th, 4); /* 14 = 3 tiles + 2 */
    EXPECT_EQ(p.cp, 16);
    EXPECT_EQ(p.fp, 32);
    /* a large image is done in blocks of tile rows */
    cnn_wino_plan(&p, 64, 64, 112, 112, 1, 1, CNN_PAD_ZERO, 112, 112);
    EXPECT_EQ(p.th, 28);
    EXPECT_GE(p.block_rows, 1);
    EXPECT_LT(p.block_rows, 28);
}

TEST(Winograd, LargeImageInBlocks)
{
    /* 60x60: 15 tile rows, more than one block for C + F = 160 lanes */
    const Shape s = {64, 96, 60, 60, 1, CNN_PAD_REPLICATE};
    cnn_wino p;
    cnn_wino_plan(&p, s.c, s.f, s.h, s.w, 1, 1, s.mode, 60, 60);
    ASSERT_LT(p.block_rows, p.th);
    auto x = tu_randn((size_t)s.c * s.h * s.w, 7), w = tu_randn((size_t)s.f * s.c * 9, 8);
    auto exact = direct_double(s, x, w, nullptr);
    EXPECT_LT(rel_err(winograd(s, x, w, nullptr), exact), kWinoMaxErr);
}

/* eq. 3.5 for one image, 3x3 stride 1 with zero padding, in double:
 * every tap adds dy * w into the pixel it read */
std::vector<double> dx_double(const Shape &s, const std::vector<float> &dy,
                              const std::vector<float> &w)
{
    const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad);
    std::vector<double> dx((size_t)s.c * s.h * s.w, 0.0);
    for (int f = 0; f < s.f; f++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++)
                for (int c = 0; c < s.c; c++)
                    for (int u = 0; u < 3; u++)
                        for (int v = 0; v < 3; v++) {
                            int r = i + u - s.pad, q = j + v - s.pad;
                            if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
                            dx[((size_t)c * s.h + r) * s.w + q] +=
                                (double)dy[((size_t)f * ho + i) * wo + j] *
                                w[(((size_t)f * s.c + c) * 3 + u) * 3 + v];
                        }
    return dx;
}

TEST(Winograd, InputGradientMatchesDoublePrecision)
{
    /* dx = the forward on dy with C and F swapped, padding 2 - pad and the
     * kernels rotated: every zero padding the layer may have (0, 1, 2) */
    const Shape shapes[] = {
        {32, 64, 26, 26, 0, CNN_PAD_ZERO}, /* pytorchnet.conv2 */
        {64, 64, 14, 14, 1, CNN_PAD_ZERO}, /* deep.conv64 */
        {9, 17, 11, 13, 1, CNN_PAD_ZERO},
        {20, 11, 7, 5, 2, CNN_PAD_ZERO},
        {5, 40, 3, 4, 0, CNN_PAD_ZERO},    /* a 1x2 output */
    };
    int k = 0;
    for (const Shape &s : shapes) {
        k++;
        const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad);
        auto dy = tu_randn((size_t)s.f * ho * wo, 400 + k), w = tu_randn((size_t)s.f * s.c * 9, 500 + k);
        auto exact = dx_double(s, dy, w);
        each_level([&] {
            cnn_wino p;
            cnn_wino_plan(&p, s.f, s.c, ho, wo, 2 - s.pad, 2 - s.pad, CNN_PAD_ZERO, s.h, s.w);
            std::vector<float> u(p.u_size), scratch(p.scratch, 0.0f), dx(exact.size(), NAN);
            cnn_wino_filters_dx(&p, w.data(), u.data(), scratch.data());
            cnn_wino_image(&p, u.data(), nullptr, dy.data(), dx.data(), 0, p.th, scratch.data());
            double e = rel_err(dx, exact);
            EXPECT_LT(e, kWinoMaxErr) << "dx " << describe(s);
            if (cnn_gemm_simd_level() == CNN_SIMD_AVX512)
                std::printf("[ error    ] dx %-45s winograd %.2e\n", describe(s).c_str(), e);
        });
    }
}

/* eq. 3.4 summed over images, 3x3 stride 1, padding read through
 * cnn_pad_index, in double */
std::vector<double> dw_double(const Shape &s, int n, const std::vector<float> &x,
                              const std::vector<float> &dy)
{
    const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad);
    std::vector<double> dw((size_t)s.f * s.c * 9, 0.0);
    for (int im = 0; im < n; im++)
        for (int f = 0; f < s.f; f++)
            for (int c = 0; c < s.c; c++)
                for (int u = 0; u < 3; u++)
                    for (int v = 0; v < 3; v++) {
                        double acc = 0;
                        for (int i = 0; i < ho; i++) {
                            int r = cnn_pad_index(i + u - s.pad, s.h, s.mode);
                            if (r < 0) continue;
                            for (int j = 0; j < wo; j++) {
                                int q = cnn_pad_index(j + v - s.pad, s.w, s.mode);
                                if (q < 0) continue;
                                acc += (double)dy[(((size_t)im * s.f + f) * ho + i) * wo + j] *
                                       x[(((size_t)im * s.c + c) * s.h + r) * s.w + q];
                            }
                        }
                        dw[(((size_t)f * s.c + c) * 3 + u) * 3 + v] += acc;
                    }
    return dw;
}

TEST(Winograd, WeightGradientMatchesDoublePrecision)
{
    /* dW = G^T [sum over tiles and images of (A e A^T) .* (B^T d B)] G,
     * every padding mode (the padded input is what dW correlates) */
    const Shape shapes[] = {
        {32, 64, 26, 26, 0, CNN_PAD_ZERO},  /* pytorchnet.conv2 */
        {64, 64, 14, 14, 1, CNN_PAD_ZERO},  /* deep.conv64 */
        {9, 17, 11, 13, 1, CNN_PAD_REFLECT},
        {20, 11, 7, 5, 2, CNN_PAD_REPLICATE},
        {5, 40, 3, 4, 0, CNN_PAD_ZERO},
    };
    int k = 0;
    for (const Shape &s : shapes) {
        k++;
        const int ho = out_size(s.h, s.pad), wo = out_size(s.w, s.pad), n = 3;
        auto x = tu_randn((size_t)n * s.c * s.h * s.w, 600 + k);
        auto dy = tu_randn((size_t)n * s.f * ho * wo, 700 + k);
        auto exact = dw_double(s, n, x, dy);
        each_level([&] {
            cnn_wino p;
            cnn_wino_plan(&p, s.c, s.f, s.h, s.w, s.pad, s.pad, s.mode, ho, wo);
            std::vector<float> scratch(p.dw_scratch, 0.0f), dw(exact.size(), NAN);
            for (int im = 0; im < n; im++)
                cnn_wino_dw_image(&p, x.data() + (size_t)im * s.c * s.h * s.w,
                                  dy.data() + (size_t)im * s.f * ho * wo, im == 0, scratch.data());
            cnn_wino_dw_finish(&p, scratch.data(), dw.data());
            double e = rel_err(dw, exact);
            EXPECT_LT(e, kWinoMaxErr) << "dW " << describe(s);
            if (cnn_gemm_simd_level() == CNN_SIMD_AVX512)
                std::printf("[ error    ] dW %-45s winograd %.2e\n", describe(s).c_str(), e);
        });
    }
}

/* ------------------------------------------- through the conv layer */

/* Layers the fast kernel runs by Winograd at every SIMD level (3x3,
 * stride 1, C >= 8, and F > 32 or C >= 16 so the AVX-512 shifted planes
 * do not take the forward), and some it runs by Winograd only off AVX-512
 * (F <= 32, C < 16). */
const LayerCase kLayers[] = {
    {"conv 64 3x3", {32, 26, 26}, 1},                           /* pytorchnet.conv2 */
    {"conv 64 3x3", {32, 26, 26}, 3},
    {"conv 64 3 pad=1", {64, 14, 14}, 2},                       /* deep.conv64 */
    {"conv 37 3 pad=1 padmode=reflect bias=0", {9, 11, 13}, 4}, /* odd everything */
    {"conv 41 3 pad=same padmode=replicate", {17, 9, 7}, 2},
    {"conv 33 3 pad=2", {8, 5, 6}, 1},
    {"conv 20 3 pad=1 padmode=reflect", {12, 10, 9}, 5},
    {"conv 8 3", {8, 7, 7}, 2},
    /* F <= 32 with C >= 16: on AVX-512 the Winograd forward, then the
     * shifted planes' backward */
    {"conv 32 3 pad=1", {16, 14, 14}, 3},
    {"conv 19 3 pad=1 padmode=replicate", {24, 9, 11}, 2},
};

/* The fast kernel against the reference, relative to the largest value
 * of each tensor: y and (zero padding) dx by Winograd, bounded as above;
 * dW, and dx for reflect/replicate, by the GEMM paths as before. */
TEST(Winograd, ConvLayerFastMatchesReference)
{
    for (const LayerCase &c : kLayers)
        each_level([&] {
            SCOPED_TRACE(cnn_simd_name());
            tu_expect_ref_matches_fast(c, 17, 5, kWinoMaxErr);
        });
}

TEST(Winograd, ConvLayerRandomShapes)
{
    cnn_rng r;
    cnn_rng_seed(&r, 77);
    const char *modes[] = {"zero", "reflect", "replicate"};
    for (int k = 0; k < 16; k++) {
        int c = 8 + (int)cnn_rng_below(&r, 30), f = 8 + (int)cnn_rng_below(&r, 60);
        int h = 3 + (int)cnn_rng_below(&r, 16), w = 3 + (int)cnn_rng_below(&r, 16);
        int pad = (int)cnn_rng_below(&r, 2), mode = (int)cnn_rng_below(&r, 3);
        int n = 1 + (int)cnn_rng_below(&r, 4);
        char line[128];
        std::snprintf(line, sizeof line, "conv %d 3 pad=%d padmode=%s bias=%d", f, pad, modes[mode],
                      k % 3 ? 1 : 0);
        each_level([&] {
            TestLayer t;
            ASSERT_TRUE(tu_make_layer(t, line, {c, h, w}, n, 50 + k));
            std::string where;
            EXPECT_LT(tu_ref_vs_fast(t, n, 60 + k, 1, &where), kWinoMaxErr)
                << line << " on " << c << "x" << h << "x" << w << " n=" << n << " simd "
                << cnn_simd_name() << " at " << where;
        });
    }
}

TEST(Winograd, ConvLayerSameBitsAtAnyThreadCount)
{
    /* one image split by tile rows (2 and 4 threads: 4 > the 3 tile rows
     * of a 9x12 output), and batches split by images; forward and dx */
    const LayerCase cases[] = {
        {"conv 64 3x3", {32, 26, 26}, 1},
        {"conv 48 3 pad=1 padmode=reflect", {16, 9, 12}, 1},
        {"conv 64 3 pad=1", {64, 14, 14}, 3},
        {"conv 40 3", {10, 12, 12}, 16},
        {"conv 24 3 pad=1", {16, 10, 10}, 5}, /* Winograd forward, shifted-plane backward */
    };
    const int saved = cnn_threads();
    for (const LayerCase &c : cases) {
        cnn_set_threads(4);
        TestLayer t;
        ASSERT_TRUE(tu_make_layer(t, c.line, c.in, c.n, 9));
        cnn_layer *l = t.layer;
        l->kernels = CNN_KERNELS_FAST;
        const size_t nx = (size_t)c.n * cnn_shape_size(c.in), ny = (size_t)c.n * cnn_shape_size(l->out);
        auto x = tu_randn(nx, 10), dy = tu_randn(ny, 11);
        /* y, then dx and the gradients */
        auto pass = [&](std::vector<float> &y, std::vector<float> &dx, std::vector<float> &g) {
            y.assign(ny, NAN);
            dx.assign(nx, NAN);
            l->ops->forward(l, x.data(), y.data(), c.n, 1, cnn_threads());
            l->ops->backward(l, x.data(), y.data(), dy.data(), dx.data(), c.n, cnn_threads());
            g = t.grad;
        };
        std::vector<float> y1, dx1, g1, y, dx, g;
        cnn_set_threads(1);
        pass(y1, dx1, g1);
        for (int threads : {2, 4, 1}) {
            cnn_set_threads(threads);
            pass(y, dx, g);
            EXPECT_EQ(0, std::memcmp(y1.data(), y.data(), y.size() * 4)) << c.line << " " << threads;
            EXPECT_EQ(0, std::memcmp(dx1.data(), dx.data(), dx.size() * 4)) << c.line << " " << threads;
            EXPECT_EQ(0, std::memcmp(g1.data(), g.data(), g.size() * 4)) << c.line << " " << threads;
        }
    }
    cnn_set_threads(saved);
}

TEST(Winograd, ConvLayerGradientsMatchNumerical)
{
    /* F > 32 so the Winograd forward and dx run on every SIMD level */
    const LayerCase cases[] = {
        {"conv 33 3 pad=1", {8, 5, 6}, 2},
        {"conv 34 3", {9, 6, 5}, 1},
        {"conv 33 3 pad=2 bias=0", {8, 3, 4}, 1},
    };
    for (const LayerCase &c : cases) tu_expect_gradients(c, CNN_KERNELS_FAST, 12, 22, 1e-2, 2e-3);
}

TEST(Winograd, NewWeightsAreUsed)
{
    /* the transformed filters are kept between calls while the weights are
     * unchanged: a changed weight (even one, even on another thread count)
     * must reach the output */
    const int saved = cnn_threads();
    cnn_set_threads(2);
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, "conv 48 3 pad=1", {16, 12, 12}, 2, 4));
    cnn_layer *l = t.layer;
    l->kernels = CNN_KERNELS_FAST;
    auto x = tu_randn(2 * cnn_shape_size(l->in), 5);
    const size_t ny = 2 * cnn_shape_size(l->out);
    for (int threads : {1, 2}) {
        cnn_set_threads(threads);
        for (int n : {1, 2}) {
            std::vector<float> y(ny), ref(ny);
            l->ops->forward(l, x.data(), y.data(), n, 0, cnn_threads());
            l->params[0].data[1000] += 0.5f; /* filter 2, channel 15 */
            l->ops->forward(l, x.data(), y.data(), n, 0, cnn_threads());
            l->kernels = CNN_KERNELS_REF;
            l->ops->forward(l, x.data(), ref.data(), n, 0, cnn_threads());
            l->kernels = CNN_KERNELS_FAST;
            EXPECT_LT(tu_max_rel_err(y.data(), ref.data(), (size_t)n * cnn_shape_size(l->out)),
                      kWinoMaxErr) << threads << " threads, n=" << n;
        }
    }
    cnn_set_threads(saved);
}

/* In a model the transformed filters are kept while the parameter version
 * stays the same; a weight written through cnn_model_tensor, or through a
 * kept pointer followed by cnn_model_params_changed, reaches the output. */
TEST(Winograd, ModelSeesWeightsWrittenThroughItsTensors)
{
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_from_text("input 16x12x12\nconv 48 3 pad=1\nflatten\ndense 10\n", "t", &m),
              CNN_OK) << cnn_errmsg();
    cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 3);
    ASSERT_EQ(cnn_model_set_batch(m, 2), CNN_OK) << cnn_errmsg();
    auto x = tu_randn(2 * 16 * 12 * 12, 8);
    auto run = [&](cnn_kernels k) {
        cnn_model_set_kernels(m, k);
        const float *y = nullptr;
        EXPECT_EQ(cnn_model_forward(m, x.data(), 2, 0, &y), CNN_OK) << cnn_errmsg();
        return std::vector<float>(y, y + 20);
    };
    run(CNN_KERNELS_FAST);
    cnn_tensor w;
    ASSERT_EQ(cnn_model_tensor(m, 0, &w), CNN_OK);
    w.data[1000] += 0.5f;
    auto fast = run(CNN_KERNELS_FAST), ref = run(CNN_KERNELS_REF);
    EXPECT_LT(tu_max_rel_err(fast.data(), ref.data(), 20), kWinoMaxErr);
    run(CNN_KERNELS_FAST);
    w.data[2000] -= 0.5f; /* through the kept pointer */
    cnn_model_params_changed(m);
    fast = run(CNN_KERNELS_FAST);
    ref = run(CNN_KERNELS_REF);
    EXPECT_LT(tu_max_rel_err(fast.data(), ref.data(), 20), kWinoMaxErr);
    cnn_model_free(m);
}
