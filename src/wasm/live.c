/* live.c — the entry points of the WebAssembly module behind the report
 * page's live panel (src/cli/report/live.js calls them). Everything else in
 * the module is the library's own C, compiled unchanged: the model built
 * from its architecture text, every layer's forward pass, the portable
 * GEMM, cnn_image_prepare with the digit preparation, and the CLI's
 * normalisation and probabilities (src/cli/norm.c). The page decodes
 * pictures itself and hands over RGBA pixels, so no image library is in
 * the module; nothing here reads or writes a file.
 *
 * One model at a time, batches of one image. Pointers returned are into the
 * module's memory and stay valid until the next live_load. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static struct {
    cnn_model *m;
    cnn_prep prep;
    int c, h, w, k, layers;
    cli_norm norm;
    uint8_t *pixels; /* the prepared input, c x h x w bytes */
    float *x;        /* the same, normalised */
    float *probs;
    const float **acts;
} S;

EXPORT(live_alloc) void *live_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT(live_release) void live_release(void *p) { free(p); }
EXPORT(live_error) const char *live_error(void) { return cnn_errmsg(); }

static void unload(void)
{
    cnn_model_free(S.m);
    free(S.pixels);
    free(S.x);
    free(S.probs);
    free((void *)S.acts);
    memset(&S, 0, sizeof S);
}

/* Build the model from its architecture text and copy in its tensors,
 * nfloats floats in state_dict order (cnn_model_tensor's); prep is a
 * cnn_prep, mean and std one value or one per channel (the model's stored
 * normalisation). 0, or a cnn_status with live_error's message. */
EXPORT(live_load)
int live_load(const char *arch, const float *weights, size_t nfloats, int prep, int channels,
              const float *mean, const float *std)
{
    unload();
    /* a fixed limit: the default would look for the machine's memory */
    cnn_set_memory_limit((size_t)1 << 30);
    cnn_set_threads(1);
    cnn_status s = cnn_model_from_text(arch, "the page's model", &S.m);
    if (s) return s;
    size_t at = 0;
    for (int i = 0; i < cnn_model_num_tensors(S.m); i++) {
        cnn_tensor t;
        if ((s = cnn_model_tensor(S.m, i, &t))) goto fail;
        if (at + t.size > nfloats) {
            s = cnn_fail(CNN_ERR_FORMAT, "the page holds %zu weights, fewer than the model's", nfloats);
            goto fail;
        }
        memcpy(t.data, weights + at, sizeof(float) * t.size);
        at += t.size;
    }
    if (at != nfloats) {
        s = cnn_fail(CNN_ERR_FORMAT, "the page holds %zu weights, the model %zu", nfloats, at);
        goto fail;
    }
    if ((s = cnn_model_set_batch(S.m, 1))) goto fail;
    cnn_model_input_shape(S.m, &S.c, &S.h, &S.w);
    S.k = cnn_model_output_size(S.m);
    S.layers = cnn_model_num_layers(S.m);
    S.prep = (cnn_prep)prep;
    cli_norm_init_channels(&S.norm, channels, mean, std);
    size_t px = (size_t)S.c * S.h * S.w;
    S.pixels = calloc(px, 1);
    S.x = calloc(px, sizeof(float));
    S.probs = calloc((size_t)S.k, sizeof(float));
    S.acts = calloc((size_t)S.layers, sizeof *S.acts);
    if (!S.pixels || !S.x || !S.probs || !S.acts) {
        s = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return CNN_OK;
fail:
    unload();
    return s;
}

/* Prepare a w x h RGBA picture as `cnn predict` prepares a decoded file
 * (the model's prep), into live_pixels and the normalised input. */
EXPORT(live_prepare_rgba) int live_prepare_rgba(const uint8_t *rgba, int w, int h)
{
    if (!S.m) return cnn_fail(CNN_ERR_ARG, "no model loaded");
    cnn_image img = {w, h, 4, (uint8_t *)rgba};
    cnn_status s = cnn_image_prepare(&img, S.prep, S.c, S.h, S.w, S.pixels);
    if (s) return s;
    cli_normalise(S.pixels, S.c, (size_t)S.h * S.w, &S.norm, S.x);
    return CNN_OK;
}

/* Input bytes already prepared (c x h x w, as a data set holds them): only
 * normalised. The caller writes them at live_pixels first. */
EXPORT(live_prepare_pixels) int live_prepare_pixels(void)
{
    if (!S.m) return cnn_fail(CNN_ERR_ARG, "no model loaded");
    cli_normalise(S.pixels, S.c, (size_t)S.h * S.w, &S.norm, S.x);
    return CNN_OK;
}

/* Every layer's output and the probabilities for the prepared input. */
EXPORT(live_forward) int live_forward(void)
{
    if (!S.m) return cnn_fail(CNN_ERR_ARG, "no model loaded");
    cnn_status s = cnn_model_forward_layers(S.m, S.x, 1, S.acts);
    if (s) return s;
    cli_probabilities(S.m, S.acts[S.layers - 1], 1, S.k, S.probs);
    return CNN_OK;
}

EXPORT(live_pixels) uint8_t *live_pixels(void) { return S.pixels; }
EXPORT(live_input) float *live_input(void) { return S.x; }
EXPORT(live_probs) float *live_probs(void) { return S.probs; }
EXPORT(live_num_layers) int live_num_layers(void) { return S.layers; }
/* Layer i's output after live_forward. */
EXPORT(live_act) const float *live_act(int i) { return i >= 0 && i < S.layers ? S.acts[i] : NULL; }
