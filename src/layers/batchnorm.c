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
    /* the fast kernels' sums: per (image, channel) two row sums, then per
     * channel the mean in double and dx's two coefficients */
    double *rows;       /* (max_batch, C, 2) */
    double *dmean;      /* (C) */
    float *a0, *a1;     /* (C) */
    int max_batch;
} bn_layer;

enum { P_WEIGHT = 0, P_BIAS, P_RMEAN, P_RVAR };

/* Threads for a batch of n: about 6 FLOPs per value */
static int bn_threads(const bn_layer *b, int n, int nt)
{
    return cnn_threads_for(6.0 * n * (double)b->c * b->hw, nt);
}

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

/* Same math; channels are shared out between threads and the contiguous
 * H*W runs are vectorised. Per channel the affine map is folded into
 * y = a x + d.
 *
 * The batch sums are made in two steps: a sum per (image, channel) row,
 * then the rows added in image order. A batch run whole and one run in
 * shards (src/model/shard.c: each shard's rows, then one combination) make
 * the same row sums and add them in the same order, so they get the same
 * statistics, bit for bit. Training needs three sums: of x, then of
 * (x - mean)^2 (two passes in double so a large mean does not eat the
 * variance), and in backward of dy and dy * x_hat together. */

/* The rows' sums of channel c, images [i0, i1), into b->rows[i][c]:
 * pass 0: x; 1: (x - mean)^2; 2: dy and dy * x_hat */
static void bn_channel_sums(bn_layer *b, const float *restrict x, const float *restrict dy,
                            int i0, int i1, int pass, int c)
{
    const size_t chw = (size_t)b->c * b->hw;
    const int hw = b->hw;
    for (int i = i0; i < i1; i++) {
        const float *xr = x + i * chw + (size_t)c * hw;
        double *r = b->rows + 2 * ((size_t)i * b->c + c);
        if (pass == 0) {
            double s = 0.0;
#pragma omp simd reduction(+ : s)
            for (int p = 0; p < hw; p++) s += xr[p];
            r[0] = s;
        } else if (pass == 1) {
            const double mean = b->dmean[c];
            double v = 0.0;
#pragma omp simd reduction(+ : v)
            for (int p = 0; p < hw; p++) {
                double d = xr[p] - mean;
                v += d * d;
            }
            r[1] = v;
        } else {
            const float *gr = dy + i * chw + (size_t)c * hw;
            const float mu = b->mean[c], is = b->invstd[c];
            double sdy = 0.0, sdyxh = 0.0;
#pragma omp simd reduction(+ : sdy, sdyxh)
            for (int p = 0; p < hw; p++) {
                float xh = (xr[p] - mu) * is;
                sdy += gr[p];
                sdyxh += (double)gr[p] * xh;
            }
            r[0] = sdy;
            r[1] = sdyxh;
        }
    }
}

/* One call of the fast kernels over images [i0, i1), split by channel */
typedef struct {
    bn_layer *b;
    const float *x, *dy;
    float *out;
    int i0, i1, pass;
} bn_job;

static void bn_sums_channels(void *ctx, long c0, long c1, int t)
{
    const bn_job *j = ctx;
    for (long c = c0; c < c1; c++) bn_channel_sums(j->b, j->x, j->dy, j->i0, j->i1, j->pass, (int)c);
}

void cnn_batchnorm_sums(cnn_layer *l, const float *x, const float *dy, int i0, int i1, int pass,
                        int nt)
{
    bn_layer *b = (bn_layer *)l;
    bn_job j = {.b = b, .x = x, .dy = dy, .i0 = i0, .i1 = i1, .pass = pass};
    cnn_parallel_for(bn_threads(b, i1 - i0, nt), b->c, CNN_SPLIT_EVEN,
                     3.0 * (i1 - i0) * (double)b->c * b->hw, bn_sums_channels, &j);
}

void cnn_batchnorm_combine(cnn_layer *l, int n, int pass)
{
    bn_layer *b = (bn_layer *)l;
    const double m = (double)n * b->hw;
    const float *g = l->params[P_WEIGHT].data;
    float *dg = l->params[P_WEIGHT].grad, *dbe = l->params[P_BIAS].grad;
    if (pass == 0) b->last_train = 1;
    for (int c = 0; c < b->c; c++) {
        double s0 = 0.0, s1 = 0.0;
        for (int i = 0; i < n; i++) {
            const double *r = b->rows + 2 * ((size_t)i * b->c + c);
            s0 += r[0];
            s1 += r[1];
        }
        if (pass == 0) {
            b->dmean[c] = s0 / m;
        } else if (pass == 1) {
            bn_channel_setup(b, c, 1, b->dmean[c], s1 / m, n);
        } else {
            /* dx = k1 * dy - k1/M * (sum(dy) + x_hat * sum(dy x_hat)), k1 = weight * invstd */
            dg[c] = (float)s1;
            dbe[c] = (float)s0;
            const float k1 = g[c] * b->invstd[c];
            b->a0[c] = b->last_train ? (float)(k1 * s0 / m) : 0.0f;
            b->a1[c] = b->last_train ? (float)(k1 * s1 / m) : 0.0f;
        }
    }
}

