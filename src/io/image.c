/*
 * image.c — a user's picture of a digit, made to look like an MNIST image.
 *
 * Decoding is image_decode.c's (any format to upright 8-bit pixels); here
 * the pixels become grey levels, then go through the preparation that made
 * MNIST (LeCun et al.), made fit for photographs in digit.c: ink bright on
 * a black background, cropped to the digit, fitted into 20x20 with its
 * aspect ratio kept and antialiased, then placed in a 28x28 field so that
 * its centre of mass sits at the centre.
 */
#include "io/image.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ grey levels */

/* The luma weights of ITU-R BT.601 in 8-bit fixed point (what stb_image
 * and most converters use). */
static unsigned luma(const uint8_t *p, int channels)
{
    return channels >= 3 ? (p[0] * 77u + p[1] * 150u + p[2] * 29u) >> 8 : p[0];
}

cnn_status cnn_image_to_gray(const cnn_image *img, uint8_t *gray)
{
    if (!img || !img->px || !gray) return cnn_fail(CNN_ERR_ARG, "cnn_image_to_gray: NULL argument");
    if (img->w <= 0 || img->h <= 0 || img->channels < 1 || img->channels > 4)
        return cnn_fail(CNN_ERR_ARG, "cnn_image_to_gray: bad image (%dx%d, %d channels)", img->w,
                        img->h, img->channels);
    size_t n = (size_t)img->w * img->h;
    int ch = img->channels, alpha = ch == 2 || ch == 4;
    /* The background behind transparent pixels: ink is what is opaque, so
     * the background must contrast with it. The mean grey level of the
     * opaque content (each pixel weighted by its alpha) decides: light
     * content (white ink on a transparent page) goes over black, dark or
     * coloured content over white. A fully opaque picture is unchanged
     * either way; a fully transparent one is blank. */
    unsigned bg = 255;
    if (alpha) {
        double sum = 0, weight = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = img->px + i * ch;
            sum += (double)luma(p, ch) * p[ch - 1];
            weight += p[ch - 1];
        }
        if (weight > 0 && sum / weight > 127.5) bg = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->px + i * ch;
        unsigned v = luma(p, ch);
        if (alpha) {
            unsigned a = p[ch - 1];
            v = (v * a + bg * (255u - a) + 127u) / 255u;
        }
        gray[i] = (uint8_t)v;
    }
    return CNN_OK;
}

cnn_status cnn_image_load_mnist(const char *path, uint8_t out[28 * 28])
{
    if (!path || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_load_mnist: NULL argument");
    cnn_image img;
    cnn_status s = cnn_image_decode_file(path, &img);
    if (s) return s;
    uint8_t *gray = malloc((size_t)img.w * img.h);
    if (!gray) {
        cnn_image_free(&img);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %dx%d grey levels", path, img.w,
                        img.h);
    }
    s = cnn_image_to_gray(&img, gray);
    if (!s) s = cnn_image_preprocess_mnist(gray, img.w, img.h, out);
    free(gray);
    cnn_image_free(&img);
    if (s) return cnn_fail_prefix(s, "%s", path);
    return CNN_OK;
}
