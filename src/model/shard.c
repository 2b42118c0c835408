/* shard.c — data parallelism over the batch.
 *
 * Layer by layer, a small network gives each thread too little work: a
 * LeNet-5 layer at batch 64 is tens of microseconds, and every layer that
 * runs on two threads pays a fork and a barrier (bench/RESULTS.md measured 2
 * threads at 0.89x of 1 for simplecnn). So a batch is cut into shards of
 * about CNN_SHARD images and each thread takes whole shards through every
 * layer (forward, loss, backward) on its own worker: a copy of the model
 * that shares this model's parameters but has its own activations, layer
 * scratch and RNG. The only synchronisation is the end of the batch.
 *
 * More threads than shards. The threads form one group per shard running
 * at a time (cnn_parallel_groups: min(shards, threads) groups of
 * threads / groups), and a group's worker runs its kernels on the group's
 * threads, which split a layer over images, filters, output rows or GEMM
 * panels. No kernel's sums depend on its thread count, so this changes
 * no bits either. Worker g serves group g, whose size is at most
 * threads / (g + 1): it is set up for that many.
 *
 * Determinism. The shard count and boundaries depend on the batch size
 * only. Shard s writes its parameter gradients into a buffer of its own
 * (shard 0 straight into the model's gradients), and the buffers are added
 * in shard order, element by element; each shard draws its dropout masks
 * from a seed taken from the model's RNG in shard order. So whichever
 * thread runs a shard, and however many threads there are, a batch gives
 * the same bits. The loss rows of a shard are divided by the whole batch's
 * size (cnn_loss_rows), so its gradient rows are those of the whole batch.
 *
 * When. Only the fast kernels (the reference path stays the seed's serial
 * loops), and only for batches of at least two shards.
 *
 * Batchnorm. A layer that mixes a batch's images (batchnorm's statistics)
 * needs every shard's partial sums before any shard goes past it, so a
 * batch-coupled model trains layer by layer instead (cnn_shards_forward_
 * layers, cnn_shards_backward_layers): a round takes every shard through
 * the layers up to the next batchnorm and through that layer's per-image
 * sums, then one thread adds the sums in image order (the batch's mean,
 * variance, or in backward the sums of dy and dy * x_hat) and the next
 * round goes on. The activations stay in the model's whole-batch buffers;
 * shard s runs on worker s, which keeps its max-pool indices and dropout
 * masks from forward to backward. The statistics are those of a whole
 * batch, bit for bit (batchnorm.c), and the running statistics move once.
 * Training uses at most MAX_TRAIN_SHARDS gradient buffers, so a very large
 * batch gets larger shards; inference keeps shards of CNN_SHARD. The
 * gradient buffers (up to 15 copies of the model's size) are made for
 * training only: by cnn_model_set_optimizer, or by the first gradient
 * computation of a model without one; a model that only evaluates never
 * holds them.
 */
#include "dist/dist.h"
#include "model/model.h"
#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRAIN_SHARDS 16

/* A worker's first failure in a batch (cnn_fail's message is per thread). */
struct cnn_shard_error {
    int shard;             /* -1: none */
    cnn_status st;
    char msg[1024];
};

int cnn_shards_coupled(const cnn_model *m)
{
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->ops->batch_coupled) return 1;
    return 0;
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

int cnn_shards_for(const cnn_model *m, int n, int grad)
{
    if (m->shards.nworkers < 1 || m->kernels != CNN_KERNELS_FAST || n < 2 * CNN_SHARD) return 1;
    int s = ceil_div(n, CNN_SHARD);
    if (grad && s > MAX_TRAIN_SHARDS) s = MAX_TRAIN_SHARDS;
    return s;
}

/* The most images a shard of any batch up to max_batch can hold. */
static int largest_shard(int max_batch)
{
    int s = ceil_div(max_batch, MAX_TRAIN_SHARDS);
    return s > CNN_SHARD ? s : CNN_SHARD;
}

void cnn_shards_free(cnn_model *m)
{
    cnn_shards *sh = &m->shards;
    for (int i = 0; i < sh->nworkers; i++) cnn_model_free(sh->workers[i]);
    free(sh->workers);
    free(sh->err);
    cnn_free(sh->grads);
    free(sh->loss);
    free(sh->seed);
    memset(sh, 0, sizeof *sh);
}

