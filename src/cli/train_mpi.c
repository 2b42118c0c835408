/* train_mpi.c — what `cnn train` checks before training on several MPI
 * ranks (src/dist): a model every rank can share the batches of, and the
 * same data, weights, optimizer state and run on every rank. A rank that
 * read another file would otherwise train another model, or leave the
 * ranks' collectives out of step. */
#include "cli/train.h"
#include "dist/dist.h"
#include "model/model.h"

#include <string.h>

int train_mpi_check(const char *cmd, cnn_model *m, const cnn_dataset *train,
                    const cnn_dataset *test, const long long *run, int nrun)
{
    if (cnn_dist_size() < 2) return CLI_OK;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->ops->batch_coupled)
            return cli_usage_error(cmd, "layer %d (%s, line %d) mixes the images of a batch (batch "
                                   "statistics), so its batches cannot be shared among MPI ranks; "
                                   "train this model in one process",
                                   i, m->layers[i]->desc, m->layers[i]->line);
    if (m->kernels != CNN_KERNELS_FAST)
        return cli_usage_error(cmd, "--kernels ref runs every batch whole, so its batches cannot be "
                               "shared among MPI ranks; use --kernels fast or one process");

    enum { RUN, TRAIN, TEST, WEIGHTS, PARTS };
    static const char *const names[PARTS] = {"options", "training data", "test data",
                                             "weights or optimizer state"};
    uint64_t h[PARTS];
    /* the run's values, the architecture and the record of the options
     * (train.opt.* in the metadata: learning rate, loss, seed, ...) */
    uint64_t o = cnn_dist_hash(0, run, sizeof *run * (size_t)nrun);
    if (m->arch) o = cnn_dist_hash(o, m->arch, strlen(m->arch));
    for (int i = 0; i < m->nmeta; i++) {
        o = cnn_dist_hash(o, m->meta_key[i], strlen(m->meta_key[i]) + 1);
        o = cnn_dist_hash(o, m->meta_val[i], strlen(m->meta_val[i]) + 1);
    }
    h[RUN] = o;
    const cnn_dataset *sets[2] = {train, test};
    for (int i = 0; i < 2; i++) {
        const cnn_dataset *d = sets[i];
        int dims[4] = {d->n, d->c, d->h, d->w};
        uint64_t x = cnn_dist_hash(0, dims, sizeof dims);
        x = cnn_dist_hash(x, d->images, (size_t)d->n * d->c * d->h * d->w);
        h[TRAIN + i] = cnn_dist_hash(x, d->labels, (size_t)d->n);
    }
    uint64_t w = cnn_dist_hash(0, m->params, sizeof(float) * m->nfloats);
    if (m->opt_m) w = cnn_dist_hash(w, m->opt_m, sizeof(float) * m->nfloats);
    if (m->opt_v) w = cnn_dist_hash(w, m->opt_v, sizeof(float) * m->nfloats);
    w = cnn_dist_hash(w, &m->step, sizeof m->step);
    h[WEIGHTS] = cnn_dist_hash(w, &m->rng, sizeof m->rng);

    char msg[1024];
    if (!cnn_dist_same(h, PARTS, names, msg, sizeof msg))
        return cli_error(cmd, "the MPI ranks disagree: %s differ from rank 0's; every rank must "
                         "read the same files with the same options", msg);
    return CLI_OK;
}
