/* test_threads.cpp — the automatic thread count. The tuner is driven with
 * made-up batch times (cnn_threads_batch_timed), as a quiet and a busy
 * machine would give them: it must climb to every core when more threads
 * are faster, stay at one when they are slower (at a bounded cost for the
 * probes), follow a change of load, and leave a fixed count alone. A model
 * trained in automatic mode gets the same bits as at one thread. And the
 * one parallel-for of the kernels: one thread runs inline, every index
 * runs exactly once. */
#include "testutil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>

namespace {

/* Per-image seconds at t threads on a machine. */
using Machine = std::function<double(int)>;

double quiet(int t) { return 1e-5 / (t == 1 ? 1.0 : t == 2 ? 1.8 : t == 4 ? 3.2 : 0.6 * t); }
double busy(int t) { return 1e-5 * (t == 1 ? 1.0 : 5.0 * t); }

struct Tally {
    double seconds = 0;
    long at[5] = {0, 0, 0, 0, 0}; /* batches run at 1, 2, 4 threads (index log2 + 1) */
};

/* Drive `batches` batches of 64 images through the tuner on machine f. */
Tally drive(const Machine &f, long batches)
{
    Tally r;
    for (long b = 0; b < batches; b++) {
        cnn_threads_batch_begin();
        const int t = cnn_get_threads();
        const double s = 64 * f(t);
        r.seconds += s;
        r.at[t == 1 ? 1 : t == 2 ? 2 : t == 4 ? 3 : 4]++;
        cnn_threads_batch_timed(64, s);
    }
    return r;
}

/* Per-image seconds at t threads for batch b: machines whose batches vary. */
using Timeline = std::function<double(int, long)>;

struct Timed {
    double seconds = 0, one = 0; /* the tuner's time, and one thread's on the same batches */
    long at2 = 0;                /* batches run at 2 threads */
};

Timed drive_timeline(const Timeline &f, long batches)
{
    Timed r;
    for (long b = 0; b < batches; b++) {
        cnn_threads_batch_begin();
        const int t = cnn_get_threads();
        const double s = 64 * f(t, b);
        r.seconds += s;
        r.one += 64 * f(1, b);
        r.at2 += t == 2;
        cnn_threads_batch_timed(64, s);
    }
    return r;
}

/* A pseudo-random number in [0, 1) for batch b and a stream. */
double noise(long b, int stream)
{
    uint64_t x = (uint64_t)b * 0x9E3779B97F4A7C15ull + (uint64_t)stream * 0xD1B54A32D192ED03ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (double)(x >> 11) * 0x1.0p-53;
}

class Threads : public ::testing::Test {
  protected:
    void SetUp() override
    {
        unsetenv("OMP_NUM_THREADS");
        omp_set_num_threads(4);
        cnn_set_threads(0); /* automatic, up to 4 */
    }
    void TearDown() override { cnn_set_threads(0); }
};

}  // namespace

TEST_F(Threads, ClimbsToEveryCoreOnAQuietMachine)
{
    EXPECT_EQ(cnn_get_threads(), 4) << "outside a batch, before any choice: the most";
    drive(quiet, 100);
    EXPECT_EQ(cnn_get_threads(), 4);
    // then stays there, paying only the rare probe one step down
    Tally later = drive(quiet, 10000);
    EXPECT_EQ(cnn_get_threads(), 4);
    EXPECT_GT(later.at[3], 10000 * 0.99);
    const double ideal = 10000 * 64 * quiet(4);
    EXPECT_LT(later.seconds, 1.01 * ideal) << "probes cost more than 1% on a quiet machine";
}

TEST_F(Threads, StaysAtOneOnABusyMachine)
{
    Tally r = drive(busy, 10000);
    EXPECT_EQ(cnn_get_threads(), 1);
    const double one = 10000 * 64 * busy(1);
    EXPECT_LT(r.seconds, 1.02 * one) << "probes on a busy machine cost more than 2%: "
                                     << r.at[2] << " batches at 2 threads";
}

