/* kernels.h — the inner loops the layers call from src/kernels, behind
 * plain-C interfaces: a layer chooses its algorithm, these run its
 * innermost loops. (The GEMM, im2col and col2im are in internal.h.)
 *
 * A function named *_avx512 is built on every platform but may only be
 * called when cnn_simd_level() is CNN_SIMD_AVX512 (the pooling ones also
 * need cnn_cpu_has_avx512bw()): elsewhere it is a stub, never reached. */
#ifndef CNN_KERNELS_H
#define CNN_KERNELS_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- transposes */

/* d[k*dstride + i] = src[i*ld + k] for k < kc and i < lanes (<= 16), zero
 * for rows <= i < lanes. The layout changes of the GEMM's packing and of
 * Winograd (NCHW <-> channel-last) are such transposes; a scalar loop
 * stores one float per cycle, as slow as the FMAs it feeds when the other
 * dimension is small, so at the AVX-512 level they are 16 x 16 register
 * transposes (gemm_avx512.c). Pure data movement: the same bits either
 * way. */
void cnn_transpose_avx512(const float *src, long ld, int rows, int kc, float *d, long dstride,
                          int lanes);

static inline void cnn_transpose(const float *src, long ld, int rows, int kc, float *d,
                                 long dstride, int lanes)
{
    if (cnn_simd_level() == CNN_SIMD_AVX512) {
        cnn_transpose_avx512(src, ld, rows, kc, d, dstride, lanes);
        return;
    }
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < lanes; i++) d[k * dstride + i] = i < rows ? src[i * ld + k] : 0.0f;
}

/* ------------------------------------------------------ fixed-order sums */

/* Sums kept in CNN_LANES independent lanes and added by halves at the end:
 * the loops that fill them vectorise (one running sum would be a chain of
 * dependent adds the compiler may not reorder), and the order, so the
 * bits, never depends on the thread count or the instruction set. */
#define CNN_LANES 16

static inline float cnn_lanes_total(float *l)
{
    for (int w = CNN_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++) l[j] += l[j + w];
    return l[0];
}

/* db[f] = the sum over n images and hw positions of dy (n, F, hw) for
 * f < F, in CNN_LANES lanes as cnn_lanes_total adds them: the same bits as
 * the portable loop in conv2d.c, eight filters at a time. */
void cnn_bias_grad_avx512(const float *dy, int n, int F, int hw, float *db);

/* ------------------------------------- conv's shifted planes (AVX-512)
 *
 * The shifted-plane algorithm of src/layers/conv2d_planes.c: every tap of
 * a layer reads one contiguous run of a phase plane at a fixed offset, so
 * a convolution is a sum of shifted runs weighted by scalars. Grids are
 * whole vectors of CNN_PLANES_V floats. */
#define CNN_PLANES_V 16

/* Where the grid vectors of an output land in a compact image: vector v
 * has cnt[v] pieces (one per image row it touches); piece k stores the
 * lanes mask[v*k_max + k] at element off[v*k_max + k] + lane. */
typedef struct {
    int k_max;
    const int *cnt, *off;
    const unsigned short *mask;
} cnn_planes_store;

/* out (M x q, row stride ldo) = bias + A (M x T, row stride lda) times the
 * shifted runs in[off[t] + 0 .. q) of t < T; q a multiple of CNN_PLANES_V;
 * bias may be NULL. With st, row i's grid vectors are stored through the
 * table into out + i*ldo instead. */
void cnn_planes_shift_avx512(int M, int T, int q, const float *a, int lda, const int *off,
                             const float *in, float *out, int ldo, const float *bias,
                             const cnn_planes_store *st);

/* part[f*T + t] (+= if add) = sum over images g < G and q of
 * dy[g*dgs + f*pz + q] * x[g*xgs + off[t] + q]: dW by dot products for F
 * filters and T taps, over grids of q (a multiple of CNN_PLANES_V). */
void cnn_planes_dw_avx512(int F, int T, int G, int q, const float *dy, long dgs, long pz,
                          const float *x, long xgs, const int *off, float *part, int add);

/* wtt[t*FV*16 + l] (+= if add) = sum over images g < G and outputs (oy,
 * ox) < (ho, wo) of x[g*xgs + off[t] + oy*wq + ox] * dyt[g*dgs + (oy*wo +
 * ox)*FV*16 + l]: dW transposed, with the filters in the lanes (FV = 1 or
 * 2 vectors of them), for T taps. */
void cnn_planes_dwt_avx512(int T, int FV, int G, const float *x, long xgs, const int *off,
                           int ho, int wo, int wq, const float *dyt, long dgs, float *wtt,
                           int add);

/* yt[(oy*wo + ox)*FV*16 + l] = wft[T*FV*16 + l] + sum over t < T of
 * xin[off[t] + oy*wq + ox] * wft[t*FV*16 + l]: the forward with the
 * filters in the lanes (wft: the weights transposed, then the bias). */
void cnn_planes_fwt_avx512(const float *xin, int wq, const int *off, int T, const float *wft,
                           int FV, int ho, int wo, float *yt);

/* d[k] = src[k*sw + off] for k in [lo, hi), from a row of w <= 32 floats */
void cnn_planes_pick_row_avx512(float *d, const float *src, int w, int sw, int off, int lo,
                                int hi);

/* rows x width floats from s (row stride sld) to d (row stride dld) */
void cnn_copy_rows_avx512(float *d, long dld, const float *s, long sld, int rows, int width);

/* dx (C, H, W) of a layer with stride sh x 2, zero padding (pad_h, pad_w)
 * and padded rows of wq <= 16 grid columns: row r of the padded dx is
 * the two column phases of its row phase interleaved. ph holds the phases
 * (C, sh, 2, grid of qx floats) of the padded dx, rows wq apart. */
void cnn_planes_interleave_dx_avx512(const float *ph, long qx, int wq, int C, int H, int W,
                                     int sh, int pad_h, int pad_w, float *dx);

/* dy (F, hw) -> dyt (hw, lf), lanes F..lf zero; and back, yt (hw, lf) ->
 * y (F, hw). lf: F rounded up to whole vectors. */
void cnn_to_lanes_avx512(int F, int hw, int lf, const float *dy, float *dyt);
void cnn_from_lanes_avx512(int F, int hw, int lf, const float *yt, float *y);

/* ------------------------------------------- 2x2 stride-2 pooling (AVX-512)
 *
 * `rows` output rows of a 2x2 stride-2 unpadded pool over planes of width
 * w (wo = w / 2 windows per row); output row r reads input rows 2r and
 * 2r + 1 at x + 2r*w. The max records each window's winner as a byte code
 * in win (0 1 / 2 3 for a b / c d); the backward writes the 2 * rows dx
 * rows under the output rows whole. win is NULL for the average. */
void cnn_pool2x2_rows_avx512(int is_max, const float *x, int w, int wo, size_t rows, float *y,
                             uint8_t *win);
void cnn_pool2x2_back_rows_avx512(int is_max, const float *dy, const uint8_t *win, int w,
                                  int wo, size_t rows, float *dx);

#ifdef __cplusplus
}
#endif

#endif
