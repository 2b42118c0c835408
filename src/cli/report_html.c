/* report_html.c — the report page: one self-contained HTML file that shows
 * what a trained network learned (`cnn report`, `cnn train --report`).
 *
 * The page is src/cli/report/page.html with its CSS and JavaScript inlined
 * (compiled in as report_assets.c) and the model's numbers embedded in two
 * scripts that the browser does not run: a JSON object (id cnn-data) that
 * describes everything, and one base64 binary blob (id cnn-blob) that holds
 * the arrays. An array in the JSON is a reference {"o": byte offset, "n":
 * count, "t": "f32" | "u8"} into the blob: float32 little-endian (aligned
 * to 4 bytes, so the page views them in place) where the page computes with
 * the numbers (the convolution view's dot products, the filters), and
 * uint8 where it only draws them (test images, and feature maps quantised
 * per channel between their min and max).
 *
 * Everything is computed through the public calls of cnn.h:
 * cnn_model_forward_layers for feature maps and the filters' strongest test
 * patches, cnn_model_layer_tensor* for weights, cnn_model_layer_window for
 * the convolution view and receptive fields; predictions come from the
 * CLI's cli_predict_all.
 *
 * Sizes. The page holds at most a few MB whatever the model: each kind of
 * data has a budget (test images, exact float32 feature maps, strongest
 * patches), and the page says what a budget left out. */
#include "cli/cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

extern const char cli_report_page_html[], cli_report_page_css[], cli_report_page_js[],
    cli_report_live_js[];

/* Budgets, in raw bytes (base64 adds a third). */
#define IMG_BUDGET (900u * 1024)     /* test images shown in the matrix's cells and lists */
#define EXACT_BUDGET (1024u * 1024)  /* float32 inputs and outputs of conv layers, per image */
#define MAPS_BUDGET (1200u * 1024)   /* uint8 feature maps of the chosen images */
#define PATCH_BUDGET (400u * 1024)   /* the strongest test patches of each filter */
#define CELL_DIAG 16                 /* images per diagonal cell (correct) at most */
#define CELL_OFF 40                  /* images per off-diagonal cell (mistakes) at most */
#define WRONG_SHOWN 32               /* the most confidently wrong images */
#define MAX_PICKS 32                 /* images whose feature maps the page holds */
#define MIN_PICKS 10
#define PATCH_FILTERS 64             /* filters of a conv layer shown with their patches */
#define PATCH_TOP 8                  /* patches per filter at most */
#define FILTERS_EMBEDDED 128         /* filters of a conv layer whose weights the page holds */
#define HIST_BINS 24
#define TOP_CONFUSIONS 20

/* ------------------------------------------------------------ buffers */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) {
            b->oom = 1;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void printf_(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(b, big, (size_t)n);
    free(big);
}

/* A JSON number; NaN and infinities become null. */
static void num(buf *b, double v)
{
    if (!isfinite(v)) puts_(b, "null");
    else printf_(b, "%.9g", v);
}

/* A JSON string, safe inside an HTML <script>: '<', '>' and '&' escaped,
 * so no "</script>" can end it early; U+2028/2029 too. */
static void str(buf *b, const char *s)
{
    puts_(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"') puts_(b, "\\\"");
        else if (*p == '\\') puts_(b, "\\\\");
        else if (*p == '\n') puts_(b, "\\n");
        else if (*p == '\t') puts_(b, "\\t");
        else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&' || *p == 0x7f) printf_(b, "\\u%04x", *p);
        else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            printf_(b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 2;
        } else put(b, p, 1);
    }
    puts_(b, "\"");
}

/* ------------------------------------------------------------ the blob */

typedef struct {
    buf js;    /* the JSON */
    buf blob;  /* the arrays */
} page;

static int little_endian(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static void align(buf *b, size_t a)
{
    static const char zeros[8] = {0};
    while (b->n % a) put(b, zeros, 1);
}

/* Append n floats to the blob (little-endian) and their reference to the JSON. */
static void ref_f32(page *pg, const float *x, size_t n)
{
    align(&pg->blob, 4);
    size_t off = pg->blob.n;
    if (little_endian()) {
        put(&pg->blob, x, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                                   (unsigned char)(u >> 24)};
            put(&pg->blob, le, 4);
        }
    }
    printf_(&pg->js, "{\"o\":%zu,\"n\":%zu,\"t\":\"f32\"}", off, n);
}

