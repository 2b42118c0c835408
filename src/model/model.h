/* model.h — the inside of a cnn_model, shared by model.c and the file
 * readers/writers in src/io. */
#ifndef CNN_MODEL_H
#define CNN_MODEL_H

#include "internal.h"

/* A tensor of the state_dict: "3.weight" -> layer 3's param "weight". */
typedef struct {
    char name[48];
    int layer;
    cnn_param *p;
} cnn_named_param;

/* Data parallelism over the batch (shard.c): one worker model per thread,
 * sharing its model's parameters; grads holds the gradients of shards
 * 1.. (shard 0 writes into the model's own). */
typedef struct {
    int nworkers;                 /* one per thread group (cnn_parallel_groups) */
    int threads;                  /* the most threads the workers serve together */
    int worker_batch;             /* the largest shard a worker is set up for */
    cnn_model **workers;
    struct cnn_shard_error *err;  /* nworkers: each one's first failure */
    float *grads;
    int grad_slots;               /* shards whose gradients fit: 1 + slots in grads */
    int max_shards;
    double *loss;                 /* per shard: unreduced loss sum */
    uint64_t *seed;               /* per shard: its dropout RNG seed for this batch */
} cnn_shards;

struct cnn_model {
    char *arch;               /* the architecture text it was built from */
    cnn_shape input;
    int nlayers;
    cnn_layer **layers;

    /* Every parameter and buffer in one allocation, every gradient in
     * another, carved up in state_dict order (llm.c style). */
    float *params, *grads;
    size_t nfloats;
    /* Bumped whenever the parameters may change (a step, an init, a load,
     * a writable pointer handed out): layers keep what they derive from
     * their weights while it stays the same (cnn_layer.version). */
    uint64_t param_version;
    int ntensors;
    cnn_named_param *tensors;

    /* Activations: act[i] is the output of layer i-1 (i = 1..nlayers); the
     * input of layer 0 is the caller's batch. dbuf: two ping-pong buffers for
     * dL/d(activation), each the size of the largest activation. */
    int max_batch;
    int reserved_threads;
    float **act;
    float *dbuf[2];
    float *target;            /* one-hot labels (max_batch, classes) */
    const float *last_x;      /* the batch of the last forward */

    cnn_kernels kernels;
    cnn_rng rng;              /* weights at init, then dropout masks */

    /* optimizer: state arrays parallel to params (unused for buffers), each
     * allocated only if the kind uses it (cnn_optim_needs_m, _needs_v) */
    int has_opt;
    cnn_optim_config opt;
    float lr;
    long step;
    float *opt_m, *opt_v;
    /* the kind of the state (opt_m, opt_v, step) a checkpoint brought in,
     * until cnn_model_set_optimizer of that kind takes it over; -1: none */
    int pending_kind;

    cnn_shards shards;
    int is_worker;            /* this is a shard worker of another model (cnn_model_share) */
    int worker_threads;       /* a worker: the most threads its kernels run on */

    int shapes_only;          /* built without parameters (cnn_model_shapes_from_text) */

    /* string metadata */
    int nmeta;
    char **meta_key, **meta_val;
};

/* Optimizer state tensors are saved as "optim.m.<name>" / "optim.v.<name>". */
#define CNN_OPTIM_M_PREFIX "optim.m."
#define CNN_OPTIM_V_PREFIX "optim.v."

/* cnn_model_from_text, refusing (before allocating) an architecture whose
 * parameters, each padded to 16 floats, exceed max_floats. */
cnn_status cnn_model_from_text_limited(const char *text, const char *name, size_t max_floats,
                                       cnn_model **out);

/* ------------------------------------------ parts shared with shard.c, step.c */

/* CNN_ERR_ARG for a model built for its shapes only (`what` names the call) */
cnn_status cnn_model_need_params(const cnn_model *m, const char *what);
/* CNN_ERR_NOMEM, saying what, when m set up for batches of max_batch (to
 * train or not, with state_arrays arrays of optimizer state) would pass
 * the memory limit */