/* Channel c of images [i0, i1): y (forward) or dx (backward) */
static void bn_channel_apply(bn_layer *b, const float *restrict x, const float *restrict dy,
                             float *restrict out, int i0, int i1, int c)
{
    const float *g = b->base.params[P_WEIGHT].data, *be = b->base.params[P_BIAS].data;
    const size_t chw = (size_t)b->c * b->hw;
    const int hw = b->hw;
    const float mu = b->mean[c], is = b->invstd[c];
    if (!dy) {
        const float gc = g[c], bc = be[c];
        for (int i = i0; i < i1; i++) {
            const float *xr = x + i * chw + (size_t)c * hw;
            float *yr = out + i * chw + (size_t)c * hw;
#pragma omp simd
            for (int p = 0; p < hw; p++) yr[p] = gc * ((xr[p] - mu) * is) + bc;
        }
        return;
    }
    const float k1 = g[c] * is, a0 = b->a0[c], a1 = b->a1[c];
    for (int i = i0; i < i1; i++) {
        const float *xr = x + i * chw + (size_t)c * hw, *gr = dy + i * chw + (size_t)c * hw;
        float *dr = out + i * chw + (size_t)c * hw;
#pragma omp simd
        for (int p = 0; p < hw; p++) {
            float xh = (xr[p] - mu) * is;
            dr[p] = k1 * gr[p] - a0 - xh * a1;
        }
    }
}

static void bn_apply_channels(void *ctx, long c0, long c1, int t)
{
    const bn_job *j = ctx;
    for (long c = c0; c < c1; c++) bn_channel_apply(j->b, j->x, j->dy, j->out, j->i0, j->i1, (int)c);
}

void cnn_batchnorm_apply(cnn_layer *l, const float *x, const float *dy, float *out, int i0,
                         int i1, int nt)
{
    bn_layer *b = (bn_layer *)l;
    bn_job j = {.b = b, .x = x, .dy = dy, .out = out, .i0 = i0, .i1 = i1};
    cnn_parallel_for(bn_threads(b, i1 - i0, nt), b->c, CNN_SPLIT_EVEN,
                     3.0 * (i1 - i0) * (double)b->c * b->hw, bn_apply_channels, &j);
}

/* x: (N, C, H, W)   y: (N, C, H, W) */
static void bn_forward_fast(bn_layer *b, const float *restrict x, float *restrict y, int n,
                            int train, int nt)
{
    if (train) {
        cnn_batchnorm_sums(&b->base, x, NULL, 0, n, 0, nt);
        cnn_batchnorm_combine(&b->base, n, 0);
        cnn_batchnorm_sums(&b->base, x, NULL, 0, n, 1, nt);
        cnn_batchnorm_combine(&b->base, n, 1);
    } else {
        for (int c = 0; c < b->c; c++) bn_channel_setup(b, c, 0, 0.0, 0.0, n);
    }
    cnn_batchnorm_apply(&b->base, x, NULL, y, 0, n, nt);
}

/* dy: (N, C, H, W)  ->  dweight, dbias: (C)  dx: (N, C, H, W) */
static void bn_backward_fast(bn_layer *b, const float *restrict x, const float *restrict dy,
                             float *restrict dx, int n, int nt)
{
    cnn_batchnorm_sums(&b->base, x, dy, 0, n, 2, nt);
    cnn_batchnorm_combine(&b->base, n, 2);
    if (dx) cnn_batchnorm_apply(&b->base, x, dy, dx, 0, n, nt);
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

/* The scratch lives here, allocated once per batch size, which keeps every
 * allocation out of forward/backward and out of create's error paths. */
static size_t bn_sizes(const bn_layer *b, int max_batch, size_t bytes[6])
{
    const size_t c = (size_t)b->c;
    bytes[0] = bytes[1] = bytes[4] = bytes[5] = sizeof(float) * c;
    bytes[2] = cnn_mul_size(cnn_mul_size(2 * c, (size_t)(max_batch > 0 ? max_batch : 1)), sizeof(double));
    bytes[3] = sizeof(double) * c;
    size_t total = 0;
    for (int k = 0; k < 6; k++) total += cnn_alloc_charge(bytes[k]);
    return total;
}

static void bn_destroy(cnn_layer *l)
{
    bn_layer *b = (bn_layer *)l;
    cnn_free(b->mean);
    cnn_free(b->invstd);
    cnn_free(b->rows);
    cnn_free(b->dmean);
    cnn_free(b->a0);
    cnn_free(b->a1);
    b->mean = b->invstd = b->a0 = b->a1 = NULL;
    b->rows = b->dmean = NULL;
    b->max_batch = 0;
}

static cnn_status bn_reserve(cnn_layer *l, int max_batch, int threads)
{
    bn_layer *b = (bn_layer *)l;
    if (b->mean && b->max_batch == max_batch) return CNN_OK;
    bn_destroy(l);
    size_t bytes[6];
    bn_sizes(b, max_batch, bytes);
    b->mean = cnn_alloc(bytes[0], "batchnorm mean");
    b->invstd = cnn_alloc(bytes[1], "batchnorm inverse std");
    b->rows = cnn_alloc(bytes[2], "batchnorm sums");
    b->dmean = cnn_alloc(bytes[3], "batchnorm mean");
    b->a0 = cnn_alloc(bytes[4], "batchnorm coefficients");
    b->a1 = cnn_alloc(bytes[5], "batchnorm coefficients");
    if (!b->mean || !b->invstd || !b->rows || !b->dmean || !b->a0 || !b->a1) {
        bn_destroy(l);
        return CNN_ERR_NOMEM;
    }
    b->max_batch = max_batch;
    return CNN_OK;
}

static size_t bn_workspace(const cnn_layer *l, int max_batch, int threads)
{
    size_t bytes[6];
    return bn_sizes((const bn_layer *)l, max_batch, bytes);
}

static void bn_detach(cnn_layer *l)
{
    bn_layer *b = (bn_layer *)l;
    b->mean = b->invstd = b->a0 = b->a1 = NULL;
    b->rows = b->dmean = NULL;
    b->max_batch = 0;
}

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
