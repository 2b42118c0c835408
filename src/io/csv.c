/*
 * csv.c — data sets as CSV text: one image a line, "label,pixel0,...", the
 * layout of Kaggle's MNIST CSV (with or without its header line).
 *
 * The file is read a line at a time (a line may not be longer than the
 * image it must hold could ever need), so a file of any length is read in
 * bounded memory; each row goes to the caller as soon as it is parsed.
 * Every error names the file, the line and, for a value, the column.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int c, h, w;
    size_t px;
    uint8_t *image;
    cnn_row_fn row;
    void *ctx;
    long line;     /* 1-based number of the line being parsed */
    long rows;     /* rows accepted */
    int header_ok; /* the first non-blank line may be a header */
} csv_state;

static int is_space(char ch) { return ch == ' ' || ch == '\t'; }

/* Parse one field [p, end) as an integer in [0, max]. Returns 0, or -1
 * (not a number) / -2 (out of range). */
static int field_int(const char *p, const char *end, long max, long *out)
{
    while (p < end && is_space(*p)) p++;
    while (end > p && is_space(end[-1])) end--;
    if (p < end && *p == '"' && end - p >= 2 && end[-1] == '"') { /* "7" */
        p++;
        end--;
    }
    if (p == end) return -1;
    long v = 0;
    const char *q = p;
    if (*q == '+') q++;
    if (q == end) return -1;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        q = p + 1;
        if (q == end) return -1;
    }
    for (; q < end && *q >= '0' && *q <= '9'; q++)
        if (v <= 1000000) v = v * 10 + (*q - '0');
    /* "12.0" is a whole number written as a float (pandas writes these) */
    if (q < end && *q == '.') {
        q++;
        while (q < end && *q == '0') q++;
    }
    if (q != end) return -1;
    if (neg && v != 0) return -2;
    if (v > max) return -2;
    *out = v;
    return 0;
}

/* One line without its end of line. */
static cnn_status csv_line(csv_state *st, const char *p, size_t len)
{
    if (len && p[len - 1] == '\r') len--;
    size_t blank = 0;
    while (blank < len && is_space(p[blank])) blank++;
    if (blank == len) return CNN_OK;
    const char *end = p + len;
    const size_t want = st->px + 1;
    size_t col = 0;
    const char *f = p;
    long v;
    int first_line = st->header_ok;
    st->header_ok = 0;
    while (1) {
        const char *comma = memchr(f, ',', (size_t)(end - f));
        const char *fe = comma ? comma : end;
        if (col >= want) {
            size_t cols = col + 1; /* the whole count, for the message */
            for (const char *q = f; (q = memchr(q, ',', (size_t)(end - q))) != NULL; q++) cols++;
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s:%ld: %zu columns, expected %zu (a label and %zu pixels for %dx%dx%d "
                            "images)",
                            st->name, st->line, cols, want, st->px, st->c, st->h, st->w);
        }
        int r = field_int(f, fe, col == 0 ? CNN_MAX_CLASSES - 1 : 255, &v);
        if (r == -1 && col == 0 && first_line && st->rows == 0) return CNN_OK; /* a header */
        if (r == -1)
            return cnn_fail(CNN_ERR_FORMAT, "%s:%ld: column %zu (%s): '%.*s' is not a whole number",
                            st->name, st->line, col + 1, col == 0 ? "the label" : "a pixel",
                            (int)((fe - f) > 40 ? 40 : (fe - f)), f);
        if (r == -2)
            return cnn_fail(CNN_ERR_FORMAT, "%s:%ld: column %zu (%s): '%.*s' is out of range (0 to %d%s)",
                            st->name, st->line, col + 1, col == 0 ? "the label" : "a pixel",
                            (int)((fe - f) > 40 ? 40 : (fe - f)), f,
                            col == 0 ? CNN_MAX_CLASSES - 1 : 255,
                            col == 0 ? ": labels are one byte" : "");
        if (col == 0) st->image[st->px] = (uint8_t)v; /* the label rides in the last byte */
        else st->image[col - 1] = (uint8_t)v;
        col++;
        if (!comma) break;
        f = comma + 1;
    }
    if (col != want)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s:%ld: %zu columns, expected %zu (a label and %zu pixels for %dx%dx%d images)",
                        st->name, st->line, col, want, st->px, st->c, st->h, st->w);
    cnn_status s = st->row(st->ctx, st->image, st->image[st->px]);
    if (s) return cnn_fail_prefix(s, "%s:%ld", st->name, st->line);
    st->rows++;
    return CNN_OK;
}

