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
 * its median time per image is at least 5% lower, or sooner when two of its
 * batches each ran 1.5x faster than the count in use. One trial batch 1.5x
 * slower than the best of the count in use ends the probe at once: on a
 * busy machine a two-thread batch can take many times a one-thread one
 * (45x to 95x seen at loads of 10 to 15 on 2 cores), and that is also why
 * the climb starts at one.
 *
 * What bounds the cost on a busy machine:
 * - a budget: the time trial batches take beyond what the count in use
 *   would have taken is charged, and no probe starts while the charges
 *   exceed PROBE_BUDGET of the time trained, so a trial that ran 12x
 *   slower delays the next probe by about 1100 batches, one that ran 95x
 *   by about 9400;
 * - back-off: a probe that finds nothing doubles the wait before the next
 *   (PROBE_EVERY up to PROBE_EVERY_MAX batches);
 * - the count in use is judged by its probe batches or by its usual time
 *   (the median of its last RECENT batches before the probe), whichever is
 *   lower: on a loaded machine a one-thread batch is now and then
 *   preempted (2.5-7x its time), and a probe whose one-thread batches were
 *   all preempted must not move to two threads;
 * - a move is checked: the first VERIFY_BATCHES batches at the new count
 *   must beat the count left, or the tuner goes back (and charges them),
 *   so a lucky probe costs a few batches, not the PROBE_AFTER_MOVE batches
 *   before the next probe. */
enum {
    PROBE_BATCHES = 8, PROBE_EVERY = 200, PROBE_EVERY_MAX = 3200, PROBE_AFTER_MOVE = 40,
    FIRST_PROBE = 2, VERIFY_BATCHES = 4, RECENT = 4
};
#define PROBE_BUDGET 0.01 /* of the training time */

static struct {
    long until_probe;           /* batches before the next probe */
    long every;                 /* the wait after a probe that found nothing */
    int probing, step, trial, dir;
    double per_image[2][PROBE_BATCHES / 2]; /* [0]: the count in use, [1]: the trial */
    double started;
    int batch_threads;
    double trained, charged;    /* seconds: every timed batch, and the trials' extra */
    int verify, from;           /* after a move: batches left to check, the count left */
    double from_per_image, verify_per_image[VERIFY_BATCHES], verify_extra;
    double recent[RECENT];      /* the last batches at the count in use, per image */
    long nrecent;
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

/* The median of n <= 4 samples (the mean of the middle two when n is even). */
static double median(const double *samples, int n)
{
    double v[4];
    memcpy(v, samples, sizeof(double) * (size_t)n);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n & 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void cnn_threads_batch_begin(void)
{
    tn.batch_threads = g_active = 0;
    if (!is_auto()) return;
    const int n = max_threads();
    if (n < 2) return;
    if (tn.every == 0) tuner_reset(); /* cnn_set_threads was never called */
    if (g_auto_cap < 1 || g_auto_cap > n) g_auto_cap = 1;
    if (tn.until_probe > 0) tn.until_probe--;
    if (!tn.probing && !tn.verify && tn.until_probe <= 0 &&
        tn.charged <= PROBE_BUDGET * tn.trained) {
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

/* A probe that found nothing, or a move that did not hold: wait longer. */
static void back_off(void)
{
    tn.dir = -tn.dir; /* look the other way next time */
    tn.until_probe = tn.every;
    if (tn.every < PROBE_EVERY_MAX) tn.every *= 2;
}

/* End a probe; on a move, `from_per_image` is the time per image of the
 * count left, which the new count must beat. */
static void probe_done(int move, double from_per_image)
{
    tn.probing = 0;
    if (move) {
        tn.dir = tn.trial < g_auto_cap ? -1 : 1;
        tn.from = g_auto_cap;
        tn.from_per_image = from_per_image;
        tn.verify = VERIFY_BATCHES;
        tn.verify_extra = 0;
        g_auto_cap = tn.trial;
        tn.nrecent = 0;
        tn.every = PROBE_EVERY;
        tn.until_probe = PROBE_AFTER_MOVE;
    } else {
        back_off();
    }
}

static double least(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

static double most(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* The first batches after a move: the move holds when their median beats
 * the count left; else the tuner goes back, and what they took beyond that
 * count is charged like a trial's. */
static void verify_batch(int images, double seconds)
{
    const double t = seconds / images;
    if (t > tn.from_per_image) tn.verify_extra += (t - tn.from_per_image) * images;
    tn.verify_per_image[VERIFY_BATCHES - tn.verify] = t;
    if (--tn.verify > 0) return;
    if (median(tn.verify_per_image, VERIFY_BATCHES) < tn.from_per_image) return;
    tn.charged += tn.verify_extra;
    g_auto_cap = tn.from;
    tn.nrecent = 0;
    back_off();
}

void cnn_threads_batch_end(int images)
{
    cnn_threads_batch_timed(images, now_seconds() - tn.started);
}

void cnn_threads_batch_timed(int images, double seconds)
{
    g_active = 0;
    if (tn.batch_threads == 0 || images < 1 || !(seconds >= 0)) return;
    tn.trained += seconds;
    if (tn.verify) {
        verify_batch(images, seconds);
        return;
    }
    const int side = tn.step & 1, i = tn.step / 2;
    const double t = seconds / images;
    if (!tn.probing) {
        /* the last RECENT batches at the count in use: its usual time */
        tn.recent[tn.nrecent++ % RECENT] = t;
        return;
    }
    tn.per_image[side][i] = t;
    if (side == 0) {
        if (++tn.step < PROBE_BATCHES) return;
    } else {
        /* a trial batch: charge what it took beyond the count in use */
        const double least_in_use = least(tn.per_image[0], i + 1);
        if (t > least_in_use) tn.charged += (t - least_in_use) * images;
        if (t > 1.5 * least_in_use) { /* far slower */
            probe_done(0, 0);
            return;
        }
        /* the count in use: its probe batches, or its usual time before the
         * probe if lower (its probe batches may all have been preempted) */
        double in_use = median(tn.per_image[0], i + 1);
        if (tn.nrecent >= RECENT) {
            const double usual = median(tn.recent, RECENT);
            in_use = usual < in_use ? usual : in_use;
        }
        /* two trials, each far faster */
        if (i >= 1 && 1.5 * most(tn.per_image[1], i + 1) < in_use) {
            probe_done(1, in_use);
            return;
        }
        if (++tn.step < PROBE_BATCHES) return;
        const double trial = median(tn.per_image[1], PROBE_BATCHES / 2);
        probe_done(trial < 0.95 * in_use, in_use);
    }
}
