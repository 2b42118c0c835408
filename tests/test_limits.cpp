/* test_limits.cpp — the memory limit and the memory estimate, models built
 * for their shapes only, and non-finite outputs named by layer.
 *
 * No test here allocates more than a few megabytes: a model that would need
 * gigabytes is refused against a small limit, or built for its shapes. */
#include "testutil.h"
extern "C" {
#include "model/model.h"
}

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct ModelPtr {
    cnn_model *m = nullptr;
    ~ModelPtr() { cnn_model_free(m); }
};

/* Sets the memory limit for one test and puts the default back after. */
struct LimitGuard {
    explicit LimitGuard(size_t bytes) { cnn_set_memory_limit(bytes); }
    ~LimitGuard() { cnn_set_memory_limit(0); }
};

/* Restores the thread count a test changed. */
struct ThreadsGuard {
    ~ThreadsGuard() { cnn_set_threads(0); }
};

std::string preset(const char *name)
{
    std::ifstream f(std::string(CNN_SOURCE_DIR) + "/models/" + name + ".txt");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string bytes_text(double b)
{
    char buf[32];
    cnn_format_bytes(buf, sizeof buf, b);
    return buf;
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

/* ------------------------------------------------------------ the allocator */

TEST(Limits, AllocatorRefusesPastTheLimit)
{
    const size_t base = cnn_memory_used();
    LimitGuard g(base + (1u << 20)); /* 1 MiB more than is in use */
    void *a = cnn_alloc(512 << 10, "half a mebibyte");
    ASSERT_NE(a, nullptr) << cnn_errmsg();
    EXPECT_EQ(cnn_memory_used(), base + cnn_alloc_charge(512 << 10));
    EXPECT_EQ((uintptr_t)a % 64, 0u);
    /* zero-filled, as before the limit */
    for (size_t i = 0; i < (512u << 10); i++) ASSERT_EQ(((unsigned char *)a)[i], 0) << i;

    void *b = cnn_alloc(600 << 10, "the second buffer");
    EXPECT_EQ(b, nullptr);
    std::string e = cnn_errmsg();
    EXPECT_TRUE(contains(e, "the second buffer")) << e;
    EXPECT_TRUE(contains(e, "600.0 KiB")) << e;
    EXPECT_TRUE(contains(e, "over the memory limit")) << e;
    EXPECT_TRUE(contains(e, bytes_text((double)(base + (1u << 20))))) << e;
    EXPECT_EQ(cnn_memory_used(), base + cnn_alloc_charge(512 << 10)) << "a refusal takes nothing";

    cnn_free(a);
    EXPECT_EQ(cnn_memory_used(), base);
    b = cnn_alloc(600 << 10, "the second buffer");
    EXPECT_NE(b, nullptr) << "freed bytes are given back";
    cnn_free(b);
    cnn_free(nullptr);
    EXPECT_EQ(cnn_memory_used(), base);
}

TEST(Limits, SanityCapOfOneAllocationStays)
{
    LimitGuard g(SIZE_MAX);
    EXPECT_EQ(cnn_alloc(CNN_MAX_ALLOC + 1, "a wrong size"), nullptr);
    EXPECT_TRUE(contains(cnn_errmsg(), "a wrong size")) << cnn_errmsg();
    EXPECT_EQ(cnn_alloc(SIZE_MAX, "an overflowed size"), nullptr);
}

TEST(Limits, DefaultIsAShareOfPhysicalMemory)
{
    cnn_set_memory_limit(0);
    size_t phys = cnn_physical_memory();
    ASSERT_GT(phys, (size_t)1 << 26);
    EXPECT_NEAR((double)cnn_memory_limit(), phys * (CNN_MEMORY_DEFAULT_PERCENT / 100.0), 1.0);
    char buf[160];
    cnn_format_limit(buf, sizeof buf);
    EXPECT_TRUE(contains(buf, "80% of the memory")) << buf;
}

/* Threads allocating and freeing at once: the total never passes the limit
 * and comes back to where it started. */
TEST(Limits, AllocatorCountsAcrossThreads)
{
    const size_t base = cnn_memory_used();
    const size_t lim = base + (512u << 10); /* even one thread alone meets it */
    LimitGuard g(lim);
    std::atomic<int> refused{0}, over{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
        ts.emplace_back([&, t] {
            cnn_rng r;
            cnn_rng_seed(&r, (uint64_t)t + 1);
            std::vector<void *> held;
            for (int i = 0; i < 1000; i++) {
                size_t sz = 1 + cnn_rng_below(&r, 128 << 10);
                void *p = cnn_alloc(sz, "a test block");
                if (p) held.push_back(p);
                else refused++;
                if (cnn_memory_used() > lim) over++;
                if (held.size() > 6 || (!p && !held.empty())) {
                    cnn_free(held.front());
                    held.erase(held.begin());
                }
            }
            for (void *p : held) cnn_free(p);
        });
    for (auto &t : ts) t.join();
    EXPECT_EQ(over.load(), 0);
    EXPECT_GT(refused.load(), 0) << "up to 7 blocks of up to 128 KiB per thread meet 512 KiB";
    EXPECT_EQ(cnn_memory_used(), base);
}

/* ------------------------------------------------------------ the estimate */

/* What a model and its batch really allocate is what the estimate says, to
 * the byte: every preset (conv layers on the GEMM, shifted-plane and
 * Winograd paths, pools, batchnorm, dropout), sharded or not, on one and
 * two threads. */
TEST(Limits, EstimateIsWhatTheModelAllocates)
{
    ThreadsGuard tg;
    for (const char *name : {"simplecnn", "lenet5", "pytorchnet", "best"}) {
        std::string arch = preset(name);
        ASSERT_FALSE(arch.empty()) << name;
        const bool small = std::string(name) == "simplecnn" || std::string(name) == "lenet5";
        for (int threads : {1, 2})
            /* whole, 3 shards; 19 shards (more than the 16 gradient buffers) */
            for (int batch : {1, 40, small ? 300 : 40}) {
                cnn_set_threads(threads);
                const size_t base = cnn_memory_used();
                ModelPtr p;
                ASSERT_EQ(cnn_model_from_text(arch.c_str(), name, &p.m), CNN_OK) << cnn_errmsg();
                ASSERT_EQ(cnn_model_set_batch(p.m, batch), CNN_OK) << cnn_errmsg();
                EXPECT_EQ(cnn_memory_used() - base, cnn_model_memory_need(p.m, batch, 0))
                    << name << " batch " << batch << " threads " << threads;
                cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
                ASSERT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_OK) << cnn_errmsg();
                EXPECT_EQ(cnn_memory_used() - base, cnn_model_memory_need(p.m, batch, 1))
                    << name << " batch " << batch << " threads " << threads << " with Adam";
            }
    }
}

/* The refusal comes before any allocation, says what batch needs how much
 * and what the limit is; one byte more and the same batch is accepted. */
TEST(Limits, BatchOverTheLimitIsRefusedWithItsNeed)
{
    ThreadsGuard tg;
    cnn_set_threads(2);
    ModelPtr p;
    std::string arch = preset("lenet5");
    ASSERT_EQ(cnn_model_from_text(arch.c_str(), "lenet5", &p.m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_set_batch(p.m, 8), CNN_OK) << cnn_errmsg();
    const size_t model_base = cnn_memory_used() - cnn_model_memory_need(p.m, 8, 0);
    const size_t need = cnn_model_memory_need(p.m, 256, 0);
    {
        LimitGuard g(model_base + need - 1);
        const size_t before = cnn_memory_used();
        EXPECT_EQ(cnn_model_set_batch(p.m, 256), CNN_ERR_NOMEM);
        std::string e = cnn_errmsg();
        EXPECT_TRUE(contains(e, "batch 256 of this model needs " + bytes_text((double)need))) << e;
        EXPECT_TRUE(contains(e, "the memory limit is " + bytes_text((double)(model_base + need - 1))))
            << e;
        EXPECT_TRUE(contains(e, "activations")) << e;
        EXPECT_TRUE(contains(e, "to run in shards on 2 threads")) << e;
        EXPECT_EQ(cnn_memory_used(), before) << "refused before allocating";
        /* the model still runs at its old batch */
        std::vector<float> x(8 * 784, 0.25f);
        const float *y;
        EXPECT_EQ(cnn_model_forward(p.m, x.data(), 8, 0, &y), CNN_OK) << cnn_errmsg();
    }
    {
        /* the old batch's buffers are freed before the new ones are made,
         * so the model needs `need`, not `need` plus its old batch */
        LimitGuard g(model_base + need);
        EXPECT_EQ(cnn_model_set_batch(p.m, 256), CNN_OK) << cnn_errmsg();
        cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_MOMENTUM);
        EXPECT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_ERR_NOMEM);
        std::string e = cnn_errmsg();
        EXPECT_TRUE(contains(e, "training at batch 256, this model needs")) << e;
        EXPECT_TRUE(contains(e, "optimizer state")) << e;
    }
}

TEST(Limits, ParametersOverTheLimitAreRefusedBeforeAllocating)
{
    const size_t base = cnn_memory_used();
    LimitGuard g(base + (1u << 20));
    cnn_model *m = nullptr;
    /* 784 x 1000 + 1000 weights: 3.0 MiB, twice with the gradients */
    EXPECT_EQ(cnn_model_from_text("input 1x28x28\nflatten\ndense 1000\n", "wide.txt", &m),
              CNN_ERR_NOMEM);
    EXPECT_EQ(m, nullptr);
    std::string e = cnn_errmsg();
    EXPECT_TRUE(contains(e, "wide.txt")) << e;
    EXPECT_TRUE(contains(e, "785008 parameters and their gradients need 6.0 MiB")) << e;
    EXPECT_TRUE(contains(e, "the memory limit is 1.0 MiB")) << e;
    EXPECT_EQ(cnn_memory_used(), base);
}

/* What the process holds beside the model counts: a second model's batch
 * is refused when the first one's leaves no room, and the message says so. */
TEST(Limits, WhatIsHeldElsewhereCounts)
{
    ModelPtr a, b;
    std::string arch = preset("simplecnn");
    ASSERT_EQ(cnn_model_from_text(arch.c_str(), "a", &a.m), CNN_OK);
    ASSERT_EQ(cnn_model_from_text(arch.c_str(), "b", &b.m), CNN_OK);
    const size_t batch_need = cnn_model_memory_need(a.m, 64, 0) - cnn_model_memory_need(a.m, 0, 0);
    LimitGuard g(cnn_memory_used() + batch_need + 1000);
    ASSERT_EQ(cnn_model_set_batch(a.m, 64), CNN_OK) << cnn_errmsg();
    /* b alone would fit the limit; beside a's batch it does not */
    EXPECT_EQ(cnn_model_set_batch(b.m, 64), CNN_ERR_NOMEM);
    EXPECT_TRUE(contains(cnn_errmsg(), "in use elsewhere")) << cnn_errmsg();
    EXPECT_EQ(cnn_model_max_batch(b.m), 0);
    /* a can still change its own batch within what it holds */
    EXPECT_EQ(cnn_model_set_batch(a.m, 32), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(cnn_model_set_batch(a.m, 64), CNN_OK) << cnn_errmsg();
}

/* ------------------------------------------------- models for their shapes */

const char *kHuge = "input 3x224x224\nflatten\ndense 2944\nrelu\ndense 1000\n";

TEST(Shapes, HugeArchitectureCostsNothing)
{
    const size_t base = cnn_memory_used();
    auto t0 = std::chrono::steady_clock::now();
    ModelPtr p;
    ASSERT_EQ(cnn_model_shapes_from_text(kHuge, "huge", &p.m), CNN_OK) << cnn_errmsg();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 0.5);
    EXPECT_EQ(cnn_memory_used(), base) << "no parameter allocated";
    EXPECT_EQ(cnn_model_num_params(p.m), (size_t)150528 * 2944 + 2944 + 2944 * 1000 + 1000);
    EXPECT_EQ(cnn_model_num_layers(p.m), 4);
    EXPECT_EQ(cnn_model_output_size(p.m), 1000);
    cnn_layer_info li;
    ASSERT_EQ(cnn_model_layer_info(p.m, 1, &li), CNN_OK);
    EXPECT_EQ(li.params, (size_t)150528 * 2944 + 2944);
    cnn_tensor t;
    ASSERT_EQ(cnn_model_tensor(p.m, 0, &t), CNN_OK);
    EXPECT_STREQ(t.name, "1.weight");
    EXPECT_EQ(t.data, nullptr);
    /* its need is known: far more than a small limit */
    EXPECT_GT(cnn_model_memory_need(p.m, 64, 1), (size_t)4 * 446102376 * 4);
    /* and nothing that needs parameters runs */
    EXPECT_EQ(cnn_model_set_batch(p.m, 1), CNN_ERR_ARG);
    EXPECT_TRUE(contains(cnn_errmsg(), "shapes only")) << cnn_errmsg();
    EXPECT_EQ(cnn_model_init(p.m, CNN_INIT_HE_NORMAL, 1), CNN_ERR_ARG);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
    EXPECT_EQ(cnn_model_set_optimizer(p.m, &oc), CNN_ERR_ARG);
    TempDir d;
    EXPECT_EQ(cnn_model_save(p.m, (d / "m.safetensors").c_str(), 0), CNN_ERR_ARG);
    EXPECT_EQ(cnn_model_load_weights(p.m, (d / "m.safetensors").c_str()), CNN_ERR_ARG);
}

/* Resident memory of this process in KiB (/proc/self/statm), or -1. */
long resident_kib()
{
    long pages = -1, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Built in a child process, whose resident memory grows by a few
 * kilobytes (the full model would add 3.4 GB with its gradients, zeroed).
 * The growth, not the total: the test process may already hold much
 * (a sanitizer's quarantine). */
TEST(Shapes, HugeArchitectureStaysSmallInMemory)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        long before = resident_kib();
        cnn_model *m = nullptr;
        long grown = cnn_model_shapes_from_text(kHuge, "huge", &m) == CNN_OK && before >= 0
                         ? resident_kib() - before
                         : -1;
        _exit(write(fds[1], &grown, sizeof grown) == (ssize_t)sizeof grown ? 0 : 1);
    }
    ASSERT_GT(pid, 0);
    close(fds[1]);
    long grown = -1;
    EXPECT_EQ(read(fds[0], &grown, sizeof grown), (ssize_t)sizeof grown);
    close(fds[0]);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_GE(grown, 0) << "the build failed or /proc/self/statm is unreadable";
    EXPECT_LT(grown, 20 * 1024) << "KiB the build added to the resident memory";
}

TEST(Shapes, SameTableAsTheFullModel)
{
    for (const char *name : {"simplecnn", "lenet5", "pytorchnet", "best"}) {
        std::string arch = preset(name);
        ModelPtr full, shapes;
        ASSERT_EQ(cnn_model_from_text(arch.c_str(), name, &full.m), CNN_OK);
        ASSERT_EQ(cnn_model_shapes_from_text(arch.c_str(), name, &shapes.m), CNN_OK);
        EXPECT_EQ(cnn_model_num_params(full.m), cnn_model_num_params(shapes.m)) << name;
        EXPECT_EQ(cnn_model_flops(full.m), cnn_model_flops(shapes.m)) << name;
        ASSERT_EQ(cnn_model_num_tensors(full.m), cnn_model_num_tensors(shapes.m)) << name;
        for (int i = 0; i < cnn_model_num_layers(full.m); i++) {
            cnn_layer_info a, b;
            ASSERT_EQ(cnn_model_layer_info(full.m, i, &a), CNN_OK);
            ASSERT_EQ(cnn_model_layer_info(shapes.m, i, &b), CNN_OK);
            EXPECT_STREQ(a.desc, b.desc);
            EXPECT_EQ(a.params, b.params);
        }
        for (int w : {1, 64, 256})
            EXPECT_EQ(cnn_model_memory_need(full.m, w, 1), cnn_model_memory_need(shapes.m, w, 1))
                << name << " batch " << w;
    }
}

/* ------------------------------------------------------ non-finite outputs */

/* flatten, relu, then a dense layer whose weights are all 1: an image of
 * 3e38 pixels overflows in the dense layer (layer 2), the others stay
 * finite. */
const char *kOverflow = "input 1x4x4\nflatten\nrelu\ndense 3\n";

void fill_weights(cnn_model *m, float v)
{
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        ASSERT_EQ(cnn_model_tensor(m, i, &t), CNN_OK);
        for (size_t j = 0; j < t.size; j++) t.data[j] = v;
    }
}

