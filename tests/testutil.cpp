/* testutil.cpp — see testutil.h. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

TestLayer::~TestLayer()
{
    if (layer) {
        if (layer->ops->destroy) layer->ops->destroy(layer);
        free(layer);
    }
}

std::vector<float> tu_randn(size_t n, uint64_t seed, float scale)
{
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    std::vector<float> v(n);
    for (auto &x : v) x = cnn_rng_normal(&r) * scale;
    return v;
}

static cnn_status build(const std::string &line, cnn_shape in, cnn_layer **out)
{
    std::vector<char> text(line.begin(), line.end());
    text.push_back('\0');
    cnn_spec_line s;
    cnn_status st = cnn_spec_split(text.data(), "test", 1, &s);
    if (st != CNN_OK) return st;
    if (s.nwords == 0) return cnn_fail(CNN_ERR_PARSE, "test:1: empty line");
    cnn_layer_create_fn create = cnn_layer_lookup(s.words[0]);
    if (!create) return cnn_fail(CNN_ERR_PARSE, "test:1: unknown layer '%s'", s.words[0]);
    *out = nullptr;
    st = create(&s, in, out);
    if (st == CNN_OK) st = cnn_spec_check_all_used(&s);
    if (st != CNN_OK && *out) {
        if ((*out)->ops->destroy) (*out)->ops->destroy(*out);
        free(*out);
        *out = nullptr;
    }
    return st;
}

cnn_status tu_layer_error(const std::string &line, cnn_shape in, std::string *msg)
{
    cnn_layer *l = nullptr;
    cnn_status st = build(line, in, &l);
    if (msg) *msg = cnn_errmsg();
    if (l) {
        if (l->ops->destroy) l->ops->destroy(l);
        free(l);
    }
    return st;
}

bool tu_make_layer(TestLayer &t, const std::string &line, cnn_shape in, int max_batch,
                   uint64_t seed, float scale)
{
    cnn_status st = build(line, in, &t.layer);
    EXPECT_EQ(st, CNN_OK) << line << ": " << cnn_errmsg();
    if (st != CNN_OK) return false;
    cnn_layer *l = t.layer;
    size_t total = 0;
    for (int j = 0; j < l->nparams; j++) total += l->params[j].size;
    t.data = tu_randn(total, seed, scale);
    t.grad.assign(total, 0.0f);
    size_t off = 0;
    for (int j = 0; j < l->nparams; j++) {
        cnn_param *p = &l->params[j];
        p->data = t.data.data() + off;
        p->grad = p->trainable ? t.grad.data() + off : nullptr;
        if (std::strcmp(p->name, "running_var") == 0)
            for (size_t i = 0; i < p->size; i++) p->data[i] = std::fabs(p->data[i]) + 0.5f;
        off += p->size;
    }
    cnn_rng_seed(&t.rng, seed + 1000);
    l->rng = &t.rng;
    if (l->ops->reserve) {
        st = l->ops->reserve(l, max_batch, cnn_threads());
        EXPECT_EQ(st, CNN_OK) << line << ": reserve: " << cnn_errmsg();
        if (st != CNN_OK) return false;
    }
    return true;
}

double tu_max_rel_err(const float *a, const float *b, size_t n)
{
    double diff = 0, big = 1e-6;
    for (size_t i = 0; i < n; i++) {
        if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
        diff = std::max(diff, (double)std::fabs(a[i] - b[i]));
        big = std::max(big, (double)std::max(std::fabs(a[i]), std::fabs(b[i])));
    }
    return diff / big;
}

/* L = sum(r .* y) in double */
static double objective(TestLayer &t, const std::vector<float> &x, std::vector<float> &y,
                        const std::vector<float> &r, int n, int train, const cnn_rng &rng0)
{
    t.rng = rng0;
    t.layer->ops->forward(t.layer, x.data(), y.data(), n, train, cnn_threads());
    double L = 0;
    for (size_t i = 0; i < y.size(); i++) L += (double)r[i] * y[i];
    return L;
}

double tu_gradcheck_layer(TestLayer &t, int n, uint64_t seed, int train, double eps,
                          std::string *where)
{
    cnn_layer *l = t.layer;
    size_t nin = (size_t)n * cnn_shape_size(l->in), nout = (size_t)n * cnn_shape_size(l->out);
    std::vector<float> x = tu_randn(nin, seed), y(nout), r = tu_randn(nout, seed + 7);
    std::vector<float> dx(nin);
    const cnn_rng rng0 = t.rng;

    objective(t, x, y, r, n, train, rng0);
    t.rng = rng0;
    std::fill(t.grad.begin(), t.grad.end(), 0.0f);
    l->ops->backward(l, x.data(), y.data(), r.data(), dx.data(), n, cnn_threads());

    double worst = 0;
    auto check = [&](float *v, const float *analytic, size_t count, const char *name) {
        /* at most 60 coordinates per tensor, spread over it */
        std::vector<float> num, ana;
        size_t stride = std::max<size_t>(1, count / 60);
        for (size_t i = 0; i < count; i += stride) {
            float keep = v[i];
            v[i] = keep + (float)eps;
            double lp = objective(t, x, y, r, n, train, rng0);
            v[i] = keep - (float)eps;
            double lm = objective(t, x, y, r, n, train, rng0);
            v[i] = keep;
            num.push_back((float)((lp - lm) / (2 * eps)));
            ana.push_back(analytic[i]);
        }
        double e = tu_max_rel_err(num.data(), ana.data(), num.size());
        if (e > worst) {
            worst = e;
            if (where) *where = name;
        }
    };
    std::vector<float> grads = t.grad; /* backward's, before the probes overwrite y */
    check(x.data(), dx.data(), nin, "dx");
    for (int j = 0; j < l->nparams; j++) {
        cnn_param *p = &l->params[j];
        if (!p->trainable) continue;
        check(p->data, grads.data() + (p->grad - t.grad.data()), p->size, p->name);
    }
    return worst;
}

