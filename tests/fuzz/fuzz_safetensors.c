/* fuzz_safetensors.c — the safetensors loader on hostile files.
 *
 * The input is written to a file and given to
 *  1. cnn_model_load: on success the model must be usable (a forward pass
 *     if it is small) and must survive a save/load round trip unchanged;
 *  2. cnn_model_load_weights into a fixed small model (conv, batchnorm,
 *     dense): on failure the model's weights must be untouched, because the
 *     loader promises to write only after every check has passed. */
#include "fuzz_common.h"

#define MAX_FLOPS 1e7
#define MAX_PARAMS ((size_t)4 << 20)

/* Matches the seeds made by tests/fuzz/make_seeds.py (same tensor names and
 * shapes), so the fuzzer starts from files this model accepts. */
static const char *FIXED_ARCH = "input 1x6x6\n"
                                "conv 2 3x3 pad=1\n"
                                "batchnorm\n"
                                "relu\n"
                                "maxpool 2\n"
                                "flatten\n"
                                "dense 3\n"
                                "softmax\n";

static fuzz_file in_file;
static cnn_model *fixed;
static char roundtrip_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    cnn_set_threads(1);
    if (cnn_model_from_text(FIXED_ARCH, "fixed", &fixed)) fuzz_die(cnn_errmsg());
    snprintf(roundtrip_path, sizeof roundtrip_path, "/dev/shm/cnn-fuzz-st-%d.safetensors",
             (int)getpid());
    return 0;
}

/* All tensor values of a model, concatenated (malloc'd). */
static float *snapshot(cnn_model *m, size_t *n)
{
    size_t total = 0;
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        if (cnn_model_tensor(m, i, &t)) fuzz_die("cnn_model_tensor failed on a valid index");
        total += t.size;
    }
    float *buf = malloc((total + 1) * sizeof(float));
    if (!buf) fuzz_die("out of memory in the harness");
    size_t off = 0;
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        cnn_model_tensor(m, i, &t);
        memcpy(buf + off, t.data, t.size * sizeof(float));
        off += t.size;
    }
    *n = total;
    return buf;
}

static void check_loaded(cnn_model *m)
{
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    if (c < 1 || h < 1 || w < 1 || cnn_model_output_size(m) < 1)
        fuzz_die("loaded model has an empty shape");
    if (cnn_model_num_params(m) > MAX_PARAMS || cnn_model_flops(m) > MAX_FLOPS) return;

    /* save and load again: the same architecture and the same bits */
    size_t n1, n2;
    float *a = snapshot(m, &n1);
    cnn_status s = cnn_model_save(m, roundtrip_path, 1);
    if (s) {
        fprintf(stderr, "fuzz harness: saving a loaded model failed: %s\n", cnn_errmsg());
        abort();
    }
    cnn_model *m2 = NULL;
    s = cnn_model_load(roundtrip_path, &m2);
    unlink(roundtrip_path);
    if (s) {
        fprintf(stderr, "fuzz harness: reloading a saved model failed: %s\n", cnn_errmsg());
        abort();
    }
    float *b = snapshot(m2, &n2);
    if (n1 != n2 || memcmp(a, b, n1 * sizeof(float)) != 0)
        fuzz_die("save/load round trip changed the tensors");
    if (strcmp(cnn_model_arch(m), cnn_model_arch(m2)) != 0)
        fuzz_die("save/load round trip changed the architecture");
    free(a);
    free(b);
    cnn_model_free(m2);

    if (cnn_model_set_batch(m, 2)) return;
    size_t nx = (size_t)2 * c * h * w;
    float *x = calloc(nx, sizeof(float));
    if (!x) fuzz_die("out of memory in the harness");
    const float *y;
    s = cnn_model_forward(m, x, 2, 0, &y);
    if (s && s != CNN_ERR_NUMERIC) {
        fprintf(stderr, "fuzz harness: forward of a loaded model failed: %s\n", cnn_errmsg());
        abort();
    }
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_set(&in_file, "model", data, size);

    cnn_model *m = fuzz_load_model(path);
    if (m) {
        check_loaded(m);
        cnn_model_free(m);
    }

    /* the same starting weights every time, so runs are reproducible */
    cnn_model_init(fixed, CNN_INIT_XAVIER_NORMAL, 1);
    size_t n0, n1;
    float *before = snapshot(fixed, &n0);
    cnn_status s = cnn_model_load_weights(fixed, path);
    if (s) {
        fuzz_check_failure(s, path);
        float *after = snapshot(fixed, &n1);
        if (n0 != n1 || memcmp(before, after, n0 * sizeof(float)) != 0)
            fuzz_die("a failed cnn_model_load_weights changed the weights");
        free(after);
    }
    free(before);
    return 0;
}
