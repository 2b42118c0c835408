/* test_gemm.cpp — the fast GEMM (serial and threaded, every SIMD level)
 * against the reference loop, and the reference against a hand-worked
 * example. */
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <omp.h>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
#include "kernels/gemm_internal.h"
}

namespace {

/* Deterministic values in [-1, 1) without depending on other modules. */
std::vector<float> randv(size_t n, uint32_t seed)
{
    std::vector<float> v(n);
    uint32_t s = seed * 2654435761u + 12345u;
    for (auto &x : v) {
        s = s * 1664525u + 1013904223u;
        x = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return v;
}

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *,
                        int, float, float *, int);

struct Case {
    int ta, tb, M, N, K;
    int pad; /* extra leading-dimension slack */
    float alpha, beta;
};

/* Runs `fn` and the reference on the same inputs; returns the largest
 * |fast - ref| over (K * max|a||b| + |beta c|) scale — inputs are in
 * [-1, 1), so the bound for float accumulation is ~K * eps. Also checks
 * that the slack columns of C (beyond N) are untouched. */
double check(gemm_fn fn, const Case &c, uint32_t seed)
{
    const int arows = c.ta ? c.K : c.M, acols = c.ta ? c.M : c.K;
    const int brows = c.tb ? c.N : c.K, bcols = c.tb ? c.K : c.N;
    const int lda = acols + c.pad, ldb = bcols + c.pad, ldc = c.N + c.pad;
    std::vector<float> A = randv((size_t)arows * lda, seed);
    std::vector<float> B = randv((size_t)brows * ldb, seed + 1);
    std::vector<float> C0 = randv((size_t)c.M * ldc, seed + 2);
    if (c.beta == 0.0f) /* beta == 0 must ignore C entirely, NaN included */
        for (int i = 0; i < c.M; i++)
            for (int j = 0; j < c.N; j++) C0[(size_t)i * ldc + j] = NAN;
    std::vector<float> C = C0, R = C0;
    fn(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
    cnn_sgemm_ref(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
                  R.data(), ldc);
    double worst = 0.0;
    double scale = (std::fabs(c.alpha) * (c.K > 0 ? c.K : 1) + std::fabs(c.beta));
    for (int i = 0; i < c.M; i++) {
        for (int j = 0; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (j >= c.N) {
                EXPECT_EQ(std::memcmp(&C[at], &C0[at], sizeof(float)), 0)
                    << "slack of C written at " << i << "," << j;
                continue;
            }
            if (!std::isfinite(C[at])) {
                ADD_FAILURE() << "non-finite C at " << i << "," << j;
                return INFINITY;
            }
            double e = std::fabs((double)C[at] - R[at]) / scale;
            if (e > worst) worst = e;
        }
    }
    return worst;
}

std::string name(const Case &c)
{
    return "ta=" + std::to_string(c.ta) + " tb=" + std::to_string(c.tb) +
           " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
           " K=" + std::to_string(c.K) + " pad=" + std::to_string(c.pad) +
           " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta);
}

/* Awkward sizes: 1, primes around tile edges, one long dimension. */
std::vector<Case> awkward_cases()
{
    std::vector<Case> v;
    const int sizes[][3] = {
        {1, 1, 1},     {1, 7, 17},   {7, 1, 129},  {17, 129, 1},  {129, 17, 7},
        {16, 196, 9},  {6, 784, 25}, {15, 33, 31}, {29, 47, 300}, {13, 1000, 17},
        {1000, 7, 17}, {17, 1, 1000}, {64, 10, 784}, {129, 129, 129}, {43, 65, 700},
    };
    int k = 0;
    for (auto &s : sizes)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++, k++) {
                float alpha = k % 3 == 0 ? 1.0f : k % 3 == 1 ? -0.5f : 2.0f;
                float beta = k % 4 == 0 ? 0.0f : k % 4 == 1 ? 1.0f : k % 4 == 2 ? 0.25f : -1.0f;
                v.push_back({ta, tb, s[0], s[1], s[2], k % 2 ? 3 : 0, alpha, beta});
            }
    return v;
}

const double kTol = 2e-6; /* per unit of K: ~1e-5 relative at K = 5 */

/* Every test runs at every SIMD level this CPU has, forced as CNN_SIMD
 * would force it. */
class Gemm : public ::testing::TestWithParam<int> {
protected:
    void SetUp() override
    {
        int got = cnn_gemm_set_simd_level(GetParam());
        if (got != GetParam()) GTEST_SKIP() << "CPU lacks SIMD level " << GetParam();
    }
    void TearDown() override { cnn_gemm_set_simd_level(CNN_SIMD_AVX512); }
};

TEST_P(Gemm, SerialMatchesReference)
{
    uint32_t seed = 1;
    for (const Case &c : awkward_cases())
        EXPECT_LE(check(cnn_sgemm_serial, c, seed++), kTol) << name(c);
}

TEST_P(Gemm, ThreadedMatchesReference)
{
    omp_set_num_threads(2);
    uint32_t seed = 100;
    for (const Case &c : awkward_cases())
        EXPECT_LE(check(cnn_sgemm, c, seed++), kTol) << name(c);
}

TEST_P(Gemm, ConvShapesEveryTranspose)
{
    /* the layer shapes of bench_gemm; the last two are the dcol GEMMs
     * (transposed A read in place) at their real sizes */
    const int shapes[][3] = {{16, 196, 9},  {6, 784, 25},  {16, 100, 150},
                             {32, 676, 9},  {64, 576, 288}, {64, 196, 576},
                             {64, 128, 784}, {64, 10, 128}, {64, 128, 10},
                             {150, 100, 16}, {576, 196, 64}};
    uint32_t seed = 500;
    for (auto &s : shapes)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                Case c{ta, tb, s[0], s[1], s[2], 0, 1.0f, seed % 2 ? 0.0f : 1.0f};
                EXPECT_LE(check(cnn_sgemm, c, seed++), kTol) << name(c);
            }
}

