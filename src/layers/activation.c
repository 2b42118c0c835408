/* activation.c — elementwise activations (relu, leaky_relu, sigmoid, tanh)
 * and softmax over each image's features. The output shape is the input's.
 *
 * Reference kernels are the plain scalar loops. Fast kernels compute the
 * same formulas written so the compiler vectorises them (no branches in the
 * loop body) and run on several threads only when the batch is large enough
 * to pay for them (CNN_PARALLEL_MIN_FLOPS). Each element (and each softmax
 * row) is computed by one thread in a fixed order, so the thread count
 * never changes a bit. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { ACT_RELU, ACT_LEAKY, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX } act_kind;

typedef struct {
    cnn_layer base;
    act_kind kind;
    float alpha; /* leaky_relu's slope for x < 0 */
} act_layer;

/* ------------------------------------------------- reference kernels */

/* x: (N, C, H, W)   y: (N, C, H, W) */
static void act_forward_ref(const act_layer *a, const float *x, float *y, size_t total)
{
    for (size_t i = 0; i < total; i++) {
        float v = x[i];
        switch (a->kind) {
        case ACT_RELU: y[i] = v > 0.0f ? v : 0.0f; break;
        case ACT_LEAKY: y[i] = v > 0.0f ? v : a->alpha * v; break;
        case ACT_SIGMOID: y[i] = 1.0f / (1.0f + expf(-v)); break;
        case ACT_TANH: y[i] = tanhf(v); break;
        default: break;
        }
    }
}

/* dy: (N, C, H, W)   dx: (N, C, H, W); relu/leaky use x, sigmoid/tanh use y */
static void act_backward_ref(const act_layer *a, const float *x, const float *y, const float *dy,
                             float *dx, size_t total)
{
    for (size_t i = 0; i < total; i++) {
        switch (a->kind) {
        case ACT_RELU: dx[i] = x[i] > 0.0f ? dy[i] : 0.0f; break;
        case ACT_LEAKY: dx[i] = x[i] > 0.0f ? dy[i] : a->alpha * dy[i]; break;
        case ACT_SIGMOID: dx[i] = dy[i] * y[i] * (1.0f - y[i]); break;
        case ACT_TANH: dx[i] = dy[i] * (1.0f - y[i] * y[i]); break;
        default: break;
        }
    }
}

/* x: (N, F)   y: (N, F), F = C*H*W; each row's max is subtracted first so
 * logits of +-1e4 neither overflow nor lose the answer. */
static void softmax_forward_ref(const float *x, float *y, int n, int f)
{
    for (int s = 0; s < n; s++) {
        const float *xr = x + (size_t)s * f;
        float *yr = y + (size_t)s * f;
        float mx = xr[0];
        for (int j = 1; j < f; j++)
            if (xr[j] > mx) mx = xr[j];
        float sum = 0.0f;
        for (int j = 0; j < f; j++) {
            yr[j] = expf(xr[j] - mx);
            sum += yr[j];
        }
        for (int j = 0; j < f; j++) yr[j] /= sum;
    }
}

/* dy: (N, F)   dx: (N, F); the Jacobian-vector product
 * dx = y .* (dy - sum(dy .* y)) */
static void softmax_backward_ref(const float *y, const float *dy, float *dx, int n, int f)
{
    for (int s = 0; s < n; s++) {
        const float *yr = y + (size_t)s * f, *gr = dy + (size_t)s * f;
        float dot = 0.0f;
        for (int j = 0; j < f; j++) dot += gr[j] * yr[j];
        for (int j = 0; j < f; j++) dx[(size_t)s * f + j] = yr[j] * (gr[j] - dot);
    }
}

/* ------------------------------------------------------ fast kernels */

/* Elements [lo, hi) of x: (N, C, H, W)   y: (N, C, H, W) */
static void act_forward_range(const act_layer *a, const float *restrict x, float *restrict y,
                              size_t lo, size_t hi)
{
    const float alpha = a->alpha;
    switch (a->kind) {
    case ACT_RELU: /* not fmaxf: GCC calls libm's fmaxf per element instead of vectorising */
#pragma omp simd
        for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ACT_LEAKY:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
        break;
    case ACT_SIGMOID:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case ACT_TANH:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) y[i] = tanhf(x[i]);
        break;
    default: break;
    }
}

