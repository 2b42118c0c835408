/* memory.c — aligned allocation with a size cap and a message on failure. */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t cnn_mul_size(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a) return SIZE_MAX;
    return a * b;
}

void *cnn_alloc(size_t bytes, const char *what)
{
    if (bytes > CNN_MAX_ALLOC) {
        cnn_fail(CNN_ERR_NOMEM, "%s would need %.1f GiB, more than the %.0f GiB limit",
                 what, (double)bytes / (1 << 30), (double)CNN_MAX_ALLOC / (1 << 30));
        return NULL;
    }
    /* 64-byte alignment: one cache line, and a full AVX-512 vector. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        cnn_fail(CNN_ERR_NOMEM, "out of memory allocating %s (%zu bytes)", what, bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void cnn_free(void *p) { free(p); }

/* 1 if any of x[0..n) is NaN or +-Inf: its exponent bits are all ones. An
 * OR over the bits has no branch per element, so it vectorises; this runs
 * over every activation of every training step. */
static int any_nonfinite(const float *x, size_t n)
{
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u); /* the bits, without breaking aliasing rules */
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad != 0;
}

long cnn_first_nonfinite(const float *x, size_t n)
{
    const size_t block = 4096;
    for (size_t b = 0; b < n; b += block) {
        size_t len = n - b < block ? n - b : block;
        if (!any_nonfinite(x + b, len)) continue;
        for (size_t i = b; i < b + len; i++)
            if (!isfinite(x[i])) return (long)i;
    }
    return -1;
}
