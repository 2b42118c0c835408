/* report_test.c — the report page's sections about the test set
 * (report_html.c writes the rest): the classification report's counts,
 * the confusion matrix's cells and the most confidently wrong images, the
 * feature maps of chosen images, each filter's strongest test patches, and
 * the store of the test images the page shows. */
#include "cli/report_page.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Budgets, in raw bytes (base64 adds a third). */
#define IMG_BUDGET (900u * 1024)     /* test images shown in the matrix's cells and lists */
#define EXACT_BUDGET (1024u * 1024)  /* float32 inputs and outputs of conv layers, per image */
#define MAPS_BUDGET (1200u * 1024)   /* uint8 feature maps of the chosen images */
#define PATCH_BUDGET (400u * 1024)   /* the strongest test patches of each filter */
#define CELL_DIAG 16                 /* images per diagonal cell (correct) at most */
#define CELL_OFF 40                  /* images per off-diagonal cell (mistakes) at most */
#define WRONG_SHOWN 32               /* the most confidently wrong images */
#define MIN_PICKS 10
#define PATCH_FILTERS 64             /* filters of a conv layer shown with their patches */
#define PATCH_TOP 8                  /* patches per filter at most */
#define TOP_CONFUSIONS 20

/* top-3 of a probability row */
static void top3(const float *p, int k, int cls[3], float pr[3])
{
    for (int j = 0; j < 3; j++) cls[j] = -1, pr[j] = -1;
    for (int c = 0; c < k; c++) {
        float v = p[c];
        for (int j = 0; j < 3; j++)
            if (v > pr[j]) {
                for (int t = 2; t > j; t--) cls[t] = cls[t - 1], pr[t] = pr[t - 1];
                cls[j] = c, pr[j] = v;
                break;
            }
    }
}

/* ------------------------------------------------------------ the test */

typedef struct {
    const cli_split *d;
    int n, k;            /* test images used, outputs */
    int *pred;           /* n */
    float *probs;        /* n x k (cnn_alloc) */
    long correct;
    int *shown, m;       /* the classes the report lists, increasing */
    int *where;          /* k: index in shown, or -1 */
    /* the image store: test images the page holds */
    int *store;          /* test indices */
    int nstore;
    int *id_of;          /* n: store id or -1 */
} test_run;

static int store_add(test_run *t, int idx)
{
    if (t->id_of[idx] < 0) {
        t->id_of[idx] = t->nstore;
        t->store[t->nstore++] = idx;
    }
    return t->id_of[idx];
}

static float conf_of(const test_run *t, int i) { return t->probs[(size_t)i * t->k + t->pred[i]]; }

static const test_run *sort_ctx;
/* most confident first, then by index */
static int by_confidence(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    float cx = conf_of(sort_ctx, x), cy = conf_of(sort_ctx, y);
    if (cx != cy) return cx < cy ? 1 : -1;
    return (x > y) - (x < y);
}

typedef struct {
    int t, p;
    long count;
} pair;

static int pair_by_count(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    if (x->t != y->t) return (x->t > y->t) - (x->t < y->t);
    return (x->p > y->p) - (x->p < y->p);
}

/* ------------------------------------------------------------ the test sections */

/* Which test images the page keeps for the confusion matrix's cells (or the
 * list of confusions) and the wrong ones, within the image budget. */
