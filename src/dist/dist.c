/* dist.c — data-parallel training over MPI; a one-rank stub without it.
 *
 * The exchange after each sharded batch (cnn_dist_exchange) moves raw
 * values only: MPI_Allgatherv of the per-shard loss sums and failures, of
 * the output rows and of the gradient buffers, and MPI_Bcast of shard 0's
 * gradients (which live in the model's own gradient array). The sum of the
 * gradients is then made by shard.c on every rank, in shard order. MPI's
 * own reductions (MPI_Allreduce with MPI_SUM) are never used: MPI does not
 * fix the order in which they add, so the bits could change with N. */
#include "dist/dist.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double g_bytes;   /* received by this rank in the exchanges of training steps */
static long g_steps;     /* training steps exchanged */

void cnn_dist_traffic(double *bytes, long *steps)
{
    if (bytes) *bytes = g_bytes;
    if (steps) *steps = g_steps;
}

uint64_t cnn_dist_hash(uint64_t h, const void *p, size_t n)
{
    /* 8 bytes at a time, each word mixed in (splitmix64's finaliser) */
    const unsigned char *b = p;
    h ^= 0x9e3779b97f4a7c15ULL * (n + 1);
    while (n > 0) {
        uint64_t w = 0;
        size_t t = n < 8 ? n : 8;
        memcpy(&w, b, t);
        b += t;
        n -= t;
        h ^= w;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        h *= 0x94d049bb133111ebULL;
        h ^= h >> 29;
    }
    return h;
}

#ifndef CNN_HAVE_MPI

void cnn_dist_start(void) {}
void cnn_dist_alone(void) {}
void cnn_dist_barrier(void) {}
int cnn_dist_finish(int rc) { return rc; }
int cnn_dist_active(void) { return 0; }
int cnn_dist_size(void) { return 1; }
int cnn_dist_rank(void) { return 0; }

int cnn_dist_same(const uint64_t *hashes, int parts, const char *const *names, char *msg,
                  size_t len)
{
    if (len) msg[0] = '\0';
    return 1;
}

int cnn_dist_shard_range(int shards, int *lo, int *hi)
{
    *lo = 0;
    *hi = shards;
    return 0;
}

cnn_status cnn_dist_exchange(struct cnn_model *m, int n, int shards, int grad, int li,
                             int fail_shard, cnn_status fail_st, const char *fail_msg)
{
    return CNN_OK;
}

void cnn_dist_share_text(int s, int shards, char *buf, size_t len) {}
void cnn_dist_count_rows(long mine, long all) {}
void cnn_dist_share_sums(struct cnn_model *m) {}

void cnn_dist_grad_slice(const struct cnn_model *m, size_t *e0, size_t *e1)
{
    *e0 = 0;
    *e1 = m->nfloats;
}

#else

#include <mpi.h>
#include <omp.h>
#include <unistd.h>

static int g_active, g_rank, g_size = 1;
static long g_rows_mine, g_rows_all; /* training rows this rank prepared, of all */
static int g_alone;          /* cnn_dist_alone: no more exchanges */
static double g_seconds;     /* in the exchanges of training steps, waiting included */
static int g_agreed;         /* every rank failed at the same point with the same error */
static FILE *g_held;         /* ranks > 0: their stderr, held until they fail */
static int g_stderr = -1;    /* ranks > 0: the real stderr */

int cnn_dist_active(void) { return g_active; }
int cnn_dist_size(void) { return g_size; }
int cnn_dist_rank(void) { return g_rank; }

static int launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

void cnn_dist_start(void)
{
    if (!launched_by_mpirun()) return;
    /* A rank waiting in a collective yields its core instead of spinning:
     * on a machine whose cores are shared (other ranks, other jobs), a
     * spinning rank takes the time slices of the rank it waits for (one
     * small allgather: 13 ms spinning, 0.015 ms yielding, at a load of 10
     * on 2 cores). The user's own setting wins. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided;
    /* only the main thread calls MPI, outside the OpenMP regions */
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_active = 1;
    if (g_size < 2) return;

    /* ranks sharing a machine share its cores: each gets its part */
    MPI_Comm local;
    int nlocal = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &nlocal);
        MPI_Comm_free(&local);
    }
    if (!getenv("OMP_NUM_THREADS")) {
        int share = omp_get_num_procs() / nlocal;
        omp_set_num_threads(share > 1 ? share : 1);
    }

    if (g_rank != 0) {
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout)) fclose(stdout);
        fflush(stderr);
        g_held = tmpfile();
        g_stderr = dup(STDERR_FILENO);
        if (g_held && g_stderr >= 0) dup2(fileno(g_held), STDERR_FILENO);
    }
}

