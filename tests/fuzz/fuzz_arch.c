/* fuzz_arch.c — the architecture parser (cnn_model_from_text) and, for the
 * models it accepts, everything that shape inference promised: buffers for
 * a batch of 2, forward with the fast and the reference kernels (which must
 * agree), and a training step's backward pass.
 *
 * Models above 1e7 FLOPs per image or 64 MB of activations are only parsed:
 * running them would time the fuzzer out without testing anything new. */
/* cnn_model_from_text draws every weight at once: 60M parameters (a valid
 * 240 MB model, "input 1x91x2 / flatten / dense 329215") took over 10 s
 * under ASan and timed the fuzzer out. Allocations above 64 MB fail here
 * instead, which fuzzes the out-of-memory path of the parser. */
#define FUZZ_MAX_ALLOC_MB "64"
#include "fuzz_common.h"

#include <math.h>

#define ARCH_NAME "fuzz.arch"
#define MAX_FLOPS 1e7
#define MAX_ACT_BYTES ((size_t)64 << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    cnn_set_threads(1);
    return 0;
}

/* Bytes of activations a batch of 2 needs (inputs, outputs of every layer). */
static size_t act_bytes(const cnn_model *m)
{
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    size_t total = (size_t)c * h * w;
    for (int i = 0; i < cnn_model_num_layers(m); i++) {
        cnn_layer_info li;
        if (cnn_model_layer_info(m, i, &li)) fuzz_die("layer_info failed on a valid index");
        total += (size_t)li.out_c * li.out_h * li.out_w;
    }
    return total * 2 * 3 * sizeof(float);
}

static void run(cnn_model *m)
{
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    int k = cnn_model_output_size(m);
    if (c < 1 || h < 1 || w < 1 || k < 1) fuzz_die("accepted model has an empty shape");
    if (cnn_model_flops(m) > MAX_FLOPS || act_bytes(m) > MAX_ACT_BYTES) return;

    cnn_status s = cnn_model_set_batch(m, 2);
    if (s) {
        fuzz_check_failure(s, NULL);
        return;
    }
    size_t n = (size_t)2 * c * h * w;
    float *x = malloc(n * sizeof(float));
    float *y_fast = malloc((size_t)2 * k * sizeof(float));
    if (!x || !y_fast) fuzz_die("out of memory in the harness");
    /* a fixed non-constant pattern: zeros would hide most arithmetic */
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 7919u) % 201u) / 100.f - 1.f;

    const float *y;
    s = cnn_model_forward(m, x, 2, 0, &y);
    if (s && s != CNN_ERR_NUMERIC) fuzz_die("eval forward failed on a valid model");
    if (!s) {
        memcpy(y_fast, y, (size_t)2 * k * sizeof(float));
        cnn_model_set_kernels(m, CNN_KERNELS_REF);
        s = cnn_model_forward(m, x, 2, 0, &y);
        if (s && s != CNN_ERR_NUMERIC) fuzz_die("reference forward failed on a valid model");
        if (!s) {
            double big = 1e-6, diff = 0;
            for (int i = 0; i < 2 * k; i++) {
                if (fabs(y[i]) > big) big = fabs(y[i]);
                if (fabs(y_fast[i]) > big) big = fabs(y_fast[i]);
                double d = fabs((double)y[i] - y_fast[i]);
                if (d > diff || isnan(d)) diff = isnan(d) ? INFINITY : d;
            }
            if (diff > 1e-3 * big && isfinite(big)) {
                fprintf(stderr, "fuzz harness: fast and reference forward differ by %g (scale %g)\n",
                        diff, big);
                abort();
            }
        }
        cnn_model_set_kernels(m, CNN_KERNELS_FAST);
    }

    /* one SGD step: the backward pass of every layer */
    cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
    oc.lr = 0.01f;
    if (cnn_model_set_optimizer(m, &oc)) fuzz_die("set_optimizer failed");
    uint8_t labels[2] = {0, (uint8_t)(k - 1 > 255 ? 255 : k - 1)};
    cnn_batch_stats st;
    s = cnn_model_train_batch(m, x, labels, 2, (cnn_loss){CNN_LOSS_XENT, 1.f}, &st);
    if (s && s != CNN_ERR_NUMERIC) {
        fprintf(stderr, "fuzz harness: train_batch failed: %s\n", cnn_errmsg());
        abort();
    }
    free(x);
    free(y_fast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cnn_model *m = NULL;
    cnn_status s = cnn_model_from_text(text, ARCH_NAME, &m);
    free(text);
    if (s) {
        /* parse errors say where ("fuzz.arch:3: ..."); running out of
         * memory says how much */
        fuzz_check_failure(s, s == CNN_ERR_PARSE ? ARCH_NAME : NULL);
        if (m) fuzz_die("failed parse returned a model");
        return 0;
    }
    if (!m) fuzz_die("successful parse returned no model");
    run(m);
    cnn_model_free(m);
    return 0;
}
