/* loss.c — losses over a batch of n rows of k outputs, with their gradient
 * d(mean loss)/d(out) (the seed report's section 2.5). Each is the PyTorch
 * module a user compares it with, and reductions follow PyTorch's defaults
 * (reduction = 'mean') exactly:
 *   CrossEntropyLoss, MultiMarginLoss   -> sum over k, mean over the n rows
 *   MSELoss, L1Loss, HuberLoss,
 *   BCEWithLogitsLoss, BCELoss          -> mean over all n*k elements
 * CCE (cross-entropy on probabilities) is the seed report's loss and reduces
 * like CrossEntropyLoss. Which tensor of a model each loss reads is chosen
 * by cnn_model_loss_plan (src/model/model.c). Sums are accumulated in
 * double. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const loss_names[] = {"xent", "cce", "bce", "hinge", "mse", "mae", "huber"};
#define NLOSS ((int)(sizeof loss_names / sizeof *loss_names))

const char *cnn_loss_name(cnn_loss_kind k)
{
    if ((int)k < 0 || (int)k >= NLOSS) return "?";
    return loss_names[k];
}

cnn_status cnn_loss_parse(const char *s, cnn_loss *out)
{
    if (!s) s = "";
    cnn_loss l = {CNN_LOSS_XENT, 1.0f};
    if (strncmp(s, "huber:", 6) == 0) {
        char *end;
        double d = strtod(s + 6, &end);
        if (end == s + 6 || *end || !(d > 0) || !isfinite(d) || d > 1e30)
            return cnn_fail(CNN_ERR_ARG, "loss '%s': huber's delta must be a number > 0", s);
        l.kind = CNN_LOSS_HUBER;
        l.delta = (float)d;
        *out = l;
        return CNN_OK;
    }
    for (int i = 0; i < NLOSS; i++)
        if (strcmp(s, loss_names[i]) == 0) {
            l.kind = (cnn_loss_kind)i;
            *out = l;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG,
                    "unknown loss '%s' (expected xent, cce, bce, hinge, mse, mae, huber or "
                    "huber:DELTA)",
                    s);
}

/* The row's label for the hinge loss: the first largest target entry. */
static int row_argmax(const float *t, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (t[j] > t[best]) best = j;
    return best;
}

