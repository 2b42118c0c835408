/* conv2d_winograd.c — Winograd minimal filtering F(4x4, 3x3) for 3x3
 * stride-1 conv layers: the forward, and with the same machinery dx and dW
 * (their comments below say how).
 *
 * Reference: A. Lavin and S. Gray, "Fast Algorithms for Convolutional
 * Neural Networks", CVPR 2016, section 4 and the F(4x4, 3x3) matrices of
 * its section 5. Each 4x4 output tile Y of one filter over one channel is
 *
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A
 *
 * with g the 3x3 filter and d the 6x6 input tile at the tile's corner
 * (the cross-correlation of eq. 3.3, as in PyTorch), and
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0  |
 *         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |
 *         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |
 *         | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |
 *         | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       |   0     0     1   |
 *
 *   A^T = | 1  1  1  1  1  0 |
 *         | 0  1 -1  2 -2  0 |
 *         | 0  1  1  4  4  0 |
 *         | 0  1 -1  8 -8  1 |
 *
 * Summed over channels, the elementwise product becomes, for each of the
 * 36 positions xi of the 6x6 transformed tile, one matrix product
 *
 *     M[xi] (tiles x F) = V[xi] (tiles x C) * U[xi] (C x F)
 *
 * with V the transformed input tiles and U the transformed filters: 36
 * GEMMs of K = C that do 36 multiplies per 16 outputs where the direct
 * convolution does 16 * 9 = 144 (4x fewer). The price is rounding: the
 * transforms' constants (up to 8 in A, 5 in B) make fp32 errors about 10x
 * those of a direct sum (tests/test_winograd.cpp measures them).
 *
 * Layout. The transforms run 16 channels (input) or 16 filters (filters,
 * output) per vector, as plain C loops of 16 the compiler vectorises on any
 * instruction set: the input is first copied, padded, channel-last
 * (x[row][col][c]), so the 36 taps of a tile are 36 contiguous vectors;
 * V[xi] is (tiles x cp) and U[xi] (C x fp) row-major, M[xi] (tiles x fp).
 * The GEMMs only read the first C of cp columns and write F of fp, so the
 * padding lanes cost transform work but no multiplies.
 */
#include "conv2d_winograd.h"
#include "conv2d.h"
#include "kernels/kernels.h"

#include <string.h>

#define L CNN_WINO_LANES

/* V + M of a block kept to about this many floats (with the 1 MB L2 the
 * block's GEMMs read and write them from there) */
#define WINO_BLOCK_FLOATS (128 * 1024)

static int round_lanes(int v) { return (v + L - 1) / L * L; }

/* The stride of the 36 planes of u, v and m (one per xi): the transforms
 * write (or read) one vector in each of the 36 at a time, and at a stride
 * of an even number of cache lines those 36 lines fall into a few L1 sets
 * and evict each other (pytorchnet.conv2's filters at 8 KB: 21 us; at an
 * odd number of lines, 36 different sets: 6.7 us). */
static size_t plane_stride(size_t floats)
{
    size_t lines = (floats + L - 1) / L;
    return (lines | 1) * L;
}

void cnn_wino_plan(cnn_wino *p, int c, int f, int h, int w, int ph, int pw, cnn_padmode mode,
                   int ho, int wo)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->f = f;
    p->cp = round_lanes(c);
    p->fp = round_lanes(f);
    p->h = h;
    p->w = w;
    p->ph = ph;
    p->pw = pw;
    p->mode = mode;
    p->ho = ho;
    p->wo = wo;
    p->th = (ho + CNN_WINO_M - 1) / CNN_WINO_M;
    p->tw = (wo + CNN_WINO_M - 1) / CNN_WINO_M;
    int tiles = WINO_BLOCK_FLOATS / (CNN_WINO_P * (p->cp + p->fp));
    p->block_rows = tiles / p->tw;
    if (p->block_rows < 1) p->block_rows = 1;
    if (p->block_rows > p->th) p->block_rows = p->th;
    const size_t bt = (size_t)p->block_rows * p->tw;
    const size_t xp = (size_t)(CNN_WINO_M * p->block_rows + 2) * (CNN_WINO_M * p->tw + 2) * p->cp;
    const size_t v = CNN_WINO_P * plane_stride(bt * p->cp), m = CNN_WINO_P * plane_stride(bt * p->fp);
    const size_t yt = (size_t)CNN_WINO_M * CNN_WINO_M * bt * p->fp;
    const size_t wt = (size_t)c * 9 * L; /* the filter transform's, before any image */
    size_t front = xp + v > yt ? xp + v : yt;
    if (front < wt) front = wt;
    p->u_size = CNN_WINO_P * plane_stride((size_t)c * p->fp);
    p->m_offset = (front + L - 1) / L * L;
    p->scratch = p->m_offset + m;
    /* dW: dy channel-last, then the 36 sums, after the forward's layout */
    p->dyl_offset = p->scratch;
    p->mw_offset = p->dyl_offset + yt;
    p->dw_scratch = p->mw_offset + CNN_WINO_P * plane_stride((size_t)f * p->cp);
}

