/* threads.c — the thread count the fast kernels use. */
#include "internal.h"

#include <omp.h>

static int g_threads; /* 0: not set, use OpenMP's default */

void cnn_set_threads(int n)
{
    g_threads = n > 0 ? n : 0;
    if (n > 0) omp_set_num_threads(n);
}

int cnn_get_threads(void) { return cnn_threads(); }

int cnn_threads(void)
{
    /* omp_get_max_threads honours OMP_NUM_THREADS */
    return g_threads > 0 ? g_threads : omp_get_max_threads();
}
