/*
 * cnn.h — a convolutional neural network trainer written from scratch in C.
 *
 * A short tour
 * ------------
 * A model is a list of layers written as text, one layer per line:
 *
 *     input 1x28x28
 *     conv 16 3x3 stride=2 pad=1 padmode=zero
 *     relu
 *     maxpool 2
 *     flatten
 *     dense 10
 *     softmax
 *
 * Shapes are inferred from the `input` line alone. Build it, give it weights,
 * tell it the largest batch it will see (this allocates every buffer once),
 * then train:
 *
 *     cnn_model *m;
 *     if (cnn_model_from_text(text, "simplecnn", &m)) die(cnn_errmsg());
 *     cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 42);
 *     cnn_model_set_batch(m, 64);
 *     cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
 *     oc.lr = 0.07f;
 *     cnn_model_set_optimizer(m, &oc);
 *     for (...) cnn_model_train_batch(m, x, labels, n, CNN_LOSS_XENT, &stats);
 *     cnn_model_save(m, "model.safetensors", 0);
 *
 * Every layer has two implementations: the textbook loops of the seed report
 * (CNN_KERNELS_REF) and im2col + cache-blocked GEMM with OpenMP
 * (CNN_KERNELS_FAST, the default). Both give the same numbers to ~1e-5.
 *
 * Errors: every call that can fail returns a cnn_status; on failure
 * cnn_errmsg() says what was wrong and where. Nothing here exits or aborts.
 * Tensors are float32, row-major, batches in NCHW order.
 */
#ifndef CNN_H
#define CNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNN_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum {
    CNN_OK = 0,
    CNN_ERR_ARG,         /* a bad argument from the caller (usage error) */
    CNN_ERR_PARSE,       /* an architecture text that does not parse */
    CNN_ERR_IO,          /* a file that cannot be opened, read or written */
    CNN_ERR_FORMAT,      /* a file whose contents are malformed */
    CNN_ERR_NOMEM,       /* an allocation failed or would be too large */
    CNN_ERR_NUMERIC,     /* NaN or Inf appeared in the loss, activations or gradients */
    CNN_ERR_INTERRUPTED  /* stopped on request (e.g. Ctrl-C) */
} cnn_status;

/* The message of the last failure on this thread ("" if none). */
const char *cnn_errmsg(void);
/* A short name for a status code ("parse error", ...). */
const char *cnn_status_name(cnn_status s);

/* --------------------------------------------------------------- runtime */

/* Threads used by the fast kernels (OpenMP). n > 0 fixes the count. n <= 0
 * (the default) is automatic: up to OMP_NUM_THREADS or the number of cores,
 * and cnn_model_train_batch times its batches to use fewer threads while
 * fewer run faster, as on a machine whose other cores are busy (setting
 * OMP_NUM_THREADS fixes the count too). Results are bit-identical for any
 * thread count. cnn_get_threads returns the count in use now. */
void cnn_set_threads(int n);
int cnn_get_threads(void);
/* The instruction set the GEMM micro-kernel runs with: "avx512", "avx2" or
 * "generic". */
const char *cnn_simd_name(void);

/* Memory. Every buffer the library allocates counts against a limit: an
 * allocation that would pass it fails with CNN_ERR_NOMEM, and a model or a
 * batch size whose estimated need (cnn_model_memory_need) passes it is
 * refused before anything is allocated, with a message that says how much
 * is needed and what the limit is. bytes == 0 sets the default: 80% of
 * the machine's memory (or of the control group's limit, if lower). */
void cnn_set_memory_limit(size_t bytes);
size_t cnn_memory_limit(void);
/* Bytes the library has allocated and not yet freed. */
size_t cnn_memory_used(void);

/* ----------------------------------------------------------------- model */

typedef struct cnn_model cnn_model;

typedef enum { CNN_KERNELS_REF = 0, CNN_KERNELS_FAST = 1 } cnn_kernels;

