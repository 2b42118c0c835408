/* batchnorm.c — batch normalisation with PyTorch's semantics.
 *
 * One code path serves both of torch's classes: a (C, H, W) input is
 * normalised per channel over (N, H, W) (BatchNorm2d); a flat (F, 1, 1)
 * input per feature over N (BatchNorm1d) — the same loops with HW = 1.
 *
 * Train mode normalises with the batch mean and the biased variance and
 * moves the running statistics towards the batch's with
 * running = (1 - momentum) * running + momentum * batch, using the UNBIASED
 * variance for running_var (as torch does). Eval mode normalises with the
 * running statistics. The forward keeps the mean and 1/sqrt(var + eps) it
 * used; backward rebuilds x_hat from x with them, which gives the same bits
 * as storing x_hat without a batch-sized buffer. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    cnn_layer base;
    int c, hw;          /* channels (features) and pixels per channel */
    float eps, momentum;
    float *mean;        /* (C) mean used by the last forward */
    float *invstd;      /* (C) 1/sqrt(var + eps) used by the last forward */
    int last_train;     /* mode of the last forward: picks backward's formula */
} bn_layer;

enum { P_WEIGHT = 0, P_BIAS, P_RMEAN, P_RVAR };

/* Threads for a batch of n: about 6 FLOPs per value */
static int bn_threads(const bn_layer *b, int n, int nt)
{
    return cnn_threads_for(6.0 * n * (double)b->c * b->hw, nt);
}

/* One call of the fast kernels, split over threads by channel: every
 * channel's sums run on one thread in a fixed order. */
typedef struct {
    bn_layer *b;
    const float *x, *dy;
    float *out;
    int n, train;
} bn_job;

/* Batch statistics of channel c, two passes in double so a large mean does
 * not eat the variance. Returns the biased variance. */
static double bn_stats_ref(const bn_layer *b, const float *x, int n, int c, double *mean)
{
    const size_t chw = (size_t)b->c * b->hw;
    const double m = (double)n * b->hw;
    double s = 0.0;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < b->hw; p++) s += x[i * chw + (size_t)c * b->hw + p];
    *mean = s / m;
    double v = 0.0;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < b->hw; p++) {
            double d = x[i * chw + (size_t)c * b->hw + p] - *mean;
            v += d * d;
        }
    return v / m;
}

/* Mean / invstd for channel c, and the running-stat update in train mode. */
static void bn_channel_setup(bn_layer *b, int c, int train, double mean, double var, int n)
{
    float *rm = b->base.params[P_RMEAN].data, *rv = b->base.params[P_RVAR].data;
    if (train) {
        const double m = (double)n * b->hw;
        /* torch refuses one value per channel; we keep the biased value
         * rather than divide by zero */
        double unbiased = m > 1 ? var * m / (m - 1) : var;
        rm[c] = (float)((1.0 - b->momentum) * rm[c] + b->momentum * mean);
        rv[c] = (float)((1.0 - b->momentum) * rv[c] + b->momentum * unbiased);
        b->mean[c] = (float)mean;
        b->invstd[c] = (float)(1.0 / sqrt(var + b->eps));
    } else {
        b->mean[c] = rm[c];
        b->invstd[c] = (float)(1.0 / sqrt((double)rv[c] + b->eps));
    }
}

/* ---------------------------------------------------------- reference */

/* x: (N, C, H, W)  weight, bias, running_*: (C)  y: (N, C, H, W)
 * y = weight * (x - mean) / sqrt(var + eps) + bias */
static void bn_forward_ref(bn_layer *b, const float *x, float *y, int n, int train)
{
    const float *g = b->base.params[P_WEIGHT].data, *be = b->base.params[P_BIAS].data;
    const size_t chw = (size_t)b->c * b->hw;
    for (int c = 0; c < b->c; c++) {
        double mean = 0.0, var = 0.0;
        if (train) var = bn_stats_ref(b, x, n, c, &mean);
        bn_channel_setup(b, c, train, mean, var, n);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < b->hw; p++) {
                size_t k = i * chw + (size_t)c * b->hw + p;
                float xh = (x[k] - b->mean[c]) * b->invstd[c];
                y[k] = g[c] * xh + be[c];
            }
    }
}