static void choose_cells(test_run *t, buf *b, size_t img_bytes)
{
    const int m = t->m, n = t->n;
    const int matrix = m <= CLI_REPORT_ALL_CLASSES;
    /* caps halved until the images fit */
    int cap_diag = CELL_DIAG, cap_off = CELL_OFF;
    long *cell_count = NULL;
    pair *pairs = NULL;
    long npairs = 0;
    if (matrix) {
        cell_count = calloc((size_t)m * m + 1, sizeof *cell_count);
        if (!cell_count) {
            b->oom = 1;
            return;
        }
        for (int i = 0; i < n; i++)
            cell_count[(size_t)t->where[cli_split_label(t->d, i)] * m + t->where[t->pred[i]]]++;
    } else {
        pairs = malloc(sizeof *pairs * (size_t)(n + 1));
        if (!pairs) {
            b->oom = 1;
            return;
        }
        /* distinct (true, predicted) mistakes by count: sort a copy */
        pair *all = malloc(sizeof *all * (size_t)(n + 1));
        if (!all) {
            free(pairs);
            b->oom = 1;
            return;
        }
        long na = 0;
        for (int i = 0; i < n; i++)
            if (cli_split_label(t->d, i) != t->pred[i]) all[na++] = (pair){cli_split_label(t->d, i), t->pred[i], 1};
        qsort(all, (size_t)na, sizeof *all, pair_by_count); /* groups equal pairs (count 1 each) */
        for (long i = 0; i < na; i++) {
            if (npairs && pairs[npairs - 1].t == all[i].t && pairs[npairs - 1].p == all[i].p)
                pairs[npairs - 1].count++;
            else pairs[npairs++] = all[i];
        }
        free(all);
        qsort(pairs, (size_t)npairs, sizeof *pairs, pair_by_count);
        if (npairs > TOP_CONFUSIONS) npairs = TOP_CONFUSIONS;
    }
    for (;;) {
        size_t want = 0;
        if (matrix) {
            for (int a = 0; a < m; a++)
                for (int c = 0; c < m; c++) {
                    long cnt = cell_count[(size_t)a * m + c], cap = a == c ? cap_diag : cap_off;
                    want += (size_t)(cnt < cap ? cnt : cap);
                }
        } else {
            for (long i = 0; i < npairs; i++) want += (size_t)(pairs[i].count < cap_off ? pairs[i].count : cap_off);
        }
        if (want * img_bytes <= IMG_BUDGET || (cap_diag <= 1 && cap_off <= 1)) break;
        cap_diag = cap_diag > 1 ? cap_diag / 2 : 1;
        cap_off = cap_off > 1 ? cap_off / 2 : 1;
    }
    /* the images of each cell: mistakes most confident first, correct ones
     * in test order */
    int *order = malloc(sizeof *order * (size_t)(n + 1));
    if (!order) {
        free(cell_count);
        free(pairs);
        b->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    sort_ctx = t;
    qsort(order, (size_t)n, sizeof *order, by_confidence);
    if (matrix) {
        buf_puts(b, ",\"matrix\":[");
        for (size_t c = 0; c < (size_t)m * m; c++) buf_printf(b, "%s%ld", c ? "," : "", cell_count[c]);
        buf_puts(b, "],\"cells\":[");
        for (int a = 0; a < m; a++)
            for (int c = 0; c < m; c++) {
                buf_printf(b, "%s[", a || c ? "," : "");
                int taken = 0, cap = a == c ? cap_diag : cap_off;
                for (int j = 0; j < n && taken < cap; j++) {
                    int i = a == c ? j : order[j];
                    if (t->where[cli_split_label(t->d, i)] != a || t->where[t->pred[i]] != c) continue;
                    buf_printf(b, "%s%d", taken ? "," : "", store_add(t, i));
                    taken++;
                }
                buf_puts(b, "]");
            }
        buf_puts(b, "]");
    } else {
        buf_puts(b, ",\"matrix\":null,\"confusions\":[");
        for (long q = 0; q < npairs; q++) {
            buf_printf(b, "%s[%d,%d,%ld,[", q ? "," : "", pairs[q].t, pairs[q].p, pairs[q].count);
            int taken = 0;
            for (int j = 0; j < n && taken < cap_off; j++) {
                int i = order[j];
                if (cli_split_label(t->d, i) != pairs[q].t || t->pred[i] != pairs[q].p) continue;
                buf_printf(b, "%s%d", taken ? "," : "", store_add(t, i));
                taken++;
            }
            buf_puts(b, "]]");
        }
        buf_puts(b, "]");
    }
    /* the most confidently wrong */
    buf_puts(b, ",\"wrong\":[");
    int taken = 0;
    for (int j = 0; j < n && taken < WRONG_SHOWN; j++) {
        int i = order[j];
        if (cli_split_label(t->d, i) == t->pred[i]) continue;
        buf_printf(b, "%s%d", taken ? "," : "", store_add(t, i));
        taken++;
    }
    buf_printf(b, "],\"cell_caps\":[%d,%d]", cap_diag, cap_off);
    free(order);
    free(cell_count);
    free(pairs);
}

/* The images whose feature maps the page shows: one per class (the first
 * correctly classified one) for up to CLI_REPORT_ALL_CLASSES classes, at
 * least MIN_PICKS, and two of the most confidently wrong. */
static int choose_picks(test_run *t, int *picks)
{
    int np = 0;
    const int n = t->n;
    int *classes = malloc(sizeof *classes * (size_t)(t->k + 1));
    if (!classes) return -1;
    int nc = 0;
    char *seen = calloc((size_t)t->k + 1, 1);
    if (!seen) {
        free(classes);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!seen[cli_split_label(t->d, i)]) seen[cli_split_label(t->d, i)] = 1;
    for (int c = 0; c < t->k; c++)
        if (seen[c]) classes[nc++] = c;
    free(seen);
    /* the classes: all of a few, else twenty spread over those that occur */
    int want = nc <= CLI_REPORT_ALL_CLASSES ? nc : CLI_REPORT_ALL_CLASSES;
    char *taken = calloc((size_t)n + 1, 1);
    if (!taken) {
        free(classes);
        return -1;
    }
    for (int round = 0; np < MAX_PICKS - 2; round++) {
        int added = 0;
        for (int q = 0; q < want && np < MAX_PICKS - 2; q++) {
            int c = classes[(long)q * nc / want];
            /* correctly classified first, then any */
            int best = -1;
            for (int pass = 0; pass < 2 && best < 0; pass++)
                for (int i = 0; i < n; i++)
                    if (!taken[i] && cli_split_label(t->d, i) == c && (pass || t->pred[i] == c)) {
                        best = i;
                        break;
                    }
            if (best < 0) continue;
            taken[best] = 1;
            picks[np++] = best;
            added++;
        }
        if (!added || (round >= 0 && np >= MIN_PICKS)) break;
    }
    /* two mistakes, the most confident ones */
    int wrong = 0;
    for (int pass = 0; pass < 2 && wrong < 2; pass++) {
        float best_conf = -1;
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!taken[i] && cli_split_label(t->d, i) != t->pred[i] && conf_of(t, i) > best_conf) {
                best_conf = conf_of(t, i);
                best = i;
            }
        if (best < 0) break;
        taken[best] = 1;
        picks[np++] = best;
        wrong++;
    }
    free(taken);
    free(classes);
    return np;
}