/* How many shards a training batch of up to max_batch may run as: each
 * beyond the first needs a gradient buffer of its own. */
static int train_shards_for(const cnn_model *m, int max_batch)
{
    int max_shards = ceil_div(max_batch, CNN_SHARD);
    if (max_batch < 2 * CNN_SHARD) return 1;
    return max_shards < MAX_TRAIN_SHARDS ? max_shards : MAX_TRAIN_SHARDS;
}

/* Workers for batches of up to max_batch on `threads` threads: one per
 * group, and there are never more groups than shards; a batch-coupled
 * model's training keeps every shard's state from layer to layer, so it
 * has one per training shard */
static int workers_for(const cnn_model *m, int max_batch, int threads)
{
    const int max_shards = ceil_div(max_batch, CNN_SHARD);
    const int groups = threads < max_shards ? threads : max_shards;
    const int train = cnn_shards_coupled(m) ? train_shards_for(m, max_batch) : 0;
    return groups > train ? groups : train;
}

/* The most threads group g can have: threads / groups, with at least g + 1
 * groups */
static int group_threads(int threads, int g)
{
    const int k = threads / (g + 1);
    return k > 1 ? k : 1;
}

static size_t shard_grads_bytes(const cnn_model *m, int train_shards)
{
    return cnn_mul_size(cnn_mul_size((size_t)train_shards - 1, m->nfloats), sizeof(float));
}

size_t cnn_shards_need(const cnn_model *m, int max_batch, int threads, int with_grads)
{
    if (max_batch < 2 * CNN_SHARD) return 0; /* never sharded */
    if (threads < 1) threads = 1;
    const int train_shards = train_shards_for(m, max_batch);
    size_t total = 0;
    if (with_grads && train_shards > 1) total = cnn_alloc_charge(shard_grads_bytes(m, train_shards));
    size_t workers = 0;
    for (int g = 0; g < workers_for(m, max_batch, threads); g++) {
        size_t w = cnn_model_batch_need(m, largest_shard(max_batch), group_threads(threads, g));
        workers = cnn_add_size(workers, w);
    }
    return cnn_add_size(total, workers);
}

cnn_status cnn_model_share(const cnn_model *m, cnn_model **out)
{
    *out = NULL;
    cnn_model *w = calloc(1, sizeof *w);
    if (!w) return cnn_fail(CNN_ERR_NOMEM, "out of memory for a shard worker");
    w->input = m->input;
    w->kernels = CNN_KERNELS_FAST;
    w->pending_kind = -1;
    w->is_worker = 1;
    w->nfloats = m->nfloats; /* its layers read m's parameter version too */
    w->layers = calloc((size_t)m->nlayers, sizeof *w->layers);
    w->tensors = calloc((size_t)m->ntensors + 1, sizeof *w->tensors);
    if (!w->layers || !w->tensors) {
        cnn_model_free(w);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory for a shard worker");
    }
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = cnn_layer_clone(m->layers[i]);
        if (!l) {
            cnn_model_free(w);
            return CNN_ERR_NOMEM;
        }
        l->rng = &w->rng;
        l->kernels = CNN_KERNELS_FAST;
        w->layers[w->nlayers++] = l;
    }
    /* the same table, each entry the same param of the copied layer */
    for (int i = 0; i < m->ntensors; i++) {
        const cnn_named_param *t = &m->tensors[i];
        w->tensors[i] = *t;
        w->tensors[i].p = &w->layers[t->layer]->params[t->p - m->layers[t->layer]->params];
    }
    w->ntensors = m->ntensors;
    *out = w;
    return CNN_OK;
}

/* A worker: a copy of m sharing its parameters, set up for shards of up
 * to `batch` images on up to `threads` threads. */
static cnn_status new_worker(cnn_model *m, int batch, int threads, cnn_model **out)
{
    cnn_model *w;
    cnn_status st = cnn_model_share(m, &w);
    if (st != CNN_OK) return st;
    w->worker_threads = threads;
    st = cnn_model_set_batch(w, batch);
    if (st != CNN_OK) {
        cnn_model_free(w);
        return st;
    }
    *out = w;
    return CNN_OK;
}

