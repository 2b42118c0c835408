/* balance.c — each thread's share of a training batch's work, counted.
 *
 *   bench_balance [--batch N] [--steps S] [--threads 4,8,16] [--reps R] [preset ...]
 *
 * For each preset (models/NAME.txt; default lenet5 and pytorchnet) it
 * times the parts of a training step at one thread (the gradients of a
 * batch, sharded, and the optimizer step), then at each thread count
 * trains S batches with the work counts on (cnn_work_count): every
 * kernel's FLOPs (values for memory-bound loops) go to the thread that ran
 * them, dynamic splits dealt out as on a machine with a core per thread.
 * It prints each thread's share, max/mean, the barriers per batch, and a
 * speed-up predicted from them: the gradients' time at one thread scaled
 * by the largest share, plus the optimizer step (split evenly from 32768
 * parameters, else serial), plus a cost per barrier. A second prediction
 * lets the memory-bound parts (the sum of the shards' gradients, timed
 * here as the same loop on buffers of the model's size, and the step)
 * go at most MEM_SPEEDUP times faster than on one thread, as when a few
 * cores fill the memory bus. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

typedef struct {
    cnn_model *m;
    float *x;
    uint8_t *y;
    int n;
} run;

static int setup(run *r, const char *name, int n, int threads)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s.txt", CNN_SOURCE_DIR, name);
    char *text = read_text(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    cnn_set_threads(threads);
    cnn_status st = cnn_model_from_text(text, name, &r->m);
    free(text);
    if (st == CNN_OK) st = cnn_model_init(r->m, CNN_INIT_HE_NORMAL, 7);
    if (st == CNN_OK) st = cnn_model_set_batch(r->m, n);
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_ADAM);
    oc.lr = 0.001f;
    if (st == CNN_OK) st = cnn_model_set_optimizer(r->m, &oc);
    if (st != CNN_OK) {
        fprintf(stderr, "%s: %s\n", name, cnn_errmsg());
        return -1;
    }
    int c, h, w;
    cnn_model_input_shape(r->m, &c, &h, &w);
    const size_t px = (size_t)c * h * w;
    r->x = malloc(sizeof(float) * px * n);
    r->y = malloc((size_t)n);
    cnn_rng g;
    cnn_rng_seed(&g, 5);
    for (size_t i = 0; i < px * n; i++) r->x[i] = cnn_rng_uniform(&g);
    for (int i = 0; i < n; i++) r->y[i] = (uint8_t)cnn_rng_below(&g, 10);
    r->n = n;
    return 0;
}

static void done(run *r)
{
    cnn_model_free(r->m);
    free(r->x);
    free(r->y);
}

static const cnn_loss kLoss = {CNN_LOSS_XENT, 1.0f};

static int grads(run *r)
{
    cnn_batch_stats s;
    if (cnn_model_compute_grads(r->m, r->x, r->y, r->n, kLoss, &s) != CNN_OK) {
        fprintf(stderr, "%s\n", cnn_errmsg());
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Seconds of the shards' gradient sum at one thread: shards - 1 buffers of
 * nfloats added in order into a first (shard.c's reduce_grads), the median
 * of reps */
static double time_reduce(size_t nfloats, int shards, int reps)
{
    float *b = calloc(nfloats * (size_t)shards, sizeof(float));
    double *t = calloc((size_t)reps, sizeof *t), r;
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        for (size_t e0 = 0; e0 < nfloats; e0 += 1024) {
            const size_t e1 = e0 + 1024 < nfloats ? e0 + 1024 : nfloats;
            for (int s = 1; s < shards; s++)
                for (size_t e = e0; e < e1; e++) b[e] += b[(size_t)s * nfloats + e];
        }
        t[i] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    r = t[reps / 2];
    free(b);
    free(t);
    return r;
}