static void ref_u8(page *pg, const uint8_t *x, size_t n)
{
    size_t off = pg->blob.n;
    put(&pg->blob, x, n);
    printf_(&pg->js, "{\"o\":%zu,\"n\":%zu,\"t\":\"u8\"}", off, n);
}

/* ------------------------------------------------------------ helpers */

static void shape_of(cnn_model *m, int a, int *c, int *h, int *w)
{
    if (a == 0) {
        cnn_model_input_shape(m, c, h, w);
        return;
    }
    cnn_layer_info li;
    cnn_model_layer_info(m, a - 1, &li);
    *c = li.out_c, *h = li.out_h, *w = li.out_w;
}

static size_t act_size(cnn_model *m, int a)
{
    int c, h, w;
    shape_of(m, a, &c, &h, &w);
    return (size_t)c * h * w;
}

static const char *kind_of(cnn_model *m, int layer)
{
    cnn_layer_info li;
    cnn_model_layer_info(m, layer, &li);
    return li.kind;
}

static int is_kind(cnn_model *m, int layer, const char *k) { return strcmp(kind_of(m, layer), k) == 0; }

/* The activation whose numbers activation a repeats: dropout (in eval
 * mode) and flatten pass their input on unchanged. */
static int same_as(cnn_model *m, int a)
{
    while (a > 0 && (is_kind(m, a - 1, "dropout") || is_kind(m, a - 1, "flatten"))) a--;
    return a;
}

typedef struct {
    double mean, std, min, max, zeros;
    long hist[HIST_BINS];
} stats;

static void stats_of(const float *x, size_t n, stats *s, int with_hist)
{
    double sum = 0, sq = 0, mn = INFINITY, mx = -INFINITY;
    size_t z = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        sum += v;
        sq += v * v;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        z += v == 0.0;
    }
    s->mean = n ? sum / (double)n : NAN;
    double var = n ? sq / (double)n - s->mean * s->mean : NAN;
    s->std = var > 0 ? sqrt(var) : 0.0;
    s->min = mn;
    s->max = mx;
    s->zeros = n ? (double)z / (double)n : NAN;
    memset(s->hist, 0, sizeof s->hist);
    if (!with_hist || !n) return;
    double span = mx - mn;
    for (size_t i = 0; i < n; i++) {
        int bin = span > 0 ? (int)((x[i] - mn) / span * HIST_BINS) : HIST_BINS / 2;
        s->hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
    }
}

static void stats_json(buf *b, const stats *s, int with_hist)
{
    puts_(b, "{\"mean\":");
    num(b, s->mean);
    puts_(b, ",\"std\":");
    num(b, s->std);
    puts_(b, ",\"min\":");
    num(b, s->min);
    puts_(b, ",\"max\":");
    num(b, s->max);
    puts_(b, ",\"zeros\":");
    num(b, s->zeros);
    if (with_hist) {
        puts_(b, ",\"hist\":[");
        for (int i = 0; i < HIST_BINS; i++) printf_(b, "%s%ld", i ? "," : "", s->hist[i]);
        puts_(b, "]");
    }
    puts_(b, "}");
}

/* Receptive field of each activation along one axis: output index o of
 * activation a covers input rows [start + o*jump, start + o*jump + size). */
typedef struct {
    int valid; /* a spatial activation whose field is known */
    long size_y, size_x, jump_y, jump_x, start_y, start_x;
} field;

static void receptive_fields(cnn_model *m, field *rf)
{
    rf[0] = (field){1, 1, 1, 1, 1, 0, 0};
    for (int i = 0; i < cnn_model_num_layers(m); i++) {
        field f = rf[i];
        cnn_layer_window g;
        cnn_layer_info li;
        cnn_model_layer_info(m, i, &li);
        if (cnn_model_layer_window(m, i, &g) == CNN_OK) {
            f.start_y -= (long)g.ph * f.jump_y;
            f.start_x -= (long)g.pw * f.jump_x;
            f.size_y += (long)(g.kh - 1) * f.jump_y;
            f.size_x += (long)(g.kw - 1) * f.jump_x;
            f.jump_y *= g.sh;
            f.jump_x *= g.sw;
        } else if (!strcmp(li.kind, "flatten") || !strcmp(li.kind, "dense")) {
            f.valid = 0;
        }
        rf[i + 1] = f;
    }
}

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

