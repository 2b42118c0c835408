/* predict_out.c — what `cnn predict` reports beyond each picture's line:
 * the true label a picture's folder gives, the grid's captions and the CSV
 * of predictions. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

int cli_true_label(const char *path, const cli_classes *names, int k)
{
    /* the folders holding the file: a class name must be their last one
     * (or last ones, for a name with a '/' such as "T-shirt/top"); the
     * longest such name wins */
    const char *end = strrchr(path, '/');
    if (!end) return -1;
    size_t dirlen = (size_t)(end - path);
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < k; i++) {
        char buf[16];
        const char *name = cli_class_name(names, i, buf);
        size_t len = strlen(name);
        if (len == 0 || len > dirlen || len <= best_len) continue;
        const char *tail = path + dirlen - len;
        if (memcmp(tail, name, len) == 0 && (tail == path || tail[-1] == '/')) {
            best = i;
            best_len = len;
        }
    }
    return best;
}

/* The file's name without its folders, shortened to its last `max` bytes
 * (whole UTF-8 characters) behind "..." when longer. */
static void short_name(const char *path, char *out, size_t cap, size_t max)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n <= max) {
        snprintf(out, cap, "%s", base);
        return;
    }
    const char *tail = base + n - max;
    while (((unsigned char)*tail & 0xc0) == 0x80) tail++; /* a continuation byte */
    snprintf(out, cap, "...%s", tail);
}

char *cli_grid_caption(const char *path, const char *predicted, float p, const char *truth, int wrong)
{
    char name[64];
    short_name(path, name, sizeof name, 20);
    size_t len = strlen(name) + strlen(predicted) + (truth ? strlen(truth) : 0) + 64;
    char *s = malloc(len);
    if (!s) return NULL;
    if (!truth) snprintf(s, len, "%s\n%s (%.0f%%)", name, predicted, 100.0 * p);
    else if (wrong) snprintf(s, len, "%s\n%s (%.0f%%)\nWRONG: is %s", name, predicted, 100.0 * p, truth);
    else snprintf(s, len, "%s\n%s (%.0f%%)\nright", name, predicted, 100.0 * p);
    return s;
}

/* A CSV field: as it is, or in double quotes (a quote doubled) when it
 * holds a comma, a quote or a line break (RFC 4180). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

cnn_status cli_predictions_csv(const char *path, int n, char *const *files, const int *truth,
                               const float *probs, const int *order, int k, int top,
                               const cli_classes *names)
{
    cnn_outfile o;
    cnn_status st = cnn_out_open(&o, path);
    if (st != CNN_OK) return st;
    FILE *f = o.f;
    fputs("file,true,predicted,probability,correct", f);
    for (int j = 1; j <= top; j++) fprintf(f, ",top%d,p%d", j, j);
    fputc('\n', f);
    char b1[16], b2[16];
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        const int *rank = order + (size_t)i * top;
        csv_field(f, files[i]);
        fputc(',', f);
        if (truth[i] >= 0) csv_field(f, cli_class_name(names, truth[i], b1));
        fputc(',', f);
        csv_field(f, cli_class_name(names, rank[0], b2));
        fprintf(f, ",%.6f,%s", p[rank[0]], truth[i] < 0 ? "" : truth[i] == rank[0] ? "1" : "0");
        for (int j = 0; j < top; j++) {
            fputc(',', f);
            csv_field(f, cli_class_name(names, rank[j], b1));
            fprintf(f, ",%.6f", p[rank[j]]);
        }
        fputc('\n', f);
    }
    return cnn_out_commit(&o);
}
