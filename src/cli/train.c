/* train.c — `cnn train`: the training loop of the seed report (section 3.4)
 * at full scale: mini-batches (or the full batch), an optimizer and a
 * schedule, validation per epoch, checkpoints that resume bit-identically,
 * Ctrl-C and SIGTERM that save, and the test report at the end.
 *
 * This file is the command and the run's setup: the options, the model,
 * the data and the machine. The epochs are in train_loop.c, the end of the
 * run in train_finish.c. The run's options are recorded in every
 * checkpoint and model file (train.opt.*, src/cli/train_options.c); a
 * checkpoint adds where the output goes (train.out.*) and the training
 * state (src/cli/checkpoint.c). */
#include "cli/checkpoint.h"
#include "cli/train.h"
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>

static const char *CMD = TRAIN_CMD;

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

static int opt_index_of(const cli_opt *opts, const char *name)
{
    for (int i = 0; opts[i].name; i++)
        if (strcmp(opts[i].name, name) == 0) return i;
    return -1;
}

/* ------------------------------------------------------------- the setup */

/* The options: from the command line, or a checkpoint's (which brings the
 * model too); then every output, checked before any work. */
static int setup_options(train_run *r)
{
    train_cfg *c = r->cfg;
    opt_source *src = r->src;
    cli_opt *opts = src->opts;
    int rc;
    if (c->resume && c->init)
        return cli_usage_error(CMD, "--resume and --init conflict: a checkpoint already holds the weights");
    if (c->data && cli_opt_find(opts, "dataset")->given)
        return cli_usage_error(CMD, "--data and --dataset conflict: give one");

    if (c->resume) {
        if ((rc = cli_load_model(CMD, c->resume, &r->m))) return rc;
        if (!cli_ckpt_is_checkpoint(meta_get, r->m))
            return cli_error(CMD,
                             "--resume: %s is a model file, not a checkpoint: it holds the weights but "
                             "not the optimizer's state. Resume from the run's checkpoint (<out>.ckpt: "
                             "written by --checkpoint-every N, at the end of such a run, and when a "
                             "signal stops it), or start a new run from these weights with --init %s",
                             c->resume, c->resume);
        if ((rc = train_options_from_checkpoint(r->m, src))) return rc;
        /* the model next to its checkpoint: <out>.ckpt gives <out> */
        size_t n = strlen(c->resume);
        if (!src->cmdline[opt_index_of(opts, "out")] && n > 5 && strcmp(c->resume + n - 5, ".ckpt") == 0) {
            if (!(r->resume_out = strndup(c->resume, n - 5))) return cli_error(CMD, "out of memory");
            c->out = r->resume_out;
        }
    }
    if ((rc = train_check_options(c, src, &r->x))) return rc;
    r->batch = r->x.batch;

    /* early stopping keeps the best model next to the last unless --best
     * says where */
    if (c->early_stop > 0 && !c->best) {
        if (!(r->best_out = train_default_best(c->out))) return cli_error(CMD, "out of memory");
        c->best = r->best_out;
    }
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s.ckpt", c->out);
    if (cnn_dist_root() && (rc = train_check_outputs(c, r->ckpt_path))) return rc;
    return CLI_OK;
}

/* The model, built and initialised for a new run (a resumed one has it),
 * and the optimizer's settings. */
