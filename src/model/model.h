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

struct cnn_model {
    char *arch;               /* the architecture text it was built from */
    cnn_shape input;
    int nlayers;
    cnn_layer **layers;

    /* Every parameter and buffer in one allocation, every gradient in
     * another, carved up in state_dict order (llm.c style). */
    float *params, *grads;
    size_t nfloats;
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

    /* optimizer: state arrays parallel to params (unused for buffers) */
    int has_opt;
    cnn_optim_config opt;
    float lr;
    long step;
    float *opt_m, *opt_v;
    /* training state read from a checkpoint, used by the next
     * cnn_model_set_optimizer of the same kind */
    int pending_kind;         /* -1: none */
    long pending_step;
    float *pending_m, *pending_v;

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

/* Serialise / restore the model RNG as 64 hex digits (checkpoints). */
void cnn_model_rng_to_hex(const cnn_model *m, char out[65]);
cnn_status cnn_model_rng_from_hex(cnn_model *m, const char *hex);
/* Make room for training state from a file: allocates pending_m/v (nfloats
 * each, zeroed) and returns them; the caller fills them. */
cnn_status cnn_model_pending_state(cnn_model *m, int kind, long step);

#endif
