/* conv2d_planes.c — conv by shifted planes, for small layers on AVX-512
 * (conv2d.c's conv_choose says which: at most 32 filters, planes that stay
 * in L1/L2), and their micro-kernels in src/kernels/planes_avx512.c.
 *
 * For layers with few filters (the first layers of the presets: F = 6..16,
 * K = C*kh*kw = 9..150) the per-image GEMM wastes most of its register
 * tile on M = F rows, and im2col writes and reads a matrix kh*kw times the
 * image. Instead:
 *
 *  - the image is copied once, padded, into sh*sw "phase planes" per
 *    channel (plane (pr, pc) holds the padded pixels (r*sh + pr, c*sw + pc)),
 *    each hq x wq, so that for a stride of 1 there is one plane per channel;
 *  - output (oy, ox) is computed at grid position q = oy*wq + ox, and tap
 *    (c, i, j) reads plane (c, i%sh, j%sw) at q + (i/sh)*wq + j/sw: for
 *    every tap the whole output is ONE contiguous run of the input, read at
 *    a fixed offset. Grid columns ox >= wo are computed and thrown away
 *    (wq - wo = (kw-1)/sw of them per row).
 *
 * So y[f][q] = b[f] + sum_t W[f][t] * in[off[t] + q] (CONV_FWD_PLANES,
 * cnn_planes_shift_avx512): a tile of MB filters x PB vectors of q keeps
 * its accumulators in registers and each tap costs PB loads and MB
 * broadcasts for MB*PB FMAs, with no im2col. The tiles store straight into
 * y through a table of masked row pieces. CONV_FWD_PLANES_FILTERS puts the
 * filters in the lanes instead, when the thrown-away grid columns cost
 * more (lenet5.conv2).
 *
 * The same kernel computes dx: phase (pr, pc) of the padded dx is the full
 * correlation of dy, laid out on zero-margined grids of width wq, with the
 * taps (pr + sh*a, pc + sw*b) flipped: dxpad[c][pr][pc][q] = sum over (f,
 * a, b) of W[f][c][pr + sh*a][pc + sw*b] * dygrid[f][q + (ka-1-a)*wq +
 * (kb-1-b)], one kernel row per (channel, phase). The phases are then
 * folded (stride 1), interleaved (column stride 2) or scattered back onto
 * the pixels they came from.
 *
 * dW[f][t] = sum over q of dy[f][q] * in[off[t] + q] runs one of two ways:
 *  - CONV_DW_PLANES_DOTS: dot products with dy zero at the thrown-away
 *    grid positions, summed over a group of up to SP_GROUP images in the
 *    vector lanes before one horizontal add per (f, t);
 *  - CONV_DW_PLANES_FILTERS: filters in the lanes (dy transposed to (q,
 *    F)), broadcasting the input: no horizontal adds and only kept
 *    positions, but empty lanes when F is not a multiple of 16.
 * Groups are fixed within a chunk, so the bits still depend on n alone.
 *
 * Threads: images (forward) or gradient chunks (backward) over the
 * threads; a batch of fewer images than threads runs on one thread, its
 * layers being too small to split one image.
 */
#include "conv2d.h"
#include "kernels/kernels.h"

#include <string.h>

#define SP_V CNN_PLANES_V /* floats per vector */
#define SP_GROUP 4        /* images summed in registers for dW, at most */
#define SP_GROUP_FLOATS (96 * 1024) /* and their scratch kept to about this */

static int round_v(int q) { return (q + SP_V - 1) / SP_V * SP_V; }

/* ------------------------------------------------------------- geometry */

void conv_planes_geometry(const conv2d *cv, conv_planes *sp)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw;
    sp->hq = (hp + g->sh - 1) / g->sh;
    sp->wq = (wp + g->sw - 1) / g->sw;
    sp->qf = round_v(g->ho * sp->wq);
    sp->ka = (g->kh + g->sh - 1) / g->sh;
    sp->kb = (g->kw + g->sw - 1) / g->sw;
    sp->lf = (cv->filters + SP_V - 1) / SP_V * SP_V;
}

static int dx_by_planes(conv_dx_algo dx)
{
    return dx == CONV_DX_PLANES_FOLD || dx == CONV_DX_PLANES_INTERLEAVE ||
           dx == CONV_DX_PLANES_SCATTER;
}

