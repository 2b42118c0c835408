/* train_options.c — the options of a `cnn train` run: taken from the
 * command line or from the checkpoint being resumed (whose values are
 * checked as strictly as the command line's, and reported as the
 * checkpoint's fault), checked together, the output paths checked before
 * any work, and the command that resumes a stopped run. */
#include "cli/train.h"

#include <math.h>
#include <ctype.h>
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

/* ------------------------------------------------------------ the table */

void train_options_init(train_cfg *c, const char **mem_limit, cli_opt *opts)
{
    *c = (train_cfg){
        .arch = "simplecnn", .dataset = "mnist", .data = NULL, .batch = "64", .opt = DEFAULT_OPT,
        .sched = DEFAULT_SCHED, .loss = "xent", .init_weights = "xavier", .kernels = "fast",
        .init = NULL, .out = "model.safetensors", .resume = NULL, .history = NULL, .plot = NULL,
        .epochs = 10, .val = 0, .val_arg = 5000, .early_stop = 0, .best = NULL, .report = NULL, .limit = 0, .test_limit = 0, .threads = 0,
        .checkpoint_every = 0, .no_shuffle = 0, .augment = 0, .lr_step = 10,
        .lr = DEFAULT_LR_ADAM, .momentum = 0, .weight_decay = 0, .clip = 0, .gamma = 0.1, .min_lr = 0,
        .seed = 1, .fit = NULL, .cache_dir = NULL, .test_split = 0.2, .strict = 0,
    };
    *mem_limit = NULL;
    const cli_opt table[] = {
        {"arch", CLI_STR, &c->arch, 0, 0, "NAME|FILE", "a preset (see `cnn --help`) or an architecture file", NULL, 0},
        {"dataset", CLI_STR, &c->dataset, 0, 0, "mnist|fashion", "a known data set under data/", NULL, 0},
        {"data", CLI_STR, &c->data, 0, 0, "PATH", "a data set instead of --dataset: a folder of IDX files, CSV files or class folders, or a CSV file (above)", "none", 0},
        {"fit", CLI_STR, &c->fit, 0, 0, "pad|crop|digit", "pictures into the input: pad (keep the aspect, pad with black), crop (centre-crop to the aspect), digit (MNIST's preparation)", "digit for --dataset mnist, else pad", 0},
        {"test-split", CLI_FLOAT_ABOVE, &c->test_split, 0, 0.99, "X", "a data set without a test split: the share held out for testing (drawn with --seed)", NULL, 0},
        {"strict", CLI_FLAG, &c->strict, 0, 0, NULL, "refuse a picture that cannot be decoded instead of skipping it", NULL, 0},
        {"cache-dir", CLI_STR, &c->cache_dir, 0, 0, "DIR", "where decoded data sets are cached when their own folder cannot be written", "$XDG_CACHE_HOME/cnn or ~/.cache/cnn", 0},
        {"epochs", CLI_INT, &c->epochs, 1, 100000, "N", "epochs to train; with --resume, more than the checkpoint's extend the run", NULL, 0},
        {"batch", CLI_STR, &c->batch, 0, 0, "N|all", "images per step; 'all' or 0 = the full training set", NULL, 0},
        {"lr", CLI_FLOAT_ABOVE, &c->lr, 0, 100, "X", "learning rate", "0.005 for adam/adamw, 0.01 for sgd/momentum/nesterov", 0},
        {"opt", CLI_STR, &c->opt, 0, 0, "NAME", "optimizer: sgd, momentum, nesterov, adam, adamw", NULL, 0},
        {"momentum", CLI_FLOAT, &c->momentum, 0, 0.999999, "X", "momentum (momentum, nesterov only)", "0.9 for momentum/nesterov", 0},
        {"weight-decay", CLI_FLOAT, &c->weight_decay, 0, 10, "X", "L2 weight decay (decoupled for adamw)", "0; 0.01 for adamw", 0},
        {"sched", CLI_STR, &c->sched, 0, 0, "NAME", "learning-rate schedule: constant, step (every --lr-step epochs), cosine (annealed every step to --min-lr)", NULL, 0},
        {"lr-step", CLI_INT, &c->lr_step, 1, 100000, "N", "step schedule: multiply the rate by --lr-gamma every N epochs", NULL, 0},
        {"lr-gamma", CLI_FLOAT_ABOVE, &c->gamma, 0, 1, "X", "step schedule's factor", NULL, 0},
        {"min-lr", CLI_FLOAT, &c->min_lr, 0, 100, "X", "cosine schedule's final rate, at most --lr", NULL, 0},
        {"clip", CLI_FLOAT, &c->clip, 0, 1e9, "X", "clip gradients to this global L2 norm; 0 = off", NULL, 0},
        {"loss", CLI_STR, &c->loss, 0, 0, "NAME", "xent, cce, bce, hinge, mse, mae, huber[:delta] (the tensor each reads: above)", NULL, 0},
        {"init-weights", CLI_STR, &c->init_weights, 0, 0, "NAME", "xavier (normal), xavier_uniform, he", NULL, 0},
        {"seed", CLI_U64, &c->seed, 0, 0, "N", "random seed (weights, shuffling, dropout, augmentation)", NULL, 0},
        {"threads", CLI_INT, &c->threads, 0, 1024, "N", "threads for the kernels; 0 = automatic: up to every core, fewer while fewer train faster (a busy machine); the same bits at any count", NULL, 0},
        {"kernels", CLI_STR, &c->kernels, 0, 0, "ref|fast", "textbook loops or im2col + GEMM", NULL, 0},
        {"val", CLI_FLOAT, &c->val_arg, 0, 100000000, "N|F", "validation images, the last N of the training file, or a fraction F of it (0.1: a tenth, rounded to the nearest image)", NULL, 0},
        {"early-stop", CLI_INT, &c->early_stop, 0, 100000, "N", "stop after N epochs without a lower validation loss (needs --val); the model saved is the last epoch's, --best keeps the best", "0 (off)", 0},
        {"best", CLI_STR, &c->best, 0, 0, "FILE", "also save the model of the epoch with the lowest validation loss, whenever one is lower (needs --val); with --early-stop, <out without .safetensors>.best.safetensors unless given", "none", 0},
        {"limit", CLI_INT, &c->limit, 0, 100000000, "N", "train on the first N images only; 0 = all", "0 (all)", 0},
        {"test-limit", CLI_INT, &c->test_limit, 0, 100000000, "N", "test on the first N test images only; 0 = all", "0 (all)", 0},
        {"no-shuffle", CLI_FLAG, &c->no_shuffle, 0, 0, NULL, "keep the file's order (the seed did)", NULL, 0},
        {"augment", CLI_FLAG, &c->augment, 0, 0, NULL, "random shifts (up to 2 px) and rotations (up to 10 degrees)", NULL, 0},
        {"init", CLI_STR, &c->init, 0, 0, "FILE", "start from the weights of a model file", "none", 0},
        {"out", CLI_STR, &c->out, 0, 0, "FILE", "where to save the trained model", NULL, 0},
        {"checkpoint-every", CLI_INT, &c->checkpoint_every, 0, 100000, "N", "save <out>.ckpt every N epochs and at the end; 0 = only when stopped by a signal", "0", 0},
        {"resume", CLI_STR, &c->resume, 0, 0, "CKPT", "continue a run from its checkpoint (see above)", "none", 0},
        {"history", CLI_STR, &c->history, 0, 0, "FILE.csv", "write per-epoch loss and accuracy as CSV", "none", 0},
        {"plot", CLI_STR, &c->plot, 0, 0, "FILE.svg", "write loss and accuracy curves as SVG", "none", 0},
        {"report", CLI_STR, &c->report, 0, 0, "FILE.html", "write the report page at the end (see cnn report --help)", "none", 0},
        {"mem-limit", CLI_STR, mem_limit, 0, 0, "SIZE", CLI_MEM_LIMIT_HELP, CLI_MEM_LIMIT_DEFAULT, 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    _Static_assert(sizeof table / sizeof table[0] == TRAIN_NOPTS + 1, "TRAIN_NOPTS is not the table's size");
    _Static_assert(TRAIN_NOPTS <= TRAIN_MAX_OPTS, "opt_source holds too few options");
    memcpy(opts, table, sizeof table);
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

void train_source_init(opt_source *src, cli_opt *opts, const char *resume)
{
    memset(src, 0, sizeof *src);
    src->opts = opts;
    src->resume = resume;
    for (int i = 0; opts[i].name; i++) src->cmdline[i] = opts[i].given;
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
    /* a digit first: strtol would skip any white space and take a sign */
    char *end;
    long v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || v < 1 || v > 1000000) return -1;
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

void train_shape(const train_cfg *c, int train_n, int *batch, int *ntrain, int *steps)
{
    int n = train_n;
    if (c->limit > 0 && c->limit < n) n = c->limit;
    if (*batch == 0 || *batch > n) *batch = n;
    *ntrain = n;
    *steps = (n + *batch - 1) / *batch;
}

int train_record_options(const cli_opt *opts, cli_meta_set set, void *ctx, int checkpoint)
{
    char key[64], val[4096];
    int rc = 0;
    for (int i = 0; opts[i].name; i++) {
        const cli_opt *o = &opts[i];
        int run = train_listed(train_run_options, o->name);
        if (!run && !train_listed(train_output_options, o->name)) continue;
        snprintf(key, sizeof key, "train.%s.%s", run ? "opt" : "out", o->name);
        cli_opt_format(o, val, sizeof val);
        rc |= set(ctx, key, run || checkpoint ? val : NULL);
    }
    return rc ? -1 : 0;
}

/* A loss the model cannot feed is the fault of whoever chose it: the
 * command line (exit 2), or the checkpoint being resumed (exit 1). */
int train_check_loss(const cnn_model *m, const opt_source *src, cnn_loss loss)
{
    if (cnn_model_check_loss(m, loss) != CNN_OK) return train_option_error(src, "loss", "%s", cnn_errmsg());
    return CLI_OK;
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
