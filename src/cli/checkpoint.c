/* checkpoint.c — the training state in a checkpoint's metadata, written in
 * full precision and read back as hostile input: every number parsed
 * strictly (the whole text, no spaces, no overflow) and checked against the
 * run it describes, so that a damaged or edited checkpoint is refused with
 * the field named instead of resuming into nonsense. */
#include "cli/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define K_EPOCH "train.epoch"
#define K_STEP "train.step"
#define K_RNG "train.data_rng"
#define K_LOSS "train.loss_sum"
#define K_CORRECT "train.correct"
#define K_SEEN "train.seen"
#define K_HISTORY "train.history"
/* checkpoints only */
#define K_SECONDS "train.seconds"
#define K_EPOCH_SECONDS "train.epoch_seconds"

static int fail(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---------------------------------------------------- strict number parsing */

/* A whole number in [lo, hi], the text all digits (an optional leading '-'):
 * no spaces, no '+', no trailing junk, no overflow. */
static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* A number as %.17g writes it (or nan/inf), the whole text. */
static int parse_num(const char *s, double *out)
{
    if (!s || !*s || s[0] == ' ' || s[0] == '\t' || s[0] == '+') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || (errno && errno != ERANGE)) return -1;
    *out = v;
    return 0;
}

/* The text of one field of a list: up to the next separator, copied into
 * buf (which holds any number %.17g writes). Returns the separator's
 * position, or NULL if the field is longer than buf. */
static const char *field(const char *s, const char *seps, char *buf, size_t len)
{
    size_t n = strcspn(s, seps);
    if (n >= len) return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return s + n;
}

/* Quote at most 40 characters of a value for a message. */
static const char *shown(const char *v, char buf[48])
{
    size_t n = strlen(v);
    snprintf(buf, 48, "'%.40s%s'", v, n > 40 ? "..." : "");
    return buf;
}

/* ---------------------------------------------------------------- the RNG */

static void rng_to_hex(const cnn_rng *r, char out[65])
{
    for (int i = 0; i < 4; i++) snprintf(out + 16 * i, 17, "%016" PRIx64, r->s[i]);
}

/* Exactly 64 hex digits, not all zero (xoshiro's one state that never
 * leaves zero, and one our seeding never makes). */
static int rng_from_hex(const char *hex, cnn_rng *r)
{
    if (strlen(hex) != 64) return -1;
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 16; j++) {
            char c = hex[16 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) return -1;
            v = v << 4 | (uint64_t)d;
        }
        r->s[i] = v;
        any |= v;
    }
    return any ? 0 : -1;
}

/* ------------------------------------------------------------ the history */

int cli_ckpt_push_row(cli_ckpt_state *st, cli_epoch_row row)
{
    cli_epoch_row *g = realloc(st->rows, sizeof *g * (size_t)(st->nrows + 1));
    if (!g) return -1;
    st->rows = g;
    st->rows[st->nrows++] = row;
    return 0;
}

void cli_ckpt_state_free(cli_ckpt_state *st)
{
    free(st->rows);
    memset(st, 0, sizeof *st);
}

/* One row of the history text: "epoch,lr,train_loss,train_acc,val_loss,val_acc"
 * in full precision (the wall times are kept apart: they would make two
 * identical runs' model files differ). */
static int history_row(char *s, size_t cap, const cli_epoch_row *r)
{
    return snprintf(s, cap, "%d,%.9g,%.17g,%.17g,%.17g,%.17g", r->epoch, r->lr, r->train_loss,
                    r->train_acc, r->val_loss, r->val_acc);
}

/* One row's wall time. */
static int seconds_row(char *s, size_t cap, const cli_epoch_row *r)
{
    return snprintf(s, cap, "%.17g", r->seconds);
}

/* Every row of st written by row (at most per_row bytes each), joined by
 * sep; NULL when out of memory. */