void conv_planes_free(conv2d *cv)
{
    conv_planes *sp = &cv->sp;
    void *const bufs[] = {sp->off_x, sp->off_d, sp->wt,     sp->wft,
                          sp->buf,   sp->st_cnt, sp->st_off, sp->st_mask};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) cnn_free(bufs[k]);
    memset(sp, 0, sizeof *sp);
}

/* The forward's store table: where each grid vector's kept outputs land in
 * y (cnn_planes_store). A vector of 16 grid positions touches at most
 * 16/wq + 2 image rows (st_kmax). Lets the forward store straight into y
 * instead of a grid-shaped scratch copied out afterwards (pytorchnet.conv1's
 * is 94 KB per image). */
static void store_table(conv2d *cv)
{
    const cnn_window *g = &cv->g;
    conv_planes *sp = &cv->sp;
    const int nv = sp->qf / SP_V;
    for (int v = 0; v < nv; v++) {
        int k = -1, last_row = -1;
        for (int l = 0; l < SP_V; l++) {
            const int q = v * SP_V + l, row = q / sp->wq, col = q % sp->wq;
            if (row >= g->ho || col >= g->wo) continue;
            if (row != last_row) {
                k++;
                last_row = row;
                sp->st_off[v * sp->st_kmax + k] = v * SP_V - row * (sp->wq - g->wo);
                sp->st_mask[v * sp->st_kmax + k] = 0;
            }
            sp->st_mask[v * sp->st_kmax + k] |= (unsigned short)(1u << l);
        }
        sp->st_cnt[v] = k + 1;
    }
}

void conv_planes_layout(conv2d *cv, int threads, size_t bytes[CONV_PLANES_BUFS])
{
    const cnn_window *g = &cv->g;
    const conv_plan *pl = &cv->plan;
    conv_planes *sp = &cv->sp;
    const int F = cv->filters, C = g->c, kh = g->kh, kw = g->kw;
    const int nph = g->sh * g->sw, T = C * kh * kw, hw = g->ho * g->wo;
    const int sdx = dx_by_planes(pl->dx), dwt = pl->dw == CONV_DW_PLANES_FILTERS;
    const int fwd = pl->fwd == CONV_FWD_PLANES, fwt = pl->fwd == CONV_FWD_PLANES_FILTERS;
    conv_planes_geometry(cv, sp);
    /* dx as full correlations of dy: phase (pr, pc) of the padded dx,
     * pixels (r*sh + pr, k*sw + pc), gets the taps (pr + sh*a, pc + sw*b)
     * from dy grids with ka-1 zero rows above and kb-1 zero columns to the
     * left (which must fit beside dy in a row of wq). Each (channel, phase)
     * is a row of one cnn_planes_shift_avx512. */
    sp->qx = sdx ? round_v(sp->hq * sp->wq) : 0;
    sp->mt = sdx ? sp->ka - 1 : 0;
    sp->ml = sdx ? sp->kb - 1 : 0;
    /* every read runs at most a grid (plus a vector) past its tap's start */
    const int planes = C * nph * sp->hq * sp->wq;
    sp->xin_size = (size_t)round_v(planes + sp->qf + SP_V);
    sp->dz0 = (SP_V - (sp->mt * sp->wq + sp->ml) % SP_V) % SP_V;
    /* rows: dy with its margins, and every row a phase output reads */
    const int zrows = g->ho + sp->mt > sp->hq ? g->ho + 2 * sp->mt : sp->hq + sp->mt;
    sp->pz = (size_t)round_v(sp->dz0 + (zrows + 1) * sp->wq + 4 * SP_V);
    /* images per group: as many as keep the group's scratch near L2's
     * size (pytorchnet.conv1 at 4 images: 0.9 MB, 20% slower dx) */
    size_t per_image = sp->xin_size + (size_t)F * sp->pz + (dwt ? (size_t)hw * sp->lf : 0);
    sp->grp = (int)(SP_GROUP_FLOATS / per_image);
    if (sp->grp > SP_GROUP) sp->grp = SP_GROUP;
    if (sp->grp < 1) sp->grp = 1;
    /* one thread's scratch: the group's phase planes; dy on grids (dW by
     * dots, or dx); dy transposed and dW^T (dW with filters in the lanes);
     * dx's phase grids; the forward's output transposed (filters in the
     * lanes) */
    const int dyz = !dwt || sdx;
    sp->o_dyz = (size_t)sp->grp * sp->xin_size;
    sp->o_dyt = sp->o_dyz + (dyz ? (size_t)sp->grp * F * sp->pz : 0);
    sp->o_wtt = sp->o_dyt + (dwt ? (size_t)sp->grp * hw * sp->lf : 0);
    sp->o_out = sp->o_wtt + (dwt ? (size_t)T * sp->lf : 0);
    sp->o_yt = sp->o_out + (size_t)C * nph * sp->qx;
    sp->size = sp->o_yt + (fwt ? (size_t)hw * sp->lf : 0);
    sp->st_kmax = SP_V / sp->wq + 2;
    const size_t nv = (size_t)(sp->qf / SP_V);
    /* the order of conv_planes_reserve's buffers; 0: not used by the plan */
    bytes[0] = sizeof(int) * (size_t)T;
    bytes[1] = cnn_mul_size(cnn_mul_size(sp->size, (size_t)threads), sizeof(float));
    bytes[2] = sdx ? sizeof(int) * (size_t)F * sp->ka * sp->kb : 0;
    bytes[3] = sdx ? sizeof(float) * (size_t)F * sp->ka * sp->kb * C * nph : 0;
    bytes[4] = fwt ? sizeof(float) * ((size_t)T + 1) * sp->lf : 0;
    bytes[5] = fwd ? sizeof(int) * nv : 0;
    bytes[6] = fwd ? sizeof(int) * nv * sp->st_kmax : 0;
    bytes[7] = fwd ? sizeof(unsigned short) * nv * sp->st_kmax : 0;
}

