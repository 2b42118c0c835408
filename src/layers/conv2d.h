/* conv2d.h — what the files of the conv layer share: the layer, its plan
 * (which algorithm runs the forward, dW and dx), and each algorithm's
 * entry points. conv2d.c chooses the plan and calls them:
 *
 *   conv2d_gemm.c      im2col + GEMM (any layer), and one image in bands
 *   conv2d_planes.c    the shifted planes (small layers, AVX-512)
 *   conv2d_winograd.c  Winograd F(4x4, 3x3) (3x3 stride-1 layers)
 */
#ifndef CNN_CONV2D_H
#define CNN_CONV2D_H

#include "internal.h"
#include "conv2d_winograd.h"

/* ------------------------------------------------------------ the plan */

/* The forward's algorithms */
typedef enum {
    CONV_FWD_IM2COL_GEMM,   /* per image, W (F x C*kh*kw) times im2col(x); images over threads */
    CONV_FWD_IM2COL_BANDS,  /* the same for one image split over threads by bands of output rows */
    CONV_FWD_PLANES,        /* shifted planes, a tile of filters x grid vectors */
    CONV_FWD_PLANES_FILTERS,/* shifted planes with the filters in the vector lanes */
    CONV_FWD_WINOGRAD,      /* Winograd F(4x4, 3x3): 36 GEMMs between transforms */
} conv_fwd_algo;

/* The weight gradient's (every one sums gradient chunks of images in order) */
typedef enum {
    CONV_DW_IM2COL_GEMM,    /* per image, dy (F x Ho*Wo) times im2col(x)^T */
    CONV_DW_IM2COL_DOTS,    /* the same product as dot products (small C*kh*kw) */
    CONV_DW_PLANES_DOTS,    /* shifted planes: dot products over the grid, images in the lanes */
    CONV_DW_PLANES_FILTERS, /* shifted planes with the filters in the vector lanes */
    CONV_DW_WINOGRAD,       /* transformed tiles summed, transformed back once per chunk */
} conv_dw_algo;

/* The input gradient's */
typedef enum {
    CONV_DX_IM2COL_GEMM,    /* dcol = W^T dy, folded back onto the image by col2im */
    CONV_DX_PLANES_FOLD,    /* shifted planes; stride 1: the padded dx, its border folded */
    CONV_DX_PLANES_INTERLEAVE, /* stride (s, 2), zero padding: two column phases interleaved */
    CONV_DX_PLANES_SCATTER, /* any other stride: the phases scattered back pixel by pixel */
    CONV_DX_WINOGRAD,       /* the Winograd forward on dy with the kernels rotated */
} conv_dx_algo;

/* A layer's plan, made by conv_choose (conv2d.c) at reserve time for the
 * SIMD level then in use. A 1x1 stride-1 unpadded layer's im2col is x
 * itself and its col2im dx itself: the im2col algorithms skip them. */
typedef struct {
    conv_fwd_algo fwd;      /* a batch of at least as many images as threads */
    conv_fwd_algo fwd_few;  /* fewer images than threads (conv_fwd_algo_for) */
    conv_dw_algo dw;
    conv_dx_algo dx;
    int simd;               /* the level it was made for */
} conv_plan;

/* ------------------------------------------------- the algorithms' state */

/* The shifted planes' geometry and buffers (conv2d_planes.c) */
typedef struct {
    int hq, wq;      /* one phase plane of the padded input: hq x wq */
    int qf;          /* forward / dW grid: ho*wq rounded up to a vector */
    int ka, kb;      /* dx's taps per phase: ceil(kh/sh) x ceil(kw/sw) */
    int lf;          /* filters rounded up to whole vectors */
    int qx;          /* dx's grid, one phase: hq*wq rounded up to a vector */
    int mt, ml;      /* dy grid margins: ka-1, kb-1 with dx by the planes, else 0 */
    size_t xin_size; /* floats of one image's phase planes, with slack */
    size_t pz;       /* floats of one filter's dy grid, with margins and slack */
    int dz0;         /* where a grid starts in its pz: dy's first row on a vector boundary */
    int grp;         /* images per dW group (<= SP_GROUP; fixed by the geometry) */
    size_t size;     /* floats of one thread's scratch: */
    size_t o_dyz, o_dyt, o_wtt, o_out, o_yt; /* where its parts start */
    int *off_x;      /* C*kh*kw tap offsets into the phase planes */
    int *off_d;      /* F*ka*kb tap offsets into the dy grids (dx) */
    float *wt;       /* (C*sh*sw) x (F*ka*kb): W by phase, for dx */
    float *wft;      /* CONV_FWD_PLANES_FILTERS' weights: (C*kh*kw + 1) x lf, W^T then the bias */
    uint64_t wft_made, wt_made; /* the parameter versions wft and wt hold (0: none) */
    int st_kmax;     /* CONV_FWD_PLANES' store table (cnn_planes_store) */
    int *st_cnt, *st_off;
    unsigned short *st_mask;
    float *buf;      /* threads x size */
} conv_planes;