double cnn_loss_rows(cnn_loss loss, int probs, const float *out, const float *target, int rows,
                     int k, int n, float *grad)
{
    if (rows <= 0 || n <= 0 || k <= 0) return 0.0;
    const double inv_n = 1.0 / n;
    const double inv_nk = 1.0 / ((double)n * k);
    double total = 0.0;

    for (int r = 0; r < rows; r++) {
        const float *z = out + (size_t)r * k;
        const float *t = target + (size_t)r * k;
        float *g = grad ? grad + (size_t)r * k : NULL;

        switch (loss.kind) {
        case CNN_LOSS_XENT: {
            /* -sum t log softmax(z) = sum t * (lse(z) - z), with
             * lse = max + log sum exp(z - max) so +-1e4 logits stay finite.
             * d/dz = softmax(z) * sum(t) - t (sum(t) = 1 for one-hot). */
            float mx = z[0];
            for (int j = 1; j < k; j++) mx = z[j] > mx ? z[j] : mx;
            double se = 0.0, st = 0.0;
            for (int j = 0; j < k; j++) se += exp((double)z[j] - mx);
            double lse = mx + log(se);
            for (int j = 0; j < k; j++) {
                st += t[j];
                if (t[j] != 0.0f) total += t[j] * (lse - z[j]);
            }
            if (g)
                for (int j = 0; j < k; j++)
                    g[j] = (float)((exp((double)z[j] - lse) * st - t[j]) * inv_n);
            break;
        }
        case CNN_LOSS_CCE: {
            /* -sum t log p on probabilities, p clamped at 1e-12 so a zero
             * probability gives a large finite loss instead of Inf. */
            for (int j = 0; j < k; j++) {
                double p = z[j] > 1e-12f ? z[j] : 1e-12;
                if (t[j] != 0.0f) total -= t[j] * log(p);
                if (g) g[j] = (float)(-t[j] / p * inv_n);
            }
            break;
        }
        case CNN_LOSS_BCE: {
            if (probs) {
                /* BCELoss: -(t log p + (1 - t) log(1 - p)), each log clamped
                 * at -100, and PyTorch's gradient (p - t) / max(p (1 - p),
                 * 1e-12), so a saturated p stays finite as it does there */
                for (int j = 0; j < k; j++) {
                    double p = z[j], tj = t[j];
                    double lp = fmax(log(p), -100.0), lq = fmax(log1p(-p), -100.0);
                    total -= tj * lp + (1.0 - tj) * lq;
                    if (g) g[j] = (float)((p - tj) / fmax(p * (1.0 - p), 1e-12) * inv_nk);
                }
                break;
            }
            /* BCEWithLogitsLoss: max(z,0) - z t + log(1 + exp(-|z|)) */
            for (int j = 0; j < k; j++) {
                double zj = z[j], tj = t[j];
                total += (zj > 0 ? zj : 0) - zj * tj + log1p(exp(-fabs(zj)));
                if (g) {
                    double s = zj >= 0 ? 1.0 / (1.0 + exp(-zj)) : exp(zj) / (1.0 + exp(zj));
                    g[j] = (float)((s - tj) * inv_nk);
                }
            }
            break;
        }
        case CNN_LOSS_HINGE: {
            /* MultiMarginLoss(p=1, margin=1): sum_{j != y} max(0, 1 - z_y + z_j) / k */
            int y = row_argmax(t, k);
            double gy = 0.0;
            for (int j = 0; j < k; j++) {
                if (g) g[j] = 0.0f;
                if (j == y) continue;
                double m = 1.0 - (double)z[y] + z[j];
                if (m > 0) {
                    total += m / k;
                    if (g) g[j] = (float)(inv_n / k);
                    gy -= inv_n / k;
                }
            }
            if (g) g[y] = (float)gy;
            break;
        }
        case CNN_LOSS_MSE:
            for (int j = 0; j < k; j++) {
                double d = (double)z[j] - t[j];
                total += d * d;
                if (g) g[j] = (float)(2.0 * d * inv_nk);
            }
            break;
        case CNN_LOSS_MAE:
            /* sub-gradient sign(d), 0 at d == 0 (as torch's L1Loss) */
            for (int j = 0; j < k; j++) {
                double d = (double)z[j] - t[j];
                total += fabs(d);
                if (g) g[j] = (float)((d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) * inv_nk);
            }
            break;
        case CNN_LOSS_HUBER: {
            /* HuberLoss(delta): 0.5 d^2 inside |d| <= delta, linear outside */
            double delta = loss.delta;
            for (int j = 0; j < k; j++) {
                double d = (double)z[j] - t[j], a = fabs(d);
                if (a <= delta) {
                    total += 0.5 * d * d;
                    if (g) g[j] = (float)(d * inv_nk);
                } else {
                    total += delta * (a - 0.5 * delta);
                    if (g) g[j] = (float)((d > 0 ? delta : -delta) * inv_nk);
                }
            }
            break;
        }
        }
    }

    return total;
}

double cnn_loss_mean(cnn_loss loss, double total, int n, int k)
{
    if (n <= 0 || k <= 0) return 0.0;
    switch (loss.kind) {
    case CNN_LOSS_XENT:
    case CNN_LOSS_CCE:
    case CNN_LOSS_HINGE: return total * (1.0 / n);
    default: return total * (1.0 / ((double)n * k));
    }
}

double cnn_loss_compute(cnn_loss loss, const float *out, const float *target, int n, int k,
                        float *grad)
{
    return cnn_loss_mean(loss, cnn_loss_rows(loss, 0, out, target, n, k, n, grad), n, k);
}