/* ------------------------------------------------------------ filters */

/* G g G^T for 16 filters: g holds their 9 taps, tap k of filter l at
 * g[k*L + l] (or at g[(8 - k)*L + l] with flip: the kernel rotated by 180
 * degrees); the 36 results go to d[xi*plane + l]. */
static void filter_tile(const float *g, int flip, float *d, size_t plane)
{
    float t[6][3][L];
    /* t = G g: each column (g0, g1, g2) of g -> 6 values */
    for (int j = 0; j < 3; j++)
        for (int l = 0; l < L; l++) {
            const int k0 = flip ? 8 - j : j, k1 = flip ? 5 - j : 3 + j, k2 = flip ? 2 - j : 6 + j;
            const float g0 = g[k0 * L + l], g1 = g[k1 * L + l], g2 = g[k2 * L + l];
            const float a = -(g0 + g2) * (1.0f / 6), b = g0 * (1.0f / 24) + g2 * (1.0f / 6);
            t[0][j][l] = g0 * 0.25f;
            t[1][j][l] = a - g1 * (1.0f / 6);
            t[2][j][l] = a + g1 * (1.0f / 6);
            t[3][j][l] = b + g1 * (1.0f / 12);
            t[4][j][l] = b - g1 * (1.0f / 12);
            t[5][j][l] = g2;
        }
    /* (G g) G^T: each row of t -> 6 values */
    float o[36][L];
    for (int i = 0; i < 6; i++)
        for (int l = 0; l < L; l++) {
            const float g0 = t[i][0][l], g1 = t[i][1][l], g2 = t[i][2][l];
            const float a = -(g0 + g2) * (1.0f / 6), b = g0 * (1.0f / 24) + g2 * (1.0f / 6);
            o[i * 6 + 0][l] = g0 * 0.25f;
            o[i * 6 + 1][l] = a - g1 * (1.0f / 6);
            o[i * 6 + 2][l] = a + g1 * (1.0f / 6);
            o[i * 6 + 3][l] = b + g1 * (1.0f / 12);
            o[i * 6 + 4][l] = b - g1 * (1.0f / 12);
            o[i * 6 + 5][l] = g2;
        }
    /* one store stream per position, so the loops vectorise (six stores
     * into planes of unknown stride would not) */
    for (int k = 0; k < 36; k++)
        for (int l = 0; l < L; l++) d[k * plane + l] = o[k][l];
}

/* u[xi][c][f] = (G g G^T)[xi], 16 filters at a time: their weights first
 * transposed into wt (C*9 x 16), so each tap of 16 filters is one vector */
void cnn_wino_filters(const cnn_wino *p, const float *w, float *u, float *scratch)
{
    const int C = p->c, F = p->f, fp = p->fp, ck = C * 9;
    const size_t plane = plane_stride((size_t)C * fp); /* one xi of u */
    float *wt = scratch;
    for (int f0 = 0; f0 < fp; f0 += L) {
        cnn_transpose(w + (size_t)f0 * ck, ck, F - f0 < L ? F - f0 : L, ck, wt, L, L);
        for (int c = 0; c < C; c++)
            filter_tile(wt + (size_t)c * 9 * L, 0, u + (size_t)c * fp + f0, plane);
    }
}

/* The filters of dx: p->c is the layer's filter count and p->f its
 * channel count; u[xi][f][c] = (G rot180(w[f][c]) G^T)[xi], 16 channels at
 * a time (their 9 taps, contiguous in w, transposed into 9 vectors). */
void cnn_wino_filters_dx(const cnn_wino *p, const float *w, float *u, float *scratch)
{
    const int F = p->c, C = p->f, cp = p->fp;
    const size_t plane = plane_stride((size_t)F * cp);
    float *wt = scratch;
    for (int f = 0; f < F; f++)
        for (int c0 = 0; c0 < cp; c0 += L) {
            cnn_transpose(w + ((size_t)f * C + c0) * 9, 9, C - c0 < L ? C - c0 : L, 9, wt, L, L);
            filter_tile(wt, 1, u + (size_t)f * cp + c0, plane);
        }
}