cnn_status cnn_model_check_need(const cnn_model *m, int max_batch, int with_optimizer,
                                int state_arrays);
/* How many optimizer state arrays (opt_m, opt_v) m holds now */
int cnn_model_state_arrays(const cnn_model *m);

/* A shard worker of m: its layers are copies of m's (cnn_layer_clone)
 * whose parameters are m's own, with activations, layer buffers and RNG
 * of its own once set up for a batch; it runs the fast kernels on up to
 * worker_threads threads (1 unless set before its batch), and holds no
 * gradients (shard.c points them per shard). */
cnn_status cnn_model_share(const cnn_model *m, cnn_model **out);

/* Bytes of the buffers cnn_model_set_batch(m, max_batch) allocates on
 * `threads` threads: activations, gradient buffers, targets and the layers'
 * workspaces (not the workers). */
size_t cnn_model_batch_need(const cnn_model *m, int max_batch, int threads);
/* The most floats one image's activation takes at any layer (input included) */
size_t cnn_model_largest_activation(const cnn_model *m);

/* The layers' forward over a batch of n on up to nt threads (no checks;
 * sets last_x). */
void cnn_model_run_forward(cnn_model *m, const float *x, int n, int train, int nt);
/* Backward from dbuf[0] = dL/d(output of layer start) down to layer 0,
 * checking every parameter gradient for NaN/Inf. */
cnn_status cnn_model_run_backward(cnn_model *m, int start, int n, int nt);
/* CNN_ERR_NUMERIC naming the first layer whose output for image `row` of
 * the last forward holds a NaN or Inf (or the image itself, if its input
 * does). `shown` is the image's index in the caller's batch. */
cnn_status cnn_model_image_fault(cnn_model *m, int row, int shown);
/* CNN_ERR_NUMERIC naming the first layer whose output holds a NaN/Inf. */
cnn_status cnn_model_check_activations(cnn_model *m, int n);
cnn_status cnn_model_numeric_fault(cnn_model *m, int n, const char *what);
/* act[i] as a layer reads it: act[0] is the batch of the last forward. */
static inline const float *cnn_model_act(const cnn_model *m, int i)
{
    return i == 0 ? m->last_x : m->act[i];
}

/* Where a loss meets the model: the one place that decides which tensor
 * each loss reads (see the table in cnn.h), used by the whole-batch path
 * (model.c) and the shard path (shard.c) alike. */
typedef struct {
    cnn_loss loss;
    int act;    /* the loss reads act[act]: nlayers (the output), or nlayers - 1
                   (the scores going into a final softmax or sigmoid) */
    int start;  /* backward starts at layer `start` (act - 1): a final activation
                   whose input the loss reads is skipped, one whose output it
                   reads is backpropagated through */
    int probs;  /* act[act] is the output of a final softmax or sigmoid
                   (cnn_loss_rows: BCE becomes BCELoss) */
} cnn_loss_plan;
/* Fill *plan for `loss` on m, or CNN_ERR_ARG naming why the pair is
 * refused (cce without a final softmax, an unknown kind, a bad delta). */
cnn_status cnn_model_loss_plan(const cnn_model *m, cnn_loss loss, cnn_loss_plan *plan);

/* shard.c: a batch cut into shards of about CNN_SHARD images, each run by
 * one group of threads through every layer (forward, loss, backward) with
 * no barrier between the groups; the shard count depends on the batch size
 * only, so the result is the same bits for any thread count. */
/* Measured (bench_train, batch 64, quiet machine): 32 gave pytorchnet 1.56x
 * on 2 threads over 1, 16 gave 1.95x (four shards balance two threads
 * dynamically), 8 lost 5-10% at 1 thread to per-call overheads. */