/* dy: (N, C, H, W)  dx: (N, C, H, W)  dweight, dbias: (C)
 * train: dx = weight * invstd / M * (M dy - sum(dy) - x_hat sum(dy x_hat)),
 *        M = N*H*W (the batch statistics depend on x too)
 * eval:  dx = weight * invstd * dy (the statistics are constants) */
static void bn_backward_ref(bn_layer *b, const float *x, const float *dy, float *dx, int n)
{
    const float *g = b->base.params[P_WEIGHT].data;
    float *dg = b->base.params[P_WEIGHT].grad, *dbe = b->base.params[P_BIAS].grad;
    const size_t chw = (size_t)b->c * b->hw;
    const double m = (double)n * b->hw;
    for (int c = 0; c < b->c; c++) {
        double sdy = 0.0, sdyxh = 0.0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < b->hw; p++) {
                size_t k = i * chw + (size_t)c * b->hw + p;
                float xh = (x[k] - b->mean[c]) * b->invstd[c];
                sdy += dy[k];
                sdyxh += (double)dy[k] * xh;
            }
        dg[c] = (float)sdyxh;
        dbe[c] = (float)sdy;
        if (!dx) continue;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < b->hw; p++) {
                size_t k = i * chw + (size_t)c * b->hw + p;
                float xh = (x[k] - b->mean[c]) * b->invstd[c];
                if (b->last_train)
                    dx[k] = (float)(g[c] * b->invstd[c] / m * (m * dy[k] - sdy - xh * sdyxh));
                else
                    dx[k] = g[c] * b->invstd[c] * dy[k];
            }
    }
}

/* --------------------------------------------------------------- fast */

/* Same math; channels are shared out between threads (each channel's sums
 * run on one thread in a fixed order) and the contiguous H*W runs are
 * vectorised. Per channel the affine map is folded into y = a x + d. */
/* Channel c of x: (N, C, H, W)   y: (N, C, H, W) */
static void bn_channel_forward(bn_layer *b, const float *restrict x, float *restrict y, int n,
                               int train, int c)
{
    const float *g = b->base.params[P_WEIGHT].data, *be = b->base.params[P_BIAS].data;
    const size_t chw = (size_t)b->c * b->hw;
    const int hw = b->hw;
    double mean = 0.0, var = 0.0;
    if (train) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + i * chw + (size_t)c * hw;
#pragma omp simd reduction(+ : s)
            for (int p = 0; p < hw; p++) s += xr[p];
        }
        mean = s / ((double)n * hw);
        double v = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + i * chw + (size_t)c * hw;
#pragma omp simd reduction(+ : v)
            for (int p = 0; p < hw; p++) {
                double d = xr[p] - mean;
                v += d * d;
            }
        }
        var = v / ((double)n * hw);
    }
    bn_channel_setup(b, c, train, mean, var, n);
    const float mu = b->mean[c], is = b->invstd[c], gc = g[c], bc = be[c];
    for (int i = 0; i < n; i++) {
        const float *xr = x + i * chw + (size_t)c * hw;
        float *yr = y + i * chw + (size_t)c * hw;
#pragma omp simd
        for (int p = 0; p < hw; p++) yr[p] = gc * ((xr[p] - mu) * is) + bc;
    }
}

static void bn_channels_forward(void *ctx, long c0, long c1, int t)
{
    const bn_job *j = ctx;
    for (long c = c0; c < c1; c++) bn_channel_forward(j->b, j->x, j->out, j->n, j->train, (int)c);
}

