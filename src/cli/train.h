/* train.h — what the files of `cnn train` share: train.c (the command and
 * the run's setup), train_loop.c (the epochs, and the files saved on the
 * way), train_finish.c (the test report and the final files) and
 * train_options.c (the options: from the command line or a checkpoint,
 * checked together, the output paths, the command that resumes). */
#ifndef CNN_CLI_TRAIN_H
#define CNN_CLI_TRAIN_H

#include "cli/checkpoint.h"
#include "cli/cli.h"

#define TRAIN_CMD "train"

/* The defaults: Adam at 0.005 annealed by cosine every step. Measured,
 * one epoch of each preset (README, "Defaults"): lenet5 98.6-98.8% over
 * three seeds where SGD at 0.01 gave 92-95% and Adam at 0.001 constant
 * 97.3-98.1%; the best of three candidates on lenet5 and simplecnn, within
 * 0.1% of the best on pytorchnet and best. The learning rate depends on
 * the optimizer. */
#define DEFAULT_OPT "adam"
#define DEFAULT_SCHED "cosine"
#define DEFAULT_LR_SGD 0.01   /* sgd, momentum, nesterov */
#define DEFAULT_LR_ADAM 0.005 /* adam, adamw */

typedef struct {
    const char *arch, *dataset, *data, *batch, *opt, *sched, *loss, *init_weights, *kernels;
    const char *init, *out, *resume, *history, *plot;
    const char *fit, *cache_dir; /* how pictures become inputs; where caches go */
    const char *report; /* the report page (cnn report) at the end, or NULL */
    int epochs, val, limit, test_limit, threads, checkpoint_every, no_shuffle, augment, lr_step;
    int strict;
    double lr, momentum, weight_decay, clip, gamma, min_lr, test_split;
    /* --val as given: a count of images, or a fraction below 1 (val is the
     * count it gives once the data is read); --early-stop's patience (0:
     * off); --best, where the best epoch's model goes (NULL: nowhere) */
    double val_arg;
    int early_stop;
    const char *best;
    uint64_t seed;
} train_cfg;

/* The defaults into c and the option table of `cnn train` for it into opts
 * (TRAIN_NOPTS entries and the terminating one); --mem-limit, not an option
 * of the run, goes to *mem_limit. */
#define TRAIN_NOPTS 38
void train_options_init(train_cfg *c, const char **mem_limit, cli_opt *opts);

/* Options that shape the run or what it reports: a checkpoint and a model
 * file record them (train.opt.NAME), --resume takes them from the
 * checkpoint, and given again they must agree (--epochs may grow: that
 * extends the run). */
extern const char *const train_run_options[];
/* Of those, the ones added after checkpoints were first written: a
 * checkpoint without one ran with its default. */
extern const char *const train_run_options_added[];
/* Options that only say where the output goes or how fast (the weights are
 * the same bits at any thread count): a checkpoint records them
 * (train.out.NAME) and they may be given anew on --resume. */
extern const char *const train_output_options[];
/* Of those, the paths. A checkpoint is hostile input: a path it holds could
 * name any file the user can write, so --resume never writes where the
 * checkpoint says. --out defaults to the checkpoint's own name without
 * ".ckpt"; --history and --plot are written when given (the resume command
 * printed when a run stops gives them). The other output options
 * (--threads, --checkpoint-every) are taken from the checkpoint. */
extern const char *const train_output_paths[];
/* Whether name is in a NULL-terminated list. */
int train_listed(const char *const *list, const char *name);

/* The command line's options and, with --resume, the checkpoint's. */
#define TRAIN_MAX_OPTS 64
typedef struct {
    cli_opt *opts;
    int cmdline[TRAIN_MAX_OPTS]; /* given on the command line (by index in opts) */
    const char *resume;          /* the checkpoint, or NULL */
    int ckpt_epochs;             /* the epochs the checkpoint's run was set to */
    char *owned[TRAIN_MAX_OPTS]; /* values copied out of the checkpoint */
    char *recorded[TRAIN_MAX_OPTS]; /* the checkpoint's output paths (not used) */
} opt_source;

/* The source of a run's options just parsed into opts: which were given
 * on the command line, and the checkpoint to resume (or NULL). */
void train_source_init(opt_source *src, cli_opt *opts, const char *resume);

/* A bad value of option `name`: a usage error (exit 2) if it was given on
 * the command line, else a data error (exit 1) naming the checkpoint and
 * its field. Returns the exit code. */
