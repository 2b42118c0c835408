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
 * patches), and the page says what a budget left out.
 *
 * This file writes the page and the sections about the model itself; the
 * test set's sections are report_test.c's, the text and the blob
 * report_json.c's. */
#include "cli/report_page.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const char cli_report_page_html[], cli_report_page_css[], cli_report_page_js[],
    cli_report_page_test_js[], cli_report_page_layers_js[], cli_report_live_js[];

/* The page's own scripts, run in this order in one <script> element: the
 * data and helpers with the first sections, then the others. */
static void put_scripts(buf *out)
{
    buf_puts(out, cli_report_page_js);
    buf_puts(out, cli_report_page_test_js);
    buf_puts(out, cli_report_page_layers_js);
}

#define FILTERS_EMBEDDED 128         /* filters of a conv layer whose weights the page holds */

/* ------------------------------------------------------------ helpers */

void shape_of(cnn_model *m, int a, int *c, int *h, int *w)
{
    if (a == 0) {
        cnn_model_input_shape(m, c, h, w);
        return;
    }
    cnn_layer_info li;
    cnn_model_layer_info(m, a - 1, &li);
    *c = li.out_c, *h = li.out_h, *w = li.out_w;
}

size_t act_size(cnn_model *m, int a)
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

int is_kind(cnn_model *m, int layer, const char *k) { return strcmp(kind_of(m, layer), k) == 0; }

int same_as(cnn_model *m, int a)
{
    while (a > 0 && (is_kind(m, a - 1, "dropout") || is_kind(m, a - 1, "flatten"))) a--;
    return a;
}

void stats_of(const float *x, size_t n, stats *s, int with_hist)
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
    buf_puts(b, "{\"mean\":");
    json_num(b, s->mean);
    buf_puts(b, ",\"std\":");
    json_num(b, s->std);
    buf_puts(b, ",\"min\":");
    json_num(b, s->min);
    buf_puts(b, ",\"max\":");
    json_num(b, s->max);
    buf_puts(b, ",\"zeros\":");
    json_num(b, s->zeros);
    if (with_hist) {
        buf_puts(b, ",\"hist\":[");
        for (int i = 0; i < HIST_BINS; i++) buf_printf(b, "%s%ld", i ? "," : "", s->hist[i]);
        buf_puts(b, "]");
    }
    buf_puts(b, "}");
}

void receptive_fields(cnn_model *m, field *rf)
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

/* ------------------------------------------------------------ sections */

