/*
 * source.c — a data source (an image-folder tree or a CSV file) read
 * through its cache: the cache that matches the source's fingerprint is
 * opened (a second run starts at once), anything else is rebuilt.
 *
 * Where caches live: SOURCE/.cnn-cache/ (a tree) or .cnn-cache/ beside a
 * CSV file, named by the input shape and policy, so that caches of several
 * models coexist. When that folder cannot be written (a read-only data
 * set), the cache folder (--cache-dir, else $XDG_CACHE_HOME/cnn or
 * ~/.cache/cnn) holds it under a name made from the source's full path.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "io/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cnn_default_cache_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') snprintf(buf, len, "%s/cnn", xdg);
    else if (home && *home) snprintf(buf, len, "%s/.cache/cnn", home);
    else snprintf(buf, len, "/tmp/cnn-cache-%ld", (long)getuid());
}

static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (n >= len) n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* mkdir -p; 0 or -1 (errno set). */
static int make_dirs(const char *path)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) return -1;
            *s = '/';
        }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* The two places a source's cache may be: [0] beside the source (empty
 * when --cache-dir is given), [1] in the cache folder. */
static void cache_places(const char *source, const char *beside_dir, const char *name,
                         const cnn_source_opts *o, char places[2][4096], char folder[2][4096])
{
    char cdir[4096];
    if (o->cache_dir) snprintf(cdir, sizeof cdir, "%s", o->cache_dir);
    else cnn_default_cache_dir(cdir, sizeof cdir);
    places[0][0] = folder[0][0] = '\0';
    if (!o->cache_dir) {
        snprintf(folder[0], sizeof folder[0], "%.3800s/.cnn-cache", beside_dir);
        snprintf(places[0], sizeof places[0], "%.3800s/%.200s", folder[0], name);
    }
    char *real = realpath(source, NULL);
    const char *full = real ? real : source;
    uint64_t id = cnn_fp_add(CNN_FP_INIT, full, strlen(full));
    free(real);
    snprintf(folder[1], sizeof folder[1], "%s", cdir);
    snprintf(places[1], sizeof places[1], "%.3800s/%016llx-%.200s", cdir, (unsigned long long)id, name);
}

/* Open the first place holding a cache of fingerprint fp (and the expected
 * shape); 1 if one was opened. */
static int open_existing(char places[2][4096], uint64_t fp, const cnn_source_opts *o, cnn_cache *out,
                         char *which, size_t wlen)
{
    for (int i = 0; i < 2; i++) {
        if (!places[i][0] || cnn_cache_peek_fingerprint(places[i]) != fp) continue;
        if (cnn_cache_open(places[i], out) != CNN_OK) continue; /* damaged: rebuilt */
        if (out->c == o->c && out->h == o->h && out->w == o->w) {
            copy_str(which, wlen, places[i]);
            return 1;
        }
        cnn_cache_close(out);
    }
    return 0;
}

/* Start a new cache in the first place that can be written. */
static cnn_status begin_cache(char places[2][4096], char folder[2][4096], uint64_t fp,
                              cnn_source_opts *o, cnn_cache_writer *wr)
{
    cnn_status s = CNN_ERR_IO;
    for (int i = 0; i < 2; i++) {
        if (!places[i][0]) continue;
        if (make_dirs(folder[i]) != 0) {
            s = cnn_fail(CNN_ERR_IO, "%s: cannot create the cache folder: %s", folder[i], strerror(errno));
            continue;
        }
        s = cnn_cache_begin(wr, places[i], o->c, o->h, o->w, o->prep, fp);
        if (s == CNN_OK) {
            copy_str(o->cache_path, sizeof o->cache_path, places[i]);
            return CNN_OK;
        }
    }
    return cnn_fail_prefix(s, "no place to write the cache (give --cache-dir DIR)");
}

