/* data_load.c — finding a data set (--dataset NAME or --data PATH), telling
 * its layout by what it holds, loading its splits in the model's input
 * shape, and the checks that data and model agree.
 *
 * Layouts of --data, tried in this order:
 *   a folder of IDX files        train-images-idx3-ubyte[.gz], t10k-..., ...
 *   a folder of CSV files        train.csv and test.csv (test.csv optional)
 *   a folder of trees            train/<class>/..., test/<class>/... (val/ optional)
 *   an image-folder tree         <class>/<picture>
 *   a file                       a cache file (CNNCACHE), else CSV text
 * A source without a test split is cut in two by --test-split (a seeded
 * draw, recorded in the model). */
#include "cli/cli.h"
#include "io/idx.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A folder holding at least one folder whose name does not start with '.'. */
static int has_subdir(const char *p)
{
    DIR *d = opendir(p);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    char sub[8192];
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(sub, sizeof sub, "%.7800s/%s", p, e->d_name);
        found = is_dir(sub);
    }
    closedir(d);
    return found;
}

static int has_idx(const char *dir)
{
    static const char *const names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                        "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz"};
    char p[8192];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (is_file(p)) return 1;
    }
    return 0;
}

static int starts_with_cache_magic(const char *path)
{
    FILE *f;
    if (cnn_fopen_input(path, "a data file", &f, NULL) != CNN_OK) return 0;
    char b[8];
    int yes = fread(b, 1, 8, f) == 8 && memcmp(b, CNN_CACHE_MAGIC, 8) == 0;
    fclose(f);
    return yes;
}

cnn_prep cli_default_prep(const char *dataset, const char *data)
{
    return !data && dataset && strcmp(dataset, "mnist") == 0 ? CNN_PREP_DIGIT : CNN_PREP_PAD;
}

int cli_prep_from_model(const char *cmd, const cnn_model *m, cnn_prep *out)
{
    const char *p = cnn_model_get_meta(m, "prep");
    if (p) {
        if (cnn_prep_parse(p, out) != CNN_OK)
            return cli_error(cmd, "the model's prep '%.40s' is not digit, pad or crop", p);
        return CLI_OK;
    }
    /* older files: a 1x28x28 model was made for MNIST-like digits */
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    *out = c == 1 && h == 28 && w == 28 ? CNN_PREP_DIGIT : CNN_PREP_PAD;
    return CLI_OK;
}

/* -------------------------------------------------------------- stores */

static void store_free(cli_store *s)
{
    cnn_dataset_free(&s->idx);
    if (s->cache.map || s->cache.fd > 0) cnn_cache_close(&s->cache);
    free(s->scratch);
    memset(s, 0, sizeof *s);
}

static void warn_line(void *ctx, const char *msg)
{
    fprintf(stderr, "cnn %s: warning: %s (skipped; --strict refuses it)\n", (const char *)ctx, msg);
}

/* What a store shows of the data it holds (an IDX split's or a cache's):
 * where it came from, the image shape, the labels, the images (NULL: read
 * from the cache file) and the number of classes. */
static void store_view(cli_store *s, const char *where, int n, int c, int h, int w,
                       const uint8_t *labels, const uint8_t *images, int classes)
{
    snprintf(s->where, sizeof s->where, "%s", where);
    s->n = n, s->c = c, s->h = h, s->w = w;
    s->labels = labels, s->images = images, s->classes = classes;
}

/* An IDX split into a store. IDX files hold tensors, not pictures: their
 * shape must be the model's input. */
static int store_idx(const char *cmd, const char *dir, int test, const cli_data_opts *o,
                     int known, cli_store *s)
{
    cnn_status st = cnn_dataset_open_dir(dir, test, &s->idx);
    if (st != CNN_OK) {
        if (known) return cli_error(cmd, "%s (run data/fetch.sh to fetch it)", cnn_errmsg());
        return cli_error(cmd, "%s", cnn_errmsg());
    }
    const cnn_dataset *d = &s->idx;
    if (d->c != o->c || d->h != o->h || d->w != o->w)
        return cli_error(cmd, "the model takes %dx%dx%d images but the %s split in %s holds %dx%dx%d",
                         o->c, o->h, o->w, test ? "test" : "training", dir, d->c, d->h, d->w);
    store_view(s, dir, d->n, d->c, d->h, d->w, d->labels, d->images, d->classes);
    return CLI_OK;
}

