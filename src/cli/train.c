/* train.c — `cnn train`: the training loop of the seed report (section 3.4)
 * at full scale: mini-batches (or the full batch), an optimizer and a
 * schedule, validation per epoch, checkpoints that resume bit-identically,
 * Ctrl-C and SIGTERM that save, and the test report at the end.
 *
 * The run's options are recorded in every checkpoint and model file
 * (train.opt.*, src/cli/train_options.c); a checkpoint adds where the output
 * goes (train.out.*) and the training state (src/cli/checkpoint.c). */
#include "cli/checkpoint.h"
#include "cli/train.h"
#include "dist/dist.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *CMD = TRAIN_CMD;

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

static int opt_index_of(const cli_opt *opts, const char *name)
{
    for (int i = 0; opts[i].name; i++)
        if (strcmp(opts[i].name, name) == 0) return i;
    return -1;
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
        int run = train_listed(train_run_options, o->name);
        if (!run && !train_listed(train_output_options, o->name)) continue;
        snprintf(key, sizeof key, "train.%s.%s", run ? "opt" : "out", o->name);
        cli_opt_format(o, val, sizeof val);
        rc |= meta_set(rs->m, key, run || checkpoint ? val : NULL);
    }
    return rc ? cli_error(CMD, "%s", cnn_errmsg()) : CLI_OK;
}