/* ------------------------------------------------------------ sections */

static void write_layers(page *pg, cnn_model *m, const field *rf, const stats *act_stats)
{
    buf *b = &pg->js;
    int L = cnn_model_num_layers(m);
    puts_(b, ",\"layers\":[");
    for (int i = 0; i < L; i++) {
        cnn_layer_info li;
        cnn_model_layer_info(m, i, &li);
        printf_(b, "%s{\"i\":%d,\"kind\":", i ? "," : "", i);
        str(b, li.kind);
        puts_(b, ",\"desc\":");
        str(b, li.desc);
        puts_(b, ",\"torch\":");
        str(b, li.torch);
        printf_(b, ",\"out\":[%d,%d,%d],\"params\":%zu,\"flops\":", li.out_c, li.out_h, li.out_w,
                li.params);
        num(b, li.flops);
        cnn_layer_window g;
        if (cnn_model_layer_window(m, i, &g) == CNN_OK) {
            printf_(b, ",\"window\":{\"kh\":%d,\"kw\":%d,\"sh\":%d,\"sw\":%d,\"ph\":%d,\"pw\":%d,\"padmode\":",
                    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
            str(b, g.padmode);
            puts_(b, "}");
        }
        if (rf[i + 1].valid && li.out_h * li.out_w > 1)
            printf_(b, ",\"rf\":[%ld,%ld]", rf[i + 1].size_y, rf[i + 1].size_x);
        puts_(b, ",\"tensors\":[");
        for (int j = 0; j < cnn_model_layer_num_tensors(m, i); j++) {
            cnn_tensor t;
            cnn_model_layer_tensor(m, i, j, &t);
            printf_(b, "%s{\"name\":", j ? "," : "");
            str(b, t.name);
            puts_(b, ",\"dims\":[");
            for (int d = 0; d < t.ndim; d++) printf_(b, "%s%d", d ? "," : "", t.dims[d]);
            printf_(b, "],\"size\":%zu,\"trainable\":%d,\"stats\":", t.size, t.grad != NULL);
            stats s;
            stats_of(t.data, t.size, &s, 1);
            stats_json(b, &s, 1);
            puts_(b, "}");
        }
        puts_(b, "]");
        if (act_stats) {
            puts_(b, ",\"act\":");
            stats_json(b, &act_stats[i + 1], 0);
        }
        puts_(b, "}");
    }
    puts_(b, "]");
    if (act_stats) {
        puts_(b, ",\"input_act\":");
        stats_json(b, &act_stats[0], 0);
    }
}

/* The weights of every conv layer (the first FILTERS_EMBEDDED filters). */
static void write_convs(page *pg, cnn_model *m)
{
    buf *b = &pg->js;
    puts_(b, ",\"convs\":[");
    int first = 1;
    for (int i = 0; i < cnn_model_num_layers(m); i++) {
        if (!is_kind(m, i, "conv")) continue;
        cnn_tensor w, bias;
        cnn_model_layer_tensor_by_name(m, i, "weight", &w);
        int has_bias = cnn_model_layer_tensor_by_name(m, i, "bias", &bias) == CNN_OK;
        int F = w.dims[0], kept = F < FILTERS_EMBEDDED ? F : FILTERS_EMBEDDED;
        size_t per = w.size / (size_t)F;
        printf_(b, "%s{\"layer\":%d,\"dims\":[%d,%d,%d,%d],\"kept\":%d,\"weight\":", first ? "" : ",", i,
                w.dims[0], w.dims[1], w.dims[2], w.dims[3], kept);
        ref_f32(pg, w.data, per * (size_t)kept);
        puts_(b, ",\"bias\":");
        if (has_bias) ref_f32(pg, bias.data, (size_t)kept);
        else puts_(b, "null");
        puts_(b, "}");
        first = 0;
    }
    puts_(b, "]");
}

static void write_history(page *pg, const cli_report_in *in)
{
    buf *b = &pg->js;
    if (!in->rows || in->nrows < 1) {
        puts_(b, ",\"history\":null,\"history_note\":");
        str(b, in->history_note ? in->history_note
                                : "no training history: give --history FILE.csv (written by cnn train "
                                  "--history), or use a model file written by cnn train, which keeps it");
        return;
    }
    puts_(b, ",\"history\":{\"from\":");
    str(b, in->history_from ? in->history_from : "");
    puts_(b, ",\"rows\":[");
    for (int i = 0; i < in->nrows; i++) {
        const cli_epoch_row *r = &in->rows[i];
        printf_(b, "%s[%d,", i ? "," : "", r->epoch);
        num(b, r->lr);
        puts_(b, ",");
        num(b, r->train_loss);
        puts_(b, ",");
        num(b, r->train_acc);
        puts_(b, ",");
        num(b, r->val_loss);
        puts_(b, ",");
        num(b, r->val_acc);
        puts_(b, ",");
        num(b, r->seconds);
        puts_(b, "]");
    }
    puts_(b, "]}");
}

/* The record of the run that made the model (cnn train's metadata). */
static void write_meta(page *pg, cnn_model *m)
{
    static const char *const keys[] = {
        "dataset", "test_accuracy", "epochs", "norm_mean", "norm_std", "train.opt.arch",
        "train.opt.dataset", "train.opt.data", "train.opt.epochs", "train.opt.batch", "train.opt.opt",
        "train.opt.lr", "train.opt.momentum", "train.opt.weight-decay", "train.opt.sched",
        "train.opt.loss", "train.opt.augment", "train.opt.seed", "train.opt.val", "train.opt.limit",
        "train.opt.init-weights", "train.opt.kernels", NULL};
    buf *b = &pg->js;
    puts_(b, ",\"meta\":{");
    int first = 1;
    for (int i = 0; keys[i]; i++) {
        const char *v = cnn_model_get_meta(m, keys[i]);
        if (!v) continue;
        if (!first) puts_(b, ",");
        str(b, keys[i]);
        puts_(b, ":");
        str(b, v);
        first = 0;
    }
    puts_(b, "}");
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
        puts_(b, ",\"matrix\":[");
        for (size_t c = 0; c < (size_t)m * m; c++) printf_(b, "%s%ld", c ? "," : "", cell_count[c]);
        puts_(b, "],\"cells\":[");
        for (int a = 0; a < m; a++)
            for (int c = 0; c < m; c++) {
                printf_(b, "%s[", a || c ? "," : "");
                int taken = 0, cap = a == c ? cap_diag : cap_off;
                for (int j = 0; j < n && taken < cap; j++) {
                    int i = a == c ? j : order[j];
                    if (t->where[cli_split_label(t->d, i)] != a || t->where[t->pred[i]] != c) continue;
                    printf_(b, "%s%d", taken ? "," : "", store_add(t, i));
                    taken++;
                }
                puts_(b, "]");
            }
        puts_(b, "]");
    } else {
        puts_(b, ",\"matrix\":null,\"confusions\":[");
        for (long q = 0; q < npairs; q++) {
            printf_(b, "%s[%d,%d,%ld,[", q ? "," : "", pairs[q].t, pairs[q].p, pairs[q].count);
            int taken = 0;
            for (int j = 0; j < n && taken < cap_off; j++) {
                int i = order[j];
                if (cli_split_label(t->d, i) != pairs[q].t || t->pred[i] != pairs[q].p) continue;
                printf_(b, "%s%d", taken ? "," : "", store_add(t, i));
                taken++;
            }
            puts_(b, "]]");
        }
        puts_(b, "]");
    }
    /* the most confidently wrong */
    puts_(b, ",\"wrong\":[");
    int taken = 0;
    for (int j = 0; j < n && taken < WRONG_SHOWN; j++) {
        int i = order[j];
        if (cli_split_label(t->d, i) == t->pred[i]) continue;
        printf_(b, "%s%d", taken ? "," : "", store_add(t, i));
        taken++;
    }
    printf_(b, "],\"cell_caps\":[%d,%d]", cap_diag, cap_off);
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
    puts_(b, ",\"picks\":[");
    for (int p = 0; p < np; p++) {
        int exact = exact_per_image > 0 && exact_used + exact_per_image <= (p ? 1 : 2) * EXACT_BUDGET;
        if (exact) exact_used += exact_per_image, exact_images++;
        printf_(b, "%s{\"img\":%d,\"exact\":%d,\"probs\":", p ? "," : "", store_add(t, picks[p]), exact);
        ref_f32(pg, probs + (size_t)p * k, (size_t)k);
        puts_(b, ",\"maps\":[");
        for (int a = 0; a <= L; a++) {
            int c, h, w;
            shape_of(m, a, &c, &h, &w);
            const size_t size = (size_t)c * h * w;
            const float *v = acts[a] + (size_t)p * size;
            if (same_as(m, a) != a) {
                printf_(b, ",{\"same\":%d}", same_as(m, a));
                continue;
            }
            if (a > 0) puts_(b, ",");
            if (exact && exact_act[a]) {
                puts_(b, "{\"x\":");
                ref_f32(pg, v, size);
                puts_(b, "}");
                continue;
            }
            /* a flat vector is one "channel" */
            int planes = h * w > 1 ? c : 1;
            size_t plane = size / (size_t)planes;
            if (maps_used + size > MAPS_BUDGET && p > 0) {
                puts_(b, "null");
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
            puts_(b, "{\"q\":");
            ref_u8(pg, q, size);
            puts_(b, ",\"lo\":");
            ref_f32(pg, lo, (size_t)planes);
            puts_(b, ",\"hi\":");
            ref_f32(pg, hi, (size_t)planes);
            puts_(b, "}");
        }
        puts_(b, "]}");
    }
    printf_(b, "],\"exact_images\":%d", exact_images);
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
        puts_(b, ",\"patches\":[]");
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
    puts_(b, ",\"patches\":[");
    int firstp = 1;
    for (int i = 0; i < L; i++) {
        if (!fshown[i]) continue;
        const field *f = &rf[i + 1];
        const int rh = (int)crop_side(f->size_y, h0), rw = (int)crop_side(f->size_x, w0);
        size_t one = (size_t)c0 * rh * rw;
        size_t count = 0;
        uint8_t *crops = calloc((size_t)fshown[i] * topk[i] * one + 1, 1);
        if (!crops) goto oom;
        printf_(b, "%s{\"layer\":%d,\"filters\":%d,\"top\":%d,\"rh\":%d,\"rw\":%d,\"field\":[%ld,%ld],\"hits\":[",
                firstp ? "" : ",", i, fshown[i], topk[i], rh, rw, f->size_y, f->size_x);
        firstp = 0;
        for (int fi = 0; fi < fshown[i]; fi++) {
            const hit *list = top + toff[i] + (size_t)fi * topk[i];
            printf_(b, "%s[", fi ? "," : "");
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
                printf_(b, "%s[", j ? "," : "");
                num(b, hh->v);
                printf_(b, ",%d,%d,%d,%ld,%ld,%ld,%ld]", hh->img, hh->oy, hh->ox, y0, x0, cy, cx);
            }
            puts_(b, "]");
        }
        puts_(b, "],\"px\":");
        ref_u8(pg, crops, count * one);
        puts_(b, "}");
        free(crops);
    }
    puts_(b, "]");
    cnn_free(x);
    free(acts), free(top), free(fshown), free(topk), free(toff);
    return CLI_OK;
oom:
    cnn_free(x);
    free(acts), free(top), free(fshown), free(topk), free(toff);
    return cli_error("report", "out of memory for the strongest patches");
}

