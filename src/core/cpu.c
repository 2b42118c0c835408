/* cpu.c — what the CPU can run, and the SIMD level the kernels use.
 *
 * The level is one for the whole library: the GEMM's micro-kernels, the
 * conv layers' choice of algorithm (the shifted planes need AVX-512) and
 * the pooling kernels all read it. It starts at the best the CPU has;
 * CNN_SIMD=generic|avx2 in the environment lowers it (never raises it: asking
 * for AVX-512 on a CPU without it must not crash), and tests and benchmarks
 * force it with cnn_simd_set_level. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_X86 1
#endif

enum { HAS_AVX512, HAS_AVX512BW, HAS_AVX2 };

static int cpu_has(int what)
{
#ifdef CPU_X86
    __builtin_cpu_init();
    switch (what) {
    case HAS_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case HAS_AVX512BW:
        return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    default: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#else
    (void)what;
    return 0;
#endif
}

int cnn_cpu_has_avx512(void) { return cpu_has(HAS_AVX512); }
int cnn_cpu_has_avx512bw(void) { return cpu_has(HAS_AVX512BW); }
int cnn_cpu_has_avx2(void) { return cpu_has(HAS_AVX2); }

static int cpu_best_level(void)
{
    if (cnn_cpu_has_avx512()) return CNN_SIMD_AVX512;
    if (cnn_cpu_has_avx2()) return CNN_SIMD_AVX2;
    return CNN_SIMD_GENERIC;
}

int cnn_simd_level_in_use = -1;

/* The level from the CPU and CNN_SIMD, as the first call finds it */
static int detect_level(void)
{
    int level = CNN_SIMD_AVX512;
    const char *env = getenv("CNN_SIMD");
    if (env) {
        if (!strcmp(env, "generic")) level = CNN_SIMD_GENERIC;
        else if (!strcmp(env, "avx2")) level = CNN_SIMD_AVX2;
    }
    return cnn_simd_set_level(level);
}

int cnn_simd_set_level(int level)
{
    if (level < 0) return detect_level();
    int best = cpu_best_level();
    if (level > best) level = best;
    __atomic_store_n(&cnn_simd_level_in_use, level, __ATOMIC_RELEASE);
    return level;
}

const char *cnn_simd_name(void)
{
    switch (cnn_simd_level()) {
    case CNN_SIMD_AVX512: return "avx512";
    case CNN_SIMD_AVX2: return "avx2";
    default: return "generic";
    }
}
