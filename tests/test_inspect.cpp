/* test_inspect.cpp — looking inside a model through the public API: every
 * layer's output for a batch (cnn_model_forward_layers), each layer's
 * tensors by index and name, and the window of conv and pool layers. Each
 * layer's output is checked against its formula computed here from the
 * layer's own tensors and window (eq. 3.3 for a conv), so the three calls
 * are checked against each other; and against cnn_model_forward, also
 * after a run in shards. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct ModelPtr {
    cnn_model *m = nullptr;
    ~ModelPtr() { cnn_model_free(m); }
};

/* Every layer kind, grey and two-channel convs with every padding mode. */
const char *kAllKinds =
    "input 2x12x12\n"
    "conv 5 3x3 pad=1 padmode=reflect\n"
    "batchnorm\n"
    "leaky_relu 0.1\n"
    "maxpool 2\n"
    "conv 6 3x2 stride=2x1 pad=1 padmode=replicate\n"
    "tanh\n"
    "avgpool 2 stride=1\n"
    "conv 4 2x2 pad=1\n"
    "sigmoid\n"
    "flatten\n"
    "dropout 0.3\n"
    "dense 12\n"
    "batchnorm\n"
    "relu\n"
    "dense 7 bias=0\n"
    "softmax\n";

/* A colour first layer. */
const char *kColour =
    "input 3x10x10\n"
    "conv 4 5x5 pad=2\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 3\n";

std::vector<float> layer_input(const std::vector<float> &x, const float *const *acts, int i,
                               int n, size_t in_size)
{
    const float *src = i == 0 ? x.data() : acts[i - 1];
    return std::vector<float>(src, src + (size_t)n * in_size);
}

/* Where padded coordinate i of an axis of n reads from, or -1 (zero). */
int pad_at(int i, int n, const std::string &mode)
{
    if (i >= 0 && i < n) return i;
    if (mode == "zero") return -1;
    if (mode == "replicate") return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i; /* reflect, pad < n */
}

double parse_after(const char *desc, const char *key, double def)
{
    const char *at = strstr(desc, key);
    return at ? atof(at + strlen(key)) : def;
}

/* Layer i's output for n images computed here from its input, its tensors
 * and its window. */
