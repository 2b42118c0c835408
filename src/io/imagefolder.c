/*
 * imagefolder.c — image-folder trees (torchvision's ImageFolder layout):
 * ROOT/<class>/<picture>, classes sorted by byte order.
 *
 * The walk streams each directory with readdir, one directory open at a
 * time, and keeps only the names (a tree of 100k pictures costs a few MB).
 * Decoding is parallel over files (OpenMP), a chunk of pictures at a time,
 * each thread holding one file open: memory and open files stay bounded
 * whatever the tree's size. Converted pictures go straight into the cache
 * file (cache.c).
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "io/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pictures decoded in parallel before they are written, in order. */
#define DECODE_CHUNK 256

int cnn_folder_is_image_name(const char *name)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "bmp", "gif", "pgm", "ppm"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        const char *a = dot + 1, *b = ext[i];
        while (*a && *b && tolower((unsigned char)*a) == *b) a++, b++;
        if (!*a && !*b) return 1;
    }
    return 0;
}

void cnn_folder_free(cnn_folder *f)
{
    if (!f) return;
    for (int i = 0; f->classes && i < f->nclasses; i++) free(f->classes[i]);
    for (int i = 0; f->files && i < f->nfiles; i++) free(f->files[i]);
    free(f->classes);
    free(f->files);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------ building the list */

/* Per file, while listing: what the fingerprint needs. */
typedef struct {
    char *rel;
    int label;
    uint64_t size;
    int64_t mtime_ns;
} entry;

typedef struct {
    char **classes;
    int nclasses, ccap;
    entry *files;
    size_t nfiles, fcap;
} listing;

static void listing_free(listing *l)
{
    for (int i = 0; i < l->nclasses; i++) free(l->classes[i]);
    for (size_t i = 0; i < l->nfiles; i++) free(l->files[i].rel);
    free(l->classes);
    free(l->files);
    memset(l, 0, sizeof *l);
}

static cnn_status add_class(listing *l, const char *root, const char *name, size_t len)
{
    const char *why = cnn_class_name_problem(name, len);
    if (why)
        return cnn_fail(CNN_ERR_FORMAT, "%s/%.*s: the name of a class folder %s", root,
                        (int)(len > 200 ? 200 : len), name, why);
    if (l->nclasses >= CNN_MAX_CLASSES)
        return cnn_fail(CNN_ERR_FORMAT, "%s: more than %d class folders: at most %d classes can "
                        "be trained (labels are one byte)", root, CNN_MAX_CLASSES, CNN_MAX_CLASSES);
    if (l->nclasses == l->ccap) {
        int cap = l->ccap ? l->ccap * 2 : 16;
        char **p = realloc(l->classes, sizeof *p * (size_t)cap);
        if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
        l->classes = p;
        l->ccap = cap;
    }
    if (!(l->classes[l->nclasses] = strndup(name, len)))
        return cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
    l->nclasses++;
    return CNN_OK;
}

static cnn_status add_file(listing *l, const char *root, int label, const char *cls,
                           const char *name, size_t len, uint64_t size, int64_t mtime_ns)
{
    if (l->nfiles >= INT_MAX) return cnn_fail(CNN_ERR_FORMAT, "%s: more than %d pictures", root, INT_MAX);
    if (l->nfiles == l->fcap) {
        size_t cap = l->fcap ? l->fcap * 2 : 1024;
        entry *p = realloc(l->files, sizeof *p * cap);
        if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
        l->files = p;
        l->fcap = cap;
    }
    size_t cl = strlen(cls);
    char *rel = malloc(cl + 1 + len + 1);
    if (!rel) return cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
    memcpy(rel, cls, cl);
    rel[cl] = '/';
    memcpy(rel + cl + 1, name, len);
    rel[cl + 1 + len] = '\0';
    l->files[l->nfiles++] = (entry){rel, label, size, mtime_ns};
    return CNN_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

/* Sorted classes and files into *out, checked, with their fingerprint. */
static cnn_status listing_finish(listing *l, const char *root, cnn_folder *out)
{
    if (l->nclasses == 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: no class folder (expected %s/<class>/<picture>)", root, root);
    /* qsort's array may not be NULL, even for no element: every class
     * folder may be empty (refused below) */
    if (l->nfiles > 1) qsort(l->files, l->nfiles, sizeof *l->files, cmp_entry);
    int *count = calloc((size_t)l->nclasses, sizeof *count);
    if (!count) return cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
    for (size_t i = 0; i < l->nfiles; i++) count[l->files[i].label]++;
    for (int k = 0; k < l->nclasses; k++)
        if (count[k] == 0) {
            free(count);
            return cnn_fail(CNN_ERR_FORMAT, "%s/%s: an empty class folder (no .png, .jpg, .jpeg, "
                            ".bmp, .gif, .pgm or .ppm file)", root, l->classes[k]);
        }
    free(count);
    memset(out, 0, sizeof *out);
    out->labels = malloc(sizeof *out->labels * (l->nfiles ? l->nfiles : 1));
    out->files = malloc(sizeof *out->files * (l->nfiles ? l->nfiles : 1));
    if (!out->labels || !out->files) {
        cnn_folder_free(out);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
    }
    uint64_t fp = cnn_fp_u64(CNN_FP_INIT, (uint64_t)l->nclasses);
    for (int k = 0; k < l->nclasses; k++) fp = cnn_fp_add(fp, l->classes[k], strlen(l->classes[k]) + 1);
    for (size_t i = 0; i < l->nfiles; i++) {
        const entry *e = &l->files[i];
        fp = cnn_fp_add(fp, e->rel, strlen(e->rel) + 1);
        fp = cnn_fp_u64(fp, e->size);
        fp = cnn_fp_u64(fp, (uint64_t)e->mtime_ns);
        out->files[i] = e->rel; /* ownership moves */
        out->labels[i] = (uint16_t)e->label;
    }
    out->nfiles = (int)l->nfiles;
    out->classes = l->classes;
    out->nclasses = l->nclasses;
    out->fingerprint = fp;
    free(l->files);
    memset(l, 0, sizeof *l);
    return CNN_OK;
}

/* ------------------------------------------------------------- the walk */

/* Whether entry `name` of the open directory dfd is a directory (*isdir)
 * or a regular file (size and time set); follows symbolic links. */
static int stat_entry(int dfd, const char *name, int *isdir, uint64_t *size, int64_t *mtime_ns)
{
    struct stat sb;
    if (fstatat(dfd, name, &sb, 0) != 0) return -1;
    *isdir = S_ISDIR(sb.st_mode);
    if (!*isdir && !S_ISREG(sb.st_mode)) return -1;
    *size = (uint64_t)sb.st_size;
    *mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    return 0;
}

/* Sizes and times of the files listed from `from` on, all in the open
 * directory dfd (their names start `skip` bytes into rel), dropping what is
 * not a regular file. In parallel: on a cached tree this stat per file is
 * most of the start (70,000 system calls for MNIST as pictures). */
static void stat_class(listing *l, size_t from, int dfd, size_t skip)
{
    const long n = (long)(l->nfiles - from);
    entry *f = l->files + from;
#pragma omp parallel for schedule(static) if (n >= 512)
    for (long i = 0; i < n; i++) {
        int isdir;
        if (stat_entry(dfd, f[i].rel + skip, &isdir, &f[i].size, &f[i].mtime_ns) != 0 || isdir)
            f[i].label = -1;
    }
    size_t kept = from;
    for (long i = 0; i < n; i++) {
        if (f[i].label < 0) free(f[i].rel);
        else l->files[kept++] = f[i];
    }
    l->nfiles = kept;
}

cnn_status cnn_folder_scan(const char *root, cnn_folder *out)
{
    memset(out, 0, sizeof *out);
    listing l = {0};
    cnn_status s = CNN_OK;
    DIR *d = opendir(root);
    if (!d) return cnn_fail(CNN_ERR_IO, "%s: cannot read the folder: %s", root, strerror(errno));
    struct dirent *e;
    while (!s && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., .cnn-cache, hidden files */
        int isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            uint64_t sz;
            int64_t mt;
            if (stat_entry(dirfd(d), e->d_name, &isdir, &sz, &mt) != 0) continue;
        }
        if (isdir) s = add_class(&l, root, e->d_name, strlen(e->d_name));
    }
    closedir(d);
    /* no class: classes is NULL, which qsort may not be given */
    if (!s && l.nclasses > 0) qsort(l.classes, (size_t)l.nclasses, sizeof *l.classes, cmp_str);
    for (int k = 0; !s && k < l.nclasses; k++) {
        size_t plen = strlen(root) + strlen(l.classes[k]) + 2;
        char *dir = malloc(plen);
        if (!dir) {
            s = cnn_fail(CNN_ERR_NOMEM, "out of memory listing %s", root);
            break;
        }
        snprintf(dir, plen, "%s/%s", root, l.classes[k]);
        d = opendir(dir);
        if (!d) {
            s = cnn_fail(CNN_ERR_IO, "%s: cannot read the class folder: %s", dir, strerror(errno));
            free(dir);
            break;
        }
        const size_t from = l.nfiles;
        while (!s && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || !cnn_folder_is_image_name(e->d_name)) continue;
            s = add_file(&l, root, k, l.classes[k], e->d_name, strlen(e->d_name), 0, 0);
        }
        if (!s) stat_class(&l, from, dirfd(d), strlen(l.classes[k]) + 1);
        closedir(d);
        free(dir);
    }
    if (!s) s = listing_finish(&l, root, out);
    listing_free(&l);
    return s;
}

static int find_class(const listing *l, const char *name, size_t len)
{
    int lo = 0, hi = l->nclasses - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strncmp(l->classes[mid], name, len);
        if (c == 0 && l->classes[mid][len] != '\0') c = 1;
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

cnn_status cnn_folder_from_listing(const char *text, size_t len, const char *root,
                                   cnn_folder *out)
{
    memset(out, 0, sizeof *out);
    listing l = {0};
    cnn_status s = CNN_OK;
    /* the folders first, as the walk reads the root before the classes */
    for (size_t at = 0; !s && at < len;) {
        const char *p = text + at, *nl = memchr(p, '\n', len - at);
        size_t n = nl ? (size_t)(nl - p) : len - at;
        at += n + 1;
        if (n && p[0] != '.' && !memchr(p, '/', n) && !memchr(p, '\0', n))
            s = add_class(&l, root, p, n);
    }
    /* no class: classes is NULL, which qsort may not be given */
    if (!s && l.nclasses > 0) qsort(l.classes, (size_t)l.nclasses, sizeof *l.classes, cmp_str);
    for (int k = 1; !s && k < l.nclasses; k++)
        if (strcmp(l.classes[k - 1], l.classes[k]) == 0) /* a directory cannot hold two */
            s = cnn_fail(CNN_ERR_FORMAT, "%s/%s: listed twice", root, l.classes[k]);
    for (size_t at = 0; !s && at < len;) {
        const char *p = text + at, *nl = memchr(p, '\n', len - at);
        size_t n = nl ? (size_t)(nl - p) : len - at;
        at += n + 1;
        const char *slash = memchr(p, '/', n);
        if (!slash || memchr(p, '\0', n)) continue;
        const char *name = slash + 1;
        size_t nlen = n - (size_t)(name - p);
        if (nlen == 0 || nlen > 255 || name[0] == '.' || memchr(name, '/', nlen)) continue;
        char fname[256];
        memcpy(fname, name, nlen);
        fname[nlen] = '\0';
        if (!cnn_folder_is_image_name(fname)) continue;
        int k = find_class(&l, p, (size_t)(slash - p));
        if (k < 0) continue; /* not a folder of the root */
        s = add_file(&l, root, k, l.classes[k], name, nlen, 0, 0);
    }
    if (!s) s = listing_finish(&l, root, out);
    listing_free(&l);
    return s;
}

/* ------------------------------------------------------------- decoding */

cnn_status cnn_folder_decode(const cnn_folder *f, const char *root, cnn_prep prep, int strict,
                             cnn_warn_fn warn, void *ctx, cnn_cache_writer *wr, int *skipped)
{
    const int c = wr->c, h = wr->h, w = wr->w;
    const size_t px = (size_t)c * h * w;
    enum { MSG = 512 };
    uint8_t *buf = malloc(px * DECODE_CHUNK);
    cnn_status *st = malloc(sizeof *st * DECODE_CHUNK);
    char *msg = malloc((size_t)MSG * DECODE_CHUNK);
    if (!buf || !st || !msg) {
        free(buf);
        free(st);
        free(msg);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory for %d pictures of %dx%dx%d", DECODE_CHUNK, c, h, w);
    }
    cnn_status s = CNN_OK;
    *skipped = 0;
    for (int start = 0; !s && start < f->nfiles; start += DECODE_CHUNK) {
        int n = f->nfiles - start < DECODE_CHUNK ? f->nfiles - start : DECODE_CHUNK;
#pragma omp parallel for schedule(dynamic, 4)
        for (int i = 0; i < n; i++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", root, f->files[start + i]);
            cnn_image img;
            cnn_status r = cnn_image_decode_file(path, &img);
            if (!r) {
                r = cnn_image_prepare(&img, prep, c, h, w, buf + (size_t)i * px);
                if (r) cnn_fail_prefix(r, "%s", path);
                cnn_image_free(&img);
            }
            st[i] = r;
            if (r) snprintf(msg + (size_t)i * MSG, MSG, "%s", cnn_errmsg());
        }
        for (int i = 0; !s && i < n; i++) {
            if (st[i] == CNN_OK) {
                s = cnn_cache_add(wr, buf + (size_t)i * px, f->labels[start + i]);
            } else if (strict || st[i] == CNN_ERR_NOMEM) {
                s = cnn_fail(st[i], "%s", msg + (size_t)i * MSG);
            } else {
                (*skipped)++;
                if (warn) warn(ctx, msg + (size_t)i * MSG);
            }
        }
    }
    free(buf);
    free(st);
    free(msg);
    return s;
}