/* One Winograd path (conv2d_winograd.c): its geometry and per-thread buffers */
#define WG_MADE_STRIDE 8 /* uint64_t: one cache line per thread's stamp */
typedef struct {
    int dx;          /* the input gradient's (rotated filters) */
    cnn_wino p;
    size_t size;     /* floats of one thread's part: the transformed filters, scratch */
    float *buf;      /* threads x size */
    /* per thread (WG_MADE_STRIDE apart): the parameter version its filters
     * were transformed from (0: none) */
    uint64_t *made;
} conv_wg;

typedef struct {
    cnn_layer base;
    int filters;
    int has_bias;
    cnn_window g;
    int direct;      /* 1x1, stride 1, no pad: im2col(x) is x itself */
    /* from reserve() */
    conv_plan plan;
    int max_batch, threads;
    float *dw_part;  /* max chunks x (F * C*kh*kw) partial weight gradients */
    size_t col_size; /* floats per thread's im2col buffer (0: none) */
    float *col;      /* threads x col_size */
    conv_planes sp;
    conv_wg wg, wgd, wgw; /* Winograd's forward, dx and dW */
} conv2d;

static inline float *conv_weight(const conv2d *cv) { return cv->base.params[0].data; }
static inline float *conv_bias(const conv2d *cv)
{
    return cv->has_bias ? cv->base.params[1].data : NULL;
}
/* thread t's im2col buffer */
static inline float *conv_col(const conv2d *cv, int t)
{
    return cv->col ? cv->col + (size_t)t * cv->col_size : NULL;
}

/* ----------------------------------------------- conv2d_gemm.c: im2col + GEMM */

/* n images, over nt threads image by image (nt > 1) or on this one */
void conv_gemm_forward(const conv2d *cv, const float *x, float *y, int n, int nt);
/* n < nt images, each split over the nt threads by bands of output rows */
void conv_gemm_forward_bands(const conv2d *cv, const float *x, float *y, int n, int nt);
/* Images [i0, i1): dW summed in order into part, by plan.dw; dx (if not
 * NULL) by col2im. col: the thread's im2col buffer; the GEMMs run on up to
 * gemm_nt threads (1 when the caller is already split over threads). */
void conv_gemm_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                              int i0, int i1, float *part, float *col, int gemm_nt);
/* dx of one image (C, H, W) from its dy (F, Ho*Wo): W^T dy, then col2im */
void conv_gemm_image_dx(const conv2d *cv, const float *dy, float *dx, float *col, int gemm_nt);

/* ------------------------------------------- conv2d_planes.c: shifted planes */

/* The phase planes' shape: hq, wq, qf, ka, kb and lf, from the layer alone */
void conv_planes_geometry(const conv2d *cv, conv_planes *sp);
/* The rest of the geometry, and the bytes of each buffer the plan's planes
 * algorithms use (0 for the others); allocates nothing */
#define CONV_PLANES_BUFS 8
void conv_planes_layout(conv2d *cv, int threads, size_t bytes[CONV_PLANES_BUFS]);
/* The layout, and those buffers allocated and filled */
cnn_status conv_planes_reserve(conv2d *cv, int threads);
void conv_planes_free(conv2d *cv);
/* n images, over nt threads image by image when n >= nt, else on this one */
void conv_planes_forward(conv2d *cv, const float *x, float *y, int n, int nt);
/* Before a backward with dx: W by phase, from the current weights (kept
 * while the parameter version is unchanged) */
void conv_planes_dx_weights(conv2d *cv);
/* Images [i0, i1): dW summed into part in groups of sp.grp, dx (if not
 * NULL) by plan.dx. t: the thread (its scratch and im2col buffer). */
void conv_planes_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                                int i0, int i1, float *part, int t);

/* --------------------------------------------- conv2d_winograd.c: Winograd */

/* The plan's Winograd paths set up, and the bytes of their buffers (0 for
 * paths the plan does not use); allocates nothing */
#define CONV_WG_BUFS 6
void conv_wg_layout(conv2d *cv, int threads, size_t bytes[CONV_WG_BUFS]);
/* The layout, and those buffers allocated */
cnn_status conv_wg_reserve(conv2d *cv, int threads);
void conv_wg_free(conv2d *cv);
/* n images of in (p.c, p.h, p.w) -> out (p.f, p.ho, p.wo) by the path wg,
 * plus b if not NULL: y from x (cv->wg), or dx from dy (cv->wgd) */
void conv_wg_run(const conv2d *cv, const conv_wg *wg, const float *in, float *out,
                 const float *b, int n, int nt);
/* Images [i0, i1): their dW summed in order into part, on thread t */
void conv_wg_chunk_dw(const conv2d *cv, const float *x, const float *dy, int i0, int i1,
                      float *part, int t);

#endif
