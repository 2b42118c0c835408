/* train_finish.c — the end of a `cnn train` run, once its epochs are done
 * (train_loop.c): the test set's classification report, the model file,
 * the final checkpoint, where the best model is, and the report page. */
#include "cli/checkpoint.h"
#include "cli/train.h"
#include "dist/dist.h"

#include <stdlib.h>

static const char *CMD = TRAIN_CMD;

/* The test set's predictions and its classification report; the test
 * accuracy goes into the record of the run. */
static int test_report(train_run *r)
{
    int tc;
    int rc = cli_predict_all(CMD, r->m, r->test, r->ntest, &r->nm, r->xbuf, r->x.loss, r->predicted,
                             NULL, NULL, &tc, &train_stop_signal);
    if (rc == CLI_STOPPED) return train_stop_run(r, "testing (every epoch is trained)");
    if (rc) return rc;
    cli_confusion conf = {0};
    if (cli_confusion_init(&conf, cnn_model_output_size(r->m))) return cli_error(CMD, "out of memory");
    for (int i = 0; i < r->ntest; i++) cli_confusion_add(&conf, cli_split_label(r->test, i), r->predicted[i]);
    printf("\nTest set: %d images of %s\n\n", r->ntest, r->dir);
    cli_report_print(stdout, &conf, &r->names);
    cli_confusion_free(&conf);
    double wall = cli_now() - r->t_start;
    printf("Training: %.1f s for %ld images (%.0f images/s); wall time %.1f s\n", r->train_seconds,
           r->images_trained, r->train_seconds > 0 ? r->images_trained / r->train_seconds : 0.0, wall);
    snprintf(r->test_accuracy, sizeof r->test_accuracy, "%.4f", 100.0 * tc / r->ntest);
    return CLI_OK;
}

/* Where the model of the best epoch is: written by this run, by the run it
 * resumed, or (from before the checkpoint) not in --best. */
static void say_best(const train_run *r)
{
    const train_cfg *c = r->cfg;
    int b = cli_ckpt_best_epoch(&r->st);
    if (b > 0 && (r->best_saved || train_file_exists(c->best)))
        printf("Saved the best model (epoch %d, validation loss %.4f) to %s%s\n", b,
               r->st.rows[b - 1].val_loss, c->best, r->best_saved ? "" : " (by the run this one resumed)");
    else if (b > 0)
        fprintf(stderr, "cnn train: note: the best epoch, %d, came before the checkpoint, and its model is "
                "not in %s: the run that made the checkpoint saved it\n", b, c->best);
}

/* The page of `cnn report`, with this run's history and test set; under
 * MPI rank 0 makes it alone. */
static int report_page(train_run *r)
{
    const train_cfg *c = r->cfg;
    cnn_dist_alone();
    char data_name[4200], from[64];
    snprintf(data_name, sizeof data_name, "%s (%s)", r->dsname, r->dir);
    snprintf(from, sizeof from, "this run");
    cli_report_in in = {.model_name = c->out, .test = r->test, .ntest = r->ntest,
                        .data_name = data_name, .rows = r->st.rows, .nrows = r->st.nrows,
                        .history_from = from};
    double t_report = cli_now();
    size_t bytes = 0;
    int rc = cli_report_html(CMD, r->m, &in, c->report, &bytes);
    if (rc) return rc;
    printf("Wrote the report to %s (%.1f MB) in %.1f s\n", c->report, (double)bytes / 1e6,
           cli_now() - t_report);
    return CLI_OK;
}

int train_finish(train_run *r)
{
    const train_cfg *c = r->cfg;
    int rc = test_report(r);
    if (rc) return rc;
    /* the model file: weights plus the record of the run; with checkpoints
     * on, the final checkpoint too, so the run can be extended */
    if ((rc = train_save_model(r))) return rc;
    printf("Saved the model to %s\n", c->out);
    if (c->checkpoint_every > 0) {
        if ((rc = train_save_checkpoint(r))) return rc;
        printf("Saved the checkpoint to %s (a larger --epochs with --resume %s extends the run)\n",
               r->ckpt_path, r->ckpt_path);
    }
    if (c->best) say_best(r);
    if (c->history) printf("Wrote the history to %s\n", c->history);
    if (c->plot) printf("Wrote the curves to %s\n", c->plot);
    if (c->report && cnn_dist_root()) return report_page(r);
    return CLI_OK;
}