cnn_status cnn_shards_reserve(cnn_model *m)
{
    const int threads = m->reserved_threads > 0 ? m->reserved_threads : 1;
    cnn_shards_free(m);
    if (m->max_batch < 2 * CNN_SHARD) return CNN_OK; /* never sharded */

    int max_shards = ceil_div(m->max_batch, CNN_SHARD);
    const int nworkers = workers_for(m, m->max_batch, threads);
    m->shards.workers = calloc((size_t)nworkers, sizeof *m->shards.workers);
    m->shards.err = calloc((size_t)nworkers, sizeof *m->shards.err);
    m->shards.loss = calloc((size_t)max_shards, sizeof *m->shards.loss);
    m->shards.seed = calloc((size_t)max_shards, sizeof *m->shards.seed);
    if (!m->shards.workers || !m->shards.err || !m->shards.loss || !m->shards.seed) {
        cnn_shards_free(m);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory for the per-thread workers");
    }
    for (int g = 0; g < nworkers; g++) {
        cnn_status st = new_worker(m, largest_shard(m->max_batch), group_threads(threads, g),
                                   &m->shards.workers[g]);
        if (st != CNN_OK) {
            m->shards.nworkers = g;
            cnn_shards_free(m);
            return cnn_fail_prefix(st, "worker for thread group %d", g);
        }
    }
    m->shards.nworkers = nworkers;
    m->shards.threads = threads;
    m->shards.worker_batch = largest_shard(m->max_batch);
    m->shards.grad_slots = 1;
    m->shards.max_shards = max_shards;
    return m->has_opt ? cnn_shards_reserve_grads(m) : CNN_OK;
}

cnn_status cnn_shards_reserve_grads(cnn_model *m)
{
    if (m->shards.nworkers < 1 || m->shards.grads) return CNN_OK;
    const int train_shards = train_shards_for(m, m->max_batch);
    if (train_shards < 2) return CNN_OK;
    m->shards.grads = cnn_alloc(shard_grads_bytes(m, train_shards), "per-shard gradients");
    if (!m->shards.grads) return CNN_ERR_NOMEM;
    m->shards.grad_slots = train_shards;
    return CNN_OK;
}

/* Where shard s's gradients go: shard 0 into the model's own, the others
 * into their slot of shard_grads, at the same offsets. */
static void point_grads(cnn_model *m, cnn_model *w, int s)
{
    float *base = s == 0 ? m->grads : m->shards.grads + (size_t)(s - 1) * m->nfloats;
    for (int i = 0; i < m->ntensors; i++) {
        const cnn_param *p = m->tensors[i].p;
        w->tensors[i].p->grad = p->grad ? base + (p->grad - m->grads) : NULL;
    }
}

typedef struct {
    const float *x;
    int n, shards, train, grad;
    const cnn_loss_plan *plan; /* NULL: forward only */
} shard_job;

/* Shard s of the batch, start to end on worker w, its kernels on up to nt
 * threads (the calling thread's group). */
