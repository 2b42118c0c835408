/* train.c — `cnn train`: the training loop of the seed report (section 3.4)
 * at full scale: mini-batches (or the full batch), an optimizer and a
 * schedule, validation per epoch, checkpoints that resume bit-identically,
 * Ctrl-C that saves, and the test report at the end. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *CMD = "train";

typedef struct {
    const char *arch, *dataset, *data, *batch, *opt, *sched, *loss, *init_weights, *kernels;
    const char *init, *out, *resume, *history, *plot;
    int epochs, val, limit, test_limit, threads, checkpoint_every, no_shuffle, augment, lr_step;
    double lr, momentum, weight_decay, clip, gamma, min_lr;
    uint64_t seed;
} train_cfg;

/* Options that shape the run: a checkpoint records them and --resume takes
 * them from it, so the resumed run is the same run. */
static const char *const run_options[] = {
    "arch", "dataset", "data", "epochs", "batch", "lr", "opt", "momentum", "weight-decay",
    "sched", "lr-step", "lr-gamma", "min-lr", "clip", "loss", "init-weights", "seed", "val",
    "limit", "no-shuffle", "augment", "init", NULL};

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ------------------------------------------------------------ helpers */

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void rng_to_hex(const cnn_rng *r, char out[65])
{
    for (int i = 0; i < 4; i++) snprintf(out + 16 * i, 17, "%016" PRIx64, r->s[i]);
}

