/* fuzz_cli.c — the command-line parser of the `cnn` program on hostile
 * argument lists.
 *
 * The input is split into arguments at NUL bytes. If the first one names a
 * command (train, eval, predict, info), the rest are that command's
 * arguments; otherwise all of them are given to each of the four. Each
 * command's real option table (cli_*_options, train_options_init) goes
 * through cli_parse, then through the checks of the command that read no
 * file: --mem-limit's size, eval's --kernels, and for train the option
 * values checked together (train_check_options: optimizer, schedule, loss,
 * batch, ...) and the run's shape.
 *
 * Checks: cli_parse returns 0, 2 (usage error) or -1 (--help); it prints
 * nothing on stdout, and on stderr exactly one "cnn CMD: ... Try 'cnn CMD
 * --help'." message for a usage error, nothing otherwise; it never calls
 * exit() nor touches a file. A value accepted is in its option's range,
 * says what its text says (a number's text starts as one: a digit, or
 * '-' or '.' where they fit; whole numbers are the digits given) and reads
 * back through cli_opt_format + cli_opt_check to the same
 * value; options not given keep their defaults; a string value is the
 * argument's own text. For train, every option a run records (what a
 * checkpoint stores) reads back the same, and the run's shape covers the
 * training images with whole steps. */
#include "fuzz_cli_common.h"

#include "cli/train.h"

#include <ctype.h>
#include <math.h>

#define MAX_ARGS 8192
#define FAKE_PHYS ((size_t)16 << 30) /* for --mem-limit N%: 16 GiB */

static const char *const COMMANDS[] = {"train", "eval", "predict", "info"};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_install_guards();
    return 0;
}

/* ------------------------------------------------- what the parser saw */

/* What cli_parse does with argv, redone plainly: the text that set each
 * option last (NULL if none) and the positional arguments. Only used when
 * the parse succeeded, so every step is known to be valid. */
typedef struct {
    const char *text[64];
    char *pos[MAX_ARGS];
    int npos;
} seen_args;

static void replay(int argc, char **argv, const cli_opt *opts, seen_args *s)
{
    memset(s, 0, sizeof *s);
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            s->pos[s->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        int k = -1;
        for (int j = 0; opts[j].name; j++)
            if (strlen(opts[j].name) == nlen && strncmp(opts[j].name, a + 2, nlen) == 0) k = j;
        if (k < 0) fz_fail("a successful parse took unknown option '%s'", a);
        if (opts[k].kind == CLI_FLAG) s->text[k] = "1";
        else s->text[k] = eq ? eq + 1 : argv[++i];
    }
}

/* ------------------------------------------------------- value checks */

/* The whole number a text says, read plainly: an optional '-', digits.
 * 0 if the text is no such number or does not fit in 64 bits. */
static int plain_integer(const char *t, int *neg, unsigned long long *mag)
{
    *neg = *t == '-';
    if (*neg) t++;
    if (!isdigit((unsigned char)*t)) return 0;
    unsigned long long v = 0;
    for (; isdigit((unsigned char)*t); t++) {
        unsigned d = (unsigned)(*t - '0');
        if (v > (~0ULL - d) / 10) return 0;
        v = v * 10 + d;
    }
    *mag = v;
    return *t == '\0';
}

/* A copy of o that writes into scratch: check and format without touching
 * the real destination. */
typedef union {
    int i;
    uint64_t u;
    double d;
    const char *s;
} scratch_val;