static void run_shard(cnn_model *m, cnn_model *w, struct cnn_shard_error *err,
                      const shard_job *job, int s, int nt)
{
    const int i0 = (int)((long)s * job->n / job->shards);
    const int ns = (int)((long)(s + 1) * job->n / job->shards) - i0;
    const int k = cnn_model_output_size(m), L = m->nlayers;
    const cnn_loss_plan *plan = job->plan;
    const int li = plan ? plan->act : L;
    cnn_status st = CNN_OK;

    if (job->grad) point_grads(m, w, s);
    if (job->train) cnn_rng_seed(&w->rng, m->shards.seed[s]);
    cnn_model_run_forward(w, job->x + (size_t)i0 * cnn_shape_size(m->input), ns, job->train, nt);
    /* the rows the caller reads: outputs, and the scores if the loss reads
     * those (act[0], the input itself, is the caller's already) */
    memcpy(m->act[L] + (size_t)i0 * k, w->act[L], sizeof(float) * (size_t)ns * k);
    if (li != L && li > 0)
        memcpy(m->act[li] + (size_t)i0 * k, w->act[li], sizeof(float) * (size_t)ns * k);
    if (plan) {
        double t = cnn_loss_rows(plan->loss, plan->probs, cnn_model_act(w, li),
                                 m->target + (size_t)i0 * k, ns, k, job->n,
                                 job->grad ? w->dbuf[0] : NULL);
        m->shards.loss[s] = t;
        if (!isfinite(t)) st = cnn_model_numeric_fault(w, ns, "the loss");
        else if (job->grad && (st = cnn_model_check_activations(w, ns)) == CNN_OK)
            st = cnn_model_run_backward(w, plan->start, ns, nt);
        /* the loss, on this thread (the scans count themselves) */
        cnn_work_add((double)ns * k);
    }
    /* shards reach a thread in increasing order: keep its first failure */
    if (st != CNN_OK && err->shard < 0) {
        err->shard = s;
        err->st = st;
        strncpy(err->msg, cnn_errmsg(), sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = '\0';
    }
}

cnn_status cnn_shards_image_fault(cnn_model *m, const float *x, int n, int shards, int row)
{
    /* the shard holding `row`, by the same boundaries as run_shard */
    int s = 0;
    while ((long)(s + 1) * n / shards <= row) s++;
    const int i0 = (int)((long)s * n / shards);
    const int ns = (int)((long)(s + 1) * n / shards) - i0;
    int lo, hi;
    const int dist = cnn_dist_shard_range(shards, &lo, &hi);
    char msg[1024] = "";
    if (s >= lo && s < hi) { /* this rank prepared the shard's input rows */
        cnn_model *w = m->shards.workers[0];
        cnn_model_run_forward(w, x + (size_t)i0 * cnn_shape_size(m->input), ns, 0, 1);
        cnn_model_image_fault(w, row - i0, row);
        snprintf(msg, sizeof msg, "%s", cnn_errmsg());
    }
    if (dist) cnn_dist_share_text(s, shards, msg, sizeof msg);
    return cnn_fail(CNN_ERR_NUMERIC, "%s", msg);
}

void cnn_shards_rows(const cnn_model *m, int n, int train, const cnn_loss *loss, int *first,
                     int *count)
{
    *first = 0;
    *count = n;
    const int shards = cnn_shards_for(m, n, train);
    /* whole batches (too small to shard, batchnorm's training rounds) and
     * an evaluation whose loss reads the input itself read every row */
    if (shards < 2 || (train && cnn_shards_coupled(m))) return;
    cnn_loss_plan plan;
    if (!train && loss && (cnn_model_loss_plan(m, *loss, &plan) != CNN_OK || plan.act == 0)) return;
    int lo, hi;
    if (!cnn_dist_shard_range(shards, &lo, &hi)) return;
    *first = (int)((long)lo * n / shards);
    *count = (int)((long)hi * n / shards) - *first;
}

/* grads[e] = shard 0's + shard 1's + ... in shard order, for e in [e0, e1) */
static void reduce_grads(cnn_model *m, int shards, size_t e0, size_t e1)
{
    float *restrict g = m->grads;
    for (int s = 1; s < shards; s++) {
        const float *restrict p = m->shards.grads + (size_t)(s - 1) * m->nfloats;
#pragma omp simd
        for (size_t e = e0; e < e1; e++) g[e] += p[e];
    }
}

typedef struct {
    cnn_model *m;
    const shard_job *job;
    int lo; /* the first shard this rank runs (0 without MPI) */
    size_t e0, e1; /* the gradient floats this rank sums (all without MPI) */
} shards_job;

/* shard lo + i on group g's worker and threads */
static void run_group_shard(void *ctx, long i, int g, int size)
{
    const shards_job *j = ctx;
    run_shard(j->m, j->m->shards.workers[g], &j->m->shards.err[g], j->job, (int)(j->lo + i), size);
}

/* the shards' gradients summed into the model's, blocks [b0, b1) of 1024
 * floats from j->e0 up to j->e1, one block at a time (it stays in cache
 * across the shards) */
static void reduce_blocks(void *ctx, long b0, long b1, int t)
{
    const shards_job *j = ctx;
    for (long b = b0; b < b1; b++) {
        const size_t e0 = j->e0 + (size_t)b * 1024, e1 = e0 + 1024 < j->e1 ? e0 + 1024 : j->e1;
        reduce_grads(j->m, j->job->shards, e0, e1);
    }
}

cnn_status cnn_shards_run(cnn_model *m, const float *x, int n, int shards, int train,
                          const cnn_loss_plan *plan, int grad, double *total)
{
    if (shards > m->shards.max_shards || (grad && shards > m->shards.grad_slots))
        return cnn_fail(CNN_ERR_ARG, "internal: %d shards for a batch of %d", shards, n);
    const shard_job job = {x, n, shards, train, grad && plan, plan};
    if (train)
        for (int s = 0; s < shards; s++) m->shards.seed[s] = cnn_rng_next(&m->rng);
    for (int t = 0; t < m->shards.nworkers; t++) m->shards.err[t].shard = -1;

    /* under MPI this rank runs shards [lo, hi) of the batch (src/dist);
     * shards to whichever thread is free, then the gradients summed in
     * 1024-float blocks (each cache line summed by one thread) */
    int lo, hi;
    const int dist = cnn_dist_shard_range(shards, &lo, &hi);
    int nt = cnn_threads();
    if (nt > m->shards.threads) nt = m->shards.threads;
    shards_job j = {m, &job, lo, 0, m->nfloats};
    cnn_parallel_groups(nt, hi - lo, run_group_shard, &j);

    const struct cnn_shard_error *first = NULL;
    for (int t = 0; t < m->shards.nworkers; t++)
        if (m->shards.err[t].shard >= 0 && (!first || m->shards.err[t].shard < first->shard))
            first = &m->shards.err[t];
    if (dist) {
        /* every shard's results on every rank, then the same ordered sum */
        cnn_status st = cnn_dist_exchange(m, n, shards, job.grad, plan ? plan->act : m->nlayers,
                                          first ? first->shard : -1, first ? first->st : CNN_OK,
                                          first ? first->msg : "");
        if (st != CNN_OK) return st;
        first = NULL;
    }
    if (job.grad) {
        /* under MPI each rank sums its slice, then the slices go round */
        if (dist) cnn_dist_grad_slice(m, &j.e0, &j.e1);
        const size_t nsum = j.e1 - j.e0;
        cnn_parallel_for(nt, (long)((nsum + 1023) / 1024), CNN_SPLIT_EVEN,
                         (double)nsum * (shards - 1), reduce_blocks, &j);
        if (dist) cnn_dist_share_sums(m);
    }
    if (first) return cnn_fail(first->st, "%s", first->msg);
    if (total) {
        double sum = 0.0;
        for (int s = 0; s < shards; s++) sum += m->shards.loss[s];
        *total = sum;
    }
    return CNN_OK;
}

/* ------------------------------------- batch-coupled models, layer by layer */

/* Values per image of act[i] (i = 0: the input) */
static size_t act_size(const cnn_model *m, int i)
{
    return cnn_shape_size(i == 0 ? m->input : m->layers[i - 1]->out);
}

/* One round over every shard: first batchnorm `head`'s apply (its
 * statistics are set), then layers [a, b) (downwards in backward: b..a+1
 * ... as listed by the round), then batchnorm `tail`'s sums (-1: none). */
typedef struct {
    cnn_model *m;
    int n, shards, train;
    int head, a, b, tail, pass;
    int start; /* backward: the top layer; dbuf[(start - i) & 1] holds dL/d(out of layer i) */
    size_t big; /* backward: values per image of the largest activation */
    int *bad;   /* the scan: set when a shard's activations hold a NaN/Inf */
} layers_job;

static int is_bn(const cnn_model *m, int i) { return m->layers[i]->ops->batch_coupled; }

static void shard_rows(const layers_job *j, long s, int *i0, int *ns)
{
    *i0 = (int)(s * j->n / j->shards);
    *ns = (int)((s + 1) * j->n / j->shards) - *i0;
}

/* shard s's part of a forward round, on group g's threads */
static void forward_round(void *ctx, long s, int g, int size)
{
    const layers_job *j = ctx;
    cnn_model *m = j->m, *w = m->shards.workers[s];
    int i0, ns;
    shard_rows(j, s, &i0, &ns);
    if (j->head >= 0)
        cnn_batchnorm_apply(m->layers[j->head], cnn_model_act(m, j->head), NULL,
                            m->act[j->head + 1], i0, i0 + ns, size);
    for (int i = j->a; i < j->b; i++) {
        cnn_layer *l = w->layers[i];
        l->ops->forward(l, cnn_model_act(m, i) + (size_t)i0 * act_size(m, i),
                        m->act[i + 1] + (size_t)i0 * act_size(m, i + 1), ns, j->train, size);
    }
    if (j->tail >= 0)
        cnn_batchnorm_sums(m->layers[j->tail], cnn_model_act(m, j->tail), NULL, i0, i0 + ns,
                           j->pass, size);
}

static int layers_threads(const cnn_model *m)
{
    const int nt = cnn_threads();
    return nt < m->shards.threads ? nt : m->shards.threads;
}

void cnn_shards_forward_layers(cnn_model *m, const float *x, int n, int shards, int train)
{
    const int L = m->nlayers, nt = layers_threads(m);
    m->last_x = x;
    /* each shard's dropout masks from a seed of its own, as in cnn_shards_run */
    if (train)
        for (int s = 0; s < shards; s++) cnn_rng_seed(&m->shards.workers[s]->rng, cnn_rng_next(&m->rng));
    layers_job j = {.m = m, .n = n, .shards = shards, .train = train};
    int summed = -1; /* the batchnorm whose pass-0 sums the last round made */
    for (int a = 0; a < L;) {
        const int bn = train && is_bn(m, a);
        if (bn) {
            if (summed != a) {
                j.head = -1, j.a = j.b = a, j.tail = a, j.pass = 0;
                cnn_parallel_groups(nt, shards, forward_round, &j);
            }
            cnn_batchnorm_combine(m->layers[a], n, 0);
            j.head = -1, j.a = j.b = a, j.tail = a, j.pass = 1;
            cnn_parallel_groups(nt, shards, forward_round, &j);
            cnn_batchnorm_combine(m->layers[a], n, 1);
        }
        int b = a + bn;
        while (b < L && !(train && is_bn(m, b))) b++;
        j.head = bn ? a : -1, j.a = a + bn, j.b = b, j.tail = b < L ? b : -1, j.pass = 0;
        cnn_parallel_groups(nt, shards, forward_round, &j);
        summed = b;
        a = b;
    }
}

/* shard s's rows of every activation, scanned for NaN/Inf */
static void scan_round(void *ctx, long s, int g, int size)
{
    const layers_job *j = ctx;
    int i0, ns;
    shard_rows(j, s, &i0, &ns);
    int bad = 0;
    for (int i = 1; i <= j->m->nlayers && !bad; i++) {
        const size_t v = act_size(j->m, i);
        cnn_work_add((double)ns * v);
        bad = cnn_first_nonfinite(j->m->act[i] + (size_t)i0 * v, (size_t)ns * v) >= 0;
    }
    if (bad) __atomic_store_n(j->bad, 1, __ATOMIC_RELAXED);
}

cnn_status cnn_shards_check_layers(cnn_model *m, int n, int shards)
{
    int bad = 0;
    layers_job j = {.m = m, .n = n, .shards = shards, .bad = &bad};
    cnn_parallel_groups(layers_threads(m), shards, scan_round, &j);
    /* a fault: the whole batch's scan names the first layer */
    return bad ? cnn_model_check_activations(m, n) : CNN_OK;
}

/* dL/d(out of layer i) for the shard whose first image is i0. In
 * backward a round takes each shard through several layers, so a shard
 * keeps its rows of the ping-pong buffers at i0 * big whatever the layer's
 * size: at the layer's own stride, shards would write over the rows that
 * others have yet to read. */
static float *grad_out(const layers_job *j, int i, int i0)
{
    return j->m->dbuf[(j->start - i) & 1] + (size_t)i0 * j->big;
}

/* The same rows as a whole-batch pointer for batchnorm's steps, which
 * index image i at i * size */
static float *grad_out_batch(const layers_job *j, int i, int i0)
{
    return j->m->dbuf[(j->start - i) & 1] + (size_t)i0 * (j->big - act_size(j->m, i + 1));
}

/* shard s's part of a backward round: batchnorm head's dx, then layers
 * j->b - 1 down to j->a, then batchnorm tail's sums */
static void backward_round(void *ctx, long s, int g, int size)
{
    const layers_job *j = ctx;
    cnn_model *m = j->m, *w = m->shards.workers[s];
    int i0, ns;
    shard_rows(j, s, &i0, &ns);
    if (j->head > 0)
        cnn_batchnorm_apply(m->layers[j->head], cnn_model_act(m, j->head),
                            grad_out_batch(j, j->head, i0), grad_out_batch(j, j->head - 1, i0), i0,
                            i0 + ns, size);
    for (int i = j->b - 1; i >= j->a; i--) {
        cnn_layer *l = w->layers[i];
        float *dx = i > 0 ? grad_out(j, i - 1, i0) : NULL;
        l->ops->backward(l, cnn_model_act(m, i) + (size_t)i0 * act_size(m, i),
                         m->act[i + 1] + (size_t)i0 * act_size(m, i + 1), grad_out(j, i, i0), dx,
                         ns, size);
    }
    if (j->tail >= 0)
        cnn_batchnorm_sums(m->layers[j->tail], cnn_model_act(m, j->tail),
                           grad_out_batch(j, j->tail, i0), i0, i0 + ns, 2, size);
}

cnn_status cnn_shards_backward_layers(cnn_model *m, int start, int n, int shards)
{
    const int nt = layers_threads(m);
    if (shards > m->shards.grad_slots)
        return cnn_fail(CNN_ERR_ARG, "internal: %d shards for a batch of %d", shards, n);
    for (int s = 0; s < shards; s++) point_grads(m, m->shards.workers[s], s);
    layers_job j = {.m = m, .n = n, .shards = shards, .train = 1, .start = start};
    const size_t big = cnn_model_largest_activation(m);
    j.big = big;
    /* the loss's rows (the whole batch's, at their own stride) to where
     * each shard keeps them, the last shard first: no row is overwritten
     * before it moves */
    const size_t top = act_size(m, start + 1);
    for (int s = shards - 1; s > 0; s--) {
        int i0, ns;
        shard_rows(&j, s, &i0, &ns);
        memmove(m->dbuf[0] + (size_t)i0 * big, m->dbuf[0] + (size_t)i0 * top,
                sizeof(float) * (size_t)ns * top);
    }
    int summed = -1;
    for (int hi = start; hi >= 0;) {
        const int bn = is_bn(m, hi);
        if (bn) {
            if (summed != hi) {
                j.head = -1, j.a = j.b = hi, j.tail = hi;
                cnn_parallel_groups(nt, shards, backward_round, &j);
            }
            cnn_batchnorm_combine(m->layers[hi], n, 2);
        }
        int lo = hi - bn;
        while (lo >= 0 && !is_bn(m, lo)) lo--;
        j.head = bn ? hi : -1, j.a = lo + 1, j.b = hi + 1 - bn, j.tail = lo;
        cnn_parallel_groups(nt, shards, backward_round, &j);
        summed = lo;
        hi = lo;
    }
    /* a batchnorm's gradients are the whole batch's, in shard 0's (the
     * model's own); the other shards add nothing to them */
    for (int s = 1; s < shards; s++)
        for (int i = 0; i < m->ntensors; i++) {
            const cnn_param *p = m->tensors[i].p;
            if (p->grad && is_bn(m, m->tensors[i].layer))
                memset(m->shards.grads + (size_t)(s - 1) * m->nfloats + (p->grad - m->grads), 0,
                       sizeof(float) * p->size);
        }
    const shard_job job = {.n = n, .shards = shards, .grad = 1};
    shards_job sj = {m, &job, 0, 0, m->nfloats};
    cnn_parallel_for(nt, (long)((m->nfloats + 1023) / 1024), CNN_SPLIT_EVEN,
                     (double)m->nfloats * (shards - 1), reduce_blocks, &sj);
    for (int i = start; i >= 0; i--) {
        const cnn_layer *l = m->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            const cnn_param *p = &l->params[k];
            if (p->trainable) cnn_work_add((double)p->size);
            if (p->trainable && cnn_first_nonfinite(p->grad, p->size) >= 0)
                return cnn_fail(CNN_ERR_NUMERIC,
                                "non-finite gradient (NaN or Inf) for %d.%s in layer %d (%s, line %d)",
                                i, p->name, i, l->desc, l->line);
        }
    }
    return CNN_OK;
}
