/* flatten.c — (N, C, H, W) -> (N, C*H*W). In NCHW the bytes are already in
 * the right order, so forward and backward are copies; the layer exists so
 * the shape change is written in the architecture (and matches nn.Flatten). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* x: (N, C, H, W)   y: (N, C*H*W) */
static void flatten_forward(cnn_layer *l, const float *x, float *y, int n, int train, int nt)
{
    memcpy(y, x, sizeof(float) * (size_t)n * cnn_shape_size(l->in));
}

/* dy: (N, C*H*W)   dx: (N, C, H, W) */
static void flatten_backward(cnn_layer *l, const float *x, const float *y, const float *dy,
                             float *dx, int n, int nt)
{
    if (dx) memcpy(dx, dy, sizeof(float) * (size_t)n * cnn_shape_size(l->in));
}

static double flatten_flops(const cnn_layer *l) { return 0.0; }

static const cnn_layer_ops flatten_ops = {
    .kind = "flatten",
    .torch = "Flatten",
    .forward = flatten_forward,
    .backward = flatten_backward,
    .flops = flatten_flops,
};

cnn_status cnn_flatten_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out)
{
    cnn_shape o = {(int)cnn_shape_size(in), 1, 1};
    cnn_layer *l = cnn_layer_new(sizeof(cnn_layer), &flatten_ops, in, o, s);
    if (!l) return CNN_ERR_NOMEM;
    snprintf(l->desc, sizeof l->desc, "flatten");
    *out = l;
    return CNN_OK;
}
