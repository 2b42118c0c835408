/* test_im2col.cpp — im2col against a by-hand example and a naive gather,
 * and col2im as its exact adjoint, for every padding mode and stride. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

static cnn_window geom(int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                       cnn_padmode mode)
{
    cnn_window g = {c, h, w, kh, kw, sh, sw, ph, pw, mode, 0, 0};
    g.ho = (h + 2 * ph - kh) / sh + 1;
    g.wo = (w + 2 * pw - kw) / sw + 1;
    return g;
}

static size_t col_size(const cnn_window &g)
{
    return (size_t)g.c * g.kh * g.kw * g.ho * g.wo;
}

/* The definition, one element at a time. */
static std::vector<float> naive_im2col(const cnn_window &g, const std::vector<float> &x)
{
    std::vector<float> col(col_size(g));
    for (int c = 0; c < g.c; c++)
        for (int i = 0; i < g.kh; i++)
            for (int j = 0; j < g.kw; j++)
                for (int oy = 0; oy < g.ho; oy++)
                    for (int ox = 0; ox < g.wo; ox++) {
                        int y = cnn_pad_index(oy * g.sh - g.ph + i, g.h, g.mode);
                        int xx = cnn_pad_index(ox * g.sw - g.pw + j, g.w, g.mode);
                        size_t row = ((size_t)c * g.kh + i) * g.kw + j;
                        col[row * g.ho * g.wo + oy * g.wo + ox] =
                            (y < 0 || xx < 0) ? 0.0f : x[((size_t)c * g.h + y) * g.w + xx];
                    }
    return col;
}

TEST(PadIndex, ModesByHand)
{
    /* n = 3: ... -2 -1 | 0 1 2 | 3 4 ... */
    EXPECT_EQ(cnn_pad_index(-1, 3, CNN_PAD_ZERO), -1);
    EXPECT_EQ(cnn_pad_index(3, 3, CNN_PAD_ZERO), -1);
    EXPECT_EQ(cnn_pad_index(-2, 3, CNN_PAD_REFLECT), 2);
    EXPECT_EQ(cnn_pad_index(-1, 3, CNN_PAD_REFLECT), 1);
    EXPECT_EQ(cnn_pad_index(3, 3, CNN_PAD_REFLECT), 1);
    EXPECT_EQ(cnn_pad_index(4, 3, CNN_PAD_REFLECT), 0);
    EXPECT_EQ(cnn_pad_index(-2, 3, CNN_PAD_REPLICATE), 0);
    EXPECT_EQ(cnn_pad_index(4, 3, CNN_PAD_REPLICATE), 2);
    EXPECT_STREQ(cnn_padmode_name(CNN_PAD_REFLECT), "reflect");
}

TEST(Im2col, ByHand3x3Kernel2x2)
{
    /* x = 1 2 3 / 4 5 6 / 7 8 9; each row of col is one tap over the 4 windows */
    std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    cnn_window g = geom(1, 3, 3, 2, 2, 1, 1, 0, 0, CNN_PAD_ZERO);
    ASSERT_EQ(g.ho, 2);
    std::vector<float> col(col_size(g));
    cnn_im2col(&g, x.data(), col.data());
    std::vector<float> want = {1, 2, 4, 5, /* tap (0,0) */ 2, 3, 5, 6, /* (0,1) */
                               4, 5, 7, 8, /* (1,0) */ 5, 6, 8, 9 /* (1,1) */};
    EXPECT_EQ(col, want);
}

TEST(Im2col, ByHandPaddingModes)
{
    /* one row [1 2 3], kernel 1x3, pad 2 each side: the padded rows are
     * zero:      0 0 1 2 3 0 0
     * reflect:   3 2 1 2 3 2 1
     * replicate: 1 1 1 2 3 3 3
     * and the 5 windows give the three tap rows below. */
    std::vector<float> x = {1, 2, 3};
    struct { cnn_padmode m; std::vector<float> want; } cases[] = {
        {CNN_PAD_ZERO, {0, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 0}},
        {CNN_PAD_REFLECT, {3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1}},
        {CNN_PAD_REPLICATE, {1, 1, 1, 2, 3, 1, 1, 2, 3, 3, 1, 2, 3, 3, 3}},
    };
    for (auto &c : cases) {
        cnn_window g = geom(1, 1, 3, 1, 3, 1, 1, 0, 2, c.m);
        ASSERT_EQ(g.wo, 5);
        std::vector<float> col(col_size(g), -1.0f);
        cnn_im2col(&g, x.data(), col.data());
        EXPECT_EQ(col, c.want) << cnn_padmode_name(c.m);
        /* col2im of all ones counts how often each pixel was read */
        std::vector<float> ones(col.size(), 1.0f), dx(3, 0.0f);
        cnn_col2im(&g, ones.data(), dx.data());
        std::vector<float> count(3, 0.0f);
        for (size_t k = 0; k < c.want.size(); k++)
            if (c.want[k] != 0) count[(int)c.want[k] - 1] += 1;
        EXPECT_EQ(dx, count) << cnn_padmode_name(c.m);
    }
}

/* Random geometries: every mode, strides 1-3, non-square kernels and pads,
 * including pads larger than the kernel reach and 1-pixel images. */
