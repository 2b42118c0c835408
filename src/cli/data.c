/* data.c — finding a data set on disk, class names, input normalisation and
 * turning uint8 images into the float batches the model reads. */
#include "cli/cli.h"
#include "io/idx.h"

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

void cli_default_classes(const char *dataset, int k, cli_classes *c)
{
    if (k > CLI_MAX_CLASSES) k = CLI_MAX_CLASSES;
    c->n = k;
    for (int i = 0; i < k; i++) {
        if (dataset && strcmp(dataset, "fashion") == 0 && k == 10)
            snprintf(c->names[i], sizeof c->names[i], "%s", fashion_names[i]);
        else
            snprintf(c->names[i], sizeof c->names[i], "%d", i);
    }
}

void cli_classes_parse(const char *s, cli_classes *c)
{
    c->n = 0;
    while (s && *s && c->n < CLI_MAX_CLASSES) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len >= sizeof c->names[0]) len = sizeof c->names[0] - 1;
        memcpy(c->names[c->n], s, len);
        c->names[c->n][len] = '\0';
        c->n++;
        if (!comma) break;
        s = comma + 1;
    }
}

void cli_classes_join(const cli_classes *c, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->n && used + 1 < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", c->names[i]);
}

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
        if (*e1 || *e2 || !isfinite(mean) || !isfinite(std) || !(std > 0.0f))
            return cli_error(cmd, "the model's norm_mean '%s' / norm_std '%s' are not valid numbers",
                             ms, ss);
    }
    cli_norm_init(nm, mean, std);
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