struct NumericCase {
    int batch, threads;
};

void PrintTo(const NumericCase &c, std::ostream *os)
{
    *os << "batch " << c.batch << ", " << c.threads << " thread(s)";
}

class Numeric : public ::testing::TestWithParam<NumericCase> {};

/* The same fault named the same way whether the batch runs whole (8
 * images) or in shards (64 images: 4 shards, on 1 or 2 threads), by
 * forward and by eval_batch. */
TEST_P(Numeric, OverflowNamesTheLayerAndTheImage)
{
    ThreadsGuard tg;
    const NumericCase c = GetParam();
    cnn_set_threads(c.threads);
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text(kOverflow, "overflow.txt", &p.m), CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, c.batch), CNN_OK);
    fill_weights(p.m, 1.0f);
    std::vector<float> x = tu_randn((size_t)c.batch * 16, 3);
    const int bad = c.batch - 3;
    for (int j = 0; j < 16; j++) x[(size_t)bad * 16 + j] = 3e38f;
    const float *y;
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), c.batch, 0, &y), CNN_ERR_NUMERIC);
    std::string e = cnn_errmsg();
    EXPECT_TRUE(contains(e, "layer 2 (dense 3, line 4)")) << e;
    EXPECT_TRUE(contains(e, "image " + std::to_string(bad) + " of the batch")) << e;

    std::vector<uint8_t> labels(c.batch, 1);
    for (cnn_loss_kind k : {CNN_LOSS_XENT, CNN_LOSS_HINGE, CNN_LOSS_MAE}) {
        cnn_batch_stats st;
        EXPECT_EQ(cnn_model_eval_batch(p.m, x.data(), labels.data(), c.batch, cnn_loss{k, 1.f}, &st),
                  CNN_ERR_NUMERIC)
            << cnn_loss_name(k);
        e = cnn_errmsg();
        EXPECT_TRUE(contains(e, "layer 2 (dense 3")) << cnn_loss_name(k) << ": " << e;
    }

    /* a NaN pixel is named as the input's */
    x[(size_t)bad * 16 + 5] = NAN;
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), c.batch, 0, &y), CNN_ERR_NUMERIC);
    e = cnn_errmsg();
    EXPECT_TRUE(contains(e, "image " + std::to_string(bad) + " of the batch holds a NaN or Inf in its input"))
        << e;

    /* and a finite batch is fine */
    for (int j = 0; j < 16; j++) x[(size_t)bad * 16 + j] = 0.5f;
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), c.batch, 0, &y), CNN_OK) << cnn_errmsg();
}

