/* threads.c — the thread count the fast kernels use. */
#include "internal.h"

#include <omp.h>

static int g_threads; /* 0: not set, use OpenMP's default */
/* Set while a thread runs one shard of a batch through the whole model
 * (src/model/shard.c): the shard is already one thread's share of the
 * work, so every kernel inside it must stay on that thread. */
static _Thread_local int tl_serial;

void cnn_threads_serial(int on) { tl_serial = on; }

void cnn_set_threads(int n)
{
    g_threads = n > 0 ? n : 0;
    if (n > 0) omp_set_num_threads(n);
}

int cnn_get_threads(void) { return cnn_threads(); }

int cnn_threads(void)
{
    if (tl_serial) return 1;
    /* omp_get_max_threads honours OMP_NUM_THREADS */
    return g_threads > 0 ? g_threads : omp_get_max_threads();
}