/* A failed rank > 0: what it wrote to stderr, each line marked with the rank.
 * The text goes out in one write, so mpirun's own messages (MPI_Abort's
 * notice) cannot land between a rank mark and its line. */
static void release_held(void)
{
    if (!g_held || g_stderr < 0) return;
    fflush(stderr);
    dup2(g_stderr, STDERR_FILENO);
    rewind(g_held);
    char mark[32], line[4096], out[16384];
    int nmark = snprintf(mark, sizeof mark, "[rank %d] ", g_rank);
    size_t used = 0;
    int start = 1;
    while (fgets(line, sizeof line, g_held)) {
        size_t n = strlen(line), need = (start ? (size_t)nmark : 0) + n;
        if (used + need > sizeof out) break; /* the first 16 KiB say enough */
        if (start) memcpy(out + used, mark, (size_t)nmark), used += (size_t)nmark;
        memcpy(out + used, line, n), used += n;
        start = line[n - 1] == '\n';
    }
    for (size_t done = 0; done < used;) {
        ssize_t w = write(STDERR_FILENO, out + done, used - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
}

int cnn_dist_finish(int rc)
{
    if (!g_active) return rc;
    fflush(stdout);
    if (g_rank == 0 && g_steps > 0 && getenv("CNN_MPI_STATS"))
        fprintf(stderr, "cnn: MPI: rank 0 received %.0f bytes per training step (%ld steps "
                "exchanged, %.2f ms each) and prepared %ld of the %ld images of the training "
                "batches\n", g_bytes / (double)g_steps, g_steps, 1e3 * g_seconds / (double)g_steps,
                g_rows_mine, g_rows_all);
    fflush(stderr);
    if (rc == 0 || g_size < 2 || g_agreed) {
        /* every rank is here with the same result: rank 0 has said it */
        MPI_Finalize();
        return rc;
    }
    /* This rank failed without the others knowing (its input, its memory,
     * ...): they may wait in a collective forever, so end them all. Most
     * such failures are every rank's (the same command line and files), and
     * rank 0 says them: a rank > 0 gives rank 0 two seconds to end the job
     * first, then speaks for itself. */
    if (g_rank != 0) {
        sleep(2);
        release_held();
    }
    fprintf(stderr, "cnn: MPI rank %d of %d failed (exit code %d): ending every rank of the job\n",
            g_rank, g_size, rc);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, rc);
    return rc;
}

int cnn_dist_same(const uint64_t *hashes, int parts, const char *const *names, char *msg,
                  size_t len)
{
    if (len) msg[0] = '\0';
    if (g_size < 2) return 1;
    uint64_t *all = malloc(sizeof *all * (size_t)parts * (size_t)g_size);
    if (!all) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Allgather(hashes, parts, MPI_UINT64_T, all, parts, MPI_UINT64_T, MPI_COMM_WORLD);
    int same = 1;
    size_t used = 0;
    for (int r = 1; r < g_size; r++)
        for (int p = 0; p < parts; p++)
            if (all[(size_t)r * parts + p] != all[p]) {
                if (used < len)
                    used += (size_t)snprintf(msg + used, len - used, "%srank %d's %s", same ? "" : ", ",
                                             r, names[p]);
                same = 0;
            }
    free(all);
    if (!same) g_agreed = 1;
    return same;
}

/* Shards [lo, hi) of rank r: contiguous ranges, as even as the count allows. */
static int range_lo(int r, int shards) { return (int)((long)r * shards / g_size); }

void cnn_dist_alone(void) { g_alone = 1; }

void cnn_dist_barrier(void)
{
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

int cnn_dist_shard_range(int shards, int *lo, int *hi)
{
    if (g_size < 2 || g_alone) {
        *lo = 0;
        *hi = shards;
        return 0;
    }
    *lo = range_lo(g_rank, shards);
    *hi = range_lo(g_rank + 1, shards);
    return 1;
}

static int owner_of(int s, int shards)
{
    int r = 0;
    while (range_lo(r + 1, shards) <= s) r++;
    return r;
}

void cnn_dist_share_text(int s, int shards, char *buf, size_t len)
{
    if (g_size < 2 || g_alone || len == 0) return;
    MPI_Bcast(buf, (int)len, MPI_CHAR, owner_of(s, shards), MPI_COMM_WORLD);
    buf[len - 1] = '\0';
    g_agreed = 1;
}

void cnn_dist_count_rows(long mine, long all)
{
    g_rows_mine += mine;
    g_rows_all += all;
}

/* The gradient slice [lo, hi) rank r sums for every rank: even, in
 * multiples of 16 floats. */
#define MAX_SHARDS 64 /* more than a training batch is cut into (shard.c) */

static size_t slice_lo(int r, size_t nf)
{
    size_t blocks = (nf + 15) / 16, lo = (size_t)r * blocks / (size_t)g_size * 16;
    return lo < nf ? lo : nf;
}

/* Per-rank counts and displacements, grown as needed. */
static int *g_counts, *g_displs;
static double *g_info;
static int g_info_cap;

static cnn_status fail_rows(void)
{
    return cnn_fail(CNN_ERR_ARG, "a batch too large to exchange between MPI ranks");
}

/* Give every rank the rows [row(lo_r), row(hi_r)) of every rank r, `width`
 * floats a row, in place in buf. */
static double g_got; /* received in this exchange */
static double g_t0;  /* when this exchange began */

static cnn_status gather_rows(float *buf, int n, int shards, int width)
{
    for (int r = 0; r < g_size; r++) {
        long a = (long)range_lo(r, shards) * n / shards, b = (long)range_lo(r + 1, shards) * n / shards;
        if (b * width > 2147483647L) return fail_rows();
        g_counts[r] = (int)((b - a) * width);
        g_displs[r] = (int)(a * width);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, g_counts, g_displs, MPI_FLOAT,
                   MPI_COMM_WORLD);
    g_got += 4.0 * ((double)n * width - g_counts[g_rank]);
    return CNN_OK;
}

/* The gradient exchange's MPI_Alltoallw for a batch of `shards`: with rank
 * r, this rank sends (s) or receives (r) one block per shard the sender
 * ran, each the receiver's slice of that shard's buffer (shard 0's is
 * m->grads, shard s > 0's the (s-1)-th of m->shards.grads), described by
 * absolute addresses (MPI_BOTTOM) so nothing is packed. Built when the
 * shard count or the buffers change, kept otherwise. */
static struct {
    int shards;
    const float *grads, *shard_grads;
    size_t nf;
    int *scount, *rcount, *zeros;
    MPI_Datatype *stype, *rtype;
    double bytes; /* received */
} g_plan;

/* Shards of rank `from`, slice of rank `slice`: a type, or NULL if empty. */
static MPI_Datatype slice_type(const cnn_model *m, int shards, int from, int slice)
{
    const size_t nf = m->nfloats, e0 = slice_lo(slice, nf), e1 = slice_lo(slice + 1, nf);
    MPI_Aint at[MAX_SHARDS];
    int len[MAX_SHARDS], nb = 0;
    for (int s = range_lo(from, shards); s < range_lo(from + 1, shards); s++) {
        const float *buf = s == 0 ? m->grads : m->shards.grads + (size_t)(s - 1) * nf;
        MPI_Get_address(buf + e0, &at[nb]);
        len[nb++] = (int)(e1 - e0);
    }
    if (nb == 0 || e1 == e0) return MPI_DATATYPE_NULL;
    MPI_Datatype t;
    MPI_Type_create_hindexed(nb, len, at, MPI_FLOAT, &t);
    MPI_Type_commit(&t);
    return t;
}

static cnn_status slice_plan(const cnn_model *m, int shards)
{
    if (g_plan.shards == shards && g_plan.grads == m->grads &&
        g_plan.shard_grads == m->shards.grads && g_plan.nf == m->nfloats)
        return CNN_OK;
    if (m->nfloats > 2147483647u || shards > MAX_SHARDS) return fail_rows();
    if (!g_plan.scount) {
        g_plan.scount = calloc((size_t)g_size * 3, sizeof *g_plan.scount);
        g_plan.stype = calloc((size_t)g_size * 2, sizeof *g_plan.stype);
        if (!g_plan.scount || !g_plan.stype) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        g_plan.rcount = g_plan.scount + g_size;
        g_plan.zeros = g_plan.rcount + g_size;
        g_plan.rtype = g_plan.stype + g_size;
    }
    const double slice = (double)(slice_lo(g_rank + 1, m->nfloats) - slice_lo(g_rank, m->nfloats));
    g_plan.bytes = 0;
    for (int r = 0; r < g_size; r++) {
        for (int dir = 0; dir < 2; dir++) { /* 0: what r gets from me, 1: what I get from r */
            int *count = dir ? &g_plan.rcount[r] : &g_plan.scount[r];
            MPI_Datatype *t = dir ? &g_plan.rtype[r] : &g_plan.stype[r];
            if (*count) MPI_Type_free(t);
            *t = r == g_rank ? MPI_DATATYPE_NULL
                 : dir       ? slice_type(m, shards, r, g_rank)
                             : slice_type(m, shards, g_rank, r);
            *count = *t != MPI_DATATYPE_NULL;
            if (!*count) *t = MPI_FLOAT; /* a count of 0 still names a type */
        }
        if (g_plan.rcount[r]) g_plan.bytes += 4.0 * slice * (range_lo(r + 1, shards) - range_lo(r, shards));
    }
    g_plan.shards = shards;
    g_plan.grads = m->grads;
    g_plan.shard_grads = m->shards.grads;
    g_plan.nf = m->nfloats;
    return CNN_OK;
}

cnn_status cnn_dist_exchange(struct cnn_model *m, int n, int shards, int grad, int li,
                             int fail_shard, cnn_status fail_st, const char *fail_msg)
{
    if (!g_counts) {
        g_counts = malloc(sizeof *g_counts * (size_t)g_size);
        g_displs = malloc(sizeof *g_displs * (size_t)g_size);
        if (!g_counts || !g_displs) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    if (g_info_cap < 2 * shards) {
        double *p = realloc(g_info, sizeof *p * 2 * (size_t)shards);
        if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        g_info = p;
        g_info_cap = 2 * shards;
    }
    g_got = 0;
    g_t0 = MPI_Wtime();

    /* 1. each shard's loss sum and status (0, or the cnn_status of the
     *    rank's first failing shard) */
    int lo, hi;
    cnn_dist_shard_range(shards, &lo, &hi);
    for (int s = lo; s < hi; s++) {
        g_info[2 * s] = m->shards.loss[s];
        g_info[2 * s + 1] = s == fail_shard ? (double)fail_st : 0.0;
    }
    for (int r = 0; r < g_size; r++) {
        g_counts[r] = 2 * (range_lo(r + 1, shards) - range_lo(r, shards));
        g_displs[r] = 2 * range_lo(r, shards);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, g_info, g_counts, g_displs, MPI_DOUBLE,
                   MPI_COMM_WORLD);
    g_got += 8.0 * (2 * shards - g_counts[g_rank]);
    for (int s = 0; s < shards; s++)
        if (g_info[2 * s + 1] != 0.0) {
            /* the first failing shard in shard order, as one process reports it */
            char msg[1024] = "";
            if (s == fail_shard) snprintf(msg, sizeof msg, "%s", fail_msg);
            cnn_dist_share_text(s, shards, msg, sizeof msg);
            return cnn_fail((cnn_status)(int)g_info[2 * s + 1], "%s", msg);
        }
    for (int s = 0; s < shards; s++) m->shards.loss[s] = g_info[2 * s];

    /* 2. the output rows (and the loss's own rows) */
    const int L = m->nlayers, k = cnn_model_output_size(m);
    cnn_status st = gather_rows(m->act[L], n, shards, k);
    if (st == CNN_OK && li != L && li > 0) st = gather_rows(m->act[li], n, shards, k);
    if (st != CNN_OK || !grad) return st;

    /* 3. each rank's slice of every shard's gradient buffer: what this
     *    rank ran goes to every other rank, for that rank's slice */
    if ((st = slice_plan(m, shards)) != CNN_OK) return st;
    MPI_Alltoallw(MPI_BOTTOM, g_plan.scount, g_plan.zeros, g_plan.stype, MPI_BOTTOM, g_plan.rcount,
                  g_plan.zeros, g_plan.rtype, MPI_COMM_WORLD);
    g_got += g_plan.bytes;
    return CNN_OK;
}

void cnn_dist_grad_slice(const struct cnn_model *m, size_t *e0, size_t *e1)
{
    if (g_size < 2 || g_alone) {
        *e0 = 0;
        *e1 = m->nfloats;
        return;
    }
    *e0 = slice_lo(g_rank, m->nfloats);
    *e1 = slice_lo(g_rank + 1, m->nfloats);
}

void cnn_dist_share_sums(struct cnn_model *m)
{
    const size_t nf = m->nfloats;
    for (int r = 0; r < g_size; r++) {
        g_counts[r] = (int)(slice_lo(r + 1, nf) - slice_lo(r, nf));
        g_displs[r] = (int)slice_lo(r, nf);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, m->grads, g_counts, g_displs, MPI_FLOAT,
                   MPI_COMM_WORLD);
    g_got += 4.0 * (double)(nf - (size_t)g_counts[g_rank]);
    g_bytes += g_got;
    g_steps++;
    g_seconds += MPI_Wtime() - g_t0;
}

#endif
