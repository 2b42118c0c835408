/*
 * idx.c — IDX data sets (MNIST, Fashion-MNIST, EMNIST, KMNIST), raw or gzip.
 *
 * An IDX file is a 4-byte magic (0, 0, dtype, number of dimensions), one
 * big-endian uint32 per dimension, then the data. We accept only unsigned
 * bytes (dtype 0x08): images are n x h x w, labels are n.
 *
 * Every file is treated as hostile: the header is checked before anything is
 * allocated, the announced size is capped, a raw file's size must match the
 * header exactly, and a gzip stream is never inflated past the announced size
 * plus one byte (the byte that tells trailing data from the end of the file),
 * so a zip bomb costs nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/idx.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The data set's buffers are indexed with int counts downstream. */
#define IDX_MAX_BYTES ((uint64_t)INT_MAX)
/* A gzip stream is inflated into a buffer that grows from this size, so a
 * small hostile file announcing 2 GiB does not get 2 GiB up front. */
#define IDX_FIRST_CHUNK ((size_t)16 << 20)

typedef struct {
    int ndims;
    uint32_t dims[3];
    uint8_t *data;  /* dims' product bytes, malloc'd */
    size_t size;
} idx_array;

/* Read up to len bytes; *got says how many came. Returns 0, or the zlib
 * error code (Z_ERRNO for an I/O error) if the stream broke. */