TEST_F(Threads, FollowsTheLoadBothWays)
{
    drive(quiet, 500);
    EXPECT_EQ(cnn_get_threads(), 4);
    drive(busy, 500);
    EXPECT_EQ(cnn_get_threads(), 1) << "did not come down when the machine got busy";
    drive(quiet, 8000);
    EXPECT_EQ(cnn_get_threads(), 4) << "did not climb back when the machine got quiet";
}

TEST_F(Threads, AFixedCountIsNeverTuned)
{
    cnn_set_threads(2);
    Tally r = drive(busy, 2000);
    EXPECT_EQ(r.at[2], 2000);
    setenv("OMP_NUM_THREADS", "3", 1);
    cnn_set_threads(0);
    omp_set_num_threads(3);
    r = drive(busy, 500);
    EXPECT_EQ(r.at[4], 500) << "OMP_NUM_THREADS fixes the count too";
    unsetenv("OMP_NUM_THREADS");
}

TEST_F(Threads, AutomaticTrainingGivesTheBitsOfOneThread)
{
    const char *arch = "input 1x12x12\nconv 6 3x3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 5\nsoftmax\n";
    const int n = 64, px = 144, steps = 30;
    std::vector<float> x = tu_randn((size_t)n * px * steps, 7);
    std::vector<uint8_t> y((size_t)n * steps);
    for (size_t i = 0; i < y.size(); i++) y[i] = (uint8_t)(i * 7 % 5);
    std::vector<float> w[2];
    for (int pass = 0; pass < 2; pass++) {
        cnn_set_threads(pass == 0 ? 1 : 0);
        cnn_model *m = nullptr;
        ASSERT_EQ(cnn_model_from_text(arch, "t", &m), CNN_OK) << cnn_errmsg();
        cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 3);
        ASSERT_EQ(cnn_model_set_batch(m, n), CNN_OK) << cnn_errmsg();
        cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
        ASSERT_EQ(cnn_model_set_optimizer(m, &oc), CNN_OK);
        cnn_loss loss = {CNN_LOSS_XENT, 1.0f};
        for (int s = 0; s < steps; s++)
            ASSERT_EQ(cnn_model_train_batch(m, x.data() + (size_t)s * n * px, y.data() + (size_t)s * n,
                                            n, loss, nullptr),
                      CNN_OK)
                << cnn_errmsg();
        for (int i = 0; i < cnn_model_num_tensors(m); i++) {
            cnn_tensor t;
            cnn_model_tensor(m, i, &t);
            w[pass].insert(w[pass].end(), t.data, t.data + t.size);
        }
        cnn_model_free(m);
    }
    ASSERT_EQ(w[0].size(), w[1].size());
    EXPECT_EQ(std::memcmp(w[0].data(), w[1].data(), w[0].size() * sizeof(float)), 0);
}

/* ------------------------------------------------- cnn_parallel_for */

namespace {

/* What cnn_parallel_for did: how often each index was run, by which
 * thread indices, and whether any call ran inside a parallel region. */
struct Ranges {
    std::vector<int> hits;
    std::vector<int> thread_of;
    int calls = 0, in_region = 0, max_t = -1;
};

void record(void *ctx, long i0, long i1, int t)
{
    Ranges *r = static_cast<Ranges *>(ctx);
#pragma omp critical
    {
        r->calls++;
        if (omp_in_parallel()) r->in_region = 1;
        if (t > r->max_t) r->max_t = t;
        for (long i = i0; i < i1; i++) {
            r->hits[(size_t)i]++;
            r->thread_of[(size_t)i] = t;
        }
    }
}

}  // namespace

TEST(ParallelFor, OneThreadRunsInlineAsOneRange)
{
    for (cnn_split split : {CNN_SPLIT_EVEN, CNN_SPLIT_EACH}) {
        Ranges r;
        r.hits.assign(37, 0);
        r.thread_of.assign(37, -1);
        cnn_parallel_for(1, 37, split, 0.0, record, &r);
        EXPECT_EQ(r.calls, 1);
        EXPECT_EQ(r.in_region, 0) << "one thread must not open a parallel region";
        EXPECT_EQ(r.max_t, 0);
        for (int h : r.hits) EXPECT_EQ(h, 1);
    }
    /* nothing to do: no call at all */
    Ranges r;
    cnn_parallel_for(4, 0, CNN_SPLIT_EVEN, 0.0, record, &r);
    EXPECT_EQ(r.calls, 0);
}