/* The feature maps of the picks: every activation, float32 where the
 * convolution view computes with it (the inputs and outputs of conv
 * layers) while the budget lasts, else uint8 per channel. */
static int write_feature_maps(page *pg, cnn_model *m, test_run *t, const cli_norm *nm,
                              const int *picks, int np, stats *act_stats)
{
    buf *b = &pg->js;
    const int L = cnn_model_num_layers(m), k = t->k;
    int c0, h0, w0;
    cnn_model_input_shape(m, &c0, &h0, &w0);
    const size_t px = (size_t)c0 * h0 * w0;
    float *x = cnn_alloc(sizeof(float) * px * (size_t)np, "the chosen images");
    float *probs = malloc(sizeof(float) * (size_t)k * (size_t)np);
    const float **acts = calloc((size_t)L + 1, sizeof *acts);
    char *exact_act = calloc((size_t)L + 1, 1);
    size_t biggest = px;
    for (int a = 1; a <= L; a++) biggest = act_size(m, a) > biggest ? act_size(m, a) : biggest;
    uint8_t *q = malloc(biggest);
    float *lo = malloc(sizeof(float) * biggest), *hi = malloc(sizeof(float) * biggest);
    if (!x || !probs || !acts || !exact_act || !q || !lo || !hi) {
        cnn_free(x);
        free(probs), free(acts), free(exact_act), free(q), free(lo), free(hi);
        return cli_error("report", "%s", x ? "out of memory" : cnn_errmsg());
    }
    cli_batch(t->d, picks, 0, np, nm, x, NULL);
    if (cnn_model_forward_layers(m, x, np, acts + 1) != CNN_OK) {
        int rc = cli_error("report", "feature maps: %s", cnn_errmsg());
        cnn_free(x);
        free(probs), free(acts), free(exact_act), free(q), free(lo), free(hi);
        return rc;
    }
    acts[0] = x;
    cli_probabilities(m, acts[L], np, k, probs);
    size_t exact_per_image = 0;
    for (int i = 0; i < L; i++)
        if (is_kind(m, i, "conv")) exact_act[same_as(m, i)] = exact_act[i + 1] = 1;
    for (int a = 0; a <= L; a++)
        if (exact_act[a]) exact_per_image += act_size(m, a) * sizeof(float);
    /* statistics of every activation over the picks */
    for (int a = 0; a <= L; a++) stats_of(acts[a], act_size(m, a) * (size_t)np, &act_stats[a], 0);

    size_t exact_used = 0, maps_used = 0;
    int exact_images = 0;
    buf_puts(b, ",\"picks\":[");
    for (int p = 0; p < np; p++) {
        int exact = exact_per_image > 0 && exact_used + exact_per_image <= (p ? 1 : 2) * EXACT_BUDGET;
        if (exact) exact_used += exact_per_image, exact_images++;
        buf_printf(b, "%s{\"img\":%d,\"exact\":%d,\"probs\":", p ? "," : "", store_add(t, picks[p]), exact);
        blob_f32(pg, probs + (size_t)p * k, (size_t)k);
        buf_puts(b, ",\"maps\":[");
        for (int a = 0; a <= L; a++) {
            int c, h, w;
            shape_of(m, a, &c, &h, &w);
            const size_t size = (size_t)c * h * w;
            const float *v = acts[a] + (size_t)p * size;
            if (same_as(m, a) != a) {
                buf_printf(b, ",{\"same\":%d}", same_as(m, a));
                continue;
            }
            if (a > 0) buf_puts(b, ",");
            if (exact && exact_act[a]) {
                buf_puts(b, "{\"x\":");
                blob_f32(pg, v, size);
                buf_puts(b, "}");
                continue;
            }
            /* a flat vector is one "channel" */
            int planes = h * w > 1 ? c : 1;
            size_t plane = size / (size_t)planes;
            if (maps_used + size > MAPS_BUDGET && p > 0) {
                buf_puts(b, "null");
                continue;
            }
            maps_used += size;
            for (int ch = 0; ch < planes; ch++) {
                const float *pv = v + (size_t)ch * plane;
                float mn = pv[0], mx = pv[0];
                for (size_t e = 1; e < plane; e++) {
                    mn = pv[e] < mn ? pv[e] : mn;
                    mx = pv[e] > mx ? pv[e] : mx;
                }
                lo[ch] = mn, hi[ch] = mx;
                for (size_t e = 0; e < plane; e++)
                    q[(size_t)ch * plane + e] =
                        mx > mn ? (uint8_t)lrint((pv[e] - mn) / (mx - mn) * 255.0f) : 0;
            }
            buf_puts(b, "{\"q\":");
            blob_u8(pg, q, size);
            buf_puts(b, ",\"lo\":");
            blob_f32(pg, lo, (size_t)planes);
            buf_puts(b, ",\"hi\":");
            blob_f32(pg, hi, (size_t)planes);
            buf_puts(b, "}");
        }
        buf_puts(b, "]}");
    }
    buf_printf(b, "],\"exact_images\":%d", exact_images);
    cnn_free(x);
    free(probs), free(acts), free(exact_act), free(q), free(lo), free(hi);
    return CLI_OK;
}

