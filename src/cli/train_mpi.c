/* train_mpi.c — what `cnn train` checks before training on several MPI
 * ranks (src/dist): a model every rank can share the batches of, and the
 * same data, weights, optimizer state and run on every rank. A rank that
 * read another file would otherwise train another model, or leave the
 * ranks' collectives out of step. */
#include "cli/train.h"
#include "dist/dist.h"
#include "model/model.h"

#include <string.h>

/* A store's shape, labels and images (or, read from a cache file, the
 * cache's fingerprint of its sources) and the split's choice of images. */
static uint64_t split_hash(const cli_split *sp)
{
    const cli_store *d = sp->store;
    int dims[6] = {sp->n, sp->first, d ? d->n : 0, d ? d->c : 0, d ? d->h : 0, d ? d->w : 0};
    uint64_t x = cnn_dist_hash(0, dims, sizeof dims);
    if (sp->idx) x = cnn_dist_hash(x, sp->idx, sizeof *sp->idx * (size_t)sp->n);
    if (!d || d->n == 0) return x;
    x = cnn_dist_hash(x, d->labels, (size_t)d->n);
    if (d->images) return cnn_dist_hash(x, d->images, (size_t)d->n * d->c * d->h * d->w);
    return cnn_dist_hash(x, &d->cache.fingerprint, sizeof d->cache.fingerprint);
}

int train_mpi_check(const char *cmd, cnn_model *m, const cli_split *train, const cli_split *val,
                    const cli_split *test, const long long *run, int nrun)
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
    static const char *const names[PARTS] = {"options", "training or validation data", "test data",
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
    h[TRAIN] = split_hash(train) ^ (split_hash(val) * 0x9e3779b97f4a7c15ULL);
    h[TEST] = split_hash(test);
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