/* -------------------------------------------------------------- input */

/* Padded rows [r0, r0 + nr) of x (C, H, W), channel-last into xp
 * (nr, wpp, cp): padded pixel (r, col) is x[c][r - ph][col - pw] read
 * through the padding mode, channels past C zero; past the padded image
 * (tiles that overhang the output) zero, only ever read for outputs that
 * are thrown away. */
static void pack_rows(const cnn_wino *p, const float *x, int r0, int nr, int wpp, float *xp)
{
    const int hp = p->h + 2 * p->ph, wp = p->w + 2 * p->pw, cp = p->cp;
    const size_t hw = (size_t)p->h * p->w;
    for (int r = 0; r < nr; r++) {
        const int pr = r0 + r;
        const int sr = pr < hp ? cnn_pad_index(pr - p->ph, p->h, p->mode) : -1;
        float *d = xp + (size_t)r * wpp * cp;
        if (sr < 0) {
            memset(d, 0, sizeof(float) * (size_t)wpp * cp);
            continue;
        }
        /* the image's own columns: a (C x W) -> (W x cp) transpose */
        for (int c0 = 0; c0 < cp; c0 += L)
            cnn_transpose(x + c0 * hw + (size_t)sr * p->w, (long)hw, p->c - c0 < L ? p->c - c0 : L,
                            p->w, d + (size_t)p->pw * cp + c0, cp, L);
        /* the padding columns copy the column they read */
        for (int col = 0; col < wpp; col++) {
            if (col >= p->pw && col < p->pw + p->w) continue;
            const int sc = col < wp ? cnn_pad_index(col - p->pw, p->w, p->mode) : -1;
            float *dc = d + (size_t)col * cp;
            if (sc < 0) memset(dc, 0, sizeof(float) * cp);
            else memcpy(dc, d + (size_t)(sc + p->pw) * cp, sizeof(float) * cp);
        }
    }
}

/* v[xi][t][c] = (B^T d B)[xi] for the tiles of tile rows [0, nrows) of the
 * packed rows, 16 channels at a time */
static void input_transform(const cnn_wino *p, const float *xp, int nrows, int wpp, float *v)
{
    const int cp = p->cp, tw = p->tw;
    const size_t plane = plane_stride((size_t)nrows * tw * cp); /* one xi of v */
    for (int ty = 0; ty < nrows; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const float *s = xp + ((size_t)ty * CNN_WINO_M * wpp + (size_t)tx * CNN_WINO_M) * cp;
            float *dv = v + (size_t)(ty * tw + tx) * cp;
            for (int c0 = 0; c0 < cp; c0 += L) {
                float t[6][6][L];
                /* t = d B: B^T along each row i of the tile */
                for (int i = 0; i < 6; i++) {
                    const float *r = s + (size_t)i * wpp * cp + c0;
                    for (int l = 0; l < L; l++) {
                        const float d0 = r[l], d1 = r[cp + l], d2 = r[2 * cp + l],
                                    d3 = r[3 * cp + l], d4 = r[4 * cp + l], d5 = r[5 * cp + l];
                        const float a = d4 - 4.0f * d2, b = d3 - 4.0f * d1;
                        const float e = d4 - d2, q = 2.0f * (d3 - d1);
                        t[i][0][l] = 4.0f * d0 - 5.0f * d2 + d4;
                        t[i][1][l] = a + b;
                        t[i][2][l] = a - b;
                        t[i][3][l] = e + q;
                        t[i][4][l] = e - q;
                        t[i][5][l] = 4.0f * d1 - 5.0f * d3 + d5;
                    }
                }
                /* B^T (d B): B^T down each column j */
                float o[36][L];
                for (int j = 0; j < 6; j++)
                    for (int l = 0; l < L; l++) {
                        const float d0 = t[0][j][l], d1 = t[1][j][l], d2 = t[2][j][l],
                                    d3 = t[3][j][l], d4 = t[4][j][l], d5 = t[5][j][l];
                        const float a = d4 - 4.0f * d2, b = d3 - 4.0f * d1;
                        const float e = d4 - d2, q = 2.0f * (d3 - d1);
                        o[0 * 6 + j][l] = 4.0f * d0 - 5.0f * d2 + d4;
                        o[1 * 6 + j][l] = a + b;
                        o[2 * 6 + j][l] = a - b;
                        o[3 * 6 + j][l] = e + q;
                        o[4 * 6 + j][l] = e - q;
                        o[5 * 6 + j][l] = 4.0f * d1 - 5.0f * d3 + d5;
                    }
                float *dv0 = dv + c0;
                for (int k = 0; k < 36; k++)
                    for (int l = 0; l < L; l++) dv0[k * plane + l] = o[k][l];
            }
        }
}