/* The classification report's counts, the cells, the wrong images, the
 * feature maps, the patches and the image store. */
static int write_test(page *pg, cnn_model *m, const cli_report_in *in, const cli_norm *nm,
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
    printf_(b, ",\"test\":{\"n\":%d,\"correct\":%ld,\"shown\":[", n, t.correct);
    for (int j = 0; j < t.m; j++) printf_(b, "%s%d", j ? "," : "", t.shown[j]);
    puts_(b, "],\"support\":[");
    for (int j = 0; j < t.m; j++) printf_(b, "%s%ld", j ? "," : "", support[t.shown[j]]);
    puts_(b, "],\"predicted\":[");
    for (int j = 0; j < t.m; j++) printf_(b, "%s%ld", j ? "," : "", predicted[t.shown[j]]);
    puts_(b, "],\"tp\":[");
    for (int j = 0; j < t.m; j++) printf_(b, "%s%ld", j ? "," : "", tp[t.shown[j]]);
    puts_(b, "]");
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
    printf_(b, ",\"sample\":%d", sample);

    /* the image store: pixels, and each image's label, prediction, top 3 */
    uint8_t *pix = malloc(px * (size_t)t.nstore + 1);
    if (!pix) {
        rc = cli_error("report", "out of memory");
        goto done;
    }
    for (int s = 0; s < t.nstore; s++) memcpy(pix + (size_t)s * px, cli_split_image(t.d, t.store[s]), px);
    puts_(b, ",\"images\":{\"px\":");
    ref_u8(pg, pix, px * (size_t)t.nstore);
    free(pix);
    puts_(b, ",\"index\":[");
    for (int s = 0; s < t.nstore; s++) printf_(b, "%s%d", s ? "," : "", t.store[s]);
    puts_(b, "],\"label\":[");
    for (int s = 0; s < t.nstore; s++) printf_(b, "%s%d", s ? "," : "", cli_split_label(t.d, t.store[s]));
    puts_(b, "],\"top\":[");
    for (int s = 0; s < t.nstore; s++) {
        int cls[3];
        float pr[3];
        top3(t.probs + (size_t)t.store[s] * k, k, cls, pr);
        printf_(b, "%s[", s ? "," : "");
        for (int j = 0; j < 3 && cls[j] >= 0; j++) {
            printf_(b, "%s%d,", j ? "," : "", cls[j]);
            num(b, pr[j]);
        }
        puts_(b, "]");
    }
    puts_(b, "]}}");
done:
    cnn_free(xbuf);
    cnn_free(t.probs);
    free(t.pred), free(t.where), free(t.shown), free(t.id_of), free(t.store), free(picks);
    free(tp), free(support), free(predicted);
    return rc;
}