/* Elements [lo, hi) of dy: (N, C, H, W)   dx: (N, C, H, W) */
static void act_backward_range(const act_layer *a, const float *restrict x,
                               const float *restrict y, const float *restrict dy,
                               float *restrict dx, size_t lo, size_t hi)
{
    const float alpha = a->alpha;
    switch (a->kind) {
    case ACT_RELU:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ACT_LEAKY:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
        break;
    case ACT_SIGMOID:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case ACT_TANH:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    default: break;
    }
}

/* One call of a fast kernel, split over threads by cnn_parallel_for:
 * elementwise kernels in contiguous slices (vectorised inside the range
 * function), softmax by rows. */
typedef struct {
    const act_layer *a;
    const float *x, *y, *dy;
    float *out;
    int f; /* softmax: features per row */
} act_job;

static void act_forward_slice(void *ctx, long lo, long hi, int t)
{
    const act_job *j = ctx;
    act_forward_range(j->a, j->x, j->out, (size_t)lo, (size_t)hi);
}

static void act_backward_slice(void *ctx, long lo, long hi, int t)
{
    const act_job *j = ctx;
    act_backward_range(j->a, j->x, j->y, j->dy, j->out, (size_t)lo, (size_t)hi);
}

/* x: (N, C, H, W)   y: (N, C, H, W) */
static void act_forward_fast(const act_layer *a, const float *restrict x, float *restrict y,
                             size_t total, int nt)
{
    const double work = a->kind == ACT_RELU || a->kind == ACT_LEAKY ? (double)total : 20.0 * total;
    act_job j = {.a = a, .x = x, .out = y};
    cnn_parallel_for(cnn_threads_for(work, nt), (long)total, CNN_SPLIT_EVEN, work, act_forward_slice,
                     &j);
}

/* dy: (N, C, H, W)   dx: (N, C, H, W) */
static void act_backward_fast(const act_layer *a, const float *restrict x,
                              const float *restrict y, const float *restrict dy,
                              float *restrict dx, size_t total, int nt)
{
    act_job j = {.a = a, .x = x, .y = y, .dy = dy, .out = dx};
    cnn_parallel_for(cnn_threads_for(2.0 * total, nt), (long)total, CNN_SPLIT_EVEN, 2.0 * total,
                     act_backward_slice, &j);
}

/* Row s of x: (N, F)   y: (N, F), vectorised within the row (the simd
 * reductions have a fixed order for a given build). */
static void softmax_row_forward(const float *restrict x, float *restrict y, int f, int s)
{
    const float *xr = x + (size_t)s * f;
    float *yr = y + (size_t)s * f;
    float mx = xr[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < f; j++) mx = fmaxf(mx, xr[j]);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < f; j++) {
        float e = expf(xr[j] - mx);
        yr[j] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < f; j++) yr[j] *= inv;
}

static void softmax_forward_rows(void *ctx, long s0, long s1, int t)
{
    const act_job *j = ctx;
    for (long s = s0; s < s1; s++) softmax_row_forward(j->x, j->out, j->f, (int)s);
}

/* x: (N, F)   y: (N, F), by rows */
static void softmax_forward_fast(const float *restrict x, float *restrict y, int n, int f, int nt)
{
    act_job j = {.x = x, .out = y, .f = f};
    cnn_parallel_for(cnn_threads_for(20.0 * n * f, nt), n, CNN_SPLIT_EVEN, 20.0 * n * f,
                     softmax_forward_rows, &j);
}

/* Row s of dy: (N, F)   dx: (N, F) */
static void softmax_row_backward(const float *restrict y, const float *restrict dy,
                                 float *restrict dx, int f, int s)
{
    const float *yr = y + (size_t)s * f, *gr = dy + (size_t)s * f;
    float *dr = dx + (size_t)s * f;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < f; j++) dot += gr[j] * yr[j];
#pragma omp simd
    for (int j = 0; j < f; j++) dr[j] = yr[j] * (gr[j] - dot);
}

static void softmax_backward_rows(void *ctx, long s0, long s1, int t)
{
    const act_job *j = ctx;
    for (long s = s0; s < s1; s++) softmax_row_backward(j->y, j->dy, j->out, j->f, (int)s);
}

/* dy: (N, F)   dx: (N, F), by rows */
static void softmax_backward_fast(const float *restrict y, const float *restrict dy,
                                  float *restrict dx, int n, int f, int nt)
{
    act_job j = {.y = y, .dy = dy, .out = dx, .f = f};
    cnn_parallel_for(cnn_threads_for(4.0 * n * f, nt), n, CNN_SPLIT_EVEN, 4.0 * n * f,
                     softmax_backward_rows, &j);
}