/* ------------------------------------------------------------- output */

/* Tile rows [ty0, ty0 + nrows) of y = A^T m A + b, 16 filters at a time
 * into yt (channel-last, 4*nrows x 4*tw x fp), then transposed into y
 * (F, Ho, Wo) with the overhang of the last tile row and column dropped */
static void output_transform(const cnn_wino *p, const float *m, const float *b, int ty0,
                             int nrows, float *y, float *yt)
{
    const int fp = p->fp, F = p->f, tw = p->tw, ho = p->ho, wo = p->wo;
    const int ytw = CNN_WINO_M * tw; /* yt's row, in positions */
    const size_t plane = plane_stride((size_t)nrows * tw * fp); /* one xi of m */
    const size_t hw = (size_t)ho * wo;
    for (int ty = 0; ty < nrows; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const float *sm = m + (size_t)(ty * tw + tx) * fp;
            float *dy = yt + ((size_t)ty * CNN_WINO_M * ytw + (size_t)tx * CNN_WINO_M) * fp;
            for (int f0 = 0; f0 < fp; f0 += L) {
                float in[36][L], t[4][6][L], bias[L];
                for (int l = 0; l < L; l++) bias[l] = b && f0 + l < F ? b[f0 + l] : 0.0f;
                for (int k = 0; k < 36; k++)
                    for (int l = 0; l < L; l++) in[k][l] = sm[k * plane + f0 + l];
                /* t = A^T m: down each column j */
                for (int j = 0; j < 6; j++)
                    for (int l = 0; l < L; l++) {
                        const float m0 = in[0 * 6 + j][l], m1 = in[1 * 6 + j][l],
                                    m2 = in[2 * 6 + j][l], m3 = in[3 * 6 + j][l],
                                    m4 = in[4 * 6 + j][l], m5 = in[5 * 6 + j][l];
                        const float a = m1 + m2, d = m1 - m2, e = m3 + m4, q = m3 - m4;
                        t[0][j][l] = m0 + a + e;
                        t[1][j][l] = d + 2.0f * q;
                        t[2][j][l] = a + 4.0f * e;
                        t[3][j][l] = d + 8.0f * q + m5;
                    }
                /* (A^T m) A: along each row i, plus the bias */
                float o[16][L];
                for (int i = 0; i < 4; i++)
                    for (int l = 0; l < L; l++) {
                        const float m0 = t[i][0][l], m1 = t[i][1][l], m2 = t[i][2][l],
                                    m3 = t[i][3][l], m4 = t[i][4][l], m5 = t[i][5][l];
                        const float a = m1 + m2, d = m1 - m2, e = m3 + m4, q = m3 - m4;
                        o[i * 4 + 0][l] = (m0 + a + e) + bias[l];
                        o[i * 4 + 1][l] = (d + 2.0f * q) + bias[l];
                        o[i * 4 + 2][l] = (a + 4.0f * e) + bias[l];
                        o[i * 4 + 3][l] = (d + 8.0f * q + m5) + bias[l];
                    }
                /* one store stream per output, as in filter_tile */
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        for (int l = 0; l < L; l++)
                            dy[((size_t)i * ytw + j) * fp + f0 + l] = o[i * 4 + j][l];
            }
        }
    const int oy0 = ty0 * CNN_WINO_M;
    const int oy1 = (ty0 + nrows) * CNN_WINO_M < ho ? (ty0 + nrows) * CNN_WINO_M : ho;
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < wo; ox += L) {
            const int n = wo - ox < L ? wo - ox : L;
            cnn_transpose(yt + ((size_t)(oy - oy0) * ytw + ox) * fp, fp, n, F,
                            y + (size_t)oy * wo + ox, (long)hw, n);
        }
}

/* ------------------------------------------------------------- driver */

