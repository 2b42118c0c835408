/* memory.c — aligned allocation under a memory limit, with a message on
 * failure.
 *
 * Every buffer the library allocates (parameters, gradients, optimizer
 * state, activations, layer workspaces, the shard workers' buffers) comes
 * from cnn_alloc, which keeps a running total of the bytes it has handed
 * out and refuses an allocation that would take the total past the limit.
 * So a model too big for the machine is refused with a message instead of
 * being killed by the OOM killer. The size of each block is stored in a
 * header in front of it, so cnn_free can give the bytes back. The total is
 * atomic: shard workers reserve their buffers from several threads. */
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t cnn_mul_size(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a) return SIZE_MAX;
    return a * b;
}

size_t cnn_add_size(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

/* ------------------------------------------------------------ the limit */

/* The header in front of each block: one cache line, so the block keeps
 * its 64-byte alignment. It holds the block's charged size. */
#define HEADER 64

#define STR_(x) #x
#define STR(x) STR_(x)
#define DEFAULT_SOURCE STR(CNN_MEMORY_DEFAULT_PERCENT) "% of the memory"

static atomic_size_t used;  /* bytes handed out and not yet freed */
static atomic_size_t limit; /* 0: not decided yet (the default, computed once) */
/* What messages say about where the limit comes from. Set with the limit,
 * before the work that allocates; read when an allocation is refused. */
static char limit_source[96] = DEFAULT_SOURCE;

size_t cnn_physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    size_t phys = pages > 0 && page > 0 ? cnn_mul_size((size_t)pages, (size_t)page) : SIZE_MAX;
    /* In a container the OOM killer acts at the control group's limit,
     * which may be far below the machine's memory (v2, then v1). */
    static const char *const cgroup[] = {"/sys/fs/cgroup/memory.max",
                                         "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(cgroup[i], "r");
        unsigned long long v;
        if (!f) continue;
        if (fscanf(f, "%llu", &v) == 1 && v > 0 && v < phys) phys = (size_t)v;
        fclose(f);
    }
    return phys;
}

static size_t default_limit(void)
{
    size_t phys = cnn_physical_memory();
    return phys == SIZE_MAX ? SIZE_MAX : (size_t)((double)phys * CNN_MEMORY_DEFAULT_PERCENT / 100.0);
}

void cnn_set_memory_limit(size_t bytes)
{
    atomic_store(&limit, bytes ? bytes : default_limit());
    snprintf(limit_source, sizeof limit_source, "%s", bytes ? "set by the caller" : DEFAULT_SOURCE);
}

void cnn_memory_limit_source(const char *text)
{
    snprintf(limit_source, sizeof limit_source, "%s", text ? text : "");
}

size_t cnn_memory_limit(void)
{
    size_t l = atomic_load(&limit);
    if (l == 0) {
        /* the first use decides the default; racing threads agree on it */
        size_t zero = 0;
        atomic_compare_exchange_strong(&limit, &zero, default_limit());
        l = atomic_load(&limit);
    }
    return l;
}

size_t cnn_memory_used(void) { return atomic_load(&used); }

void cnn_format_bytes(char *buf, size_t len, double bytes)
{
    if (bytes >= 1024.0 * 1024 * 1024) snprintf(buf, len, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024) snprintf(buf, len, "%.1f MiB", bytes / (1024.0 * 1024));
    else if (bytes >= 1024.0) snprintf(buf, len, "%.1f KiB", bytes / 1024.0);
    else snprintf(buf, len, "%.0f bytes", bytes);
}

void cnn_format_limit(char *buf, size_t len)
{
    size_t l = cnn_memory_limit();
    if (l == SIZE_MAX) {
        snprintf(buf, len, "unlimited");
        return;
    }
    char b[32];
    cnn_format_bytes(b, sizeof b, (double)l);
    if (limit_source[0]) snprintf(buf, len, "%s (%s)", b, limit_source);
    else snprintf(buf, len, "%s", b);
}

size_t cnn_alloc_charge(size_t bytes)
{
    if (bytes > SIZE_MAX - HEADER - 63) return SIZE_MAX;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    return rounded + HEADER;
}

/* Take `charge` bytes from what the limit leaves, or say why not. */
static int reserve(size_t charge, size_t bytes, const char *what)
{
    const size_t lim = cnn_memory_limit();
    size_t cur = atomic_load(&used);
    do {
        if (charge > lim || cur > lim - charge) {
            char need[32], in_use[32], l[128];
            cnn_format_bytes(need, sizeof need, (double)bytes);
            cnn_format_bytes(in_use, sizeof in_use, (double)cur);
            cnn_format_limit(l, sizeof l);
            cnn_fail(CNN_ERR_NOMEM, "%s would need %s with %s already in use: over the memory "
                     "limit of %s", what, need, in_use, l);
            return 0;
        }
    } while (!atomic_compare_exchange_weak(&used, &cur, cur + charge));
    return 1;
}

void *cnn_alloc(size_t bytes, const char *what)
{
    if (bytes > CNN_MAX_ALLOC) {
        cnn_fail(CNN_ERR_NOMEM, "%s would need %.1f GiB, more than the %.0f GiB limit of one "
                 "allocation", what, (double)bytes / (1 << 30), (double)CNN_MAX_ALLOC / (1 << 30));
        return NULL;
    }
    const size_t charge = cnn_alloc_charge(bytes);
    if (!reserve(charge, bytes, what)) return NULL;
    /* 64-byte alignment: one cache line, and a full AVX-512 vector. */
    unsigned char *base = aligned_alloc(64, charge);
    if (!base) {
        atomic_fetch_sub(&used, charge);
        cnn_fail(CNN_ERR_NOMEM, "out of memory allocating %s (%zu bytes)", what, bytes);
        return NULL;
    }
    memcpy(base, &charge, sizeof charge);
    memset(base + HEADER, 0, charge - HEADER);
    return base + HEADER;
}

void cnn_free(void *p)
{
    if (!p) return;
    unsigned char *base = (unsigned char *)p - HEADER;
    size_t charge;
    memcpy(&charge, base, sizeof charge);
    atomic_fetch_sub(&used, charge);
    free(base);
}

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