/* ----------------------------------------------------------- dispatch */

static void act_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    const act_layer *a = (const act_layer *)l;
    const int f = (int)cnn_shape_size(l->in);
    const int ref = l->kernels == CNN_KERNELS_REF;
    if (a->kind == ACT_SOFTMAX) {
        if (ref)
            softmax_forward_ref(x, y, n, f);
        else
            softmax_forward_fast(x, y, n, f, nt);
    } else if (ref) {
        act_forward_ref(a, x, y, (size_t)n * f);
    } else {
        act_forward_fast(a, x, y, (size_t)n * f, nt);
    }
}

static void act_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                         float *dx, int n, int nt)
{
    if (!dx) return; /* no parameters: nothing else to compute */
    const act_layer *a = (const act_layer *)l;
    const int f = (int)cnn_shape_size(l->in);
    const int ref = l->kernels == CNN_KERNELS_REF;
    if (a->kind == ACT_SOFTMAX) {
        if (ref)
            softmax_backward_ref(y, dy, dx, n, f);
        else
            softmax_backward_fast(y, dy, dx, n, f, nt);
    } else if (ref) {
        act_backward_ref(a, x, y, dy, dx, (size_t)n * f);
    } else {
        act_backward_fast(a, x, y, dy, dx, (size_t)n * f, nt);
    }
}

/* Per image: ~1 FLOP per element for relu, a few for the exp-based ones,
 * ~3 for softmax (exp, sum, divide). */
static double act_flops(const cnn_layer *l)
{
    const act_layer *a = (const act_layer *)l;
    double per = a->kind == ACT_SOFTMAX ? 3.0 : a->kind == ACT_RELU || a->kind == ACT_LEAKY ? 1.0 : 4.0;
    return per * (double)cnn_shape_size(l->in);
}

#define ACT_OPS(name, kw, torchname)                                                           \
    static const cnn_layer_ops name = {.kind = kw,                                             \
                                       .torch = torchname,                                     \
                                       .forward = act_forward,                                 \
                                       .backward = act_backward,                               \
                                       .flops = act_flops}
ACT_OPS(relu_ops, "relu", "ReLU");
ACT_OPS(leaky_ops, "leaky_relu", "LeakyReLU");
ACT_OPS(sigmoid_ops, "sigmoid", "Sigmoid");
ACT_OPS(tanh_ops, "tanh", "Tanh");
ACT_OPS(softmax_ops, "softmax", "Softmax");

static cnn_status act_create(const cnn_layer_ops *ops, act_kind kind, float alpha,
                             cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    act_layer *a = (act_layer *)cnn_layer_new(sizeof(act_layer), ops, in, in, s);
    if (!a) return CNN_ERR_NOMEM;
    a->kind = kind;
    a->alpha = alpha;
    if (kind == ACT_LEAKY)
        snprintf(a->base.desc, sizeof a->base.desc, "leaky_relu %g", alpha);
    else
        snprintf(a->base.desc, sizeof a->base.desc, "%s", ops->kind);
    *out = &a->base;
    return CNN_OK;
}

cnn_status cnn_relu_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    return act_create(&relu_ops, ACT_RELU, 0.0f, s, in, out);
}

/* leaky_relu [alpha] or leaky_relu alpha=A (torch's negative_slope, 0.01) */
cnn_status cnn_leaky_relu_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    float alpha = 0.01f;
    cnn_status st;
    if ((st = cnn_spec_float(s, 1, "a slope", -1e6, 1e6, 0, &alpha))) return st;
    if ((st = cnn_spec_opt_float(s, "alpha", -1e6, 1e6, &alpha))) return st;
    return act_create(&leaky_ops, ACT_LEAKY, alpha, s, in, out);
}

cnn_status cnn_sigmoid_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    return act_create(&sigmoid_ops, ACT_SIGMOID, 0.0f, s, in, out);
}

cnn_status cnn_tanh_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    return act_create(&tanh_ops, ACT_TANH, 0.0f, s, in, out);
}

/* softmax over each image's C*H*W values (after dense: its outputs) */
cnn_status cnn_softmax_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    return act_create(&softmax_ops, ACT_SOFTMAX, 0.0f, s, in, out);
}