cnn_status conv_planes_reserve(conv2d *cv, int threads)
{
    const cnn_window *g = &cv->g;
    conv_planes *sp = &cv->sp;
    const int F = cv->filters, C = g->c, kh = g->kh, kw = g->kw;
    size_t bytes[CONV_PLANES_BUFS];
    conv_planes_layout(cv, threads, bytes);
    void **const bufs[CONV_PLANES_BUFS] = {
        (void **)&sp->off_x, (void **)&sp->buf,    (void **)&sp->off_d,  (void **)&sp->wt,
        (void **)&sp->wft,   (void **)&sp->st_cnt, (void **)&sp->st_off, (void **)&sp->st_mask};
    static const char *const what[CONV_PLANES_BUFS] = {
        "conv tap offsets",        "conv shifted-plane buffers", "conv dx tap offsets",
        "conv transposed weights", "conv transposed weights",    "conv store table",
        "conv store table",        "conv store table"};
    for (int k = 0; k < CONV_PLANES_BUFS; k++)
        if (bytes[k] && !(*bufs[k] = cnn_alloc(bytes[k], what[k]))) return CNN_ERR_NOMEM;
    if (sp->st_cnt) store_table(cv);
    /* the slack after the planes and the dy grids' margins must read as zeros */
    memset(sp->buf, 0, sizeof(float) * sp->size * (size_t)threads);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                sp->off_x[(c * kh + i) * kw + j] =
                    ((c * g->sh + i % g->sh) * g->sw + j % g->sw) * sp->hq * sp->wq +
                    (i / g->sh) * sp->wq + j / g->sw;
    if (sp->off_d)
        for (int f = 0; f < F; f++)
            for (int a = 0; a < sp->ka; a++)
                for (int b = 0; b < sp->kb; b++)
                    sp->off_d[(f * sp->ka + a) * sp->kb + b] =
                        (int)(f * sp->pz) + (sp->mt - a) * sp->wq + (sp->ml - b);
    return CNN_OK;
}

/* ------------------------------------------------------------- packing */