INSTANTIATE_TEST_SUITE_P(Batches, Numeric,
                         ::testing::Values(NumericCase{8, 1}, NumericCase{64, 1},
                                           NumericCase{64, 2}),
                         [](const auto &info) {
                             return "batch" + std::to_string(info.param.batch) + "_threads" +
                                    std::to_string(info.param.threads);
                         });

/* Huge weights that overflow inside a conv layer, with a softmax after it
 * (whose output is NaN from Inf - Inf): the conv layer is named, not the
 * softmax. */
TEST(NumericModel, OverflowingWeightsNameTheFirstLayerThatOverflowed)
{
    ModelPtr p;
    ASSERT_EQ(cnn_model_from_text("input 1x6x6\nconv 2 3x3\nrelu\nflatten\ndense 4\nsoftmax\n",
                                  "big.txt", &p.m),
              CNN_OK);
    ASSERT_EQ(cnn_model_set_batch(p.m, 40), CNN_OK);
    fill_weights(p.m, 1e38f); /* nine taps of 1e38 overflow */
    std::vector<float> x(40 * 36, 1.0f);
    const float *y;
    EXPECT_EQ(cnn_model_forward(p.m, x.data(), 40, 0, &y), CNN_ERR_NUMERIC);
    std::string e = cnn_errmsg();
    EXPECT_TRUE(contains(e, "layer 0 (conv 2 3x3")) << e;
    EXPECT_TRUE(contains(e, "image 0 of the batch")) << e;
}

} // namespace
