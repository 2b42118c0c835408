/* testutil.h — helpers shared by the tests: build one layer from a spec
 * line, numerical gradient checks, reference-vs-fast comparison. */
#ifndef CNN_TESTUTIL_H
#define CNN_TESTUTIL_H

extern "C" {
#include "internal.h"
}
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>

/* A fresh directory under the system's temp dir, removed with everything in
 * it when the object goes. `dir / "name"` is the path of a file in it. */
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const char *prefix = "cnn_test")
    {
        std::string tmpl = (std::filesystem::temp_directory_path() /
                            (std::string(prefix) + "_XXXXXX")).string();
        if (char *p = mkdtemp(tmpl.data())) path = p;
    }
    ~TempDir()
    {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    std::string operator/(const std::string &name) const { return (path / name).string(); }
};

/* A single layer built from an architecture line ("conv 4 3x3 stride=2")
 * for input shape `in`, with its own parameter/gradient storage filled with
 * N(0, 1) * scale (batchnorm running_var with |N| + 0.5), reserved for
 * batches up to max_batch at the current thread count. Fails the test (and
 * returns NULL) if the line does not parse. */
struct TestLayer {
    cnn_layer *layer = nullptr;
    std::vector<float> data, grad;
    cnn_rng rng;
    ~TestLayer();
};
bool tu_make_layer(TestLayer &t, const std::string &line, cnn_shape in, int max_batch,
                   uint64_t seed = 1, float scale = 0.5f);
/* Expect layer l to have output shape out, the kind (NULL: not checked),
 * the torch.nn module name and the description given. */
void tu_expect_layer(const cnn_layer *l, cnn_shape out, const char *kind, const char *torch,
                     const char *desc);
/* The status and message of building a layer that should fail. */
cnn_status tu_layer_error(const std::string &line, cnn_shape in, std::string *msg);
/* Expect building the layer of `line` on input `in` to fail with
 * CNN_ERR_PARSE and a message that contains `part`. */
void tu_expect_parse_error(const std::string &line, cnn_shape in, const std::string &part);

/* Restores the thread count and the SIMD level it found, when it goes:
 * for tests that change either. */
struct KeepThreadsAndSimd {
    int threads = cnn_get_threads();
    int level = cnn_simd_level();
    ~KeepThreadsAndSimd()
    {
        cnn_set_threads(threads);
        cnn_simd_set_level(level);
    }
};

/* Random floats N(0,1)*scale. */
std::vector<float> tu_randn(size_t n, uint64_t seed, float scale = 1.0f);

/* Largest |a-b| / max(1e-3 * scale, |a|, |b|) ... a relative error robust near 0:
 * max_i |a_i - b_i| / max(max_j |a_j|, max_j |b_j|, tiny). */
double tu_max_rel_err(const float *a, const float *b, size_t n);

/* Numerical gradient check of one layer on a random batch of n images:
 * L = sum(r .* y) for a fixed random r. Compares backward's dL/dx and every
 * trainable parameter gradient against central differences (eps step),
 * computing with the layer's current kernels. In train mode (train=1)
 * the layer's RNG is reset before every forward so dropout masks are the
 * same. Returns the largest relative error found (see tu_max_rel_err) and
 * fills *where with what it was ("dx", "weight", ...). */
double tu_gradcheck_layer(TestLayer &t, int n, uint64_t seed, int train = 1,
                          double eps = 1e-2, std::string *where = nullptr);

/* Run forward and backward with CNN_KERNELS_REF and CNN_KERNELS_FAST on the
 * same random batch; return the largest relative difference over y, dx and
 * every parameter gradient (and say where). */
double tu_ref_vs_fast(TestLayer &t, int n, uint64_t seed, int train = 1,
                      std::string *where = nullptr);

/* One case of a layer's tests: its line, input shape and batch size. */
struct LayerCase {
    const char *line;
    cnn_shape in;
    int n;
};
/* Expect the layer of case c (weights drawn from init_seed) on kernels k to
 * pass the numerical gradient check (tu_gradcheck_layer with eps on a batch
 * drawn from seed) within tol. */
void tu_expect_gradients(const LayerCase &c, cnn_kernels k, uint64_t init_seed, uint64_t seed,
                         double eps, double tol);
/* Expect the fast kernels of case c's layer (weights drawn from init_seed)
 * to agree with the reference within tol (tu_ref_vs_fast on a batch drawn
 * from seed). */
void tu_expect_ref_matches_fast(const LayerCase &c, uint64_t init_seed, uint64_t seed, double tol);

/* Expect a 28x28 grey picture laid out like an MNIST digit: ink bright
 * (peak 255) on black, inside 20x20 with the longer side 19 or 20 (an edge
 * may round to 0 in bytes), its centre of mass within centre_tol pixels of
 * (14, 14). */
void tu_expect_mnist_like(const std::vector<uint8_t> &o, double centre_tol);

#endif