/* x: (C, H, W) -> phase planes (C, sh, sw, hq, wq), every position written */
static void pack_x(const conv2d *cv, const float *x, float *xin)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw, hq = cv->sp.hq, wq = cv->sp.wq;
    float *d = xin;
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * g->w;
        for (int pr = 0; pr < g->sh; pr++)
            for (int pc = 0; pc < g->sw; pc++) {
                /* plane columns [lo, hi) read inside the image row; the
                 * rest are padding (or past wp: never read for a kept output) */
                const int off = pc - g->pw; /* ix = k*sw + off */
                int lo = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
                int hi = g->w - 1 - off < 0 ? 0 : (g->w - 1 - off) / g->sw + 1;
                if (hi > wq) hi = wq;
                if (lo > hi) lo = hi;
                for (int r = 0; r < hq; r++, d += wq) {
                    const int row = r * g->sh + pr;
                    const int ry = row < hp ? cnn_pad_index(row - g->ph, g->h, g->mode) : -1;
                    if (ry < 0) {
                        memset(d, 0, sizeof(float) * (size_t)wq);
                        continue;
                    }
                    const float *src = xc + (size_t)ry * g->w;
                    for (int k = 0; k < lo; k++) {
                        int rx = cnn_pad_index(k * g->sw + off, g->w, g->mode);
                        d[k] = rx < 0 ? 0.0f : src[rx];
                    }
                    /* a row of up to 32 floats: one permute per 16 outputs */
                    if (g->w <= 32) cnn_planes_pick_row_avx512(d, src, g->w, g->sw, off, lo, hi);
                    else if (g->sw == 1) memcpy(d + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
                    else
                        for (int k = lo; k < hi; k++) d[k] = src[k * g->sw + off];
                    for (int k = hi; k < wq; k++) {
                        const int col = k * g->sw + pc;
                        int rx = col < wp ? cnn_pad_index(col - g->pw, g->w, g->mode) : -1;
                        d[k] = rx < 0 ? 0.0f : src[rx];
                    }
                }
            }
    }
}

/* dy: (F, Ho, Wo) -> the data positions of the grids (F, pz); everything
 * else in them is zero since reserve() and never written. (A memcpy call
 * per 10-float row costs more than the copy.) */
static void pack_dy(const conv2d *cv, const float *dy, float *dyz)
{
    const cnn_window *g = &cv->g;
    const conv_planes *sp = &cv->sp;
    for (int f = 0; f < cv->filters; f++)
        cnn_copy_rows_avx512(dyz + f * sp->pz + sp->dz0 + (size_t)sp->mt * sp->wq + sp->ml,
                             sp->wq, dy + (size_t)f * g->ho * g->wo, g->wo, g->ho, g->wo);
}

/* ph: (C, sh, sw, hq*wq grid), padded pixel (r*sh + pr, k*sw + pc) of
 * channel c in plane (c, pr, pc) at [r*wq + k] -> added into dx: (C, H, W)
 * where that pixel came from (nowhere for a zero pad). */
static void scatter_dx(const conv2d *cv, const float *ph, float *dx)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = g->w + 2 * g->pw;
    for (int c = 0; c < g->c; c++) {
        float *d = dx + (size_t)c * g->h * g->w;
        for (int pr = 0; pr < g->sh; pr++)
            for (int pc = 0; pc < g->sw; pc++) {
                const float *s = ph + (size_t)((c * g->sh + pr) * g->sw + pc) * cv->sp.qx;
                for (int r = 0; r * g->sh + pr < hp; r++) {
                    const int ry = cnn_pad_index(r * g->sh + pr - g->ph, g->h, g->mode);
                    if (ry < 0) continue;
                    float *drow = d + (size_t)ry * g->w;
                    const float *srow = s + (size_t)r * cv->sp.wq;
                    for (int k = 0; k * g->sw + pc < wp; k++) {
                        const int ix = k * g->sw + pc - g->pw;
                        const int rx = (unsigned)ix < (unsigned)g->w ? ix
                                                                     : cnn_pad_index(ix, g->w, g->mode);
                        if (rx >= 0) drow[rx] += srow[k];
                    }
                }
            }
    }
}

/* dxpad: (C, hp*wp grid) -> dx: (C, H, W), overwritten. A padded position
 * adds into the pixel it copied (reflect, replicate) or is dropped (zero). */
static void fold_dx(const conv2d *cv, const float *dxpad, float *dx)
{
    const cnn_window *g = &cv->g;
    const int hp = g->h + 2 * g->ph, wp = cv->sp.wq;
    for (int c = 0; c < g->c; c++) {
        const float *s = dxpad + (size_t)c * cv->sp.qx;
        float *d = dx + (size_t)c * g->h * g->w;
        cnn_copy_rows_avx512(d, g->w, s + (size_t)g->ph * wp + g->pw, wp, g->h, g->w);
        if (g->mode == CNN_PAD_ZERO || (g->ph == 0 && g->pw == 0)) continue;
        for (int r = 0; r < hp; r++) {
            const int ry = cnn_pad_index(r - g->ph, g->h, g->mode);
            const int inner = r >= g->ph && r < g->ph + g->h;
            for (int col = 0; col < wp; col++) {
                if (inner && col >= g->pw && col < g->pw + g->w) continue;
                const int rx = cnn_pad_index(col - g->pw, g->w, g->mode);
                d[(size_t)ry * g->w + rx] += s[(size_t)r * wp + col];
            }
        }
    }
}