typedef enum {
    CNN_INIT_XAVIER_NORMAL = 0, /* N(0, 1/n_in), as the seed report (default) */
    CNN_INIT_XAVIER_UNIFORM,    /* U(-a, a), a = sqrt(6 / (n_in + n_out)) */
    CNN_INIT_HE_NORMAL          /* N(0, 2/n_in) */
} cnn_init;

/* Parse an architecture text. `name` is used in error messages
 * ("name:3: conv: expected a filter count"). */
cnn_status cnn_model_from_text(const char *text, const char *name, cnn_model **out);
cnn_status cnn_model_from_file(const char *path, cnn_model **out);
void cnn_model_free(cnn_model *m);

/* The architecture text the model was built from. */
const char *cnn_model_arch(const cnn_model *m);

/* Draw all weights from `seed` (biases 0, batchnorm scale 1). */
cnn_status cnn_model_init(cnn_model *m, cnn_init how, uint64_t seed);

/* Allocate every buffer for batches of up to max_batch images. Must be called
 * before forward/train; may be called again to grow or shrink. */
cnn_status cnn_model_set_batch(cnn_model *m, int max_batch);
int cnn_model_max_batch(const cnn_model *m);
/* What the model needs for batches of up to max_batch at the current
 * thread count, in bytes, computed from its shapes alone: parameters and
 * gradients, optimizer state (with_optimizer: counted as Adam's two moment
 * arrays, the most any optimizer keeps; plain SGD keeps none, momentum
 * one), activations, the layers' workspaces and the per-thread workers of
 * a large batch.
 * cnn_model_set_batch (and cnn_model_set_optimizer) refuse a need above
 * the memory limit. */
size_t cnn_model_memory_need(const cnn_model *m, int max_batch, int with_optimizer);

void cnn_model_set_kernels(cnn_model *m, cnn_kernels k);
cnn_kernels cnn_model_kernels(const cnn_model *m);

/* Shapes: input is (c, h, w) per image; output is a vector of `classes`. */
void cnn_model_input_shape(const cnn_model *m, int *c, int *h, int *w);
int cnn_model_output_size(const cnn_model *m);
/* 1 if the last layer is softmax (outputs are probabilities). */
int cnn_model_ends_in_softmax(const cnn_model *m);

/* Layer table (Keras's summary()). */
typedef struct {
    const char *kind;   /* "conv", "maxpool", ... */
    const char *desc;   /* "conv 16 3x3 stride=2 pad=1 padmode=zero" */
    const char *torch;  /* the matching torch.nn module, e.g. "Conv2d" */
    int out_c, out_h, out_w;
    size_t params;      /* trainable parameters */
    double flops;       /* forward FLOPs per image (a multiply-add = 2) */
    /* The algorithms the fast kernels choose for the layer, as
     * "fwd winograd, dw winograd, dx winograd" (conv); "" for a kind with
     * one algorithm. For a batch of the model's size on the threads it was
     * set up for (cnn_model_set_batch); before that, for a batch of 64 on
     * as many threads as the library may use (cnn_set_threads,
     * OMP_NUM_THREADS or the cores); at the SIMD level in use
     * (cnn_simd_name). */
    char plan[80];
} cnn_layer_info;
int cnn_model_num_layers(const cnn_model *m);
cnn_status cnn_model_layer_info(const cnn_model *m, int i, cnn_layer_info *out);
size_t cnn_model_num_params(const cnn_model *m);
double cnn_model_flops(const cnn_model *m); /* forward FLOPs per image */

/* Forward a batch of n images x: (n, c, h, w). *out points to (n, classes)
 * floats owned by the model, valid until the next call. In train mode dropout
 * is active and batchnorm uses batch statistics. */
cnn_status cnn_model_forward(cnn_model *m, const float *x, int n, int train,
                             const float **out);

/* ------------------------------------------------- looking inside a model */

