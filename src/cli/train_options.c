/* train_options.c — the options of a `cnn train` run: taken from the
 * command line or from the checkpoint being resumed (whose values are
 * checked as strictly as the command line's, and reported as the
 * checkpoint's fault), checked together, the output paths checked before
 * any work, and the command that resumes a stopped run. */
#include "cli/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const train_run_options[] = {
    "arch", "dataset", "data", "epochs", "batch", "lr", "opt", "momentum", "weight-decay",
    "sched", "lr-step", "lr-gamma", "min-lr", "clip", "loss", "init-weights", "seed", "val",
    "limit", "test-limit", "no-shuffle", "augment", "init", "kernels", "fit", "test-split",
    "strict", "early-stop", NULL};
const char *const train_run_options_added[] = {"fit", "test-split", "strict", "early-stop", NULL};
const char *const train_output_options[] = {"out", "history", "plot", "threads",
                                            "checkpoint-every", "best", "report", NULL};
const char *const train_output_paths[] = {"out", "history", "plot", "best", "report", NULL};

int train_listed(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

/* ------------------------------------------------- where options come from */

static int opt_index(const opt_source *src, const char *name)
{
    for (int i = 0; src->opts[i].name; i++)
        if (strcmp(src->opts[i].name, name) == 0) return i;
    return -1;
}

static int from_cmdline(const opt_source *src, const char *name)
{
    int i = opt_index(src, name);
    return i >= 0 && src->cmdline[i];
}

int train_option_error(const opt_source *src, const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (src->resume && !from_cmdline(src, name))
        return cli_error(TRAIN_CMD, "--resume: %s: train.opt.%s: %s", src->resume, name, msg);
    return cli_usage_error(TRAIN_CMD, "--%s: %s", name, msg);
}

/* The value `text` would give option o, formatted as cli_opt_format does:
 * two texts of the same value then compare equal ("0.10" and "0.1"). */
static int normalised(const cli_opt *o, const char *text, char *out, size_t len, char *msg,
                      size_t mlen)
{
    union {
        int i;
        uint64_t u;
        double d;
        const char *s;
    } scratch;
    cli_opt tmp = *o;
    tmp.dest = &scratch;
    if (cli_opt_check(&tmp, text, msg, mlen)) return -1;
    cli_opt_format(&tmp, out, len);
    return 0;
}

int train_options_from_checkpoint(cnn_model *ck, opt_source *src)
{
    for (int i = 0; src->opts[i].name; i++) {
        cli_opt *o = &src->opts[i];
        int run = train_listed(train_run_options, o->name);
        if (!run && !train_listed(train_output_options, o->name)) continue;
        char key[64], mine[4096], theirs[4096], msg[256];
        snprintf(key, sizeof key, "train.%s.%s", run ? "opt" : "out", o->name);
        const char *saved = cnn_model_get_meta(ck, key);
        if (!saved) {
            /* the default, or what the command line says */
            if (!run || train_listed(train_run_options_added, o->name)) continue;
            return cli_error(TRAIN_CMD, "--resume: %s: %s: missing (a checkpoint of `cnn train` records "
                             "every option of its run)", src->resume, key);
        }
        /* an empty text: the option was not set (--data, --init, --history, --plot) */
        int unset = o->kind == CLI_STR && !saved[0] && o->def && strcmp(o->def, "none") == 0;
        if (!unset && normalised(o, saved, theirs, sizeof theirs, msg, sizeof msg))
            return cli_error(TRAIN_CMD, "--resume: %s: %s: %s", src->resume, key, msg);
        if (unset) theirs[0] = '\0';
        if (train_listed(train_output_paths, o->name)) {
            /* where the run wrote: remembered for a note, never followed */
            if (!unset && !(src->recorded[i] = strdup(saved)))
                return cli_error(TRAIN_CMD, "out of memory");
            continue;
        }
        if (src->cmdline[i]) {
            if (strcmp(o->name, "epochs") == 0) {
                src->ckpt_epochs = atoi(theirs); /* checked by normalised() */
                continue;
            }
            if (!run) continue;
            cli_opt_format(o, mine, sizeof mine);
            if (strcmp(mine, theirs) != 0 && o->kind == CLI_FLAG)
                return cli_usage_error(TRAIN_CMD, "--%s conflicts with the checkpoint, which was made "
                                       "without it (a resumed run keeps the options of the run)",
                                       o->name);
            if (strcmp(mine, theirs) != 0)
                return cli_usage_error(TRAIN_CMD,
                                       "--%s %s conflicts with the checkpoint, which was made with "
                                       "--%s %s (a resumed run keeps the options of the run)",
                                       o->name, mine[0] ? mine : "(none)", o->name,
                                       theirs[0] ? theirs : "(none)");
            continue;
        }
        if (unset) {
            *(const char **)o->dest = NULL;
        } else {
            /* a copy: the model's metadata strings are replaced as the run
             * records its progress */
            src->owned[i] = strdup(saved);
            if (!src->owned[i]) return cli_error(TRAIN_CMD, "out of memory");
            (void)cli_opt_check(o, src->owned[i], msg, sizeof msg);
        }
        if (strcmp(o->name, "epochs") == 0) src->ckpt_epochs = *(int *)o->dest;
        o->given = 1;
    }
    return CLI_OK;
}

/* "N", or "all" / "0" for the full batch (returned as 0). */
static int parse_batch(const char *s, int *out)
{
    if (strcmp(s, "all") == 0 || strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *s == ' ' || *s == '+' || *end || v < 1 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

int train_check_options(train_cfg *c, const opt_source *src, run_choices *x)
{
    cli_opt *opts = src->opts;
    if (cnn_optim_parse(c->opt, &x->opt) != CNN_OK)
        return train_option_error(src, "opt", "expected sgd, momentum, nesterov, adam or adamw, got '%s'", c->opt);
    if (cnn_sched_parse(c->sched, &x->sched) != CNN_OK)
        return train_option_error(src, "sched", "expected constant, step or cosine, got '%s'", c->sched);
    if (cnn_loss_parse(c->loss, &x->loss) != CNN_OK)
        return train_option_error(src, "loss",
                            "expected xent, cce, bce, hinge, mse, mae or huber[:delta], got '%s'", c->loss);
    if (strcmp(c->kernels, "fast") == 0) x->kern = CNN_KERNELS_FAST;
    else if (strcmp(c->kernels, "ref") == 0) x->kern = CNN_KERNELS_REF;
    else return train_option_error(src, "kernels", "expected ref or fast, got '%s'", c->kernels);
    if (strcmp(c->init_weights, "xavier") == 0) x->init = CNN_INIT_XAVIER_NORMAL;
    else if (strcmp(c->init_weights, "xavier_uniform") == 0) x->init = CNN_INIT_XAVIER_UNIFORM;
    else if (strcmp(c->init_weights, "he") == 0) x->init = CNN_INIT_HE_NORMAL;
    else return train_option_error(src, "init-weights", "expected xavier, xavier_uniform or he, got '%s'", c->init_weights);
    if (parse_batch(c->batch, &x->batch))
        return train_option_error(src, "batch", "expected a whole number from 1 to 1000000 or 'all', got '%s'", c->batch);
    if (strcmp(c->dataset, "mnist") != 0 && strcmp(c->dataset, "fashion") != 0)
        return train_option_error(src, "dataset", "expected mnist or fashion, got '%s'", c->dataset);
    /* the preparation depends on the data set; resolved here so that it
     * is recorded */
    cnn_prep prep;
    if (!c->fit) c->fit = cnn_prep_name(cli_default_prep(c->dataset, c->data));
    if (cnn_prep_parse(c->fit, &prep) != CNN_OK)
        return train_option_error(src, "fit", "expected digit, pad or crop, got '%s'", c->fit);
    if (c->val_arg >= 1 ? c->val_arg != floor(c->val_arg) : c->val_arg < 0)
        return train_option_error(src, "val", "expected a whole number of images or a fraction below 1, "
                                  "got %g", c->val_arg);
    if (c->early_stop > 0 && c->val_arg == 0)
        return train_option_error(src, "early-stop", "needs a validation set: give --val N or a fraction "
                                  "(got --val 0)");
    if (c->best && c->val_arg == 0)
        return train_option_error(src, "best", "needs a validation set: give --val N or a fraction "
                                  "(got --val 0)");

    /* the defaults that depend on the optimizer, resolved here and recorded
     * so that a checkpoint holds the values used */
    int sgd_like = x->opt == CNN_OPT_SGD || x->opt == CNN_OPT_MOMENTUM || x->opt == CNN_OPT_NESTEROV;
    int has_momentum = x->opt == CNN_OPT_MOMENTUM || x->opt == CNN_OPT_NESTEROV;
    if (!cli_opt_find(opts, "lr")->given) c->lr = sgd_like ? DEFAULT_LR_SGD : DEFAULT_LR_ADAM;
    if (!cli_opt_find(opts, "momentum")->given) c->momentum = has_momentum ? 0.9 : 0.0;
    if (!cli_opt_find(opts, "weight-decay")->given) c->weight_decay = x->opt == CNN_OPT_ADAMW ? 0.01 : 0.0;
    if (!has_momentum && c->momentum != 0)
        return train_option_error(src, "momentum", "needs --opt momentum or nesterov (got --opt %s)", c->opt);
    if (c->min_lr > c->lr)
        return train_option_error(src, "min-lr", "%g is above the learning rate %g (--lr): the cosine "
                            "schedule falls from --lr to --min-lr", c->min_lr, c->lr);
    return CLI_OK;
}

int train_val_count(train_cfg *c, const opt_source *src, int n)
{
    if (c->val_arg >= 1 || c->val_arg == 0) {
        c->val = (int)c->val_arg;
        return CLI_OK;
    }
    c->val = (int)lround(c->val_arg * n);
    if (c->val < 1)
        return train_option_error(src, "val", "%g of %d images is no image: give a larger fraction or a "
                                  "count", c->val_arg, n);
    return CLI_OK;
}

char *train_default_best(const char *out)
{
    static const char ext[] = ".safetensors", best[] = ".best.safetensors";
    size_t n = strlen(out), e = sizeof ext - 1;
    if (n > e && strcmp(out + n - e, ext) == 0) n -= e;
    char *p = malloc(n + sizeof best);
    if (!p) return NULL;
    memcpy(p, out, n);
    memcpy(p + n, best, sizeof best);
    return p;
}

/* ------------------------------------------------------------ output files */

/* The file a path names, to tell whether two outputs are one: the folder
 * resolved, plus the name (a link followed, as the writer follows it).
 * NULL if the folder does not exist (cnn_check_writable says so). */
static char *canonical_path(const char *p)
{
    char *r = realpath(p, NULL);
    if (r) return r;
    const char *slash = strrchr(p, '/');
    char *dir = slash ? strndup(p, slash == p ? 1 : (size_t)(slash - p)) : strdup(".");
    char *rdir = dir ? realpath(dir, NULL) : NULL;
    free(dir);
    if (!rdir) return NULL;
    const char *base = slash ? slash + 1 : p;
    size_t len = strlen(rdir) + strlen(base) + 2;
    char *full = malloc(len);
    if (full) snprintf(full, len, "%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir, base);
    free(rdir);
    return full;
}

/* A device or a FIFO is written in place: two outputs may share one
 * (--history /dev/null --plot /dev/null). */
static int is_stream(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode));
}

/* A run must not train for an hour and then fail to save. */
int train_check_outputs(const train_cfg *c, const char *ckpt)
{
    struct {
        const char *what, *path;
        int input;
    } f[] = {
        {"--out", c->out, 0},    {"the checkpoint", ckpt, 0}, {"--history", c->history, 0},
        {"--plot", c->plot, 0},  {"--resume", c->resume, 1},  {"--init", c->init, 1},
        {"--best", c->best, 0},
        {"--report", c->report, 0},
    };
    enum { N = sizeof f / sizeof f[0] };
    char *canon[N] = {0};
    int rc = CLI_OK;
    for (int i = 0; i < N; i++)
        if (f[i].path && !is_stream(f[i].path)) canon[i] = canonical_path(f[i].path);
    for (int i = 0; i < N && !rc; i++)
        for (int j = i + 1; j < N && !rc; j++) {
            if (!canon[i] || !canon[j] || strcmp(canon[i], canon[j]) != 0) continue;
            if (f[i].input && f[j].input) continue;
            /* resuming from the checkpoint the run writes; training from
             * the weights of the model it replaces: both fine */
            if (strcmp(f[i].what, "the checkpoint") == 0 && strcmp(f[j].what, "--resume") == 0) continue;
            if (strcmp(f[i].what, "--out") == 0 && f[j].input) continue;
            if (strcmp(f[i].what, "the checkpoint") == 0)
                rc = cli_usage_error(TRAIN_CMD, "%s %s is the run's checkpoint (--out %s + .ckpt): give "
                                     "another name", f[j].what, f[j].path, c->out);
            else if (strcmp(f[j].what, "the checkpoint") == 0)
                rc = cli_usage_error(TRAIN_CMD, "%s %s is the run's checkpoint (--out %s + .ckpt): give "
                                     "another name", f[i].what, f[i].path, c->out);
            else
                rc = cli_usage_error(TRAIN_CMD, "%s %s and %s %s name the same file: give each output "
                                     "its own", f[i].what, f[i].path, f[j].what, f[j].path);
        }
    for (int i = 0; i < N; i++) free(canon[i]);
    if (rc) return rc;
    for (int i = 0; i < N; i++) {
        if (!f[i].path || f[i].input) continue;
        if (cnn_check_writable(f[i].path) != CNN_OK) {
            if (strcmp(f[i].what, "the checkpoint") == 0)
                return cli_error(TRAIN_CMD, "the checkpoint (--out + .ckpt): %s", cnn_errmsg());
            return cli_error(TRAIN_CMD, "%s: %s", f[i].what, cnn_errmsg());
        }
    }
    return CLI_OK;
}

/* ------------------------------------------------------- the resume command */

/* Append s to buf quoted for a POSIX shell: as is when it holds only safe
 * characters, else in single quotes (a ' written as '\''). */
static void shell_append(char *buf, size_t len, const char *s)
{
    size_t used = strlen(buf);
    int safe = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-", *p))
            safe = 0;
    if (safe) {
        snprintf(buf + used, len - used, "%s", s);
        return;
    }
    if (used + 1 < len) buf[used++] = '\'';
    for (const char *p = s; *p && used + 5 < len; p++) {
        if (*p == '\'') {
            memcpy(buf + used, "'\\''", 4);
            used += 4;
        } else {
            buf[used++] = *p;
        }
    }
    if (used + 1 < len) buf[used++] = '\'';
    buf[used < len ? used : len - 1] = '\0';
}

/* Every option given on the command line agrees with the checkpoint, so
 * giving it again is harmless and says what the run is. */
void train_resume_command(const opt_source *src, const char *ckpt, char *buf, size_t len)
{
    buf[0] = '\0';
    shell_append(buf, len, cli_program);
    strncat(buf, " train --resume ", len - strlen(buf) - 1);
    shell_append(buf, len, ckpt);
    for (int i = 0; src->opts[i].name; i++) {
        const cli_opt *o = &src->opts[i];
        if (strcmp(o->name, "resume") == 0 || strcmp(o->name, "init") == 0) continue;
        int out = train_listed(train_output_options, o->name);
        char val[4096];
        cli_opt_format(o, val, sizeof val);
        int show = src->cmdline[i] ||
                   (out && (strcmp(o->name, "out") == 0 || (val[0] && strcmp(val, "0") != 0)));
        if (!show || (o->kind == CLI_FLAG && strcmp(val, "1") != 0)) continue;
        strncat(buf, " --", len - strlen(buf) - 1);
        strncat(buf, o->name, len - strlen(buf) - 1);
        if (o->kind == CLI_FLAG) continue;
        strncat(buf, " ", len - strlen(buf) - 1);
        shell_append(buf, len, val);
    }
}