void cnn_wino_image(const cnn_wino *p, const float *u, const float *b, const float *x,
                    float *y, int ty0, int ty1, float *scratch)
{
    const int wpp = CNN_WINO_M * p->tw + 2;
    /* xp and v, dead once the GEMMs have run, share their space with yt */
    float *xp = scratch, *yt = scratch;
    float *v = xp + (size_t)(CNN_WINO_M * p->block_rows + 2) * wpp * p->cp;
    float *m = scratch + p->m_offset;
    for (int r0 = ty0; r0 < ty1; r0 += p->block_rows) {
        const int nrows = ty1 - r0 < p->block_rows ? ty1 - r0 : p->block_rows;
        const int tiles = nrows * p->tw;
        pack_rows(p, x, r0 * CNN_WINO_M, CNN_WINO_M * nrows + 2, wpp, xp);
        input_transform(p, xp, nrows, wpp, v);
        /* K = C in order whatever the block: the same bits for any split */
        const size_t vs = plane_stride((size_t)tiles * p->cp),
                     us = plane_stride((size_t)p->c * p->fp),
                     ms = plane_stride((size_t)tiles * p->fp);
        for (int xi = 0; xi < CNN_WINO_P; xi++)
            cnn_sgemm_serial(0, 0, tiles, p->f, p->c, 1.0f, v + xi * vs, p->cp, u + xi * us, p->fp,
                             0.0f, m + xi * ms, p->fp);
        output_transform(p, m, b, r0, nrows, y, yt);
    }
}

/* ------------------------------------------------------- weight gradient
 *
 * dW[f][c] = sum over output pixels of dy[f] times the input window under
 * it (eq. 3.4): a correlation of the padded input with dy. Differentiating
 * the forward's Y = A^T [(G g G^T) .* (B^T d B)] A with respect to g gives,
 * per tile, dg = G^T [(A e A^T) .* (B^T d B)] G with e the tile's 4x4 dy
 * (the transposition principle: the same matrices, used backwards). So
 *
 *     Mw[xi] (F x C) = sum over tiles of E[xi]^T (F x tiles) * V[xi] (tiles x C)
 *     dW[f][c] = G^T Mw[.][f][c] G
 *
 * with V the forward's input transform and E[xi][t][f] = (A e A^T)[xi]: 36
 * GEMMs of K = tiles, 4x fewer multiplies than im2col's (F x C*9 x Ho*Wo).
 * Overhanging tile positions have e = 0, so they add nothing; padding is
 * in the packed input, so every mode works.
 *
 *   A = | 1  0  0  0 |       G^T = | 1/4 -1/6 -1/6 1/24  1/24 0 |
 *       | 1  1  1  1 |             |  0  -1/6  1/6 1/12 -1/12 0 |
 *       | 1 -1  1 -1 |             |  0  -1/6 -1/6 1/6   1/6  1 |
 *       | 1  2  4  8 |
 *       | 1 -2  4 -8 |
 *       | 0  0  0  1 |
 */

/* Output rows of tile rows [r0, r0 + nrows) of dy (F, Ho, Wo), channel-
 * last into dyl (4*nrows, 4*tw, fp); zero past Ho, Wo and F */
static void pack_dy(const cnn_wino *p, const float *dy, int r0, int nrows, float *dyl)
{
    const int fp = p->fp, ytw = CNN_WINO_M * p->tw, ho = p->ho, wo = p->wo;
    const size_t hw = (size_t)ho * wo;
    for (int r = 0; r < CNN_WINO_M * nrows; r++) {
        const int oy = CNN_WINO_M * r0 + r;
        float *d = dyl + (size_t)r * ytw * fp;
        if (oy >= ho) {
            memset(d, 0, sizeof(float) * (size_t)ytw * fp);
            continue;
        }
        for (int f0 = 0; f0 < fp; f0 += L)
            cnn_transpose(dy + f0 * hw + (size_t)oy * wo, (long)hw, p->f - f0 < L ? p->f - f0 : L,
                            wo, d + f0, fp, L);
        memset(d + (size_t)wo * fp, 0, sizeof(float) * (size_t)(ytw - wo) * fp);
    }
}

