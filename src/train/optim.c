/* optim.c — optimizers and learning-rate schedules. The update rules are
 * PyTorch's (torch.optim.SGD, Adam, AdamW in torch 1.13, single-tensor
 * path), so a run here and a run there take the same steps; plain SGD is the
 * seed report's eq. 3.6 / 3.16 / 3.17. */
#include "train.h"

#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

cnn_optim_config cnn_optim_defaults(cnn_opt_kind kind)
{
    cnn_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = 0.01f;
    c.momentum = 0.0f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = 0.0f;
    c.clip_norm = 0.0f;
    c.sched = CNN_SCHED_CONSTANT;
    c.step_epochs = 10;
    c.gamma = 0.1f;
    c.min_lr = 0.0f;
    switch (kind) {
    case CNN_OPT_MOMENTUM:
    case CNN_OPT_NESTEROV: c.momentum = 0.9f; break;
    case CNN_OPT_ADAM: c.lr = 1e-3f; break;
    case CNN_OPT_ADAMW:
        c.lr = 1e-3f;
        c.weight_decay = 0.01f; /* torch.optim.AdamW's default */
        break;
    case CNN_OPT_SGD:
    default: break;
    }
    return c;
}

static const char *const opt_names[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
static const char *const sched_names[] = {"constant", "step", "cosine"};

/* *out = s's index in names[0..n); else an error naming what and the
 * choices (`expected`) */
static cnn_status parse_name(const char *s, const char *const *names, int n, const char *what,
                             const char *expected, int *out)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG, "unknown %s '%s' (expected %s)", what, s ? s : "", expected);
}

cnn_status cnn_optim_parse(const char *s, cnn_opt_kind *out)
{
    int i = 0;
    cnn_status st = parse_name(s, opt_names, (int)(sizeof opt_names / sizeof *opt_names), "optimizer",
                               "sgd, momentum, nesterov, adam or adamw", &i);
    if (st == CNN_OK) *out = (cnn_opt_kind)i;
    return st;
}

cnn_status cnn_sched_parse(const char *s, cnn_sched_kind *out)
{
    int i = 0;
    cnn_status st = parse_name(s, sched_names, (int)(sizeof sched_names / sizeof *sched_names),
                               "learning-rate schedule", "constant, step or cosine", &i);
    if (st == CNN_OK) *out = (cnn_sched_kind)i;
    return st;
}

const char *cnn_optim_name(cnn_opt_kind k)
{
    if ((int)k < 0 || (int)k >= (int)(sizeof opt_names / sizeof *opt_names)) return "?";
    return opt_names[k];
}

float cnn_optim_lr_at(const cnn_optim_config *c, double epoch, int epochs)
{
    switch (c->sched) {
    case CNN_SCHED_STEP:
        /* torch.optim.lr_scheduler.StepLR */
        if (c->step_epochs <= 0 || epoch < 0) return c->lr;
        return (float)(c->lr * pow(c->gamma, floor(epoch / c->step_epochs)));
    case CNN_SCHED_COSINE:
        /* CosineAnnealingLR with T_max = epochs, eta_min = min_lr */
        if (epochs <= 0) return c->lr;
        return (float)(c->min_lr +
                       (c->lr - c->min_lr) * (1.0 + cos(M_PI * epoch / epochs)) / 2.0);
    case CNN_SCHED_CONSTANT:
    default: return c->lr;
    }
}

int cnn_optim_needs_m(cnn_opt_kind k) { return k != CNN_OPT_SGD; }
int cnn_optim_needs_v(cnn_opt_kind k) { return k == CNN_OPT_ADAM || k == CNN_OPT_ADAMW; }

double cnn_grad_sq_norm(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

/* Plain SGD ignores c->momentum: the kind, not the number, picks the rule. */
void cnn_optim_update(const cnn_optim_config *c, float lr, long t, float grad_scale, float *w,
                      const float *g, float *m, float *v, size_t n)
{
    const float wd = c->weight_decay;
    switch (c->kind) {
    case CNN_OPT_SGD:
        /* eq. 3.16: w <- w - lr * dL/dw, with L2 added to the gradient */
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * grad_scale + wd * w[i];
            w[i] -= lr * gi;
        }
        break;
    case CNN_OPT_MOMENTUM:
    case CNN_OPT_NESTEROV: {
        /* torch.optim.SGD, dampening 0: buf = mu*buf + g (buf starts at g,
         * which is what mu*0 + g gives), nesterov steps along g + mu*buf. */
        const float mu = c->momentum;
        const int nesterov = c->kind == CNN_OPT_NESTEROV;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * grad_scale + wd * w[i];
            float b = mu * m[i] + gi;
            m[i] = b;
            w[i] -= lr * (nesterov ? gi + mu * b : b);
        }
        break;
    }
    case CNN_OPT_ADAM:
    case CNN_OPT_ADAMW: {
        const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
        const int decoupled = c->kind == CNN_OPT_ADAMW;
        if (t < 1) t = 1;
        /* As torch: the bias corrections in double, the elementwise work in
         * float; denom = sqrt(v) / sqrt(bc2) + eps, step = lr / bc1. */
        double bc1 = 1.0 - pow(b1, (double)t);
        double bc2 = 1.0 - pow(b2, (double)t);
        const float step = (float)(lr / bc1);
        const float bc2_sqrt = (float)sqrt(bc2);
        const float decay = 1.0f - lr * wd;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * grad_scale;
            if (decoupled)
                w[i] *= decay;          /* AdamW: w -= lr*wd*w before the step */
            else
                gi += wd * w[i];        /* Adam: L2 in the gradient */
            m[i] = m[i] * b1 + (1.0f - b1) * gi;
            v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
            float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            w[i] -= step * (m[i] / denom);
        }
        break;
    }
    }
}