static int rng_from_hex(const char *hex, cnn_rng *r)
{
    if (!hex || strlen(hex) != 64) return -1;
    for (int i = 0; i < 4; i++) {
        char part[17], *end;
        memcpy(part, hex + 16 * i, 16);
        part[16] = '\0';
        r->s[i] = strtoull(part, &end, 16);
        if (*end) return -1;
    }
    return 0;
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

/* --------------------------------------------------------- the history */

typedef struct {
    cli_epoch_row *rows;
    int n;
} history;

static int history_push(history *h, cli_epoch_row r)
{
    cli_epoch_row *g = realloc(h->rows, sizeof *g * (size_t)(h->n + 1));
    if (!g) return -1;
    h->rows = g;
    h->rows[h->n++] = r;
    return 0;
}

/* "epoch,lr,train_loss,train_acc,val_loss,val_acc;..." in full precision.
 * Wall times are left out: they would make two identical runs' files
 * differ. */
static char *history_text(const history *h)
{
    size_t cap = 16 + (size_t)h->n * 160;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t used = 0;
    s[0] = '\0';
    for (int i = 0; i < h->n; i++) {
        const cli_epoch_row *r = &h->rows[i];
        used += (size_t)snprintf(s + used, cap - used, "%s%d,%.9g,%.17g,%.17g,%.17g,%.17g",
                                 i ? ";" : "", r->epoch, r->lr, r->train_loss, r->train_acc,
                                 r->val_loss, r->val_acc);
    }
    return s;
}

static int history_parse(const char *s, history *h)
{
    while (s && *s) {
        cli_epoch_row r;
        int used = 0;
        if (sscanf(s, "%d,%lf,%lf,%lf,%lf,%lf%n", &r.epoch, &r.lr, &r.train_loss, &r.train_acc,
                   &r.val_loss, &r.val_acc, &used) != 6)
            return -1;
        r.seconds = NAN;
        if (history_push(h, r)) return -1;
        s += used;
        if (*s == ';') s++;
        else if (*s) return -1;
    }
    return 0;
}

/* ------------------------------------------------------ the training run */

typedef struct {
    train_cfg *cfg;
    cli_opt *opts;
    cnn_model *m;
    int epoch, step;         /* where the run stands: next batch to train */
    cnn_rng epoch_rng;       /* the data RNG at the start of `epoch` */
    double loss_sum;         /* this epoch so far */
    long correct, seen;
    history hist;
    char test_accuracy[32];  /* "" until measured */
    char ckpt_path[4096];
} run_state;

static int set_meta(cnn_model *m, const char *k, const char *v)
{
    if (cnn_model_set_meta(m, k, v) != CNN_OK) return cli_error(CMD, "%s", cnn_errmsg());
    return CLI_OK;
}

/* Write where the run stands into the model's metadata: a checkpoint needs
 * it to resume, a final model keeps it as a record of how it was made. */
static int record_state(run_state *rs)
{
    char buf[128], key[64];
    int rc = 0;
    /* every key, always in this order: a resumed run's file then matches an
     * uninterrupted run's byte for byte */
    snprintf(buf, sizeof buf, "%d", rs->cfg->epochs);
    rc |= set_meta(rs->m, "epochs", buf);
    rc |= set_meta(rs->m, "test_accuracy", rs->test_accuracy);
    snprintf(buf, sizeof buf, "%d", rs->epoch);
    rc |= set_meta(rs->m, "train.epoch", buf);
    snprintf(buf, sizeof buf, "%d", rs->step);
    rc |= set_meta(rs->m, "train.step", buf);
    char hex[65];
    rng_to_hex(&rs->epoch_rng, hex);
    rc |= set_meta(rs->m, "train.data_rng", hex);
    snprintf(buf, sizeof buf, "%.17g", rs->loss_sum);
    rc |= set_meta(rs->m, "train.loss_sum", buf);
    snprintf(buf, sizeof buf, "%ld", rs->correct);
    rc |= set_meta(rs->m, "train.correct", buf);
    snprintf(buf, sizeof buf, "%ld", rs->seen);
    rc |= set_meta(rs->m, "train.seen", buf);
    char *h = history_text(&rs->hist);
    if (!h) return cli_error(CMD, "out of memory");
    rc |= set_meta(rs->m, "train.history", h);
    free(h);
    for (int i = 0; run_options[i]; i++) {
        cli_opt *o = cli_opt_find(rs->opts, run_options[i]);
        char val[4096];
        cli_opt_format(o, val, sizeof val);
        snprintf(key, sizeof key, "train.opt.%s", o->name);
        rc |= set_meta(rs->m, key, val);
    }
    return rc ? CLI_EDATA : CLI_OK;
}

static int save_checkpoint(run_state *rs)
{
    int rc = record_state(rs);
    if (rc) return rc;
    if (cnn_model_save(rs->m, rs->ckpt_path, 1) != CNN_OK)
        return cli_error(CMD, "cannot save the checkpoint: %s", cnn_errmsg());
    return CLI_OK;
}

/* Take the run's options from a checkpoint. An option given on the command
 * line must agree with it. */
static int options_from_checkpoint(cnn_model *ck, cli_opt *opts, const char *path, char **owned)
{
    for (int i = 0; run_options[i]; i++) {
        cli_opt *o = cli_opt_find(opts, run_options[i]);
        char key[64], mine[4096];
        snprintf(key, sizeof key, "train.opt.%s", o->name);
        const char *saved = cnn_model_get_meta(ck, key);
        if (!saved)
            return cli_error(CMD, "--resume: %s is not a checkpoint of `cnn train` (no '%s' in its metadata)",
                             path, key);
        if (o->given) {
            cli_opt_format(o, mine, sizeof mine);
            if (strcmp(mine, saved) != 0)
                return cli_usage_error(CMD,
                                       "--%s %s conflicts with the checkpoint, which was made with "
                                       "--%s %s (a resumed run keeps the options of the run)",
                                       o->name, mine, o->name, saved[0] ? saved : "(none)");
        }
        if (o->kind == CLI_STR && !saved[0]) {
            *(const char **)o->dest = NULL;
        } else {
            /* a copy: the model's metadata strings are replaced as the run
             * records its progress */
            owned[i] = strdup(saved);
            if (!owned[i]) return cli_error(CMD, "out of memory");
            int rc = cli_opt_set(CMD, o, owned[i]);
            if (rc) return cli_error(CMD, "--resume: %s holds a bad value for %s", path, key);
        }
        o->given = 1;
    }
    return CLI_OK;
}

/* "N", or "all" / "0" for the full batch (returned as 0). */
static int parse_batch(const char *s, int *out)
{
    if (strcmp(s, "all") == 0 || strcmp(s, "0") == 0) {
        *out = 0;
        return CLI_OK;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1000000)
        return cli_usage_error(CMD, "--batch: expected a whole number from 1 to 1000000 or 'all', got '%s'", s);
    *out = (int)v;
    return CLI_OK;
}

static const char *about =
    "Train a model on an IDX data set and print the test set's classification report.\n"
    "The validation set is the last --val images of the training file; --limit keeps the\n"
    "first N of the rest. Inputs are normalised with the training pixels' mean and std,\n"
    "stored in the model file with the class names.\n"
    "\n"
    "Each --loss is a PyTorch module and reads the tensor that module would be given:\n"
    "  xent   CrossEntropyLoss on the scores (the input of a final softmax, else the output)\n"
    "  cce    -sum t log p on a final softmax's probabilities (refused without one)\n"
    "  bce    BCEWithLogitsLoss on the input of a final sigmoid, or on the output when the\n"
    "         model ends in neither softmax nor sigmoid; BCELoss on a final softmax's output\n"
    "  hinge  MultiMarginLoss on the scores (the input of a final softmax or sigmoid)\n"
    "  mse, mae, huber[:delta]  MSELoss, L1Loss, HuberLoss(delta) between the output (after\n"
    "         any final activation) and the one-hot target\n"
    "\n"
    "The seed report's experiment (section 3.4):\n"
    "  cnn train --arch simplecnn --limit 300 --val 50 --test-limit 100 --batch all \\\n"
    "            --lr 0.07 --epochs 40 --opt sgd --no-shuffle";

int cli_train(int argc, char **argv)
{
    train_cfg c = {
        .arch = "simplecnn", .dataset = "mnist", .data = NULL, .batch = "64", .opt = "sgd",
        .sched = "constant", .loss = "xent", .init_weights = "xavier", .kernels = "fast",
        .init = NULL, .out = "model.safetensors", .resume = NULL, .history = NULL, .plot = NULL,
        .epochs = 10, .val = 5000, .limit = 0, .test_limit = 0, .threads = 0,
        .checkpoint_every = 0, .no_shuffle = 0, .augment = 0, .lr_step = 10,
        .lr = 0.01, .momentum = 0.9, .weight_decay = 0, .clip = 0, .gamma = 0.1, .min_lr = 0,
        .seed = 1,
    };
    const char *mem_limit = NULL; /* not a run option: a resumed run may set its own */
    cli_opt opts[] = {
        {"arch", CLI_STR, &c.arch, 0, 0, "NAME|FILE", "a preset (see `cnn --help`) or an architecture file", NULL, 0},
        {"dataset", CLI_STR, &c.dataset, 0, 0, "mnist|fashion", "a known data set under data/", NULL, 0},
        {"data", CLI_STR, &c.data, 0, 0, "DIR", "a directory of IDX files (raw or .gz) instead of --dataset", "none", 0},
        {"epochs", CLI_INT, &c.epochs, 1, 100000, "N", "epochs to train", NULL, 0},
        {"batch", CLI_STR, &c.batch, 0, 0, "N|all", "images per step; 'all' or 0 = the full training set", NULL, 0},
        {"lr", CLI_FLOAT, &c.lr, 0, 100, "X", "learning rate", "0.01 for sgd/momentum/nesterov, 0.001 for adam/adamw", 0},
        {"opt", CLI_STR, &c.opt, 0, 0, "NAME", "optimizer: sgd, momentum, nesterov, adam, adamw", NULL, 0},
        {"momentum", CLI_FLOAT, &c.momentum, 0, 0.999999, "X", "momentum (momentum, nesterov only)", "0.9 for momentum/nesterov", 0},
        {"weight-decay", CLI_FLOAT, &c.weight_decay, 0, 10, "X", "L2 weight decay (decoupled for adamw)", "0; 0.01 for adamw", 0},
        {"sched", CLI_STR, &c.sched, 0, 0, "NAME", "learning-rate schedule: constant, step (every --lr-step epochs), cosine (annealed every step)", NULL, 0},
        {"lr-step", CLI_INT, &c.lr_step, 1, 100000, "N", "step schedule: multiply the rate by --lr-gamma every N epochs", NULL, 0},
        {"lr-gamma", CLI_FLOAT, &c.gamma, 0, 1, "X", "step schedule's factor", NULL, 0},
        {"min-lr", CLI_FLOAT, &c.min_lr, 0, 100, "X", "cosine schedule's final rate", NULL, 0},
        {"clip", CLI_FLOAT, &c.clip, 0, 1e9, "X", "clip gradients to this global L2 norm; 0 = off", NULL, 0},
        {"loss", CLI_STR, &c.loss, 0, 0, "NAME", "xent, cce, bce, hinge, mse, mae, huber[:delta] (the tensor each reads: above)", NULL, 0},
        {"init-weights", CLI_STR, &c.init_weights, 0, 0, "NAME", "xavier (normal), xavier_uniform, he", NULL, 0},
        {"seed", CLI_U64, &c.seed, 0, 0, "N", "random seed (weights, shuffling, dropout, augmentation)", NULL, 0},
        {"threads", CLI_INT, &c.threads, 0, 1024, "N", "threads for the kernels; 0 = all cores", NULL, 0},
        {"kernels", CLI_STR, &c.kernels, 0, 0, "ref|fast", "textbook loops or im2col + GEMM", NULL, 0},
        {"val", CLI_INT, &c.val, 0, 100000000, "N", "validation images, the last N of the training file", NULL, 0},
        {"limit", CLI_INT, &c.limit, 0, 100000000, "N", "train on the first N images only; 0 = all", "0 (all)", 0},
        {"test-limit", CLI_INT, &c.test_limit, 0, 100000000, "N", "test on the first N test images only; 0 = all", "0 (all)", 0},
        {"no-shuffle", CLI_FLAG, &c.no_shuffle, 0, 0, NULL, "keep the file's order (the seed did)", NULL, 0},
        {"augment", CLI_FLAG, &c.augment, 0, 0, NULL, "random shifts (up to 2 px) and rotations (up to 10 degrees)", NULL, 0},
        {"init", CLI_STR, &c.init, 0, 0, "FILE", "start from the weights of a model file", "none", 0},
        {"out", CLI_STR, &c.out, 0, 0, "FILE", "where to save the trained model", NULL, 0},
        {"checkpoint-every", CLI_INT, &c.checkpoint_every, 0, 100000, "N", "save <out>.ckpt every N epochs; 0 = never", "0 (never)", 0},
        {"resume", CLI_STR, &c.resume, 0, 0, "CKPT", "continue a run from its checkpoint", "none", 0},
        {"history", CLI_STR, &c.history, 0, 0, "FILE.csv", "write per-epoch loss and accuracy as CSV", "none", 0},
        {"plot", CLI_STR, &c.plot, 0, 0, "FILE.svg", "write loss and accuracy curves as SVG", "none", 0},
        {"mem-limit", CLI_STR, &mem_limit, 0, 0, "SIZE", CLI_MEM_LIMIT_HELP, CLI_MEM_LIMIT_DEFAULT, 0},
        {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    int rc = cli_parse(CMD, argc, argv, opts, NULL, 0, NULL);
    if (rc < 0) {
        cli_print_help(stdout, CMD, "[options]", about, opts);
        return CLI_OK;
    }
    if (rc) return rc;
    if ((rc = cli_set_mem_limit(CMD, mem_limit))) return rc;

    cnn_model *m = NULL;
    cnn_dataset train = {0}, test = {0};
    float *xbuf = NULL;
    uint8_t *lbuf = NULL;
    int *perm = NULL, *predicted = NULL;
    cli_classes names = {0};
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = &c;
    rs.opts = opts;
    cli_confusion conf = {0};
    char *owned[sizeof run_options / sizeof run_options[0]] = {0};

    /* ---- options that conflict, before any work */
    if (c.resume && c.init) {
        rc = cli_usage_error(CMD, "--resume and --init conflict: a checkpoint already holds the weights");
        goto done;
    }
    if (c.data && cli_opt_find(opts, "dataset")->given) {
        rc = cli_usage_error(CMD, "--data and --dataset conflict: give one");
        goto done;
    }

    /* ---- the model: from a checkpoint, or built and initialised */
    if (c.resume) {
        if ((rc = cli_load_model(CMD, c.resume, &m))) goto done;
        if ((rc = options_from_checkpoint(m, opts, c.resume, owned))) goto done;
        const char *e = cnn_model_get_meta(m, "train.epoch");
        const char *s = cnn_model_get_meta(m, "train.step");
        const char *ls = cnn_model_get_meta(m, "train.loss_sum");
        const char *co = cnn_model_get_meta(m, "train.correct");
        const char *se = cnn_model_get_meta(m, "train.seen");
        if (!e || !s || !ls || !co || !se ||
            rng_from_hex(cnn_model_get_meta(m, "train.data_rng"), &rs.epoch_rng) ||
            history_parse(cnn_model_get_meta(m, "train.history"), &rs.hist)) {
            rc = cli_error(CMD, "--resume: %s does not hold a valid training state", c.resume);
            goto done;
        }
        rs.epoch = atoi(e);
        rs.step = atoi(s);
        rs.loss_sum = strtod(ls, NULL);
        rs.correct = atol(co);
        rs.seen = atol(se);
    } else {
        if ((rc = cli_build_model(CMD, c.arch, &m))) goto done;
        cnn_init how;
        if (strcmp(c.init_weights, "xavier") == 0) how = CNN_INIT_XAVIER_NORMAL;
        else if (strcmp(c.init_weights, "xavier_uniform") == 0) how = CNN_INIT_XAVIER_UNIFORM;
        else if (strcmp(c.init_weights, "he") == 0) how = CNN_INIT_HE_NORMAL;
        else {
            rc = cli_usage_error(CMD, "--init-weights: expected xavier, xavier_uniform or he, got '%s'", c.init_weights);
            goto done;
        }
        if (cnn_model_init(m, how, c.seed) != CNN_OK) {
            rc = cli_error(CMD, "%s", cnn_errmsg());
            goto done;
        }
        if (c.init && cnn_model_load_weights(m, c.init) != CNN_OK) {
            rc = cli_error(CMD, "--init: %s", cnn_errmsg());
            goto done;
        }
        /* the data RNG is separate from the model's (weights, dropout) so
         * that shuffling does not change when the architecture does */
        cnn_rng_seed(&rs.epoch_rng, c.seed ^ 0x9e3779b97f4a7c15ULL);
    }

    /* ---- the optimizer, schedule and loss */
    cnn_opt_kind ok;
    cnn_sched_kind sk;
    cnn_loss loss;
    cnn_kernels kern;
    if (cnn_optim_parse(c.opt, &ok) != CNN_OK) {
        rc = cli_usage_error(CMD, "--opt: expected sgd, momentum, nesterov, adam or adamw, got '%s'", c.opt);
        goto done;
    }
    if (cnn_sched_parse(c.sched, &sk) != CNN_OK) {
        rc = cli_usage_error(CMD, "--sched: expected constant, step or cosine, got '%s'", c.sched);
        goto done;
    }
    if (cnn_loss_parse(c.loss, &loss) != CNN_OK) {
        rc = cli_usage_error(CMD, "--loss: expected xent, cce, bce, hinge, mse, mae or huber[:delta], got '%s'", c.loss);
        goto done;
    }
    if (cnn_model_check_loss(m, loss) != CNN_OK) {
        rc = cli_usage_error(CMD, "--loss: %s", cnn_errmsg());
        goto done;
    }
    if ((rc = cli_parse_kernels(CMD, c.kernels, &kern))) goto done;
    int batch = 0;
    if ((rc = parse_batch(c.batch, &batch))) goto done;
    cnn_optim_config oc = cnn_optim_defaults(ok);
    if (cli_opt_find(opts, "momentum")->given && ok != CNN_OPT_MOMENTUM && ok != CNN_OPT_NESTEROV &&
        c.momentum != 0) {
        rc = cli_usage_error(CMD, "--momentum needs --opt momentum or nesterov (got --opt %s)", c.opt);
        goto done;
    }
    /* defaults that depend on the optimizer are resolved here and recorded,
     * so a checkpoint holds the values actually used */
    if (cli_opt_find(opts, "lr")->given) oc.lr = (float)c.lr;
    else c.lr = oc.lr;
    if (cli_opt_find(opts, "momentum")->given) oc.momentum = (float)c.momentum;
    else c.momentum = oc.momentum;
    if (cli_opt_find(opts, "weight-decay")->given) oc.weight_decay = (float)c.weight_decay;
    else c.weight_decay = oc.weight_decay;
    oc.clip_norm = (float)c.clip;
    oc.sched = sk;
    oc.step_epochs = c.lr_step;
    oc.gamma = (float)c.gamma;
    oc.min_lr = (float)c.min_lr;
    if (rs.epoch > c.epochs) {
        rc = cli_error(CMD, "--resume: the checkpoint is at epoch %d of a %d-epoch run", rs.epoch, c.epochs);
        goto done;
    }

    /* ---- the data */
    char dir[4096];
    if ((rc = cli_load_dataset(CMD, c.dataset, c.data, 0, &train, dir, sizeof dir))) goto done;
    if ((rc = cli_load_dataset(CMD, c.dataset, c.data, 1, &test, NULL, 0))) goto done;
    int ic, ih, iw;
    cnn_model_input_shape(m, &ic, &ih, &iw);
    if (train.c != ic || train.h != ih || train.w != iw || test.c != ic || test.h != ih || test.w != iw) {
        rc = cli_error(CMD, "the model takes %dx%dx%d images but %s holds %dx%dx%d", ic, ih, iw, dir,
                       train.c, train.h, train.w);
        goto done;
    }
    int k = cnn_model_output_size(m);
    int classes = train.classes > test.classes ? train.classes : test.classes;
    if (classes > k) {
        rc = cli_error(CMD, "%s has %d classes but the model has only %d outputs", dir, classes, k);
        goto done;
    }
    if (c.val >= train.n) {
        rc = cli_usage_error(CMD, "--val %d leaves no training images (the training file holds %d)", c.val, train.n);
        goto done;
    }
    int ntrain = train.n - c.val;
    if (c.limit > 0 && c.limit < ntrain) ntrain = c.limit;
    cnn_dataset tr = view(&train, 0, ntrain);
    cnn_dataset va = view(&train, train.n - c.val, c.val);
    int ntest = c.test_limit > 0 && c.test_limit < test.n ? c.test_limit : test.n;
    const char *dsname = c.data ? "custom" : c.dataset;

    if (batch == 0 || batch > ntrain) batch = ntrain;

    /* ---- normalisation and class names, recorded in the model */
    cli_norm nm;
    if (c.resume) {
        if ((rc = cli_norm_from_model(CMD, m, &nm))) goto done;
    } else {
        double mean, sd;
        cli_pixel_stats(tr.images, (size_t)tr.n * ic * ih * iw, &mean, &sd);
        cli_norm_init(&nm, (float)mean, (float)sd);
        char buf[64];
        snprintf(buf, sizeof buf, "%.9g", nm.mean);
        rc |= set_meta(m, "norm_mean", buf);
        snprintf(buf, sizeof buf, "%.9g", nm.std);
        rc |= set_meta(m, "norm_std", buf);
        /* the data set's classes; outputs past them are named by index */
        char *cls = NULL;
        if (cli_default_classes(c.data ? NULL : c.dataset, classes, &names) == 0)
            cls = cli_classes_join(&names);
        rc |= cls ? set_meta(m, "classes", cls) : cli_error(CMD, "out of memory");
        free(cls);
        rc |= set_meta(m, "dataset", dsname);
        if (rc) goto done;
    }
    if ((rc = cli_classes_from_model(CMD, m, &names))) goto done;

    rs.m = m;
    if ((rc = record_state(&rs))) goto done;

    /* ---- the machine */
    cnn_set_threads(c.threads);
    cnn_model_set_kernels(m, kern);
    int max_batch = batch > 256 ? batch : 256;
    if (cnn_model_set_batch(m, max_batch) != CNN_OK || cnn_model_set_optimizer(m, &oc) != CNN_OK) {
        rc = cli_error(CMD, "%s", cnn_errmsg());
        goto done;
    }
    size_t px = (size_t)ic * ih * iw;
    xbuf = cnn_alloc(sizeof(float) * px * (size_t)max_batch, "the input batch");
    lbuf = malloc((size_t)max_batch);
    perm = malloc(sizeof(int) * (size_t)ntrain);
    predicted = malloc(sizeof *predicted * (size_t)ntest);
    if (!xbuf || !lbuf || !perm || !predicted) {
        rc = cli_error(CMD, "out of memory for batches of %d images", max_batch);
        goto done;
    }
    snprintf(rs.ckpt_path, sizeof rs.ckpt_path, "%s.ckpt", c.out);

    printf("cnn train: %s, %zu parameters, on %s (%s): %d training, %d validation, %d test images\n",
           c.arch, cnn_model_num_params(m), dsname, dir, ntrain, c.val, ntest);
    printf("batch %d, %s lr %g, %s schedule, loss %s, %d epoch%s, %d thread%s, %s kernels (%s)%s%s\n",
           batch, c.opt, c.lr, c.sched, c.loss, c.epochs, c.epochs == 1 ? "" : "s", cnn_get_threads(), cnn_get_threads() == 1 ? "" : "s",
           kern == CNN_KERNELS_FAST ? "fast" : "ref", cnn_simd_name(), c.augment ? ", augmented" : "",
           c.no_shuffle ? ", not shuffled" : "");
    if (c.resume) printf("resuming %s at epoch %d, step %d\n", c.resume, rs.epoch + 1, rs.step);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C stops at once */
    sigaction(SIGINT, &sa, NULL);

    /* ---- the epochs */
    double t_start = cli_now(), train_seconds = 0;
    long images_trained = 0;
    int steps = (ntrain + batch - 1) / batch;
    for (; rs.epoch < c.epochs; rs.epoch++) {
        float lr = cnn_optim_lr_at(&oc, rs.epoch, c.epochs);
        cnn_model_set_lr(m, lr);
        /* the epoch's order and augmentation follow from the data RNG's
         * state at its start: a resumed epoch replays them */
        cnn_rng drng = rs.epoch_rng;
        if (c.no_shuffle)
            for (int i = 0; i < ntrain; i++) perm[i] = i;
        else
            fisher_yates(perm, ntrain, &drng);
        for (int s = 0; s < rs.step; s++) (void)cnn_rng_next(&drng);

        cli_progress pg;
        cli_progress_start(&pg, rs.epoch + 1, c.epochs, ntrain);
        double t0 = cli_now();
        long epoch_images = 0;
        for (; rs.step < steps; rs.step++) {
            /* cosine annealing is per step (a one-epoch run anneals too) */
            if (oc.sched == CNN_SCHED_COSINE)
                cnn_model_set_lr(m, cnn_optim_lr_at(&oc, rs.epoch + (double)rs.step / steps,
                                                    c.epochs));
            int first = rs.step * batch;
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
            cnn_batch_stats st;
            cnn_status s = cnn_model_train_batch(m, xbuf, lbuf, n, loss, &st);
            if (s == CNN_ERR_NUMERIC) {
                cli_progress_end(&pg);
                fprintf(stderr, "cnn train: epoch %d, step %d: %s\n", rs.epoch + 1, rs.step + 1, cnn_errmsg());
                fprintf(stderr, "cnn train: stopped; %s was not written%s%s%s\n", c.out,
                        file_exists(rs.ckpt_path) ? " and the last checkpoint " : "",
                        file_exists(rs.ckpt_path) ? rs.ckpt_path : "",
                        file_exists(rs.ckpt_path) ? " is untouched" : "");
                fprintf(stderr, "cnn train: try a smaller --lr, or --clip\n");
                rc = CLI_EDATA;
                goto done;
            }
            if (s != CNN_OK) {
                cli_progress_end(&pg);
                rc = cli_error(CMD, "epoch %d, step %d: %s", rs.epoch + 1, rs.step + 1, cnn_errmsg());
                goto done;
            }
            rs.loss_sum += st.loss * n;
            rs.correct += st.correct;
            rs.seen += n;
            epoch_images += n;
            cli_progress_update(&pg, (long)first + n, rs.loss_sum, rs.seen);
            if (interrupted) {
                rs.step++;
                cli_progress_end(&pg);
                if ((rc = save_checkpoint(&rs))) goto done;
                fprintf(stderr,
                        "\ncnn train: interrupted at epoch %d, step %d of %d; checkpoint saved to %s\n"
                        "Resume with: cnn train --resume %s --out %s\n",
                        rs.epoch + 1, rs.step, steps, rs.ckpt_path, rs.ckpt_path, c.out);
                rc = CLI_EINTR;
                goto done;
            }
        }
        double t_epoch = cli_now() - t0;
        cli_progress_end(&pg);
        train_seconds += t_epoch;
        images_trained += epoch_images;

        cli_epoch_row row = {rs.epoch + 1, lr, NAN, NAN, NAN, NAN, t_epoch};
        if (rs.seen) {
            row.train_loss = rs.loss_sum / rs.seen;
            row.train_acc = 100.0 * rs.correct / rs.seen;
        }
        if (c.val > 0) {
            int vc;
            if ((rc = cli_predict_all(CMD, m, &va, va.n, &nm, xbuf, loss, NULL, NULL, &row.val_loss, &vc)))
                goto done;
            row.val_acc = 100.0 * vc / va.n;
        }
        if (history_push(&rs.hist, row)) {
            rc = cli_error(CMD, "out of memory");
            goto done;
        }
        char lrs[32];
        fmt_lr(lrs, sizeof lrs, lr);
        printf("epoch %d/%d  lr %s  train loss %.4f acc %.2f%%", rs.epoch + 1, c.epochs, lrs,
               row.train_loss, row.train_acc);
        if (c.val > 0) printf("  val loss %.4f acc %.2f%%", row.val_loss, row.val_acc);
        printf("  %.1fs  %.0f img/s\n", t_epoch, t_epoch > 0 ? epoch_images / t_epoch : 0.0);
        fflush(stdout);

        /* the next epoch starts here */
        rs.epoch_rng = drng;
        rs.step = 0;
        rs.loss_sum = 0;
        rs.correct = rs.seen = 0;
        if (c.history && cli_history_csv(c.history, rs.hist.rows, rs.hist.n)) {
            rc = cli_error(CMD, "--history: %s", cnn_errmsg());
            goto done;
        }
        if (c.plot) {
            char title[512];
            snprintf(title, sizeof title, "%s on %s", c.arch, dsname);
            if (cli_plot_svg(c.plot, title, rs.hist.rows, rs.hist.n)) {
                rc = cli_error(CMD, "--plot: %s", cnn_errmsg());
                goto done;
            }
        }
        if (c.checkpoint_every > 0 && (rs.epoch + 1) % c.checkpoint_every == 0 &&
            rs.epoch + 1 < c.epochs) {
            rs.epoch++;
            rc = save_checkpoint(&rs);
            rs.epoch--;
            if (rc) goto done;
        }
        if (interrupted) {
            rs.epoch++;
            if ((rc = save_checkpoint(&rs))) goto done;
            fprintf(stderr,
                    "\ncnn train: interrupted after epoch %d; checkpoint saved to %s\n"
                    "Resume with: cnn train --resume %s --out %s\n",
                    rs.epoch, rs.ckpt_path, rs.ckpt_path, c.out);
            rc = CLI_EINTR;
            goto done;
        }
    }

    /* ---- the test report */
    int tc;
    if ((rc = cli_predict_all(CMD, m, &test, ntest, &nm, xbuf, loss, predicted, NULL, NULL, &tc))) goto done;
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

    /* ---- the model file: weights plus the record of the run */
    snprintf(rs.test_accuracy, sizeof rs.test_accuracy, "%.4f", 100.0 * tc / ntest);
    if ((rc = record_state(&rs))) goto done;
    if (cnn_model_save(m, c.out, 0) != CNN_OK) {
        rc = cli_error(CMD, "cannot save the model: %s", cnn_errmsg());
        goto done;
    }
    printf("Saved the model to %s\n", c.out);
    if (c.history) printf("Wrote the history to %s\n", c.history);
    if (c.plot) printf("Wrote the curves to %s\n", c.plot);
    rc = CLI_OK;

done:
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) free(owned[i]);
    cli_classes_free(&names);
    cli_confusion_free(&conf);
    free(rs.hist.rows);
    free(predicted);
    free(perm);
    free(lbuf);
    cnn_free(xbuf);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    cnn_model_free(m);
    return rc;
}
