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

/* Images [first, first + n) of a split, sharing its memory. */
static cli_split view(const cli_split *s, int first, int n)
{
    cli_split v = *s;
    if (v.idx) v.idx += first;
    else v.first += first;
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
    char buf[64];
    int rc = 0;
    snprintf(buf, sizeof buf, "%d", rs->cfg->epochs);
    rc |= meta_set(rs->m, "epochs", buf);
    rc |= meta_set(rs->m, "test_accuracy", rs->test_accuracy);
    rc |= cli_ckpt_state_write(meta_set, rs->m, &rs->st, checkpoint);
    rc |= train_record_options(rs->src->opts, meta_set, rs->m, checkpoint);
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

/* The model as it stands after an epoch whose validation loss is the
 * lowest so far, to --best: like the final model, with the record of the
 * run so far (its test accuracy not measured). */
static int save_best(run_state *rs)
{
    if (!cnn_dist_root()) return CLI_OK;
    sigset_t old;
    block_stops(&old);
    int rc = record_state(rs, 0);
    if (!rc && cnn_model_save(rs->m, rs->cfg->best, 0) != CNN_OK)
        rc = cli_error(CMD, "cannot save the best model: %s", cnn_errmsg());
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
    "Train a model on a data set and print the test set's classification report.\n"
    "--data takes, told apart by what they hold:\n"
    "  DIR of IDX files       train-images-idx3-ubyte[.gz], train-labels-..., t10k-...\n"
    "  DIR/<class>/*.png      an image-folder tree (png, jpg, jpeg, bmp, gif, pgm, ppm);\n"
    "                         or DIR/train/<class>/..., DIR/test/... and an optional DIR/val/...\n"
    "  FILE.csv               label,pixel0,...,pixelN-1 per line (N = C*H*W of the model's\n"
    "                         input, planar: channel, row, column; a header line is allowed);\n"
    "                         or DIR/train.csv and DIR/test.csv\n"
    "A source without a test split is cut by --test-split (a seeded draw). Pictures of any\n"
    "size, grey or colour, are made into the model's input by --fit and decoded once into\n"
    "a cache (DIR/.cnn-cache/, or --cache-dir when that cannot be written), reused while\n"
    "the files are unchanged. The validation set is the last --val images of the training\n"
    "split (DIR/val if there is one); --limit keeps the first N of the rest. Inputs are\n"
    "normalised with the training pixels' mean and std per channel, stored in the model\n"
    "file with the class names and the preparation (prep), which predict applies.\n"
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
    "Like Keras's fit: --val takes a count or a fraction (0.1); --early-stop N stops after N\n"
    "epochs without a lower validation loss; --best FILE keeps the model of the epoch with\n"
    "the lowest validation loss (with --early-stop, by default <out stem>.best.safetensors)\n"
    "while <out> gets the last epoch's.\n"
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
    train_cfg c;
    const char *mem_limit; /* not a run option: a resumed run may set its own */
    cli_opt opts[TRAIN_NOPTS + 1];
    train_options_init(&c, &mem_limit, opts);
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
    for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;

    cnn_model *m = NULL;
    cli_data dset = {0};
    float *xbuf = NULL;
    uint8_t *lbuf = NULL;
    int *perm = NULL, *predicted = NULL;
    cli_classes names = {0};
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = &c;
    rs.src = &src;
    cli_confusion conf = {0};
    char *resume_out = NULL, *best_out = NULL;
    int best_saved = 0; /* this run wrote --best */

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

    /* ---- every output, before any work; early stopping keeps the best
     * model next to the last unless --best says where */
    if (c.early_stop > 0 && !c.best) {
        if (!(best_out = train_default_best(c.out))) {
            rc = cli_error(CMD, "out of memory");
            goto done;
        }
        c.best = best_out;
    }
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
    if ((rc = train_check_loss(m, &src, loss))) goto done;

    /* ---- the data, in the model's input shape */
    int ic, ih, iw;
    cnn_model_input_shape(m, &ic, &ih, &iw);
    cli_data_opts dopt = {c.dataset, c.data, ic, ih, iw, CNN_PREP_PAD, c.test_split, c.seed,
                          c.cache_dir, c.strict, 0};
    (void)cnn_prep_parse(c.fit, &dopt.prep); /* checked with the options */
    /* under MPI rank 0 loads first: it builds a missing cache file alone */
    if (!cnn_dist_root()) cnn_dist_barrier();
    rc = cli_data_load(CMD, &dopt, &dset);
    if (cnn_dist_root()) cnn_dist_barrier();
    if (rc) goto done;
    const char *dir = dset.where;
    int k = cnn_model_output_size(m);
    int classes = dset.classes;
    if (classes > k) {
        rc = cli_error(CMD, "%s has %d classes but the model has only %d outputs: give the last dense "
                       "layer %d outputs", dir, classes, k, classes);
        goto done;
    }
    if (classes < k)
        fprintf(stderr, "cnn train: warning: the model has %d outputs but %s has %d classes: outputs %d "
                "to %d are never a training target\n", k, dir, classes, classes, k - 1);
    /* validation: DIR/val, or the last --val images (a count, or a fraction)
     * of the training split */
    if (dset.val.n == 0 && (rc = train_val_count(&c, &src, dset.train.n))) goto done;
    int nval = dset.val.n > 0 ? dset.val.n : c.val;
    if (dset.val.n > 0 && cli_opt_find(opts, "val")->given)
        fprintf(stderr, "cnn train: note: %s/val holds the validation images; --val is not used\n", dir);
    int ntrain_all = dset.val.n > 0 ? dset.train.n : dset.train.n - c.val;
    if (ntrain_all < 1) {
        rc = train_option_error(&src, "val", "%d leaves no training images (the training split holds %d)",
                          c.val, dset.train.n);
        goto done;
    }
    int ntrain, steps;
    train_shape(&c, ntrain_all, &batch, &ntrain, &steps);
    cli_split tr = view(&dset.train, 0, ntrain);
    cli_split va = dset.val.n > 0 ? dset.val : view(&dset.train, dset.train.n - c.val, c.val);
    const cli_split *test = &dset.test;
    int ntest = c.test_limit > 0 && c.test_limit < test->n ? c.test_limit : test->n;
    const char *dsname = c.data ? "custom" : c.dataset;

    /* ---- where a resumed run stands, checked against the run */
    if (c.resume) {
        cli_ckpt_run run = {src.ckpt_epochs, steps, batch, ntrain, nval > 0, c.early_stop};
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
        cli_split_stats(&tr, &nm);
        if ((rc = cli_norm_to_model(CMD, m, &nm))) goto done;
        /* how pictures are made into inputs: predict does the same */
        rc |= meta_set(m, "prep", c.fit);
        char buf[64];
        if (dset.single) {
            snprintf(buf, sizeof buf, "%.9g", c.test_split);
            rc |= meta_set(m, "test_split", buf);
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)c.seed);
            rc |= meta_set(m, "split_seed", buf);
        }
        /* the data set's classes; outputs past them are named by index */
        char *cls = cli_classes_join(&dset.names);
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

    const long long run[] = {ntrain, nval, ntest, batch, steps, c.epochs, rs.st.epoch, rs.st.step};
    if ((rc = train_mpi_check(CMD, m, &tr, &va, test, run, (int)(sizeof run / sizeof run[0]))))
        goto done;

    printf("cnn train: %s, %zu parameters, on %s (%s): %d training, %d validation, %d test images\n",
           c.arch, cnn_model_num_params(m), dsname, dir, ntrain, nval, ntest);
    if (dset.single)
        printf("data: %s has no test split: %.3g of its %d images held out for testing (--test-split, "
               "drawn with seed %llu)\n", dir, c.test_split, dset.store[0].n, (unsigned long long)c.seed);
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

    /* under mpirun a signal ends every rank: mpirun ends them, nothing is saved */
    if (cnn_dist_size() < 2) install_stop_handlers();
    /* a resumed run's history file holds the earlier epochs at once */
    if (c.resume && rs.st.nrows > 0 && (rc = save_curves(&rs, dsname))) goto done;

    /* ---- the epochs */
    double t_start = cli_now(), train_seconds = 0;
    long images_trained = 0;
    while (rs.st.epoch < c.epochs) {
        /* early stopping: checked here, so that a run resumed after it
         * stopped stops again */
        if (cli_ckpt_stops_early(&rs.st, c.early_stop)) {
            int b = cli_ckpt_best_epoch(&rs.st);
            printf("Stopped early after epoch %d of %d: no lower validation loss in %d epochs (the lowest, "
                   "%.4f, at epoch %d)\n", rs.st.epoch, c.epochs, rs.st.epoch - b, rs.st.rows[b - 1].val_loss, b);
            break;
        }
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
                    cli_augment(cli_split_image(&tr, j), ic, ih, iw, 2.0f, 10.0f, &br, &nm,
                                xbuf + (size_t)i * px);
                    lbuf[i] = (uint8_t)cli_split_label(&tr, j);
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
        if (nval > 0) {
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
        if (nval > 0) printf("  val loss %.4f acc %.2f%%", row.val_loss, row.val_acc);
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
        /* the best model so far, when this epoch's validation loss is the lowest */
        if (c.best && cli_ckpt_best_epoch(&rs.st) == rs.st.epoch) {
            if ((rc = save_best(&rs))) goto done;
            best_saved = 1;
        }
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
    rc = cli_predict_all(CMD, m, test, ntest, &nm, xbuf, loss, predicted, NULL, NULL, &tc, &stop_signal);
    if (rc == CLI_STOPPED) {
        rc = stop_run(&rs, "testing (every epoch is trained)");
        goto done;
    }
    if (rc) goto done;
    if (cli_confusion_init(&conf, k)) {
        rc = cli_error(CMD, "out of memory");
        goto done;
    }
    for (int i = 0; i < ntest; i++) cli_confusion_add(&conf, cli_split_label(test, i), predicted[i]);
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
    if (c.best) {
        int b = cli_ckpt_best_epoch(&rs.st);
        if (b > 0 && (best_saved || file_exists(c.best)))
            printf("Saved the best model (epoch %d, validation loss %.4f) to %s%s\n", b,
                   rs.st.rows[b - 1].val_loss, c.best, best_saved ? "" : " (by the run this one resumed)");
        else if (b > 0)
            fprintf(stderr, "cnn train: note: the best epoch, %d, came before the checkpoint, and its model is "
                    "not in %s: the run that made the checkpoint saved it\n", b, c.best);
    }
    if (c.history) printf("Wrote the history to %s\n", c.history);
    if (c.plot) printf("Wrote the curves to %s\n", c.plot);
    if (c.report && cnn_dist_root()) {
        /* the page of `cnn report`, with this run's history and test set;
         * under MPI rank 0 makes it alone */
        cnn_dist_alone();
        char data_name[4200], from[64];
        snprintf(data_name, sizeof data_name, "%s (%s)", dsname, dir);
        snprintf(from, sizeof from, "this run");
        cli_report_in in = {.model_name = c.out, .test = test, .ntest = ntest, .data_name = data_name,
                            .rows = rs.st.rows, .nrows = rs.st.nrows, .history_from = from};
        double t_report = cli_now();
        size_t bytes = 0;
        if ((rc = cli_report_html(CMD, m, &in, c.report, &bytes))) goto done;
        printf("Wrote the report to %s (%.1f MB) in %.1f s\n", c.report, (double)bytes / 1e6,
               cli_now() - t_report);
    }
    rc = CLI_OK;

done:
    for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
        free(src.owned[i]);
        free(src.recorded[i]);
    }
    free(resume_out);
    free(best_out);
    cli_classes_free(&names);
    cli_confusion_free(&conf);
    cli_ckpt_state_free(&rs.st);
    free(predicted);
    free(perm);
    free(lbuf);
    cnn_free(xbuf);
    cli_data_free(&dset);
    cnn_model_free(m);
    return rc;
}