/* Every layer's output for a batch (feature maps): an eval-mode forward of
 * the n images x (n <= the max batch) after which acts[i], for i = 0 ..
 * cnn_model_num_layers(m) - 1, points to layer i's output, (n, out_c,
 * out_h, out_w) floats in NCHW order (a flat layer's output is (n,
 * features)). The batch runs whole, never in shards (a sharded run keeps
 * its activations with per-thread workers), so every layer's output stays
 * in the model; the outputs are cnn_model_forward's to float rounding (a
 * whole batch may take other kernels than its shards, summing in another
 * order). The pointers are the model's and valid until the next call that
 * runs it.
 * acts must hold cnn_model_num_layers(m) pointers. A NaN or Inf in the
 * output is CNN_ERR_NUMERIC naming the layer and the image, as for
 * cnn_model_forward. */
cnn_status cnn_model_forward_layers(cnn_model *m, const float *x, int n, const float **acts);

/* -------------------------------------------------------------- losses */

/* Each loss is the PyTorch module a user compares it with, and a model's
 * training and evaluation calls give it the tensor that module would be
 * given, whatever the model ends in (targets are one-hot rows; reductions
 * are PyTorch's default, 'mean'):
 *
 *   loss   PyTorch module                    reads
 *   xent   CrossEntropyLoss                  the scores: the input of a final
 *                                            softmax, otherwise the output
 *   cce    -sum t log p (the seed's §2.5)    a final softmax's probabilities;
 *                                            refused if there is none
 *   bce    BCEWithLogitsLoss                 the input of a final sigmoid, or
 *                                            the output if there is no final
 *                                            softmax/sigmoid
 *          BCELoss (logs clamped at -100)    a final softmax's probabilities
 *   hinge  MultiMarginLoss (p=1, margin=1)   the scores: the input of a final
 *                                            softmax or sigmoid, otherwise
 *                                            the output
 *   mse    MSELoss                           the output, after any final
 *   mae    L1Loss                            activation
 *   huber  HuberLoss(delta)
 *
 * Where a loss reads the input of the final activation, that layer's
 * backward is skipped (it is part of the loss's formula); where it reads the
 * output, the gradient flows back through the final activation.
 * cnn_model_check_loss says whether a model can take a loss. Accuracy is
 * always the arg-max of the model's output. */
typedef enum {
    CNN_LOSS_XENT = 0, /* cross-entropy on scores (CrossEntropyLoss) */
    CNN_LOSS_CCE,      /* categorical cross-entropy on a softmax's probabilities */
    CNN_LOSS_BCE,      /* binary cross-entropy per output (with logits, or on a
                          softmax's probabilities) */
    CNN_LOSS_HINGE,    /* multiclass hinge on scores, margin 1 */
    CNN_LOSS_MSE,      /* mean squared error against one-hot */
    CNN_LOSS_MAE,      /* mean absolute error against one-hot */
    CNN_LOSS_HUBER     /* Huber(delta) against one-hot */
} cnn_loss_kind;

typedef struct {
    cnn_loss_kind kind;
    float delta; /* Huber's threshold (default 1) */
} cnn_loss;

/* Parse "xent", "cce", "bce", "hinge", "mse", "mae", "huber" or
 * "huber:0.5". */
cnn_status cnn_loss_parse(const char *s, cnn_loss *out);
const char *cnn_loss_name(cnn_loss_kind k);

/* The mean loss over n rows of k outputs, and its gradient d(mean loss)/d(out)
 * written to grad (n x k; may be NULL). `target` is (n x k): one-hot rows for
 * classification. `out` is taken as given: XENT, BCE (BCEWithLogitsLoss) and
 * HINGE expect scores, CCE probabilities. */
double cnn_loss_compute(cnn_loss loss, const float *out, const float *target,
                        int n, int k, float *grad);

/* ------------------------------------------------------------ optimizers */

typedef enum { CNN_OPT_SGD = 0, CNN_OPT_MOMENTUM, CNN_OPT_NESTEROV, CNN_OPT_ADAM,
               CNN_OPT_ADAMW } cnn_opt_kind;
