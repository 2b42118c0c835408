/* args.c — option parsing for every subcommand: --name value, --name=value,
 * --flag, with range checks and messages that name the flag and the value. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *cli_program = "cnn";

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cnn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'cnn %s --help'.\n", cmd);
    va_end(ap);
    return CLI_EUSAGE;
}

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cnn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EDATA;
}

int cli_status_exit(cnn_status s) { return s == CNN_ERR_ARG ? CLI_EUSAGE : CLI_EDATA; }

cli_opt *cli_opt_find(cli_opt *opts, const char *name)
{
    for (cli_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

/* Whether a number's text starts as one: a digit, or '-' then a digit
 * (signed kinds), or '.' (fractions). strtoll, strtoull and strtod skip
 * leading white space and take a '+' or '-' there: unchecked, " -15" would
 * read as the seed 18446744073709551601. */
static int number_start(const char *t, int minus, int dot)
{
    if (minus && *t == '-') t++;
    return isdigit((unsigned char)*t) || (dot && *t == '.');
}

/* %g drops the ".0" of whole numbers, which reads better in messages. */
static void fmt_num(char *buf, size_t len, double v) { snprintf(buf, len, "%.10g", v); }

int cli_opt_check(const cli_opt *o, const char *text, char *msg, size_t len)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->lo);
    fmt_num(hi, sizeof hi, o->hi);
    switch (o->kind) {
    case CLI_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (!number_start(text, 1, 0) || *end || errno || v < o->lo || v > o->hi) {
            snprintf(msg, len, "expected a whole number from %s to %s, got '%.80s'", lo, hi, text);
            return -1;
        }
        *(int *)o->dest = (int)v;
        return 0;
    }
    case CLI_U64: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (!number_start(text, 0, 0) || *end || errno) {
            snprintf(msg, len, "expected a whole number from 0 to 18446744073709551615, got '%.80s'",
                     text);
            return -1;
        }
        *(uint64_t *)o->dest = (uint64_t)v;
        return 0;
    }
    case CLI_FLOAT:
    case CLI_FLOAT_ABOVE: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        int low_ok = o->kind == CLI_FLOAT ? v >= o->lo : v > o->lo;
        if (!number_start(text, 1, 1) || *end || errno || !isfinite(v) || !low_ok || v > o->hi) {
            if (o->kind == CLI_FLOAT)
                snprintf(msg, len, "expected a number from %s to %s, got '%.80s'", lo, hi, text);
            else
                snprintf(msg, len, "expected a number above %s and at most %s, got '%.80s'", lo, hi,
                         text);
            return -1;
        }
        *(double *)o->dest = v;
        return 0;
    }
    case CLI_STR:
        if (!*text) {
            snprintf(msg, len, "expected a value, got ''");
            return -1;
        }
        *(const char **)o->dest = text;
        return 0;
    case CLI_FLAG:
        if (strcmp(text, "1") == 0) *(int *)o->dest = 1;
        else if (strcmp(text, "0") == 0) *(int *)o->dest = 0;
        else {
            snprintf(msg, len, "takes no value, got '%.80s'", text);
            return -1;
        }
        return 0;
    }
    snprintf(msg, len, "unknown kind of option");
    return -1;
}

int cli_opt_set(const char *cmd, cli_opt *o, const char *text)
{
    char msg[256];
    if (cli_opt_check(o, text, msg, sizeof msg)) return cli_usage_error(cmd, "--%s: %s", o->name, msg);
    return CLI_OK;
}

void cli_opt_format(const cli_opt *o, char *buf, size_t len)
{
    switch (o->kind) {
    case CLI_INT: snprintf(buf, len, "%d", *(const int *)o->dest); break;
    case CLI_U64: snprintf(buf, len, "%" PRIu64, *(const uint64_t *)o->dest); break;
    case CLI_FLOAT:
    case CLI_FLOAT_ABOVE: {
        /* the shortest text that reads back as the same double: 0.1, not
         * 0.10000000000000001; whole numbers in full (5000, not 5e+03) */
        double v = *(const double *)o->dest;
        if (v == floor(v) && fabs(v) < 1e15) {
            snprintf(buf, len, "%.0f", v);
            break;
        }
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    case CLI_STR: {
        const char *s = *(const char *const *)o->dest;
        snprintf(buf, len, "%s", s ? s : "");
        break;
    }
    case CLI_FLAG: snprintf(buf, len, "%d", *(const int *)o->dest); break;
    }
}

int cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, char **pos, int max_pos,
              int *npos)
{
    if (npos) *npos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (!npos || max_pos == 0) return cli_usage_error(cmd, "unexpected argument '%s'", a);
            if (*npos >= max_pos)
                return cli_usage_error(cmd, "more than %d arguments ('%s' is one too many): give at most %d at a time",
                                       max_pos, a, max_pos);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return -1;
        if (a[1] != '-') return cli_usage_error(cmd, "unknown option '%s'", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (nlen >= sizeof name) return cli_usage_error(cmd, "unknown option '%.60s...'", a);
        memcpy(name, a + 2, nlen);
        name[nlen] = '\0';
        cli_opt *o = cli_opt_find(opts, name);
        if (!o) return cli_usage_error(cmd, "unknown option '--%s'", name);
        const char *value;
        if (o->kind == CLI_FLAG) {
            if (eq) return cli_usage_error(cmd, "--%s takes no value, got '%s'", name, eq + 1);
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_usage_error(cmd, "--%s: missing value (%s)", name, o->meta);
            value = argv[++i];
        }
        int rc = cli_opt_set(cmd, o, value);
        if (rc) return rc;
        o->given = 1;
    }
    return CLI_OK;
}