static cnn_status csv_setup(csv_state *st, const char *name, int c, int h, int w, cnn_row_fn row,
                            void *ctx)
{
    memset(st, 0, sizeof *st);
    if (c < 1 || h < 1 || w < 1 || (long long)c * h * w > (1LL << 26))
        return cnn_fail(CNN_ERR_ARG, "%s: cannot read %dx%dx%d images from a CSV file", name, c, h, w);
    st->name = name;
    st->c = c;
    st->h = h;
    st->w = w;
    st->px = (size_t)c * h * w;
    st->row = row;
    st->ctx = ctx;
    st->header_ok = 1;
    st->image = malloc(st->px + 1); /* the label rides in the last byte */
    if (!st->image) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", name);
    return CNN_OK;
}

static cnn_status csv_done(csv_state *st, cnn_status s)
{
    free(st->image);
    if (!s && st->rows == 0) s = cnn_fail(CNN_ERR_FORMAT, "%s: no image in the file", st->name);
    return s;
}

cnn_status cnn_csv_parse(const char *data, size_t len, const char *name, int c, int h, int w,
                         cnn_row_fn row, void *ctx)
{
    csv_state st;
    cnn_status s = csv_setup(&st, name, c, h, w, row, ctx);
    if (s) return s;
    size_t at = 0;
    while (!s && at < len) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (data + at)) : len - at;
        st.line++;
        if (memchr(data + at, '\0', n))
            s = cnn_fail(CNN_ERR_FORMAT, "%s:%ld: a NUL byte (not a text file?)", name, st.line);
        else
            s = csv_line(&st, data + at, n);
        at += n + 1;
    }
    return csv_done(&st, s);
}

cnn_status cnn_csv_read(const char *path, int c, int h, int w, cnn_row_fn row, void *ctx)
{
    FILE *f;
    long long size;
    cnn_status s = cnn_fopen_nonempty(path, "a CSV file", &f, &size);
    if (s) return s;
    csv_state st;
    if ((s = csv_setup(&st, path, c, h, w, row, ctx))) {
        fclose(f);
        return s;
    }
    /* the longest line a row can need: a label, then "255," per pixel,
     * with room for spaces and quotes; anything longer is not such a row */
    const size_t max_line = 8 * (st.px + 1) + 1024;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) s = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    int ch = 0;
    while (!s && ch != EOF) {
        n = 0;
        while ((ch = getc_unlocked(f)) != EOF && ch != '\n') {
            if (n + 1 >= cap) {
                if (cap >= max_line) break;
                size_t ncap = cap * 2 < max_line ? cap * 2 : max_line;
                char *p = realloc(buf, ncap);
                if (!p) {
                    s = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
                    break;
                }
                buf = p;
                cap = ncap;
            }
            if (ch == '\0') {
                s = cnn_fail(CNN_ERR_FORMAT, "%s:%ld: a NUL byte (not a text file?)", path, st.line + 1);
                break;
            }
            buf[n++] = (char)ch;
        }
        if (s) break;
        st.line++;
        if (ch != EOF && ch != '\n') {
            s = cnn_fail(CNN_ERR_FORMAT, "%s:%ld: a line longer than %zu bytes: not a row of %zu "
                         "pixels", path, st.line, max_line, st.px);
            break;
        }
        if (ch == EOF && ferror(f)) {
            s = cnn_fail(CNN_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (ch == EOF && n == 0) break;
        s = csv_line(&st, buf, n);
    }
    free(buf);
    fclose(f);
    return csv_done(&st, s);
}
