/*
 * image_decode.c — a picture file to upright 8-bit pixels.
 *
 * The format is chosen by the file's magic bytes, never by its name, and
 * anything unknown is refused. PNG goes through libpng (image_png.c), JPEG
 * through libjpeg-turbo (image_jpeg.c), BMP and GIF through stb_image built
 * in our tree (image_stb.c), and PGM/PPM (P2, P3, P5, P6) through the small
 * reader below. Then the EXIF orientation, if the file has one, is applied.
 * What to make of the pixels (grey levels, MNIST) is image.c's business.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cnn_status cnn_img_check_size(const char *name, long long w, long long h)
{
    if (w <= 0 || h <= 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: zero-size image (%lldx%lld)", name, w, h);
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || w * h > IMG_MAX_PIXELS)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: image too large (%lldx%lld; the limit is %d pixels a side and "
                        "%lld Mpixel)",
                        name, w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS >> 20);
    return CNN_OK;
}

cnn_status cnn_img_check_density(const char *name, const char *fmt, long long w, long long h,
                                 size_t len)
{
    if (w * h > (long long)len * IMG_MAX_PIXELS_PER_BYTE)
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated %s: a %lldx%lld image cannot fit in %zu bytes",
                        name, fmt, w, h, len);
    return CNN_OK;
}

uint8_t *cnn_img_alloc(const char *name, int w, int h, int channels)
{
    size_t n = (size_t)w * (size_t)h * (size_t)channels;
    uint8_t *p = calloc(n ? n : 1, 1);
    if (!p) cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
    return p;
}

/* ------------------------------------------------------------ PGM / PPM */

/* Our own reader: stb_image has no ASCII PNM and does not notice a
 * truncated binary one. */

typedef struct {
    const uint8_t *p, *end;
} cursor;

static void pnm_skip_space(cursor *c)
{
    while (c->p < c->end) {
        if (*c->p == '#') {
            while (c->p < c->end && *c->p != '\n') c->p++;
        } else if (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r' ||
                   *c->p == '\v' || *c->p == '\f') {
            c->p++;
        } else {
            break;
        }
    }
}

/* A decimal number of at most 9 digits (values are bounded by the caller).
 * Returns -1 at the end of the data, -2 on anything that is not a number. */
static long pnm_number(cursor *c)
{
    pnm_skip_space(c);
    if (c->p >= c->end) return -1;
    if (*c->p < '0' || *c->p > '9') return -2;
    long v = 0;
    int digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (++digits > 9) return -2;
        v = v * 10 + (*c->p++ - '0');
    }
    return v;
}

/* Decode P2/P3/P5/P6 into grey (P2, P5) or RGB (P3, P6) pixels. */
static cnn_status pnm_decode(const char *name, const uint8_t *buf, size_t len, cnn_image *out)
{
    char kind = (char)buf[1];
    int channels = (kind == '3' || kind == '6') ? 3 : 1;
    int ascii = kind == '2' || kind == '3';
    cursor c = {buf + 2, buf + len};
    long v[3];
    static const char *field[3] = {"width", "height", "maximum value"};
    for (int i = 0; i < 3; i++) {
        v[i] = pnm_number(&c);
        if (v[i] == -1)
            return cnn_fail(CNN_ERR_FORMAT, "%s: truncated P%c header (no %s)", name, kind,
                            field[i]);
        if (v[i] < 0)
            return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt P%c header (bad %s)", name, kind,
                            field[i]);
    }
    cnn_status s = cnn_img_check_size(name, v[0], v[1]);
    if (s) return s;
    long maxval = v[2];
    if (maxval < 1 || maxval > 65535)
        return cnn_fail(CNN_ERR_FORMAT, "%s: P%c maximum value %ld is not in 1..65535", name,
                        kind, maxval);
    size_t npix = (size_t)v[0] * (size_t)v[1], nsamples = npix * channels;
    int bytes = maxval > 255 ? 2 : 1;
    if (!ascii) {
        /* exactly one whitespace byte separates the header from the pixels */
        if (c.p >= c.end)
            return cnn_fail(CNN_ERR_FORMAT, "%s: truncated: P%c file has no pixel data", name,
                            kind);
        c.p++;
        size_t need = nsamples * bytes;
        size_t have = (size_t)(c.end - c.p);
        if (have < need)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated: %ldx%ld P%c image needs %zu bytes of pixels, file "
                            "holds %zu",
                            name, v[0], v[1], kind, need, have);
    } else {
        /* every sample takes a digit and a separator: a file announcing more
         * samples than it could hold is refused before the allocation */
        size_t have = (size_t)(c.end - c.p), least = nsamples * 2 - 1;
        if (have < least)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated: %ldx%ld P%c image needs at least %zu bytes of "
                            "pixels, file holds %zu",
                            name, v[0], v[1], kind, least, have);
    }
    uint8_t *px = cnn_img_alloc(name, (int)v[0], (int)v[1], channels);
    if (!px) return CNN_ERR_NOMEM;
    for (size_t i = 0; i < nsamples; i++) {
        long x;
        if (ascii) {
            x = pnm_number(&c);
            if (x == -1) {
                free(px);
                return cnn_fail(CNN_ERR_FORMAT,
                                "%s: truncated: P%c file ends after %zu of %zu pixels", name,
                                kind, i / channels, npix);
            }
            if (x < 0 || x > maxval) {
                free(px);
                return cnn_fail(CNN_ERR_FORMAT,
                                "%s: corrupt P%c data at pixel %zu (not a number in 0..%ld)",
                                name, kind, i / channels, maxval);
            }
        } else if (bytes == 2) {
            x = (long)c.p[0] << 8 | c.p[1];
            c.p += 2;
            if (x > maxval) x = maxval;
        } else {
            x = *c.p++;
            if (x > maxval) x = maxval;
        }
        px[i] = (uint8_t)((x * 255 + maxval / 2) / maxval);
    }
    *out = (cnn_image){(int)v[0], (int)v[1], channels, px};
    return CNN_OK;
}

