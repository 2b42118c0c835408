/* train.c — `cnn train`: the training loop of the seed report (section 3.4)
 * at full scale: mini-batches (or the full batch), an optimizer and a
 * schedule, validation per epoch, checkpoints that resume bit-identically,
 * Ctrl-C and SIGTERM that save, and the test report at the end.
 *
 * The run's options are recorded in every checkpoint and model file
 * (train.opt.*); a checkpoint adds where the output goes (train.out.*) and
 * the training state (src/cli/checkpoint.c). */
#include "cli/checkpoint.h"
#include "cli/cli.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *CMD = "train";

/* The defaults; the learning rate depends on the optimizer. */
#define DEFAULT_OPT "sgd"
#define DEFAULT_SCHED "constant"
#define DEFAULT_LR_SGD 0.01   /* sgd, momentum, nesterov */
#define DEFAULT_LR_ADAM 0.001 /* adam, adamw */

typedef struct {
    const char *arch, *dataset, *data, *batch, *opt, *sched, *loss, *init_weights, *kernels;
    const char *init, *out, *resume, *history, *plot;
    int epochs, val, limit, test_limit, threads, checkpoint_every, no_shuffle, augment, lr_step;
    double lr, momentum, weight_decay, clip, gamma, min_lr;
    uint64_t seed;
} train_cfg;

/* Options that shape the run or what it reports: a checkpoint and a model
 * file record them (train.opt.NAME), --resume takes them from the
 * checkpoint, and given again they must agree (--epochs may grow: that
 * extends the run). */
static const char *const run_options[] = {
    "arch", "dataset", "data", "epochs", "batch", "lr", "opt", "momentum", "weight-decay",
    "sched", "lr-step", "lr-gamma", "min-lr", "clip", "loss", "init-weights", "seed", "val",
    "limit", "test-limit", "no-shuffle", "augment", "init", "kernels", NULL};
/* Options that only say where the output goes or how fast (the weights are
 * the same bits at any thread count): a checkpoint records them
 * (train.out.NAME) and --resume takes them unless they are given anew. */
static const char *const output_options[] = {"out", "history", "plot", "threads",
                                             "checkpoint-every", NULL};