#define CNN_SHARD 16
/* Build (or drop) the workers for m's batch size and the thread count. */
cnn_status cnn_shards_reserve(cnn_model *m);
void cnn_shards_free(cnn_model *m);
/* The fault of image `row` of a batch of n that ran (eval mode) as
 * `shards` shards: its shard runs again on a worker, the same way, and the
 * first layer that produced a NaN or Inf for it is named. Under MPI the
 * rank that ran that shard does it and gives every rank the message. */
cnn_status cnn_shards_image_fault(cnn_model *m, const float *x, int n, int shards, int row);
/* The per-shard gradient buffers of a model set up for batches of
 * max_batch, for training (made once; nothing if already there). */
cnn_status cnn_shards_reserve_grads(cnn_model *m);
/* Bytes cnn_shards_reserve allocates for batches of up to max_batch on
 * `threads` threads: the workers' buffers, and with_grads the per-shard
 * gradients (cnn_shards_reserve_grads). */
size_t cnn_shards_need(const cnn_model *m, int max_batch, int threads, int with_grads);
/* How many shards a batch of n runs as (1: the whole batch at once).
 * grad != 0 for training (gradients per shard). */
int cnn_shards_for(const cnn_model *m, int n, int grad);
/* The rows [*first, *first + *count) of a batch of n images that this
 * process reads: all of them, or under MPI only the rows of the shards
 * this rank runs, so a caller need not prepare (read, normalise, augment)
 * the others. `train`: a training step (cnn_model_train_batch); else an
 * evaluation with *loss (cnn_model_eval_batch) or, loss NULL, a forward. */
void cnn_shards_rows(const cnn_model *m, int n, int train, const cnn_loss *loss, int *first,
                     int *count);
/* Run the batch x (n images) as `shards` shards. Without a loss (plan ==
 * NULL) only the forward, leaving the outputs in m->act[nlayers]. With a
 * loss, targets are read from m->target, the rows the loss reads are also
 * left in m->act[plan->act], and *total gets the loss as an unreduced sum;
 * with grad, every shard's backward runs too (from layer plan->start) and
 * m->grads gets the batch's gradient. */
cnn_status cnn_shards_run(cnn_model *m, const float *x, int n, int shards, int train,
                          const cnn_loss_plan *plan, int grad, double *total);

/* 1 if a layer of m mixes the images of a batch in training (batchnorm):
 * its training batches run in shards layer by layer. */
int cnn_shards_coupled(const cnn_model *m);
/* Such a model's training forward of n images as `shards` shards, layer by
 * layer, into its own whole-batch activations (train: batch statistics). */
void cnn_shards_forward_layers(cnn_model *m, const float *x, int n, int shards, int train);
/* The activations of that forward checked for NaN/Inf, shard by shard on
 * every thread (cnn_model_check_activations's message on a fault). */
cnn_status cnn_shards_check_layers(cnn_model *m, int n, int shards);
/* Its backward after that forward, from dbuf[0] = dL/d(output of layer
 * start): every shard's parameter gradients, summed in shard order into
 * m->grads, then checked for NaN/Inf. Not under MPI (src/cli/train_mpi.c
 * refuses such models). */
cnn_status cnn_shards_backward_layers(cnn_model *m, int start, int n, int shards);

/* Every parameter and buffer at once, from `from` (nfloats, in m->params'
 * layout): a load. Counts as a change of the parameters. */
void cnn_model_set_params(cnn_model *m, const float *from);

/* Serialise / restore the model RNG as 64 hex digits (checkpoints). */
void cnn_model_rng_to_hex(const cnn_model *m, char out[65]);
cnn_status cnn_model_rng_from_hex(cnn_model *m, const char *hex);
/* Give m the optimizer state arrays kind uses, zeroed (and free those it
 * does not use), with step 0: a fresh optimizer, or room for a
 * checkpoint's state to be read into. */
cnn_status cnn_model_reset_state(cnn_model *m, cnn_opt_kind kind);

#endif
