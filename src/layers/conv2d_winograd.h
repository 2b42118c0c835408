/* conv2d_winograd.h — Winograd F(4x4, 3x3) for 3x3 stride-1 conv layers:
 * the forward, dx and dW (conv2d.c's fast kernel chooses it; see
 * conv2d_winograd.c). */
#ifndef CNN_CONV2D_WINOGRAD_H
#define CNN_CONV2D_WINOGRAD_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CNN_WINO_M 4      /* outputs per tile side */
#define CNN_WINO_A 6      /* input tile side: m + r - 1 */
#define CNN_WINO_P 36     /* transformed positions per tile: 6 x 6 */
#define CNN_WINO_LANES 16 /* channels / filters per vector of the transforms */

/* Everything the Winograd path needs to know about a layer, fixed at
 * reserve time. */
typedef struct {
    int c, f;          /* channels, filters */
    int cp, fp;        /* both rounded up to whole vectors (row strides) */
    int h, w, ph, pw;  /* input and padding */
    cnn_padmode mode;
    int ho, wo;        /* output */
    int th, tw;        /* tiles: ceil(ho / 4) x ceil(wo / 4) */
    int block_rows;    /* tile rows transformed and multiplied together */
    size_t u_size;     /* floats of the transformed filters (36 x c x fp) */
    size_t scratch;    /* floats of one thread's scratch besides them */
    size_t m_offset;   /* where the GEMM products start in the scratch */
    size_t dyl_offset, mw_offset; /* the weight gradient's parts, after those */
    size_t dw_scratch; /* floats of one thread's scratch for the weight gradient */
} cnn_wino;

/* Fill the geometry for a layer with c channels, f filters, a 3x3 kernel
 * and stride 1 (the caller checks those). */
void cnn_wino_plan(cnn_wino *p, int c, int f, int h, int w, int ph, int pw, cnn_padmode mode,
                   int ho, int wo);

/* w: (F, C, 3, 3) -> u: (36, C, fp), u[xi][c][f] = (G g G^T)[xi] for
 * filter f, channel c; lanes f >= F are zero. scratch as for
 * cnn_wino_image. */
void cnn_wino_filters(const cnn_wino *p, const float *w, float *u, float *scratch);

/* The filters of the input gradient of a 3x3 stride-1 layer with F filters
 * over C channels and zero padding (ph, pw) <= 2: dx is the forward of
 * this path on dy with C and F swapped, padding 2 - ph, and each kernel
 * rotated by 180 degrees (eq. 3.5 as a full correlation). p is that plan
 * (p->c = F, p->f = C); w: (F, C, 3, 3) the layer's own weights. */
void cnn_wino_filters_dx(const cnn_wino *p, const float *w, float *u, float *scratch);

/* x: (C, H, W) one image, u from cnn_wino_filters, b: (F) or NULL
 * -> y: (F, Ho, Wo), the output rows of tile rows [ty0, ty1) only.
 * scratch: p->scratch floats of the calling thread's own. Every output is
 * computed the same way whatever the tile-row range, so any split of the
 * rows over threads gives the same bits. */
void cnn_wino_image(const cnn_wino *p, const float *u, const float *b, const float *x,
                    float *y, int ty0, int ty1, float *scratch);

/* The weight gradient of one image, x: (C, H, W) and dy: (F, Ho, Wo),
 * added to the transformed sums kept in scratch (p->dw_scratch floats, the
 * thread's own; first != 0 starts them afresh). Images add in call order. */
void cnn_wino_dw_image(const cnn_wino *p, const float *x, const float *dy, int first,
                       float *scratch);
/* dw: (F, C, 3, 3) = the sums in scratch transformed back (overwritten) */
void cnn_wino_dw_finish(const cnn_wino *p, const float *scratch, float *dw);

#ifdef __cplusplus
}
#endif

#endif
