/* data.c — class names, input normalisation and turning uint8 images into
 * the float batches the model reads. Finding and loading a data set is
 * data_load.c's. */
#include "cli/cli.h"
#include "io/idx.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};

/* -------------------------------------------------------------- class names */

void cli_classes_free(cli_classes *c)
{
    for (int i = 0; c->names && i < c->n; i++) free(c->names[i]);
    free(c->names);
    c->names = NULL;
    c->n = 0;
}

int cli_default_classes(const char *dataset, int k, cli_classes *c)
{
    cli_classes_free(c);
    c->names = calloc(k > 0 ? (size_t)k : 1, sizeof *c->names);
    if (!c->names) return -1;
    for (int i = 0; i < k; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        int fashion = dataset && strcmp(dataset, "fashion") == 0 && k == 10;
        if (!(c->names[i] = strdup(fashion ? fashion_names[i] : num))) {
            c->n = i;
            cli_classes_free(c);
            return -1;
        }
        c->n = i + 1;
    }
    return 0;
}

char *cli_classes_join(const cli_classes *c)
{
    size_t len = 1;
    for (int i = 0; i < c->n; i++) len += strlen(c->names[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    *p = '\0';
    for (int i = 0; i < c->n; i++) p += sprintf(p, "%s%s", i ? "," : "", c->names[i]);
    return s;
}

const char *cli_class_name(const cli_classes *c, int i, char buf[16])
{
    if (i >= 0 && i < c->n) return c->names[i];
    snprintf(buf, 16, "%d", i);
    return buf;
}

int cli_text_width(const char *s)
{
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80; /* not a continuation byte */
    return w;
}

typedef struct {
    const char *name;
    int index;
} named;

static int cmp_named(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

int cli_classes_from_model(const char *cmd, const cnn_model *m, cli_classes *c)
{
    cli_classes_free(c);
    const char *s = cnn_model_get_meta(m, "classes");
    const int k = cnn_model_output_size(m);
    if (!s || !*s) return CLI_OK; /* every class named by its index */
    long count = 1;
    for (const char *p = s; *p; p++) count += *p == ',';
    if (count > k)
        return cli_error(cmd, "the model's 'classes' metadata lists %ld names but the model has %d "
                         "outputs (is there a comma inside a name?)", count, k);
    c->names = calloc((size_t)count, sizeof *c->names);
    named *order = malloc(sizeof *order * (size_t)count);
    if (!c->names || !order) {
        free(order);
        cli_classes_free(c);
        return cli_error(cmd, "out of memory for %ld class names", count);
    }
    char problem[96] = "";
    for (const char *p = s; c->n < count; c->n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *bad = cnn_text_problem(p, len);
        if (len == 0) snprintf(problem, sizeof problem, "is empty");
        else if (len > CLI_CLASS_NAME_MAX)
            snprintf(problem, sizeof problem, "is %zu bytes long (at most %d)", len, CLI_CLASS_NAME_MAX);
        else if (bad) snprintf(problem, sizeof problem, "%s", bad);
        else if (!(c->names[c->n] = strndup(p, len)))
            snprintf(problem, sizeof problem, "could not be stored (out of memory)");
        if (problem[0]) break;
        order[c->n] = (named){c->names[c->n], c->n};
        p += len + (comma != NULL);
    }
    int a = -1, b = -1;
    if (!problem[0]) {
        /* the same name twice would make a report ambiguous */
        qsort(order, (size_t)count, sizeof *order, cmp_named);
        for (long i = 1; i < count && a < 0; i++)
            if (strcmp(order[i - 1].name, order[i].name) == 0) {
                a = order[i - 1].index;
                b = order[i].index;
            }
    }
    free(order);
    if (problem[0]) {
        int at = c->n;
        cli_classes_free(c);
        return cli_error(cmd, "the model's 'classes' metadata is refused: the name of class %d %s",
                         at, problem);
    }
    if (a >= 0) {
        cli_classes_free(c);
        return cli_error(cmd, "the model's 'classes' metadata is refused: classes %d and %d have "
                         "the same name", a, b);
    }
    return CLI_OK;
}

/* ----------------------------------------------------------- normalisation */

/* Mean and std from a histogram of pixel values (exact sums, any order). */
static void hist_stats(const uint64_t hist[256], double *mean, double *std)
{
    double s = 0.0, s2 = 0.0, n = 0.0;
    for (int p = 0; p < 256; p++) {
        double v = p / 255.0;
        s += v * (double)hist[p];
        s2 += v * v * (double)hist[p];
        n += (double)hist[p];
    }
    double m = n > 0 ? s / n : 0.0;
    double var = n > 0 ? s2 / n - m * m : 1.0;
    *mean = m;
    *std = var > 0.0 ? sqrt(var) : 1.0;
}

void cli_pixel_stats(const uint8_t *px, size_t n, double *mean, double *std)
{
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[px[i]]++;
    hist_stats(hist, mean, std);
}

void cli_split_stats(const cli_split *s, cli_norm *nm)
{
    const int c = s->store->c > CLI_NORM_MAX ? CLI_NORM_MAX : s->store->c;
    const size_t plane = (size_t)s->store->h * s->store->w;
    uint64_t (*hist)[256] = calloc((size_t)c, sizeof *hist);
    float mean[CLI_NORM_MAX] = {0}, std[CLI_NORM_MAX] = {1, 1, 1, 1};
    if (!hist) { /* out of memory: no normalisation rather than none at all */
        cli_norm_init_channels(nm, c, mean, std);
        return;
    }
    for (int i = 0; i < s->n; i++) {
        const uint8_t *img = cli_split_image(s, i);
        for (int k = 0; k < c; k++) {
            const uint8_t *p = img + (size_t)k * plane;
            uint64_t *h = hist[k];
            for (size_t j = 0; j < plane; j++) h[p[j]]++;
        }
    }
    for (int k = 0; k < c; k++) {
        double m, sd;
        hist_stats(hist[k], &m, &sd);
        mean[k] = (float)m;
        std[k] = (float)sd;
    }
    free(hist);
    cli_norm_init_channels(nm, c, mean, std);
}

/* Up to CLI_NORM_MAX comma-separated floats; the count, or -1 if one is not
 * a number or there are too many. */
static int parse_floats(const char *s, float *out)
{
    int n = 0;
    const char *p = s;
    while (1) {
        if (n == CLI_NORM_MAX) return -1;
        char *end;
        if (!*p || *p == ',') return -1;
        out[n++] = strtof(p, &end);
        if (end == p) return -1;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

int cli_norm_from_model(const char *cmd, const cnn_model *m, cli_norm *nm)
{
    const char *ms = cnn_model_get_meta(m, "norm_mean");
    const char *ss = cnn_model_get_meta(m, "norm_std");
    float mean[CLI_NORM_MAX] = {0}, std[CLI_NORM_MAX] = {1, 1, 1, 1};
    int nmean = 1, nstd = 1;
    if (ms && ss) {
        int ic, ih, iw;
        cnn_model_input_shape(m, &ic, &ih, &iw);
        nmean = parse_floats(ms, mean);
        nstd = parse_floats(ss, std);
        if (nmean < 0)
            return cli_error(cmd, "the model's norm_mean '%.40s' is not a finite number (or one per "
                             "input channel, comma-separated)", ms);
        if (nstd < 0)
            return cli_error(cmd, "the model's norm_std '%.40s' is not a usable standard deviation "
                             "(a finite number of at least %g, or one per input channel)", ss, FLT_MIN);
        if ((nmean != 1 && nmean != ic) || nstd != nmean)
            return cli_error(cmd, "the model's norm_mean '%.40s' and norm_std '%.40s' are not one "
                             "number each, or one per input channel (%d)", ms, ss, ic);
        for (int k = 0; k < nmean; k++) {
            if (!isfinite(mean[k]))
                return cli_error(cmd, "the model's norm_mean '%.40s' is not a finite number", ms);
            /* a denormal std divides pixels into infinities */
            if (!isfinite(std[k]) || !(std[k] >= FLT_MIN))
                return cli_error(cmd, "the model's norm_std '%.40s' is not a usable standard deviation "
                                 "(a finite number of at least %g)", ss, FLT_MIN);
        }
    }
    cli_norm_init_channels(nm, nmean, mean, std);
    for (int k = 0; k < nm->channels; k++)
        for (int p = 0; p < 256; p++)
            if (!isfinite(nm->lut[k][p]))
                return cli_error(cmd, "the model's norm_mean '%s' and norm_std '%s' turn pixel value %d "
                                 "into %g: not a finite input", ms, ss, p, nm->lut[k][p]);
    return CLI_OK;
}

int cli_norm_to_model(const char *cmd, cnn_model *m, const cli_norm *nm)
{
    char mean[160] = "", std[160] = "";
    for (int k = 0; k < nm->channels; k++) {
        size_t a = strlen(mean), b = strlen(std);
        snprintf(mean + a, sizeof mean - a, "%s%.9g", k ? "," : "", nm->mean[k]);
        snprintf(std + b, sizeof std - b, "%s%.9g", k ? "," : "", nm->std[k]);
    }
    if (cnn_model_set_meta(m, "norm_mean", mean) != CNN_OK ||
        cnn_model_set_meta(m, "norm_std", std) != CNN_OK)
        return cli_error(cmd, "%s", cnn_errmsg());
    return CLI_OK;
}

const uint8_t *cli_split_image(const cli_split *s, int i)
{
    const cli_store *st = s->store;
    int j = cli_split_index(s, i);
    if (st->images) return st->images + (size_t)j * st->c * st->h * st->w;
    return cnn_cache_image(&st->cache, j, st->scratch);
}

void cli_batch_rows(const cli_split *s, const int *pos, int first, int n, int row0, int rows,
                    const cli_norm *nm, float *x, uint8_t *labels)
{
    const cli_store *st = s->store;
    const size_t plane = (size_t)st->h * st->w, px = plane * st->c;
    for (int i = 0; i < n; i++) {
        int j = pos ? pos[first + i] : first + i;
        if (i >= row0 && i < row0 + rows)
            cli_normalise(cli_split_image(s, j), st->c, plane, nm, x + (size_t)i * px);
        if (labels) labels[i] = (uint8_t)cli_split_label(s, j);
    }
}

void cli_batch(const cli_split *s, const int *pos, int first, int n, const cli_norm *nm,
               float *x, uint8_t *labels)
{
    cli_batch_rows(s, pos, first, n, 0, n, nm, x, labels);
}