/* e[xi][t][f] = (A e A^T)[xi] for the tiles of dyl, 16 filters at a time */
static void dy_transform(const cnn_wino *p, const float *dyl, int nrows, float *e)
{
    const int fp = p->fp, tw = p->tw, ytw = CNN_WINO_M * tw;
    const size_t plane = plane_stride((size_t)nrows * tw * fp);
    for (int ty = 0; ty < nrows; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const float *s = dyl + ((size_t)ty * CNN_WINO_M * ytw + (size_t)tx * CNN_WINO_M) * fp;
            float *de = e + (size_t)(ty * tw + tx) * fp;
            for (int f0 = 0; f0 < fp; f0 += L) {
                float t[4][6][L], o[36][L];
                /* t = e A^T: A along each row i of the tile */
                for (int i = 0; i < 4; i++)
                    for (int l = 0; l < L; l++) {
                        const float *r = s + (size_t)i * ytw * fp + f0 + l;
                        const float e0 = r[0], e1 = r[fp], e2 = r[2 * fp], e3 = r[3 * fp];
                        const float a = e0 + e2, b = e1 + e3, c = e0 + 4.0f * e2, d = 2.0f * e1 + 8.0f * e3;
                        t[i][0][l] = e0;
                        t[i][1][l] = a + b;
                        t[i][2][l] = a - b;
                        t[i][3][l] = c + d;
                        t[i][4][l] = c - d;
                        t[i][5][l] = e3;
                    }
                /* A (e A^T): down each column j */
                for (int j = 0; j < 6; j++)
                    for (int l = 0; l < L; l++) {
                        const float e0 = t[0][j][l], e1 = t[1][j][l], e2 = t[2][j][l], e3 = t[3][j][l];
                        const float a = e0 + e2, b = e1 + e3, c = e0 + 4.0f * e2, d = 2.0f * e1 + 8.0f * e3;
                        o[0 * 6 + j][l] = e0;
                        o[1 * 6 + j][l] = a + b;
                        o[2 * 6 + j][l] = a - b;
                        o[3 * 6 + j][l] = c + d;
                        o[4 * 6 + j][l] = c - d;
                        o[5 * 6 + j][l] = e3;
                    }
                for (int k = 0; k < 36; k++)
                    for (int l = 0; l < L; l++) de[k * plane + f0 + l] = o[k][l];
            }
        }
}

void cnn_wino_dw_image(const cnn_wino *p, const float *x, const float *dy, int first,
                       float *scratch)
{
    const int wpp = CNN_WINO_M * p->tw + 2;
    float *xp = scratch;
    float *v = xp + (size_t)(CNN_WINO_M * p->block_rows + 2) * wpp * p->cp;
    float *e = scratch + p->m_offset, *dyl = scratch + p->dyl_offset;
    float *mw = scratch + p->mw_offset;
    const size_t ws = plane_stride((size_t)p->f * p->cp);
    for (int r0 = 0; r0 < p->th; r0 += p->block_rows) {
        const int nrows = p->th - r0 < p->block_rows ? p->th - r0 : p->block_rows;
        const int tiles = nrows * p->tw;
        pack_rows(p, x, r0 * CNN_WINO_M, CNN_WINO_M * nrows + 2, wpp, xp);
        input_transform(p, xp, nrows, wpp, v);
        pack_dy(p, dy, r0, nrows, dyl);
        dy_transform(p, dyl, nrows, e);
        const size_t vs = plane_stride((size_t)tiles * p->cp), es = plane_stride((size_t)tiles * p->fp);
        /* the image's blocks, then the chunk's images, add in order */
        const float beta = first && r0 == 0 ? 0.0f : 1.0f;
        for (int xi = 0; xi < CNN_WINO_P; xi++)
            cnn_sgemm_serial(1, 0, p->f, p->c, tiles, 1.0f, e + xi * es, p->fp, v + xi * vs, p->cp,
                             beta, mw + xi * ws, p->cp);
    }
}

void cnn_wino_dw_finish(const cnn_wino *p, const float *scratch, float *dw)
{
    const int C = p->c, cp = p->cp;
    const float *mw = scratch + p->mw_offset;
    const size_t plane = plane_stride((size_t)p->f * cp);
    for (int f = 0; f < p->f; f++)
        for (int c0 = 0; c0 < C; c0 += L) {
            float in[36][L], t[3][6][L], o[9][L];
            for (int k = 0; k < 36; k++)
                for (int l = 0; l < L; l++) in[k][l] = mw[k * plane + (size_t)f * cp + c0 + l];
            /* t = G^T M: down each column j */
            for (int j = 0; j < 6; j++)
                for (int l = 0; l < L; l++) {
                    const float m0 = in[0 * 6 + j][l], m1 = in[1 * 6 + j][l], m2 = in[2 * 6 + j][l],
                                m3 = in[3 * 6 + j][l], m4 = in[4 * 6 + j][l], m5 = in[5 * 6 + j][l];
                    const float a = m1 + m2, b = m3 + m4;
                    t[0][j][l] = m0 * 0.25f - a * (1.0f / 6) + b * (1.0f / 24);
                    t[1][j][l] = (m2 - m1) * (1.0f / 6) + (m3 - m4) * (1.0f / 12);
                    t[2][j][l] = (b - a) * (1.0f / 6) + m5;
                }
            /* (G^T M) G: along each row i */
            for (int i = 0; i < 3; i++)
                for (int l = 0; l < L; l++) {
                    const float m0 = t[i][0][l], m1 = t[i][1][l], m2 = t[i][2][l], m3 = t[i][3][l],
                                m4 = t[i][4][l], m5 = t[i][5][l];
                    const float a = m1 + m2, b = m3 + m4;
                    o[i * 3 + 0][l] = m0 * 0.25f - a * (1.0f / 6) + b * (1.0f / 24);
                    o[i * 3 + 1][l] = (m2 - m1) * (1.0f / 6) + (m3 - m4) * (1.0f / 12);
                    o[i * 3 + 2][l] = (b - a) * (1.0f / 6) + m5;
                }
            /* o (9 taps x 16 channels) -> dw[f][c0 + l][0..9) */
            cnn_transpose(&o[0][0], L, 9, C - c0 < L ? C - c0 : L, dw + ((size_t)f * C + c0) * 9, 9, 9);
        }
}

