/* augment.c — training-time augmentation: a random rotation and shift of
 * each image, drawn from our RNG so a seed always gives the same images. */
#include "cli/cli.h"

#include <math.h>

void cli_augment(const uint8_t *img, int c, int h, int w, float shift, float degrees, cnn_rng *r,
                 const cli_norm *nm, float *out)
{
    /* always CLI_AUGMENT_DRAWS draws per image, so the RNG advances the
     * same whatever the image looks like (resuming replays it exactly, and
     * an MPI rank skips another rank's images: cli_augment_skip) */
    float a = (2.0f * cnn_rng_uniform(r) - 1.0f) * degrees * (float)M_PI / 180.0f;
    float dx = (2.0f * cnn_rng_uniform(r) - 1.0f) * shift;
    float dy = (2.0f * cnn_rng_uniform(r) - 1.0f) * shift;
    float cs = cosf(a), sn = sinf(a);
    float cx = 0.5f * (float)(w - 1), cy = 0.5f * (float)(h - 1);
    for (int k = 0; k < c; k++) {
        /* every channel moves the same way */
        const uint8_t *plane = img + (size_t)k * h * w;
        float *dst = out + (size_t)k * h * w;
        const int q = nm->channels == 1 || k >= nm->channels ? 0 : k;
        const float mean = nm->mean[q], std = nm->std[q];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                /* inverse map: where in the source does output pixel (x, y) come from */
                float u = (float)x - cx - dx, v = (float)y - cy - dy;
                float sx = cs * u + sn * v + cx;
                float sy = -sn * u + cs * v + cy;
                int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
                float fx = sx - (float)x0, fy = sy - (float)y0;
                float acc = 0.0f;
                for (int j = 0; j < 2; j++)
                    for (int i = 0; i < 2; i++) {
                        int xx = x0 + i, yy = y0 + j;
                        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
                        float wgt = (i ? fx : 1.0f - fx) * (j ? fy : 1.0f - fy);
                        acc += wgt * (float)plane[yy * w + xx];
                    }
                dst[y * w + x] = (acc / 255.0f - mean) / std;
            }
    }
}

void cli_augment_skip(cnn_rng *r, int images)
{
    for (long i = 0; i < (long)images * CLI_AUGMENT_DRAWS; i++) cnn_rng_next(r);
}