/* A cached source (tree, CSV or cache file) into a store. */
static int store_cached(const char *cmd, const char *path, const char *kind, const cli_data_opts *o,
                        cli_store *s)
{
    cnn_source_opts so = {0};
    so.c = o->c;
    so.h = o->h;
    so.w = o->w;
    so.prep = o->prep;
    so.strict = o->strict;
    so.cache_dir = o->cache_dir;
    so.warn = warn_line;
    so.ctx = (void *)cmd;
    cnn_status st;
    if (strcmp(kind, "folder") == 0) st = cnn_source_folder(path, &so, &s->cache);
    else if (strcmp(kind, "csv") == 0) st = cnn_source_csv(path, &so, &s->cache);
    else st = cnn_cache_open(path, &s->cache);
    if (st != CNN_OK) {
        if (st == CNN_ERR_FORMAT && o->strict && strcmp(kind, "folder") == 0)
            return cli_error(cmd, "%s (--strict)", cnn_errmsg());
        return cli_error(cmd, "%s", cnn_errmsg());
    }
    const cnn_cache *c = &s->cache;
    if (strcmp(kind, "cache") == 0 && (c->c != o->c || c->h != o->h || c->w != o->w))
        return cli_error(cmd, "%s: holds %dx%dx%d images but the model takes %dx%dx%d", path, c->c,
                         c->h, c->w, o->c, o->h, o->w);
    store_view(s, path, c->n, c->c, c->h, c->w, c->labels, c->images, c->classes);
    if (!c->images && !(s->scratch = malloc((size_t)c->c * c->h * c->w)))
        return cli_error(cmd, "out of memory");
    if (!o->quiet && strcmp(kind, "cache") != 0) {
        if (so.built)
            printf("data: %s: decoded %d image%s into %s in %.2f s%s\n", path, c->n, c->n == 1 ? "" : "s",
                   so.cache_path, so.seconds, so.skipped ? " (some skipped: see the warnings)" : "");
        else
            printf("data: %s: %d images from the cache %s in %.3f s\n", path, c->n, so.cache_path,
                   so.seconds);
        fflush(stdout);
    }
    return CLI_OK;
}

/* ------------------------------------------------------------- classes */

static int names_from_cache(const cnn_cache *c, cli_classes *out)
{
    cli_classes_free(out);
    out->names = calloc((size_t)c->classes, sizeof *out->names);
    if (!out->names) return -1;
    for (int k = 0; k < c->classes; k++) {
        if (!(out->names[k] = strdup(c->names[k]))) return -1;
        out->n = k + 1;
    }
    return 0;
}

/* "a,b,c" cut to about 300 bytes, for messages. */
static void short_list(const cli_classes *c, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < c->n; i++) {
        size_t at = strlen(buf);
        if (at + strlen(c->names[i]) + 8 > len || at > 300) {
            snprintf(buf + at, len - at, ",... (%d in all)", c->n);
            return;
        }
        snprintf(buf + at, len - at, "%s%s", i ? "," : "", c->names[i]);
    }
}

int cli_classes_agree(const char *cmd, const char *what_a, const cli_classes *a,
                      const char *what_b, const cli_classes *b)
{
    int same = a->n == b->n;
    for (int i = 0; same && i < a->n; i++) same = strcmp(a->names[i], b->names[i]) == 0;
    if (same) return CLI_OK;
    char la[512], lb[512];
    short_list(a, la, sizeof la);
    short_list(b, lb, sizeof lb);
    return cli_error(cmd, "the classes differ: %s has %d (%s) but %s has %d (%s)", what_a, a->n, la,
                     what_b, b->n, lb);
}

/* -------------------------------------------------------------- splits */

