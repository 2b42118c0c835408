/* spec.c — reading one line of an architecture text: words, numbers, options.
 * Every helper consumes what it reads so the parser can point at any word
 * nobody understood. Messages have the form "file:line: kind: problem". */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cnn_status cnn_spec_split(char *text, const char *file, int line, cnn_spec_line *s)
{
    memset(s, 0, sizeof *s);
    s->file = file;
    s->line = line;
    char *hash = strchr(text, '#');
    if (hash) *hash = '\0';
    char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) break;
        if (s->nwords == CNN_SPEC_MAX_WORDS)
            return cnn_fail(CNN_ERR_PARSE, "%s:%d: too many words (at most %d)", file, line,
                            CNN_SPEC_MAX_WORDS);
        s->words[s->nwords++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
        if (*p) *p++ = '\0';
    }
    if (s->nwords > 0) s->used = 1; /* the kind */
    return CNN_OK;
}

cnn_status cnn_spec_error(cnn_spec_line *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnn_fail(CNN_ERR_PARSE, "%s:%d: %s: %s", s->file, s->line,
                    s->nwords ? s->words[0] : "?", msg);
}

/* Strict integer: the whole text, no sign games, within [lo, hi]. */
static int parse_int(const char *t, int lo, int hi, int *out)
{
    if (!*t) return 0;
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *t, double lo, double hi, float *out)
{
    if (!*t) return 0;
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    if (*end || errno == ERANGE || !isfinite(v) || v < lo || v > hi) return 0;
    *out = (float)v;
    return 1;
}

/* "3x5" -> (3, 5); "3" -> (3, 3) */
static int parse_pair(const char *t, int lo, int hi, int *a, int *b)
{
    char buf[64];
    if (strlen(t) >= sizeof buf) return 0;
    strcpy(buf, t);
    char *x = strchr(buf, 'x');
    if (!x) {
        if (!parse_int(buf, lo, hi, a)) return 0;
        *b = *a;
        return 1;
    }
    *x = '\0';
    return parse_int(buf, lo, hi, a) && parse_int(x + 1, lo, hi, b);
}

/* The word index of the idx-th positional word (1-based), or -1. */
static int positional(const cnn_spec_line *s, int idx)
{
    int k = 0;
    for (int i = 1; i < s->nwords; i++) {
        if (strchr(s->words[i], '=')) continue;
        if (++k == idx) return i;
    }
    return -1;
}

/* The word index of option key=..., or -1; its value in *val. */
static int option(const cnn_spec_line *s, const char *key, const char **val)
{
    size_t n = strlen(key);
    for (int i = 1; i < s->nwords; i++) {
        if (strncmp(s->words[i], key, n) == 0 && s->words[i][n] == '=') {
            *val = s->words[i] + n + 1;
            return i;
        }
    }
    return -1;
}

cnn_status cnn_spec_int(cnn_spec_line *s, int idx, const char *what, int lo, int hi,
                        int required, int *out)
{
    int i = positional(s, idx);
    if (i < 0) return required ? cnn_spec_error(s, "expected %s", what) : CNN_OK;
    s->used |= 1u << i;
    if (!parse_int(s->words[i], lo, hi, out))
        return cnn_spec_error(s, "%s must be a whole number from %d to %d, got '%s'", what, lo,
                              hi, s->words[i]);
    return CNN_OK;
}

cnn_status cnn_spec_pair(cnn_spec_line *s, int idx, const char *what, int lo, int hi,
                         int required, int *a, int *b)
{
    int i = positional(s, idx);
    if (i < 0) return required ? cnn_spec_error(s, "expected %s", what) : CNN_OK;
    s->used |= 1u << i;
    if (!parse_pair(s->words[i], lo, hi, a, b))
        return cnn_spec_error(s, "%s must be N or NxM with whole numbers from %d to %d, got '%s'",
                              what, lo, hi, s->words[i]);
    return CNN_OK;
}

cnn_status cnn_spec_float(cnn_spec_line *s, int idx, const char *what, double lo, double hi,
                          int required, float *out)
{
    int i = positional(s, idx);
    if (i < 0) return required ? cnn_spec_error(s, "expected %s", what) : CNN_OK;
    s->used |= 1u << i;
    if (!parse_float(s->words[i], lo, hi, out))
        return cnn_spec_error(s, "%s must be a number from %g to %g, got '%s'", what, lo, hi,
                              s->words[i]);
    return CNN_OK;
}

cnn_status cnn_spec_opt_int(cnn_spec_line *s, const char *key, int lo, int hi, int *out)
{
    const char *v;
    int i = option(s, key, &v);
    if (i < 0) return CNN_OK;
    s->used |= 1u << i;
    if (!parse_int(v, lo, hi, out))
        return cnn_spec_error(s, "%s= must be a whole number from %d to %d, got '%s'", key, lo, hi,
                              v);
    return CNN_OK;
}

cnn_status cnn_spec_opt_pair(cnn_spec_line *s, const char *key, int lo, int hi, int *a, int *b)
{
    const char *v;
    int i = option(s, key, &v);
    if (i < 0) return CNN_OK;
    s->used |= 1u << i;
    if (!parse_pair(v, lo, hi, a, b))
        return cnn_spec_error(s, "%s= must be N or NxM with whole numbers from %d to %d, got '%s'",
                              key, lo, hi, v);
    return CNN_OK;
}

cnn_status cnn_spec_opt_float(cnn_spec_line *s, const char *key, double lo, double hi,
                              float *out)
{
    const char *v;
    int i = option(s, key, &v);
    if (i < 0) return CNN_OK;
    s->used |= 1u << i;
    if (!parse_float(v, lo, hi, out))
        return cnn_spec_error(s, "%s= must be a number from %g to %g, got '%s'", key, lo, hi, v);
    return CNN_OK;
}

cnn_status cnn_spec_opt_str(cnn_spec_line *s, const char *key, const char **out)
{
    const char *v;
    int i = option(s, key, &v);
    if (i < 0) return CNN_OK;
    s->used |= 1u << i;
    *out = v;
    return CNN_OK;
}

cnn_status cnn_spec_check_all_used(cnn_spec_line *s)
{
    for (int i = 1; i < s->nwords; i++)
        if (!(s->used & (1u << i)))
            return cnn_spec_error(s, strchr(s->words[i], '=') ? "unknown option '%s'"
                                                               : "unexpected word '%s'",
                                  s->words[i]);
    return CNN_OK;
}
