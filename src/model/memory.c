/* memory.c — what a model needs in memory, counted from its shapes before
 * anything is allocated: parameters and gradients, the optimizer's state,
 * a batch's activations and layer workspaces, and the shard workers; and
 * the check of that need against the memory limit. */
#include "model/model.h"

#include <stdio.h>

size_t cnn_model_largest_activation(const cnn_model *m)
{
    size_t big = cnn_shape_size(m->input);
    for (int i = 0; i < m->nlayers; i++)
        if (cnn_shape_size(m->layers[i]->out) > big) big = cnn_shape_size(m->layers[i]->out);
    return big;
}

size_t cnn_model_batch_need(const cnn_model *m, int max_batch, int threads)
{
    const size_t b = (size_t)(max_batch > 0 ? max_batch : 1), f = sizeof(float);
    size_t total = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const cnn_layer *l = m->layers[i];
        const size_t act = cnn_mul_size(cnn_mul_size(b, cnn_shape_size(l->out)), f);
        total = cnn_add_size(total, cnn_alloc_charge(act));
        if (l->ops->workspace) total = cnn_add_size(total, l->ops->workspace(l, (int)b, threads));
    }
    size_t dbuf = cnn_alloc_charge(cnn_mul_size(cnn_mul_size(b, cnn_model_largest_activation(m)), f));
    total = cnn_add_size(total, cnn_add_size(dbuf, dbuf));
    const size_t targets = cnn_mul_size(b * (size_t)cnn_model_output_size(m), f);
    return cnn_add_size(total, cnn_alloc_charge(targets));
}

typedef struct {
    size_t weights;   /* parameters and gradients */
    size_t optimizer; /* optimizer state */
    size_t batch;     /* activations, gradient buffers, targets, layer workspaces */
    size_t shards;    /* the shard workers and their gradient buffers */
    size_t total;
} mem_need;

/* with_optimizer: set up to train (the shards' gradient buffers);
 * state_arrays: how many arrays of nfloats the optimizer keeps (0 to 2) */
static mem_need need_of(const cnn_model *m, int max_batch, int with_optimizer, int state_arrays,
                        int threads)
{
    mem_need n = {0, 0, 0, 0, 0};
    const size_t one = cnn_alloc_charge(cnn_mul_size(m->nfloats, sizeof(float)));
    if (!m->is_worker) n.weights = cnn_add_size(one, one); /* a worker shares its model's */
    for (int i = 0; i < state_arrays; i++) n.optimizer = cnn_add_size(n.optimizer, one);
    if (max_batch > 0) {
        n.batch = cnn_model_batch_need(m, max_batch, threads);
        if (!m->is_worker) n.shards = cnn_shards_need(m, max_batch, threads, with_optimizer);
    }
    n.total = cnn_add_size(cnn_add_size(n.weights, n.optimizer), cnn_add_size(n.batch, n.shards));
    return n;
}

size_t cnn_model_memory_need(const cnn_model *m, int max_batch, int with_optimizer)
{
    /* the optimizer's state counted at its largest, Adam's two moments */
    return need_of(m, max_batch, with_optimizer, with_optimizer ? 2 : 0, cnn_threads_max()).total;
}

/* CNN_ERR_NOMEM if what the model needs for batches of max_batch (with the
 * optimizer's state or not) does not fit in the memory limit beside what
 * the process holds elsewhere: the whole need, said before anything is
 * allocated. What the model holds now is its need at its current batch,
 * which it gives back (or keeps) on the way. */
cnn_status cnn_model_check_need(const cnn_model *m, int max_batch, int with_optimizer,
                                int state_arrays)
{
    if (m->is_worker) return CNN_OK; /* its model's check counted it */
    mem_need n = need_of(m, max_batch, with_optimizer, state_arrays, cnn_threads_max());
    const int held_threads = m->reserved_threads > 0 ? m->reserved_threads : cnn_threads_max();
    const size_t held =
        need_of(m, m->max_batch, m->has_opt, cnn_model_state_arrays(m), held_threads).total;
    const size_t used = cnn_memory_used(), limit = cnn_memory_limit();
    const size_t elsewhere = used > held ? used - held : 0;
    if (elsewhere <= limit && n.total <= limit - elsewhere) return CNN_OK;
    char t[32], w[32], o[32], b[32], s[32], l[160], opt[64] = "", sh[96] = "", e[64] = "";
    cnn_format_bytes(t, sizeof t, (double)n.total);
    cnn_format_bytes(w, sizeof w, (double)n.weights);
    cnn_format_bytes(o, sizeof o, (double)n.optimizer);
    cnn_format_bytes(b, sizeof b, (double)n.batch);
    cnn_format_bytes(s, sizeof s, (double)n.shards);
    cnn_format_limit(l, sizeof l);
    if (n.optimizer) snprintf(opt, sizeof opt, ", %s of optimizer state", o);
    if (n.shards)
        snprintf(sh, sizeof sh, ", %s to run in shards on %d thread%s", s, cnn_threads_max(),
                 cnn_threads_max() == 1 ? "" : "s");
    if (elsewhere) {
        char u[32];
        cnn_format_bytes(u, sizeof u, (double)elsewhere);
        snprintf(e, sizeof e, ", and %s of it is in use elsewhere", u);
    }
    char what[64];
    if (max_batch < 1) snprintf(what, sizeof what, "this model");
    else if (with_optimizer) snprintf(what, sizeof what, "training at batch %d, this model", max_batch);
    else snprintf(what, sizeof what, "batch %d of this model", max_batch);
    if (max_batch < 1)
        return cnn_fail(CNN_ERR_NOMEM,
                        "%s needs %s (%s of parameters and gradients%s); the memory limit is %s%s",
                        what, t, w, opt, l, e);
    return cnn_fail(CNN_ERR_NOMEM,
                    "%s needs %s (%s of parameters and gradients%s, %s of activations and layer "
                    "workspaces%s); the memory limit is %s%s",
                    what, t, w, opt, b, sh, l, e);
}
