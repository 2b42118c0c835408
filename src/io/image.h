/*
 * image.h — what the image decoders share (src/io/image_*.c, exif.c).
 *
 * cnn_image_decode_memory (image_decode.c) picks a decoder by the magic
 * bytes; each decoder fills a cnn_image of 8-bit grey/GA/RGB/RGBA pixels,
 * or fails with CNN_ERR_FORMAT naming the file. The limits below apply to
 * every format and are checked before a single pixel is decoded.
 */
#ifndef CNN_IO_IMAGE_H
#define CNN_IO_IMAGE_H

#include "internal.h"

#include <stdio.h>

#define IMG_MAX_SIDE 16384
#define IMG_MAX_PIXELS ((long long)64 << 20)
/* No compressed picture of a digit needs more; it bounds what we read. */
#define IMG_MAX_FILE ((long long)256 << 20)
/* Formats packing pixels other than through deflate cannot put more
 * pixels in a byte: GIF's 12-bit LZW codes stop near 2730:1, a flat
 * Huffman-coded JPEG block needs a bit or two per 64 pixels. A header
 * promising more is truncated or a decompression bomb (30 bytes of GIF
 * asking for 57 Mpixel took 2.5 s and 280 MB: tests/fuzz/FINDINGS.md F3). */
#define IMG_MAX_PIXELS_PER_BYTE 4096
/* Deflate (PNG) never expands a byte into more than 1032 bytes. */
#define IMG_DEFLATE_MAX_RATIO 1032

/* Refuse a w x h image beyond the limits (CNN_ERR_FORMAT naming `name`). */
cnn_status cnn_img_check_size(const char *name, long long w, long long h);
/* Refuse `pixels` that `len` bytes of `fmt` cannot hold (the bomb check). */
cnn_status cnn_img_check_density(const char *name, const char *fmt, long long w, long long h,
                                 size_t len);

/* A w x h image of `channels` bytes a pixel, zero-filled; NULL with a
 * message naming `name` when out of memory. */
uint8_t *cnn_img_alloc(const char *name, int w, int h, int channels);

/* The decoders. Each fills *out (px malloc'd) or fails naming `name`;
 * *orientation (1..8, EXIF's values) says how the stored pixels must be
 * turned to stand upright: 1 when the file does not say. */
cnn_status cnn_png_decode(const char *name, const uint8_t *buf, size_t len, cnn_image *out,
                          int *orientation);
cnn_status cnn_jpeg_decode(const char *name, const uint8_t *buf, size_t len, cnn_image *out,
                           int *orientation);
/* BMP and GIF, through the stb_image compiled in image_stb.c. */
cnn_status cnn_stb_decode(const char *name, const char *fmt, const uint8_t *buf, size_t len,
                          cnn_image *out);

/* EXIF (exif.c). The orientation (1..8) in a TIFF stream (an Exif block
 * without its "Exif\0\0" header, or a PNG eXIf chunk): tag 0x0112 of IFD0,
 * big or little endian; 1 when absent, malformed or out of range. Every
 * offset is checked against len: the bytes are hostile. */
int cnn_exif_orientation(const uint8_t *tiff, size_t len);
/* The TIFF stream of a JPEG's first Exif APP1 segment before its first
 * scan, or NULL (*len = 0) when there is none. */
const uint8_t *cnn_jpeg_find_exif(const uint8_t *jpeg, size_t len, size_t *tiff_len);

/* Write a w x h 8-bit grey picture as PNG to f (image_png.c); `name` is
 * the file named in messages. A write error is CNN_ERR_IO. */
cnn_status cnn_png_write_gray(FILE *f, const char *name, const uint8_t *px, int w, int h);

#endif