static char *rows_text(const cli_ckpt_state *st, size_t per_row, const char *sep,
                       int (*row)(char *, size_t, const cli_epoch_row *))
{
    size_t cap = 16 + (size_t)st->nrows * per_row;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t used = 0;
    s[0] = '\0';
    for (int i = 0; i < st->nrows; i++) {
        if (i) used += (size_t)snprintf(s + used, cap - used, "%s", sep);
        used += (size_t)row(s + used, cap - used, &st->rows[i]);
    }
    return s;
}

static int is_pct(double v) { return v >= 0 && v <= 100; }

/* Parse the history: exactly `epoch` rows, row i for epoch i + 1, with
 * finite losses, accuracies in [0, 100], and validation columns exactly
 * when the run holds a validation set out. */
static int history_parse(const char *s, const cli_ckpt_run *run, cli_ckpt_state *st, char *msg,
                         size_t len)
{
    int want = st->epoch;
    while (*s) {
        if (st->nrows >= want)
            return fail(msg, len, K_HISTORY ": more than the %d epoch%s that " K_EPOCH " says are done",
                        want, want == 1 ? "" : "s");
        static const char *const names[6] = {"epoch", "lr", "train_loss", "train_acc", "val_loss",
                                             "val_acc"};
        double v[6];
        long long e = 0;
        int row = st->nrows + 1;
        for (int f = 0; f < 6; f++) {
            char buf[64];
            const char *next = field(s, f < 5 ? ",;" : ";", buf, sizeof buf);
            if (!next || (f == 0 ? parse_ll(buf, 0, INT32_MAX, &e) : parse_num(buf, &v[f])) ||
                (f < 5 && *next != ',') || (f == 5 && *next && *next != ';'))
                return fail(msg, len, K_HISTORY ": epoch %d: %s is not a number or a field is missing",
                            row, names[f]);
            s = *next ? next + 1 : next;
            if (f == 5 && *next == ';' && !*s)
                return fail(msg, len, K_HISTORY ": ends with ';'");
        }
        if (e != row)
            return fail(msg, len, K_HISTORY ": row %d is for epoch %lld, expected %d", row, e, row);
        if (!(isfinite(v[1]) && v[1] >= 0 && v[1] <= 100))
            return fail(msg, len, K_HISTORY ": epoch %d: the learning rate %g is not in [0, 100]", row, v[1]);
        if (!(isfinite(v[2]) && v[2] >= 0) || !is_pct(v[3]))
            return fail(msg, len, K_HISTORY ": epoch %d: train loss %g / accuracy %g out of range", row,
                        v[2], v[3]);
        if (run->has_val ? !(isfinite(v[4]) && v[4] >= 0) || !is_pct(v[5])
                         : !isnan(v[4]) || !isnan(v[5]))
            return fail(msg, len,
                        K_HISTORY ": epoch %d: validation loss %g / accuracy %g %s", row, v[4], v[5],
                        run->has_val ? "out of range" : "given for a run without validation");
        /* the rate is a float, which %.9g gives back exactly as a float */
        cli_epoch_row r = {row, (double)(float)v[1], v[2], v[3], v[4], v[5], NAN};
        if (cli_ckpt_push_row(st, r)) return fail(msg, len, "out of memory");
    }
    if (st->nrows != want)
        return fail(msg, len, K_HISTORY ": %d epoch%s, but " K_EPOCH " says %d are done", st->nrows,
                    st->nrows == 1 ? "" : "s", want);
    return 0;
}

int cli_ckpt_best_epoch(const cli_ckpt_state *st)
{
    int best = 0;
    for (int i = 0; i < st->nrows; i++)
        if (isfinite(st->rows[i].val_loss) && (!best || st->rows[i].val_loss < st->rows[best - 1].val_loss))
            best = i + 1;
    return best;
}

int cli_ckpt_stops_early(const cli_ckpt_state *st, int patience)
{
    int best = cli_ckpt_best_epoch(st);
    return patience > 0 && best > 0 && st->nrows - best >= patience;
}

/* A run that stops early trains no epoch past the one where it stopped:
 * no shorter history may have stopped it, and where the whole history
 * does, the next epoch has not begun. */