typedef enum { CNN_SCHED_CONSTANT = 0, CNN_SCHED_STEP, CNN_SCHED_COSINE } cnn_sched_kind;

typedef struct {
    cnn_opt_kind kind;
    float lr;            /* base learning rate */
    float momentum;      /* SGD momentum (MOMENTUM, NESTEROV) */
    float beta1, beta2, eps; /* Adam */
    float weight_decay;  /* L2 added to the gradient (SGD, Adam) or decoupled (AdamW) */
    float clip_norm;     /* clip gradients to this global L2 norm; 0 = off */
    cnn_sched_kind sched;
    int step_epochs;     /* STEP: multiply by gamma every step_epochs epochs */
    float gamma;
    float min_lr;        /* COSINE: the floor */
} cnn_optim_config;

cnn_optim_config cnn_optim_defaults(cnn_opt_kind kind);
cnn_status cnn_optim_parse(const char *s, cnn_opt_kind *out); /* sgd|momentum|nesterov|adam|adamw */
cnn_status cnn_sched_parse(const char *s, cnn_sched_kind *out); /* constant|step|cosine */
const char *cnn_optim_name(cnn_opt_kind k);
/* Learning rate at `epoch` (0-based, fractional: 2.5 is half-way through
 * the third epoch) of `epochs` under the schedule. STEP changes at whole
 * epochs; COSINE anneals smoothly, so callers may update it every step. */
float cnn_optim_lr_at(const cnn_optim_config *c, double epoch, int epochs);

/* Attach an optimizer (allocates its state once; resets it). */
cnn_status cnn_model_set_optimizer(cnn_model *m, const cnn_optim_config *c);
/* Set the learning rate used by the next steps (schedules call this per epoch). */
void cnn_model_set_lr(cnn_model *m, float lr);

/* --------------------------------------------------------------- training */

typedef struct {
    double loss;   /* mean loss over the batch */
    int correct;   /* images whose arg-max output equals the label */
} cnn_batch_stats;

/* CNN_OK if the model can be trained and evaluated with `loss` (the table
 * above); otherwise CNN_ERR_ARG with a message saying why: cce on a model
 * without a final softmax, an unknown kind, a Huber delta that is not > 0.
 * The calls below refuse such a pair the same way, before any work. */
cnn_status cnn_model_check_loss(const cnn_model *m, cnn_loss loss);

/* One training step on a batch: forward (train mode), loss, backward,
 * optimizer step. labels are class indices < output size. Returns
 * CNN_ERR_NUMERIC, naming the first layer that produced NaN/Inf, without
 * touching the weights if the loss, an activation or a gradient is not
 * finite. */
cnn_status cnn_model_train_batch(cnn_model *m, const float *x, const uint8_t *labels,
                                 int n, cnn_loss loss, cnn_batch_stats *stats);
/* Forward + loss + backward without the optimizer step (gradients are left
 * in the model; see cnn_model_params). */
cnn_status cnn_model_compute_grads(cnn_model *m, const float *x, const uint8_t *labels,
                                   int n, cnn_loss loss, cnn_batch_stats *stats);
/* Apply one optimizer step with the gradients from cnn_model_compute_grads. */
cnn_status cnn_model_step(cnn_model *m);
/* Eval-mode forward + loss over a batch. */
cnn_status cnn_model_eval_batch(cnn_model *m, const float *x, const uint8_t *labels,
                                int n, cnn_loss loss, cnn_batch_stats *stats);

/* Named tensors, in PyTorch state_dict order and naming ("0.weight", ...).
 * Includes batchnorm running statistics (grad == NULL for those). data may
 * be written: cnn_model_tensor counts as a change of the parameters (what
 * the layers derive from them, such as transformed filters, is made again
 * at the next forward), and so does cnn_model_params_changed, for writes
 * through a pointer kept from an earlier call. */
