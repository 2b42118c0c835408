/* fuzz_common.h — what the libFuzzer targets share: the input as a file the
 * loaders can open by path, and the checks every failure must pass. */
#ifndef CNN_FUZZ_COMMON_H
#define CNN_FUZZ_COMMON_H

#define _GNU_SOURCE
#include "cnn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Big allocations fail (return NULL) instead of ending the run, so that
 * "refuse what cannot be allocated" is fuzzed like any other error path. */
#ifndef FUZZ_MAX_ALLOC_MB
#define FUZZ_MAX_ALLOC_MB "512"
#endif
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=" FUZZ_MAX_ALLOC_MB
           ":detect_leaks=1";
}

/* A memfd reached through /proc/self/fd: a real regular file for open()
 * and stat(), without touching the disk 10^4 times a second. */
typedef struct {
    int fd;
    char path[64];
} fuzz_file;

static void fuzz_die(const char *what)
{
    fprintf(stderr, "fuzz harness: %s\n", what);
    abort();
}

static inline const char *fuzz_file_set(fuzz_file *f, const char *name, const void *data, size_t n)
{
    if (f->fd <= 0) {
        f->fd = memfd_create(name, MFD_CLOEXEC);
        if (f->fd < 0) fuzz_die("memfd_create failed");
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0) fuzz_die("ftruncate failed");
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(f->fd, (const char *)data + off, n - off, (off_t)off);
        if (w <= 0) fuzz_die("pwrite failed");
        off += (size_t)w;
    }
    return f->path;
}

/* A failure must carry a real status and a message; `must_name`, if not
 * NULL, must appear in it (the file or architecture the error is about). */
static inline void fuzz_check_failure(cnn_status s, const char *must_name)
{
    if (s < CNN_ERR_ARG || s > CNN_ERR_INTERRUPTED) fuzz_die("status out of range");
    const char *msg = cnn_errmsg();
    if (!msg || !*msg) fuzz_die("failure without a message");
    /* FUZZ_VERBOSE=1 ./fuzz_x file: see why an input is refused */
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%s: %s\n", cnn_status_name(s), msg);
    if (must_name && !strstr(msg, must_name)) {
        fprintf(stderr, "fuzz harness: message does not name '%s': %s\n", must_name, msg);
        abort();
    }
}

/* cnn_model_load of path: the model, or NULL once the failure is checked
 * (a real status, a message naming path, and no model returned). */
static inline cnn_model *fuzz_load_model(const char *path)
{
    cnn_model *m = NULL;
    cnn_status s = cnn_model_load(path, &m);
    if (s == CNN_OK) {
        if (!m) fuzz_die("successful load returned no model");
        return m;
    }
    fuzz_check_failure(s, path);
    if (m) fuzz_die("failed load returned a model");
    return NULL;
}

static inline uint32_t fuzz_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