/* ------------------------------------------------------------ the page */

static void html_text(buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') puts_(b, "&lt;");
        else if (*s == '>') puts_(b, "&gt;");
        else if (*s == '&') puts_(b, "&amp;");
        else if (*s == '"') puts_(b, "&quot;");
        else put(b, s, 1);
    }
}

static void base64(buf *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char line[128];
    size_t used = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        line[used++] = tab[v >> 18 & 63];
        line[used++] = tab[v >> 12 & 63];
        line[used++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        line[used++] = i + 2 < n ? tab[v & 63] : '=';
        if (used == 120) {
            line[used++] = '\n';
            put(out, line, used);
            used = 0;
        }
    }
    if (used) put(out, line, used);
}

/* The template with its markers replaced; live is the live panel's JSON
 * (cli_report_live_json). */
static void fill_template(buf *out, const char *title, const page *pg, const char *live,
                          size_t live_len)
{
    const char *t = cli_report_page_html;
    for (;;) {
        const char *at = strstr(t, "<!--@");
        if (!at) {
            puts_(out, t);
            return;
        }
        put(out, t, (size_t)(at - t));
        const char *end = strstr(at, "@-->");
        if (!end) {
            puts_(out, at);
            return;
        }
        size_t len = (size_t)(end - at - 5);
        const char *name = at + 5;
        if (len == 3 && !strncmp(name, "CSS", 3)) puts_(out, cli_report_page_css);
        else if (len == 2 && !strncmp(name, "JS", 2)) puts_(out, cli_report_page_js);
        else if (len == 6 && !strncmp(name, "LIVEJS", 6)) puts_(out, cli_report_live_js);
        else if (len == 4 && !strncmp(name, "LIVE", 4)) put(out, live, live_len);
        else if (len == 5 && !strncmp(name, "TITLE", 5)) html_text(out, title);
        else if (len == 4 && !strncmp(name, "DATA", 4)) put(out, pg->js.p, pg->js.n);
        else if (len == 4 && !strncmp(name, "BLOB", 4))
            base64(out, (const unsigned char *)pg->blob.p, pg->blob.n);
        t = end + 4;
    }
}