/* ------------------------------------------------------------ orientation */

/* Turn the stored pixels upright. EXIF orientation o says where the stored
 * image's first row and first column belong: 1 top/left (as stored),
 * 2 top/right (mirrored), 3 bottom/right (turned 180 degrees), 4
 * bottom/left (flipped), 5 left/top (transposed), 6 right/top (to be
 * turned 90 degrees clockwise), 7 right/bottom (transverse), 8 left/bottom
 * (to be turned 90 degrees counter-clockwise). */
static cnn_status orient(const char *name, cnn_image *img, int o)
{
    if (o < 2 || o > 8) return CNN_OK;
    int w = img->w, h = img->h, ch = img->channels;
    int W = o >= 5 ? h : w, H = o >= 5 ? w : h;
    uint8_t *dst = cnn_img_alloc(name, W, H, ch);
    if (!dst) return CNN_ERR_NOMEM;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx, sy; /* the stored pixel shown at (x, y) */
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            default: sx = w - 1 - y, sy = x; break; /* 8 */
            }
            memcpy(dst + ((size_t)y * W + x) * ch, img->px + ((size_t)sy * w + sx) * ch,
                   (size_t)ch);
        }
    free(img->px);
    *img = (cnn_image){W, H, ch, dst};
    return CNN_OK;
}

/* ------------------------------------------------------------------- API */

/* The format named by the magic bytes, or NULL. */
static const char *sniff(const uint8_t *b, size_t len)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= 8 && !memcmp(b, png, 8)) return "PNG";
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "JPEG";
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return "GIF";
    if (len >= 2 && b[0] == 'P' && (b[1] == '2' || b[1] == '3' || b[1] == '5' || b[1] == '6'))
        return "PNM";
    return NULL;
}

void cnn_image_free(cnn_image *img)
{
    if (!img) return;
    free(img->px);
    *img = (cnn_image){0, 0, 0, NULL};
}

cnn_status cnn_image_decode_memory(const void *data, size_t len, const char *name,
                                   cnn_image *out)
{
    if (!out) return cnn_fail(CNN_ERR_ARG, "cnn_image_decode_memory: NULL argument");
    *out = (cnn_image){0, 0, 0, NULL};
    if (!name) name = "image";
    if (!data && len) return cnn_fail(CNN_ERR_ARG, "cnn_image_decode_memory: NULL data");
    if (len == 0) return cnn_fail(CNN_ERR_FORMAT, "%s: empty file", name);
    if (len > (size_t)IMG_MAX_FILE)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: file too large for an image of a digit (%zu bytes, the limit is "
                        "%lld)",
                        name, len, IMG_MAX_FILE);
    const uint8_t *buf = data;
    const char *fmt = sniff(buf, len);
    if (!fmt)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: not a PNG, JPEG, BMP, GIF or PGM/PPM file (unknown magic bytes)",
                        name);
    cnn_image img = {0, 0, 0, NULL};
    int orientation = 1;
    cnn_status s;
    if (!strcmp(fmt, "PNG"))
        s = cnn_png_decode(name, buf, len, &img, &orientation);
    else if (!strcmp(fmt, "JPEG"))
        s = cnn_jpeg_decode(name, buf, len, &img, &orientation);
    else if (!strcmp(fmt, "PNM"))
        s = pnm_decode(name, buf, len, &img);
    else
        s = cnn_stb_decode(name, fmt, buf, len, &img);
    if (s) return s;
    if ((s = orient(name, &img, orientation))) {
        cnn_image_free(&img);
        return s;
    }
    *out = img;
    return CNN_OK;
}

cnn_status cnn_image_decode_file(const char *path, cnn_image *out)
{
    if (!path || !out) return cnn_fail(CNN_ERR_ARG, "cnn_image_decode_file: NULL argument");
    *out = (cnn_image){0, 0, 0, NULL};
    FILE *f;
    long long fsize;
    cnn_status s = cnn_fopen_nonempty(path, "an image", &f, &fsize);
    if (s) return s;
    if (fsize > IMG_MAX_FILE) {
        fclose(f);
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: file too large for an image of a digit (%lld bytes, the limit is "
                        "%lld)",
                        path, fsize, IMG_MAX_FILE);
    }
    size_t len = (size_t)fsize;
    uint8_t *buf = malloc(len);
    if (!buf) {
        fclose(f);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got != len) {
        free(buf);
        return cnn_fail(CNN_ERR_IO, "%s: read error after %zu of %zu bytes", path, got, len);
    }
    s = cnn_image_decode_memory(buf, len, path, out);
    free(buf);
    return s;
}