static int gz_read_full(gzFile gz, void *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > ((size_t)1 << 30)) want = (size_t)1 << 30;
        int r = gzread(gz, (char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int err;
            gzerror(gz, &err);
            return err ? err : Z_ERRNO;
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    int err;
    gzerror(gz, &err);
    /* zlib reports a gzip stream that stops before its trailer as
     * Z_BUF_ERROR after returning what it could inflate. */
    return (err == Z_OK || err == Z_STREAM_END) ? 0 : err;
}

static cnn_status gz_failure(const char *path, gzFile gz, int err, const char *where)
{
    if (err == Z_ERRNO)
        return cnn_fail(CNN_ERR_IO, "%s: read error in %s: %s", path, where, strerror(errno));
    int e;
    const char *msg = gzerror(gz, &e);
    if (err == Z_BUF_ERROR)
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated gzip stream (in %s)", path, where);
    return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt gzip data in %s: %s", path, where,
                    msg && *msg ? msg : "inflate failed");
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What a file of `ndims` dimensions is, for messages. */
static const char *idx_kind(int ndims)
{
    return ndims == 1 ? "labels" : "images";
}

static void describe_count(char *buf, size_t n, const idx_array *a, uint64_t count)
{
    if (a->ndims == 1)
        snprintf(buf, n, "%llu labels", (unsigned long long)count);
    else
        snprintf(buf, n, "%llu images of %ux%u", (unsigned long long)count, a->dims[1],
                 a->dims[2]);
}

/* Read one IDX file of `want_ndims` dimensions (1 = labels, 3 = images). */
static cnn_status idx_read(const char *path, int want_ndims, idx_array *a)
{
    memset(a, 0, sizeof *a);
    int fd;
    long long fsize;
    cnn_status ost = cnn_open_input(path, "an IDX file", &fd, &fsize);
    if (ost != CNN_OK) return ost;
    if (fsize == 0) {
        close(fd);
        return cnn_fail(CNN_ERR_FORMAT, "%s: empty file", path);
    }
    /* gzdopen reads a gzip stream if the file starts with 1f 8b and passes
     * any other file through unchanged: detection by content, not by name. */
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return cnn_fail(CNN_ERR_NOMEM, "%s: cannot set up the gzip reader", path);
    }

    cnn_status st_code = CNN_OK;
    uint8_t head[4 + 4 * 3];
    size_t got;
    int err = gz_read_full(gz, head, 4, &got);
    if (err) { st_code = gz_failure(path, gz, err, "the header"); goto fail; }
    if (got < 4) {
        st_code = cnn_fail(CNN_ERR_FORMAT,
                           "%s: truncated header: %zu bytes, an IDX header needs at least 4",
                           path, got);
        goto fail;
    }
    if (head[0] != 0 || head[1] != 0) {
        st_code = cnn_fail(CNN_ERR_FORMAT,
                           "%s: not an IDX file (magic bytes %02x %02x %02x %02x, expected "
                           "00 00 08 %02x)",
                           path, head[0], head[1], head[2], head[3], want_ndims);
        goto fail;
    }
    if (head[2] != 0x08) {
        st_code = cnn_fail(CNN_ERR_FORMAT,
                           "%s: unsupported IDX data type 0x%02x (only unsigned bytes, 0x08, "
                           "are supported)",
                           path, head[2]);
        goto fail;
    }
    if (head[3] != want_ndims) {
        if (head[3] == 1 || head[3] == 3)
            st_code = cnn_fail(CNN_ERR_FORMAT,
                               "%s: has %d dimension%s (an IDX %s file), expected %s (%d "
                               "dimension%s)",
                               path, head[3], head[3] == 1 ? "" : "s", idx_kind(head[3]),
                               idx_kind(want_ndims), want_ndims, want_ndims == 1 ? "" : "s");
        else
            st_code = cnn_fail(CNN_ERR_FORMAT,
                               "%s: has %d dimensions, expected %d for an IDX %s file", path,
                               head[3], want_ndims, idx_kind(want_ndims));
        goto fail;
    }
    a->ndims = want_ndims;
    size_t dim_bytes = 4 * (size_t)want_ndims;
    err = gz_read_full(gz, head + 4, dim_bytes, &got);
    if (err) { st_code = gz_failure(path, gz, err, "the header"); goto fail; }
    if (got < dim_bytes) {
        st_code = cnn_fail(CNN_ERR_FORMAT,
                           "%s: truncated header: %zu of the %zu bytes of dimensions", path,
                           got, dim_bytes);
        goto fail;
    }
    for (int i = 0; i < want_ndims; i++) {
        a->dims[i] = be32(head + 4 + 4 * i);
        if (a->dims[i] == 0) {
            st_code = cnn_fail(CNN_ERR_FORMAT, "%s: dimension %d of the header is 0", path,
                               i + 1);
            goto fail;
        }
    }
    uint64_t total = 1;
    for (int i = 0; i < want_ndims; i++) {
        /* total <= 2^31 before and a dimension < 2^32: no 64-bit overflow */
        total *= a->dims[i];
        if (total > IDX_MAX_BYTES) break;
    }
    if (total > IDX_MAX_BYTES) {
        if (want_ndims == 3)
            st_code = cnn_fail(CNN_ERR_FORMAT,
                               "%s: header announces %u x %u x %u bytes, more than the limit of "
                               "%llu: refusing",
                               path, a->dims[0], a->dims[1], a->dims[2],
                               (unsigned long long)IDX_MAX_BYTES);
        else
            st_code = cnn_fail(CNN_ERR_FORMAT,
                               "%s: header announces %u labels, more than the limit of %llu: "
                               "refusing",
                               path, a->dims[0], (unsigned long long)IDX_MAX_BYTES);
        goto fail;
    }
    size_t need = (size_t)total;
    char announced[96];
    describe_count(announced, sizeof announced, a, a->dims[0]);
    size_t item = need / a->dims[0]; /* bytes per image or label */

    /* A raw file's size is known: compare before allocating anything. */
    if (gzdirect(gz)) {
        uint64_t have = (uint64_t)fsize - 4 - dim_bytes;
        if (have < need) {
            if (a->ndims == 1)
                st_code = cnn_fail(CNN_ERR_FORMAT,
                                   "%s: truncated: header says %s, file holds %llu", path,
                                   announced, (unsigned long long)have);
            else
                st_code = cnn_fail(CNN_ERR_FORMAT,
                                   "%s: truncated: header says %s, file holds %llu bytes of "
                                   "pixels (%llu whole images)",
                                   path, announced, (unsigned long long)have,
                                   (unsigned long long)(have / item));
            goto fail;
        }
        if (have > need) {
            st_code = cnn_fail(CNN_ERR_FORMAT,
                               "%s: %llu bytes of trailing data after the %s the header "
                               "announces",
                               path, (unsigned long long)(have - need), announced);
            goto fail;
        }
    }

    size_t cap = need < IDX_FIRST_CHUNK ? need : IDX_FIRST_CHUNK;
    a->data = malloc(cap);
    if (!a->data) {
        st_code = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
        goto fail;
    }
    size_t have = 0;
    for (;;) {
        err = gz_read_full(gz, a->data + have, cap - have, &got);
        have += got;
        if (err) {
            char at[64];
            snprintf(at, sizeof at, "the data after %zu bytes", have);
            st_code = gz_failure(path, gz, err, at);
            goto fail;
        }
        if (have < cap || cap == need) break;
        size_t ncap = cap * 2 < need ? cap * 2 : need;
        uint8_t *p = realloc(a->data, ncap);
        if (!p) {
            st_code = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, ncap);
            goto fail;
        }
        a->data = p;
        cap = ncap;
    }
    if (have < need) {
        if (a->ndims == 1)
            st_code = cnn_fail(CNN_ERR_FORMAT, "%s: truncated: header says %s, file holds %zu",
                               path, announced, have);
        else
            st_code = cnn_fail(CNN_ERR_FORMAT,
                               "%s: truncated: header says %s, file holds %zu bytes of pixels "
                               "(%zu whole images)",
                               path, announced, have, have / item);
        goto fail;
    }
    /* One byte more tells the end of the data from trailing garbage. */
    uint8_t extra;
    err = gz_read_full(gz, &extra, 1, &got);
    if (err) { st_code = gz_failure(path, gz, err, "the end of the data"); goto fail; }
    if (got) {
        st_code = cnn_fail(CNN_ERR_FORMAT, "%s: trailing data after the %s the header announces",
                           path, announced);
        goto fail;
    }
    a->size = need;
    gzclose(gz);
    return CNN_OK;

