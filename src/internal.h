/*
 * internal.h — what the parts of libcnn share and users never see.
 *
 * Conventions
 *  - Tensors are float32, row-major. A batch of n images of shape (c, h, w)
 *    is n*c*h*w floats in NCHW order. 2-D tensors (after flatten) are
 *    (features, 1, 1) per image, so every layer sees the same cnn_shape.
 *  - A library function never exits: it returns a cnn_status and leaves a
 *    message with cnn_fail().
 *  - Buffers are allocated when the model and batch size are set, never in
 *    the training loop.
 */
#ifndef CNN_INTERNAL_H
#define CNN_INTERNAL_H

#include "cnn.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- errors */

/* Record a printf-style message for cnn_errmsg() and return `code`. */
cnn_status cnn_fail(cnn_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefix the current message: "context: <old message>". Returns code. */
cnn_status cnn_fail_prefix(cnn_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- memory */

/* 64-byte aligned, zero-filled allocation; NULL (with a message naming
 * `what` and the size) on failure, if bytes exceeds CNN_MAX_ALLOC, or if
 * it would take the bytes in use past the memory limit (src/core/memory.c).
 * CNN_MAX_ALLOC is a sanity cap on one allocation, far above any model
 * this trainer is for: it keeps a size computed wrongly from reaching the
 * allocator whatever the limit. A 32-bit target (the report page's
 * WebAssembly module) cannot count to 16 GiB: there it is 2 GiB. */
#if SIZE_MAX > 0xffffffffu
#define CNN_MAX_ALLOC ((size_t)16 << 30)
#else
#define CNN_MAX_ALLOC ((size_t)2 << 30)
#endif
void *cnn_alloc(size_t bytes, const char *what);
/* Frees a block of cnn_alloc (NULL is fine) and gives its bytes back. */
void cnn_free(void *p);
/* What cnn_alloc(bytes) counts against the limit: the bytes rounded up to
 * 64, plus its header. Estimates of a model's need add these. */
size_t cnn_alloc_charge(size_t bytes);
/* The default limit: this share of the memory. */
#define CNN_MEMORY_DEFAULT_PERCENT 80
/* The machine's memory, or the control group's limit if lower (SIZE_MAX
 * if unknown). */
size_t cnn_physical_memory(void);
/* Where the limit comes from, as messages say it: "80% of the memory",
 * "--mem-limit 2G". cnn_set_memory_limit resets it. */
void cnn_memory_limit_source(const char *text);
/* "19.2 GiB", and the limit as "19.2 GiB (80% of the memory)". */
void cnn_format_bytes(char *buf, size_t len, double bytes);
void cnn_format_limit(char *buf, size_t len);
/* a*b and a+b, or SIZE_MAX on overflow: sizes of absurd models saturate */
size_t cnn_mul_size(size_t a, size_t b);
size_t cnn_add_size(size_t a, size_t b);

/* ------------------------------------------------------------------ text */

/* Why len bytes of text are not printable UTF-8 (a phrase: "is not UTF-8
 * text", "holds a control character"), or NULL if they are
 * (src/core/text.c). */
const char *cnn_text_problem(const char *text, size_t len);

/* ----------------------------------------------------------------- files */

/* Open a file the user named for reading (src/core/file.c). It must be a
 * regular file: a directory, device or FIFO is refused at once, never
 * waited on. `what` names the expected kind in messages ("a model file").
 * *size (may be NULL) gets the file's size. */
cnn_status cnn_open_input(const char *path, const char *what, int *fd, long long *size);
cnn_status cnn_fopen_input(const char *path, const char *what, FILE **f, long long *size);
/* cnn_fopen_input that refuses an empty file (CNN_ERR_FORMAT); size is
 * required. */
cnn_status cnn_fopen_nonempty(const char *path, const char *what, FILE **f, long long *size);

/* An output file written atomically: cnn_out_open creates a temporary file
 * next to the destination (O_EXCL, never through a link), the caller writes
 * to o->f, and cnn_out_commit checks every write, fsyncs and renames it
 * over the destination, or removes it and says why. A character device or
 * a FIFO with a reader is written in place. cnn_out_abort drops the file. */
typedef struct {
    FILE *f;
    char *dest;   /* where the file lands (a symbolic link's target) */
    char *tmp;    /* the temporary file; NULL when writing in place */
    char *shown;  /* the path as the caller gave it, for messages */
} cnn_outfile;
cnn_status cnn_out_open(cnn_outfile *o, const char *path);
cnn_status cnn_out_commit(cnn_outfile *o);
void cnn_out_abort(cnn_outfile *o);
/* The whole file at once. */
cnn_status cnn_out_write(cnn_outfile *o, const char *path, const void *data, size_t len);
/* Whether `path` can be written, checked by creating (and removing) a file
 * in its folder: for refusing a run before its work, not after. */
cnn_status cnn_check_writable(const char *path);

/* -------------------------------------------------------------- metadata */

/* Remove a metadata entry (nothing if absent); the others keep their order. */
void cnn_model_unset_meta(cnn_model *m, const char *key);

/* ------------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64: our own, reproducible everywhere. */
typedef struct { uint64_t s[4]; } cnn_rng;
void cnn_rng_seed(cnn_rng *r, uint64_t seed);
uint64_t cnn_rng_next(cnn_rng *r);
float cnn_rng_uniform(cnn_rng *r);            /* [0, 1) */
float cnn_rng_normal(cnn_rng *r);             /* N(0, 1), Box-Muller */
uint32_t cnn_rng_below(cnn_rng *r, uint32_t n); /* [0, n), unbiased */
/* The state as 64 hex digits (checkpoints), and back: 0, or -1 for text
 * that is not 64 hex digits (r untouched then). */
void cnn_rng_to_hex(const cnn_rng *r, char out[65]);
int cnn_rng_from_hex(const char *hex, cnn_rng *r);

/* ------------------------------------------------------------------- cpu */

/* What the CPU can run (src/core/cpu.c): AVX-512F with FMA; AVX-512BW with
 * VL (byte masks); AVX2 with FMA. 0 off x86-64. */
int cnn_cpu_has_avx512(void);
int cnn_cpu_has_avx512bw(void);
int cnn_cpu_has_avx2(void);

/* The SIMD level every kernel runs at: the best the CPU has, lowered by
 * CNN_SIMD=generic|avx2 in the environment. cnn_simd_set_level forces one
 * (tests, benchmarks): a level the CPU lacks is lowered to the best it
 * has, a negative one re-reads the CPU and CNN_SIMD; it returns the level
 * now in use. Not for use while another thread runs a kernel; a conv layer
 * keeps the plan it made for the level in use at its reserve. */
enum { CNN_SIMD_GENERIC = 0, CNN_SIMD_AVX2 = 1, CNN_SIMD_AVX512 = 2 };
int cnn_simd_set_level(int level);
/* inline: the GEMM asks on every call */
extern int cnn_simd_level_in_use; /* -1 until the first call */
static inline int cnn_simd_level(void)
{
    int level = __atomic_load_n(&cnn_simd_level_in_use, __ATOMIC_ACQUIRE);
    return level >= 0 ? level : cnn_simd_set_level(-1);
}

/* ---------------------------------------------------------------- threads */

/* Threads the fast kernels may use now (src/core/threads.c): the count set
 * by cnn_set_threads, or in automatic mode the count the tuner chose. The
 * model asks once per batch and passes the count down to its layers. */
int cnn_threads(void);
/* The most threads cnn_threads() can return: what per-thread buffers are
 * sized for. */
int cnn_threads_max(void);
/* Bracket one training batch of `images` images: in automatic mode the
 * batch runs at the thread count the tuner picks for it, and its time
 * feeds the tuner. No-ops when the count is fixed. */
void cnn_threads_batch_begin(void);
void cnn_threads_batch_end(int images);
/* batch_end with the batch's duration given (tests drive the tuner). */
void cnn_threads_batch_timed(int images, double seconds);
/* Below this many FLOPs a kernel runs on one thread: threads must never
 * make a small layer slower. An OpenMP fork/join costs a few microseconds,
 * about 1e6 FLOPs of work at 100-200 GFLOP/s (measured in bench_gemm). */
#define CNN_PARALLEL_MIN_FLOPS 1000000.0

/* How many of `threads` threads `flops` of work is worth: all of them, or
 * one below CNN_PARALLEL_MIN_FLOPS. */
static inline int cnn_threads_for(double flops, int threads)
{
    return threads > 1 && flops >= CNN_PARALLEL_MIN_FLOPS ? threads : 1;
}

/* The work of indices [i0, i1) on thread t (0 <= t < the thread count):
 * t picks the thread's workspace, never its share of the result. */
typedef void (*cnn_range_fn)(void *ctx, long i0, long i1, int t);
typedef enum {
    CNN_SPLIT_EVEN, /* thread t takes one contiguous range, [n*t/T, n*(t+1)/T) */
    CNN_SPLIT_EACH  /* indices one at a time to whichever thread is free (dynamic) */
} cnn_split;
/* fn over [0, n) on at most nt threads (src/core/parallel.c), each index
 * exactly once; nt <= 1 (or n == 1) calls fn(ctx, 0, n, 0) inline, with no
 * parallel region. `work`: what the n indices cost together (FLOPs, or
 * values for memory-bound loops), for the work counts only. Called by the
 * leader of a group (cnn_parallel_groups), it runs on the group's threads. */
void cnn_parallel_for(int nt, long n, cnn_split split, double work, cnn_range_fn fn, void *ctx);

/* Item i of cnn_parallel_groups, run by the leader of group g, whose
 * cnn_parallel_for calls may use up to `size` threads. */
typedef void (*cnn_item_fn)(void *ctx, long i, int g, int size);
/* Items [0, items) on nt threads: min(items, nt) groups of nt / groups
 * threads each (cnn_parallel_groups_shape), each group's leader taking
 * items in increasing order. Which group runs an item must not change its
 * result. Groups of one run as cnn_parallel_for's CNN_SPLIT_EACH. */
void cnn_parallel_groups(int nt, long items, cnn_item_fn fn, void *ctx);
void cnn_parallel_groups_shape(int nt, long items, int *groups, int *size);

/* Work counts per thread, for measuring balance (bench/bench_balance.c):
 * cnn_work_count(1) zeroes the counts and starts counting (dynamic splits
 * are then dealt statically), cnn_work_count(0) stops; cnn_work_add puts
 * work on the calling thread (serial parts); cnn_work_counts copies up to
 * max counts and returns how many threads have any. Not for use while
 * another thread runs a kernel. */
#define CNN_WORK_MAX_THREADS 256
void cnn_work_count(int on);
void cnn_work_add(double work);
int cnn_work_counts(double *out, int max);
/* Barriers since counting began on the thread that started the most
 * (parallel regions and group jobs): the ones on the critical path. */
long cnn_work_syncs(void);

/* ---------------------------------------------------------------- kernels */

/* C = alpha * op(A) * op(B) + beta * C, row-major, single precision.
 * op(A) is M x K, op(B) is K x N; transa/transb non-zero means A (or B) is
 * stored transposed (A as K x M with leading dimension lda).
 * beta == 0 means C is overwritten (its old contents, even NaN, ignored).
 * Parallel over output tiles on cnn_threads() threads when not already
 * inside a parallel region and the work is large enough; the K loop is
 * never split, so the result is bit-identical for any thread count. */
void cnn_sgemm(int transa, int transb, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);
/* The same on up to nt threads (1: the calling thread only). */
void cnn_sgemm_threads(int nt, int transa, int transb, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C,
                       int ldc);
/* The same on one thread (for callers already parallel over the batch). */
void cnn_sgemm_serial(int transa, int transb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc);
/* The textbook triple loop, for tests and the reference path. */
void cnn_sgemm_ref(int transa, int transb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);

/* Padding modes (conv2d's padmode=). */
typedef enum { CNN_PAD_ZERO = 0, CNN_PAD_REFLECT, CNN_PAD_REPLICATE } cnn_padmode;
const char *cnn_padmode_name(cnn_padmode m);

/* Where padded coordinate i (may be < 0 or >= n) reads from: an index in
 * [0, n), or -1 for a zero pad. Reflect mirrors without repeating the edge
 * (PyTorch's 'reflect'; needs pad < n), replicate repeats the edge. */
static inline int cnn_pad_index(int i, int n, cnn_padmode mode)
{
    if (i >= 0 && i < n) return i;
    if (mode == CNN_PAD_ZERO) return -1;
    if (mode == CNN_PAD_REPLICATE) return i < 0 ? 0 : n - 1;
    /* reflect */
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/* floor(a / b) for b > 0 and a of either sign */
static inline int cnn_floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Geometry of one 2-D window operation (conv or pool). */
typedef struct {
    int c, h, w;        /* input channels and size */
    int kh, kw;         /* kernel */
    int sh, sw;         /* stride */
    int ph, pw;         /* padding on each side */
    cnn_padmode mode;
    int ho, wo;         /* output size, eq. 3.1 / 3.2 */
} cnn_window;

/* im2col: one image x (c, h, w) -> col (c*kh*kw, ho*wo); row index
 * (ci*kh + i)*kw + j, column index oy*wo + ox. Padded taps follow `mode`. */
void cnn_im2col(const cnn_window *g, const float *x, float *col);
/* im2col of output rows [oy0, oy1) only, into a (c*kh*kw, (oy1-oy0)*wo)
 * matrix with row stride ld: threads each build the columns they multiply,
 * in a block of their own. */
void cnn_im2col_rows(const cnn_window *g, const float *x, int oy0, int oy1, float *col,
                     size_t ld);
/* col2im: the adjoint of im2col. ADDS col's entries into dx (c, h, w); a tap
 * that read a padded position adds into the pixel it read (nothing for zero
 * padding). The caller zeroes dx first. */
void cnn_col2im(const cnn_window *g, const float *col, float *dx);

/* ------------------------------------------------------------------ shapes */

typedef struct { int c, h, w; } cnn_shape;
static inline size_t cnn_shape_size(cnn_shape s) { return (size_t)s.c * s.h * s.w; }

/* --------------------------------------------------------------- the spec */

/* One line of an architecture text, split into words. Words of the form
 * key=value are options; the others are positional. */
#define CNN_SPEC_MAX_WORDS 16
typedef struct {
    const char *file;   /* name used in messages */
    int line;           /* 1-based */
    int nwords;
    char *words[CNN_SPEC_MAX_WORDS]; /* words[0] is the layer kind */
    unsigned used;      /* bit i set when words[i] has been consumed */
} cnn_spec_line;

/* Split `text` (modified in place; '#' starts a comment) into words. A line
 * with no words gets nwords == 0. */
cnn_status cnn_spec_split(char *text, const char *file, int line, cnn_spec_line *s);

/* Each returns CNN_OK or CNN_ERR_PARSE with a message
 * "file:line: kind: what was expected". */
cnn_status cnn_spec_error(cnn_spec_line *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The idx-th positional word (1-based, after the kind) as an int in
 * [lo, hi]; `what` names it in the message. If absent and required == 0,
 * *out keeps its value. */
cnn_status cnn_spec_int(cnn_spec_line *s, int idx, const char *what, int lo, int hi,
                        int required, int *out);
/* A positional "AxB" or "A" (meaning AxA), e.g. a kernel size. */
cnn_status cnn_spec_pair(cnn_spec_line *s, int idx, const char *what, int lo, int hi,
                         int required, int *a, int *b);
/* Option key=value as int / "AxB" pair / float in [lo, hi] / string; keeps
 * *out if absent. */
cnn_status cnn_spec_opt_int(cnn_spec_line *s, const char *key, int lo, int hi, int *out);
cnn_status cnn_spec_opt_pair(cnn_spec_line *s, const char *key, int lo, int hi, int *a, int *b);
cnn_status cnn_spec_opt_float(cnn_spec_line *s, const char *key, double lo, double hi,
                              float *out);
cnn_status cnn_spec_opt_str(cnn_spec_line *s, const char *key, const char **out);
/* A float given positionally (e.g. "dropout 0.25", "leaky_relu 0.1"). */
cnn_status cnn_spec_float(cnn_spec_line *s, int idx, const char *what, double lo, double hi,
                          int required, float *out);
/* Fails naming the first word nobody consumed. Called by the parser after a
 * layer's create function. */
cnn_status cnn_spec_check_all_used(cnn_spec_line *s);

/* ---------------------------------------------------------------- layers */

typedef struct cnn_layer cnn_layer;

/* How a parameter is initialised by cnn_model_init. */
typedef enum { CNN_PINIT_WEIGHT = 0, CNN_PINIT_ZERO, CNN_PINIT_ONE } cnn_pinit;

/* One named tensor of a layer: a trainable parameter (grad != NULL) or a
 * buffer such as batchnorm's running mean (grad == NULL). data and grad
 * point into the model's single parameter and gradient allocations. */
typedef struct {
    const char *name;   /* state_dict suffix: "weight", "bias", "running_mean" */
    int ndim;
    int dims[4];
    size_t size;
    cnn_pinit init;
    int fan_in, fan_out;/* for CNN_PINIT_WEIGHT */
    int trainable;      /* 1: has a gradient and the optimizer updates it */
    float *data;
    float *grad;
} cnn_param;

#define CNN_LAYER_MAX_PARAMS 4

/* The operations every layer kind implements. Shapes are written as
 * x: (n, in.c, in.h, in.w)   y: (n, out.c, out.h, out.w). */
typedef struct {
    const char *kind;   /* the keyword in an architecture file */
    const char *torch;  /* matching torch.nn module ("Conv2d") */
    /* 1 if the training forward mixes the images of a batch (batchnorm's
     * batch statistics): such a model trains in shards layer by layer,
     * through cnn_batchnorm_sums/combine/apply (src/model/shard.c).
     * Inference is per image for every kind. */
    int batch_coupled;
    /* Prepare state that depends on the batch size (argmax indices, masks,
     * im2col buffers sized for `threads` threads). Called when the batch
     * size or the thread count changes; may be NULL. */
    cnn_status (*reserve)(cnn_layer *l, int max_batch, int threads);
    /* What reserve(l, max_batch, threads) allocates, in bytes as cnn_alloc
     * counts them (cnn_alloc_charge of each buffer), from the shapes alone:
     * the model's memory estimate. NULL if reserve allocates nothing. */
    size_t (*workspace)(const cnn_layer *l, int max_batch, int threads);
    /* y = f(x). train != 0 in training mode. The fast kernels use up to nt
     * threads (never more than reserve's `threads`; 1: this thread only). */
    void (*forward)(cnn_layer *l, const float *x, float *y, int n, int train, int nt);
    /* Given x, y = f(x) and dy = dL/dy: write dL/dx into dx (overwrite; dx
     * may be NULL for the first layer, then skip it) and dL/dparam into each
     * trainable param's grad (overwrite, summed over the batch); up to nt
     * threads. */
    void (*backward)(cnn_layer *l, const float *x, const float *y, const float *dy,
                     float *dx, int n, int nt);
    /* Forward FLOPs per image (a multiply-add counts 2). */
    double (*flops)(const cnn_layer *l);
    /* The algorithms the fast kernels run for a batch of n images on
     * `threads` threads, as text ("fwd winograd, dw winograd, dx winograd");
     * NULL for kinds with one algorithm. */
    void (*plan)(const cnn_layer *l, int n, int threads, char *buf, size_t len);
    /* Free what reserve/create allocated besides the cnn_layer itself. */
    void (*destroy)(cnn_layer *l);
    /* In a byte copy of the layer (cnn_layer_clone), forget the original's
     * reserve buffers without freeing them: the copy reserves its own.
     * NULL if reserve allocates nothing. */
    void (*detach)(cnn_layer *l);
} cnn_layer_ops;

/* The part every layer kind shares. Kinds embed it as their first member
 * (struct conv2d { cnn_layer base; ...}) and cast. */
struct cnn_layer {
    const cnn_layer_ops *ops;
    cnn_shape in, out;
    int nparams;
    cnn_param params[CNN_LAYER_MAX_PARAMS];
    cnn_kernels kernels;   /* ref or fast; set by the model */
    cnn_rng *rng;          /* the model's RNG (dropout, ...) */
    char desc[96];         /* one-line description, as it would be written */
    int line;              /* line in the architecture text */
    /* conv and pool layers: their geometry, set by the constructor (NULL
     * for other kinds; cnn_model_layer_window) */
    const cnn_window *window;
    size_t size;           /* bytes of the kind's struct (cnn_layer_new's size) */
    /* The model's parameter version (cnn_model_params_changed), or NULL
     * outside a model: what a layer derives from its weights (transformed
     * or re-laid-out filters) is kept while the version stays the same. */
    const uint64_t *version;
};

/* l's parameter version; 0 (outside a model) means "derive again". */
static inline uint64_t cnn_layer_version(const cnn_layer *l) { return l->version ? *l->version : 0; }

/* A layer kind's constructor: read the spec line (consuming every word it
 * understands), check the input shape, and return a new layer with in, out,
 * params (shapes only, no data), desc set. On failure return CNN_ERR_PARSE
 * through cnn_spec_error. */
typedef cnn_status (*cnn_layer_create_fn)(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
/* The constructor for a layer keyword, or NULL (src/model/model.c). */
cnn_layer_create_fn cnn_layer_lookup(const char *kind);

cnn_status cnn_conv2d_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_maxpool_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_avgpool_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_dense_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_flatten_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_relu_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_leaky_relu_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_sigmoid_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_tanh_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_softmax_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_dropout_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);
cnn_status cnn_batchnorm_create(cnn_spec_line *s, cnn_shape in, cnn_layer **out);

/* Batchnorm's fast kernels in steps, for a batch run in shards layer by
 * layer (src/model/shard.c): x, dy and out are the whole batch's, and a
 * call covers images [i0, i1) on up to nt threads. sums: per (image,
 * channel) row, pass 0 of x, 1 of (x - mean)^2, 2 of dy and dy * x_hat;
 * combine (one thread, every shard's rows in image order, n images):
 * pass 0 the mean, 1 the variance, running statistics and 1/std, 2 the
 * weight and bias gradients and dx's coefficients; apply: y = the
 * normalised x (dy NULL), or dx. A whole batch runs the same steps. */
void cnn_batchnorm_sums(cnn_layer *l, const float *x, const float *dy, int i0, int i1, int pass,
                        int nt);
void cnn_batchnorm_combine(cnn_layer *l, int n, int pass);
void cnn_batchnorm_apply(cnn_layer *l, const float *x, const float *dy, float *out, int i0,
                         int i1, int nt);

/* Allocate a zeroed layer struct of `size` bytes (size >= sizeof(cnn_layer))
 * with ops, shapes and line set. */
cnn_layer *cnn_layer_new(size_t size, const cnn_layer_ops *ops, cnn_shape in,
                         cnn_shape out, const cnn_spec_line *s);
/* A new layer of l's kind, shapes and options whose params' data are l's
 * (grad NULL), with none of l's reserve buffers; NULL when out of memory. */
cnn_layer *cnn_layer_clone(const cnn_layer *l);
/* "3" for the pair (3, 3), "3x5" for (3, 5): kernel sizes, strides and
 * pads in a layer's description. */
void cnn_fmt_pair(char *buf, size_t n, int a, int b);
/* Describe a parameter of l (shape only; data is placed by the model). */
cnn_param *cnn_layer_add_param(cnn_layer *l, const char *name, int ndim, const int *dims,
                               cnn_pinit init, int fan_in, int fan_out, int trainable);

/* ------------------------------------------------- models for their shapes */

/* Build a model's layers, shapes and tensor table without allocating or
 * drawing its parameters: for reading its layer table (cnn info), its
 * parameter count and its memory need (cnn_model_memory_need), in a few
 * kilobytes whatever its size. Tensors' data and grad are NULL, and calls
 * that need parameters (init, set_batch, set_optimizer, save, loading
 * weights) refuse it with CNN_ERR_ARG. */
cnn_status cnn_model_shapes_from_text(const char *text, const char *name, cnn_model **out);
cnn_status cnn_model_shapes_from_file(const char *path, cnn_model **out);

/* ------------------------------------------------------------------ loss */

/* out, target, grad: (n, k). See cnn_loss_compute in cnn.h. */

/* -------------------------------------------------------------- numerics */

/* Index of the first non-finite value in x[0..n), or -1. */
long cnn_first_nonfinite(const float *x, size_t n);

#endif
