/* fuzz_cache.c — the cache-file reader (cnn_cache_open) on hostile files.
 *
 * A cache is found next to a user's data and could be anything; every
 * field is checked against the file's size. On success every image is read
 * (through the mapping and with pread) and every label and name checked. */
#include "fuzz_common.h"
#include "io/dataset.h"

static fuzz_file cache_file;
static volatile unsigned fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_set(&cache_file, "cache", data, size);
    (void)cnn_cache_peek_fingerprint(path);
    cnn_cache c;
    cnn_status s = cnn_cache_open(path, &c);
    if (s) {
        fuzz_check_failure(s, path);
        if (c.map || c.labels || c.names) fuzz_die("a failed open left memory behind");
        return 0;
    }
    if (c.n < 1 || c.c < 1 || c.h < 1 || c.w < 1 || c.classes < 1 || c.classes > CNN_MAX_CLASSES)
        fuzz_die("an opened cache has a bad shape");
    size_t px = (size_t)c.c * c.h * c.w;
    uint8_t *scratch = malloc(px);
    if (!scratch) fuzz_die("out of memory");
    unsigned sum = 0;
    const uint8_t *mapped = c.images;
    for (int pass = 0; pass < 2; pass++) {
        c.images = pass ? NULL : mapped; /* pread as a large cache does */
        for (int i = 0; i < c.n; i++) {
            const uint8_t *img = cnn_cache_image(&c, i, scratch);
            for (size_t j = 0; j < px; j++) sum += img[j];
        }
    }
    c.images = mapped;
    for (int i = 0; i < c.n; i++)
        if (c.labels[i] >= c.classes) fuzz_die("a label past the classes");
    for (int k = 0; k < c.classes; k++)
        if (!c.names[k] || cnn_class_name_problem(c.names[k], strlen(c.names[k])))
            fuzz_die("a bad class name was accepted");
    fuzz_sink = sum;
    free(scratch);
    cnn_cache_close(&c);
    return 0;
}
