/* memory.c — aligned allocation with a size cap and a message on failure. */
#include "internal.h"

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

long cnn_first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] - x[i] == 0.0f)) return (long)i; /* NaN or +-Inf */
    return -1;
}