TEST_P(Gemm, DotPathTileShapes)
{
    /* A * B^T with M * N <= 1024 and K >= 32 runs as dot products (AVX-512):
     * row tiles of 1..6 (4 below K = 160), columns of 3 or 4, a K tail
     * after the full 16-k chunks; every transpose of the same sizes too */
    /* M <= 2 (one or two row tiles of 1..2 rows): 8-column tiles while 8
     * columns are left (N = 7, 8, 9, 16, 17 around them) */
    const int Ms[] = {1, 2, 3, 5, 6, 7, 11, 16}, Ns[] = {1, 2, 3, 5, 7, 8, 9, 10, 16, 17, 25},
              Ks[] = {32, 47, 159, 160, 177};
    uint32_t seed = 1300;
    int n = 0;
    for (int M : Ms)
        for (int N : Ns)
            for (int K : Ks) {
                int ta = n % 4 == 3, tb = n % 4 != 2;
                float beta = n % 3 == 0 ? 0.0f : n % 3 == 1 ? 1.0f : -0.5f;
                Case c{ta, tb, M, N, K, n % 2 ? 3 : 0, n % 5 ? 1.0f : -2.0f, beta};
                n++;
                EXPECT_LE(check(cnn_sgemm_serial, c, seed++), kTol) << name(c);
            }
}

TEST_P(Gemm, InPlaceThresholds)
{
    /* B (and untransposed A, on AVX-512) are read in place up to M = 640;
     * both sides of it, with leading dimensions wider than the rows */
    const int shapes[][3] = {{640, 37, 40}, {641, 37, 40}, {16, 100, 150}, {64, 128, 10}};
    uint32_t seed = 1700;
    for (auto &s : shapes)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int pad = 0; pad <= 5; pad += 5) {
                    Case c{ta, tb, s[0], s[1], s[2], pad, 1.0f, seed % 2 ? 0.0f : 1.0f};
                    EXPECT_LE(check(cnn_sgemm_serial, c, seed++), kTol) << name(c);
                }
}