static void shuffle(int *v, int n, uint64_t seed)
{
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(&r, (uint32_t)i + 1);
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* A whole store as a split in a seeded order: the training images of a
 * tree are sorted by class, so the last --val of them would otherwise all
 * be one class. */
static int split_shuffled(cli_store *s, uint64_t seed, cli_split *out)
{
    out->store = s;
    out->n = s->n;
    out->first = 0;
    if (!(out->idx = malloc(sizeof(int) * (size_t)s->n))) return -1;
    for (int i = 0; i < s->n; i++) out->idx[i] = i;
    shuffle(out->idx, s->n, seed);
    return 0;
}

/* One source cut in two: test_split of it (in file order) for testing, the
 * rest (in a seeded order) for training. */
static int split_fraction(const char *cmd, cli_store *s, double frac, uint64_t seed, cli_data *d)
{
    if (s->n < 2)
        return cli_error(cmd, "%s holds %d image: too few to cut into training and test images", s->where, s->n);
    int ntest = (int)lround(frac * s->n);
    if (ntest < 1) ntest = 1;
    if (ntest > s->n - 1) ntest = s->n - 1;
    int *all = malloc(sizeof(int) * (size_t)s->n);
    d->test.idx = malloc(sizeof(int) * (size_t)ntest);
    d->train.idx = malloc(sizeof(int) * (size_t)(s->n - ntest));
    if (!all || !d->test.idx || !d->train.idx) {
        free(all);
        return cli_error(cmd, "out of memory");
    }
    for (int i = 0; i < s->n; i++) all[i] = i;
    shuffle(all, s->n, seed);
    memcpy(d->test.idx, all, sizeof(int) * (size_t)ntest);
    memcpy(d->train.idx, all + ntest, sizeof(int) * (size_t)(s->n - ntest));
    free(all);
    qsort(d->test.idx, (size_t)ntest, sizeof(int), cmp_int);
    d->test.store = d->train.store = s;
    d->test.n = ntest;
    d->train.n = s->n - ntest;
    d->single = 1;
    return CLI_OK;
}

/* ---------------------------------------------------------------- load */

void cli_data_free(cli_data *d)
{
    for (int i = 0; i < 3; i++) store_free(&d->store[i]);
    free(d->train.idx);
    free(d->val.idx);
    free(d->test.idx);
    cli_classes_free(&d->names);
    memset(d, 0, sizeof *d);
}

static void whole(cli_store *s, cli_split *out)
{
    out->store = s;
    out->n = s->n;
    out->idx = NULL;
    out->first = 0;
}

int cli_data_load(const char *cmd, const cli_data_opts *o, cli_data *d)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < 3; i++) d->store[i].cache.fd = -1;
    char path[4096];
    int known = 0;
    if (o->data) {
        snprintf(path, sizeof path, "%s", o->data);
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/') path[--len] = '\0';
    } else {
        if (strcmp(o->dataset, "mnist") != 0 && strcmp(o->dataset, "fashion") != 0)
            return cli_usage_error(cmd, "--dataset: expected mnist or fashion, got '%s'", o->dataset);
        /* data/ of the current directory first (a checkout), then of the
         * source tree the program was built from (running from a build dir) */
        snprintf(path, sizeof path, "data/%s", o->dataset);
#ifdef CNN_SOURCE_DIR
        if (!is_dir(path)) snprintf(path, sizeof path, "%s/data/%s", CNN_SOURCE_DIR, o->dataset);
#endif
        if (!is_dir(path))
            return cli_error(cmd,
                             "the %s data set is not in data/%s (looked in the current directory"
#ifdef CNN_SOURCE_DIR
                             " and in " CNN_SOURCE_DIR
#endif
                             "); run data/fetch.sh to download it, or point --data at a "
                             "data set",
                             o->dataset, o->dataset);
        known = 1;
    }
    snprintf(d->where, sizeof d->where, "%s", path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cli_error(cmd, "--data: '%s' does not exist (give a folder of IDX files, CSV files "
                         "or class folders, or a CSV file)", path);

    char sub[3][8192];
    int rc = CLI_OK, val = 0;
    if (S_ISREG(sb.st_mode)) {
        const char *kind = starts_with_cache_magic(path) ? "cache" : "csv";
        snprintf(d->kind, sizeof d->kind, "%s", kind);
        if ((rc = store_cached(cmd, path, kind, o, &d->store[0]))) return rc;
    } else if (!S_ISDIR(sb.st_mode)) {
        return cli_error(cmd, "--data: '%s' is neither a folder nor a file", path);
    } else if (has_idx(path)) {
        snprintf(d->kind, sizeof d->kind, "idx");
        if ((rc = store_idx(cmd, path, 0, o, known, &d->store[0]))) return rc;
        if ((rc = store_idx(cmd, path, 1, o, known, &d->store[1]))) return rc;
    } else {
        snprintf(sub[0], sizeof sub[0], "%s/train.csv", path);
        snprintf(sub[1], sizeof sub[1], "%s/test.csv", path);
        const char *kind = "csv";
        if (!is_file(sub[0])) {
            kind = "folder";
            snprintf(sub[0], sizeof sub[0], "%s/train", path);
            snprintf(sub[1], sizeof sub[1], "%s/test", path);
            snprintf(sub[2], sizeof sub[2], "%s/val", path);
            if (!is_dir(sub[0]) || !has_subdir(sub[0])) {
                if (!has_subdir(path))
                    return cli_error(cmd, "--data: '%s' holds no data set: expected IDX files "
                                     "(train-images-idx3-ubyte, ...), train.csv and test.csv, "
                                     "train/ and test/ folders, or one folder per class", path);
                snprintf(sub[0], sizeof sub[0], "%s", path); /* one tree */
                sub[1][0] = sub[2][0] = '\0';
            }
            val = sub[2][0] && is_dir(sub[2]);
        }
        snprintf(d->kind, sizeof d->kind, "%s", kind);
        if ((rc = store_cached(cmd, sub[0], kind, o, &d->store[0]))) return rc;
        if (sub[1][0] && (strcmp(kind, "csv") == 0 ? is_file(sub[1]) : is_dir(sub[1])) &&
            (rc = store_cached(cmd, sub[1], kind, o, &d->store[1])))
            return rc;
        if (val && (rc = store_cached(cmd, sub[2], kind, o, &d->store[2]))) return rc;
    }

    /* the splits: store 0 trains, store 1 tests (when there is one), store
     * 2 validates (DIR/val) */
    int tree = strcmp(d->kind, "folder") == 0, has_test = d->store[1].n > 0;
    if (!has_test) {
        if ((rc = split_fraction(cmd, &d->store[0], o->test_split, o->split_seed, d))) return rc;
    } else {
        if (strcmp(d->kind, "idx") == 0) whole(&d->store[0], &d->train);
        else if (split_shuffled(&d->store[0], o->split_seed, &d->train))
            return cli_error(cmd, "out of memory");
        whole(&d->store[1], &d->test);
    }
    if (d->store[2].n > 0) whole(&d->store[2], &d->val);

    /* the class names: a tree's folders (the same in every split), else
     * the labels' numbers (or Fashion-MNIST's names) */
    d->classes = 0;
    for (int i = 0; i < 3; i++)
        if (d->store[i].classes > d->classes) d->classes = d->store[i].classes;
    d->named = tree || known || strcmp(d->kind, "cache") == 0;
    if (tree) {
        static const char *const split_name[3] = {"train", "test", "val"};
        if (names_from_cache(&d->store[0].cache, &d->names)) return cli_error(cmd, "out of memory");
        for (int i = 1; i < 3; i++) {
            if (d->store[i].n == 0) continue;
            cli_classes other = {0};
            if (names_from_cache(&d->store[i].cache, &other)) {
                cli_classes_free(&other);
                return cli_error(cmd, "out of memory");
            }
            char wa[8300], wb[8300];
            snprintf(wa, sizeof wa, "%s/%s", path, split_name[0]);
            snprintf(wb, sizeof wb, "%s/%s", path, split_name[i]);
            rc = cli_classes_agree(cmd, wa, &d->names, wb, &other);
            cli_classes_free(&other);
            if (rc) return rc;
        }
    } else {
        if (cli_default_classes(known ? o->dataset : NULL, d->classes, &d->names))
            return cli_error(cmd, "out of memory");
        if (strcmp(d->kind, "cache") == 0 && names_from_cache(&d->store[0].cache, &d->names))
            return cli_error(cmd, "out of memory");
    }
    if (d->classes > CNN_MAX_CLASSES)
        return cli_error(cmd, "%s has %d classes: at most %d can be trained (labels are one byte)", path,
                         d->classes, CNN_MAX_CLASSES);
    return CLI_OK;
}

