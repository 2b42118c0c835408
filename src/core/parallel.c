/* parallel.c — the one way kernels split work over threads.
 *
 * A kernel asks cnn_threads_for how many of the threads it was given its
 * work is worth, then hands cnn_parallel_for a function over index ranges.
 * The thread count comes from the caller (the model passes it down each
 * layer), never from hidden per-thread state, and one thread runs the
 * function inline: a parallel region with if(0) or a team of one still
 * enters libgomp, which mallocs a one-thread team on every call
 * (bench/FINDINGS.md F1).
 *
 * Groups. cnn_parallel_groups runs items (a batch's shards) on groups of
 * threads inside one parallel region: each group's first thread (its
 * leader) takes items one at a time, and a cnn_parallel_for the leader
 * calls while running one is shared out over its group's threads, which
 * wait for such work between calls. No parallel region is nested: libgomp
 * reuses idle threads for top-level regions only, and would start new
 * ones (and allocate) for every nested region.
 *
 * Work counts (bench/bench_balance.c). While counting is on, each call's
 * `work` is added to the threads that run it, in proportion to the indices
 * each ran, and dynamic splits are dealt out statically: the counts stand
 * for a machine with a core per thread, whatever this one's load. */
#include "internal.h"

#include <omp.h>
#include <sched.h>
#include <string.h>

/* ------------------------------------------------------------ counting */

static int g_counting;
static struct {
    _Alignas(64) double work;
    long syncs; /* parallel regions and group jobs this thread started, each a barrier */
} g_counts[CNN_WORK_MAX_THREADS];

static void count_sync(void)
{
    const int t = omp_get_thread_num();
    if (g_counting && t < CNN_WORK_MAX_THREADS) g_counts[t].syncs++;
}

void cnn_work_count(int on)
{
    memset(g_counts, 0, sizeof g_counts);
    g_counting = on;
}

long cnn_work_syncs(void)
{
    long most = 0;
    for (int t = 0; t < CNN_WORK_MAX_THREADS; t++)
        most = g_counts[t].syncs > most ? g_counts[t].syncs : most;
    return most;
}

int cnn_work_counts(double *out, int max)
{
    int used = 0;
    for (int t = 0; t < CNN_WORK_MAX_THREADS; t++)
        if (g_counts[t].work > 0) used = t + 1;
    for (int t = 0; t < used && t < max; t++) out[t] = g_counts[t].work;
    return used;
}

/* > 0 while this thread runs a share of a call that counted its work: the
 * calls inside it are part of that work */
static _Thread_local int t_share;

void cnn_work_add(double work)
{
    if (!g_counting || t_share) return;
    const int t = omp_get_thread_num();
    if (t < CNN_WORK_MAX_THREADS) g_counts[t].work += work;
}

/* fn over indices [i0, i1) of n on this thread as rank r, counting the
 * share of `work` they are (a call of work 0 leaves the counting to the
 * calls inside it) */
static void run_share(cnn_range_fn fn, void *ctx, double work, long n, long i0, long i1, int r)
{
    if (work <= 0) {
        fn(ctx, i0, i1, r);
        return;
    }
    cnn_work_add(work * (double)(i1 - i0) / (double)n);
    t_share++;
    fn(ctx, i0, i1, r);
    t_share--;
}

/* -------------------------------------------------------------- groups */

/* A group's shared state. The leader posts a job (bumping gen); each other
 * member runs its share and counts down `pending`. */
typedef struct {
    _Alignas(64) unsigned gen;
    int quit;
    int size;      /* threads in the group */
    int nt;        /* threads of the job */
    long n;
    cnn_split split;
    double work;
    cnn_range_fn fn;
    void *ctx;
    int busy;      /* the leader is running a job: calls inside it run inline */
    _Alignas(64) long next;    /* CNN_SPLIT_EACH: the next index to take */
    _Alignas(64) int pending;  /* members yet to finish the job */
} cnn_group;

/* The group whose leader this thread is, while it runs an item */
static _Thread_local cnn_group *t_group;

/* Spin a little, then give the core away: a machine running more threads
 * than it has cores must not spend the leader's time on waiters. */
