/* fuzz_idx.c — the IDX reader (cnn_idx_load) on hostile image/label pairs.
 *
 * Input layout: 1 flag byte, a 4-byte little-endian length L, then the
 * images file (the next L bytes, clamped) and the labels file (the rest).
 * Flag bit 0 / bit 1 gzip the images / labels file inside the harness, so
 * the IDX checks are also reached through the gzip reader; a gzip stream in
 * the input itself (seeds *.gz) fuzzes zlib's error paths. */
#include "fuzz_common.h"

#include <zlib.h>

static fuzz_file images_file, labels_file;
/* keeps the read-every-byte loop from being optimised away */
static volatile unsigned fuzz_sink;

/* gzip-compress into a malloc'd buffer (NULL if zlib refuses). */
static uint8_t *gzip_bytes(const uint8_t *d, size_t n, size_t *outn)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, n);
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)d;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *outn = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static const char *put(fuzz_file *f, const char *name, const uint8_t *d, size_t n, int gz)
{
    if (!gz) return fuzz_file_set(f, name, d, n);
    size_t zn = 0;
    uint8_t *z = gzip_bytes(d, n, &zn);
    if (!z) fuzz_die("deflate failed");
    const char *p = fuzz_file_set(f, name, z, zn);
    free(z);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) return 0;
    uint8_t flags = data[0];
    size_t rest = size - 5;
    size_t split = fuzz_le32(data + 1) % (rest + 1);
    const uint8_t *img = data + 5, *lab = data + 5 + split;
    const char *ipath = put(&images_file, "images", img, split, flags & 1);
    const char *lpath = put(&labels_file, "labels", lab, rest - split, flags & 2);

    cnn_dataset d;
    cnn_status s = cnn_idx_load(ipath, lpath, &d);
    if (s) {
        /* the message names whichever file is at fault */
        const char *msg = cnn_errmsg();
        if (!strstr(msg, ipath) && !strstr(msg, lpath)) {
            fprintf(stderr, "fuzz harness: message names neither file: %s\n", msg);
            abort();
        }
        fuzz_check_failure(s, NULL);
        if (d.images || d.labels || d.n) fuzz_die("failed load left data behind");
        return 0;
    }
    if (d.n < 1 || d.c != 1 || d.h < 1 || d.w < 1 || !d.images || !d.labels)
        fuzz_die("loaded data set has a bad shape");
    /* every byte is readable (ASan checks the bounds) and labels agree with
     * the class count */
    unsigned sum = 0;
    int maxl = 0;
    size_t npix = (size_t)d.n * d.h * d.w;
    for (size_t i = 0; i < npix; i++) sum += d.images[i];
    for (int i = 0; i < d.n; i++)
        if (d.labels[i] > maxl) maxl = d.labels[i];
    if (d.classes != maxl + 1) fuzz_die("classes is not 1 + the largest label");
    fuzz_sink = sum;
    cnn_dataset_free(&d);
    if (d.images || d.labels) fuzz_die("cnn_dataset_free left pointers");
    return 0;
}