static std::vector<cnn_window> random_geometries()
{
    std::vector<cnn_window> out;
    cnn_rng r;
    cnn_rng_seed(&r, 99);
    for (int mode = 0; mode < 3; mode++)
        for (int s = 1; s <= 3; s++)
            for (int rep = 0; rep < 6; rep++) {
                int h = 1 + (int)cnn_rng_below(&r, 9), w = 1 + (int)cnn_rng_below(&r, 9);
                int kh = 1 + (int)cnn_rng_below(&r, 4), kw = 1 + (int)cnn_rng_below(&r, 4);
                int ph = (int)cnn_rng_below(&r, 4), pw = (int)cnn_rng_below(&r, 4);
                if (mode == CNN_PAD_REFLECT) { /* reflect needs pad < size */
                    ph = ph % h;
                    pw = pw % w;
                }
                if (h + 2 * ph < kh || w + 2 * pw < kw) continue;
                int sw = rep % 2 ? s : 1 + (s % 3); /* mixed strides too */
                out.push_back(geom(1 + (int)cnn_rng_below(&r, 3), h, w, kh, kw, s, sw, ph, pw,
                                   (cnn_padmode)mode));
            }
    /* stride 1 without padding takes its own plain path: widths on both
     * sides of a vector (16), 1-wide windows and outputs */
    for (int rep = 0; rep < 12; rep++) {
        int h = 1 + (int)cnn_rng_below(&r, 20), w = 1 + (int)cnn_rng_below(&r, 40);
        int kh = 1 + (int)cnn_rng_below(&r, h < 4 ? h : 4), kw = 1 + (int)cnn_rng_below(&r, w < 4 ? w : 4);
        out.push_back(geom(1 + (int)cnn_rng_below(&r, 3), h, w, kh, kw, 1, 1, 0, 0,
                           (cnn_padmode)(rep % 3)));
    }
    out.push_back(geom(2, 26, 26, 3, 3, 1, 1, 0, 0, CNN_PAD_ZERO)); /* pytorchnet.conv2's */
    return out;
}

static std::string describe(const cnn_window &g)
{
    char buf[160];
    snprintf(buf, sizeof buf, "c%d %dx%d k%dx%d s%dx%d p%dx%d %s", g.c, g.h, g.w, g.kh, g.kw,
             g.sh, g.sw, g.ph, g.pw, cnn_padmode_name(g.mode));
    return buf;
}

TEST(Im2col, MatchesNaiveGather)
{
    auto geoms = random_geometries();
    ASSERT_GT(geoms.size(), 40u);
    int k = 0;
    for (auto &g : geoms) {
        auto x = tu_randn((size_t)g.c * g.h * g.w, 10 + k++);
        std::vector<float> col(col_size(g), 12345.0f);
        cnn_im2col(&g, x.data(), col.data());
        EXPECT_EQ(col, naive_im2col(g, x)) << describe(g);
    }
}

/* Bands of output rows into a matrix of their own (what a thread builds for
 * a single image split over threads) equal those columns of the whole. */
TEST(Im2col, RowBandsMatchTheWhole)
{
    int k = 0;
    for (auto &g : random_geometries()) {
        auto x = tu_randn((size_t)g.c * g.h * g.w, 500 + k++);
        std::vector<float> whole = naive_im2col(g, x);
        const size_t hw = (size_t)g.ho * g.wo, rows = (size_t)g.c * g.kh * g.kw;
        for (int oy0 = 0; oy0 < g.ho; oy0 += 2) {
            int oy1 = oy0 + 3 < g.ho ? oy0 + 3 : g.ho;
            const size_t np = (size_t)(oy1 - oy0) * g.wo, ld = np + 3;
            std::vector<float> band(rows * ld, -7.0f);
            cnn_im2col_rows(&g, x.data(), oy0, oy1, band.data(), ld);
            for (size_t r = 0; r < rows; r++) {
                for (size_t p = 0; p < np; p++)
                    ASSERT_EQ(band[r * ld + p], whole[r * hw + (size_t)oy0 * g.wo + p])
                        << describe(g) << " rows " << oy0 << ".." << oy1;
                for (size_t p = np; p < ld; p++) ASSERT_EQ(band[r * ld + p], -7.0f); /* untouched */
            }
        }
    }
}

TEST(Im2col, Col2imIsTheAdjoint)
{
    /* <im2col(x), c> == <x, col2im(c)>, in double */
    int k = 0, by_mode[3] = {0, 0, 0};
    for (auto &g : random_geometries()) {
        size_t nx = (size_t)g.c * g.h * g.w, nc = col_size(g);
        auto x = tu_randn(nx, 200 + k), c = tu_randn(nc, 300 + k);
        k++;
        std::vector<float> col(nc), dx(nx, 0.0f);
        cnn_im2col(&g, x.data(), col.data());
        cnn_col2im(&g, c.data(), dx.data());
        double lhs = 0, rhs = 0, mag = 0;
        for (size_t i = 0; i < nc; i++) {
            lhs += (double)col[i] * c[i];
            mag += std::fabs((double)col[i] * c[i]);
        }
        for (size_t i = 0; i < nx; i++) rhs += (double)x[i] * dx[i];
        EXPECT_NEAR(lhs, rhs, 1e-5 * (mag + 1)) << describe(g);
        by_mode[g.mode]++;
    }
    for (int m = 0; m < 3; m++) EXPECT_GT(by_mode[m], 10) << m;
}

TEST(Im2col, Col2imAccumulates)
{
    cnn_window g = geom(2, 5, 4, 3, 2, 2, 1, 1, 1, CNN_PAD_REPLICATE);
    size_t nx = (size_t)g.c * g.h * g.w;
    auto c = tu_randn(col_size(g), 5);
    std::vector<float> once(nx, 0.0f), twice(nx, 0.0f);
    cnn_col2im(&g, c.data(), once.data());
    cnn_col2im(&g, c.data(), twice.data());
    cnn_col2im(&g, c.data(), twice.data());
    for (size_t i = 0; i < nx; i++) EXPECT_FLOAT_EQ(twice[i], 2 * once[i]);
}
