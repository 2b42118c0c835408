/* checkpoint.h — the training state `cnn train` records in a checkpoint's
 * metadata (where the run stands, the epochs' history and wall times), and
 * reading it back with every field checked against the run it describes.
 *
 * The reader neither prints nor keeps global state: it returns a status and
 * a message, so that a fuzz target can call it on any metadata. */
#ifndef CNN_CLI_CHECKPOINT_H
#define CNN_CLI_CHECKPOINT_H

#include "cli/cli.h"

/* The run a checkpoint's state must fit, known once its options and data
 * are: epoch in [0, epochs], step in [0, steps], seen = the images of the
 * steps done, ... */
typedef struct {
    int epochs;   /* the run's epochs, as the checkpoint records them */
    int steps;    /* steps per epoch */
    int batch;    /* images per step (the last step may take fewer) */
    int ntrain;   /* training images per epoch */
    int has_val;  /* a validation set is held out: the history has its columns */
    int early_stop; /* --early-stop: stop after this many epochs without a lower
                     * validation loss (0: never) */
} cli_ckpt_run;

/* Where a run stands: the next batch to train is step `step` of epoch
 * `epoch` (both from 0). step == steps: the epoch is trained but not yet
 * validated; epoch == epochs: every epoch is done, the test is next. */
typedef struct {
    int epoch, step;
    cnn_rng epoch_rng;     /* the data RNG at the start of `epoch` */
    double loss_sum;       /* this epoch so far */
    long correct, seen;
    double epoch_seconds;  /* wall time spent in this epoch so far */
    cli_epoch_row *rows;   /* the `epoch` finished epochs, with their wall times */
    int nrows;
} cli_ckpt_state;

/* A value of the metadata, or NULL if absent. */
typedef const char *(*cli_meta_get)(const void *ctx, const char *key);
/* Set a value of the metadata (value NULL: remove the key); 0 or -1. */
typedef int (*cli_meta_set)(void *ctx, const char *key, const char *value);

/* Whether the metadata is a checkpoint's (a final model file records where
 * its run ended but not the wall times, nor the optimizer's state). */
int cli_ckpt_is_checkpoint(cli_meta_get get, const void *ctx);

/* Read the state and check every field against `run`, with strict number
 * parsing. Returns 0, or -1 with msg naming the field and what is wrong
 * ("train.step: 900 is past the end of an epoch of 75 steps"); st is empty
 * then. */
int cli_ckpt_state_read(cli_meta_get get, const void *ctx, const cli_ckpt_run *run,
                        cli_ckpt_state *st, char *msg, size_t len);

/* Write the state, every key in the same order each time (a resumed run's
 * file then matches an uninterrupted run's byte for byte). checkpoint == 0:
 * a final model's record, without the wall times (which differ from run to
 * run): those keys are removed. Returns 0, or -1 if set failed. */
int cli_ckpt_state_write(cli_meta_set set, void *ctx, const cli_ckpt_state *st, int checkpoint);

/* Early stopping and the best model follow from the history alone, so a
 * checkpoint needs nothing more to resume them: */
/* The finished epoch (from 1) with the lowest validation loss, the first of
 * equals; 0 when no epoch has one. */
int cli_ckpt_best_epoch(const cli_ckpt_state *st);
/* Whether a run stopping after `patience` epochs without a lower validation
 * loss (0: never) stops after its finished epochs. */
int cli_ckpt_stops_early(const cli_ckpt_state *st, int patience);

/* Add a finished epoch to the history; 0 or -1 (out of memory). */
int cli_ckpt_push_row(cli_ckpt_state *st, cli_epoch_row row);
void cli_ckpt_state_free(cli_ckpt_state *st);

#endif