TEST_P(Gemm, NarrowRightEdge)
{
    /* AVX-512 with A k-major over the block (stored transposed, or packed
     * K x M when K < 10): an edge of N % 16 = 1..4 columns runs down the
     * rows in groups of 16 (up to 4 groups, the last one short); N % 16 = 5
     * and 0 stay with the 16-lane tiles */
    const int Ms[] = {1, 9, 15, 16, 17, 33, 48, 63, 64, 65, 79, 150};
    const int Ns[] = {1, 2, 3, 4, 5, 16, 17, 20, 21, 36, 100, 196};
    const int Ks[] = {1, 9, 16, 33, 7};
    uint32_t seed = 2100;
    int n = 0;
    for (int M : Ms)
        for (int N : Ns)
            for (int t = 0; t < 4; t++, n++) {
                float beta = n % 3 == 0 ? 0.0f : n % 3 == 1 ? 1.0f : -0.5f;
                Case c{t / 2, t % 2, M, N, Ks[n % 5], n % 2 ? 3 : 0, n % 7 ? 1.0f : -2.0f,
                       beta};
                EXPECT_LE(check(cnn_sgemm_serial, c, seed++), kTol) << name(c);
            }
}

TEST_P(Gemm, NarrowRightEdgeRowMajorA)
{
    /* untransposed A with K >= 10 is read in place by rows; for the edge
     * it is transposed 32 rows at a time (two groups of 16, the last one
     * short), K up to one kc block and across it */
    const int Ms[] = {1, 15, 16, 17, 31, 32, 33, 47, 64, 65, 100};
    const int Ns[] = {3, 4, 20, 100};
    const int Ks[] = {10, 150, 320, 321};
    uint32_t seed = 3300;
    int n = 0;
    for (int M : Ms)
        for (int N : Ns)
            for (int K : Ks) {
                float beta = n % 3 == 0 ? 0.0f : n % 3 == 1 ? 1.0f : -0.5f;
                Case c{0, 0, M, N, K, n % 2 ? 3 : 0, n % 5 ? 1.0f : -2.0f, beta};
                n++;
                EXPECT_LE(check(cnn_sgemm_serial, c, seed++), kTol) << name(c);
            }
}

TEST_P(Gemm, SingleBlockThresholds)
{
    /* AVX-512 GEMMs with K <= 320 and, for untransposed B, M <= 640 go
     * straight to the kernels (run_small); both sides of each limit and of
     * the K = 10 switch between packed and in-place A */
    const int shapes[][3] = {{640, 20, 9}, {641, 20, 9},  {33, 50, 320}, {33, 50, 321},
                             {17, 36, 10}, {17, 36, 9},   {7, 130, 1},   {640, 37, 11},
                             {641, 37, 11}, {32, 32, 31}, {32, 32, 32}};
    uint32_t seed = 2900;
    int n = 0;
    for (auto &s : shapes)
        for (int t = 0; t < 4; t++)
            for (int pad = 0; pad <= 5; pad += 5, n++) {
                float beta = n % 3 == 0 ? 0.0f : n % 3 == 1 ? 1.0f : -0.5f;
                Case c{t / 2, t % 2, s[0], s[1], s[2], pad, n % 4 ? 1.0f : 0.5f, beta};
                EXPECT_LE(check(cnn_sgemm_serial, c, seed++), kTol) << name(c);
            }
}

TEST_P(Gemm, LargeBlockedAcrossKAndM)
{
    /* crosses the kc, mc and (packed) nc block boundaries of every level */
    Case c{0, 0, 400, 300, 1100, 5, 0.75f, 0.5f};
    EXPECT_LE(check(cnn_sgemm, c, 7), kTol) << name(c);
    Case d{1, 1, 333, 4200, 70, 1, 1.0f, 0.0f};
    EXPECT_LE(check(cnn_sgemm, d, 8), kTol) << name(d);
}