typedef struct {
    const char *name;
    float *data;
    float *grad;      /* NULL for buffers that are not trained */
    int ndim;
    int dims[4];
    size_t size;
} cnn_tensor;
int cnn_model_num_tensors(const cnn_model *m);
cnn_status cnn_model_tensor(cnn_model *m, int i, cnn_tensor *out);
void cnn_model_params_changed(cnn_model *m);

/* Layer i's own tensors, by index or by name, in state_dict order: its
 * parameters ("weight", "bias"; batchnorm's scale and shift are its
 * "weight" and "bias") and buffers (batchnorm's "running_mean" and
 * "running_var", grad == NULL). out->name is the state_dict name
 * ("3.weight"), out->dims the shape: a conv's weight is (filters,
 * in_channels, kh, kw), a dense layer's (out, in). Activations, pools,
 * flatten and dropout have none. out->data is NULL for a model built for
 * its shapes only. */
int cnn_model_layer_num_tensors(const cnn_model *m, int layer);
cnn_status cnn_model_layer_tensor(cnn_model *m, int layer, int j, cnn_tensor *out);
/* The tensor `name` ("weight", or the full "3.weight") of layer i;
 * CNN_ERR_ARG if the layer has none of that name. */
cnn_status cnn_model_layer_tensor_by_name(cnn_model *m, int layer, const char *name,
                                          cnn_tensor *out);

/* The window of a conv, maxpool or avgpool layer: output pixel (oy, ox)
 * reads input rows oy*sh - ph .. oy*sh - ph + kh - 1 and columns ox*sw - pw
 * .. ox*sw - pw + kw - 1 (the seed's eq. 3.3); a position outside the
 * input reads the padding: 0, or for a conv the mirrored ("reflect",
 * PyTorch's) or nearest ("replicate") input pixel. CNN_ERR_ARG for a
 * layer of another kind. */
typedef struct {
    int kh, kw;            /* the kernel (window) size */
    int sh, sw;            /* stride */
    int ph, pw;            /* padding on each side */
    const char *padmode;   /* "zero", "reflect" or "replicate" */
} cnn_layer_window;
cnn_status cnn_model_layer_window(const cnn_model *m, int i, cnn_layer_window *out);

/* ------------------------------------------------------ metadata and files */

/* String metadata stored in the model file's __metadata__ ("classes",
 * "norm_mean", "norm_std", "epoch", ...). The architecture is always stored
 * under "arch". */
cnn_status cnn_model_set_meta(cnn_model *m, const char *key, const char *value);
const char *cnn_model_get_meta(const cnn_model *m, const char *key); /* NULL if absent */

/* Save as safetensors, atomically (temporary file, fsync, rename). With
 * with_train_state the optimizer state and step count are stored too (a
 * checkpoint). Tensor names and layouts follow PyTorch's nn.Sequential. */
cnn_status cnn_model_save(cnn_model *m, const char *path, int with_train_state);
/* Load a model (architecture from the file's metadata). Training state, if
 * present, is restored once an optimizer is attached with the same kind. */
cnn_status cnn_model_load(const char *path, cnn_model **out);
/* Copy the weights of a safetensors file into an existing model; every shape
 * must match. */
cnn_status cnn_model_load_weights(cnn_model *m, const char *path);

/* ------------------------------------------------------------------- data */

typedef struct {
    int n;             /* images */
    int c, h, w;       /* per image (c = 1 for IDX) */
    uint8_t *images;   /* n * c * h * w bytes */
    uint8_t *labels;   /* n labels */
    int classes;       /* 1 + the largest label */
} cnn_dataset;

/* Read an IDX image file and its label file (raw or .gz, told apart by the
 * gzip magic bytes, not the name). */
cnn_status cnn_idx_load(const char *images_path, const char *labels_path, cnn_dataset *out);
/* Releases images and labels with free(): a dataset built by hand must
 * allocate them with malloc. */
void cnn_dataset_free(cnn_dataset *d);

/* A decoded picture: h rows of w pixels, top row first, each pixel
 * `channels` bytes: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA (alpha 255 =
 * opaque). The picture is upright: the rotation or mirroring that a JPEG's
 * or PNG's EXIF orientation asks for has been applied. */