static void check_reads_back(const char *cmd, const cli_opt *o)
{
    char text[4096], again[4096], msg[256];
    cli_opt_format(o, text, sizeof text);
    if (o->kind == CLI_STR && !*(const char *const *)o->dest) return; /* unset: nothing to read */
    scratch_val sv;
    memset(&sv, 0, sizeof sv);
    cli_opt tmp = *o;
    tmp.dest = &sv;
    if (cli_opt_check(&tmp, text, msg, sizeof msg))
        fz_fail("%s --%s: its value formats as '%s', which it refuses: %s", cmd, o->name, text, msg);
    cli_opt_format(&tmp, again, sizeof again);
    if (strcmp(text, again) != 0)
        fz_fail("%s --%s: '%s' reads back as '%s'", cmd, o->name, text, again);
    int same = 1;
    switch (o->kind) {
    case CLI_INT:
    case CLI_FLAG: same = sv.i == *(const int *)o->dest; break;
    case CLI_U64: same = sv.u == *(const uint64_t *)o->dest; break;
    case CLI_FLOAT:
    case CLI_FLOAT_ABOVE: same = memcmp(&sv.d, o->dest, sizeof(double)) == 0; break;
    case CLI_STR: same = strcmp(sv.s, *(const char *const *)o->dest) == 0; break;
    }
    if (!same) fz_fail("%s --%s: '%s' reads back as another value", cmd, o->name, text);
}

/* An option given on a command line that parsed: its value against its
 * kind, its range and the text that set it. */
static void check_given(const char *cmd, const cli_opt *o, const char *text, int argc, char **argv)
{
    if (!text) fz_fail("%s --%s: marked given but no argument sets it", cmd, o->name);
    switch (o->kind) {
    case CLI_INT: {
        int v = *(const int *)o->dest, neg;
        unsigned long long mag;
        if (v < o->lo || v > o->hi)
            fz_fail("%s --%s %s: accepted %d, outside [%g, %g]", cmd, o->name, text, v, o->lo, o->hi);
        if (!plain_integer(text, &neg, &mag) || (neg ? -(long long)mag : (long long)mag) != v)
            fz_fail("%s --%s '%s': accepted as %d", cmd, o->name, text, v);
        break;
    }
    case CLI_U64: {
        uint64_t v = *(const uint64_t *)o->dest;
        int neg;
        unsigned long long mag;
        if (!plain_integer(text, &neg, &mag) || neg || mag != v)
            fz_fail("%s --%s '%s': accepted as %llu", cmd, o->name, text, (unsigned long long)v);
        break;
    }
    case CLI_FLOAT:
    case CLI_FLOAT_ABOVE: {
        double v = *(const double *)o->dest;
        int low_ok = o->kind == CLI_FLOAT ? v >= o->lo : v > o->lo;
        if (!isfinite(v) || !low_ok || v > o->hi)
            fz_fail("%s --%s '%s': accepted %g, outside %s%g, %g]", cmd, o->name, text, v,
                    o->kind == CLI_FLOAT ? "[" : "(", o->lo, o->hi);
        char *end;
        double w = strtod(text, &end);
        int start = isdigit((unsigned char)text[text[0] == '-']) || text[text[0] == '-'] == '.';
        if (!start || *end || memcmp(&v, &w, sizeof v) != 0)
            fz_fail("%s --%s '%s': accepted as %.17g", cmd, o->name, text, v);
        break;
    }
    case CLI_STR: {
        const char *v = *(const char *const *)o->dest;
        if (v != text || !*v) fz_fail("%s --%s: the value is not the argument's text", cmd, o->name);
        int inside = 0;
        for (int i = 1; i < argc && !inside; i++)
            inside = v >= argv[i] && v <= argv[i] + strlen(argv[i]);
        if (!inside) fz_fail("%s --%s: the value points outside the arguments", cmd, o->name);
        break;
    }
    case CLI_FLAG:
        if (*(const int *)o->dest != 1) fz_fail("%s --%s: a flag given is not 1", cmd, o->name);
        break;
    }
    check_reads_back(cmd, o);
}

/* ------------------------------------------------------------ parsing */

typedef struct {
    char defaults[64][256]; /* every option's default, formatted */
} defaults_t;

static void snapshot_defaults(const cli_opt *opts, defaults_t *d)
{
    for (int i = 0; opts[i].name; i++) {
        if (i >= 64) fuzz_die("more than 64 options");
        cli_opt_format(&opts[i], d->defaults[i], sizeof d->defaults[i]);
    }
}