TEST_P(Gemm, BitIdenticalForAnyThreadCount)
{
    /* 30 x 33 x 1000 A*B^T is a dot-path GEMM whose 2-thread split gives
     * blocks of 16 and 17 columns: tiles of 4 columns there, 3 serially */
    const int shapes[][3] = {{64, 196, 576}, {32, 676, 9}, {200, 30, 700}, {129, 1000, 17},
                             {30, 33, 1000}, {150, 100, 16}, {79, 20, 9},
                             {100, 196, 150}, {600, 52, 40}};
    uint32_t seed = 900;
    for (auto &s : shapes)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int M = s[0], N = s[1], K = s[2];
                std::vector<float> A = randv((size_t)M * K, seed++);
                std::vector<float> B = randv((size_t)K * N, seed++);
                std::vector<float> C0 = randv((size_t)M * N, seed++);
                int lda = ta ? M : K, ldb = tb ? K : N;
                std::vector<float> first;
                for (int threads = 1; threads <= 3; threads++) {
                    omp_set_num_threads(threads);
                    std::vector<float> C = C0;
                    cnn_sgemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.5f,
                              C.data(), N);
                    if (threads == 1) first = C;
                    else
                        EXPECT_EQ(std::memcmp(first.data(), C.data(), C.size() * sizeof(float)),
                                  0)
                            << "threads=" << threads << " M=" << M << " N=" << N << " K=" << K
                            << " ta=" << ta << " tb=" << tb;
                }
            }
    omp_set_num_threads(2);
}

TEST_P(Gemm, DotPathThreadsSameBits)
{
    /* A * B^T on the dot path above CNN_PARALLEL_MIN_FLOPS: threads in
     * pairs take chunks of 8 columns from both ends of a range (an odd
     * thread count leaves the last thread a range alone; fewer chunks than
     * threads leaves threads idle). Every count gives the bits of one
     * thread, and the reference's values. */
    const int shapes[][3] = {{1, 128, 9216}, {2, 17, 20000}, {1, 5, 100000},
                             {3, 9, 20000},  {1, 40, 13000}, {16, 64, 600}};
    uint32_t seed = 4100;
    for (auto &s : shapes) {
        const int M = s[0], N = s[1], K = s[2];
        ASSERT_GE(2.0 * M * N * K, CNN_PARALLEL_MIN_FLOPS);
        std::vector<float> A = randv((size_t)M * K, seed++);
        std::vector<float> B = randv((size_t)N * K, seed++);
        std::vector<float> C0 = randv((size_t)M * N, seed++);
        std::vector<float> first;
        for (int threads = 1; threads <= 5; threads++) {
            omp_set_num_threads(threads);
            std::vector<float> C = C0;
            cnn_sgemm(0, 1, M, N, K, 1.0f, A.data(), K, B.data(), K, 1.0f, C.data(), N);
            if (threads == 1) {
                first = C;
                std::vector<float> R = C0;
                cnn_sgemm_ref(0, 1, M, N, K, 1.0f, A.data(), K, B.data(), K, 1.0f, R.data(), N);
                for (size_t i = 0; i < R.size(); i++)
                    ASSERT_NEAR(C[i], R[i], kTol * K) << "M=" << M << " N=" << N << " K=" << K;
            } else {
                EXPECT_EQ(std::memcmp(first.data(), C.data(), C.size() * sizeof(float)), 0)
                    << "threads=" << threads << " M=" << M << " N=" << N << " K=" << K;
            }
        }
    }
    omp_set_num_threads(2);
}