static void relax(unsigned *spins)
{
    if (++*spins < 256) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

/* Rank r's share of the group's current job */
static void group_share(cnn_group *g, int r)
{
    const long n = g->n;
    if (g->split == CNN_SPLIT_EVEN || g_counting) {
        const long i0 = n * r / g->nt, i1 = n * (r + 1) / g->nt;
        if (i1 > i0) run_share(g->fn, g->ctx, g->work, n, i0, i1, r);
        return;
    }
    for (;;) {
        const long i = __atomic_fetch_add(&g->next, 1, __ATOMIC_RELAXED);
        if (i >= n) break;
        run_share(g->fn, g->ctx, g->work, n, i, i + 1, r);
    }
}

static void group_member(cnn_group *g, int r)
{
    unsigned seen = 0;
    for (;;) {
        unsigned spins = 0, gen;
        while ((gen = __atomic_load_n(&g->gen, __ATOMIC_ACQUIRE)) == seen) relax(&spins);
        seen = gen;
        if (g->quit) return;
        if (r < g->nt) group_share(g, r);
        __atomic_fetch_sub(&g->pending, 1, __ATOMIC_RELEASE);
    }
}

/* Post a job to the group (or quit) and wait for every member */
static void group_post(cnn_group *g, int quit)
{
    if (!quit) count_sync();
    g->quit = quit;
    g->next = 0;
    g->pending = g->size - 1;
    __atomic_fetch_add(&g->gen, 1, __ATOMIC_RELEASE);
    if (quit) return;
    g->busy = 1;
    group_share(g, 0);
    g->busy = 0;
    unsigned spins = 0;
    while (__atomic_load_n(&g->pending, __ATOMIC_ACQUIRE) > 0) relax(&spins);
}

static void group_for(cnn_group *g, int nt, long n, cnn_split split, double work,
                      cnn_range_fn fn, void *ctx)
{
    if (nt > g->size) nt = g->size;
    if (nt > n) nt = (int)n;
    if (nt <= 1 || g->busy) {
        run_share(fn, ctx, work, n, 0, n, 0);
        return;
    }
    g->nt = nt;
    g->n = n;
    g->split = split;
    g->work = work;
    g->fn = fn;
    g->ctx = ctx;
    group_post(g, 0);
}

void cnn_parallel_for(int nt, long n, cnn_split split, double work, cnn_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (t_group) {
        group_for(t_group, nt, n, split, work, fn, ctx);
        return;
    }
    if (nt > n) nt = (int)n;
    if (nt <= 1) {
        run_share(fn, ctx, work, n, 0, n, 0);
        return;
    }
    count_sync();
    if (split == CNN_SPLIT_EACH && !g_counting) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (long i = 0; i < n; i++) run_share(fn, ctx, work, n, i, i + 1, omp_get_thread_num());
    } else {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), T = omp_get_num_threads();
            const long i0 = n * t / T, i1 = n * (t + 1) / T;
            if (i1 > i0) run_share(fn, ctx, work, n, i0, i1, t);
        }
    }
}

void cnn_parallel_groups_shape(int nt, long items, int *groups, int *size)
{
    if (nt < 1) nt = 1;
    const int G = items < nt ? (int)(items > 0 ? items : 1) : nt;
    *groups = G;
    *size = nt / G;
}

typedef struct {
    cnn_item_fn fn;
    void *ctx;
} items_job;

/* Without groups of more than one: item i on thread t, as group t of one */
static void items_each(void *ctx, long i0, long i1, int t)
{
    const items_job *j = ctx;
    for (long i = i0; i < i1; i++) j->fn(j->ctx, i, t, 1);
}

void cnn_parallel_groups(int nt, long items, cnn_item_fn fn, void *ctx)
{
    if (items <= 0) return;
    int G, k;
    cnn_parallel_groups_shape(nt, items, &G, &k);
    if (k <= 1 || t_group) {
        items_job j = {fn, ctx};
        cnn_parallel_for(G, items, CNN_SPLIT_EACH, 0.0, items_each, &j);
        return;
    }
    count_sync();
    cnn_group groups[G];
    memset(groups, 0, sizeof groups);
    for (int g = 0; g < G; g++) groups[g].size = k;
    long next = 0;
#pragma omp parallel num_threads(G * k)
    {
        const int t = omp_get_thread_num(), g = t / k, r = t % k;
        /* a team smaller than asked for: the groups it cannot fill stay idle */
        const int full = omp_get_num_threads() / k;
        if (full == 0 && t == 0) {
            for (long i = 0; i < items; i++) fn(ctx, i, 0, 1);
        } else if (g < full) {
            cnn_group *grp = &groups[g];
            if (r == 0) {
                t_group = grp;
                for (long s = g;;) {
                    /* counting: items dealt round-robin, as with a core each */
                    const long i = g_counting ? s : __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
                    if (i >= items) break;
                    fn(ctx, i, g, k);
                    s += full;
                }
                t_group = NULL;
                group_post(grp, 1);
            } else {
                group_member(grp, r);
            }
        }
    }
}