/* ------------------------------------------------------------ the layer
 *
 * conv2d.c runs these for the plan's Winograd parts. Each thread
 * transforms the filters into its own buffer (a few microseconds): a
 * shared copy written by one core costs the other a cross-core transfer
 * per line when it reads it (bench/NOTES.md). The backward's dx is the
 * same forward run on dy (conv_wg_run with cv->wgd); dW sums the
 * transformed tiles of each gradient chunk (conv_wg_chunk_dw). */

/* Thread t's part of a path's buffer: a copy of the weights its filters
 * were transformed from, the transformed filters, then its scratch. */
static float *wg_part(const conv_wg *w, int t) { return w->buf + (size_t)t * w->size; }
static float *wg_u(const conv_wg *w, float *part) { return part; }
static float *wg_scratch(const conv_wg *w, float *part) { return part + w->p.u_size; }

/* Thread t's transformed filters, redone only when the parameter version
 * moved since they were made (a step, an init, a load): inference reuses
 * them. The transform is a pure function of the weights' bits, so a
 * reused copy is exactly what a new one would be. A layer outside a model
 * (version 0) redoes them on every call. */
static void wg_filters(const conv2d *cv, const conv_wg *wg, int t)
{
    float *part = wg_part(wg, t);
    const float *w = conv_weight(cv);
    const uint64_t version = cnn_layer_version(&cv->base);
    uint64_t *made = wg->made + (size_t)t * WG_MADE_STRIDE;
    if (version && *made == version) return;
    if (wg->dx) cnn_wino_filters_dx(&wg->p, w, wg_u(wg, part), wg_scratch(wg, part));
    else cnn_wino_filters(&wg->p, w, wg_u(wg, part), wg_scratch(wg, part));
    *made = version;
}

typedef struct {
    const conv2d *cv;
    const conv_wg *wg;
    const float *in, *b;
    float *out;
    int n, T; /* images; tile-row bands (split by rows) */
} wg_job;

/* images [i0, i1) on thread t, whole */
static void wg_images(void *ctx, long i0, long i1, int t)
{
    const wg_job *j = ctx;
    const cnn_wino *p = &j->wg->p;
    const size_t isz = (size_t)p->c * p->h * p->w, osz = (size_t)p->f * p->ho * p->wo;
    float *part = wg_part(j->wg, t);
    wg_filters(j->cv, j->wg, t);
    for (long i = i0; i < i1; i++)
        cnn_wino_image(p, wg_u(j->wg, part), j->b, j->in + i * isz, j->out + i * osz, 0, p->th,
                       wg_scratch(j->wg, part));
}

/* bands [k0, k1) of the T bands of tile rows of every image, on thread t */
static void wg_bands(void *ctx, long k0, long k1, int t)
{
    const wg_job *j = ctx;
    const cnn_wino *p = &j->wg->p;
    const size_t isz = (size_t)p->c * p->h * p->w, osz = (size_t)p->f * p->ho * p->wo;
    const int ty0 = (int)(p->th * k0 / j->T), ty1 = (int)(p->th * k1 / j->T);
    float *part = wg_part(j->wg, t);
    if (ty1 <= ty0) return;
    wg_filters(j->cv, j->wg, t);
    for (int i = 0; i < j->n; i++)
        cnn_wino_image(p, wg_u(j->wg, part), j->b, j->in + i * isz, j->out + i * osz, ty0, ty1,
                       wg_scratch(j->wg, part));
}

/* A batch splits by images; fewer images than threads split each image by
 * tile rows. Every output is computed the same way in either case, so the
 * bits do not depend on the thread count. */