static int listed(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------- signals */

/* The first SIGINT or SIGTERM asks the run to stop at the next batch (of
 * training or evaluation) and save; later ones change nothing. The handler
 * stays installed: a second Ctrl-C never kills a save half-way. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig)
{
    if (!stop_signal) stop_signal = sig;
}

static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Every save runs with SIGINT and SIGTERM blocked in this thread (the
 * thread's sigprocmask: the process has OpenMP threads): a signal that
 * arrives then is held until the file is whole, and none of the save's
 * system calls sees EINTR. */
static void block_stops(sigset_t *old)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

static void unblock_stops(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

static const char *signal_name(int sig) { return sig == SIGTERM ? "SIGTERM" : "SIGINT (Ctrl-C)"; }

/* ------------------------------------------------------------ helpers */

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void fisher_yates(int *perm, int n, cnn_rng *r)
{
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(r, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void fmt_lr(char *buf, size_t len, double lr)
{
    if (lr >= 1e-4 || lr == 0) snprintf(buf, len, "%.4f", lr);
    else snprintf(buf, len, "%.2e", lr);
}

/* A dataset view of images [first, first + n) sharing the parent's memory. */
static cnn_dataset view(const cnn_dataset *d, int first, int n)
{
    cnn_dataset v = *d;
    size_t px = (size_t)d->c * d->h * d->w;
    v.images = d->images + (size_t)first * px;
    v.labels = d->labels + first;
    v.n = n;
    return v;
}

static const char *meta_get(const void *ctx, const char *key)
{
    return cnn_model_get_meta((const cnn_model *)ctx, key);
}

static int meta_set(void *ctx, const char *key, const char *value)
{
    if (!value) {
        cnn_model_unset_meta(ctx, key);
        return 0;
    }
    return cnn_model_set_meta(ctx, key, value) == CNN_OK ? 0 : -1;
}

/* ------------------------------------------------- where options come from */

/* The command line's options and, with --resume, the checkpoint's. */
typedef struct {
    cli_opt *opts;
    int cmdline[64];     /* given on the command line (by index in opts) */
    const char *resume;  /* the checkpoint, or NULL */
    int ckpt_epochs;     /* the epochs the checkpoint's run was set to */
    char *owned[64];     /* values copied out of the checkpoint */
} opt_source;

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

/* A bad value of option `name`: a usage error (exit 2) if it was given on
 * the command line, else a data error (exit 1) naming the checkpoint and
 * its field. */
static int option_error(const opt_source *src, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int option_error(const opt_source *src, const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (src->resume && !from_cmdline(src, name))
        return cli_error(CMD, "--resume: %s: train.opt.%s: %s", src->resume, name, msg);
    return cli_usage_error(CMD, "--%s: %s", name, msg);
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

/* Take the run's options from a checkpoint. One given on the command line
 * must agree with it, but for --epochs (a different count extends or ends
 * the run elsewhere: checked once the state is read); the output options
 * given anew replace the checkpoint's. */
static int options_from_checkpoint(cnn_model *ck, opt_source *src)
{
    for (int i = 0; src->opts[i].name; i++) {
        cli_opt *o = &src->opts[i];
        int run = listed(run_options, o->name);
        if (!run && !listed(output_options, o->name)) continue;
        char key[64], mine[4096], theirs[4096], msg[256];
        snprintf(key, sizeof key, "train.%s.%s", run ? "opt" : "out", o->name);
        const char *saved = cnn_model_get_meta(ck, key);
        if (!saved) {
            if (!run) continue; /* the default, or what the command line says */
            return cli_error(CMD, "--resume: %s: %s: missing (a checkpoint of `cnn train` records "
                             "every option of its run)", src->resume, key);
        }
        /* an empty text: the option was not set (--data, --init, --history, --plot) */
        int unset = o->kind == CLI_STR && !saved[0] && o->def && strcmp(o->def, "none") == 0;
        if (!unset && normalised(o, saved, theirs, sizeof theirs, msg, sizeof msg))
            return cli_error(CMD, "--resume: %s: %s: %s", src->resume, key, msg);
        if (unset) theirs[0] = '\0';
        if (src->cmdline[i]) {
            if (strcmp(o->name, "epochs") == 0) {
                src->ckpt_epochs = atoi(theirs); /* checked by normalised() */
                continue;
            }
            if (!run) continue;
            cli_opt_format(o, mine, sizeof mine);
            if (strcmp(mine, theirs) != 0 && o->kind == CLI_FLAG)
                return cli_usage_error(CMD, "--%s conflicts with the checkpoint, which was made "
                                       "without it (a resumed run keeps the options of the run)",
                                       o->name);
            if (strcmp(mine, theirs) != 0)
                return cli_usage_error(CMD,
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
            if (!src->owned[i]) return cli_error(CMD, "out of memory");
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

/* What the option texts mean, checked together. */
typedef struct {
    cnn_opt_kind opt;
    cnn_sched_kind sched;
    cnn_loss loss;
    cnn_kernels kern;
    cnn_init init;
    int batch; /* 0: the full training set */
} run_choices;

static int check_options(train_cfg *c, const opt_source *src, run_choices *x)
{
    cli_opt *opts = src->opts;
    if (cnn_optim_parse(c->opt, &x->opt) != CNN_OK)
        return option_error(src, "opt", "expected sgd, momentum, nesterov, adam or adamw, got '%s'", c->opt);
    if (cnn_sched_parse(c->sched, &x->sched) != CNN_OK)
        return option_error(src, "sched", "expected constant, step or cosine, got '%s'", c->sched);
    if (cnn_loss_parse(c->loss, &x->loss) != CNN_OK)
        return option_error(src, "loss",
                            "expected xent, cce, bce, hinge, mse, mae or huber[:delta], got '%s'", c->loss);
    if (strcmp(c->kernels, "fast") == 0) x->kern = CNN_KERNELS_FAST;
    else if (strcmp(c->kernels, "ref") == 0) x->kern = CNN_KERNELS_REF;
    else return option_error(src, "kernels", "expected ref or fast, got '%s'", c->kernels);
    if (strcmp(c->init_weights, "xavier") == 0) x->init = CNN_INIT_XAVIER_NORMAL;
    else if (strcmp(c->init_weights, "xavier_uniform") == 0) x->init = CNN_INIT_XAVIER_UNIFORM;
    else if (strcmp(c->init_weights, "he") == 0) x->init = CNN_INIT_HE_NORMAL;
    else return option_error(src, "init-weights", "expected xavier, xavier_uniform or he, got '%s'", c->init_weights);
    if (parse_batch(c->batch, &x->batch))
        return option_error(src, "batch", "expected a whole number from 1 to 1000000 or 'all', got '%s'", c->batch);
    if (strcmp(c->dataset, "mnist") != 0 && strcmp(c->dataset, "fashion") != 0)
        return option_error(src, "dataset", "expected mnist or fashion, got '%s'", c->dataset);

    /* the defaults that depend on the optimizer, resolved here and recorded
     * so that a checkpoint holds the values used */
    int sgd_like = x->opt == CNN_OPT_SGD || x->opt == CNN_OPT_MOMENTUM || x->opt == CNN_OPT_NESTEROV;
    int has_momentum = x->opt == CNN_OPT_MOMENTUM || x->opt == CNN_OPT_NESTEROV;
    if (!cli_opt_find(opts, "lr")->given) c->lr = sgd_like ? DEFAULT_LR_SGD : DEFAULT_LR_ADAM;
    if (!cli_opt_find(opts, "momentum")->given) c->momentum = has_momentum ? 0.9 : 0.0;
    if (!cli_opt_find(opts, "weight-decay")->given) c->weight_decay = x->opt == CNN_OPT_ADAMW ? 0.01 : 0.0;
    if (!has_momentum && c->momentum != 0)
        return option_error(src, "momentum", "needs --opt momentum or nesterov (got --opt %s)", c->opt);
    if (c->min_lr > c->lr)
        return option_error(src, "min-lr", "%g is above the learning rate %g (--lr): the cosine "
                            "schedule falls from --lr to --min-lr", c->min_lr, c->lr);
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

/* Every output is checked before any work: no two name the same file (exit
 * 2), none overwrites the checkpoint or model the run reads, and each can
 * be written (exit 1): a run must not train for an hour and then fail to
 * save. */
static int check_outputs(const train_cfg *c, const char *ckpt)
{
    struct {
        const char *what, *path;
        int input;
    } f[] = {
        {"--out", c->out, 0},    {"the checkpoint", ckpt, 0}, {"--history", c->history, 0},
        {"--plot", c->plot, 0},  {"--resume", c->resume, 1},  {"--init", c->init, 1},
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
                rc = cli_usage_error(CMD, "%s %s is the run's checkpoint (--out %s + .ckpt): give "
                                     "another name", f[j].what, f[j].path, c->out);
            else if (strcmp(f[j].what, "the checkpoint") == 0)
                rc = cli_usage_error(CMD, "%s %s is the run's checkpoint (--out %s + .ckpt): give "
                                     "another name", f[i].what, f[i].path, c->out);
            else
                rc = cli_usage_error(CMD, "%s %s and %s %s name the same file: give each output "
                                     "its own", f[i].what, f[i].path, f[j].what, f[j].path);
        }
    for (int i = 0; i < N; i++) free(canon[i]);
    if (rc) return rc;
    for (int i = 0; i < N; i++) {
        if (!f[i].path || f[i].input) continue;
        if (cnn_check_writable(f[i].path) != CNN_OK) {
            if (strcmp(f[i].what, "the checkpoint") == 0)
                return cli_error(CMD, "the checkpoint (--out + .ckpt): %s", cnn_errmsg());
            return cli_error(CMD, "%s: %s", f[i].what, cnn_errmsg());
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

/* "cnn train --resume CKPT" with every option given on the command line
 * (they agree with the checkpoint) and every output option in effect. */
static void resume_command(const opt_source *src, const char *ckpt, char *buf, size_t len)
{
    buf[0] = '\0';
    shell_append(buf, len, cli_program);
    strncat(buf, " train --resume ", len - strlen(buf) - 1);
    shell_append(buf, len, ckpt);
    for (int i = 0; src->opts[i].name; i++) {
        const cli_opt *o = &src->opts[i];
        if (strcmp(o->name, "resume") == 0 || strcmp(o->name, "init") == 0) continue;
        int out = listed(output_options, o->name);
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

/* ------------------------------------------------------ the training run */

typedef struct {
    train_cfg *cfg;
    opt_source *src;
    cnn_model *m;
    cli_ckpt_state st;       /* where the run stands, the history */
    char test_accuracy[32];  /* "" until measured */
    char ckpt_path[4096];
} run_state;

/* Write the record of the run into the model's metadata: a checkpoint needs
 * it to resume, a final model keeps it as a record of how it was made.
 * Every key, always in this order: a resumed run's file then matches an
 * uninterrupted run's byte for byte. */
static int record_state(run_state *rs, int checkpoint)
{
    char buf[64], key[64], val[4096];
    int rc = 0;
    snprintf(buf, sizeof buf, "%d", rs->cfg->epochs);
    rc |= meta_set(rs->m, "epochs", buf);
    rc |= meta_set(rs->m, "test_accuracy", rs->test_accuracy);
    rc |= cli_ckpt_state_write(meta_set, rs->m, &rs->st, checkpoint);
    for (int i = 0; rs->src->opts[i].name; i++) {
        const cli_opt *o = &rs->src->opts[i];
        int run = listed(run_options, o->name);
        if (!run && !listed(output_options, o->name)) continue;
        snprintf(key, sizeof key, "train.%s.%s", run ? "opt" : "out", o->name);
        cli_opt_format(o, val, sizeof val);
        rc |= meta_set(rs->m, key, run || checkpoint ? val : NULL);
    }
    return rc ? cli_error(CMD, "%s", cnn_errmsg()) : CLI_OK;
}

static int save_checkpoint(run_state *rs)
{
    sigset_t old;
    block_stops(&old);
    int rc = record_state(rs, 1);
    if (!rc && cnn_model_save(rs->m, rs->ckpt_path, 1) != CNN_OK)
        rc = cli_error(CMD, "cannot save the checkpoint: %s", cnn_errmsg());
    unblock_stops(&old);
    return rc;
}

static int save_model(run_state *rs)
{
    sigset_t old;
    block_stops(&old);
    int rc = record_state(rs, 0);
    if (!rc && cnn_model_save(rs->m, rs->cfg->out, 0) != CNN_OK)
        rc = cli_error(CMD, "cannot save the model: %s", cnn_errmsg());
    unblock_stops(&old);
    return rc;
}

/* The history CSV and the curves, after each epoch. */
static int save_curves(run_state *rs, const char *dsname)
{
    const train_cfg *c = rs->cfg;
    sigset_t old;
    block_stops(&old);
    int rc = CLI_OK;
    if (c->history && cli_history_csv(c->history, rs->st.rows, rs->st.nrows))
        rc = cli_error(CMD, "--history: %s", cnn_errmsg());
    if (!rc && c->plot) {
        char title[512];
        snprintf(title, sizeof title, "%s on %s", c->arch, dsname);
        if (cli_plot_svg(c->plot, title, rs->st.rows, rs->st.nrows))
            rc = cli_error(CMD, "--plot: %s", cnn_errmsg());
    }
    unblock_stops(&old);
    return rc;
}

/* A signal asked the run to stop: save the checkpoint (where the run
 * stands) and the model so far, say how to resume, exit 128 + signal. */
static int stop_run(run_state *rs, const char *where)
{
    int sig = stop_signal;
    int rc = save_checkpoint(rs);
    if (!rc) rc = save_model(rs);
    if (rc) return rc;
    char cmd[16384];
    resume_command(rs->src, rs->ckpt_path, cmd, sizeof cmd);
    fprintf(stderr,
            "\ncnn train: stopped by %s %s; saved the checkpoint to %s and the model so far to %s\n"
            "Resume with: %s\n",
            signal_name(sig), where, rs->ckpt_path, rs->cfg->out, cmd);
    return 128 + sig;
}

static const char *about =
    "Train a model on an IDX data set and print the test set's classification report.\n"
    "The validation set is the last --val images of the training file; --limit keeps the\n"
    "first N of the rest. Inputs are normalised with the training pixels' mean and std,\n"
    "stored in the model file with the class names.\n"
    "\n"
    "Checkpoints: --checkpoint-every N saves <out>.ckpt every N epochs and at the end of\n"
    "the run; Ctrl-C or SIGTERM saves it and the model so far, and prints the command\n"
    "that resumes. --resume <out>.ckpt continues with the options the run was started\n"
    "with (given again they must agree; --out, --history, --plot, --threads and\n"
    "--checkpoint-every may change) and ends with the same bits as an uninterrupted run.\n"
    "A larger --epochs extends the run, a finished one too:\n"
    "  cnn train --arch lenet5 --epochs 5 --checkpoint-every 5 --out m.safetensors\n"
    "  cnn train --resume m.safetensors.ckpt --epochs 8\n"
    "\n"
    "The seed report's experiment (section 3.4), every setting explicit:\n"
    "  cnn train --arch simplecnn --limit 300 --val 50 --test-limit 100 --batch all \\\n"
    "            --opt sgd --lr 0.07 --sched constant --epochs 40 --no-shuffle";

int cli_train(int argc, char **argv)
{
    train_cfg c = {
        .arch = "simplecnn", .dataset = "mnist", .data = NULL, .batch = "64", .opt = DEFAULT_OPT,
        .sched = DEFAULT_SCHED, .loss = "xent", .init_weights = "xavier", .kernels = "fast",
        .init = NULL, .out = "model.safetensors", .resume = NULL, .history = NULL, .plot = NULL,
        .epochs = 10, .val = 5000, .limit = 0, .test_limit = 0, .threads = 0,
        .checkpoint_every = 0, .no_shuffle = 0, .augment = 0, .lr_step = 10,
        .lr = DEFAULT_LR_SGD, .momentum = 0, .weight_decay = 0, .clip = 0, .gamma = 0.1, .min_lr = 0,
        .seed = 1,
    };
    cli_opt opts[] = {
        {"arch", CLI_STR, &c.arch, 0, 0, "NAME|FILE", "a preset (see `cnn --help`) or an architecture file", NULL, 0},
        {"dataset", CLI_STR, &c.dataset, 0, 0, "mnist|fashion", "a known data set under data/", NULL, 0},
        {"data", CLI_STR, &c.data, 0, 0, "DIR", "a directory of IDX files (raw or .gz) instead of --dataset", "none", 0},
        {"epochs", CLI_INT, &c.epochs, 1, 100000, "N", "epochs to train; with --resume, more than the checkpoint's extend the run", NULL, 0},
        {"batch", CLI_STR, &c.batch, 0, 0, "N|all", "images per step; 'all' or 0 = the full training set", NULL, 0},
        {"lr", CLI_FLOAT_ABOVE, &c.lr, 0, 100, "X", "learning rate", "0.01 for sgd/momentum/nesterov, 0.001 for adam/adamw", 0},
        {"opt", CLI_STR, &c.opt, 0, 0, "NAME", "optimizer: sgd, momentum, nesterov, adam, adamw", NULL, 0},
        {"momentum", CLI_FLOAT, &c.momentum, 0, 0.999999, "X", "momentum (momentum, nesterov only)", "0.9 for momentum/nesterov", 0},
        {"weight-decay", CLI_FLOAT, &c.weight_decay, 0, 10, "X", "L2 weight decay (decoupled for adamw)", "0; 0.01 for adamw", 0},
        {"sched", CLI_STR, &c.sched, 0, 0, "NAME", "learning-rate schedule: constant, step (every --lr-step epochs), cosine (annealed every step to --min-lr)", NULL, 0},
        {"lr-step", CLI_INT, &c.lr_step, 1, 100000, "N", "step schedule: multiply the rate by --lr-gamma every N epochs", NULL, 0},
        {"lr-gamma", CLI_FLOAT_ABOVE, &c.gamma, 0, 1, "X", "step schedule's factor", NULL, 0},
        {"min-lr", CLI_FLOAT, &c.min_lr, 0, 100, "X", "cosine schedule's final rate, at most --lr", NULL, 0},
        {"clip", CLI_FLOAT, &c.clip, 0, 1e9, "X", "clip gradients to this global L2 norm; 0 = off", NULL, 0},
        {"loss", CLI_STR, &c.loss, 0, 0, "NAME", "xent, cce, bce, hinge, mse, mae, huber[:delta]", NULL, 0},
        {"init-weights", CLI_STR, &c.init_weights, 0, 0, "NAME", "xavier (normal), xavier_uniform, he", NULL, 0},
        {"seed", CLI_U64, &c.seed, 0, 0, "N", "random seed (weights, shuffling, dropout, augmentation)", NULL, 0},
        {"threads", CLI_INT, &c.threads, 0, 1024, "N", "threads for the kernels; 0 = all cores (the same bits at any count)", NULL, 0},
        {"kernels", CLI_STR, &c.kernels, 0, 0, "ref|fast", "textbook loops or im2col + GEMM", NULL, 0},
        {"val", CLI_INT, &c.val, 0, 100000000, "N", "validation images, the last N of the training file", NULL, 0},
        {"limit", CLI_INT, &c.limit, 0, 100000000, "N", "train on the first N images only; 0 = all", "0 (all)", 0},
        {"test-limit", CLI_INT, &c.test_limit, 0, 100000000, "N", "test on the first N test images only; 0 = all", "0 (all)", 0},
        {"no-shuffle", CLI_FLAG, &c.no_shuffle, 0, 0, NULL, "keep the file's order (the seed did)", NULL, 0},
        {"augment", CLI_FLAG, &c.augment, 0, 0, NULL, "random shifts (up to 2 px) and rotations (up to 10 degrees)", NULL, 0},
        {"init", CLI_STR, &c.init, 0, 0, "FILE", "start from the weights of a model file", "none", 0},
        {"out", CLI_STR, &c.out, 0, 0, "FILE", "where to save the trained model", NULL, 0},
        {"checkpoint-every", CLI_INT, &c.checkpoint_every, 0, 100000, "N", "save <out>.ckpt every N epochs and at the end; 0 = only when stopped by a signal", "0", 0},
        {"resume", CLI_STR, &c.resume, 0, 0, "CKPT", "continue a run from its checkpoint (see above)", "none", 0},
        {"history", CLI_STR, &c.history, 0, 0, "FILE.csv", "write per-epoch loss and accuracy as CSV", "none", 0},
        {"plot", CLI_STR, &c.plot, 0, 0, "FILE.svg", "write loss and accuracy curves as SVG", "none", 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    int rc = cli_parse(CMD, argc, argv, opts, NULL, 0, NULL);
    if (rc < 0) {
        cli_print_help(stdout, CMD, "[options]", about, opts);
        return CLI_OK;
    }
    if (rc) return rc;

    opt_source src;
    memset(&src, 0, sizeof src);
    src.opts = opts;
    src.resume = c.resume;
    for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;

    cnn_model *m = NULL;
    cnn_dataset train = {0}, test = {0};
    float *xbuf = NULL;
    uint8_t *lbuf = NULL, *predicted = NULL;
    int *perm = NULL;
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = &c;
    rs.src = &src;
    cli_confusion conf = {0};

    /* ---- options that conflict, before any work */
    if (c.resume && c.init) {
        rc = cli_usage_error(CMD, "--resume and --init conflict: a checkpoint already holds the weights");
        goto done;
    }
    if (c.data && cli_opt_find(opts, "dataset")->given) {
        rc = cli_usage_error(CMD, "--data and --dataset conflict: give one");
        goto done;
    }

    /* ---- the options: from the command line, or a checkpoint's */
    if (c.resume) {
        if ((rc = cli_load_model(CMD, c.resume, &m))) goto done;
        if (!cli_ckpt_is_checkpoint(meta_get, m)) {
            rc = cli_error(CMD,
                           "--resume: %s is a model file, not a checkpoint: it holds the weights but "
                           "not the optimizer's state. Resume from the run's checkpoint (<out>.ckpt: "
                           "written by --checkpoint-every N, at the end of such a run, and when a "
                           "signal stops it), or start a new run from these weights with --init %s",
                           c.resume, c.resume);
            goto done;
        }
        if ((rc = options_from_checkpoint(m, &src))) goto done;
    }
    run_choices rc_x;
    if ((rc = check_options(&c, &src, &rc_x))) goto done;
    int batch = rc_x.batch;

    /* ---- every output, before any work */
    snprintf(rs.ckpt_path, sizeof rs.ckpt_path, "%s.ckpt", c.out);
    if ((rc = check_outputs(&c, rs.ckpt_path))) goto done;

    /* ---- the model, built and initialised for a new run */
    if (!c.resume) {
        if ((rc = cli_build_model(CMD, c.arch, &m))) goto done;
        if (cnn_model_init(m, rc_x.init, c.seed) != CNN_OK) {
            rc = cli_error(CMD, "%s", cnn_errmsg());
            goto done;
        }
        if (c.init && cnn_model_load_weights(m, c.init) != CNN_OK) {
            rc = cli_error(CMD, "--init: %s", cnn_errmsg());
            goto done;
        }
        /* the data RNG is separate from the model's (weights, dropout) so
         * that shuffling does not change when the architecture does */
        cnn_rng_seed(&rs.st.epoch_rng, c.seed ^ 0x9e3779b97f4a7c15ULL);
    }

    cnn_optim_config oc = cnn_optim_defaults(rc_x.opt);
    oc.lr = (float)c.lr;
    oc.momentum = (float)c.momentum;
    oc.weight_decay = (float)c.weight_decay;
    oc.clip_norm = (float)c.clip;
    oc.sched = rc_x.sched;
    oc.step_epochs = c.lr_step;
    oc.gamma = (float)c.gamma;
    oc.min_lr = (float)c.min_lr;
    cnn_loss loss = rc_x.loss;

    /* ---- the data */
    char dir[4096];
    if ((rc = cli_load_dataset(CMD, c.dataset, c.data, 0, &train, dir, sizeof dir))) goto done;
    if ((rc = cli_load_dataset(CMD, c.dataset, c.data, 1, &test, NULL, 0))) goto done;
    int ic, ih, iw;
    cnn_model_input_shape(m, &ic, &ih, &iw);
    if (train.c != ic || train.h != ih || train.w != iw) {
        rc = cli_error(CMD, "the model takes %dx%dx%d images but the training split in %s holds %dx%dx%d",
                       ic, ih, iw, dir, train.c, train.h, train.w);
        goto done;
    }
    if (test.c != ic || test.h != ih || test.w != iw) {
        rc = cli_error(CMD, "the model takes %dx%dx%d images but the test split in %s holds %dx%dx%d "
                       "(its training split: %dx%dx%d)",
                       ic, ih, iw, dir, test.c, test.h, test.w, train.c, train.h, train.w);
        goto done;
    }
    int k = cnn_model_output_size(m);
    int classes = train.classes > test.classes ? train.classes : test.classes;
    if (classes > k) {
        rc = cli_error(CMD, "%s has %d classes but the model has only %d outputs", dir, classes, k);
        goto done;
    }
    if (c.val >= train.n) {
        rc = option_error(&src, "val", "%d leaves no training images (the training file holds %d)",
                          c.val, train.n);
        goto done;
    }
    int ntrain = train.n - c.val;
    if (c.limit > 0 && c.limit < ntrain) ntrain = c.limit;
    cnn_dataset tr = view(&train, 0, ntrain);
    cnn_dataset va = view(&train, train.n - c.val, c.val);
    int ntest = c.test_limit > 0 && c.test_limit < test.n ? c.test_limit : test.n;
    const char *dsname = c.data ? "custom" : c.dataset;
    if (batch == 0 || batch > ntrain) batch = ntrain;
    int steps = (ntrain + batch - 1) / batch;

    /* ---- where a resumed run stands, checked against the run */
    if (c.resume) {
        cli_ckpt_run run = {src.ckpt_epochs, steps, batch, ntrain, c.val > 0};
        char msg[512];
        if (cli_ckpt_state_read(meta_get, m, &run, &rs.st, msg, sizeof msg)) {
            rc = cli_error(CMD, "--resume: %s: %s", c.resume, msg);
            goto done;
        }
        int started = rs.st.epoch + (rs.st.step > 0);
        if (c.epochs < started) {
            rc = cli_usage_error(CMD, "--epochs %d: the checkpoint %s has already trained %d epoch%s%s; "
                                 "give --epochs %d or more (more than %d extend the run)",
                                 c.epochs, c.resume, rs.st.epoch, rs.st.epoch == 1 ? "" : "s",
                                 rs.st.step > 0 ? " and part of the next" : "", started,
                                 src.ckpt_epochs);
            goto done;
        }
    }

    /* ---- normalisation and class names, recorded in the model */
    cli_norm nm;
    cli_classes names;
    if (c.resume) {
        if ((rc = cli_norm_from_model(CMD, m, &nm))) goto done;
    } else {
        double mean, sd;
        cli_pixel_stats(tr.images, (size_t)tr.n * ic * ih * iw, &mean, &sd);
        cli_norm_init(&nm, (float)mean, (float)sd);
        char buf[64];
        snprintf(buf, sizeof buf, "%.9g", nm.mean);
        rc |= meta_set(m, "norm_mean", buf);
        snprintf(buf, sizeof buf, "%.9g", nm.std);
        rc |= meta_set(m, "norm_std", buf);
        cli_default_classes(c.data ? NULL : c.dataset, k, &names);
        char cls[CLI_MAX_CLASSES * 41];
        cli_classes_join(&names, cls, sizeof cls);
        rc |= meta_set(m, "classes", cls);
        rc |= meta_set(m, "dataset", dsname);
        if (rc) {
            rc = cli_error(CMD, "%s", cnn_errmsg());
            goto done;
        }
    }
    cli_classes_parse(cnn_model_get_meta(m, "classes"), &names);
    if (names.n < k) cli_default_classes(NULL, k, &names);

    rs.m = m;
    if ((rc = record_state(&rs, 0))) goto done;

    /* ---- the machine */
    cnn_set_threads(c.threads);
    cnn_model_set_kernels(m, rc_x.kern);
    int max_batch = batch > 256 ? batch : 256;
    if (cnn_model_set_batch(m, max_batch) != CNN_OK || cnn_model_set_optimizer(m, &oc) != CNN_OK) {
        rc = cli_error(CMD, "%s", cnn_errmsg());
        goto done;
    }
    size_t px = (size_t)ic * ih * iw;
    xbuf = cnn_alloc(sizeof(float) * px * (size_t)max_batch, "the input batch");
    lbuf = malloc((size_t)max_batch);
    perm = malloc(sizeof(int) * (size_t)ntrain);
    predicted = malloc((size_t)ntest);
    if (!xbuf || !lbuf || !perm || !predicted) {
        rc = cli_error(CMD, "out of memory for batches of %d images", max_batch);
        goto done;
    }

    printf("cnn train: %s, %zu parameters, on %s (%s): %d training, %d validation, %d test images\n",
           c.arch, cnn_model_num_params(m), dsname, dir, ntrain, c.val, ntest);
    printf("batch %d, %s lr %g, %s schedule, loss %s, %d epoch%s, %d thread%s, %s kernels (%s)%s%s\n",
           batch, c.opt, c.lr, c.sched, c.loss, c.epochs, c.epochs == 1 ? "" : "s", cnn_get_threads(),
           cnn_get_threads() == 1 ? "" : "s", rc_x.kern == CNN_KERNELS_FAST ? "fast" : "ref",
           cnn_simd_name(), c.augment ? ", augmented" : "", c.no_shuffle ? ", not shuffled" : "");
    if (c.resume) {
        printf("resuming %s at epoch %d, step %d", c.resume, rs.st.epoch + 1, rs.st.step);
        if (c.epochs != src.ckpt_epochs)
            printf(" (the run %s from %d to %d epochs)", c.epochs > src.ckpt_epochs ? "extended" : "cut",
                   src.ckpt_epochs, c.epochs);
        printf("\n");
    }
    fflush(stdout);

    install_stop_handlers();
    /* a resumed run's history file holds the earlier epochs at once */
    if (c.resume && rs.st.nrows > 0 && (rc = save_curves(&rs, dsname))) goto done;

    /* ---- the epochs */
    double t_start = cli_now(), train_seconds = 0;
    long images_trained = 0;
    while (rs.st.epoch < c.epochs) {
        float lr = cnn_optim_lr_at(&oc, rs.st.epoch, c.epochs);
        cnn_model_set_lr(m, lr);
        /* the epoch's order and augmentation follow from the data RNG's
         * state at its start: a resumed epoch replays them */
        cnn_rng drng = rs.st.epoch_rng;
        if (c.no_shuffle)
            for (int i = 0; i < ntrain; i++) perm[i] = i;
        else
            fisher_yates(perm, ntrain, &drng);
        for (int s = 0; s < rs.st.step; s++) (void)cnn_rng_next(&drng);

        cli_progress pg;
        cli_progress_start(&pg, rs.st.epoch + 1, c.epochs, ntrain);
        /* the epoch's wall time so far, from before a resume too */
        double t0 = cli_now(), before = rs.st.epoch_seconds;
        long epoch_images = 0;
        for (; rs.st.step < steps; rs.st.step++) {
            /* cosine annealing is per step (a one-epoch run anneals too) */
            if (oc.sched == CNN_SCHED_COSINE)
                cnn_model_set_lr(m, cnn_optim_lr_at(&oc, rs.st.epoch + (double)rs.st.step / steps,
                                                    c.epochs));
            int first = rs.st.step * batch;
            int n = ntrain - first < batch ? ntrain - first : batch;
            uint64_t bseed = cnn_rng_next(&drng);
            if (c.augment) {
                cnn_rng br;
                cnn_rng_seed(&br, bseed);
                for (int i = 0; i < n; i++) {
                    int j = perm[first + i];
                    cli_augment(tr.images + (size_t)j * px, ih, iw, 2.0f, 10.0f, &br, &nm,
                                xbuf + (size_t)i * px);
                    lbuf[i] = tr.labels[j];
                }
            } else {
                cli_batch(&tr, perm, first, n, &nm, xbuf, lbuf);
            }
            cnn_batch_stats bst;
            cnn_status s = cnn_model_train_batch(m, xbuf, lbuf, n, loss, &bst);
            if (s == CNN_ERR_NUMERIC) {
                cli_progress_end(&pg);
                fprintf(stderr, "cnn train: epoch %d, step %d: %s\n", rs.st.epoch + 1, rs.st.step + 1,
                        cnn_errmsg());
                int ck = file_exists(rs.ckpt_path);
                fprintf(stderr, "cnn train: stopped; %s was not written%s%s%s\n", c.out,
                        ck ? " and the last checkpoint " : "", ck ? rs.ckpt_path : "",
                        ck ? " is untouched" : "");
                fprintf(stderr, "cnn train: try a smaller --lr, or --clip\n");
                rc = CLI_EDATA;
                goto done;
            }
            if (s != CNN_OK) {
                cli_progress_end(&pg);
                rc = cli_error(CMD, "epoch %d, step %d: %s", rs.st.epoch + 1, rs.st.step + 1, cnn_errmsg());
                goto done;
            }
            rs.st.loss_sum += bst.loss * n;
            rs.st.correct += bst.correct;
            rs.st.seen += n;
            epoch_images += n;
            cli_progress_update(&pg, (long)first + n, rs.st.loss_sum, rs.st.seen);
            if (stop_signal) {
                rs.st.step++;
                rs.st.epoch_seconds = before + (cli_now() - t0);
                cli_progress_end(&pg);
                char where[96];
                snprintf(where, sizeof where, "at epoch %d, step %d of %d", rs.st.epoch + 1,
                         rs.st.step, steps);
                rc = stop_run(&rs, where);
                goto done;
            }
        }
        double t_epoch = cli_now() - t0;
        rs.st.epoch_seconds = before + t_epoch;
        cli_progress_end(&pg);
        train_seconds += t_epoch;
        images_trained += epoch_images;

        cli_epoch_row row = {rs.st.epoch + 1, lr, NAN, NAN, NAN, NAN, rs.st.epoch_seconds};
        if (rs.st.seen) {
            row.train_loss = rs.st.loss_sum / rs.st.seen;
            row.train_acc = 100.0 * rs.st.correct / rs.st.seen;
        }
        if (c.val > 0) {
            int vc;
            rc = cli_predict_all(CMD, m, &va, va.n, &nm, xbuf, loss, NULL, NULL, &row.val_loss, &vc,
                                 &stop_signal);
            if (rc == CLI_STOPPED) {
                /* the epoch is trained: a resumed run validates it */
                char where[96];
                snprintf(where, sizeof where, "validating epoch %d", rs.st.epoch + 1);
                rc = stop_run(&rs, where);
                goto done;
            }
            if (rc) goto done;
            row.val_acc = 100.0 * vc / va.n;
        }
        if (cli_ckpt_push_row(&rs.st, row)) {
            rc = cli_error(CMD, "out of memory");
            goto done;
        }
        char lrs[32];
        fmt_lr(lrs, sizeof lrs, lr);
        printf("epoch %d/%d  lr %s  train loss %.4f acc %.2f%%", rs.st.epoch + 1, c.epochs, lrs,
               row.train_loss, row.train_acc);
        if (c.val > 0) printf("  val loss %.4f acc %.2f%%", row.val_loss, row.val_acc);
        printf("  %.1fs  %.0f img/s\n", t_epoch, t_epoch > 0 ? epoch_images / t_epoch : 0.0);
        fflush(stdout);

        /* the next epoch starts here */
        rs.st.epoch++;
        rs.st.epoch_rng = drng;
        rs.st.step = 0;
        rs.st.loss_sum = 0;
        rs.st.correct = rs.st.seen = 0;
        rs.st.epoch_seconds = 0;
        if ((rc = save_curves(&rs, dsname))) goto done;
        /* the last epoch's checkpoint is written after the test */
        if (c.checkpoint_every > 0 && rs.st.epoch % c.checkpoint_every == 0 && rs.st.epoch < c.epochs &&
            (rc = save_checkpoint(&rs)))
            goto done;
        if (stop_signal) {
            char where[96];
            snprintf(where, sizeof where, "after epoch %d of %d", rs.st.epoch, c.epochs);
            rc = stop_run(&rs, where);
            goto done;
        }
    }

    /* ---- the test report */
    int tc;
    rc = cli_predict_all(CMD, m, &test, ntest, &nm, xbuf, loss, predicted, NULL, NULL, &tc, &stop_signal);
    if (rc == CLI_STOPPED) {
        rc = stop_run(&rs, "testing (every epoch is trained)");
        goto done;
    }
    if (rc) goto done;
    if (cli_confusion_init(&conf, k)) {
        rc = cli_error(CMD, "out of memory");
        goto done;
    }
    for (int i = 0; i < ntest; i++) cli_confusion_add(&conf, test.labels[i], predicted[i]);
    printf("\nTest set: %d images of %s\n\n", ntest, dir);
    cli_report_print(stdout, &conf, &names);
    double wall = cli_now() - t_start;
    printf("Training: %.1f s for %ld images (%.0f images/s); wall time %.1f s\n", train_seconds,
           images_trained, train_seconds > 0 ? images_trained / train_seconds : 0.0, wall);

    /* ---- the model file: weights plus the record of the run; with
     * checkpoints on, the final checkpoint too, so the run can be extended */
    snprintf(rs.test_accuracy, sizeof rs.test_accuracy, "%.4f", 100.0 * tc / ntest);
    if ((rc = save_model(&rs))) goto done;
    printf("Saved the model to %s\n", c.out);
    if (c.checkpoint_every > 0) {
        if ((rc = save_checkpoint(&rs))) goto done;
        printf("Saved the checkpoint to %s (a larger --epochs with --resume %s extends the run)\n",
               rs.ckpt_path, rs.ckpt_path);
    }
    if (c.history) printf("Wrote the history to %s\n", c.history);
    if (c.plot) printf("Wrote the curves to %s\n", c.plot);
    rc = CLI_OK;

done:
    for (size_t i = 0; i < sizeof src.owned / sizeof src.owned[0]; i++) free(src.owned[i]);
    cli_confusion_free(&conf);
    cli_ckpt_state_free(&rs.st);
    free(predicted);
    free(perm);
    free(lbuf);
    cnn_free(xbuf);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    cnn_model_free(m);
    return rc;
}