TEST(ParallelFor, EveryIndexExactlyOnce)
{
    for (cnn_split split : {CNN_SPLIT_EVEN, CNN_SPLIT_EACH})
        for (int nt : {1, 2, 3, 4, 8})
            for (long n : {1L, 2L, 3L, 5L, 16L, 17L, 1000L}) {
                Ranges r;
                r.hits.assign((size_t)n, 0);
                r.thread_of.assign((size_t)n, -1);
                cnn_parallel_for(nt, n, split, 0.0, record, &r);
                for (long i = 0; i < n; i++)
                    EXPECT_EQ(r.hits[(size_t)i], 1) << "nt " << nt << " n " << n << " index " << i;
                EXPECT_LT(r.max_t, nt < n ? nt : (int)n);
                if (split == CNN_SPLIT_EVEN) {
                    /* contiguous: a thread's indices form one run */
                    for (long i = 1; i < n; i++)
                        if (r.thread_of[(size_t)i] != r.thread_of[(size_t)i - 1])
                            for (long k = i + 1; k < n; k++)
                                EXPECT_NE(r.thread_of[(size_t)k], r.thread_of[(size_t)i - 1]);
                }
            }
}

TEST(ParallelFor, ThreadsForWork)
{
    EXPECT_EQ(cnn_threads_for(CNN_PARALLEL_MIN_FLOPS - 1, 8), 1);
    EXPECT_EQ(cnn_threads_for(CNN_PARALLEL_MIN_FLOPS, 8), 8);
    EXPECT_EQ(cnn_threads_for(1e12, 1), 1);
    EXPECT_EQ(cnn_threads_for(1e12, 0), 1);
}

/* ---------------------------------------------- cnn_parallel_groups */

namespace {

/* Items of cnn_parallel_groups: each runs a cnn_parallel_for of 53 indices
 * on its group, recording which group ran it and every index's rank. */
struct Items {
    std::vector<int> group_of, size_of;
    std::vector<Ranges> inner;
    cnn_split split;
};

void item(void *ctx, long i, int g, int size)
{
    Items *it = static_cast<Items *>(ctx);
    it->group_of[(size_t)i] = g;
    it->size_of[(size_t)i] = size;
    cnn_parallel_for(size, 53, it->split, 53.0, record, &it->inner[(size_t)i]);
}

}  // namespace

TEST(ParallelGroups, EveryItemOnceAndEveryIndexOnceOnItsGroup)
{
    for (cnn_split split : {CNN_SPLIT_EVEN, CNN_SPLIT_EACH})
        for (int nt : {1, 2, 3, 4, 8, 16})
            for (long items : {1L, 2L, 3L, 4L, 7L}) {
                int G, k;
                cnn_parallel_groups_shape(nt, items, &G, &k);
                EXPECT_EQ(G, nt < items ? nt : (int)items);
                EXPECT_EQ(k, nt / G);
                Items it;
                it.split = split;
                it.group_of.assign((size_t)items, -1);
                it.size_of.assign((size_t)items, 0);
                it.inner.resize((size_t)items);
                for (auto &r : it.inner) {
                    r.hits.assign(53, 0);
                    r.thread_of.assign(53, -1);
                }
                cnn_parallel_groups(nt, items, item, &it);
                for (long i = 0; i < items; i++) {
                    EXPECT_GE(it.group_of[(size_t)i], 0) << "item " << i << " never ran";
                    EXPECT_LT(it.group_of[(size_t)i], G);
                    EXPECT_EQ(it.size_of[(size_t)i], k);
                    const Ranges &r = it.inner[(size_t)i];
                    for (int x = 0; x < 53; x++)
                        EXPECT_EQ(r.hits[(size_t)x], 1) << "nt " << nt << " item " << i;
                    EXPECT_LT(r.max_t, k) << "a rank beyond the group";
                    if (k > 1 && split == CNN_SPLIT_EVEN)
                        EXPECT_EQ(r.max_t, k - 1) << "a group's threads left idle";
                }
            }
}