static int save_checkpoint(run_state *rs)
{
    if (!cnn_dist_root()) return CLI_OK; /* under MPI rank 0 writes */
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
    if (!cnn_dist_root()) return CLI_OK; /* under MPI rank 0 writes */
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
    if (!cnn_dist_root()) return CLI_OK;
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
    train_resume_command(rs->src, rs->ckpt_path, cmd, sizeof cmd);
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
    "Each --loss is a PyTorch module and reads the tensor that module would be given:\n"
    "  xent   CrossEntropyLoss on the scores (the input of a final softmax, else the output)\n"
    "  cce    -sum t log p on a final softmax's probabilities (refused without one)\n"
    "  bce    BCEWithLogitsLoss on the input of a final sigmoid, or on the output when the\n"
    "         model ends in neither softmax nor sigmoid; BCELoss on a final softmax's output\n"
    "  hinge  MultiMarginLoss on the scores (the input of a final softmax or sigmoid)\n"
    "  mse, mae, huber[:delta]  MSELoss, L1Loss, HuberLoss(delta) between the output (after\n"
    "         any final activation) and the one-hot target\n"
    "\n"
    "Checkpoints: --checkpoint-every N saves <out>.ckpt every N epochs and at the end of\n"
    "the run; Ctrl-C or SIGTERM saves it and the model so far, and prints the command\n"
    "that resumes. --resume <out>.ckpt continues with the options the run was started\n"
    "with (given again they must agree; --threads and --checkpoint-every may change)\n"
    "and ends with the same bits as an uninterrupted run. It writes the model to <out>\n"
    "unless --out is given, and --history and --plot only when given (a checkpoint's\n"
    "own paths are never followed). A larger --epochs extends the run, a finished one\n"
    "too:\n"
    "  cnn train --arch lenet5 --epochs 5 --checkpoint-every 5 --out m.safetensors\n"
    "  cnn train --resume m.safetensors.ckpt --epochs 8\n"
    "\n"
    "The seed report's experiment (section 3.4), every setting explicit:\n"
    "  cnn train --arch simplecnn --limit 300 --val 50 --test-limit 100 --batch all \\\n"
    "            --opt sgd --lr 0.07 --sched constant --weight-decay 0 --clip 0 \\\n"
    "            --loss xent --init-weights xavier --seed 1 --epochs 40 --no-shuffle";

int cli_train(int argc, char **argv)
{
    train_cfg c = {
        .arch = "simplecnn", .dataset = "mnist", .data = NULL, .batch = "64", .opt = DEFAULT_OPT,
        .sched = DEFAULT_SCHED, .loss = "xent", .init_weights = "xavier", .kernels = "fast",
        .init = NULL, .out = "model.safetensors", .resume = NULL, .history = NULL, .plot = NULL,
        .epochs = 10, .val = 5000, .limit = 0, .test_limit = 0, .threads = 0,
        .checkpoint_every = 0, .no_shuffle = 0, .augment = 0, .lr_step = 10,
        .lr = DEFAULT_LR_ADAM, .momentum = 0, .weight_decay = 0, .clip = 0, .gamma = 0.1, .min_lr = 0,
        .seed = 1,
    };
    const char *mem_limit = NULL; /* not a run option: a resumed run may set its own */
    cli_opt opts[] = {
        {"arch", CLI_STR, &c.arch, 0, 0, "NAME|FILE", "a preset (see `cnn --help`) or an architecture file", NULL, 0},
        {"dataset", CLI_STR, &c.dataset, 0, 0, "mnist|fashion", "a known data set under data/", NULL, 0},
        {"data", CLI_STR, &c.data, 0, 0, "DIR", "a directory of IDX files (raw or .gz) instead of --dataset", "none", 0},
        {"epochs", CLI_INT, &c.epochs, 1, 100000, "N", "epochs to train; with --resume, more than the checkpoint's extend the run", NULL, 0},
        {"batch", CLI_STR, &c.batch, 0, 0, "N|all", "images per step; 'all' or 0 = the full training set", NULL, 0},
        {"lr", CLI_FLOAT_ABOVE, &c.lr, 0, 100, "X", "learning rate", "0.005 for adam/adamw, 0.01 for sgd/momentum/nesterov", 0},
        {"opt", CLI_STR, &c.opt, 0, 0, "NAME", "optimizer: sgd, momentum, nesterov, adam, adamw", NULL, 0},
        {"momentum", CLI_FLOAT, &c.momentum, 0, 0.999999, "X", "momentum (momentum, nesterov only)", "0.9 for momentum/nesterov", 0},
        {"weight-decay", CLI_FLOAT, &c.weight_decay, 0, 10, "X", "L2 weight decay (decoupled for adamw)", "0; 0.01 for adamw", 0},
        {"sched", CLI_STR, &c.sched, 0, 0, "NAME", "learning-rate schedule: constant, step (every --lr-step epochs), cosine (annealed every step to --min-lr)", NULL, 0},
        {"lr-step", CLI_INT, &c.lr_step, 1, 100000, "N", "step schedule: multiply the rate by --lr-gamma every N epochs", NULL, 0},
        {"lr-gamma", CLI_FLOAT_ABOVE, &c.gamma, 0, 1, "X", "step schedule's factor", NULL, 0},
        {"min-lr", CLI_FLOAT, &c.min_lr, 0, 100, "X", "cosine schedule's final rate, at most --lr", NULL, 0},
        {"clip", CLI_FLOAT, &c.clip, 0, 1e9, "X", "clip gradients to this global L2 norm; 0 = off", NULL, 0},
        {"loss", CLI_STR, &c.loss, 0, 0, "NAME", "xent, cce, bce, hinge, mse, mae, huber[:delta] (the tensor each reads: above)", NULL, 0},
        {"init-weights", CLI_STR, &c.init_weights, 0, 0, "NAME", "xavier (normal), xavier_uniform, he", NULL, 0},
        {"seed", CLI_U64, &c.seed, 0, 0, "N", "random seed (weights, shuffling, dropout, augmentation)", NULL, 0},
        {"threads", CLI_INT, &c.threads, 0, 1024, "N", "threads for the kernels; 0 = automatic: up to every core, fewer while fewer train faster (a busy machine); the same bits at any count", NULL, 0},
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

    opt_source src;
    memset(&src, 0, sizeof src);
    src.opts = opts;
    src.resume = c.resume;
    _Static_assert(sizeof opts / sizeof opts[0] <= TRAIN_MAX_OPTS, "opt_source holds too few options");
    for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;

    cnn_model *m = NULL;
    cnn_dataset train = {0}, test = {0};
    float *xbuf = NULL;
    uint8_t *lbuf = NULL;
    int *perm = NULL, *predicted = NULL;
    cli_classes names = {0};
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = &c;
    rs.src = &src;
    cli_confusion conf = {0};
    char *resume_out = NULL;

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
        if ((rc = train_options_from_checkpoint(m, &src))) goto done;
        /* the model next to its checkpoint: <out>.ckpt gives <out> */
        size_t n = strlen(c.resume);
        if (!src.cmdline[opt_index_of(opts, "out")] && n > 5 && strcmp(c.resume + n - 5, ".ckpt") == 0) {
            if (!(resume_out = strndup(c.resume, n - 5))) {
                rc = cli_error(CMD, "out of memory");
                goto done;
            }
            c.out = resume_out;
        }
    }
    run_choices rc_x;
    if ((rc = train_check_options(&c, &src, &rc_x))) goto done;
    int batch = rc_x.batch;

    /* ---- every output, before any work */
    snprintf(rs.ckpt_path, sizeof rs.ckpt_path, "%s.ckpt", c.out);
    if (cnn_dist_root() && (rc = train_check_outputs(&c, rs.ckpt_path))) goto done;

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
    if (cnn_model_check_loss(m, loss) != CNN_OK) {
        rc = cli_usage_error(CMD, "--loss: %s", cnn_errmsg());
        goto done;
    }

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
        rc = train_option_error(&src, "val", "%d leaves no training images (the training file holds %d)",
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
        /* the data set's classes; outputs past them are named by index */
        char *cls = NULL;
        if (cli_default_classes(c.data ? NULL : c.dataset, classes, &names) == 0)
            cls = cli_classes_join(&names);
        rc |= cls ? meta_set(m, "classes", cls) : cli_error(CMD, "out of memory");
        free(cls);
        rc |= meta_set(m, "dataset", dsname);
        if (rc) {
            rc = cli_error(CMD, "%s", cnn_errmsg());
            goto done;
        }
    }
    if ((rc = cli_classes_from_model(CMD, m, &names))) goto done;

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
    predicted = malloc(sizeof *predicted * (size_t)ntest);
    if (!xbuf || !lbuf || !perm || !predicted) {
        rc = cli_error(CMD, "out of memory for batches of %d images", max_batch);
        goto done;
    }

    const long long run[] = {ntrain, c.val, ntest, batch, steps, c.epochs, rs.st.epoch, rs.st.step};
    if ((rc = train_mpi_check(CMD, m, &train, &test, run, (int)(sizeof run / sizeof run[0]))))
        goto done;

    printf("cnn train: %s, %zu parameters, on %s (%s): %d training, %d validation, %d test images\n",
           c.arch, cnn_model_num_params(m), dsname, dir, ntrain, c.val, ntest);
    /* with no --threads the count is automatic: steps time themselves and
     * use fewer threads while fewer run faster (src/core/threads.c) */
    char threads[64];
    const int most = cnn_threads_max();
    if (c.threads > 0 || getenv("OMP_NUM_THREADS") || most == 1)
        snprintf(threads, sizeof threads, "%d thread%s", most, most == 1 ? "" : "s");
    else
        snprintf(threads, sizeof threads, "1 to %d threads (automatic)", most);
    char ranks[40] = ""; /* under mpirun: "2 MPI ranks x 1 thread" */
    if (cnn_dist_active())
        snprintf(ranks, sizeof ranks, "%d MPI rank%s x ", cnn_dist_size(), cnn_dist_size() == 1 ? "" : "s");
    printf("batch %d, %s lr %g, %s schedule, loss %s, %d epoch%s, %s%s, %s kernels (%s)%s%s\n",
           batch, c.opt, c.lr, c.sched, c.loss, c.epochs, c.epochs == 1 ? "" : "s", ranks, threads,
           rc_x.kern == CNN_KERNELS_FAST ? "fast" : "ref", cnn_simd_name(),
           c.augment ? ", augmented" : "", c.no_shuffle ? ", not shuffled" : "");
    if (c.resume) {
        printf("resuming %s at epoch %d, step %d", c.resume, rs.st.epoch + 1, rs.st.step);
        if (c.epochs != src.ckpt_epochs)
            printf(" (the run %s from %d to %d epochs)", c.epochs > src.ckpt_epochs ? "extended" : "cut",
                   src.ckpt_epochs, c.epochs);
        printf("\n");
        /* where the stopped run wrote, if this one does not */
        for (int i = 0; opts[i].name; i++) {
            const char *was = src.recorded[i]; /* set for string options only */
            if (!was) continue;
            const char *now = *(const char *const *)opts[i].dest;
            if (!now || strcmp(was, now) != 0)
                printf("(the run wrote --%s %s; this one %s%s)\n", opts[i].name, was,
                       now ? "writes " : "does not: give the option to continue it", now ? now : "");
        }
    }
    fflush(stdout);

    /* under mpirun a signal ends every rank (mpirun passes it on) */
    if (cnn_dist_size() < 2) install_stop_handlers();
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
    for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
        free(src.owned[i]);
        free(src.recorded[i]);
    }
    free(resume_out);
    cli_classes_free(&names);
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