static int early_stop_check(const cli_ckpt_run *run, cli_ckpt_state *st, char *msg, size_t len)
{
    if (run->early_stop <= 0) return 0;
    int all = st->nrows;
    for (int n = 1; n < all; n++) {
        st->nrows = n;
        int best = cli_ckpt_best_epoch(st), stops = cli_ckpt_stops_early(st, run->early_stop);
        st->nrows = all;
        if (stops)
            return fail(msg, len, K_HISTORY ": no lower validation loss in the %d epoch%s after epoch %d, "
                        "so a run with train.opt.early-stop %d stops after epoch %d, not %d",
                        n - best, n - best == 1 ? "" : "s", best, run->early_stop, n, all);
    }
    if (cli_ckpt_stops_early(st, run->early_stop) && st->step != 0)
        return fail(msg, len, K_STEP ": %d, but the run stopped early after epoch %d (train.opt.early-stop %d)",
                    st->step, all, run->early_stop);
    return 0;
}

/* The finished epochs' wall times: one finite, non-negative number each. */
static int seconds_parse(const char *s, cli_ckpt_state *st, char *msg, size_t len)
{
    int i = 0;
    while (*s) {
        char buf[64];
        double v;
        const char *next = field(s, ",", buf, sizeof buf);
        if (i >= st->nrows)
            return fail(msg, len, K_SECONDS ": more times than the %d finished epochs", st->nrows);
        if (!next || parse_num(buf, &v) || !isfinite(v) || v < 0)
            return fail(msg, len, K_SECONDS ": epoch %d: not a number of seconds", i + 1);
        st->rows[i++].seconds = v;
        s = *next ? next + 1 : next;
        if (*next && !*s) return fail(msg, len, K_SECONDS ": ends with ','");
    }
    if (i != st->nrows)
        return fail(msg, len, K_SECONDS ": %d time%s for %d finished epochs", i, i == 1 ? "" : "s",
                    st->nrows);
    return 0;
}

/* -------------------------------------------------------------- the state */

int cli_ckpt_is_checkpoint(cli_meta_get get, const void *ctx)
{
    return get(ctx, K_SECONDS) != NULL;
}

/* The text of key, or a message that it is missing. */
static const char *need(cli_meta_get get, const void *ctx, const char *key, char *msg, size_t len)
{
    const char *v = get(ctx, key);
    if (!v) fail(msg, len, "%s: missing", key);
    return v;
}