std::vector<float> expected_output(cnn_model *m, int i, const std::vector<float> &in, int n,
                                   int c, int h, int w)
{
    cnn_layer_info li;
    EXPECT_EQ(cnn_model_layer_info(m, i, &li), CNN_OK);
    const std::string kind = li.kind;
    const int oc = li.out_c, oh = li.out_h, ow = li.out_w;
    const size_t isz = (size_t)c * h * w, osz = (size_t)oc * oh * ow;
    std::vector<float> y((size_t)n * osz, 0.0f);
    auto X = [&](int b, int ch, int yy, int xx) { return in[b * isz + ((size_t)ch * h + yy) * w + xx]; };
    if (kind == "conv") {
        cnn_tensor wt, bt;
        cnn_layer_window g;
        EXPECT_EQ(cnn_model_layer_tensor_by_name(m, i, "weight", &wt), CNN_OK);
        const bool bias = cnn_model_layer_tensor_by_name(m, i, "bias", &bt) == CNN_OK;
        EXPECT_EQ(cnn_model_layer_window(m, i, &g), CNN_OK);
        for (int b = 0; b < n; b++)
            for (int f = 0; f < oc; f++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double s = bias ? bt.data[f] : 0.0; /* eq. 3.3 */
                        for (int ch = 0; ch < c; ch++)
                            for (int a = 0; a < g.kh; a++)
                                for (int e = 0; e < g.kw; e++) {
                                    int yy = pad_at(oy * g.sh - g.ph + a, h, g.padmode);
                                    int xx = pad_at(ox * g.sw - g.pw + e, w, g.padmode);
                                    if (yy < 0 || xx < 0) continue;
                                    s += (double)wt.data[((f * c + ch) * g.kh + a) * g.kw + e] *
                                         X(b, ch, yy, xx);
                                }
                        y[b * osz + ((size_t)f * oh + oy) * ow + ox] = (float)s;
                    }
    } else if (kind == "maxpool" || kind == "avgpool") {
        cnn_layer_window g;
        EXPECT_EQ(cnn_model_layer_window(m, i, &g), CNN_OK);
        EXPECT_STREQ(g.padmode, "zero");
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < oc; ch++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double mx = -INFINITY, sum = 0;
                        for (int a = 0; a < g.kh; a++)
                            for (int e = 0; e < g.kw; e++) {
                                int yy = oy * g.sh - g.ph + a, xx = ox * g.sw - g.pw + e;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                                mx = std::max(mx, (double)X(b, ch, yy, xx));
                                sum += X(b, ch, yy, xx);
                            }
                        y[b * osz + ((size_t)ch * oh + oy) * ow + ox] =
                            (float)(kind == "maxpool" ? mx : sum / (g.kh * g.kw));
                    }
    } else if (kind == "dense") {
        cnn_tensor wt, bt;
        EXPECT_EQ(cnn_model_layer_tensor_by_name(m, i, "weight", &wt), CNN_OK);
        EXPECT_EQ(wt.ndim, 2);
        EXPECT_EQ(wt.dims[0], oc);
        EXPECT_EQ(wt.dims[1], (int)isz);
        const bool bias = cnn_model_layer_tensor_by_name(m, i, "bias", &bt) == CNN_OK;
        for (int b = 0; b < n; b++)
            for (int o = 0; o < oc; o++) {
                double s = bias ? bt.data[o] : 0.0;
                for (size_t k = 0; k < isz; k++) s += (double)wt.data[o * isz + k] * in[b * isz + k];
                y[b * osz + o] = (float)s;
            }
    } else if (kind == "batchnorm") {
        cnn_tensor gt, bt, mt, vt;
        EXPECT_EQ(cnn_model_layer_num_tensors(m, i), 4);
        EXPECT_EQ(cnn_model_layer_tensor_by_name(m, i, "weight", &gt), CNN_OK);
        EXPECT_EQ(cnn_model_layer_tensor_by_name(m, i, "bias", &bt), CNN_OK);
        EXPECT_EQ(cnn_model_layer_tensor_by_name(m, i, "running_mean", &mt), CNN_OK);
        EXPECT_EQ(cnn_model_layer_tensor_by_name(m, i, "running_var", &vt), CNN_OK);
        EXPECT_EQ(mt.grad, nullptr);
        const double eps = parse_after(li.desc, "eps=", 1e-5);
        const size_t plane = (size_t)h * w;
        for (int b = 0; b < n; b++)
            for (size_t k = 0; k < isz; k++) {
                size_t ch = k / plane;
                y[b * osz + k] = (float)((in[b * isz + k] - mt.data[ch]) /
                                             std::sqrt((double)vt.data[ch] + eps) * gt.data[ch] +
                                         bt.data[ch]);
            }
    } else if (kind == "softmax") {
        for (int b = 0; b < n; b++) {
            double mx = -INFINITY, s = 0;
            for (size_t k = 0; k < isz; k++) mx = std::max(mx, (double)in[b * isz + k]);
            for (size_t k = 0; k < isz; k++) s += std::exp(in[b * isz + k] - mx);
            for (size_t k = 0; k < isz; k++) y[b * osz + k] = (float)(std::exp(in[b * isz + k] - mx) / s);
        }
    } else {
        const double alpha = parse_after(li.desc, "leaky_relu ", 0.01);
        EXPECT_EQ(osz, isz) << kind;
        for (size_t k = 0; k < (size_t)n * isz; k++) {
            double v = in[k];
            if (kind == "relu") v = v > 0 ? v : 0;
            else if (kind == "leaky_relu") v = v > 0 ? v : alpha * v;
            else if (kind == "sigmoid") v = 1 / (1 + std::exp(-v));
            else if (kind == "tanh") v = std::tanh(v);
            else EXPECT_TRUE(kind == "flatten" || kind == "dropout") << kind; /* identity */
            y[k] = (float)v;
        }
    }
    return y;
}

/* Random running statistics, so that batchnorm is not the identity. */
void randomise_batchnorm(cnn_model *m)
{
    for (int i = 0; i < cnn_model_num_layers(m); i++) {
        cnn_tensor mt, vt, gt;
        if (cnn_model_layer_tensor_by_name(m, i, "running_var", &vt) != CNN_OK) continue;
        ASSERT_EQ(cnn_model_layer_tensor_by_name(m, i, "running_mean", &mt), CNN_OK);
        ASSERT_EQ(cnn_model_layer_tensor_by_name(m, i, "weight", &gt), CNN_OK);
        std::vector<float> r = tu_randn(3 * mt.size, 100 + i);
        for (size_t k = 0; k < mt.size; k++) {
            mt.data[k] = 0.3f * r[k];
            vt.data[k] = 0.5f + std::fabs(r[mt.size + k]);
            gt.data[k] = 1.0f + 0.2f * r[2 * mt.size + k];
        }
    }
}