/* The work counts: a call's work goes to the threads that ran it, in
 * proportion to their indices; calls inside a counted share are part of
 * it; work 0 leaves the counting to the calls inside. */
TEST(ParallelGroups, WorkCountsFollowTheShares)
{
    Items it;
    it.split = CNN_SPLIT_EACH;
    it.group_of.assign(4, -1);
    it.size_of.assign(4, 0);
    it.inner.resize(4);
    for (auto &r : it.inner) {
        r.hits.assign(53, 0);
        r.thread_of.assign(53, -1);
    }
    cnn_work_count(1);
    cnn_parallel_groups(8, 4, item, &it);
    double w[CNN_WORK_MAX_THREADS];
    const int used = cnn_work_counts(w, CNN_WORK_MAX_THREADS);
    const long syncs = cnn_work_syncs();
    cnn_work_count(0);
    ASSERT_EQ(used, 8);
    double total = 0;
    for (int t = 0; t < used; t++) {
        total += w[t];
        /* 4 groups of 2: 26 or 27 of each item's 53 indices */
        EXPECT_NEAR(w[t], t % 2 == 0 ? 26.0 : 27.0, 1e-9) << "thread " << t;
    }
    EXPECT_NEAR(total, 4 * 53.0, 1e-9);
    EXPECT_EQ(syncs, 2) << "thread 0 started the region and its group's one job";
}

TEST_F(Threads, AProbeThatRanFarSlowerIsPaidForBeforeTheNext)
{
    // two threads 95x slower (seen beside a load of 15 on 2 cores): over
    // 30000 batches the probes cost under 2%
    Machine crowded = [](int t) { return 1e-5 * (t == 1 ? 1.0 : 95.0 * t / 2); };
    Tally r = drive(crowded, 30000);
    EXPECT_EQ(cnn_get_threads(), 1);
    const double one = 30000 * 64 * crowded(1);
    EXPECT_LT(r.seconds, 1.02 * one) << r.at[2] << " batches at 2 threads";
}

TEST_F(Threads, PreemptedBatchesOfTheCountInUseDoNotMoveIt)
{
    // two threads 3x slower; 3 in 10 one-thread batches are preempted and
    // take 5x: a probe whose one-thread batches were all preempted would
    // move to two threads. The usual time of the batches before the probe
    // keeps it from moving, and a move that happens anyway is undone by
    // the batches after it.
    Timeline f = [](int t, long b) {
        if (t == 1) return 1e-5 * (noise(b, 4) < 0.3 ? 5.0 : 1.0);
        return 1.5e-5 * t;
    };
    Timed r = drive_timeline(f, 20000);
    EXPECT_EQ(cnn_get_threads(), 1);
    EXPECT_LT(r.at2, 20000 / 200) << "moves to a slower count were kept";
    EXPECT_LT(r.seconds, 1.02 * r.one);
}

TEST_F(Threads, NeverSlowerThanOneThreadOnANoisyBusyMachine)
{
    // one busy loop per core: a one-thread batch is preempted now and then
    // (1 in 8 takes 3x); a two-thread batch waits for whichever thread was
    // preempted (mostly 1.3-3x a one-thread one, 1 in 10 is 8x). Cost of
    // the probes and of any move made on noise: under 2%.
    Timeline f = [](int t, long b) {
        const double u = noise(b, 1);
        if (t == 1) return 1e-5 * (u < 0.125 ? 3.0 : 1.0 + 0.1 * noise(b, 2));
        const double v = noise(b, 3);
        return 1e-5 * (v < 0.1 ? 8.0 : 1.3 + 1.7 * v);
    };
    for (long batches : {1000L, 10000L}) {
        cnn_set_threads(0);
        Timed r = drive_timeline(f, batches);
        EXPECT_LT(r.seconds, 1.02 * r.one) << batches << " batches: " << r.at2 << " at 2 threads";
    }
}
