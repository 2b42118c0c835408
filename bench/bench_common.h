/* bench_common.h — what the benchmark programs share: one layer built from a
 * spec line (the way tests/testutil.cpp does it), random tensors, and the
 * --threads=LIST flag, which Google Benchmark does not know and so must be
 * taken out of argv before benchmark::Initialize sees it. */
#ifndef CNN_BENCH_COMMON_H
#define CNN_BENCH_COMMON_H

extern "C" {
#include "internal.h"
}

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace bench {

inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f)
{
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    std::vector<float> v(n);
    for (auto &x : v) x = cnn_rng_normal(&r) * scale;
    return v;
}

/* max |a - b| / max(|a|, |b|) over the tensor: one number per tensor, not
 * per element, so values near zero do not blow it up */
inline double max_rel_err(const float *a, const float *b, size_t n)
{
    double diff = 0, big = 1e-30;
    for (size_t i = 0; i < n; i++) {
        if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
        diff = std::max(diff, (double)std::fabs(a[i] - b[i]));
        big = std::max(big, (double)std::max(std::fabs(a[i]), std::fabs(b[i])));
    }
    return diff / big;
}

/* One layer with its parameters in vectors we own; reserve()d for
 * (max_batch, threads) as the model would. */
struct Layer {
    cnn_layer *l = nullptr;
    std::vector<float> data, grad;
    cnn_rng rng;
    std::string error;

    Layer(const std::string &line, cnn_shape in, int max_batch, int threads, uint64_t seed)
    {
        std::vector<char> text(line.begin(), line.end());
        text.push_back('\0');
        cnn_spec_line s;
        if (cnn_spec_split(text.data(), "bench", 1, &s) != CNN_OK || s.nwords == 0) {
            error = std::string("spec: ") + cnn_errmsg();
            return;
        }
        cnn_layer_create_fn create = cnn_layer_lookup(s.words[0]);
        if (!create) {
            error = "unknown layer " + std::string(s.words[0]);
            return;
        }
        if (create(&s, in, &l) != CNN_OK || cnn_spec_check_all_used(&s) != CNN_OK) {
            error = cnn_errmsg();
            destroy();
            return;
        }
        size_t total = 0;
        for (int j = 0; j < l->nparams; j++) total += l->params[j].size;
        data = randn(total, seed, 0.1f);
        grad.assign(total, 0.0f);
        size_t off = 0;
        for (int j = 0; j < l->nparams; j++) {
            cnn_param *p = &l->params[j];
            p->data = data.data() + off;
            p->grad = p->trainable ? grad.data() + off : nullptr;
            off += p->size;
        }
        cnn_rng_seed(&rng, seed + 1);
        l->rng = &rng;
        /* the weights never change here: what the layer derives from them
         * (transformed filters) is kept between calls, as in a model
         * between two steps */
        static const uint64_t kVersion = 1;
        l->version = &kVersion;
        if (l->ops->reserve && l->ops->reserve(l, max_batch, threads) != CNN_OK) {
            error = std::string("reserve: ") + cnn_errmsg();
            destroy();
        }
    }
    Layer(const Layer &) = delete;
    Layer &operator=(const Layer &) = delete;
    ~Layer() { destroy(); }
    void destroy()
    {
        if (!l) return;
        if (l->ops->destroy) l->ops->destroy(l);
        free(l);
        l = nullptr;
    }
    bool ok() const { return l != nullptr; }
    size_t in_size() const { return cnn_shape_size(l->in); }
    size_t out_size() const { return cnn_shape_size(l->out); }
};

inline int hw_threads()
{
    unsigned n = std::thread::hardware_concurrency();
    return n ? (int)n : 1;
}

/* Takes "--threads=1,2,4" out of argv (default: 1 and the number of cores). */
inline std::vector<int> take_threads_flag(int *argc, char **argv)
{
    std::vector<int> t;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (std::strncmp(argv[i], "--threads=", 10) == 0) {
            const char *p = argv[i] + 10;
            while (*p) {
                char *end;
                long v = std::strtol(p, &end, 10);
                if (end == p || v < 1 || v > 256) {
                    std::fprintf(stderr, "--threads: expected a list like 1,2,4\n");
                    std::exit(2);
                }
                t.push_back((int)v);
                p = *end == ',' ? end + 1 : end;
            }
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    argv[out] = nullptr;
    if (t.empty()) {
        t.push_back(1);
        if (hw_threads() > 1) t.push_back(hw_threads());
    }
    return t;
}

/* Takes "--name=VALUE" out of argv; returns def if absent. */
inline std::string take_flag(int *argc, char **argv, const char *name, const std::string &def)
{
    std::string key = std::string("--") + name + "=";
    std::string v = def;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (std::strncmp(argv[i], key.c_str(), key.size()) == 0) v = argv[i] + key.size();
        else argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = nullptr;
    return v;
}

inline double min_of(const std::vector<double> &v)
{
    return *std::min_element(v.begin(), v.end());
}

} // namespace bench

#endif