static void write_layers(page *pg, cnn_model *m, const field *rf, const stats *act_stats)
{
    buf *b = &pg->js;
    int L = cnn_model_num_layers(m);
    buf_puts(b, ",\"layers\":[");
    for (int i = 0; i < L; i++) {
        cnn_layer_info li;
        cnn_model_layer_info(m, i, &li);
        buf_printf(b, "%s{\"i\":%d,\"kind\":", i ? "," : "", i);
        json_str(b, li.kind);
        buf_puts(b, ",\"desc\":");
        json_str(b, li.desc);
        buf_puts(b, ",\"torch\":");
        json_str(b, li.torch);
        buf_printf(b, ",\"out\":[%d,%d,%d],\"params\":%zu,\"flops\":", li.out_c, li.out_h, li.out_w,
                li.params);
        json_num(b, li.flops);
        cnn_layer_window g;
        if (cnn_model_layer_window(m, i, &g) == CNN_OK) {
            buf_printf(b, ",\"window\":{\"kh\":%d,\"kw\":%d,\"sh\":%d,\"sw\":%d,\"ph\":%d,\"pw\":%d,\"padmode\":",
                    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
            json_str(b, g.padmode);
            buf_puts(b, "}");
        }
        if (rf[i + 1].valid && li.out_h * li.out_w > 1)
            buf_printf(b, ",\"rf\":[%ld,%ld]", rf[i + 1].size_y, rf[i + 1].size_x);
        buf_puts(b, ",\"tensors\":[");
        for (int j = 0; j < cnn_model_layer_num_tensors(m, i); j++) {
            cnn_tensor t;
            cnn_model_layer_tensor(m, i, j, &t);
            buf_printf(b, "%s{\"name\":", j ? "," : "");
            json_str(b, t.name);
            buf_puts(b, ",\"dims\":[");
            for (int d = 0; d < t.ndim; d++) buf_printf(b, "%s%d", d ? "," : "", t.dims[d]);
            buf_printf(b, "],\"size\":%zu,\"trainable\":%d,\"stats\":", t.size, t.grad != NULL);
            stats s;
            stats_of(t.data, t.size, &s, 1);
            stats_json(b, &s, 1);
            buf_puts(b, "}");
        }
        buf_puts(b, "]");
        if (act_stats) {
            buf_puts(b, ",\"act\":");
            stats_json(b, &act_stats[i + 1], 0);
        }
        buf_puts(b, "}");
    }
    buf_puts(b, "]");
    if (act_stats) {
        buf_puts(b, ",\"input_act\":");
        stats_json(b, &act_stats[0], 0);
    }
}

/* The weights of every conv layer (the first FILTERS_EMBEDDED filters). */
static void write_convs(page *pg, cnn_model *m)
{
    buf *b = &pg->js;
    buf_puts(b, ",\"convs\":[");
    int first = 1;
    for (int i = 0; i < cnn_model_num_layers(m); i++) {
        if (!is_kind(m, i, "conv")) continue;
        cnn_tensor w, bias;
        cnn_model_layer_tensor_by_name(m, i, "weight", &w);
        int has_bias = cnn_model_layer_tensor_by_name(m, i, "bias", &bias) == CNN_OK;
        int F = w.dims[0], kept = F < FILTERS_EMBEDDED ? F : FILTERS_EMBEDDED;
        size_t per = w.size / (size_t)F;
        buf_printf(b, "%s{\"layer\":%d,\"dims\":[%d,%d,%d,%d],\"kept\":%d,\"weight\":", first ? "" : ",", i,
                w.dims[0], w.dims[1], w.dims[2], w.dims[3], kept);
        blob_f32(pg, w.data, per * (size_t)kept);
        buf_puts(b, ",\"bias\":");
        if (has_bias) blob_f32(pg, bias.data, (size_t)kept);
        else buf_puts(b, "null");
        buf_puts(b, "}");
        first = 0;
    }
    buf_puts(b, "]");
}

static void write_history(page *pg, const cli_report_in *in)
{
    buf *b = &pg->js;
    if (!in->rows || in->nrows < 1) {
        buf_puts(b, ",\"history\":null,\"history_note\":");
        json_str(b, in->history_note ? in->history_note
                                : "no training history: give --history FILE.csv (written by cnn train "
                                  "--history), or use a model file written by cnn train, which keeps it");
        return;
    }
    buf_puts(b, ",\"history\":{\"from\":");
    json_str(b, in->history_from ? in->history_from : "");
    buf_puts(b, ",\"rows\":[");
    for (int i = 0; i < in->nrows; i++) {
        const cli_epoch_row *r = &in->rows[i];
        const double row[] = {r->epoch, r->lr, r->train_loss, r->train_acc, r->val_loss, r->val_acc,
                              r->seconds};
        if (i) buf_puts(b, ",");
        json_nums(b, row, (int)(sizeof row / sizeof row[0]));
    }
    buf_puts(b, "]}");
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
    buf_puts(b, ",\"meta\":{");
    int first = 1;
    for (int i = 0; keys[i]; i++) {
        const char *v = cnn_model_get_meta(m, keys[i]);
        if (!v) continue;
        if (!first) buf_puts(b, ",");
        json_str(b, keys[i]);
        buf_puts(b, ":");
        json_str(b, v);
        first = 0;
    }
    buf_puts(b, "}");
}

/* ------------------------------------------------------------ the page */

static void html_text(buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') buf_puts(b, "&lt;");
        else if (*s == '>') buf_puts(b, "&gt;");
        else if (*s == '&') buf_puts(b, "&amp;");
        else if (*s == '"') buf_puts(b, "&quot;");
        else buf_put(b, s, 1);
    }
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
            buf_puts(out, t);
            return;
        }
        buf_put(out, t, (size_t)(at - t));
        const char *end = strstr(at, "@-->");
        if (!end) {
            buf_puts(out, at);
            return;
        }
        size_t len = (size_t)(end - at - 5);
        const char *name = at + 5;
        if (len == 3 && !strncmp(name, "CSS", 3)) buf_puts(out, cli_report_page_css);
        else if (len == 2 && !strncmp(name, "JS", 2)) put_scripts(out);
        else if (len == 6 && !strncmp(name, "LIVEJS", 6)) buf_puts(out, cli_report_live_js);
        else if (len == 4 && !strncmp(name, "LIVE", 4)) buf_put(out, live, live_len);
        else if (len == 5 && !strncmp(name, "TITLE", 5)) html_text(out, title);
        else if (len == 4 && !strncmp(name, "DATA", 4)) buf_put(out, pg->js.p, pg->js.n);
        else if (len == 4 && !strncmp(name, "BLOB", 4))
            base64(out, (const unsigned char *)pg->blob.p, pg->blob.n, 120);
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
    buf_puts(b, "{\"format\":1,\"generator\":");
    json_str(b, "cnn " CNN_VERSION);
    buf_puts(b, ",\"model\":");
    json_str(b, in->model_name);
    buf_puts(b, ",\"arch\":");
    json_str(b, cnn_model_arch(m));
    /* the normalisation: [means, stds], one of each per stored channel */
    double mean[CLI_NORM_MAX], std[CLI_NORM_MAX];
    for (int i = 0; i < nm.channels; i++) mean[i] = nm.mean[i], std[i] = nm.std[i];
    buf_printf(b, ",\"input\":[%d,%d,%d],\"norm\":[", c, h, w);
    json_nums(b, mean, nm.channels);
    buf_puts(b, ",");
    json_nums(b, std, nm.channels);
    buf_printf(b, "],\"k\":%d,\"params\":%zu,\"flops\":", k, cnn_model_num_params(m));
    json_num(b, cnn_model_flops(m));
    buf_puts(b, ",\"softmax\":");
    buf_puts(b, cnn_model_ends_in_softmax(m) ? "true" : "false");
    buf_puts(b, ",\"classes\":[");
    for (int i = 0; i < k; i++) {
        char num_buf[16];
        if (i) buf_puts(b, ",");
        json_str(b, cli_class_name(&names, i, num_buf));
    }
    buf_puts(b, "]");
    write_meta(&pg, m);
    write_history(&pg, in);
    write_convs(&pg, m);
    int have_data = in->test != NULL, npicks = 0;
    if (have_data) {
        buf_puts(b, ",\"data\":");
        json_str(b, in->data_name);
        if ((rc = report_test(&pg, m, in, &nm, act_stats, &npicks))) goto done;
    } else {
        buf_puts(b, ",\"data\":null,\"no_data\":");
        json_str(b, in->no_data ? in->no_data : "no test data was given");
    }
    buf_printf(b, ",\"act_over\":%d", npicks);
    field *rf = calloc((size_t)L + 1, sizeof *rf);
    if (!rf) {
        rc = cli_error(cmd, "out of memory");
        goto done;
    }
    receptive_fields(m, rf);
    write_layers(&pg, m, rf, have_data ? act_stats : NULL);
    free(rf);
    buf_puts(b, "}");
    if (pg.js.oom || pg.blob.oom) {
        rc = cli_error(cmd, "out of memory writing the report");
        goto done;
    }

    char title[512];
    const char *base = strrchr(in->model_name, '/');
    snprintf(title, sizeof title, "What %s learned", base ? base + 1 : in->model_name);
    size_t live_len = 0;
    buf scripts = {0};
    put_scripts(&scripts);
    size_t page_bytes = strlen(cli_report_page_html) + strlen(cli_report_page_css) + scripts.n +
                        strlen(cli_report_live_js) + pg.js.n + pg.blob.n / 90 * 121 + 4096;
    free(scripts.p);
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