/* ------------------------------------------------------------- forward */

/* One image. x: (C, H, W)  y: (F, Ho*Wo)  buf: the thread's scratch
 * (phase planes, then the transposed output) */
static void image_forward(const conv2d *cv, const float *x, float *y, float *buf)
{
    const cnn_window *g = &cv->g;
    const conv_planes *sp = &cv->sp;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw;
    pack_x(cv, x, buf);
    if (cv->plan.fwd == CONV_FWD_PLANES_FILTERS) {
        cnn_planes_fwt_avx512(buf, sp->wq, sp->off_x, ckk, sp->wft, sp->lf / SP_V, g->ho, g->wo,
                              buf + sp->o_yt);
        cnn_from_lanes_avx512(F, g->ho * g->wo, sp->lf, buf + sp->o_yt, y);
        return;
    }
    const cnn_planes_store st = {sp->st_kmax, sp->st_cnt, sp->st_off, sp->st_mask};
    cnn_planes_shift_avx512(F, ckk, sp->qf, conv_weight(cv), ckk, sp->off_x, buf, y,
                            g->ho * g->wo, conv_bias(cv), &st);
}

typedef struct {
    const conv2d *cv;
    const float *x;
    float *y;
} planes_job;

/* images [i0, i1) on thread t, in t's buffer */
static void images_forward(void *ctx, long i0, long i1, int t)
{
    const planes_job *j = ctx;
    const conv_planes *sp = &j->cv->sp;
    const size_t isz = cnn_shape_size(j->cv->base.in), osz = cnn_shape_size(j->cv->base.out);
    for (long i = i0; i < i1; i++)
        image_forward(j->cv, j->x + i * isz, j->y + i * osz, sp->buf + (size_t)t * sp->size);
}

void conv_planes_forward(conv2d *cv, const float *x, float *y, int n, int nt)
{
    conv_planes *sp = &cv->sp;
    const uint64_t version = cnn_layer_version(&cv->base);
    if (cv->plan.fwd == CONV_FWD_PLANES_FILTERS && (!version || sp->wft_made != version)) {
        /* wft[t][f] = w[f][t], then the bias; lanes f >= F stay zero */
        const int F = cv->filters, T = cv->g.c * cv->g.kh * cv->g.kw;
        const float *w = conv_weight(cv), *b = conv_bias(cv);
        for (int f = 0; f < F; f++) {
            for (int t = 0; t < T; t++) sp->wft[(size_t)t * sp->lf + f] = w[(size_t)f * T + t];
            sp->wft[(size_t)T * sp->lf + f] = b ? b[f] : 0.0f;
        }
        sp->wft_made = version;
    }
    /* too little work per image to split one across threads */
    planes_job j = {cv, x, y};
    cnn_parallel_for(n >= nt ? nt : 1, n, CNN_SPLIT_EACH, cv->base.ops->flops(&cv->base) * n,
                     images_forward, &j);
}

/* ------------------------------------------------------------ backward */

/* dx's weights: row (c, pr, pc) of wt is phase (pr, pc) of channel c,
 * column (f*ka + a)*kb + b its tap (pr + sh*a, pc + sw*b), zero past the
 * kernel (the flip is in off_d). With a stride of 1: wt[c][(f*kh + i)*kw
 * + j] = w[f][c][i][j]. */
void conv_planes_dx_weights(conv2d *cv)
{
    const cnn_window *g = &cv->g;
    const int F = cv->filters, ka = cv->sp.ka, kb = cv->sp.kb, td = F * ka * kb;
    const float *w = conv_weight(cv);
    const uint64_t version = cnn_layer_version(&cv->base);
    if (version && cv->sp.wt_made == version) return;
    cv->sp.wt_made = version;
    for (int c = 0; c < g->c; c++)
        for (int pr = 0; pr < g->sh; pr++)
            for (int pc = 0; pc < g->sw; pc++) {
                float *row = cv->sp.wt + (size_t)((c * g->sh + pr) * g->sw + pc) * td;
                for (int f = 0; f < F; f++)
                    for (int a = 0; a < ka; a++)
                        for (int b = 0; b < kb; b++) {
                            const int i = pr + g->sh * a, j = pc + g->sw * b;
                            row[(f * ka + a) * kb + b] =
                                i < g->kh && j < g->kw
                                    ? w[(((size_t)f * g->c + c) * g->kh + i) * g->kw + j]
                                    : 0.0f;
                        }
            }
}