/* The test patches that excite each conv filter most: over a sample of
 * test images, each filter's largest output per image, the top few images,
 * and the part of the input its receptive field sees there. */
typedef struct {
    float v;
    int img, oy, ox;
} hit;

/* A crop shows a receptive field of `field` pixels in its surroundings:
 * twice its size (at least 8 more pixels), at most the whole image. */
static long crop_side(long size, int image)
{
    long side = size + 8 > 2 * size ? size + 8 : 2 * size;
    return side < image ? side : image;
}

static int write_patches(page *pg, cnn_model *m, test_run *t, const cli_norm *nm, const field *rf,
                         int *sample_out)
{
    buf *b = &pg->js;
    const int L = cnn_model_num_layers(m);
    int c0, h0, w0;
    cnn_model_input_shape(m, &c0, &h0, &w0);
    const size_t px = (size_t)c0 * h0 * w0;
    int nconv = 0;
    for (int i = 0; i < L; i++) nconv += is_kind(m, i, "conv");
    if (!nconv) {
        buf_puts(b, ",\"patches\":[]");
        *sample_out = 0;
        return CLI_OK;
    }
    /* about a second of work at 2 GFLOP/s, 200 to 2000 images */
    double flops = cnn_model_flops(m);
    long s = flops > 0 ? (long)(2e9 / flops) : 2000;
    s = s < 200 ? 200 : s > 2000 ? 2000 : s;
    int sample = (int)(s < t->n ? s : t->n);
    *sample_out = sample;
    int B = cnn_model_max_batch(m);
    float *x = cnn_alloc(sizeof(float) * px * (size_t)B, "the sample batch");
    const float **acts = calloc((size_t)L, sizeof *acts);
    hit *top = NULL;
    int *fshown = calloc((size_t)L, sizeof *fshown), *topk = calloc((size_t)L, sizeof *topk);
    size_t *toff = calloc((size_t)L + 1, sizeof *toff);
    if (!x || !acts || !fshown || !topk || !toff) goto oom;
    size_t total = 0;
    for (int i = 0; i < L; i++) {
        if (!is_kind(m, i, "conv")) continue;
        int c, h, w;
        shape_of(m, i + 1, &c, &h, &w);
        fshown[i] = c < PATCH_FILTERS ? c : PATCH_FILTERS;
        long rh = crop_side(rf[i + 1].size_y, h0), rw = crop_side(rf[i + 1].size_x, w0);
        size_t per = (size_t)c0 * (size_t)rh * (size_t)rw * (size_t)fshown[i];
        int kk = (int)(PATCH_BUDGET / nconv / (per ? per : 1));
        topk[i] = kk < 1 ? 1 : kk > PATCH_TOP ? PATCH_TOP : kk;
        toff[i] = total;
        total += (size_t)fshown[i] * topk[i];
    }
    top = malloc(sizeof *top * (total + 1));
    if (!top) goto oom;
    for (size_t e = 0; e < total; e++) top[e] = (hit){-INFINITY, -1, 0, 0};
    for (int first = 0; first < sample; first += B) {
        int nb = sample - first < B ? sample - first : B;
        cli_batch(t->d, NULL, first, nb, nm, x, NULL);
        if (cnn_model_forward_layers(m, x, nb, acts) != CNN_OK) {
            int rc = cli_error("report", "test images %d..%d: %s", first, first + nb - 1, cnn_errmsg());
            cnn_free(x);
            free(acts), free(top), free(fshown), free(topk), free(toff);
            return rc;
        }
        for (int i = 0; i < L; i++) {
            if (!fshown[i]) continue;
            int c, h, w;
            shape_of(m, i + 1, &c, &h, &w);
            const size_t plane = (size_t)h * w;
            for (int im = 0; im < nb; im++)
                for (int f = 0; f < fshown[i]; f++) {
                    const float *y = acts[i] + ((size_t)im * c + f) * plane;
                    size_t best = 0;
                    for (size_t e = 1; e < plane; e++)
                        if (y[e] > y[best]) best = e;
                    hit hnew = {y[best], first + im, (int)(best / (size_t)w), (int)(best % (size_t)w)};
                    hit *list = top + toff[i] + (size_t)f * topk[i];
                    for (int j = 0; j < topk[i]; j++)
                        if (hnew.v > list[j].v) {
                            memmove(list + j + 1, list + j, sizeof *list * (size_t)(topk[i] - j - 1));
                            list[j] = hnew;
                            break;
                        }
                }
        }
    }
    buf_puts(b, ",\"patches\":[");
    int firstp = 1;
    for (int i = 0; i < L; i++) {
        if (!fshown[i]) continue;
        const field *f = &rf[i + 1];
        const int rh = (int)crop_side(f->size_y, h0), rw = (int)crop_side(f->size_x, w0);
        size_t one = (size_t)c0 * rh * rw;
        size_t count = 0;
        uint8_t *crops = calloc((size_t)fshown[i] * topk[i] * one + 1, 1);
        if (!crops) goto oom;
        buf_printf(b, "%s{\"layer\":%d,\"filters\":%d,\"top\":%d,\"rh\":%d,\"rw\":%d,\"field\":[%ld,%ld],\"hits\":[",
                firstp ? "" : ",", i, fshown[i], topk[i], rh, rw, f->size_y, f->size_x);
        firstp = 0;
        for (int fi = 0; fi < fshown[i]; fi++) {
            const hit *list = top + toff[i] + (size_t)fi * topk[i];
            buf_printf(b, "%s[", fi ? "," : "");
            for (int j = 0; j < topk[i]; j++) {
                const hit *hh = &list[j];
                if (hh->img < 0) break;
                long y0 = f->start_y + (long)hh->oy * f->jump_y, x0 = f->start_x + (long)hh->ox * f->jump_x;
                /* the crop: the field in its surroundings, inside the image */
                long cy = y0 + f->size_y / 2 - rh / 2, cx = x0 + f->size_x / 2 - rw / 2;
                cy = cy + rh > h0 ? h0 - rh : cy;
                cx = cx + rw > w0 ? w0 - rw : cx;
                cy = cy < 0 ? 0 : cy;
                cx = cx < 0 ? 0 : cx;
                const uint8_t *img = cli_split_image(t->d, hh->img);
                uint8_t *dst = crops + count * one;
                for (int ch = 0; ch < c0; ch++)
                    for (int yy = 0; yy < rh; yy++)
                        for (int xx = 0; xx < rw; xx++) {
                            long sy = cy + yy, sx = cx + xx;
                            dst[((size_t)ch * rh + yy) * rw + xx] =
                                sy >= 0 && sy < h0 && sx >= 0 && sx < w0
                                    ? img[((size_t)ch * h0 + sy) * w0 + sx] : 0;
                        }
                count++;
                /* value, test index, output pixel, the field's and the crop's
                 * corners in the input */
                buf_printf(b, "%s[", j ? "," : "");
                json_num(b, hh->v);
                buf_printf(b, ",%d,%d,%d,%ld,%ld,%ld,%ld]", hh->img, hh->oy, hh->ox, y0, x0, cy, cx);
            }
            buf_puts(b, "]");
        }
        buf_puts(b, "],\"px\":");
        blob_u8(pg, crops, count * one);
        buf_puts(b, "}");
        free(crops);
    }
    buf_puts(b, "]");
    cnn_free(x);
    free(acts), free(top), free(fshown), free(topk), free(toff);
    return CLI_OK;
oom:
    cnn_free(x);
    free(acts), free(top), free(fshown), free(topk), free(toff);
    return cli_error("report", "out of memory for the strongest patches");
}

