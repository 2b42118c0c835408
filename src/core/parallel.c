/* parallel.c — the one way kernels split work over threads.
 *
 * A kernel asks cnn_threads_for how many of the threads it was given its
 * work is worth, then hands cnn_parallel_for a function over index ranges.
 * The thread count comes from the caller (the model passes it down each
 * layer), never from hidden per-thread state, and one thread runs the
 * function inline: a parallel region with if(0) or a team of one still
 * enters libgomp, which mallocs a one-thread team on every call
 * (bench/FINDINGS.md F1). */
#include "internal.h"

#include <omp.h>

void cnn_parallel_for(int nt, long n, cnn_split split, cnn_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (nt > n) nt = (int)n;
    if (nt <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    if (split == CNN_SPLIT_EACH) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (long i = 0; i < n; i++) fn(ctx, i, i + 1, omp_get_thread_num());
    } else {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), T = omp_get_num_threads();
            const long i0 = n * t / T, i1 = n * (t + 1) / T;
            if (i1 > i0) fn(ctx, i0, i1, t);
        }
    }
}