int train_option_error(const opt_source *src, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Take the run's options from a checkpoint (a loaded model): each one
 * given on the command line must agree with it, but for --epochs (checked
 * once the state is read); --threads and --checkpoint-every given anew
 * replace the checkpoint's, and its output paths are only remembered
 * (src->recorded). Returns 0, or the exit code after printing. */
int train_options_from_checkpoint(cnn_model *ck, opt_source *src);

/* What the option texts mean, checked together. */
typedef struct {
    cnn_opt_kind opt;
    cnn_sched_kind sched;
    cnn_loss loss;
    cnn_kernels kern;
    cnn_init init;
    int batch; /* 0: the full training set */
} run_choices;
/* Parse the named choices, resolve the defaults that depend on the
 * optimizer (into c, so that they are recorded) and check the options
 * against each other. Returns 0, or the exit code after printing. */
int train_check_options(train_cfg *c, const opt_source *src, run_choices *x);

/* --val as a count of images out of `n`: a fraction is rounded to the
 * nearest image. Returns 0, or the exit code after printing (a fraction
 * that gives no image). */
int train_val_count(train_cfg *c, const opt_source *src, int n);

/* <out> without a final ".safetensors", then ".best.safetensors": where
 * --early-stop keeps the best model unless --best says. malloc'd; NULL when
 * out of memory. */
char *train_default_best(const char *out);

/* Whether the model can take the loss (a final softmax for cce, ...).
 * Returns 0, or the exit code after printing. */
int train_check_loss(const cnn_model *m, const opt_source *src, cnn_loss loss);

/* The run's shape on train_n training images (the validation images already
 * taken out; at least one, checked before): the images of an epoch
 * (--limit), the images per step (*batch: 0 or more than there are is all
 * of them) and the steps. */
void train_shape(const train_cfg *c, int train_n, int *batch, int *ntrain, int *steps);

/* Record the options in effect in metadata: train.opt.NAME for the run's,
 * and in a checkpoint (checkpoint != 0) train.out.NAME for the output
 * options; a model file has no train.out.* keys (removed). 0, or -1 if set
 * failed. */
int train_record_options(const cli_opt *opts, cli_meta_set set, void *ctx, int checkpoint);

/* Every output (--out, the checkpoint, --history, --plot, --best, --report) before any work:
 * no two name one file and none overwrites the --resume or --init file
 * (exit 2), and each can be written (exit 1). */
int train_check_outputs(const train_cfg *c, const char *ckpt);

/* The command that resumes the run from `ckpt`: the program, --resume, the
 * options given on the command line and the output options in effect,
 * quoted for a POSIX shell. */
void train_resume_command(const opt_source *src, const char *ckpt, char *buf, size_t len);

/* Under MPI with more than one rank (train_mpi.c): refuse a model whose
 * batches cannot be shared (batchnorm, --kernels ref), and check that every
 * rank holds the same data, weights, optimizer state and run values. */
int train_mpi_check(const char *cmd, cnn_model *m, const cli_split *train, const cli_split *val,
                    const cli_split *test, const long long *run, int nrun);

/* ---------------------------------------------------------------- the run */

/* A run once set up: what train.c prepared, and where the run stands. */
typedef struct {
    train_cfg *cfg;
    opt_source *src;
    run_choices x;              /* what the option texts mean */
    cnn_optim_config oc;
    cnn_model *m;
    cli_data dset;
    const char *dir, *dsname;   /* where the data is; its name in titles */
    cli_split tr, va;           /* an epoch's training images; the validation images */
    const cli_split *test;
    int ntrain, nval, ntest;
    int batch, steps;           /* images per step; steps per epoch */
    int ic, ih, iw;             /* the input shape */
    cli_norm nm;
    cli_classes names;
    float *xbuf;                /* a batch of inputs (max_batch images) */
    uint8_t *lbuf;              /* and its labels */
    int *perm;                  /* an epoch's order of the training images */
    int *predicted;             /* the test set's predictions */
    cli_ckpt_state st;          /* where the run stands, the history */
    char test_accuracy[32];     /* "" until measured */
    char ckpt_path[4096];
    int best_saved;             /* this run wrote --best */
    double t_start, train_seconds;
    long images_trained;
    char *resume_out, *best_out; /* cfg->out and cfg->best when made here */
} train_run;

/* Set by the first SIGINT or SIGTERM once the epochs start: the run stops
 * at the next batch and saves. */
extern volatile sig_atomic_t train_stop_signal;

/* Whether a file (or anything) is at path p. */
int train_file_exists(const char *p);
/* Store a metadata value in the model ctx (NULL removes the key), in the
 * shape of cli_meta_set. */
int train_meta_set(void *ctx, const char *key, const char *value);
/* Write the record of the run into the model's metadata (a checkpoint's
 * with checkpoint != 0). Returns 0, or the exit code after printing. */
int train_record_state(train_run *r, int checkpoint);
/* Save the checkpoint or the model file (under MPI, rank 0 alone) with
 * stopping signals held off. Return 0, or the exit code after printing. */
int train_save_checkpoint(train_run *r);
int train_save_model(train_run *r);
/* A signal asked the run to stop (`where` says when): save the checkpoint
 * and the model so far, print how to resume; returns 128 + the signal. */
int train_stop_run(train_run *r, const char *where);

/* The epochs from where the run stands up to cfg->epochs (or an early
 * stop). Returns 0, or the exit code after printing. */
int train_epochs(train_run *r);
/* The test set's report, the model file, the final checkpoint and --report.
 * Returns 0, or the exit code after printing. */
int train_finish(train_run *r);

#endif