TEST_P(Gemm, DegenerateSizes)
{
    /* K == 0: C = beta * C; alpha == 0: the same, A and B never read */
    std::vector<float> C = {1, 2, 3, 4};
    cnn_sgemm(0, 0, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 2.0f, C.data(), 2);
    EXPECT_EQ(C, (std::vector<float>{2, 4, 6, 8}));
    cnn_sgemm(0, 0, 2, 2, 3, 0.0f, nullptr, 3, nullptr, 2, 0.5f, C.data(), 2);
    EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4}));
    std::vector<float> N4(4, NAN);
    cnn_sgemm_serial(0, 0, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, N4.data(), 2);
    EXPECT_EQ(N4, (std::vector<float>(4, 0.0f)));
    /* M or N == 0: nothing touched */
    cnn_sgemm(0, 0, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, nullptr, 2);
}

INSTANTIATE_TEST_SUITE_P(Simd, Gemm,
                         ::testing::Values(CNN_SIMD_GENERIC, CNN_SIMD_AVX2, CNN_SIMD_AVX512),
                         [](const ::testing::TestParamInfo<int> &i) {
                             return std::string(i.param == CNN_SIMD_GENERIC ? "generic"
                                                : i.param == CNN_SIMD_AVX2  ? "avx2"
                                                                            : "avx512");
                         });

TEST(GemmRef, HandWorked2x3x2)
{
    /* A (2x2) = [1 2; 3 4], B (2x3) = [5 6 7; 8 9 10]
     * A*B = [1*5+2*8  1*6+2*9  1*7+2*10; 3*5+4*8  3*6+4*9  3*7+4*10]
     *     = [21 24 27; 47 54 61]
     * with alpha = 2, beta = -1, C = [1 1 1; 0 0 2]:
     *   [41 47 53; 94 108 120] */
    const float A[] = {1, 2, 3, 4}, B[] = {5, 6, 7, 8, 9, 10};
    float C[] = {1, 1, 1, 0, 0, 2};
    cnn_sgemm_ref(0, 0, 2, 3, 2, 2.0f, A, 2, B, 3, -1.0f, C, 3);
    const float want[] = {41, 47, 53, 94, 108, 120};
    for (int i = 0; i < 6; i++) EXPECT_EQ(C[i], want[i]) << i;

    /* the same product with both operands stored transposed */
    const float At[] = {1, 3, 2, 4}, Bt[] = {5, 8, 6, 9, 7, 10};
    float D[6];
    for (float &d : D) d = NAN;
    cnn_sgemm_ref(1, 1, 2, 3, 2, 1.0f, At, 2, Bt, 2, 0.0f, D, 3);
    const float prod[] = {21, 24, 27, 47, 54, 61};
    for (int i = 0; i < 6; i++) EXPECT_EQ(D[i], prod[i]) << i;
}

TEST(GemmSimd, NameMatchesLevel)
{
    int lvl = cnn_gemm_set_simd_level(CNN_SIMD_GENERIC);
    EXPECT_EQ(lvl, CNN_SIMD_GENERIC);
    EXPECT_STREQ(cnn_simd_name(), "generic");
    lvl = cnn_gemm_set_simd_level(CNN_SIMD_AVX512);
    const char *want = lvl == CNN_SIMD_AVX512 ? "avx512" : lvl == CNN_SIMD_AVX2 ? "avx2" : "generic";
    EXPECT_STREQ(cnn_simd_name(), want);
}

} // namespace

namespace {

TEST(GemmSimd, EnvironmentForcesLowerLevel)
{
    setenv("CNN_SIMD", "generic", 1);
    EXPECT_EQ(cnn_gemm_set_simd_level(-1), CNN_SIMD_GENERIC);
    EXPECT_STREQ(cnn_simd_name(), "generic");
    setenv("CNN_SIMD", "avx2", 1);
    int lvl = cnn_gemm_set_simd_level(-1);
    EXPECT_LE(lvl, CNN_SIMD_AVX2);
    /* a level above the CPU's is lowered, never trusted */
    setenv("CNN_SIMD", "avx512", 1);
    EXPECT_GE(cnn_gemm_set_simd_level(-1), lvl);
    unsetenv("CNN_SIMD");
    cnn_gemm_set_simd_level(-1);
}

} // namespace
