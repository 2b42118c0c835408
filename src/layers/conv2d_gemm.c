/* conv2d_gemm.c — conv by im2col + GEMM, the algorithm for any layer
 * (conv2d.c's conv_choose says when the others run instead).
 *
 * Per image, y = W (F x C*kh*kw) * im2col(x) (C*kh*kw x Ho*Wo), so all the
 * arithmetic happens inside the cache-blocked GEMM; dW += dy * im2col(x)^T
 * (or dot products, for a small C*kh*kw), and dx = col2im(W^T dy).
 *
 * Threads. A batch of at least as many images as threads gives each
 * thread whole images (its own im2col buffer, serial GEMM); fewer images
 * than threads split each image over the threads by bands of output rows
 * (conv_gemm_forward_bands), and in the backward the GEMM itself runs on
 * the threads. The GEMM never splits K, so every output is the same bits
 * on any thread count.
 */
#include "conv2d.h"
#include "kernels/kernels.h"

#include <string.h>

/* One image. x: (C, H, W)  col: (C*kh*kw, Ho*Wo)  y: (F, Ho*Wo) */
static void image_forward(const conv2d *cv, const float *x, float *y, float *col)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const float *b = conv_bias(cv);
    const float *a = x;
    if (!cv->direct) {
        cnn_im2col(g, x, col);
        a = col;
    }
    float beta = 0.0f;
    if (b) { /* start C at the bias so the GEMM adds it for free */
        for (int f = 0; f < F; f++)
            for (int p = 0; p < hw; p++) y[(size_t)f * hw + p] = b[f];
        beta = 1.0f;
    }
    cnn_sgemm_serial(0, 0, F, hw, ckk, 1.0f, conv_weight(cv), ckk, a, hw, beta, y, hw);
}

typedef struct {
    const conv2d *cv;
    const float *x;
    float *y;
} gemm_job;

/* images [i0, i1) on thread t, with t's im2col buffer */
static void images_forward(void *ctx, long i0, long i1, int t)
{
    const gemm_job *j = ctx;
    const size_t isz = cnn_shape_size(j->cv->base.in), osz = cnn_shape_size(j->cv->base.out);
    for (long i = i0; i < i1; i++)
        image_forward(j->cv, j->x + i * isz, j->y + i * osz, conv_col(j->cv, t));
}

void conv_gemm_forward(const conv2d *cv, const float *x, float *y, int n, int nt)
{
    gemm_job j = {cv, x, y};
    cnn_parallel_for(nt, n, CNN_SPLIT_EACH, cv->base.ops->flops(&cv->base) * n, images_forward,
                     &j);
}

/* One image on nt threads (a batch smaller than the thread count: single-
 * image inference). Each thread takes a band of output rows: it builds the
 * im2col columns of its band, in its own contiguous buffer, and multiplies
 * them. A shared im2col split only in the GEMM, or bands of one shared
 * matrix, ran slower than one thread: cross-core invalidations, and
 * prefetchers pulling the neighbour's lines across (bench/NOTES.md, one
 * image on two threads). */
typedef struct {
    const conv2d *cv;
    const float *x;
    float *y;
    int T; /* bands */
} bands_job;

/* bands [t0, t1) of the T bands of output rows of image j->x, on thread t */
static void image_bands(void *ctx, long t0, long t1, int t)
{
    const bands_job *j = ctx;
    const conv2d *cv = j->cv;
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const float *b = conv_bias(cv), *w = conv_weight(cv);
    const int oy0 = (int)(g->ho * t0 / j->T), oy1 = (int)(g->ho * t1 / j->T);
    const int p0 = oy0 * g->wo, np = (oy1 - oy0) * g->wo;
    const float *a = j->x + p0;
    int lda = hw;
    if (np <= 0) return;
    if (!cv->direct) {
        float *col = conv_col(cv, t);
        cnn_im2col_rows(g, j->x, oy0, oy1, col, (size_t)np);
        a = col;
        lda = np;
    }
    if (b)
        for (int f = 0; f < F; f++)
            for (int p = p0; p < p0 + np; p++) j->y[(size_t)f * hw + p] = b[f];
    cnn_sgemm_serial(0, 0, F, np, ckk, 1.0f, w, ckk, a, lda, b ? 1.0f : 0.0f, j->y + p0, hw);
}

