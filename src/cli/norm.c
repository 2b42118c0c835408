/* norm.c — the arithmetic between pixels and probabilities that every
 * path shares: bytes into normalised floats, and model outputs into
 * probabilities. Plain C on cnn.h alone, so the report page's WebAssembly
 * module (src/wasm) compiles this same file and its answers match cnn
 * predict's. */
#include "cli/cli.h"

#include <math.h>
#include <string.h>

void cli_norm_init_channels(cli_norm *nm, int channels, const float *mean, const float *std)
{
    memset(nm, 0, sizeof *nm);
    if (channels < 1) channels = 1;
    if (channels > CLI_NORM_MAX) channels = CLI_NORM_MAX;
    nm->channels = channels;
    for (int k = 0; k < channels; k++) {
        float m = mean[k], sd = std[k];
        if (!(sd > 0.0f)) sd = 1.0f;
        nm->mean[k] = m;
        nm->std[k] = sd;
        for (int p = 0; p < 256; p++) nm->lut[k][p] = ((float)p / 255.0f - m) / sd;
    }
}

void cli_norm_init(cli_norm *nm, float mean, float std)
{
    cli_norm_init_channels(nm, 1, &mean, &std);
}

void cli_normalise(const uint8_t *img, int c, size_t plane, const cli_norm *nm, float *x)
{
    for (int k = 0; k < c; k++) {
        const float *lut = nm->lut[nm->channels == 1 || k >= nm->channels ? 0 : k];
        const uint8_t *src = img + (size_t)k * plane;
        float *dst = x + (size_t)k * plane;
        for (size_t p = 0; p < plane; p++) dst[p] = lut[src[p]];
    }
}

void cli_probabilities(const cnn_model *m, const float *out, int n, int k, float *p)
{
    if (cnn_model_ends_in_softmax(m)) {
        memcpy(p, out, sizeof(float) * (size_t)n * (size_t)k);
        return;
    }
    for (int i = 0; i < n; i++) {
        const float *o = out + (size_t)i * k;
        float *q = p + (size_t)i * k;
        float mx = o[0];
        for (int j = 1; j < k; j++) mx = o[j] > mx ? o[j] : mx;
        double s = 0.0;
        for (int j = 0; j < k; j++) s += q[j] = expf(o[j] - mx);
        for (int j = 0; j < k; j++) q[j] = (float)(q[j] / s);
    }
}
