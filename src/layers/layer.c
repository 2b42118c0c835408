/* layer.c — what every layer kind shares: allocation of the common part and
 * the description of its parameters. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cnn_layer *cnn_layer_new(size_t size, const cnn_layer_ops *ops, cnn_shape in,
                         cnn_shape out, const cnn_spec_line *s)
{
    cnn_layer *l = calloc(1, size < sizeof(cnn_layer) ? sizeof(cnn_layer) : size);
    if (!l) {
        cnn_fail(CNN_ERR_NOMEM, "out of memory creating a %s layer", ops->kind);
        return NULL;
    }
    l->ops = ops;
    l->in = in;
    l->out = out;
    l->kernels = CNN_KERNELS_FAST;
    l->line = s ? s->line : 0;
    l->size = size < sizeof(cnn_layer) ? sizeof(cnn_layer) : size;
    return l;
}

cnn_layer *cnn_layer_clone(const cnn_layer *l)
{
    cnn_layer *c = malloc(l->size);
    if (!c) {
        cnn_fail(CNN_ERR_NOMEM, "out of memory copying a %s layer", l->ops->kind);
        return NULL;
    }
    memcpy(c, l, l->size);
    /* the geometry lives inside the kind's struct: point at the copy's own */
    if (l->window) c->window = (const cnn_window *)((const char *)c + ((const char *)l->window - (const char *)l));
    for (int j = 0; j < c->nparams; j++) c->params[j].grad = NULL;
    if (c->ops->detach) c->ops->detach(c);
    return c;
}

cnn_param *cnn_layer_add_param(cnn_layer *l, const char *name, int ndim, const int *dims,
                               cnn_pinit init, int fan_in, int fan_out, int trainable)
{
    if (l->nparams >= CNN_LAYER_MAX_PARAMS || ndim < 1 || ndim > 4) return NULL;
    cnn_param *p = &l->params[l->nparams++];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->ndim = ndim;
    p->size = 1;
    for (int i = 0; i < ndim; i++) {
        p->dims[i] = dims[i];
        p->size *= (size_t)dims[i];
    }
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->trainable = trainable;
    return p;
}

void cnn_fmt_pair(char *buf, size_t n, int a, int b)
{
    if (a == b) snprintf(buf, n, "%d", a);
    else snprintf(buf, n, "%dx%d", a, b);
}
