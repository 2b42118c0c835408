/* dropout.c — inverted dropout (torch.nn.Dropout). In train mode each
 * element is kept with probability 1 - p and scaled by 1/(1 - p), so eval
 * mode is the identity. The mask is drawn from the model's RNG serially in
 * element order, so it depends on the seed and never on the thread count. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    cnn_layer base;
    float p;          /* drop probability, [0, 1) */
    float *mask;      /* (max_batch, C, H, W): 0 or 1/(1-p) from the last train forward */
    size_t cap;       /* floats in mask */
    int last_train;   /* mode of the last forward */
} dropout_layer;

/* Why 16-bit slices: one cnn_rng_uniform per element (a serial xoshiro
 * step plus an int-to-float convert) was 7% of a training step
 * (bench/FINDINGS.md F4). One 64-bit draw gives four 16-bit uniforms; an
 * element is kept when its slice is >= round(p * 2^16), so the keep
 * probability is 1 - p to within 2^-17. Still drawn serially in element
 * order: the mask depends on the seed only, never on the thread count. */
static void dropout_draw_mask(dropout_layer *d, size_t total)
{
    const float scale = 1.0f / (1.0f - d->p);
    const uint32_t thresh = (uint32_t)(d->p * 65536.0f + 0.5f);
    float *mk = d->mask;
    size_t i = 0;
    for (; i + 4 <= total; i += 4) {
        uint64_t r = cnn_rng_next(d->base.rng);
        for (int k = 0; k < 4; k++) mk[i + k] = (uint32_t)(r >> (16 * k) & 0xffff) >= thresh ? scale : 0.0f;
    }
    if (i < total) { /* the last 1-3 elements from one more draw */
        uint64_t r = cnn_rng_next(d->base.rng);
        for (int k = 0; i < total; i++, k++) mk[i] = (uint32_t)(r >> (16 * k) & 0xffff) >= thresh ? scale : 0.0f;
    }
}

/* Elements [lo, hi): out = in .* mask. in and out may be the same array
 * (in-place dropout). */
static void dropout_mul_range(const float *in, const float *restrict mk, float *out, size_t lo,
                              size_t hi)
{
#pragma omp simd
    for (size_t i = lo; i < hi; i++) out[i] = in[i] * mk[i];
}

typedef struct {
    const float *in, *mk;
    float *out;
} dropout_job;

static void dropout_mul_slice(void *ctx, long lo, long hi, int t)
{
    const dropout_job *j = ctx;
    dropout_mul_range(j->in, j->mk, j->out, (size_t)lo, (size_t)hi);
}

/* out = in .* mask over total elements, in contiguous slices */
static void dropout_mul(const float *in, const float *restrict mk, float *out, size_t total, int nt)
{
    dropout_job j = {in, mk, out};
    cnn_parallel_for(cnn_threads_for((double)total, nt), (long)total, CNN_SPLIT_EVEN,
                     (double)total, dropout_mul_slice, &j);
}

/* x: (N, C, H, W)   y: (N, C, H, W) = x .* mask (train) or x (eval) */
static void dropout_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    dropout_layer *d = (dropout_layer *)l;
    const size_t total = (size_t)n * cnn_shape_size(l->in);
    d->last_train = train && d->p > 0.0f;
    if (!d->last_train) {
        if (y != x) memmove(y, x, sizeof(float) * total);
        return;
    }
    dropout_draw_mask(d, total);
    if (l->kernels == CNN_KERNELS_REF) {
        for (size_t i = 0; i < total; i++) y[i] = x[i] * d->mask[i];
    } else {
        dropout_mul(x, d->mask, y, total, nt);
    }
}

/* dy: (N, C, H, W)   dx = dy .* mask (train) or dy (eval) */
static void dropout_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                             float *dx, int n, int nt)
{
    dropout_layer *d = (dropout_layer *)l;
    if (!dx) return;
    const size_t total = (size_t)n * cnn_shape_size(l->in);
    if (!d->last_train) {
        if (dx != dy) memmove(dx, dy, sizeof(float) * total);
        return;
    }
    if (l->kernels == CNN_KERNELS_REF) {
        for (size_t i = 0; i < total; i++) dx[i] = dy[i] * d->mask[i];
    } else {
        dropout_mul(dy, d->mask, dx, total, nt);
    }
}

static cnn_status dropout_reserve(cnn_layer *l, int max_batch, int threads)
{
    dropout_layer *d = (dropout_layer *)l;
    size_t need = cnn_mul_size((size_t)(max_batch > 0 ? max_batch : 1), cnn_shape_size(l->in));
    if (need == SIZE_MAX) return cnn_fail(CNN_ERR_NOMEM, "dropout mask: batch too large");
    if (need <= d->cap && d->mask) return CNN_OK;
    float *m = cnn_alloc(cnn_mul_size(need, sizeof(float)), "dropout mask");
    if (!m) return CNN_ERR_NOMEM;
    cnn_free(d->mask);
    d->mask = m;
    d->cap = need;
    return CNN_OK;
}

static size_t dropout_workspace(const cnn_layer *l, int max_batch, int threads)
{
    size_t need = cnn_mul_size((size_t)(max_batch > 0 ? max_batch : 1), cnn_shape_size(l->in));
    return cnn_alloc_charge(cnn_mul_size(need, sizeof(float)));
}

static void dropout_destroy(cnn_layer *l)
{
    dropout_layer *d = (dropout_layer *)l;
    cnn_free(d->mask);
    d->mask = NULL;
    d->cap = 0;
}

static void dropout_detach(cnn_layer *l)
{
    ((dropout_layer *)l)->mask = NULL;
    ((dropout_layer *)l)->cap = 0;
}

static double dropout_flops(const cnn_layer *l) { return (double)cnn_shape_size(l->in); }

static const cnn_layer_ops dropout_ops = {
    .kind = "dropout",
    .torch = "Dropout",
    .reserve = dropout_reserve,
    .workspace = dropout_workspace,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .flops = dropout_flops,
    .destroy = dropout_destroy,
    .detach = dropout_detach,
};

/* dropout P, 0 <= P < 1 */
cnn_status cnn_dropout_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    float p = 0.0f;
    cnn_status st;
    if ((st = cnn_spec_float(s, 1, "a drop probability (0 <= P < 1)", 0.0, 1.0, 1, &p))) return st;
    if (p >= 1.0f)
        return cnn_spec_error(s, "the drop probability must be below 1 (got %g): 1 drops everything",
                              p);
    dropout_layer *d = (dropout_layer *)cnn_layer_new(sizeof(dropout_layer), &dropout_ops, in, in, s);
    if (!d) return CNN_ERR_NOMEM;
    d->p = p;
    snprintf(d->base.desc, sizeof d->base.desc, "dropout %g", p);
    *out = &d->base;
    return CNN_OK;
}