/* x: (N, C, H, W)   y: (N, C, H, W) */
static void bn_forward_fast(bn_layer *b, const float *restrict x, float *restrict y, int n,
                            int train, int nt)
{
    bn_job j = {.b = b, .x = x, .out = y, .n = n, .train = train};
    cnn_parallel_for(bn_threads(b, n, nt), b->c, CNN_SPLIT_EVEN, 6.0 * n * (double)b->c * b->hw,
                     bn_channels_forward, &j);
}

/* Channel c of dy: (N, C, H, W)  ->  dweight, dbias: (C)  dx: (N, C, H, W) */
static void bn_channel_backward(bn_layer *b, const float *restrict x, const float *restrict dy,
                                float *restrict dx, int n, int c)
{
    const float *g = b->base.params[P_WEIGHT].data;
    float *dg = b->base.params[P_WEIGHT].grad, *dbe = b->base.params[P_BIAS].grad;
    const size_t chw = (size_t)b->c * b->hw;
    const int hw = b->hw, train = b->last_train;
    const double m = (double)n * hw;
    const float mu = b->mean[c], is = b->invstd[c];
    double sdy = 0.0, sdyxh = 0.0;
    for (int i = 0; i < n; i++) {
        const float *xr = x + i * chw + (size_t)c * hw, *gr = dy + i * chw + (size_t)c * hw;
#pragma omp simd reduction(+ : sdy, sdyxh)
        for (int p = 0; p < hw; p++) {
            float xh = (xr[p] - mu) * is;
            sdy += gr[p];
            sdyxh += (double)gr[p] * xh;
        }
    }
    dg[c] = (float)sdyxh;
    dbe[c] = (float)sdy;
    if (!dx) return;
    /* dx = k1 * dy - k1/M * (sum(dy) + x_hat * sum(dy x_hat)), k1 = weight * invstd */
    const float k1 = g[c] * is;
    const float a0 = train ? (float)(k1 * sdy / m) : 0.0f;
    const float a1 = train ? (float)(k1 * sdyxh / m) : 0.0f;
    for (int i = 0; i < n; i++) {
        const float *xr = x + i * chw + (size_t)c * hw, *gr = dy + i * chw + (size_t)c * hw;
        float *dr = dx + i * chw + (size_t)c * hw;
#pragma omp simd
        for (int p = 0; p < hw; p++) {
            float xh = (xr[p] - mu) * is;
            dr[p] = k1 * gr[p] - a0 - xh * a1;
        }
    }
}

static void bn_channels_backward(void *ctx, long c0, long c1, int t)
{
    const bn_job *j = ctx;
    for (long c = c0; c < c1; c++) bn_channel_backward(j->b, j->x, j->dy, j->out, j->n, (int)c);
}

static void bn_backward_fast(bn_layer *b, const float *restrict x, const float *restrict dy,
                             float *restrict dx, int n, int nt)
{
    bn_job j = {.b = b, .x = x, .dy = dy, .out = dx, .n = n};
    cnn_parallel_for(bn_threads(b, n, nt), b->c, CNN_SPLIT_EVEN, 6.0 * n * (double)b->c * b->hw,
                     bn_channels_backward, &j);
}

/* ----------------------------------------------------------- dispatch */

static void bn_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    bn_layer *b = (bn_layer *)l;
    b->last_train = train != 0;
    if (l->kernels == CNN_KERNELS_REF)
        bn_forward_ref(b, x, y, n, train);
    else
        bn_forward_fast(b, x, y, n, train, nt);
}

static void bn_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                        float *dx, int n, int nt)
{
    bn_layer *b = (bn_layer *)l;
    if (l->kernels == CNN_KERNELS_REF)
        bn_backward_ref(b, x, dy, dx, n);
    else
        bn_backward_fast(b, x, dy, dx, n, nt);
}

/* The per-channel (C) scratch does not depend on the batch, but living here
 * keeps every allocation out of forward/backward and out of create's error
 * paths. */
