/* report_json.h — the text of the report page as it is written: a growing
 * buffer, JSON values and arrays, base64, and the binary blob that holds
 * the page's arrays (report_html.c, report_test.c, report_live.c). */
#ifndef CNN_CLI_REPORT_JSON_H
#define CNN_CLI_REPORT_JSON_H

#include <stddef.h>
#include <stdint.h>

/* A growing text; oom is set (and later writes dropped) when memory runs out. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf;

void buf_put(buf *b, const void *d, size_t n);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A JSON number; NaN and infinities become null. */
void json_num(buf *b, double v);
/* A JSON string, safe inside an HTML <script>: '<', '>' and '&' escaped,
 * so no "</script>" can end it early; U+2028/2029 too. */
void json_str(buf *b, const char *s);
/* A JSON array of n numbers: [x0,x1,...]. */
void json_nums(buf *b, const double *x, int n);
/* A JSON array of the whole numbers x[at[0]], x[at[1]], ... (n of them). */
void json_longs_at(buf *b, const long *x, const int *at, int n);

/* n bytes as base64, a newline after every `line` characters (0: none). */
void base64(buf *b, const unsigned char *p, size_t n, int line);

/* The page's data: the JSON, and the blob its arrays are in. */
typedef struct {
    buf js;
    buf blob;
} page;

/* Append n floats to the blob (little-endian, aligned to 4 bytes) and
 * their reference {"o": offset, "n": n, "t": "f32"} to the JSON. */
void blob_f32(page *pg, const float *x, size_t n);
/* The same for n bytes ("t": "u8"). */
void blob_u8(page *pg, const uint8_t *x, size_t n);

#endif
