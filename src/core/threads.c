/* threads.c — how many threads the fast kernels use.
 *
 * Fixed when the caller says so (cnn_set_threads(n > 0), or
 * OMP_NUM_THREADS). Otherwise automatic: up to every core, and training
 * steps time themselves to move the count along the ladder N, N/2, ..., 1
 * to whichever runs faster. On a machine whose other cores are busy, fewer
 * threads win: a time-shared core makes every shard wait for its slowest
 * thread, and OpenMP workers spin-waiting between batches take time from
 * the thread with work (bench/NOTES.md has the measurements). Results are
 * the same bits at any thread count, so the choice never changes them. */
#include "internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_threads;  /* > 0: fixed by cnn_set_threads */
static int g_auto_cap; /* automatic mode: the count chosen (0: not yet) */
static int g_active;   /* automatic mode: this training batch's count (0: none) */
static void tuner_reset(void);

void cnn_set_threads(int n)
{
    g_threads = n > 0 ? n : 0;
    g_auto_cap = g_active = 0;
    tuner_reset();
    if (n > 0) omp_set_num_threads(n);
}

int cnn_get_threads(void) { return cnn_threads(); }

/* The most threads: fixed, or OMP_NUM_THREADS / the cores. */
static int max_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

int cnn_threads_max(void) { return max_threads(); }

static int is_auto(void) { return g_threads == 0 && getenv("OMP_NUM_THREADS") == NULL; }

int cnn_threads(void)
{
    int n = max_threads(), cap = g_active > 0 ? g_active : g_auto_cap;
    return cap > 0 && cap < n ? cap : n;
}

/* ------------------------------------------------------------ the tuner */

/* Automatic mode starts at one thread and climbs. A probe runs up to
 * PROBE_BATCHES batches alternating between the count in use and one
 * neighbour on the ladder (double or half), and moves to the neighbour when
 * its median time per image is at least 5% lower. One batch 1.5x faster or
 * slower than the best of the other side decides at once: on a busy
 * machine a two-thread batch can take many times a one-thread one (45x to
 * 95x seen at loads of 10 to 15 on 2 cores), so a probe must stop before it
 * costs more than it can find, and that is also why the climb starts at
 * one. A probe that finds nothing doubles the wait before the next
 * (PROBE_EVERY up to PROBE_EVERY_MAX batches, longer after a far slower
 * trial); a move probes again soon, to keep climbing. */
enum {
    PROBE_BATCHES = 8, PROBE_EVERY = 200, PROBE_EVERY_MAX = 3200, PROBE_AFTER_MOVE = 40,
    FIRST_PROBE = 2
};

static struct {
    long until_probe;           /* batches before the next probe */
    long every;                 /* the wait after a probe that found nothing */
    int probing, step, trial, dir;
    double per_image[2][PROBE_BATCHES / 2]; /* [0]: the count in use, [1]: the trial */
    double started;
    int batch_threads;
} tn;

static void tuner_reset(void)
{
    memset(&tn, 0, sizeof tn);
    tn.until_probe = FIRST_PROBE;
    tn.every = PROBE_EVERY;
    tn.dir = 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double median4(double *v)
{
    /* PROBE_BATCHES / 2 == 4 samples: the mean of the middle two */
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return 0.5 * (v[1] + v[2]);
}

void cnn_threads_batch_begin(void)
{
    tn.batch_threads = g_active = 0;
    if (!is_auto()) return;
    const int n = max_threads();
    if (n < 2) return;
    if (tn.every == 0) tuner_reset(); /* cnn_set_threads was never called */
    if (g_auto_cap < 1 || g_auto_cap > n) g_auto_cap = 1;
    if (!tn.probing && --tn.until_probe <= 0) {
        /* the neighbour in the current direction, else the other one */
        int down = g_auto_cap / 2 >= 1 ? g_auto_cap / 2 : 0;
        int up = g_auto_cap * 2 <= n ? g_auto_cap * 2 : (g_auto_cap < n ? n : 0);
        int trial = tn.dir < 0 ? (down ? down : up) : (up ? up : down);
        if (trial && trial != g_auto_cap) {
            tn.probing = 1;
            tn.step = 0;
            tn.trial = trial;
        } else {
            tn.until_probe = PROBE_EVERY;
        }
    }
    /* probe batches alternate: in use, trial, in use, trial, ... */
    tn.batch_threads = g_active = tn.probing && (tn.step & 1) ? tn.trial : g_auto_cap;
    tn.started = now_seconds();
}

/* End a probe. `slower`: how many times slower the losing side ran; the
 * next probe waits at least 100 times that many batches, so that a probe
 * of a count that runs 95x slower (seen at a load of 15 on 2 cores) costs
 * about 1% of the time between probes. */
static void probe_done(int move, double slower)
{
    tn.probing = 0;
    if (move) {
        tn.dir = tn.trial < g_auto_cap ? -1 : 1;
        g_auto_cap = tn.trial;
        tn.every = PROBE_EVERY;
        tn.until_probe = PROBE_AFTER_MOVE;
    } else {
        tn.dir = -tn.dir; /* look the other way next time */
        tn.until_probe = tn.every;
        if (slower > 1.0 && 100.0 * slower > (double)tn.until_probe)
            tn.until_probe = (long)(100.0 * slower);
        if (tn.every < PROBE_EVERY_MAX) tn.every *= 2;
    }
}

static double least(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

void cnn_threads_batch_end(int images)
{
    cnn_threads_batch_timed(images, now_seconds() - tn.started);
}

void cnn_threads_batch_timed(int images, double seconds)
{
    g_active = 0;
    if (tn.batch_threads == 0 || !tn.probing || images < 1) return;
    const int side = tn.step & 1, i = tn.step / 2;
    const double t = seconds / images;
    tn.per_image[side][i] = t;
    /* steps go in use, trial, in use, ...: after step 0 both sides have a
     * sample whenever this is not the first one */
    if (tn.step > 0) {
        const double other = least(tn.per_image[!side], side ? i + 1 : i);
        if (t > 1.5 * other) { /* the side just run is far slower */
            probe_done(side == 0, t / other);
            return;
        }
        if (1.5 * t < other) {
            probe_done(side == 1, other / t);
            return;
        }
    }
    if (++tn.step < PROBE_BATCHES) return;
    const double in_use = median4(tn.per_image[0]), trial = median4(tn.per_image[1]);
    probe_done(trial < 0.95 * in_use, trial / in_use);
}