int cli_data_for_model(const char *cmd, const cnn_model *m, const char *model, cli_data_opts *o,
                       int split_from_model, cli_data *d)
{
    int rc;
    cnn_model_input_shape(m, &o->c, &o->h, &o->w);
    if ((rc = cli_prep_from_model(cmd, m, &o->prep))) return rc;
    if (split_from_model) {
        /* the cut the training run made */
        const char *ts = cnn_model_get_meta(m, "test_split"), *ss = cnn_model_get_meta(m, "split_seed");
        if (ts) o->test_split = strtod(ts, NULL);
        if (!(o->test_split > 0 && o->test_split < 1)) o->test_split = 0.2;
        if (ss) o->split_seed = strtoull(ss, NULL, 10);
    }
    if ((rc = cli_data_load(cmd, o, d))) return rc;
    const int k = cnn_model_output_size(m);
    if (d->classes > k)
        return cli_error(cmd, "%s has %d classes but the model has only %d outputs", d->where,
                         d->classes, k);
    cli_classes names = {0};
    if ((rc = cli_classes_from_model(cmd, m, &names))) return rc;
    if (names.n > 0 && d->named) {
        /* a model of other classes would report the wrong names */
        char what_m[4200], what_d[4200];
        snprintf(what_m, sizeof what_m, "the model %s", model);
        snprintf(what_d, sizeof what_d, "the data set %s", d->where);
        rc = cli_classes_agree(cmd, what_m, &names, what_d, &d->names);
    } else if (names.n > 0 && names.n != d->classes) {
        /* labels without names of their own: the model's names stand */
        fprintf(stderr, "cnn %s: warning: the model %s names %d classes but the labels of %s run to "
                "%d classes\n", cmd, model, names.n, d->where, d->classes);
    }
    cli_classes_free(&names);
    return rc;
}
