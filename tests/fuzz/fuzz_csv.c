/* fuzz_csv.c — the CSV reader (cnn_csv_read, and cnn_csv_parse on the same
 * bytes) on hostile text.
 *
 * Input layout: 1 shape byte, then the file. The shape byte picks the
 * image shape the rows must fill: c = 1 or 3 (bit 0), h = 1 + bits 1-2,
 * w = 1 + bits 3-4, so short rows reach the end of a line and beyond. */
#include "fuzz_common.h"
#include "io/dataset.h"

static fuzz_file csv_file;
static volatile unsigned fuzz_sink;

typedef struct {
    int rows;
    size_t px;
} tally;

static cnn_status count_row(void *ctx, const uint8_t *image, int label)
{
    tally *t = ctx;
    unsigned sum = 0;
    for (size_t i = 0; i < t->px; i++) sum += image[i]; /* every pixel readable */
    if (label < 0 || label >= CNN_MAX_CLASSES) fuzz_die("label out of range");
    fuzz_sink = sum;
    t->rows++;
    return CNN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int c = data[0] & 1 ? 3 : 1, h = 1 + (data[0] >> 1 & 3), w = 1 + (data[0] >> 3 & 3);
    const char *path = fuzz_file_set(&csv_file, "csv", data + 1, size - 1);
    tally a = {0, (size_t)c * h * w}, b = a;
    cnn_status s = cnn_csv_read(path, c, h, w, count_row, &a);
    if (s) fuzz_check_failure(s, path);
    else if (a.rows < 1) fuzz_die("a read without rows succeeded");
    /* the in-memory parser agrees with the file reader, but for lines
     * longer than the reader takes */
    cnn_status t = cnn_csv_parse((const char *)data + 1, size - 1, "mem", c, h, w, count_row, &b);
    if (t) fuzz_check_failure(t, "mem");
    if (!s && (t || a.rows != b.rows)) fuzz_die("the file reader and the parser disagree");
    return 0;
}