/* dx of image k of the group from its dy grid, by plan.dx */
static void image_dx(const conv2d *cv, const float *dyz, const float *dyi, float *dxi, float *out,
                     float *col)
{
    const cnn_window *g = &cv->g;
    const conv_planes *sp = &cv->sp;
    const size_t isz = cnn_shape_size(cv->base.in);
    const int td = cv->filters * sp->ka * sp->kb;
    if (cv->plan.dx == CONV_DX_IM2COL_GEMM) {
        conv_gemm_image_dx(cv, dyi, dxi, col, 1);
        return;
    }
    cnn_planes_shift_avx512(g->c * g->sh * g->sw, td, sp->qx, sp->wt, td, sp->off_d,
                            dyz + sp->dz0, out, sp->qx, NULL, NULL);
    switch (cv->plan.dx) {
    case CONV_DX_PLANES_FOLD: fold_dx(cv, out, dxi); break;
    case CONV_DX_PLANES_INTERLEAVE:
        cnn_planes_interleave_dx_avx512(out, sp->qx, sp->wq, g->c, g->h, g->w, g->sh, g->ph,
                                        g->pw, dxi);
        break;
    default:
        memset(dxi, 0, sizeof(float) * isz);
        scatter_dx(cv, out, dxi);
        break;
    }
}

void conv_planes_chunk_backward(const conv2d *cv, const float *x, const float *dy, float *dx,
                                int i0, int i1, float *part, int t)
{
    const cnn_window *g = &cv->g;
    const conv_planes *sp = &cv->sp;
    const int F = cv->filters, ckk = g->c * g->kh * g->kw, hw = g->ho * g->wo;
    const size_t isz = cnn_shape_size(cv->base.in), osz = cnn_shape_size(cv->base.out);
    const size_t dgs = (size_t)F * sp->pz;
    const int dwt = cv->plan.dw == CONV_DW_PLANES_FILTERS, sdx = dx_by_planes(cv->plan.dx);
    float *buf = sp->buf + (size_t)t * sp->size, *col = conv_col(cv, t);
    float *xin = buf, *dyz = buf + sp->o_dyz, *dyt = buf + sp->o_dyt, *out = buf + sp->o_out;
    for (int i = i0; i < i1; i += sp->grp) {
        const int ng = i1 - i < sp->grp ? i1 - i : sp->grp;
        for (int k = 0; k < ng; k++) {
            pack_x(cv, x + (i + k) * isz, xin + k * sp->xin_size);
            if (dwt) cnn_to_lanes_avx512(F, hw, sp->lf, dy + (i + k) * osz, dyt + (size_t)k * hw * sp->lf);
            if (!dwt || (dx && sdx)) pack_dy(cv, dy + (i + k) * osz, dyz + k * dgs);
        }
        if (dwt)
            cnn_planes_dwt_avx512(ckk, sp->lf / SP_V, ng, xin, (long)sp->xin_size, sp->off_x,
                                  g->ho, g->wo, sp->wq, dyt, (long)hw * sp->lf,
                                  buf + sp->o_wtt, i != i0);
        else
            cnn_planes_dw_avx512(F, ckk, ng, sp->qf,
                                 dyz + sp->dz0 + (size_t)sp->mt * sp->wq + sp->ml, (long)dgs,
                                 (long)sp->pz, xin, (long)sp->xin_size, sp->off_x, part, i != i0);
        if (!dx) continue;
        for (int k = 0; k < ng; k++)
            image_dx(cv, dyz + k * dgs, dy + (i + k) * osz, dx + (i + k) * isz, out, col);
    }
    if (dwt) /* (ckk, lf) -> part (F, ckk) */
        for (int f = 0; f < F; f++)
            for (int q = 0; q < ckk; q++)
                part[(size_t)f * ckk + q] = buf[sp->o_wtt + (size_t)q * sp->lf + f];
}