/* A usage error: "cnn CMD: ...\nTry 'cnn CMD --help'.\n" on stderr alone. */
static void check_usage_error(const char *cmd, const char *call)
{
    char head[32], tail[48];
    snprintf(head, sizeof head, "cnn %s: ", cmd);
    snprintf(tail, sizeof tail, "\nTry 'cnn %s --help'.\n", cmd);
    if (!fz_starts(fz_err, head) || !fz_ends(fz_err, tail) || strlen(fz_err) <= strlen(head) + strlen(tail))
        fz_fail("%s: exit 2 without a usage message", call);
    if (fz_out_len) fz_fail("%s printed on stdout", call);
}

static void check_silent(const char *call)
{
    if (fz_out_len || fz_err_len) fz_fail("%s printed although it succeeded", call);
}

/* cli_parse with a command's table, and the checks every command shares.
 * Returns its result. */
static int parse(const char *cmd, int argc, char **argv, cli_opt *opts, char **pos, int max_pos,
                 int *npos)
{
    static defaults_t def;
    static seen_args seen;
    snapshot_defaults(opts, &def);
    fz_begin("cli_parse", 1);
    int rc = cli_parse(cmd, argc, argv, opts, pos, max_pos, npos);
    fz_end();
    if (rc == CLI_EUSAGE) {
        check_usage_error(cmd, "cli_parse");
        return rc;
    }
    if (rc != CLI_OK && rc != -1) fz_fail("cli_parse returned %d (not 0, 2 or -1)", rc);
    check_silent("cli_parse");
    if (rc == -1) {
        /* --help: the command prints its table, whatever was parsed first */
        char *help = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&help, &len);
        if (!f) fuzz_die("open_memstream failed");
        cli_print_help(f, cmd, "[options]", "about", opts);
        fclose(f);
        for (int i = 0; opts[i].name; i++) {
            char flag[80];
            snprintf(flag, sizeof flag, "  --%s", opts[i].name);
            if (!strstr(help, flag)) fz_fail("the help of %s does not show --%s", cmd, opts[i].name);
        }
        free(help);
        return rc;
    }
    replay(argc, argv, opts, &seen);
    for (int i = 0; opts[i].name; i++) {
        const cli_opt *o = &opts[i];
        if (o->given != (seen.text[i] != NULL))
            fz_fail("%s --%s: given is %d but the arguments say otherwise", cmd, o->name, o->given);
        if (o->given) {
            check_given(cmd, o, seen.text[i], argc, argv);
        } else {
            char now[256];
            cli_opt_format(o, now, sizeof now);
            if (strcmp(now, def.defaults[i]) != 0)
                fz_fail("%s --%s: not given, but its default %s became %s", cmd, o->name,
                        def.defaults[i], now);
        }
    }
    if (npos) {
        if (*npos != seen.npos) fz_fail("%s: %d positional arguments, expected %d", cmd, *npos, seen.npos);
        for (int i = 0; i < *npos; i++)
            if (pos[i] != seen.pos[i]) fz_fail("%s: positional argument %d is not the argument", cmd, i);
    } else if (seen.npos) {
        fz_fail("%s: a parse without positional arguments accepted %d", cmd, seen.npos);
    }
    return rc;
}

/* --mem-limit SIZE: the pure parser, and the setter for a size in bytes
 * (a share of the memory would read the machine's memory size). */