static int read_state(cli_meta_get get, const void *ctx, const cli_ckpt_run *run,
                      cli_ckpt_state *st, char *msg, size_t len)
{
    const char *v;
    char q[48];
    long long x;

    /* where the run stands */
    if (!(v = need(get, ctx, K_EPOCH, msg, len))) return -1;
    if (parse_ll(v, 0, run->epochs, &x))
        return fail(msg, len, K_EPOCH ": %s is not a whole number from 0 to %d (the run's epochs, "
                    "train.opt.epochs)",
                    shown(v, q), run->epochs);
    st->epoch = (int)x;
    if (!(v = need(get, ctx, K_STEP, msg, len))) return -1;
    if (parse_ll(v, 0, run->steps, &x))
        return fail(msg, len, K_STEP ": %s is not a whole number from 0 to %d (the steps of an epoch)",
                    shown(v, q), run->steps);
    st->step = (int)x;
    if (st->epoch == run->epochs && st->step != 0)
        return fail(msg, len, K_STEP ": %d, but every epoch is done (" K_EPOCH " %d of %d, "
                    "train.opt.epochs)", st->step, st->epoch, run->epochs);

    /* this epoch's sums: seen is what the steps done cover */
    long long images = (long long)st->step * run->batch;
    if (images > run->ntrain) images = run->ntrain;
    if (!(v = need(get, ctx, K_SEEN, msg, len))) return -1;
    if (parse_ll(v, 0, run->ntrain, &x) || x != images)
        return fail(msg, len, K_SEEN ": %s, but %d step%s of %d images cover %lld", shown(v, q),
                    st->step, st->step == 1 ? "" : "s", run->batch, images);
    st->seen = (long)x;
    if (!(v = need(get, ctx, K_CORRECT, msg, len))) return -1;
    if (parse_ll(v, 0, st->seen, &x))
        return fail(msg, len, K_CORRECT ": %s is not a whole number from 0 to %ld (" K_SEEN ")",
                    shown(v, q), st->seen);
    st->correct = (long)x;
    if (!(v = need(get, ctx, K_LOSS, msg, len))) return -1;
    if (parse_num(v, &st->loss_sum) || !isfinite(st->loss_sum) || st->loss_sum < 0 ||
        (st->seen == 0 && st->loss_sum != 0))
        return fail(msg, len, K_LOSS ": %s is not a finite, non-negative sum%s", shown(v, q),
                    st->seen == 0 ? " (0 before the epoch's first step)" : "");
    if (!(v = need(get, ctx, K_RNG, msg, len))) return -1;
    if (rng_from_hex(v, &st->epoch_rng))
        return fail(msg, len, K_RNG ": %s is not 64 hexadecimal digits (a random generator's state)",
                    shown(v, q));

    /* the finished epochs and their wall times */
    if (!(v = need(get, ctx, K_HISTORY, msg, len))) return -1;
    if (history_parse(v, run, st, msg, len)) return -1;
    if (early_stop_check(run, st, msg, len)) return -1;
    if (!(v = need(get, ctx, K_SECONDS, msg, len))) return -1;
    if (seconds_parse(v, st, msg, len)) return -1;
    if (!(v = need(get, ctx, K_EPOCH_SECONDS, msg, len))) return -1;
    if (parse_num(v, &st->epoch_seconds) || !isfinite(st->epoch_seconds) || st->epoch_seconds < 0)
        return fail(msg, len, K_EPOCH_SECONDS ": %s is not a number of seconds", shown(v, q));
    return 0;
}

int cli_ckpt_state_read(cli_meta_get get, const void *ctx, const cli_ckpt_run *run,
                        cli_ckpt_state *st, char *msg, size_t len)
{
    memset(st, 0, sizeof *st);
    if (run->epochs < 1 || run->steps < 1 || run->batch < 1 || run->ntrain < 1)
        return fail(msg, len, "the run has no training steps");
    if (read_state(get, ctx, run, st, msg, len) == 0) return 0;
    cli_ckpt_state_free(st);
    return -1;
}

int cli_ckpt_state_write(cli_meta_set set, void *ctx, const cli_ckpt_state *st, int checkpoint)
{
    char buf[64], hex[65];
    int rc = 0;
    snprintf(buf, sizeof buf, "%d", st->epoch);
    rc |= set(ctx, K_EPOCH, buf);
    snprintf(buf, sizeof buf, "%d", st->step);
    rc |= set(ctx, K_STEP, buf);
    rng_to_hex(&st->epoch_rng, hex);
    rc |= set(ctx, K_RNG, hex);
    snprintf(buf, sizeof buf, "%.17g", st->loss_sum);
    rc |= set(ctx, K_LOSS, buf);
    snprintf(buf, sizeof buf, "%ld", st->correct);
    rc |= set(ctx, K_CORRECT, buf);
    snprintf(buf, sizeof buf, "%ld", st->seen);
    rc |= set(ctx, K_SEEN, buf);
    char *h = rows_text(st, 160, ";", history_row);
    rc |= h ? set(ctx, K_HISTORY, h) : -1;
    free(h);
    if (checkpoint) {
        char *s = rows_text(st, 32, ",", seconds_row);
        rc |= s ? set(ctx, K_SECONDS, s) : -1;
        free(s);
        snprintf(buf, sizeof buf, "%.17g", st->epoch_seconds);
        rc |= set(ctx, K_EPOCH_SECONDS, buf);
    } else {
        rc |= set(ctx, K_SECONDS, NULL);
        rc |= set(ctx, K_EPOCH_SECONDS, NULL);
    }
    return rc ? -1 : 0;
}
