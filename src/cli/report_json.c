/* report_json.c — writing the report page's text: the growing buffer,
 * JSON values and arrays, base64 and the blob of arrays (report_json.h). */
#include "cli/report_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ text */

void buf_put(buf *b, const void *d, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) {
            b->oom = 1;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void buf_puts(buf *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_put(b, big, (size_t)n);
    free(big);
}

void json_num(buf *b, double v)
{
    if (!isfinite(v)) buf_puts(b, "null");
    else buf_printf(b, "%.9g", v);
}

void json_str(buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"') buf_puts(b, "\\\"");
        else if (*p == '\\') buf_puts(b, "\\\\");
        else if (*p == '\n') buf_puts(b, "\\n");
        else if (*p == '\t') buf_puts(b, "\\t");
        else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&' || *p == 0x7f) buf_printf(b, "\\u%04x", *p);
        else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            buf_printf(b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 2;
        } else buf_put(b, p, 1);
    }
    buf_puts(b, "\"");
}

void json_nums(buf *b, const double *x, int n)
{
    buf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) buf_puts(b, ",");
        json_num(b, x[i]);
    }
    buf_puts(b, "]");
}

void json_longs_at(buf *b, const long *x, const int *at, int n)
{
    buf_puts(b, "[");
    for (int i = 0; i < n; i++) buf_printf(b, "%s%ld", i ? "," : "", x[at[i]]);
    buf_puts(b, "]");
}

void base64(buf *b, const unsigned char *p, size_t n, int line)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char chunk[132];
    size_t used = 0, on_line = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        chunk[used++] = tab[v >> 18 & 63];
        chunk[used++] = tab[v >> 12 & 63];
        chunk[used++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        chunk[used++] = i + 2 < n ? tab[v & 63] : '=';
        on_line += 4;
        if (line > 0 && on_line == (size_t)line) {
            chunk[used++] = '\n';
            on_line = 0;
        }
        if (used >= 120) {
            buf_put(b, chunk, used);
            used = 0;
        }
    }
    if (used) buf_put(b, chunk, used);
}

/* ------------------------------------------------------------ the blob */

static int little_endian(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static void align(buf *b, size_t a)
{
    static const char zeros[8] = {0};
    while (b->n % a) buf_put(b, zeros, 1);
}

void blob_f32(page *pg, const float *x, size_t n)
{
    align(&pg->blob, 4);
    size_t off = pg->blob.n;
    if (little_endian()) {
        buf_put(&pg->blob, x, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                                   (unsigned char)(u >> 24)};
            buf_put(&pg->blob, le, 4);
        }
    }
    buf_printf(&pg->js, "{\"o\":%zu,\"n\":%zu,\"t\":\"f32\"}", off, n);
}

void blob_u8(page *pg, const uint8_t *x, size_t n)
{
    size_t off = pg->blob.n;
    buf_put(&pg->blob, x, n);
    buf_printf(&pg->js, "{\"o\":%zu,\"n\":%zu,\"t\":\"u8\"}", off, n);
}
