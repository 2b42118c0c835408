/* live_reference.c — the native side of tests/cli_live_module.sh: the first
 * N images of an IDX data set through a model as the cnn program runs it
 * (the model's stored normalisation, then every layer in eval mode), every
 * layer's output and the probabilities written as float32 for the
 * WebAssembly module's answers to be compared with.
 *
 *   live_reference MODEL.safetensors IMAGES LABELS N OUT.bin
 *
 * OUT.bin: for each layer in order, its N outputs (N x the layer's size),
 * then the N x classes probabilities; native byte order. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: live_reference MODEL IMAGES LABELS N OUT.bin\n");
        return 2;
    }
    const char *cmd = "live_reference";
    cli_program = "live_reference";
    int n = atoi(argv[4]);
    cnn_model *m = NULL;
    cnn_dataset d = {0};
    cli_norm nm;
    if (cli_load_model(cmd, argv[1], &m) || cli_norm_from_model(cmd, m, &nm)) return 1;
    if (cnn_idx_load(argv[2], argv[3], &d) != CNN_OK) {
        fprintf(stderr, "%s\n", cnn_errmsg());
        return 1;
    }
    int c, h, w;
    cnn_model_input_shape(m, &c, &h, &w);
    if (n < 1 || n > d.n || d.c * d.h * d.w != c * h * w) {
        fprintf(stderr, "live_reference: %d images of %dx%dx%d for a %dx%dx%d model\n", n, d.c, d.h, d.w, c, h, w);
        return 1;
    }
    const size_t px = (size_t)c * h * w;
    const int L = cnn_model_num_layers(m), k = cnn_model_output_size(m);
    float *x = malloc(sizeof(float) * px * (size_t)n), *probs = malloc(sizeof(float) * (size_t)n * k);
    const float **acts = calloc((size_t)L, sizeof *acts);
    for (int i = 0; i < n; i++) cli_normalise(d.images + px * i, c, (size_t)h * w, &nm, x + px * i);
    if (cnn_model_set_batch(m, n) != CNN_OK || cnn_model_forward_layers(m, x, n, acts) != CNN_OK) {
        fprintf(stderr, "%s\n", cnn_errmsg());
        return 1;
    }
    cli_probabilities(m, acts[L - 1], n, k, probs);
    FILE *f = fopen(argv[5], "wb");
    if (!f) return 1;
    for (int l = 0; l < L; l++) {
        cnn_layer_info li;
        cnn_model_layer_info(m, l, &li);
        size_t size = (size_t)li.out_c * li.out_h * li.out_w;
        fwrite(acts[l], sizeof(float), size * (size_t)n, f);
    }
    fwrite(probs, sizeof(float), (size_t)n * k, f);
    fclose(f);
    free(x);
    free(probs);
    free(acts);
    cnn_dataset_free(&d);
    cnn_model_free(m);
    return 0;
}