void check_every_layer(const char *arch, int n, int threads)
{
    cnn_set_threads(threads);
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(arch, "arch", &p.m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_init(p.m, CNN_INIT_HE_NORMAL, 7), CNN_OK);
    randomise_batchnorm(p.m);
    ASSERT_EQ(cnn_model_set_batch(p.m, 64), CNN_OK) << cnn_errmsg();
    int c, h, w;
    cnn_model_input_shape(p.m, &c, &h, &w);
    std::vector<float> x = tu_randn((size_t)n * c * h * w, 3);
    const int L = cnn_model_num_layers(p.m);
    std::vector<const float *> acts(L, nullptr);
    ASSERT_EQ(cnn_model_forward_layers(p.m, x.data(), n, acts.data()), CNN_OK) << cnn_errmsg();
    for (int i = 0; i < L; i++) {
        cnn_layer_info li;
        ASSERT_EQ(cnn_model_layer_info(p.m, i, &li), CNN_OK);
        ASSERT_NE(acts[i], nullptr) << i;
        std::vector<float> in = layer_input(x, acts.data(), i, n, (size_t)c * h * w);
        std::vector<float> want = expected_output(p.m, i, in, n, c, h, w);
        double err = tu_max_rel_err(want.data(), acts[i], want.size());
        EXPECT_LT(err, 2e-5) << "layer " << i << " (" << li.desc << ") at " << threads << " threads";
        c = li.out_c, h = li.out_h, w = li.out_w;
    }
    /* the last layer's output is what cnn_model_forward gives (in shards
     * for this batch size) */
    const float *out;
    ASSERT_EQ(cnn_model_forward(p.m, x.data(), n, 0, &out), CNN_OK) << cnn_errmsg();
    const size_t k = (size_t)n * cnn_model_output_size(p.m);
    std::vector<float> last(acts[L - 1], acts[L - 1] + k);
    EXPECT_LT(tu_max_rel_err(last.data(), out, k), 1e-5);
}

} // namespace

TEST(Inspect, EveryLayerIsItsFormula)
{
    check_every_layer(kAllKinds, 5, 1);
    check_every_layer(kAllKinds, 48, 2); /* a batch cnn_model_forward runs in shards */
    check_every_layer(kColour, 40, 2);
}

TEST(Inspect, ReferenceKernelsToo)
{
    cnn_set_threads(1);
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kColour, "colour", &p.m), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, 8), CNN_OK);
    std::vector<float> x = tu_randn(4 * 300, 5);
    std::vector<const float *> fast(cnn_model_num_layers(p.m)), ref(fast.size());
    ASSERT_EQ(cnn_model_forward_layers(p.m, x.data(), 4, fast.data()), CNN_OK);
    std::vector<float> conv_fast(fast[0], fast[0] + 4 * 400);
    cnn_model_set_kernels(p.m, CNN_KERNELS_REF);
    ASSERT_EQ(cnn_model_forward_layers(p.m, x.data(), 4, ref.data()), CNN_OK);
    EXPECT_LT(tu_max_rel_err(conv_fast.data(), ref[0], conv_fast.size()), 1e-5);
}

/* A sharded forward leaves the middle layers' buffers stale in the model;
 * cnn_model_forward_layers recomputes them, whatever ran before. */