/* Median seconds of the gradients and of the step, one thread */
static int time_parts(const char *name, int n, int reps, double *t_grads, double *t_step)
{
    run r = {0};
    if (setup(&r, name, n, 1)) return -1;
    double *g = calloc((size_t)reps, sizeof *g), *s = calloc((size_t)reps, sizeof *s);
    for (int i = 0; i < 3; i++)
        if (grads(&r) || cnn_model_step(r.m) != CNN_OK) return -1;
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        if (grads(&r)) return -1;
        double t1 = now();
        cnn_model_step(r.m);
        double t2 = now();
        g[i] = t1 - t0;
        s[i] = t2 - t1;
    }
    qsort(g, (size_t)reps, sizeof *g, cmp_double);
    qsort(s, (size_t)reps, sizeof *s, cmp_double);
    *t_grads = g[reps / 2];
    *t_step = s[reps / 2];
    free(g);
    free(s);
    done(&r);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 64, steps = 4, reps = 21;
    int threads[16] = {4, 8, 16}, nthreads = 3;
    const char *names[16];
    int nnames = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *p = strtok(argv[++i], ","); p && nthreads < 16; p = strtok(NULL, ","))
                threads[nthreads++] = atoi(p);
        } else if (argv[i][0] != '-' && nnames < 16) names[nnames++] = argv[i];
        else {
            fprintf(stderr, "usage: %s [--batch N] [--steps S] [--reps R] [--threads 4,8,16] "
                            "[preset ...]\n", argv[0]);
            return 2;
        }
    }
    if (nnames == 0) {
        names[nnames++] = "lenet5";
        names[nnames++] = "pytorchnet";
    }
    /* what a barrier is assumed to cost on a 16-core machine, and how much
     * faster than one core all cores stream memory */
    const double sync_cost = 2e-6, MEM_SPEEDUP = 4.0;
    for (int k = 0; k < nnames; k++) {
        double tg, ts;
        if (time_parts(names[k], n, reps, &tg, &ts)) return 1;
        double tr;
        {
            run r = {0};
            if (setup(&r, names[k], n, 1)) return 1;
            tr = time_reduce(r.m->nfloats, cnn_shards_for(r.m, n, 1), reps);
            done(&r);
        }
        printf("%s, batch %d: at 1 thread, gradients %.3f ms (of which the shards' sum %.3f ms), "
               "optimizer step %.3f ms (medians of %d)\n", names[k], n, 1e3 * tg, 1e3 * tr,
               1e3 * ts, reps);
        for (int q = 0; q < nthreads; q++) {
            const int T = threads[q];
            run r = {0};
            if (setup(&r, names[k], n, T)) return 1;
            if (grads(&r)) return 1;
            cnn_model_step(r.m);
            cnn_work_count(1);
            for (int s = 0; s < steps; s++)
                if (grads(&r)) return 1;
            double w[CNN_WORK_MAX_THREADS] = {0};
            int used = cnn_work_counts(w, CNN_WORK_MAX_THREADS);
            const long syncs = cnn_work_syncs();
            cnn_work_count(0);
            const int shown = used > T ? used : T;
            double total = 0, max = 0;
            for (int t = 0; t < shown; t++) {
                total += w[t];
                if (w[t] > max) max = w[t];
            }
            const double mean = total / T;
            printf("  %2d threads: shares", T);
            for (int t = 0; t < shown; t++) printf(" %.1f", 100.0 * w[t] / total);
            printf(" %%; max/mean %.3f; %.1f MFLOP a batch; %ld barriers a batch\n", max / mean,
                   total / steps / 1e6, syncs / steps);
            const double step_T = r.m->nfloats >= 32768 ? ts / T : ts;
            const double t_ideal = tg * max / total + step_T;
            const double t_sync = t_ideal + (double)syncs / steps * sync_cost;
            const double mem = T < MEM_SPEEDUP ? T : MEM_SPEEDUP;
            const double t_mem = (tg - tr) * max / total + tr / mem + ts / mem +
                                 (double)syncs / steps * sync_cost;
            printf("              predicted speed-up over 1 thread: %.2fx (%.2fx with %.0f us a "
                   "barrier; %.2fx with the sum and the step at most %.0fx)\n",
                   (tg + ts) / t_ideal, (tg + ts) / t_sync, sync_cost * 1e6, (tg + ts) / t_mem,
                   MEM_SPEEDUP);
            done(&r);
        }
    }
    return 0;
}