static uint64_t policy_fp(uint64_t fp, const cnn_source_opts *o)
{
    fp = cnn_fp_u64(fp, CNN_CACHE_VERSION);
    fp = cnn_fp_u64(fp, (uint64_t)o->c << 40 | (uint64_t)o->h << 20 | (uint64_t)o->w);
    return cnn_fp_u64(fp, (uint64_t)o->prep);
}

/* The start of finding a source's cache: o's results and *out cleared;
 * returns the time, to say how long it took. */
static double source_begin(cnn_source_opts *o, cnn_cache *out)
{
    o->built = o->skipped = 0;
    o->cache_path[0] = '\0';
    memset(out, 0, sizeof *out);
    out->fd = -1;
    return now();
}

cnn_status cnn_source_folder(const char *root, cnn_source_opts *o, cnn_cache *out)
{
    double t0 = source_begin(o, out);
    cnn_folder f;
    cnn_status s = cnn_folder_scan(root, &f);
    if (s) return s;
    uint64_t fp = policy_fp(f.fingerprint, o);
    char name[128], places[2][4096], folder[2][4096];
    snprintf(name, sizeof name, "%dx%dx%d-%s.cnncache", o->c, o->h, o->w, cnn_prep_name(o->prep));
    cache_places(root, root, name, o, places, folder);
    if (open_existing(places, fp, o, out, o->cache_path, sizeof o->cache_path)) {
        cnn_folder_free(&f);
        o->seconds = now() - t0;
        return CNN_OK;
    }
    cnn_cache_writer wr;
    s = begin_cache(places, folder, fp, o, &wr);
    if (!s) {
        s = cnn_folder_decode(&f, root, o->prep, o->strict, o->warn, o->ctx, &wr, &o->skipped);
        if (s) cnn_cache_abort(&wr);
        else if (wr.count == 0) {
            cnn_cache_abort(&wr);
            s = cnn_fail(CNN_ERR_FORMAT, "%s: none of its %d pictures could be used", root, f.nfiles);
        } else {
            s = cnn_cache_finish(&wr, f.classes, f.nclasses);
            if (s) cnn_fail_prefix(s, "%s", root);
        }
    }
    cnn_folder_free(&f);
    if (!s) s = cnn_cache_open(o->cache_path, out);
    o->built = 1;
    o->seconds = now() - t0;
    return s;
}

cnn_status cnn_source_csv(const char *path, cnn_source_opts *o, cnn_cache *out)
{
    double t0 = source_begin(o, out);
    struct stat sb;
    if (stat(path, &sb) != 0) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t fp = cnn_fp_add(CNN_FP_INIT, "csv", 4);
    fp = cnn_fp_u64(fp, (uint64_t)sb.st_size);
    fp = cnn_fp_u64(fp, (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec);
    fp = policy_fp(fp, o);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[4096], name[512], places[2][4096], folder[2][4096];
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    snprintf(name, sizeof name, "%.200s-%dx%dx%d.cnncache", base, o->c, o->h, o->w);
    cache_places(path, dir, name, o, places, folder);
    if (open_existing(places, fp, o, out, o->cache_path, sizeof o->cache_path)) {
        o->seconds = now() - t0;
        return CNN_OK;
    }
    cnn_cache_writer wr;
    cnn_status s = begin_cache(places, folder, fp, o, &wr);
    if (!s) {
        s = cnn_csv_read(path, o->c, o->h, o->w, cnn_cache_row, &wr);
        if (s) {
            cnn_cache_abort(&wr);
        } else {
            /* a CSV's classes are its labels: "0" .. the largest */
            int k = wr.max_label + 1;
            char *names[CNN_MAX_CLASSES], store[CNN_MAX_CLASSES][8];
            for (int i = 0; i < k; i++) {
                snprintf(store[i], sizeof store[i], "%d", i);
                names[i] = store[i];
            }
            s = cnn_cache_finish(&wr, names, k);
            if (s) cnn_fail_prefix(s, "%s", path);
        }
    }
    if (!s) s = cnn_cache_open(o->cache_path, out);
    o->built = 1;
    o->seconds = now() - t0;
    return s;
}