static int setup_model(train_run *r)
{
    const train_cfg *c = r->cfg;
    int rc;
    if (!c->resume) {
        if ((rc = cli_build_model(CMD, c->arch, &r->m))) return rc;
        if (cnn_model_init(r->m, r->x.init, c->seed) != CNN_OK) return cli_error(CMD, "%s", cnn_errmsg());
        if (c->init && cnn_model_load_weights(r->m, c->init) != CNN_OK)
            return cli_error(CMD, "--init: %s", cnn_errmsg());
        /* the data RNG is separate from the model's (weights, dropout) so
         * that shuffling does not change when the architecture does */
        cnn_rng_seed(&r->st.epoch_rng, c->seed ^ 0x9e3779b97f4a7c15ULL);
    }
    cnn_optim_config *oc = &r->oc;
    *oc = cnn_optim_defaults(r->x.opt);
    oc->lr = (float)c->lr;
    oc->momentum = (float)c->momentum;
    oc->weight_decay = (float)c->weight_decay;
    oc->clip_norm = (float)c->clip;
    oc->sched = r->x.sched;
    oc->step_epochs = c->lr_step;
    oc->gamma = (float)c->gamma;
    oc->min_lr = (float)c->min_lr;
    return train_check_loss(r->m, r->src, r->x.loss);
}

/* The data in the model's input shape, cut into the run's training,
 * validation and test images. */
static int setup_data(train_run *r)
{
    train_cfg *c = r->cfg;
    const opt_source *src = r->src;
    cnn_model_input_shape(r->m, &r->ic, &r->ih, &r->iw);
    cli_data_opts dopt = {c->dataset, c->data, r->ic, r->ih, r->iw, CNN_PREP_PAD, c->test_split,
                          c->seed, c->cache_dir, c->strict, 0};
    (void)cnn_prep_parse(c->fit, &dopt.prep); /* checked with the options */
    /* under MPI rank 0 loads first: it builds a missing cache file alone */
    if (!cnn_dist_root()) cnn_dist_barrier();
    int rc = cli_data_load(CMD, &dopt, &r->dset);
    if (cnn_dist_root()) cnn_dist_barrier();
    if (rc) return rc;
    const cli_data *d = &r->dset;
    r->dir = d->where;
    int k = cnn_model_output_size(r->m);
    if (d->classes > k)
        return cli_error(CMD, "%s has %d classes but the model has only %d outputs: give the last dense "
                         "layer %d outputs", r->dir, d->classes, k, d->classes);
    if (d->classes < k)
        fprintf(stderr, "cnn train: warning: the model has %d outputs but %s has %d classes: outputs %d "
                "to %d are never a training target\n", k, r->dir, d->classes, d->classes, k - 1);
    /* validation: DIR/val, or the last --val images (a count, or a fraction)
     * of the training split */
    if (d->val.n == 0 && (rc = train_val_count(c, src, d->train.n))) return rc;
    r->nval = d->val.n > 0 ? d->val.n : c->val;
    if (d->val.n > 0 && cli_opt_find(src->opts, "val")->given)
        fprintf(stderr, "cnn train: note: %s/val holds the validation images; --val is not used\n", r->dir);
    int ntrain_all = d->val.n > 0 ? d->train.n : d->train.n - c->val;
    if (ntrain_all < 1)
        return train_option_error(src, "val", "%d leaves no training images (the training split holds %d)",
                                  c->val, d->train.n);
    train_shape(c, ntrain_all, &r->batch, &r->ntrain, &r->steps);
    r->tr = view(&d->train, 0, r->ntrain);
    r->va = d->val.n > 0 ? d->val : view(&d->train, d->train.n - c->val, c->val);
    r->test = &d->test;
    r->ntest = c->test_limit > 0 && c->test_limit < r->test->n ? c->test_limit : r->test->n;
    r->dsname = c->data ? "custom" : c->dataset;
    return CLI_OK;
}

/* Where a resumed run stands, checked against the run. */
static int setup_resume_state(train_run *r)
{
    const train_cfg *c = r->cfg;
    const opt_source *src = r->src;
    cli_ckpt_run run = {src->ckpt_epochs, r->steps, r->batch, r->ntrain, r->nval > 0, c->early_stop};
    char msg[512];
    if (cli_ckpt_state_read(meta_get, r->m, &run, &r->st, msg, sizeof msg))
        return cli_error(CMD, "--resume: %s: %s", c->resume, msg);
    int started = r->st.epoch + (r->st.step > 0);
    if (c->epochs < started)
        return cli_usage_error(CMD, "--epochs %d: the checkpoint %s has already trained %d epoch%s%s; "
                               "give --epochs %d or more (more than %d extend the run)",
                               c->epochs, c->resume, r->st.epoch, r->st.epoch == 1 ? "" : "s",
                               r->st.step > 0 ? " and part of the next" : "", started, src->ckpt_epochs);
    return CLI_OK;
}

