/*
 * cache.c — the file a data set is decoded into once (format: dataset.h).
 *
 * Written atomically through cnn_outfile (a temporary file renamed into
 * place), so a run killed while building leaves no half cache. Read by
 * mapping it: labels and names are checked and copied out, images are read
 * in place through the mapping, or with pread when there are too many for
 * the mapping to stay small (CNN_CACHE_MAP_MAX): a training run touching
 * every page of a 3 GB mapping in shuffled order would otherwise keep it
 * all resident.
 *
 * A cache file is hostile input like any other: every offset and size is
 * checked against the file's size before anything is read through it.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "io/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ fingerprints */

uint64_t cnn_fp_add(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t cnn_fp_u64(uint64_t h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    return cnn_fp_add(h, b, 8);
}

/* ------------------------------------------------------------ class names */

const char *cnn_class_name_problem(const char *name, size_t len)
{
    if (len == 0) return "is empty";
    if (len > CNN_CLASS_NAME_MAX) return "is longer than 100 bytes";
    const char *why = cnn_text_problem(name, len);
    if (why) return why;
    if (memchr(name, ',', len)) return "holds a comma (class names are stored comma-separated)";
    return NULL;
}

/* ----------------------------------------------------------------- bytes */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------------ reading */

void cnn_cache_close(cnn_cache *c)
{
    if (!c) return;
    if (c->names)
        for (int i = 0; i < c->classes; i++) free(c->names[i]);
    free(c->names);
    free(c->labels);
    if (c->map) munmap(c->map, c->map_len);
    if (c->fd >= 0) close(c->fd);
    free(c->path);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static cnn_status bad(cnn_cache *c, const char *path, const char *what)
{
    cnn_status s = cnn_fail(CNN_ERR_FORMAT, "%s: not a usable cache file: %s", path, what);
    cnn_cache_close(c);
    return s;
}

cnn_status cnn_cache_open(const char *path, cnn_cache *out)
{
    if (!out) return cnn_fail(CNN_ERR_ARG, "cnn_cache_open: out is NULL");
    memset(out, 0, sizeof *out);
    out->fd = -1;
    long long fsize;
    cnn_status s = cnn_open_input(path, "a cache file", &out->fd, &fsize);
    if (s) return s;
    if (fsize < CNN_CACHE_HEADER) return bad(out, path, "shorter than its 128-byte header");
    if ((unsigned long long)fsize > SIZE_MAX) return bad(out, path, "larger than memory can map");
    out->map_len = (size_t)fsize;
    out->map = mmap(NULL, out->map_len, PROT_READ, MAP_PRIVATE, out->fd, 0);
    if (out->map == MAP_FAILED) {
        out->map = NULL;
        s = cnn_fail(CNN_ERR_IO, "%s: cannot map the cache file: %s", path, strerror(errno));
        cnn_cache_close(out);
        return s;
    }
    const uint8_t *b = out->map;
    const uint64_t size = (uint64_t)fsize;
    if (memcmp(b, CNN_CACHE_MAGIC, 8) != 0) return bad(out, path, "no CNNCACHE magic");
    if (rd32(b + 8) != CNN_CACHE_VERSION) return bad(out, path, "another version of the format");
    if (rd32(b + 12) != CNN_CACHE_HEADER) return bad(out, path, "a header size other than 128");
    uint32_t c = rd32(b + 16), h = rd32(b + 20), w = rd32(b + 24), classes = rd32(b + 28);
    uint64_t count = rd64(b + 32), images_at = rd64(b + 48), labels_at = rd64(b + 56);
    uint64_t names_at = rd64(b + 64), names_size = rd64(b + 72), file_size = rd64(b + 88);
    uint32_t prep = rd32(b + 80);
    if (file_size != size) return bad(out, path, "its size is not the one its header records (truncated?)");
    if (c < 1 || c > 4 || h < 1 || w < 1 || h > 16384 || w > 16384)
        return bad(out, path, "an image shape out of range");
    if (classes < 1 || classes > CNN_MAX_CLASSES) return bad(out, path, "a class count out of range (1 to 256)");
    if (count < 1 || count > INT_MAX) return bad(out, path, "an image count out of range");
    if (prep > CNN_PREP_CROP) return bad(out, path, "an unknown preparation");
    const uint64_t px = (uint64_t)c * h * w;
    /* each region inside the file, checked without overflow: count <= 2^31
     * and px <= 2^30, so count * px < 2^61 */
    if (images_at < CNN_CACHE_HEADER || images_at > size || count * px > size - images_at)
        return bad(out, path, "its images lie outside the file");
    if (labels_at < CNN_CACHE_HEADER || labels_at > size || count * 2 > size - labels_at)
        return bad(out, path, "its labels lie outside the file");
    if (names_at < CNN_CACHE_HEADER || names_at > size || names_size > size - names_at)
        return bad(out, path, "its class names lie outside the file");
    /* version 1 lays the sections end to end: nothing overlaps, nothing is
     * left between them */
    if (images_at != CNN_CACHE_HEADER || labels_at != images_at + count * px ||
        names_at != labels_at + count * 2 || names_at + names_size != size)
        return bad(out, path, "its sections are not laid out end to end as version 1 writes them");
    out->c = (int)c;
    out->h = (int)h;
    out->w = (int)w;
    out->n = (int)count;
    out->prep = (cnn_prep)prep;
    out->fingerprint = rd64(b + 40);
    out->images_offset = images_at;

    out->names = calloc(classes, sizeof *out->names);
    out->labels = malloc((size_t)count);
    if (!out->names || !out->labels) {
        s = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %llu labels", path, (unsigned long long)count);
        cnn_cache_close(out);
        return s;
    }
    const char *names = (const char *)b + names_at;
    uint64_t at = 0;
    for (uint32_t k = 0; k < classes; k++) {
        const char *end = memchr(names + at, '\0', (size_t)(names_size - at));
        if (!end) return bad(out, path, "a class name without its end");
        size_t len = (size_t)(end - (names + at));
        const char *why = cnn_class_name_problem(names + at, len);
        if (why) {
            s = cnn_fail(CNN_ERR_FORMAT, "%s: not a usable cache file: the name of class %u %s",
                         path, k, why);
            cnn_cache_close(out);
            return s;
        }
        out->classes = (int)k + 1; /* names[0..k] are freed on failure */
        if (!(out->names[k] = strndup(names + at, len))) {
            s = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for class names", path);
            cnn_cache_close(out);
            return s;
        }
        at += len + 1;
    }
    if (at != names_size) return bad(out, path, "bytes after its class names");
    out->classes = (int)classes;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t l = (uint32_t)b[labels_at + 2 * i] | (uint32_t)b[labels_at + 2 * i + 1] << 8;
        if (l >= classes) {
            s = cnn_fail(CNN_ERR_FORMAT, "%s: not a usable cache file: image %llu has label %u, "
                         "but there are %u classes", path, (unsigned long long)i, l, classes);
            cnn_cache_close(out);
            return s;
        }
        out->labels[i] = (uint8_t)l;
    }
    /* the labels are copied out; those pages need not stay */
    (void)madvise((char *)out->map + (labels_at & ~(uint64_t)4095),
                  (size_t)(labels_at % 4096 + count * 2), MADV_DONTNEED);
    if (count * px <= CNN_CACHE_MAP_MAX) out->images = b + images_at;
    if (!(out->path = strdup(path))) {
        s = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        cnn_cache_close(out);
        return s;
    }
    return CNN_OK;
}

uint64_t cnn_cache_peek_fingerprint(const char *path)
{
    int fd;
    long long size;
    if (cnn_open_input(path, "a cache file", &fd, &size) != CNN_OK) return 0;
    uint8_t b[CNN_CACHE_HEADER];
    ssize_t got = pread(fd, b, sizeof b, 0);
    close(fd);
    if (got != (ssize_t)sizeof b || memcmp(b, CNN_CACHE_MAGIC, 8) != 0 ||
        rd32(b + 8) != CNN_CACHE_VERSION || rd64(b + 88) != (uint64_t)size)
        return 0;
    return rd64(b + 40);
}

const uint8_t *cnn_cache_image(const cnn_cache *c, int i, uint8_t *scratch)
{
    size_t px = (size_t)c->c * c->h * c->w;
    if (c->images) return c->images + (size_t)i * px;
    off_t at = (off_t)(c->images_offset + (uint64_t)i * px);
    size_t got = 0;
    while (got < px) {
        ssize_t r = pread(c->fd, scratch + got, px - got, at + (off_t)got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            /* checked against the file's size at open: only a file cut
             * since then gets here; its images read as black */
            memset(scratch + got, 0, px - got);
            break;
        }
        got += (size_t)r;
    }
    return scratch;
}

/* ------------------------------------------------------------------ writing */

cnn_status cnn_cache_begin(cnn_cache_writer *wr, const char *path, int c, int h, int w,
                           cnn_prep prep, uint64_t fingerprint)
{
    memset(wr, 0, sizeof *wr);
    wr->c = c;
    wr->h = h;
    wr->w = w;
    wr->prep = prep;
    wr->fingerprint = fingerprint;
    wr->max_label = -1;
    cnn_status s = cnn_out_open(&wr->o, path);
    if (s) return s;
    uint8_t zero[CNN_CACHE_HEADER] = {0}; /* the header, written last */
    fwrite(zero, 1, sizeof zero, wr->o.f);
    return CNN_OK;
}

cnn_status cnn_cache_add(cnn_cache_writer *wr, const uint8_t *image, int label)
{
    if (label < 0 || label >= CNN_MAX_CLASSES)
        return cnn_fail(CNN_ERR_FORMAT, "label %d is out of range (0 to %d)", label, CNN_MAX_CLASSES - 1);
    if (wr->count >= INT_MAX) return cnn_fail(CNN_ERR_FORMAT, "more than %d images", INT_MAX);
    if (wr->count == wr->labels_cap) {
        size_t cap = wr->labels_cap ? wr->labels_cap * 2 : 4096;
        uint16_t *p = realloc(wr->labels, cap * sizeof *p);
        if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory for the labels");
        wr->labels = p;
        wr->labels_cap = cap;
    }
    wr->labels[wr->count++] = (uint16_t)label;
    if (label > wr->max_label) wr->max_label = label;
    fwrite(image, 1, (size_t)wr->c * wr->h * wr->w, wr->o.f);
    return CNN_OK;
}

cnn_status cnn_cache_row(void *writer, const uint8_t *image, int label)
{
    return cnn_cache_add(writer, image, label);
}

void cnn_cache_abort(cnn_cache_writer *wr)
{
    if (wr->o.f || wr->o.tmp) cnn_out_abort(&wr->o);
    free(wr->labels);
    memset(wr, 0, sizeof *wr);
}

cnn_status cnn_cache_finish(cnn_cache_writer *wr, char *const *names, int classes)
{
    cnn_status s = CNN_OK;
    if (wr->count == 0) s = cnn_fail(CNN_ERR_FORMAT, "no usable image");
    else if (classes < 1 || classes > CNN_MAX_CLASSES || wr->max_label >= classes)
        s = cnn_fail(CNN_ERR_FORMAT, "%d classes: labels run to %d, and at most %d classes can be "
                     "trained (labels are one byte)", classes, wr->max_label, CNN_MAX_CLASSES);
    if (s) {
        cnn_cache_abort(wr);
        return s;
    }
    FILE *f = wr->o.f;
    const uint64_t px = (uint64_t)wr->c * wr->h * wr->w;
    uint64_t images_at = CNN_CACHE_HEADER, labels_at = images_at + wr->count * px;
    for (uint64_t i = 0; i < wr->count; i++) {
        uint8_t l[2] = {(uint8_t)wr->labels[i], (uint8_t)(wr->labels[i] >> 8)};
        fwrite(l, 1, 2, f);
    }
    uint64_t names_at = labels_at + 2 * wr->count, names_size = 0;
    for (int k = 0; k < classes; k++) {
        size_t len = strlen(names[k]) + 1;
        fwrite(names[k], 1, len, f);
        names_size += len;
    }
    uint8_t hd[CNN_CACHE_HEADER] = {0};
    memcpy(hd, CNN_CACHE_MAGIC, 8);
    wr32(hd + 8, CNN_CACHE_VERSION);
    wr32(hd + 12, CNN_CACHE_HEADER);
    wr32(hd + 16, (uint32_t)wr->c);
    wr32(hd + 20, (uint32_t)wr->h);
    wr32(hd + 24, (uint32_t)wr->w);
    wr32(hd + 28, (uint32_t)classes);
    wr64(hd + 32, wr->count);
    wr64(hd + 40, wr->fingerprint);
    wr64(hd + 48, images_at);
    wr64(hd + 56, labels_at);
    wr64(hd + 64, names_at);
    wr64(hd + 72, names_size);
    wr32(hd + 80, (uint32_t)wr->prep);
    wr64(hd + 88, names_at + names_size);
    if (fseek(f, 0, SEEK_SET) != 0) {
        s = cnn_fail(CNN_ERR_IO, "%s: cannot seek: %s", wr->o.shown, strerror(errno));
        cnn_cache_abort(wr);
        return s;
    }
    fwrite(hd, 1, sizeof hd, f);
    s = cnn_out_commit(&wr->o);
    free(wr->labels);
    memset(wr, 0, sizeof *wr);
    return s;
}