void conv_gemm_forward_bands(const conv2d *cv, const float *x, float *y, int n, int nt)
{
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    for (int i = 0; i < n; i++) {
        bands_job j = {cv, x + i * isz, y + i * osz, nt};
        cnn_parallel_for(nt, nt, CNN_SPLIT_EVEN, cv->base.ops->flops(&cv->base), image_bands, &j);
    }
}

/* Weight gradient of one image by dot products, for layers whose C*kh*kw
 * is too small for the GEMM's register tiles (a 1-channel 3x3 layer has
 * K = 9: the GEMM would compute a 14x32 tile to use 16x9 of it), in fixed-
 * order lane sums (kernels.h). dy: (F, hw)  col: (ckk, hw)  part: (F, ckk),
 * overwritten or added to. */
static void dw_dots(int F, int ckk, int hw, const float *restrict dy, const float *restrict col,
                    float *restrict part, int add)
{
    for (int f = 0; f < F; f += 4) {
        const int nf = F - f < 4 ? F - f : 4;
        for (int r = 0; r < ckk; r++) {
            const float *b = col + (size_t)r * hw;
            /* up to 4 filters share each load of the col row */
            float l[4][CNN_LANES] = {{0}};
            const float *a[4];
            for (int q = 0; q < 4; q++) a[q] = dy + (size_t)(f + (q < nf ? q : 0)) * hw;
            int p = 0;
            for (; p + CNN_LANES <= hw; p += CNN_LANES)
                for (int j = 0; j < CNN_LANES; j++) {
                    float bv = b[p + j];
                    l[0][j] += a[0][p + j] * bv;
                    l[1][j] += a[1][p + j] * bv;
                    l[2][j] += a[2][p + j] * bv;
                    l[3][j] += a[3][p + j] * bv;
                }
            for (int j = 0; p + j < hw; j++)
                for (int q = 0; q < 4; q++) l[q][j] += a[q][p + j] * b[p + j];
            for (int q = 0; q < nf; q++) {
                float s = cnn_lanes_total(l[q]);
                float *d = part + (size_t)(f + q) * ckk + r;
                *d = add ? *d + s : s;
            }
        }
    }
}

void conv_gemm_image_dx(const conv2d *cv, const float *dy, float *dx, float *col, int gemm_nt)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const float *w = conv_weight(cv);
    if (cv->direct) {
        cnn_sgemm_threads(gemm_nt, 1, 0, ckk, hw, F, 1.0f, w, ckk, dy, hw, 0.0f, dx, hw);
        return;
    }
    /* dcol (ckk x hw) = W^T dY_i, folded back onto the image */
    cnn_sgemm_threads(gemm_nt, 1, 0, ckk, hw, F, 1.0f, w, ckk, dy, hw, 0.0f, col, hw);
    memset(dx, 0, sizeof(float) * cnn_shape_size(cv->base.in));
    cnn_col2im(g, col, dx);
}

/* col is reused for dcol once dW no longer needs it */
void conv_gemm_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                              int i0, int i1, float *part, float *col, int gemm_nt)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    const int dots = cv->plan.dw == CONV_DW_IM2COL_DOTS;
    for (int i = i0; i < i1; i++) {
        const float *xi = x + i * isz, *dyi = dy + i * osz;
        const float *a = xi;
        if (!cv->direct) {
            cnn_im2col(g, xi, col);
            a = col;
        }
        /* dW (F x ckk) += dY_i (F x hw) * col_i^T */
        if (dots) dw_dots(F, ckk, hw, dyi, a, part, i != i0);
        else
            cnn_sgemm_threads(gemm_nt, 0, 1, F, ckk, hw, 1.0f, dyi, hw, a, hw, i == i0 ? 0.0f : 1.0f,
                              part, ckk);
        if (dx) conv_gemm_image_dx(cv, dyi, dx + i * isz, col, gemm_nt);
    }
}
