/* train_loop.c — the epochs of `cnn train` once the run is set up
 * (train.c): shuffled mini-batches (augmented if asked), an optimizer step
 * each, validation per epoch, and the files saved on the way: the history,
 * the best model, the checkpoints, and both checkpoint and model when
 * Ctrl-C or SIGTERM stops the run. */
#include "cli/checkpoint.h"
#include "cli/train.h"
#include "dist/dist.h"
#include "model/model.h"

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
volatile sig_atomic_t train_stop_signal = 0;

static void on_stop(int sig)
{
    if (!train_stop_signal) train_stop_signal = sig;
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

/* --------------------------------------------------------------- saving */

int train_file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

int train_meta_set(void *ctx, const char *key, const char *value)
{
    if (!value) {
        cnn_model_unset_meta(ctx, key);
        return 0;
    }
    return cnn_model_set_meta(ctx, key, value) == CNN_OK ? 0 : -1;
}

/* A checkpoint needs the record to resume, a final model keeps it as a
 * record of how it was made. Every key, always in this order: a resumed
 * run's file then matches an uninterrupted run's byte for byte. */
int train_record_state(train_run *r, int checkpoint)
{
    char buf[64];
    int rc = 0;
    snprintf(buf, sizeof buf, "%d", r->cfg->epochs);
    rc |= train_meta_set(r->m, "epochs", buf);
    rc |= train_meta_set(r->m, "test_accuracy", r->test_accuracy);
    rc |= cli_ckpt_state_write(train_meta_set, r->m, &r->st, checkpoint);
    rc |= train_record_options(r->src->opts, train_meta_set, r->m, checkpoint);
    return rc ? cli_error(CMD, "%s", cnn_errmsg()) : CLI_OK;
}

/* The model with the record of the run to path, as a checkpoint or not;
 * `what` names the file in an error. Under MPI rank 0 writes. */
static int save_as(train_run *r, const char *path, int checkpoint, const char *what)
{
    if (!cnn_dist_root()) return CLI_OK;
    sigset_t old;
    block_stops(&old);
    int rc = train_record_state(r, checkpoint);
    if (!rc && cnn_model_save(r->m, path, checkpoint) != CNN_OK)
        rc = cli_error(CMD, "cannot save %s: %s", what, cnn_errmsg());
    unblock_stops(&old);
    return rc;
}

int train_save_checkpoint(train_run *r) { return save_as(r, r->ckpt_path, 1, "the checkpoint"); }

int train_save_model(train_run *r) { return save_as(r, r->cfg->out, 0, "the model"); }

/* The model as it stands after an epoch whose validation loss is the
 * lowest so far, to --best: like the final model, with the record of the
 * run so far (its test accuracy not measured). */
static int save_best(train_run *r) { return save_as(r, r->cfg->best, 0, "the best model"); }

/* The history CSV and the curves, after each epoch. */
static int save_curves(train_run *r)
{
    if (!cnn_dist_root()) return CLI_OK;
    const train_cfg *c = r->cfg;
    sigset_t old;
    block_stops(&old);
    int rc = CLI_OK;
    if (c->history && cli_history_csv(c->history, r->st.rows, r->st.nrows))
        rc = cli_error(CMD, "--history: %s", cnn_errmsg());
    if (!rc && c->plot) {
        char title[512];
        snprintf(title, sizeof title, "%s on %s", c->arch, r->dsname);
        if (cli_plot_svg(c->plot, title, r->st.rows, r->st.nrows))
            rc = cli_error(CMD, "--plot: %s", cnn_errmsg());
    }
    unblock_stops(&old);
    return rc;
}

int train_stop_run(train_run *r, const char *where)
{
    int sig = train_stop_signal;
    int rc = train_save_checkpoint(r);
    if (!rc) rc = train_save_model(r);
    if (rc) return rc;
    char cmd[16384];
    train_resume_command(r->src, r->ckpt_path, cmd, sizeof cmd);
    fprintf(stderr,
            "\ncnn train: stopped by %s %s; saved the checkpoint to %s and the model so far to %s\n"
            "Resume with: %s\n",
            signal_name(sig), where, r->ckpt_path, r->cfg->out, cmd);
    return 128 + sig;
}

/* ------------------------------------------------------------ an epoch */

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

/* Images perm[first, first + n) into xbuf and lbuf: normalised, or
 * augmented from the seed bseed when --augment is on. Under MPI only the
 * rows of this rank's shards are read and prepared (every label is). */
static void make_batch(train_run *r, int first, int n, uint64_t bseed)
{
    int row0, rows;
    cnn_shards_rows(r->m, n, 1, NULL, &row0, &rows);
    cnn_dist_count_rows(rows, n);
    if (!r->cfg->augment) {
        cli_batch_rows(&r->tr, r->perm, first, n, row0, rows, &r->nm, r->xbuf, r->lbuf);
        return;
    }
    const size_t px = (size_t)r->ic * r->ih * r->iw;
    cnn_rng br;
    cnn_rng_seed(&br, bseed);
    cli_augment_skip(&br, row0);
    for (int i = 0; i < n; i++) {
        int j = r->perm[first + i];
        if (i >= row0 && i < row0 + rows)
            cli_augment(cli_split_image(&r->tr, j), r->ic, r->ih, r->iw, 2.0f, 10.0f, &br, &r->nm,
                        r->xbuf + (size_t)i * px);
        r->lbuf[i] = (uint8_t)cli_split_label(&r->tr, j);
    }
}

/* A step that failed: a numeric fault (the weights became NaN or Inf)
 * says what was not written and what to try. */
static int step_failed(train_run *r, cnn_status s)
{
    if (s != CNN_ERR_NUMERIC)
        return cli_error(CMD, "epoch %d, step %d: %s", r->st.epoch + 1, r->st.step + 1, cnn_errmsg());
    fprintf(stderr, "cnn train: epoch %d, step %d: %s\n", r->st.epoch + 1, r->st.step + 1,
            cnn_errmsg());
    int ck = train_file_exists(r->ckpt_path);
    fprintf(stderr, "cnn train: stopped; %s was not written%s%s%s\n", r->cfg->out,
            ck ? " and the last checkpoint " : "", ck ? r->ckpt_path : "", ck ? " is untouched" : "");
    fprintf(stderr, "cnn train: try a smaller --lr, or --clip\n");
    return CLI_EDATA;
}

/* The steps of the epoch from where it stands, drawing each batch's seed
 * from drng; *seconds gets the time they took and *images how many they
 * trained on. */
static int train_steps(train_run *r, cnn_rng *drng, double *seconds, long *images)
{
    const train_cfg *c = r->cfg;
    cli_progress pg;
    cli_progress_start(&pg, r->st.epoch + 1, c->epochs, r->ntrain);
    /* the epoch's wall time so far, from before a resume too */
    double t0 = cli_now(), before = r->st.epoch_seconds;
    *images = 0;
    for (; r->st.step < r->steps; r->st.step++) {
        /* cosine annealing is per step (a one-epoch run anneals too) */
        if (r->oc.sched == CNN_SCHED_COSINE)
            cnn_model_set_lr(r->m, cnn_optim_lr_at(&r->oc, r->st.epoch + (double)r->st.step / r->steps,
                                                   c->epochs));
        int first = r->st.step * r->batch;
        int n = r->ntrain - first < r->batch ? r->ntrain - first : r->batch;
        make_batch(r, first, n, cnn_rng_next(drng));
        cnn_batch_stats bst;
        cnn_status s = cnn_model_train_batch(r->m, r->xbuf, r->lbuf, n, r->x.loss, &bst);
        if (s != CNN_OK) {
            cli_progress_end(&pg);
            return step_failed(r, s);
        }
        r->st.loss_sum += bst.loss * n;
        r->st.correct += bst.correct;
        r->st.seen += n;
        *images += n;
        cli_progress_update(&pg, (long)first + n, r->st.loss_sum, r->st.seen);
        if (train_stop_signal) {
            r->st.step++;
            r->st.epoch_seconds = before + (cli_now() - t0);
            cli_progress_end(&pg);
            char where[96];
            snprintf(where, sizeof where, "at epoch %d, step %d of %d", r->st.epoch + 1, r->st.step,
                     r->steps);
            return train_stop_run(r, where);
        }
    }
    *seconds = cli_now() - t0;
    r->st.epoch_seconds = before + *seconds;
    cli_progress_end(&pg);
    return CLI_OK;
}

/* The epoch's row of the history: its training numbers and, with a
 * validation set, the validation loss and accuracy. */
static int epoch_row(train_run *r, float lr, cli_epoch_row *row)
{
    *row = (cli_epoch_row){r->st.epoch + 1, lr, NAN, NAN, NAN, NAN, r->st.epoch_seconds};
    if (r->st.seen) {
        row->train_loss = r->st.loss_sum / r->st.seen;
        row->train_acc = 100.0 * r->st.correct / r->st.seen;
    }
    if (r->nval == 0) return CLI_OK;
    int vc;
    int rc = cli_predict_all(CMD, r->m, &r->va, r->va.n, &r->nm, r->xbuf, r->x.loss, NULL, NULL,
                             &row->val_loss, &vc, &train_stop_signal);
    if (rc == CLI_STOPPED) {
        /* the epoch is trained: a resumed run validates it */
        char where[96];
        snprintf(where, sizeof where, "validating epoch %d", r->st.epoch + 1);
        return train_stop_run(r, where);
    }
    if (rc) return rc;
    row->val_acc = 100.0 * vc / r->va.n;
    return CLI_OK;
}

/* After an epoch: the history, the best model, a checkpoint when one is
 * due, and a stop when a signal came. */
static int after_epoch(train_run *r)
{
    const train_cfg *c = r->cfg;
    int rc = save_curves(r);
    if (rc) return rc;
    /* the best model so far, when this epoch's validation loss is the lowest */
    if (c->best && cli_ckpt_best_epoch(&r->st) == r->st.epoch) {
        if ((rc = save_best(r))) return rc;
        r->best_saved = 1;
    }
    /* the last epoch's checkpoint is written after the test */
    if (c->checkpoint_every > 0 && r->st.epoch % c->checkpoint_every == 0 && r->st.epoch < c->epochs &&
        (rc = train_save_checkpoint(r)))
        return rc;
    if (train_stop_signal) {
        char where[96];
        snprintf(where, sizeof where, "after epoch %d of %d", r->st.epoch, c->epochs);
        return train_stop_run(r, where);
    }
    return CLI_OK;
}

/* ----------------------------------------------------------- the epochs */

int train_epochs(train_run *r)
{
    const train_cfg *c = r->cfg;
    int rc;
    /* under mpirun a signal ends every rank: mpirun ends them, nothing is saved */
    if (cnn_dist_size() < 2) install_stop_handlers();
    /* a resumed run's history file holds the earlier epochs at once */
    if (c->resume && r->st.nrows > 0 && (rc = save_curves(r))) return rc;

    r->t_start = cli_now();
    while (r->st.epoch < c->epochs) {
        /* early stopping: checked here, so that a run resumed after it
         * stopped stops again */
        if (cli_ckpt_stops_early(&r->st, c->early_stop)) {
            int b = cli_ckpt_best_epoch(&r->st);
            printf("Stopped early after epoch %d of %d: no lower validation loss in %d epochs (the lowest, "
                   "%.4f, at epoch %d)\n", r->st.epoch, c->epochs, r->st.epoch - b,
                   r->st.rows[b - 1].val_loss, b);
            break;
        }
        float lr = cnn_optim_lr_at(&r->oc, r->st.epoch, c->epochs);
        cnn_model_set_lr(r->m, lr);
        /* the epoch's order and augmentation follow from the data RNG's
         * state at its start: a resumed epoch replays them */
        cnn_rng drng = r->st.epoch_rng;
        if (c->no_shuffle)
            for (int i = 0; i < r->ntrain; i++) r->perm[i] = i;
        else
            fisher_yates(r->perm, r->ntrain, &drng);
        for (int s = 0; s < r->st.step; s++) (void)cnn_rng_next(&drng);

        double seconds = 0;
        long images;
        if ((rc = train_steps(r, &drng, &seconds, &images))) return rc;
        r->train_seconds += seconds;
        r->images_trained += images;

        cli_epoch_row row;
        if ((rc = epoch_row(r, lr, &row))) return rc;
        if (cli_ckpt_push_row(&r->st, row)) return cli_error(CMD, "out of memory");
        char lrs[32];
        fmt_lr(lrs, sizeof lrs, lr);
        printf("epoch %d/%d  lr %s  train loss %.4f acc %.2f%%", r->st.epoch + 1, c->epochs, lrs,
               row.train_loss, row.train_acc);
        if (r->nval > 0) printf("  val loss %.4f acc %.2f%%", row.val_loss, row.val_acc);
        printf("  %.1fs  %.0f img/s\n", seconds, seconds > 0 ? images / seconds : 0.0);
        fflush(stdout);

        /* the next epoch starts here */
        r->st.epoch++;
        r->st.epoch_rng = drng;
        r->st.step = 0;
        r->st.loss_sum = 0;
        r->st.correct = r->st.seen = 0;
        r->st.epoch_seconds = 0;
        if ((rc = after_epoch(r))) return rc;
    }
    return CLI_OK;
}