int report_test(page *pg, cnn_model *m, const cli_report_in *in, const cli_norm *nm,
                      stats *act_stats, int *npicks)
{
    buf *b = &pg->js;
    test_run t;
    memset(&t, 0, sizeof t);
    t.d = in->test;
    t.n = in->ntest > 0 && in->ntest < in->test->n ? in->ntest : in->test->n;
    t.k = cnn_model_output_size(m);
    const int n = t.n, k = t.k;
    int c0, h0, w0;
    cnn_model_input_shape(m, &c0, &h0, &w0);
    const size_t px = (size_t)c0 * h0 * w0;
    int rc = CLI_OK, B = cnn_model_max_batch(m);
    float *xbuf = cnn_alloc(sizeof(float) * px * (size_t)B, "the input batch");
    t.probs = cnn_alloc(sizeof(float) * (size_t)n * (size_t)k, "the test's probabilities");
    t.pred = malloc(sizeof *t.pred * (size_t)n);
    t.where = malloc(sizeof *t.where * (size_t)k);
    t.shown = malloc(sizeof *t.shown * (size_t)k);
    t.id_of = malloc(sizeof *t.id_of * (size_t)n);
    t.store = malloc(sizeof *t.store * (size_t)n);
    int *picks = malloc(sizeof *picks * MAX_PICKS);
    long *tp = calloc((size_t)k, sizeof *tp), *support = calloc((size_t)k, sizeof *support),
         *predicted = calloc((size_t)k, sizeof *predicted);
    if (!xbuf || !t.probs) {
        rc = cli_error("report", "%s", cnn_errmsg());
        goto done;
    }
    if (!t.pred || !t.where || !t.shown || !t.id_of || !t.store || !picks || !tp || !support || !predicted) {
        rc = cli_error("report", "out of memory for a report on %d test images", n);
        goto done;
    }
    if (in->progress) fprintf(stderr, "cnn report: evaluating %d test images\n", n);
    cnn_loss xent = {CNN_LOSS_XENT, 1.0f};
    int correct = 0;
    if ((rc = cli_predict_all("report", m, t.d, n, nm, xbuf, xent, t.pred, t.probs, NULL, &correct, NULL)))
        goto done;
    t.correct = correct;
    for (int i = 0; i < n; i++) t.id_of[i] = -1;
    /* the classes listed: all of a few, else those that occur */
    for (int c = 0; c < k; c++) t.where[c] = -1;
    for (int i = 0; i < n; i++) {
        support[cli_split_label(t.d, i)]++;
        predicted[t.pred[i]]++;
        tp[cli_split_label(t.d, i)] += cli_split_label(t.d, i) == t.pred[i];
    }
    for (int c = 0; c < k; c++)
        if (k <= CLI_REPORT_ALL_CLASSES || support[c] || predicted[c]) {
            t.where[c] = t.m;
            t.shown[t.m++] = c;
        }
    buf_printf(b, ",\"test\":{\"n\":%d,\"correct\":%ld,\"shown\":[", n, t.correct);
    for (int j = 0; j < t.m; j++) buf_printf(b, "%s%d", j ? "," : "", t.shown[j]);
    buf_puts(b, "],\"support\":");
    json_longs_at(b, support, t.shown, t.m);
    buf_puts(b, ",\"predicted\":");
    json_longs_at(b, predicted, t.shown, t.m);
    buf_puts(b, ",\"tp\":");
    json_longs_at(b, tp, t.shown, t.m);
    choose_cells(&t, b, px);

    if (in->progress) fprintf(stderr, "cnn report: feature maps and the filters' strongest patches\n");
    int np = choose_picks(&t, picks);
    if (np < 0) {
        rc = cli_error("report", "out of memory");
        goto done;
    }
    *npicks = np;
    if ((rc = write_feature_maps(pg, m, &t, nm, picks, np, act_stats))) goto done;
    field *rf = calloc((size_t)cnn_model_num_layers(m) + 1, sizeof *rf);
    if (!rf) {
        rc = cli_error("report", "out of memory");
        goto done;
    }
    receptive_fields(m, rf);
    int sample = 0;
    rc = write_patches(pg, m, &t, nm, rf, &sample);
    free(rf);
    if (rc) goto done;
    buf_printf(b, ",\"sample\":%d", sample);

    /* the image store: pixels, and each image's label, prediction, top 3 */
    uint8_t *pix = malloc(px * (size_t)t.nstore + 1);
    if (!pix) {
        rc = cli_error("report", "out of memory");
        goto done;
    }
    for (int s = 0; s < t.nstore; s++) memcpy(pix + (size_t)s * px, cli_split_image(t.d, t.store[s]), px);
    buf_puts(b, ",\"images\":{\"px\":");
    blob_u8(pg, pix, px * (size_t)t.nstore);
    free(pix);
    buf_puts(b, ",\"index\":[");
    for (int s = 0; s < t.nstore; s++) buf_printf(b, "%s%d", s ? "," : "", t.store[s]);
    buf_puts(b, "],\"label\":[");
    for (int s = 0; s < t.nstore; s++) buf_printf(b, "%s%d", s ? "," : "", cli_split_label(t.d, t.store[s]));
    buf_puts(b, "],\"top\":[");
    for (int s = 0; s < t.nstore; s++) {
        int cls[3];
        float pr[3];
        top3(t.probs + (size_t)t.store[s] * k, k, cls, pr);
        buf_printf(b, "%s[", s ? "," : "");
        for (int j = 0; j < 3 && cls[j] >= 0; j++) {
            buf_printf(b, "%s%d,", j ? "," : "", cls[j]);
            json_num(b, pr[j]);
        }
        buf_puts(b, "]");
    }
    buf_puts(b, "]}}");
done:
    cnn_free(xbuf);
    cnn_free(t.probs);
    free(t.pred), free(t.where), free(t.shown), free(t.id_of), free(t.store), free(picks);
    free(tp), free(support), free(predicted);
    return rc;
}