/* Normalisation, class names and how inputs are made, recorded in the
 * model for a new run (a resumed one reads them back), then the record of
 * the run. */
static int setup_record(train_run *r)
{
    const train_cfg *c = r->cfg;
    cnn_model *m = r->m;
    int rc;
    if (c->resume) {
        if ((rc = cli_norm_from_model(CMD, m, &r->nm))) return rc;
    } else {
        cli_split_stats(&r->tr, &r->nm);
        if ((rc = cli_norm_to_model(CMD, m, &r->nm))) return rc;
        /* how pictures are made into inputs: predict does the same */
        rc |= train_meta_set(m, "prep", c->fit);
        char buf[64];
        if (r->dset.single) {
            snprintf(buf, sizeof buf, "%.9g", c->test_split);
            rc |= train_meta_set(m, "test_split", buf);
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->seed);
            rc |= train_meta_set(m, "split_seed", buf);
        }
        /* the data set's classes; outputs past them are named by index */
        char *cls = cli_classes_join(&r->dset.names);
        rc |= cls ? train_meta_set(m, "classes", cls) : cli_error(CMD, "out of memory");
        free(cls);
        rc |= train_meta_set(m, "dataset", r->dsname);
        if (rc) return cli_error(CMD, "%s", cnn_errmsg());
    }
    if ((rc = cli_classes_from_model(CMD, m, &r->names))) return rc;
    return train_record_state(r, 0);
}

/* Threads, kernels, the model's batch buffers and optimizer, and the
 * run's own buffers; under MPI, every rank checked to run the same. */
static int setup_machine(train_run *r)
{
    const train_cfg *c = r->cfg;
    cnn_set_threads(c->threads);
    cnn_model_set_kernels(r->m, r->x.kern);
    int max_batch = r->batch > 256 ? r->batch : 256;
    if (cnn_model_set_batch(r->m, max_batch) != CNN_OK || cnn_model_set_optimizer(r->m, &r->oc) != CNN_OK)
        return cli_error(CMD, "%s", cnn_errmsg());
    size_t px = (size_t)r->ic * r->ih * r->iw;
    r->xbuf = cnn_alloc(sizeof(float) * px * (size_t)max_batch, "the input batch");
    r->lbuf = malloc((size_t)max_batch);
    r->perm = malloc(sizeof(int) * (size_t)r->ntrain);
    r->predicted = malloc(sizeof *r->predicted * (size_t)r->ntest);
    if (!r->xbuf || !r->lbuf || !r->perm || !r->predicted)
        return cli_error(CMD, "out of memory for batches of %d images", max_batch);
    const long long run[] = {r->ntrain, r->nval, r->ntest, r->batch, r->steps, c->epochs,
                             r->st.epoch, r->st.step};
    return train_mpi_check(CMD, r->m, &r->tr, &r->va, r->test, run, (int)(sizeof run / sizeof run[0]));
}

/* What the run is about to do: the model and data, the settings, and for
 * a resumed run where it stands and where the stopped run wrote. */