TEST(Inspect, NotStaleAfterAShardedForward)
{
    cnn_set_threads(2);
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kColour, "colour", &p.m), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, 64), CNN_OK);
    const size_t px = 300;
    std::vector<float> a = tu_randn(64 * px, 1), b = tu_randn(64 * px, 2);
    const int L = cnn_model_num_layers(p.m);
    std::vector<const float *> acts(L);
    ASSERT_EQ(cnn_model_forward_layers(p.m, a.data(), 64, acts.data()), CNN_OK);
    const float *out;
    ASSERT_EQ(cnn_model_forward(p.m, b.data(), 64, 0, &out), CNN_OK); /* in shards */
    std::vector<float> want(out, out + 64 * 3);
    ASSERT_EQ(cnn_model_forward_layers(p.m, b.data(), 64, acts.data()), CNN_OK);
    EXPECT_LT(tu_max_rel_err(want.data(), acts[L - 1], want.size()), 1e-5);
    /* the first layer's output is b's too: image 63, filter 3, centre */
    std::vector<float> in(b.begin(), b.end());
    std::vector<float> conv = expected_output(p.m, 0, in, 64, 3, 10, 10);
    EXPECT_LT(tu_max_rel_err(conv.data(), acts[0], conv.size()), 1e-5);
    cnn_set_threads(0);
}

TEST(Inspect, LayerTensorsByIndexAndName)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kAllKinds, "all", &p.m), CNN_OK);
    /* every tensor of the model is some layer's, in the same order */
    int t = 0;
    for (int i = 0; i < cnn_model_num_layers(p.m); i++)
        for (int j = 0; j < cnn_model_layer_num_tensors(p.m, i); j++, t++) {
            cnn_tensor a, b;
            ASSERT_EQ(cnn_model_layer_tensor(p.m, i, j, &a), CNN_OK);
            ASSERT_EQ(cnn_model_tensor(p.m, t, &b), CNN_OK);
            EXPECT_STREQ(a.name, b.name);
            EXPECT_EQ(a.data, b.data);
            EXPECT_EQ(a.size, b.size);
            EXPECT_EQ(std::string(a.name).rfind(std::to_string(i) + ".", 0), 0u) << a.name;
        }
    EXPECT_EQ(t, cnn_model_num_tensors(p.m));

    cnn_tensor w;
    ASSERT_EQ(cnn_model_layer_tensor_by_name(p.m, 0, "weight", &w), CNN_OK);
    EXPECT_STREQ(w.name, "0.weight");
    EXPECT_EQ(w.ndim, 4);
    const int dims[4] = {5, 2, 3, 3};
    for (int d = 0; d < 4; d++) EXPECT_EQ(w.dims[d], dims[d]);
    EXPECT_EQ(w.size, 90u);
    EXPECT_NE(w.grad, nullptr);
    cnn_tensor same;
    ASSERT_EQ(cnn_model_layer_tensor_by_name(p.m, 0, "0.weight", &same), CNN_OK);
    EXPECT_EQ(same.data, w.data);
    ASSERT_EQ(cnn_model_layer_tensor_by_name(p.m, 4, "weight", &w), CNN_OK);
    EXPECT_STREQ(w.name, "4.weight");
    EXPECT_EQ(w.dims[0], 6);
    EXPECT_EQ(w.dims[2], 3);
    EXPECT_EQ(w.dims[3], 2);

    /* a layer without tensors, a name it lacks, layers that do not exist */
    EXPECT_EQ(cnn_model_layer_num_tensors(p.m, 2), 0);
    EXPECT_EQ(cnn_model_layer_num_tensors(p.m, -1), 0);
    EXPECT_EQ(cnn_model_layer_num_tensors(p.m, 99), 0);
    EXPECT_EQ(cnn_model_layer_tensor(p.m, 2, 0, &w), CNN_ERR_ARG);
    EXPECT_NE(std::string(cnn_errmsg()).find("has 0 tensors"), std::string::npos) << cnn_errmsg();
    EXPECT_EQ(cnn_model_layer_tensor_by_name(p.m, 14, "bias", &w), CNN_ERR_ARG); /* bias=0 */
    EXPECT_NE(std::string(cnn_errmsg()).find("no tensor 'bias' (it has: weight)"), std::string::npos)
        << cnn_errmsg();
    EXPECT_EQ(cnn_model_layer_tensor_by_name(p.m, 0, "1.weight", &w), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_layer_tensor(p.m, 99, 0, &w), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_layer_tensor(p.m, 0, 2, &w), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_layer_tensor_by_name(p.m, -1, "weight", &w), CNN_ERR_ARG);

    /* a model built for its shapes has the shapes and no data */
    ModelPtr s;
    ASSERT_EQ(cnn_model_shapes_from_text(kAllKinds, "all", &s.m), CNN_OK);
    ASSERT_EQ(cnn_model_layer_tensor_by_name(s.m, 11, "weight", &w), CNN_OK);
    EXPECT_EQ(w.data, nullptr);
    EXPECT_EQ(w.dims[0], 12);
    EXPECT_EQ(w.dims[1], 4 * 3 * 7);
}