static cnn_status bn_reserve(cnn_layer *l, int max_batch, int threads)
{
    bn_layer *b = (bn_layer *)l;
    if (b->mean) return CNN_OK;
    b->mean = cnn_alloc(sizeof(float) * b->c, "batchnorm mean");
    b->invstd = cnn_alloc(sizeof(float) * b->c, "batchnorm inverse std");
    if (!b->mean || !b->invstd) {
        cnn_free(b->mean);
        cnn_free(b->invstd);
        b->mean = b->invstd = NULL;
        return CNN_ERR_NOMEM;
    }
    return CNN_OK;
}

static size_t bn_workspace(const cnn_layer *l, int max_batch, int threads)
{
    return 2 * cnn_alloc_charge(sizeof(float) * ((const bn_layer *)l)->c);
}

static void bn_destroy(cnn_layer *l)
{
    bn_layer *b = (bn_layer *)l;
    cnn_free(b->mean);
    cnn_free(b->invstd);
    b->mean = b->invstd = NULL;
}

static void bn_detach(cnn_layer *l) { ((bn_layer *)l)->mean = ((bn_layer *)l)->invstd = NULL; }

/* normalise (2: subtract, scale) + affine (2) per element */
static double bn_flops(const cnn_layer *l) { return 4.0 * (double)cnn_shape_size(l->in); }

#define BN_OPS(name, torchname)                                                                \
    static const cnn_layer_ops name = {.kind = "batchnorm",                                    \
                                       .torch = torchname,                                     \
                                       .batch_coupled = 1,                                     \
                                       .reserve = bn_reserve,                                  \
                                       .workspace = bn_workspace,                              \
                                       .forward = bn_forward,                                  \
                                       .backward = bn_backward,                                \
                                       .flops = bn_flops,                                      \
                                       .destroy = bn_destroy,                                  \
                                       .detach = bn_detach}
BN_OPS(bn1d_ops, "BatchNorm1d");
BN_OPS(bn2d_ops, "BatchNorm2d");

/* batchnorm [eps=1e-5] [momentum=0.1] */
cnn_status cnn_batchnorm_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    float eps = 1e-5f, momentum = 0.1f;
    cnn_status st;
    if ((st = cnn_spec_opt_float(s, "eps", 1e-20, 1.0, &eps))) return st;
    if ((st = cnn_spec_opt_float(s, "momentum", 0.0, 1.0, &momentum))) return st;
    const int flat = in.h == 1 && in.w == 1;
    bn_layer *b = (bn_layer *)cnn_layer_new(sizeof(bn_layer), flat ? &bn1d_ops : &bn2d_ops, in,
                                            in, s);
    if (!b) return CNN_ERR_NOMEM;
    b->c = in.c;
    b->hw = in.h * in.w;
    b->eps = eps;
    b->momentum = momentum;
    int dims[1] = {in.c};
    cnn_layer_add_param(&b->base, "weight", 1, dims, CNN_PINIT_ONE, in.c, in.c, 1);
    cnn_layer_add_param(&b->base, "bias", 1, dims, CNN_PINIT_ZERO, in.c, in.c, 1);
    cnn_layer_add_param(&b->base, "running_mean", 1, dims, CNN_PINIT_ZERO, in.c, in.c, 0);
    cnn_layer_add_param(&b->base, "running_var", 1, dims, CNN_PINIT_ONE, in.c, in.c, 0);
    int n = snprintf(b->base.desc, sizeof b->base.desc, "batchnorm");
    if (eps != 1e-5f) n += snprintf(b->base.desc + n, sizeof b->base.desc - n, " eps=%g", eps);
    if (momentum != 0.1f)
        snprintf(b->base.desc + n, sizeof b->base.desc - n, " momentum=%g", momentum);
    *out = &b->base;
    return CNN_OK;
}
