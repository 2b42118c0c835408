/* data.c — finding a data set on disk, class names, input normalisation and
 * turning uint8 images into the float batches the model reads. */
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

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int cli_load_dataset(const char *cmd, const char *dataset, const char *dir, int test,
                     cnn_dataset *out, char *shown, size_t shown_len)
{
    char path[4096];
    if (dir) {
        snprintf(path, sizeof path, "%s", dir);
        if (!is_dir(path)) return cli_error(cmd, "--data: '%s' is not a directory", dir);
    } else {
        if (strcmp(dataset, "mnist") != 0 && strcmp(dataset, "fashion") != 0)
            return cli_usage_error(cmd, "--dataset: expected mnist or fashion, got '%s'", dataset);
        /* data/ of the current directory first (a checkout), then of the
         * source tree the program was built from (running from a build dir) */
        snprintf(path, sizeof path, "data/%s", dataset);
#ifdef CNN_SOURCE_DIR
        if (!is_dir(path)) snprintf(path, sizeof path, "%s/data/%s", CNN_SOURCE_DIR, dataset);
#endif
        if (!is_dir(path))
            return cli_error(cmd,
                             "the %s data set is not in data/%s (looked in the current directory"
#ifdef CNN_SOURCE_DIR
                             " and in " CNN_SOURCE_DIR
#endif
                             "); run data/fetch.sh to download it, or point --data at a "
                             "directory of IDX files",
                             dataset, dataset);
    }
    if (shown) snprintf(shown, shown_len, "%s", path);
    cnn_status st = cnn_dataset_open_dir(path, test, out);
    if (st != CNN_OK) {
        if (!dir) return cli_error(cmd, "%s (run data/fetch.sh to fetch it)", cnn_errmsg());
        return cli_error(cmd, "%s", cnn_errmsg());
    }
    if (out->n < 1) {
        cnn_dataset_free(out);
        return cli_error(cmd, "the %s split in %s holds no images", test ? "test" : "training", path);
    }
    return CLI_OK;
}

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

/* Why `s` (len bytes) is not printable UTF-8 text, or NULL if it is:
 * well-formed sequences (no overlong forms, surrogates or code points past
 * U+10FFFF) and no control characters (C0, DEL, C1), which a terminal
 * would act on. */
static const char *text_problem(const unsigned char *s, size_t len)
{
    static const unsigned least[4] = {0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < len;) {
        const unsigned c = s[i];
        const int more = c < 0x80 ? 0 : c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
        if (more < 0 || c > 0xf4 || (size_t)more >= len - i) return "is not UTF-8 text";
        unsigned cp = more ? c & (0x3fu >> more) : c;
        for (int j = 1; j <= more; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return "is not UTF-8 text";
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < least[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return "is not UTF-8 text";
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return "holds a control character";
        i += (size_t)more + 1;
    }
    return NULL;
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
        const char *bad = text_problem((const unsigned char *)p, len);
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

void cli_norm_init(cli_norm *nm, float mean, float std)
{
    if (!(std > 0.0f)) std = 1.0f;
    nm->mean = mean;
    nm->std = std;
    for (int p = 0; p < 256; p++) nm->lut[p] = ((float)p / 255.0f - mean) / std;
}

void cli_pixel_stats(const uint8_t *px, size_t n, double *mean, double *std)
{
    /* a histogram makes the sums exact and the order irrelevant */
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[px[i]]++;
    double s = 0.0, s2 = 0.0;
    for (int p = 0; p < 256; p++) {
        double v = p / 255.0;
        s += v * (double)hist[p];
        s2 += v * v * (double)hist[p];
    }
    double m = n ? s / (double)n : 0.0;
    double var = n ? s2 / (double)n - m * m : 1.0;
    *mean = m;
    *std = var > 0.0 ? sqrt(var) : 1.0;
}

int cli_norm_from_model(const char *cmd, const cnn_model *m, cli_norm *nm)
{
    const char *ms = cnn_model_get_meta(m, "norm_mean");
    const char *ss = cnn_model_get_meta(m, "norm_std");
    float mean = 0.0f, std = 1.0f;
    if (ms && ss) {
        char *e1, *e2;
        mean = strtof(ms, &e1);
        std = strtof(ss, &e2);
        if (!*ms || *e1 || !isfinite(mean))
            return cli_error(cmd, "the model's norm_mean '%.40s' is not a finite number", ms);
        /* a denormal std divides pixels into infinities */
        if (!*ss || *e2 || !isfinite(std) || !(std >= FLT_MIN))
            return cli_error(cmd, "the model's norm_std '%.40s' is not a usable standard deviation "
                             "(a finite number of at least %g)", ss, FLT_MIN);
    }
    cli_norm_init(nm, mean, std);
    for (int p = 0; p < 256; p++)
        if (!isfinite(nm->lut[p]))
            return cli_error(cmd, "the model's norm_mean '%s' and norm_std '%s' turn pixel value %d "
                             "into %g: not a finite input", ms, ss, p, nm->lut[p]);
    return CLI_OK;
}

void cli_batch(const cnn_dataset *d, const int *idx, int first, int n, const cli_norm *nm,
               float *x, uint8_t *labels)
{
    size_t px = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < n; i++) {
        int j = idx ? idx[first + i] : first + i;
        const uint8_t *src = d->images + (size_t)j * px;
        float *dst = x + (size_t)i * px;
        for (size_t p = 0; p < px; p++) dst[p] = nm->lut[src[p]];
        if (labels) labels[i] = d->labels[j];
    }
}