double tu_ref_vs_fast(TestLayer &t, int n, uint64_t seed, int train, std::string *where)
{
    cnn_layer *l = t.layer;
    size_t nin = (size_t)n * cnn_shape_size(l->in), nout = (size_t)n * cnn_shape_size(l->out);
    std::vector<float> x = tu_randn(nin, seed), dy = tu_randn(nout, seed + 3);
    const cnn_rng rng0 = t.rng;
    /* batchnorm's running statistics change in a training forward */
    const std::vector<float> data0 = t.data;
    std::vector<float> y[2], dx[2], g[2];
    for (int k = 0; k < 2; k++) {
        t.data = data0;
        t.rng = rng0;
        l->kernels = k ? CNN_KERNELS_FAST : CNN_KERNELS_REF;
        y[k].assign(nout, 0.0f);
        dx[k].assign(nin, 0.0f);
        l->ops->forward(l, x.data(), y[k].data(), n, train, cnn_threads());
        std::fill(t.grad.begin(), t.grad.end(), 0.0f);
        l->ops->backward(l, x.data(), y[k].data(), dy.data(), dx[k].data(), n, cnn_threads());
        g[k] = t.grad;
    }
    l->kernels = CNN_KERNELS_FAST;
    double worst = 0;
    auto note = [&](double e, const char *name) {
        if (e > worst) {
            worst = e;
            if (where) *where = name;
        }
    };
    note(tu_max_rel_err(y[0].data(), y[1].data(), nout), "y");
    note(tu_max_rel_err(dx[0].data(), dx[1].data(), nin), "dx");
    for (int j = 0; j < l->nparams; j++) {
        cnn_param *p = &l->params[j];
        if (!p->trainable) continue;
        size_t off = p->grad - t.grad.data();
        note(tu_max_rel_err(g[0].data() + off, g[1].data() + off, p->size), p->name);
    }
    return worst;
}

void tu_expect_mnist_like(const std::vector<uint8_t> &o, double centre_tol)
{
    ASSERT_EQ(o.size(), 784u);
    int x0 = 28, x1 = -1, y0 = 28, y1 = -1, peak = 0;
    double m = 0, mx = 0, my = 0;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int v = o[y * 28 + x];
            peak = std::max(peak, v);
            if (!v) continue;
            x0 = std::min(x0, x), x1 = std::max(x1, x);
            y0 = std::min(y0, y), y1 = std::max(y1, y);
            m += v, mx += (double)x * v, my += (double)y * v;
        }
    ASSERT_GT(m, 0) << "no ink in the output";
    EXPECT_EQ(peak, 255);
    EXPECT_LE(x1 - x0 + 1, 20);
    EXPECT_LE(y1 - y0 + 1, 20);
    EXPECT_GE(std::max(x1 - x0, y1 - y0) + 1, 19);
    EXPECT_NEAR(mx / m, 14.0, centre_tol);
    EXPECT_NEAR(my / m, 14.0, centre_tol);
}

void tu_expect_gradients(const LayerCase &c, cnn_kernels k, uint64_t init_seed, uint64_t seed,
                         double eps, double tol)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, c.line, c.in, c.n, init_seed)) << c.line;
    t.layer->kernels = k;
    std::string where;
    double e = tu_gradcheck_layer(t, c.n, seed, 1, eps, &where);
    EXPECT_LT(e, tol) << c.line << " kernels " << k << " worst at " << where;
}

void tu_expect_ref_matches_fast(const LayerCase &c, uint64_t init_seed, uint64_t seed, double tol)
{
    TestLayer t;
    ASSERT_TRUE(tu_make_layer(t, c.line, c.in, c.n, init_seed)) << c.line;
    std::string where;
    EXPECT_LT(tu_ref_vs_fast(t, c.n, seed, 1, &where), tol) << c.line << " at " << where;
}

void tu_expect_parse_error(const std::string &line, cnn_shape in, const std::string &part)
{
    std::string msg;
    EXPECT_EQ(tu_layer_error(line, in, &msg), CNN_ERR_PARSE) << line;
    EXPECT_NE(msg.find(part), std::string::npos) << line << " gave: " << msg;
}

void tu_expect_layer(const cnn_layer *l, cnn_shape out, const char *kind, const char *torch,
                     const char *desc)
{
    EXPECT_EQ(l->out.c, out.c) << desc;
    EXPECT_EQ(l->out.h, out.h) << desc;
    EXPECT_EQ(l->out.w, out.w) << desc;
    if (kind) EXPECT_STREQ(l->ops->kind, kind);
    EXPECT_STREQ(l->ops->torch, torch);
    EXPECT_STREQ(l->desc, desc);
}
