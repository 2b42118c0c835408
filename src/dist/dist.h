/* dist.h — data-parallel training over MPI (optional: -DCNN_MPI=ON).
 *
 * Every rank holds the whole model and the same optimizer state. A batch's
 * shards (src/model/shard.c) are fixed by the batch size alone; each rank
 * runs a contiguous range of them, and the per-shard results (output rows,
 * loss sums, failures) then move between ranks with data-only collectives
 * (MPI_Allgatherv, MPI_Bcast): no floating-point arithmetic happens inside
 * MPI. The gradients go by slices: each rank gets its 1/N of the elements
 * of every shard's gradient (MPI_Alltoallw), adds the shards in shard
 * order, as one process does, and gives the summed slice to every rank
 * (MPI_Allgatherv). So N ranks give the bits of one process.
 *
 * Without MPI (or outside mpirun) this is a stub: one rank, rank 0. */
#ifndef CNN_DIST_H
#define CNN_DIST_H

#include "cnn.h"

#include <stddef.h>
#include <stdint.h>

struct cnn_model;

/* ------------------------------------------------ the process (the cnn program) */

/* Join the MPI job when started by mpirun (MPI_Init); otherwise nothing.
 * On ranks other than 0, stdout goes to /dev/null and stderr is held back
 * until the rank fails (cnn_dist_finish). Without --threads or
 * OMP_NUM_THREADS, each rank's threads are capped at its share of the
 * node's cores. */
void cnn_dist_start(void);
/* End the job with exit code rc: MPI_Finalize when every rank succeeded or
 * all stopped at the same step with the same error; otherwise the failing
 * rank says so and MPI_Abort ends every rank at once. Returns rc. */
int cnn_dist_finish(int rc);

/* From now on this rank runs every batch whole, alone: no more exchanges
 * (rank 0's work after training, such as the report page). */
void cnn_dist_alone(void);
/* Wait until every rank calls it (MPI_Barrier); nothing in one process. */
void cnn_dist_barrier(void);
/* 1 when running under mpirun (even with one rank). */
int cnn_dist_active(void);
int cnn_dist_size(void); /* ranks: 1 without MPI */
int cnn_dist_rank(void); /* this rank: 0 without MPI */
/* Rank 0 prints, and writes every file. */
static inline int cnn_dist_root(void) { return cnn_dist_rank() == 0; }

/* Whether the ranks hold the same `parts` hashes (data, weights, options);
 * each differing part of each rank is described with names[] into msg.
 * Returns 1 when all agree. A disagreement counts as an agreed failure
 * (every rank sees it). */
int cnn_dist_same(const uint64_t *hashes, int parts, const char *const *names, char *msg,
                  size_t len);
/* A 64-bit hash of bytes, for cnn_dist_same. */
uint64_t cnn_dist_hash(uint64_t h, const void *p, size_t n);

/* Bytes this rank received in the exchanges of training steps (gradients,
 * outputs, losses), and how many steps were exchanged. With the variable
 * CNN_MPI_STATS set, rank 0 prints the bytes per step at the end. */
void cnn_dist_traffic(double *bytes, long *steps);

/* ------------------------------------------------ the shard exchange (libcnn) */

/* The shards of a batch of `shards` this rank runs: [lo, hi). Returns 1
 * when the batch is shared among ranks (more than one rank), else 0 and
 * [0, shards). */
int cnn_dist_shard_range(int shards, int *lo, int *hi);
/* The text in buf (len bytes, NUL-terminated) of the rank that runs shard
 * s of `shards`, given to every rank (a diagnosis only that rank can
 * make); every rank must call it. Counts as an agreed failure. */
void cnn_dist_share_text(int s, int shards, char *buf, size_t len);
/* Training rows: `mine` of a batch's `all` prepared by this rank. With the
 * variable CNN_MPI_STATS set, rank 0 prints its share at the end. */
void cnn_dist_count_rows(long mine, long all);
/* After each rank ran its shards of a batch of n images: give every rank
 * every shard's loss sum and output rows (act[L], and act[li] when the
 * loss reads another layer) and agree on the first failing shard
 * (fail_shard: this rank's first, -1 for none), whose error every rank then
 * returns. With grad, each rank also gets its slice (cnn_dist_grad_slice)
 * of every shard's gradient buffer; it sums that slice in shard order and
 * gives the sums to every rank with cnn_dist_share_sums. */
cnn_status cnn_dist_exchange(struct cnn_model *m, int n, int shards, int grad, int li,
                             int fail_shard, cnn_status fail_st, const char *fail_msg);
/* The floats [*e0, *e1) of the gradient this rank sums (all of them
 * without MPI or with one rank). */
void cnn_dist_grad_slice(const struct cnn_model *m, size_t *e0, size_t *e1);
/* Every rank's summed slice of m->grads to every rank (MPI_Allgatherv). */
void cnn_dist_share_sums(struct cnn_model *m);
#endif