typedef struct {
    int w, h, channels;
    uint8_t *px;
} cnn_image;

/* Decode a PNG, JPEG, BMP, GIF (first frame) or PGM/PPM (P2, P3, P5, P6)
 * file, told apart by its magic bytes. Palettes, bit depths other than 8
 * and transparency are expanded to 8-bit grey/RGB with alpha; CMYK JPEGs
 * become RGB. A file that is corrupt, truncated, too large (more than 16384
 * pixels a side or 64 Mpixel) or too costly to decode (a progressive JPEG
 * with too many scans) is refused with CNN_ERR_FORMAT and a message naming
 * it. Release *out with cnn_image_free. */
cnn_status cnn_image_decode_file(const char *path, cnn_image *out);
/* The same from bytes in memory; `name` is used in messages. */
cnn_status cnn_image_decode_memory(const void *data, size_t len, const char *name,
                                   cnn_image *out);
void cnn_image_free(cnn_image *img);
/* Grey levels of a decoded picture into gray (w*h bytes): colour by luma
 * (0.30 R + 0.59 G + 0.11 B); alpha composited over black when what is
 * opaque is mostly light (white ink on a transparent page), else over
 * white (dark or coloured ink), so the ink always stays visible. */
cnn_status cnn_image_to_gray(const cnn_image *img, uint8_t *gray);

/* How a picture becomes a model's input (a model records its choice as the
 * "prep" metadata, and predict applies it):
 *   CNN_PREP_DIGIT  MNIST's preparation (cnn_image_preprocess_mnist: grey,
 *                   ink bright on black, cropped to the ink, 20x20 in a
 *                   28x28 field), then PAD to the input if it is not 1x28x28;
 *   CNN_PREP_PAD    resized to fit inside the input keeping the aspect ratio
 *                   (area averaging when shrinking, bilinear when enlarging),
 *                   centred, the rest filled with 0 (black);
 *   CNN_PREP_CROP   the centre cut to the input's aspect ratio, then resized
 *                   to fill it.
 * Channels: a grey picture into a colour input is copied to R, G and B; a
 * colour picture into a grey input becomes its luma (cnn_image_to_gray);
 * alpha is composited over the background cnn_image_to_gray chooses. */
typedef enum { CNN_PREP_DIGIT = 0, CNN_PREP_PAD, CNN_PREP_CROP } cnn_prep;
/* "digit", "pad", "crop"; parse returns CNN_ERR_ARG for anything else. */
const char *cnn_prep_name(cnn_prep p);
cnn_status cnn_prep_parse(const char *s, cnn_prep *out);
/* A decoded picture into c x h x w bytes, planar (all of channel 0, then
 * channel 1, ...), c = 1 or 3. */
cnn_status cnn_image_prepare(const cnn_image *img, cnn_prep prep, int c, int h, int w,
                             uint8_t *out);
/* The same for planar pixels already in memory (sc x sh x sw bytes: a row
 * of an IDX or CSV file). DIGIT is taken as PAD here: such data is already
 * prepared. sc must be c, or 1 or 3. */
cnn_status cnn_planes_prepare(const uint8_t *src, int sc, int sh, int sw, cnn_prep prep, int c,
                              int h, int w, uint8_t *out);

/* Load a picture (any format of cnn_image_decode_file) and preprocess it
 * the way MNIST was made: grey levels (cnn_image_to_gray), invert a light
 * background, crop to the ink, fit 20x20 keeping the aspect ratio, centre
 * of mass at the centre of a 28x28 field. out gets 28*28 bytes
 * (0 = background, 255 = ink). */
cnn_status cnn_image_load_mnist(const char *path, uint8_t out[28 * 28]);
/* The same preprocessing on a grayscale buffer already in memory. */
cnn_status cnn_image_preprocess_mnist(const uint8_t *gray, int w, int h, uint8_t out[28 * 28]);

#ifdef __cplusplus
}
#endif
#endif