int cli_parse_or_help(const char *cmd, int argc, char **argv, cli_opt *opts, char **pos,
                      int max_pos, int *npos, const char *synopsis, const char *about)
{
    int rc = cli_parse(cmd, argc, argv, opts, pos, max_pos, npos);
    if (rc < 0) cli_print_help(stdout, cmd, synopsis, about, opts);
    return rc;
}

void cli_print_help(FILE *f, const char *cmd, const char *synopsis, const char *about,
                    const cli_opt *opts)
{
    fprintf(f, "Usage: cnn %s %s\n\n%s\n\nOptions:\n", cmd, synopsis, about);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[64], def[64];
        if (o->kind == CLI_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, o->meta);
        if (o->def) snprintf(def, sizeof def, "%s", o->def);
        else if (o->kind == CLI_FLAG) snprintf(def, sizeof def, "off");
        else if (o->kind == CLI_FLOAT || o->kind == CLI_FLOAT_ABOVE)
            fmt_num(def, sizeof def, *(const double *)o->dest);
        else cli_opt_format(o, def, sizeof def);
        fprintf(f, "  %-26s %s (default: %s)\n", left, o->help, def[0] ? def : "none");
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "show this help and exit");
}

/* The multiplier of a size's unit: 1 for "" or "B", 1024^n for K, M, G, T
 * (any case, alone or followed by B or iB: sizes are binary); 0 for junk. */
static double unit_multiplier(const char *u)
{
    static const char units[] = "KMGT";
    if (!*u || strcasecmp(u, "B") == 0) return 1;
    const char *at = strchr(units, toupper((unsigned char)u[0]));
    if (!at || (u[1] && strcasecmp(u + 1, "B") != 0 && strcasecmp(u + 1, "iB") != 0)) return 0;
    double m = 1;
    for (const char *p = units; p <= at; p++) m *= 1024;
    return m;
}

int cli_mem_limit_parse(const char *text, double *bytes, double *percent)
{
    *bytes = *percent = 0;
    /* a number (a digit first: no sign, space, hex, inf or nan), then a unit */
    char *end = NULL;
    errno = 0;
    const int number = (isdigit((unsigned char)text[0]) || text[0] == '.') && !strpbrk(text, "xX");
    double v = number ? strtod(text, &end) : NAN;
    if (!isfinite(v) || errno || !(v > 0)) return -1;
    if (strcmp(end, "%") == 0) {
        if (!(v <= 100)) return -1;
        *percent = v;
        return 0;
    }
    double b = v * unit_multiplier(end);
    if (!(b >= 1.0) || b >= 0x1p64) return -1;
    *bytes = b;
    return 0;
}

int cli_set_mem_limit(const char *cmd, const char *text)
{
    if (!text) {
        cnn_set_memory_limit(0);
        cnn_memory_limit_source(CLI_MEM_LIMIT_DEFAULT " of the memory; --mem-limit sets it");
        return CLI_OK;
    }
    double bytes = NAN, percent = 0;
    if (cli_mem_limit_parse(text, &bytes, &percent) != 0) {
        bytes = NAN;
    } else if (percent > 0) {
        size_t phys = cnn_physical_memory();
        bytes = phys != SIZE_MAX ? (double)phys * percent / 100 : NAN;
    }
    if (!(bytes >= 1.0) || bytes >= 0x1p64)
        return cli_usage_error(cmd, "--mem-limit: expected a size such as 2G, 512M, 1.5GiB or 50%%, "
                               "got '%s'", text);
    cnn_set_memory_limit((size_t)bytes);
    char source[96];
    snprintf(source, sizeof source, "--mem-limit %.60s", text);
    cnn_memory_limit_source(source);
    return CLI_OK;
}
