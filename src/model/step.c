/* step.c — the optimizer side of a model: setting it up (with the state a
 * checkpoint brought, if any), and one step over every parameter. */
#include "model/model.h"
#include "train/train.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------- optimizer */

int cnn_model_state_arrays(const cnn_model *m) { return (m->opt_m != NULL) + (m->opt_v != NULL); }

cnn_status cnn_model_reset_state(cnn_model *m, cnn_opt_kind kind)
{
    float **arrays[2] = {&m->opt_m, &m->opt_v};
    const int needed[2] = {cnn_optim_needs_m(kind), cnn_optim_needs_v(kind)};
    for (int i = 0; i < 2; i++) {
        if (!needed[i]) {
            cnn_free(*arrays[i]);
            *arrays[i] = NULL;
            continue;
        }
        if (!*arrays[i]) *arrays[i] = cnn_alloc(sizeof(float) * m->nfloats, "optimizer state");
        if (!*arrays[i]) return CNN_ERR_NOMEM;
        memset(*arrays[i], 0, sizeof(float) * m->nfloats);
    }
    m->step = 0;
    return CNN_OK;
}

cnn_status cnn_model_set_optimizer(cnn_model *m, const cnn_optim_config *c)
{
    if (!(c->lr > 0) || !isfinite(c->lr))
        return cnn_fail(CNN_ERR_ARG, "learning rate must be a positive number, got %g", c->lr);
    if (cnn_model_need_params(m, "cnn_model_set_optimizer")) return CNN_ERR_ARG;
    const int arrays = cnn_optim_needs_m(c->kind) + cnn_optim_needs_v(c->kind);
    cnn_status st = cnn_model_check_need(m, m->max_batch, 1, arrays);
    if (st != CNN_OK) return st;
    /* resume: a checkpoint's state of this kind is already in place */
    const int resume = m->pending_kind == (int)c->kind;
    if (!resume && (st = cnn_model_reset_state(m, c->kind)) != CNN_OK) return st;
    if ((st = cnn_shards_reserve_grads(m)) != CNN_OK) return st;
    m->opt = *c;
    m->lr = c->lr;
    m->has_opt = 1;
    m->pending_kind = -1;
    return CNN_OK;
}

void cnn_model_set_lr(cnn_model *m, float lr) { m->lr = lr; }

enum { STEP_BLOCK = 4096, STEP_PARALLEL_MIN = 32768 };

typedef struct {
    cnn_model *m;
    float scale; /* of the gradients (clipping) */
    int bad;     /* set when an updated weight is NaN or Inf */
} step_job;

/* The update of blocks [b0, b1) of STEP_BLOCK floats */
static void step_blocks(void *ctx, long b0, long b1, int t)
{
    step_job *j = ctx;
    cnn_model *m = j->m;
    const size_t e0 = (size_t)b0 * STEP_BLOCK;
    const size_t e1 = (size_t)b1 * STEP_BLOCK < m->nfloats ? (size_t)b1 * STEP_BLOCK : m->nfloats;
    int bad = 0;
    for (int i = 0; i < m->ntensors; i++) {
        cnn_param *p = m->tensors[i].p;
        const size_t off = (size_t)(p->data - m->params);
        const size_t lo = off > e0 ? off : e0;
        const size_t hi = off + p->size < e1 ? off + p->size : e1;
        if (!p->trainable || lo >= hi) continue;
        cnn_optim_update(&m->opt, m->lr, m->step, j->scale, m->params + lo, m->grads + lo,
                         m->opt_m ? m->opt_m + lo : NULL, m->opt_v ? m->opt_v + lo : NULL,
                         hi - lo);
        bad |= cnn_first_nonfinite(m->params + lo, hi - lo) >= 0;
    }
    if (bad) __atomic_fetch_or(&j->bad, 1, __ATOMIC_RELAXED);
}

cnn_status cnn_model_step(cnn_model *m)
{
    if (!m->has_opt) return cnn_fail(CNN_ERR_ARG, "no optimizer: call cnn_model_set_optimizer first");
    float scale = 1.0f;
    if (m->opt.clip_norm > 0) {
        double sq = 0;
        for (int i = 0; i < m->ntensors; i++) {
            cnn_param *p = m->tensors[i].p;
            if (p->trainable) sq += cnn_grad_sq_norm(p->grad, p->size);
        }
        double norm = sqrt(sq);
        if (norm > m->opt.clip_norm) scale = (float)(m->opt.clip_norm / norm);
    }
    m->step++;
    cnn_model_params_changed(m);
    /* The update is elementwise, so any split over threads gives the same
     * bits. The flat array is cut into blocks of STEP_BLOCK floats, each
     * updating the parts of the tensors it overlaps (params, grads, m and v
     * share offsets), so a model of many small tensors splits evenly too.
     * Below STEP_PARALLEL_MIN floats a fork costs more than it saves. */
    const long blocks = (long)((m->nfloats + STEP_BLOCK - 1) / STEP_BLOCK);
    step_job j = {m, scale, 0};
    cnn_parallel_for(m->nfloats < STEP_PARALLEL_MIN ? 1 : cnn_threads(), blocks, CNN_SPLIT_EVEN,
                     0.0, step_blocks, &j);
    const int bad = j.bad;
    if (bad)
        for (int i = 0; i < m->ntensors; i++) {
            cnn_param *p = m->tensors[i].p;
            if (p->trainable && cnn_first_nonfinite(p->data, p->size) >= 0)
                return cnn_fail(CNN_ERR_NUMERIC,
                                "weights %s became non-finite after optimizer step %ld "
                                "(is the learning rate %g too large?)",
                                m->tensors[i].name, m->step, m->lr);
        }
    return CNN_OK;
}

cnn_status cnn_model_train_batch(cnn_model *m, const float *x, const uint8_t *labels, int n,
                                 cnn_loss loss, cnn_batch_stats *stats)
{
    if (!m->has_opt) return cnn_fail(CNN_ERR_ARG, "no optimizer: call cnn_model_set_optimizer first");
    cnn_threads_batch_begin();
    cnn_status st = cnn_model_compute_grads(m, x, labels, n, loss, stats);
    if (st == CNN_OK) st = cnn_model_step(m);
    cnn_threads_batch_end(st == CNN_OK ? n : 0);
    return st;
}