int cli_report_html(const char *cmd, cnn_model *m, const cli_report_in *in, const char *path,
                    size_t *bytes)
{
    page pg;
    memset(&pg, 0, sizeof pg);
    buf out = {0};
    stats *act_stats = NULL;
    cli_classes names = {0};
    cli_norm nm;
    int rc;
    if ((rc = cli_norm_from_model(cmd, m, &nm))) return rc;
    if ((rc = cli_classes_from_model(cmd, m, &names))) return rc;
    const int L = cnn_model_num_layers(m), k = cnn_model_output_size(m);
    /* room for the chosen images in one batch */
    if (cnn_model_max_batch(m) < MAX_PICKS && cnn_model_set_batch(m, MAX_PICKS) != CNN_OK) {
        rc = cli_error(cmd, "%s", cnn_errmsg());
        goto done;
    }
    act_stats = calloc((size_t)L + 1, sizeof *act_stats);
    if (!act_stats) {
        rc = cli_error(cmd, "out of memory");
        goto done;
    }

    buf *b = &pg.js;
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    puts_(b, "{\"format\":1,\"generator\":");
    str(b, "cnn " CNN_VERSION);
    puts_(b, ",\"model\":");
    str(b, in->model_name);
    puts_(b, ",\"arch\":");
    str(b, cnn_model_arch(m));
    /* the normalisation: [means, stds], one of each per stored channel */
    printf_(b, ",\"input\":[%d,%d,%d],\"norm\":[[", c, h, w);
    for (int i = 0; i < nm.channels; i++) {
        if (i) puts_(b, ",");
        num(b, nm.mean[i]);
    }
    puts_(b, "],[");
    for (int i = 0; i < nm.channels; i++) {
        if (i) puts_(b, ",");
        num(b, nm.std[i]);
    }
    printf_(b, "]],\"k\":%d,\"params\":%zu,\"flops\":", k, cnn_model_num_params(m));
    num(b, cnn_model_flops(m));
    puts_(b, ",\"softmax\":");
    puts_(b, cnn_model_ends_in_softmax(m) ? "true" : "false");
    puts_(b, ",\"classes\":[");
    for (int i = 0; i < k; i++) {
        char num_buf[16];
        if (i) puts_(b, ",");
        str(b, cli_class_name(&names, i, num_buf));
    }
    puts_(b, "]");
    write_meta(&pg, m);
    write_history(&pg, in);
    write_convs(&pg, m);
    int have_data = in->test != NULL, npicks = 0;
    if (have_data) {
        puts_(b, ",\"data\":");
        str(b, in->data_name);
        if ((rc = write_test(&pg, m, in, &nm, act_stats, &npicks))) goto done;
    } else {
        puts_(b, ",\"data\":null,\"no_data\":");
        str(b, in->no_data ? in->no_data : "no test data was given");
    }
    printf_(b, ",\"act_over\":%d", npicks);
    field *rf = calloc((size_t)L + 1, sizeof *rf);
    if (!rf) {
        rc = cli_error(cmd, "out of memory");
        goto done;
    }
    receptive_fields(m, rf);
    write_layers(&pg, m, rf, have_data ? act_stats : NULL);
    free(rf);
    puts_(b, "}");
    if (pg.js.oom || pg.blob.oom) {
        rc = cli_error(cmd, "out of memory writing the report");
        goto done;
    }

    char title[512];
    const char *base = strrchr(in->model_name, '/');
    snprintf(title, sizeof title, "What %s learned", base ? base + 1 : in->model_name);
    size_t live_len = 0;
    size_t page_bytes = strlen(cli_report_page_html) + strlen(cli_report_page_css) + strlen(cli_report_page_js) +
                        strlen(cli_report_live_js) + pg.js.n + pg.blob.n / 90 * 121 + 4096;
    char *live = cli_report_live_json(m, in->no_live, page_bytes, &live_len);
    if (!live) {
        rc = cli_error(cmd, "out of memory writing the report");
        goto done;
    }
    fill_template(&out, title, &pg, live, live_len);
    free(live);
    if (out.oom) {
        rc = cli_error(cmd, "out of memory writing the report");
        goto done;
    }
    cnn_outfile o;
    if (cnn_out_write(&o, path, out.p, out.n) != CNN_OK) {
        rc = cli_error(cmd, "%s", cnn_errmsg());
        goto done;
    }
    if (bytes) *bytes = out.n;
    rc = CLI_OK;
done:
    free(act_stats);
    free(pg.js.p);
    free(pg.blob.p);
    free(out.p);
    cli_classes_free(&names);
    return rc;
}