TEST(Inspect, Windows)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_shapes_from_text(kAllKinds, "all", &p.m), CNN_OK);
    cnn_layer_window g;
    ASSERT_EQ(cnn_model_layer_window(p.m, 0, &g), CNN_OK);
    EXPECT_EQ(g.kh, 3);
    EXPECT_EQ(g.kw, 3);
    EXPECT_EQ(g.sh, 1);
    EXPECT_EQ(g.ph, 1);
    EXPECT_STREQ(g.padmode, "reflect");
    ASSERT_EQ(cnn_model_layer_window(p.m, 4, &g), CNN_OK);
    EXPECT_EQ(g.kh, 3);
    EXPECT_EQ(g.kw, 2);
    EXPECT_EQ(g.sh, 2);
    EXPECT_EQ(g.sw, 1);
    EXPECT_EQ(g.pw, 1);
    EXPECT_STREQ(g.padmode, "replicate");
    ASSERT_EQ(cnn_model_layer_window(p.m, 3, &g), CNN_OK); /* maxpool 2 */
    EXPECT_EQ(g.kh, 2);
    EXPECT_EQ(g.sh, 2);
    EXPECT_EQ(g.ph, 0);
    ASSERT_EQ(cnn_model_layer_window(p.m, 6, &g), CNN_OK); /* avgpool 2 stride=1 */
    EXPECT_EQ(g.sh, 1);
    EXPECT_EQ(g.kw, 2);
    EXPECT_EQ(cnn_model_layer_window(p.m, 1, &g), CNN_ERR_ARG); /* batchnorm */
    EXPECT_NE(std::string(cnn_errmsg()).find("not a conv or pool layer"), std::string::npos);
    EXPECT_EQ(cnn_model_layer_window(p.m, 16, &g), CNN_ERR_ARG);
}

TEST(Inspect, RefusesWhatItCannotRun)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kColour, "colour", &p.m), CNN_OK);
    std::vector<float> x = tu_randn(8 * 300, 1);
    std::vector<const float *> acts(cnn_model_num_layers(p.m));
    EXPECT_EQ(cnn_model_forward_layers(p.m, x.data(), 2, acts.data()), CNN_ERR_ARG); /* no batch */
    ASSERT_EQ(cnn_model_set_batch(p.m, 4), CNN_OK);
    EXPECT_EQ(cnn_model_forward_layers(p.m, x.data(), 5, acts.data()), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_forward_layers(p.m, x.data(), 0, acts.data()), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_forward_layers(p.m, nullptr, 2, acts.data()), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_forward_layers(p.m, x.data(), 2, nullptr), CNN_ERR_ARG);

    ModelPtr s;
    ASSERT_EQ(cnn_model_shapes_from_text(kColour, "colour", &s.m), CNN_OK);
    EXPECT_EQ(cnn_model_forward_layers(s.m, x.data(), 1, acts.data()), CNN_ERR_ARG);
}

TEST(Inspect, NonFiniteNamesTheLayerAndImage)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kColour, "colour", &p.m), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, 4), CNN_OK);
    std::vector<float> x = tu_randn(4 * 300, 1);
    std::vector<const float *> acts(cnn_model_num_layers(p.m));
    x[2 * 300 + 17] = INFINITY; /* image 2 */
    EXPECT_EQ(cnn_model_forward_layers(p.m, x.data(), 4, acts.data()), CNN_ERR_NUMERIC);
    EXPECT_NE(std::string(cnn_errmsg()).find("image 2"), std::string::npos) << cnn_errmsg();
    x[2 * 300 + 17] = 0;
    cnn_tensor w;
    ASSERT_EQ(cnn_model_layer_tensor_by_name(p.m, 4, "weight", &w), CNN_OK);
    w.data[0] = NAN; /* the dense layer, after the relu that would hide a NaN below it */
    EXPECT_EQ(cnn_model_forward_layers(p.m, x.data(), 4, acts.data()), CNN_ERR_NUMERIC);
    EXPECT_NE(std::string(cnn_errmsg()).find("layer 4 (dense 3"), std::string::npos) << cnn_errmsg();
}