static void check_mem_limit(const char *cmd, const char *text)
{
    double bytes, pct;
    fz_begin("cli_mem_limit_parse", 1);
    int rc = cli_mem_limit_parse(text, &bytes, &pct);
    fz_end();
    check_silent("cli_mem_limit_parse");
    if (rc == 0) {
        if (!isdigit((unsigned char)text[0]) && text[0] != '.')
            fz_fail("--mem-limit '%s' accepted without a digit first", text);
        if (pct > 0 ? !(pct <= 100) || bytes != 0 : !(bytes >= 1 && bytes < 0x1p64) || pct != 0)
            fz_fail("--mem-limit '%s': %g bytes, %g%%", text, bytes, pct);
        if (pct > 0 && !fz_ends(text, "%")) fz_fail("--mem-limit '%s': a share without '%%'", text);
        if (pct == 0) {
            /* the size in bytes as a plain number reads back the same */
            char plain[32];
            size_t b = (size_t)bytes;
            snprintf(plain, sizeof plain, "%zu", b);
            double b2, p2;
            if (cli_mem_limit_parse(plain, &b2, &p2) || (size_t)b2 != b)
                fz_fail("--mem-limit '%s' = %zu bytes, which reads back as %g", text, b, b2);
        }
    }
    if (strchr(text, '%')) return;
    fz_begin("cli_set_mem_limit", 1);
    int set = cli_set_mem_limit(cmd, text);
    fz_end();
    if (set == CLI_OK) {
        check_silent("cli_set_mem_limit");
        if (rc != 0 || cnn_memory_limit() != (size_t)bytes)
            fz_fail("--mem-limit '%s': cli_set_mem_limit and cli_mem_limit_parse disagree", text);
    } else {
        if (set != CLI_EUSAGE || rc == 0)
            fz_fail("--mem-limit '%s': cli_set_mem_limit returned %d, the parser %d", text, set, rc);
        check_usage_error(cmd, "cli_set_mem_limit");
    }
}

/* ------------------------------------------------------------ commands */

static void run_train(int argc, char **argv)
{
    train_cfg c;
    const char *mem_limit;
    cli_opt opts[TRAIN_NOPTS + 1];
    train_options_init(&c, &mem_limit, opts);
    if (parse("train", argc, argv, opts, NULL, 0, NULL) != CLI_OK) return;
    if (mem_limit) check_mem_limit("train", mem_limit);

    opt_source src;
    train_source_init(&src, opts, c.resume);
    run_choices x;
    fz_begin("train_check_options", 1);
    int rc = train_check_options(&c, &src, &x);
    fz_end();
    if (rc) {
        /* every value checked here came from the command line */
        if (rc != CLI_EUSAGE) fz_fail("train_check_options returned %d for command-line values", rc);
        check_usage_error("train", "train_check_options");
        const char *flag = fz_err + strlen("cnn train: ");
        if (!fz_starts(flag, "--")) fz_fail("train_check_options: the message names no option");
        return;
    }
    check_silent("train_check_options");

    /* the choices: what the texts say */
    if (strcmp(c.batch, "all") == 0 || strcmp(c.batch, "0") == 0) {
        if (x.batch != 0) fz_fail("--batch %s gave %d", c.batch, x.batch);
    } else {
        int neg;
        unsigned long long mag;
        if (!plain_integer(c.batch, &neg, &mag) || neg || (long long)mag != x.batch || x.batch < 1 ||
            x.batch > 1000000)
            fz_fail("--batch '%s' accepted as %d", c.batch, x.batch);
    }
    int has_momentum = x.opt == CNN_OPT_MOMENTUM || x.opt == CNN_OPT_NESTEROV;
    if (!(c.lr > 0 && c.lr <= 100) || (!has_momentum && c.momentum != 0) || c.min_lr > c.lr)
        fz_fail("train_check_options accepted lr %g, momentum %g, min-lr %g for --opt %s", c.lr,
                c.momentum, c.min_lr, c.opt);
    if ((x.kern == CNN_KERNELS_FAST) != (strcmp(c.kernels, "fast") == 0))
        fz_fail("--kernels %s", c.kernels);

    /* what a checkpoint records, read back as a resumed run reads it */
    for (int i = 0; opts[i].name; i++)
        if (train_listed(train_run_options, opts[i].name) ||
            train_listed(train_output_options, opts[i].name))
            check_reads_back("train (recorded)", &opts[i]);

    /* the run's shape on training files of a few sizes above --val (given
     * as a count; a fraction is counted once the data is read) */
    static const int extra[] = {1, 2, 7, 60000};
    if (c.val_arg >= 1 || c.val_arg == 0) c.val = (int)c.val_arg;
    for (size_t i = 0; (c.val_arg >= 1 || c.val_arg == 0) && i < sizeof extra / sizeof extra[0]; i++) {
        if (c.val > 100000000 - extra[i]) continue;
        int n = c.val + extra[i], batch = x.batch, ntrain, steps;
        train_shape(&c, n - c.val, &batch, &ntrain, &steps);
        if (ntrain < 1 || ntrain > n - c.val || (c.limit > 0 && ntrain > c.limit) || batch < 1 ||
            batch > ntrain || steps < 1 || (long long)steps * batch < ntrain ||
            (long long)(steps - 1) * batch >= ntrain)
            fz_fail("train_shape: %d images, --val %d --limit %d --batch %s: %d images in %d steps of %d",
                    n, c.val, c.limit, c.batch, ntrain, steps, batch);
    }
}