fail:
    free(a->data);
    a->data = NULL;
    gzclose(gz);
    return st_code;
}

cnn_status cnn_idx_load(const char *images_path, const char *labels_path, cnn_dataset *out)
{
    if (!out) return cnn_fail(CNN_ERR_ARG, "cnn_idx_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return cnn_fail(CNN_ERR_ARG, "cnn_idx_load: %s path is NULL",
                        images_path ? "the labels" : "the images");

    /* Labels first: they are small, and a bad label file is then found
     * before 47 MB of images are inflated. */
    idx_array lab, img;
    cnn_status s = idx_read(labels_path, 1, &lab);
    if (s) return s;
    s = idx_read(images_path, 3, &img);
    if (s) {
        free(lab.data);
        return s;
    }
    if (img.dims[0] != lab.dims[0]) {
        free(lab.data);
        free(img.data);
        return cnn_fail(CNN_ERR_FORMAT, "%s has %u images but %s has %u labels", images_path,
                        img.dims[0], labels_path, lab.dims[0]);
    }
    int maxl = 0;
    for (size_t i = 0; i < lab.size; i++)
        if (lab.data[i] > maxl) maxl = lab.data[i];

    out->n = (int)img.dims[0];
    out->c = 1;
    out->h = (int)img.dims[1];
    out->w = (int)img.dims[2];
    out->images = img.data;
    out->labels = lab.data;
    out->classes = maxl + 1;
    return CNN_OK;
}

void cnn_dataset_free(cnn_dataset *d)
{
    if (!d) return;
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------ finding the files */

#define IDX_NAME_VARIANTS 4

/* The candidate names of one file ("train", "images", "idx3"). */
static void idx_names(const char *split, const char *what, const char *idx,
                      char names[IDX_NAME_VARIANTS][64])
{
    snprintf(names[0], 64, "%s-%s-%s-ubyte", split, what, idx);
    snprintf(names[1], 64, "%s-%s-%s-ubyte.gz", split, what, idx);
    snprintf(names[2], 64, "%s-%s.%s-ubyte", split, what, idx);
    snprintf(names[3], 64, "%s-%s.%s-ubyte.gz", split, what, idx);
}

/* *path gets a malloc'd "dir/name" of the first candidate that exists. */
static cnn_status find_one(const char *dir, const char *split, const char *what,
                           const char *idx, int test, char **path)
{
    char names[IDX_NAME_VARIANTS][64];
    idx_names(split, what, idx, names);
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] != '/';
    for (int i = 0; i < IDX_NAME_VARIANTS; i++) {
        size_t len = dl + (size_t)slash + strlen(names[i]) + 1;
        char *p = malloc(len);
        if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory for a path");
        snprintf(p, len, "%s%s%s", dir, slash ? "/" : "", names[i]);
        struct stat st;
        if (stat(p, &st) == 0) {
            *path = p;
            return CNN_OK;
        }
        free(p);
    }
    return cnn_fail(CNN_ERR_IO, "%s: no %s %s file found (looked for %s, %s, %s, %s)", dir,
                    test ? "test" : "training", what, names[0], names[1], names[2], names[3]);
}

cnn_status cnn_dataset_open_dir(const char *dir, int test, cnn_dataset *out)
{
    if (!out) return cnn_fail(CNN_ERR_ARG, "cnn_dataset_open_dir: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return cnn_fail(CNN_ERR_ARG, "cnn_dataset_open_dir: no directory given");
    struct stat st;
    if (stat(dir, &st) != 0)
        return cnn_fail(CNN_ERR_IO, "%s: cannot open data directory: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cnn_fail(CNN_ERR_IO, "%s: is not a directory (expected a folder holding IDX files)",
                        dir);
    const char *split = test ? "t10k" : "train";
    char *images = NULL, *labels = NULL;
    cnn_status s = find_one(dir, split, "images", "idx3", test, &images);
    if (!s) s = find_one(dir, split, "labels", "idx1", test, &labels);
    if (!s) s = cnn_idx_load(images, labels, out);
    free(images);
    free(labels);
    return s;
}