void conv_wg_run(const conv2d *cv, const conv_wg *wg, const float *in, float *out,
                 const float *b, int n, int nt)
{
    wg_job j = {cv, wg, in, b, out, n, nt};
    /* counted as the direct convolution's FLOPs */
    const double work = cv->base.ops->flops(&cv->base) * n;
    if (n >= nt) cnn_parallel_for(nt, n, CNN_SPLIT_EACH, work, wg_images, &j);
    else cnn_parallel_for(nt, nt, CNN_SPLIT_EVEN, work, wg_bands, &j);
}

/* The sums stay in the transformed domain until the chunk's last image */
void conv_wg_chunk_dw(const conv2d *cv, const float *x, const float *dy, int i0, int i1,
                      float *part, int t)
{
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    float *scratch = wg_part(&cv->wgw, t);
    for (int i = i0; i < i1; i++)
        cnn_wino_dw_image(&cv->wgw.p, x + i * isz, dy + i * osz, i == i0, scratch);
    cnn_wino_dw_finish(&cv->wgw.p, scratch, part);
}

/* A path's floats per thread, its geometry set: `scratch` after the
 * transformed filters if the path has filters */
static void wg_size(const conv2d *cv, conv_wg *w, int filters, size_t scratch)
{
    w->size = (filters ? w->p.u_size : 0) + scratch;
}

/* dx is the forward on dy with C and F swapped, padding 2 - pad and the
 * kernels rotated (cnn_wino_filters_dx); dW takes the forward's geometry. */
void conv_wg_layout(conv2d *cv, int threads, size_t bytes[CONV_WG_BUFS])
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters;
    conv_wg *const paths[3] = {&cv->wg, &cv->wgd, &cv->wgw};
    for (int k = 0; k < 3; k++) paths[k]->size = 0;
    if (cv->plan.fwd == CONV_FWD_WINOGRAD) {
        cnn_wino_plan(&cv->wg.p, g->c, F, g->h, g->w, g->ph, g->pw, g->mode, g->ho, g->wo);
        cv->wg.dx = 0;
        wg_size(cv, &cv->wg, 1, cv->wg.p.scratch);
    }
    if (cv->plan.dx == CONV_DX_WINOGRAD) {
        cnn_wino_plan(&cv->wgd.p, F, g->c, g->ho, g->wo, 2 - g->ph, 2 - g->pw, CNN_PAD_ZERO, g->h,
                      g->w);
        cv->wgd.dx = 1;
        wg_size(cv, &cv->wgd, 1, cv->wgd.p.scratch);
    }
    if (cv->plan.dw == CONV_DW_WINOGRAD) {
        cnn_wino_plan(&cv->wgw.p, g->c, F, g->h, g->w, g->ph, g->pw, g->mode, g->ho, g->wo);
        wg_size(cv, &cv->wgw, 0, cv->wgw.p.dw_scratch);
    }
    /* per path: its buffers for every thread, and their version stamps */
    for (int k = 0; k < 3; k++) {
        const int used = paths[k]->size > 0;
        bytes[2 * k] = used ? cnn_mul_size(cnn_mul_size(paths[k]->size, (size_t)threads),
                                           sizeof(float))
                            : 0;
        bytes[2 * k + 1] = used ? sizeof(uint64_t) * WG_MADE_STRIDE * (size_t)threads : 0;
    }
}

cnn_status conv_wg_reserve(conv2d *cv, int threads)
{
    size_t bytes[CONV_WG_BUFS];
    conv_wg_layout(cv, threads, bytes);
    conv_wg *const paths[3] = {&cv->wg, &cv->wgd, &cv->wgw};
    for (int k = 0; k < 3; k++) {
        if (!bytes[2 * k]) continue;
        /* zeroed: the GEMMs never write M's lanes past F, which the output
         * transform reads (and throws away) */
        paths[k]->buf = cnn_alloc(bytes[2 * k], "conv Winograd buffers");
        paths[k]->made = cnn_alloc(bytes[2 * k + 1], "conv Winograd version stamps");
        if (!paths[k]->buf || !paths[k]->made) return CNN_ERR_NOMEM;
    }
    return CNN_OK;
}

void conv_wg_free(conv2d *cv)
{
    conv_wg *const paths[3] = {&cv->wg, &cv->wgd, &cv->wgw};
    for (int k = 0; k < 3; k++) {
        cnn_free(paths[k]->buf);
        cnn_free(paths[k]->made);
        memset(paths[k], 0, sizeof *paths[k]);
    }
}
