/* train.h — weight initialisation and the per-tensor optimizer update the
 * model calls for each trainable tensor. Losses and schedules are public
 * (cnn.h). */
#ifndef CNN_TRAIN_H
#define CNN_TRAIN_H

#include "internal.h"

/* The loss of `rows` rows of a batch of n (rows <= n) as an unreduced sum,
 * with each row's gradient already divided as the mean over the whole batch
 * requires; cnn_loss_mean turns the sum of all rows' sums into the mean.
 * cnn_loss_compute(out, n) is cnn_loss_mean(cnn_loss_rows(0, out, n, n)): a
 * batch cut into shards gets the same gradient rows as the whole batch.
 * probs = 1 says `out` is the output of a final softmax or sigmoid: BCE is
 * then BCELoss on probabilities instead of BCEWithLogitsLoss on scores (no
 * other loss's formula depends on it). */
double cnn_loss_rows(cnn_loss loss, int probs, const float *out, const float *target, int rows,
                     int k, int n, float *grad);
double cnn_loss_mean(cnn_loss loss, double total, int n, int k);

/* Fill p->data: CNN_PINIT_ZERO / CNN_PINIT_ONE with 0 / 1, CNN_PINIT_WEIGHT
 * drawn from r according to `how` (using p->fan_in, p->fan_out), in index
 * order so the same seed always gives the same tensor. */
void cnn_param_init(cnn_param *p, cnn_init how, cnn_rng *r);

/* One optimizer step on one tensor of n floats, with PyTorch's update rules
 * (torch.optim.SGD / Adam / AdamW):
 *   lr          the learning rate for this step (after the schedule)
 *   t           1-based step count (Adam's bias correction)
 *   grad_scale  multiplies g before anything else (global-norm clipping:
 *               min(1, clip / ||g||)); 1 when not clipping
 *   m, v        optimizer state, zeroed before the first step; m is the
 *               momentum buffer (MOMENTUM, NESTEROV) or Adam's first moment,
 *               v Adam's second moment. Either may be NULL when the kind does
 *               not use it (SGD needs neither, momentum kinds only m). */
void cnn_optim_update(const cnn_optim_config *c, float lr, long t, float grad_scale, float *w,
                      const float *g, float *m, float *v, size_t n);

/* Sum of squares of g, accumulated in double in index order (the same on any
 * thread count), for global-norm gradient clipping. */
double cnn_grad_sq_norm(const float *g, size_t n);

/* Whether the optimizer kind needs the m / v state arrays. */
int cnn_optim_needs_m(cnn_opt_kind k);
int cnn_optim_needs_v(cnn_opt_kind k);

#endif