static void print_plan(const train_run *r)
{
    const train_cfg *c = r->cfg;
    const opt_source *src = r->src;
    printf("cnn train: %s, %zu parameters, on %s (%s): %d training, %d validation, %d test images\n",
           c->arch, cnn_model_num_params(r->m), r->dsname, r->dir, r->ntrain, r->nval, r->ntest);
    if (r->dset.single)
        printf("data: %s has no test split: %.3g of its %d images held out for testing (--test-split, "
               "drawn with seed %llu)\n", r->dir, c->test_split, r->dset.store[0].n,
               (unsigned long long)c->seed);
    /* with no --threads the count is automatic: steps time themselves and
     * use fewer threads while fewer run faster (src/core/threads.c) */
    char threads[64];
    const int most = cnn_threads_max();
    if (c->threads > 0 || getenv("OMP_NUM_THREADS") || most == 1)
        snprintf(threads, sizeof threads, "%d thread%s", most, most == 1 ? "" : "s");
    else
        snprintf(threads, sizeof threads, "1 to %d threads (automatic)", most);
    char ranks[40] = ""; /* under mpirun: "2 MPI ranks x 1 thread" */
    if (cnn_dist_active())
        snprintf(ranks, sizeof ranks, "%d MPI rank%s x ", cnn_dist_size(), cnn_dist_size() == 1 ? "" : "s");
    printf("batch %d, %s lr %g, %s schedule, loss %s, %d epoch%s, %s%s, %s kernels (%s)%s%s\n",
           r->batch, c->opt, c->lr, c->sched, c->loss, c->epochs, c->epochs == 1 ? "" : "s", ranks,
           threads, r->x.kern == CNN_KERNELS_FAST ? "fast" : "ref", cnn_simd_name(),
           c->augment ? ", augmented" : "", c->no_shuffle ? ", not shuffled" : "");
    if (c->resume) {
        printf("resuming %s at epoch %d, step %d", c->resume, r->st.epoch + 1, r->st.step);
        if (c->epochs != src->ckpt_epochs)
            printf(" (the run %s from %d to %d epochs)", c->epochs > src->ckpt_epochs ? "extended" : "cut",
                   src->ckpt_epochs, c->epochs);
        printf("\n");
        /* where the stopped run wrote, if this one does not */
        for (int i = 0; src->opts[i].name; i++) {
            const char *was = src->recorded[i]; /* set for string options only */
            if (!was) continue;
            const char *now = *(const char *const *)src->opts[i].dest;
            if (!now || strcmp(was, now) != 0)
                printf("(the run wrote --%s %s; this one %s%s)\n", src->opts[i].name, was,
                       now ? "writes " : "does not: give the option to continue it", now ? now : "");
        }
    }
    fflush(stdout);
}

/* Everything before the first epoch. Returns 0, or the exit code after
 * printing. */
static int train_setup(train_run *r)
{
    int rc;
    if ((rc = setup_options(r)) || (rc = setup_model(r)) || (rc = setup_data(r))) return rc;
    if (r->cfg->resume && (rc = setup_resume_state(r))) return rc;
    if ((rc = setup_record(r)) || (rc = setup_machine(r))) return rc;
    print_plan(r);
    return CLI_OK;
}

static void train_run_free(train_run *r)
{
    for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
        free(r->src->owned[i]);
        free(r->src->recorded[i]);
    }
    free(r->resume_out);
    free(r->best_out);
    cli_classes_free(&r->names);
    cli_ckpt_state_free(&r->st);
    free(r->predicted);
    free(r->perm);
    free(r->lbuf);
    cnn_free(r->xbuf);
    cli_data_free(&r->dset);
    cnn_model_free(r->m);
}

/* ----------------------------------------------------------- the command */

int cli_train(int argc, char **argv)
{
    train_cfg c;
    const char *mem_limit; /* not a run option: a resumed run may set its own */
    cli_opt opts[TRAIN_NOPTS + 1];
    train_options_init(&c, &mem_limit, opts);
    int rc = cli_parse_or_help(CMD, argc, argv, opts, NULL, 0, NULL, "[options]", about);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_set_mem_limit(CMD, mem_limit))) return rc;

    opt_source src;
    train_source_init(&src, opts, c.resume);
    train_run r;
    memset(&r, 0, sizeof r);
    r.cfg = &c;
    r.src = &src;

    rc = train_setup(&r);
    if (!rc) rc = train_epochs(&r);
    if (!rc) rc = train_finish(&r);
    train_run_free(&r);
    return rc;
}