static void run_eval(int argc, char **argv)
{
    eval_cfg c;
    cli_opt opts[EVAL_NOPTS + 1];
    cli_eval_options(&c, opts);
    if (parse("eval", argc, argv, opts, NULL, 0, NULL) != CLI_OK) return;
    cnn_kernels k;
    fz_begin("cli_parse_kernels", 1);
    int rc = cli_parse_kernels("eval", c.kernels, &k);
    fz_end();
    int known = strcmp(c.kernels, "ref") == 0 || strcmp(c.kernels, "fast") == 0;
    if (rc == CLI_OK) {
        check_silent("cli_parse_kernels");
        if (!known || (k == CNN_KERNELS_REF) != (strcmp(c.kernels, "ref") == 0))
            fz_fail("--kernels '%s' accepted as %d", c.kernels, (int)k);
    } else {
        if (rc != CLI_EUSAGE || known) fz_fail("--kernels '%s' refused with %d", c.kernels, rc);
        check_usage_error("eval", "cli_parse_kernels");
    }
    if (c.mem_limit) check_mem_limit("eval", c.mem_limit);
}

static void run_predict(int argc, char **argv)
{
    predict_cfg c;
    cli_opt opts[PREDICT_NOPTS + 1];
    cli_predict_options(&c, opts);
    static char *files[CLI_PREDICT_MAX_IMAGES];
    int n = 0;
    if (parse("predict", argc, argv, opts, files, CLI_PREDICT_MAX_IMAGES, &n) != CLI_OK) return;
    if (n > CLI_PREDICT_MAX_IMAGES) fz_fail("predict: %d files", n);
    if (c.mem_limit) check_mem_limit("predict", c.mem_limit);
}

static void run_info(int argc, char **argv)
{
    info_cfg c;
    cli_opt opts[INFO_NOPTS + 1];
    cli_info_options(&c, opts);
    parse("info", argc, argv, opts, NULL, 0, NULL);
}

static void run(int cmd, int argc, char **argv)
{
    argv[0] = (char *)COMMANDS[cmd];
    switch (cmd) {
    case 0: run_train(argc, argv); break;
    case 1: run_eval(argc, argv); break;
    case 2: run_predict(argc, argv); break;
    case 3: run_info(argc, argv); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the arguments, each its own allocation of its exact size (ASan sees
     * a read past any of them); a final NUL ends the last one */
    static char *args[MAX_ARGS + 1];
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < MAX_ARGS; i++) {
        if (i < size && data[i] != 0) continue;
        if (i == size && start == size && size > 0 && data[size - 1] == 0) break;
        size_t len = i - start;
        args[n] = malloc(len + 1);
        if (!args[n]) fuzz_die("out of memory in the harness");
        memcpy(args[n], data + start, len);
        args[n][len] = '\0';
        n++;
        start = i + 1;
    }
    /* argv[0] is the command; the arguments follow */
    static char *argv[MAX_ARGS + 2];
    int known = -1;
    for (int c = 0; c < 4 && n > 0; c++)
        if (strcmp(args[0], COMMANDS[c]) == 0) known = c;
    int first = known >= 0 ? 1 : 0, argc = 1;
    for (int i = first; i < n; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    if (known >= 0) run(known, argc, argv);
    else
        for (int c = 0; c < 4; c++) run(c, argc, argv);
    for (int i = 0; i < n; i++) free(args[i]);
    return 0;
}
