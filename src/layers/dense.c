/* dense.c — the fully connected layer (seed report §3.1.4, eq. 3.11-3.15).
 *
 * The seed writes y = x W + b with W of shape (D_in, D_out). We store the
 * transpose, "weight" (out, in), because that is torch.nn.Linear's layout
 * and a PyTorch user must be able to load our files as they are; so the
 * seed's W[i][j] is weight[j][i] below. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    cnn_layer base;
    int in, out;   /* D_in, D_out */
    int bias;      /* 1 if the layer has a bias */
} dense_layer;

/* ---------------------------------------------------------- reference */

/* x: (N, in)   weight: (out, in)   bias: (out)   y: (N, out)
 * eq. 3.11: y[n][j] = sum_i x[n][i] W[i][j] + b[j] */
static void dense_forward_ref(dense_layer *d, const float *x, float *y, int n)
{
    const float *w = d->base.params[0].data;
    const float *b = d->bias ? d->base.params[1].data : NULL;
    for (int s = 0; s < n; s++)
        for (int j = 0; j < d->out; j++) {
            float acc = b ? b[j] : 0.0f;
            for (int i = 0; i < d->in; i++) acc += x[(size_t)s * d->in + i] * w[(size_t)j * d->in + i];
            y[(size_t)s * d->out + j] = acc;
        }
}

/* dy: (N, out)   dx: (N, in)   dweight: (out, in)   dbias: (out) */
static void dense_backward_ref(dense_layer *d, const float *x, const float *dy, float *dx, int n)
{
    const float *w = d->base.params[0].data;
    float *dw = d->base.params[0].grad;
    float *db = d->bias ? d->base.params[1].grad : NULL;
    /* eq. 3.13: dx[n][i] = sum_j dy[n][j] W[i][j] */
    if (dx)
        for (int s = 0; s < n; s++)
            for (int i = 0; i < d->in; i++) {
                float acc = 0.0f;
                for (int j = 0; j < d->out; j++)
                    acc += dy[(size_t)s * d->out + j] * w[(size_t)j * d->in + i];
                dx[(size_t)s * d->in + i] = acc;
            }
    /* eq. 3.14: dW[i][j] = sum_n x[n][i] dy[n][j] */
    for (int j = 0; j < d->out; j++)
        for (int i = 0; i < d->in; i++) {
            float acc = 0.0f;
            for (int s = 0; s < n; s++) acc += x[(size_t)s * d->in + i] * dy[(size_t)s * d->out + j];
            dw[(size_t)j * d->in + i] = acc;
        }
    /* eq. 3.15: db[j] = sum_n dy[n][j] */
    if (db)
        for (int j = 0; j < d->out; j++) {
            float acc = 0.0f;
            for (int s = 0; s < n; s++) acc += dy[(size_t)s * d->out + j];
            db[j] = acc;
        }
}

/* --------------------------------------------------------------- fast */

/* x: (N, in)   weight: (out, in)   y: (N, out) = x weight^T + bias
 * (the bias is written first and the GEMM adds onto it, beta = 1) */
static void dense_forward_fast(dense_layer *d, const float *x, float *y, int n, int nt)
{
    const float *w = d->base.params[0].data;
    float beta = 0.0f;
    if (d->bias) {
        const float *b = d->base.params[1].data;
        for (int s = 0; s < n; s++) memcpy(y + (size_t)s * d->out, b, sizeof(float) * d->out);
        beta = 1.0f;
    }
    cnn_sgemm_threads(nt, 0, 1, n, d->out, d->in, 1.0f, x, d->in, w, d->in, beta, y, d->out);
}

/* dy: (N, out)   dx = dy weight: (N, in)   dweight = dy^T x: (out, in)
 * dbias = column sums of dy: (out). The GEMM never splits its K loop, and
 * the bias sums run over n in order, so any thread count gives the same bits. */
static void dense_backward_fast(dense_layer *d, const float *x, const float *dy, float *dx, int n,
                                int nt)
{
    const float *w = d->base.params[0].data;
    if (dx)
        cnn_sgemm_threads(nt, 0, 0, n, d->in, d->out, 1.0f, dy, d->out, w, d->in, 0.0f, dx, d->in);
    cnn_sgemm_threads(nt, 1, 0, d->out, d->in, n, 1.0f, dy, d->out, x, d->in, 0.0f,
                      d->base.params[0].grad, d->in);
    if (d->bias) {
        float *db = d->base.params[1].grad;
        memset(db, 0, sizeof(float) * d->out);
        for (int s = 0; s < n; s++) {
            const float *row = dy + (size_t)s * d->out;
            for (int j = 0; j < d->out; j++) db[j] += row[j];
        }
    }
}

/* ----------------------------------------------------------- dispatch */

static void dense_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    dense_layer *d = (dense_layer *)l;
    if (l->kernels == CNN_KERNELS_REF)
        dense_forward_ref(d, x, y, n);
    else
        dense_forward_fast(d, x, y, n, nt);
}

static void dense_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                           float *dx, int n, int nt)
{
    dense_layer *d = (dense_layer *)l;
    if (l->kernels == CNN_KERNELS_REF)
        dense_backward_ref(d, x, dy, dx, n);
    else
        dense_backward_fast(d, x, dy, dx, n, nt);
}

static double dense_flops(const cnn_layer *l)
{
    const dense_layer *d = (const dense_layer *)l;
    return 2.0 * d->in * d->out;
}

static const cnn_layer_ops dense_ops = {
    .kind = "dense",
    .torch = "Linear",
    .forward = dense_forward,
    .backward = dense_backward,
    .flops = dense_flops,
};

/* dense N [bias=1|0] */
cnn_status cnn_dense_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    int nout = 0, bias = 1;
    cnn_status st;
    if ((st = cnn_spec_int(s, 1, "an output size", 1, 1 << 24, 1, &nout))) return st;
    if ((st = cnn_spec_opt_int(s, "bias", 0, 1, &bias))) return st;
    if (in.h != 1 || in.w != 1)
        return cnn_spec_error(s, "needs a flat input (got %dx%dx%d): add a 'flatten' line before it",
                              in.c, in.h, in.w);
    if ((size_t)in.c * (size_t)nout > ((size_t)1 << 31))
        return cnn_spec_error(s, "%d x %d weights are too many", nout, in.c);

    cnn_shape o = {nout, 1, 1};
    dense_layer *d = (dense_layer *)cnn_layer_new(sizeof(dense_layer), &dense_ops, in, o, s);
    if (!d) return CNN_ERR_NOMEM;
    d->in = in.c;
    d->out = nout;
    d->bias = bias;
    int wdims[2] = {nout, in.c};
    cnn_layer_add_param(&d->base, "weight", 2, wdims, CNN_PINIT_WEIGHT, in.c, nout, 1);
    if (bias) {
        int bdims[1] = {nout};
        cnn_layer_add_param(&d->base, "bias", 1, bdims, CNN_PINIT_ZERO, in.c, nout, 1);
    }
    snprintf(d->base.desc, sizeof d->base.desc, bias ? "dense %d" : "dense %d bias=0", nout);
    *out = &d->base;
    return CNN_OK;
}
