/*
 * image_png.c — PNG through libpng: decoding user pictures, and writing
 * the grey pictures `cnn predict --grid` draws.
 *
 * libpng reports an error by calling our error function, which must not
 * return: it records the message and longjmps back to the setjmp in
 * png_run / png_write_run. Everything those functions allocate lives in a
 * job struct owned by their caller, which frees it whichever way they end,
 * so a corrupt file cannot leak or skip our cleanup. Warnings (a bad CRC
 * in an ancillary chunk, a known-incorrect sRGB profile) are dropped: the
 * pixels are still right.
 */
#include "io/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* Chunks we never use, skipped unread so that a file of text chunks
 * cannot make libpng inflate megabytes each (zTXt, iTXt, iCCP) or keep
 * them (tEXt, sPLT). */
static const png_byte png_ignored_chunks[] = "iCCP\0iTXt\0sPLT\0tEXt\0zTXt";
#define PNG_IGNORED_COUNT 5
/* The most one ancillary chunk may allocate (libpng's own default). */
#define PNG_CHUNK_MAX ((png_alloc_size_t)8000000)

typedef struct {
    const char *name;
    const uint8_t *buf;
    size_t len, pos;
    png_structp png;
    png_infop info, end;
    uint8_t *px;        /* the decoded pixels; freed here unless handed out */
    png_bytepp rows;
    int w, h, channels, orientation;
    cnn_status status;  /* set before png_run returns early */
    char msg[200];      /* libpng's message */
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* libpng's read callback over the file in memory; running out of bytes is
 * the file being truncated. */
static void png_read_mem(png_structp png, png_bytep dst, size_t n)
{
    png_job *j = png_get_io_ptr(png);
    if (n > j->len - j->pos) png_error(png, "the file ends too early (truncated)");
    memcpy(dst, j->buf + j->pos, n);
    j->pos += n;
}

/* Every chunk must fit in the file. libpng allocates what a chunk's
 * length field claims before reading its data (an eXIf chunk claiming
 * 512 MB in a 45-byte file made it allocate 512 MB: tests/fuzz/FINDINGS.md
 * F6), so a chunk longer than what is left is refused here first. */
static cnn_status png_check_chunks(const char *name, const uint8_t *buf, size_t len)
{
    size_t p = 8; /* after the signature */
    while (len - p >= 8) {
        const uint8_t *c = buf + p;
        uint32_t n = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
        if ((uint64_t)n + 4 > len - p - 8) {
            char type[5];
            for (int i = 0; i < 4; i++)
                type[i] = (c[4 + i] >= 'A' && c[4 + i] <= 'Z') || (c[4 + i] >= 'a' && c[4 + i] <= 'z')
                              ? (char)c[4 + i]
                              : '?';
            type[4] = 0;
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated or corrupt PNG: the %s chunk at byte %zu claims %u "
                            "bytes, the file has %zu left",
                            name, type, p, (unsigned)n, len - p - 8);
        }
        if (!memcmp(c + 4, "IEND", 4)) break;
        p += 12 + (size_t)n;
    }
    return CNN_OK; /* anything else missing is libpng's to find */
}

/* The decoding proper. Returns 0 after a libpng error (j->msg says which)
 * or with j->status set by one of our checks. */
static int png_run(png_job *j)
{
    if (setjmp(png_jmpbuf(j->png))) return 0;
    png_set_read_fn(j->png, j, png_read_mem);
    png_set_keep_unknown_chunks(j->png, PNG_HANDLE_CHUNK_NEVER, png_ignored_chunks,
                                PNG_IGNORED_COUNT);
    png_set_chunk_malloc_max(j->png, PNG_CHUNK_MAX);
    /* a CRC error in any chunk is an error: libpng would drop a damaged
     * ancillary chunk (say tRNS) and show other pixels than the file's */
    png_set_crc_action(j->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    png_read_info(j->png, j->info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(j->png, j->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if ((j->status = cnn_img_check_size(j->name, w, h))) return 0;
    /* the filtered rows, one filter byte each, come out of deflate: a file
     * too short to inflate to them is truncated (or a bomb) */
    int bits = depth * png_get_channels(j->png, j->info);
    long long raw = (long long)h * (1 + ((long long)w * bits + 7) / 8);
    if (raw > ((long long)j->len + 64) * IMG_DEFLATE_MAX_RATIO) {
        j->status = cnn_fail(CNN_ERR_FORMAT,
                             "%s: truncated PNG: a %ux%u image cannot fit in %zu bytes", j->name,
                             (unsigned)w, (unsigned)h, j->len);
        return 0;
    }
    png_bytep exif;
    png_uint_32 exif_len;
    if (png_get_eXIf_1(j->png, j->info, &exif_len, &exif))
        j->orientation = cnn_exif_orientation(exif, exif_len);

    /* 8 bits a sample, palette to RGB, tRNS to an alpha channel; grey
     * stays grey. No gamma or colour management: the file's values. */
    png_set_expand(j->png);
    png_set_scale_16(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    j->w = (int)w;
    j->h = (int)h;
    j->channels = png_get_channels(j->png, j->info);
    if (j->channels < 1 || j->channels > 4 || png_get_bit_depth(j->png, j->info) != 8 ||
        png_get_rowbytes(j->png, j->info) != (size_t)w * j->channels) {
        snprintf(j->msg, sizeof j->msg, "unexpected pixel layout");
        return 0;
    }
    j->px = cnn_img_alloc(j->name, j->w, j->h, j->channels);
    if (!j->px) {
        j->status = CNN_ERR_NOMEM;
        return 0;
    }
    j->rows = malloc(sizeof *j->rows * h);
    if (!j->rows) {
        j->status = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", j->name);
        return 0;
    }
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->px + (size_t)y * w * j->channels;
    png_read_image(j->png, j->rows);
    /* the chunks after the pixels, up to IEND: a file cut short there is
     * refused too; an eXIf there counts as well */
    png_read_end(j->png, j->end);
    if (j->orientation == 1 && png_get_eXIf_1(j->png, j->end, &exif_len, &exif))
        j->orientation = cnn_exif_orientation(exif, exif_len);
    return 1;
}

cnn_status cnn_png_decode(const char *name, const uint8_t *buf, size_t len, cnn_image *out,
                          int *orientation)
{
    cnn_status s = png_check_chunks(name, buf, len);
    if (s) return s;
    png_job j = {.name = name, .buf = buf, .len = len, .orientation = 1};
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_on_error, png_on_warning);
    if (j.png) {
        j.info = png_create_info_struct(j.png);
        j.end = png_create_info_struct(j.png);
    }
    if (!j.png || !j.info || !j.end) {
        png_destroy_read_struct(j.png ? &j.png : NULL, j.info ? &j.info : NULL,
                                j.end ? &j.end : NULL);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory starting libpng", name);
    }
    int ok = png_run(&j);
    png_destroy_read_struct(&j.png, &j.info, &j.end);
    free(j.rows);
    if (!ok) {
        free(j.px);
        if (j.status) return j.status;
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt PNG (%s)", name, j.msg);
    }
    *out = (cnn_image){j.w, j.h, j.channels, j.px};
    *orientation = j.orientation;
    return CNN_OK;
}

/* ----------------------------------------------------------------- writing */

typedef struct {
    FILE *f;
    const uint8_t *px;
    int w, h;
    png_structp png;
    png_infop info;
    char msg[200];
} png_write_job;

static void png_write_on_error(png_structp png, png_const_charp msg)
{
    png_write_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static int png_write_run(png_write_job *j)
{
    if (setjmp(png_jmpbuf(j->png))) return 0;
    png_init_io(j->png, j->f);
    png_set_IHDR(j->png, j->info, (png_uint_32)j->w, (png_uint_32)j->h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(j->png, j->info);
    for (int y = 0; y < j->h; y++) png_write_row(j->png, j->px + (size_t)y * j->w);
    png_write_end(j->png, NULL);
    return 1;
}

cnn_status cnn_png_write_gray(FILE *f, const char *name, const uint8_t *px, int w, int h)
{
    if (!f || !px || w < 1 || h < 1)
        return cnn_fail(CNN_ERR_ARG, "%s: nothing to write as PNG", name);
    png_write_job j = {.f = f, .px = px, .w = w, .h = h};
    j.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &j, png_write_on_error,
                                    png_on_warning);
    if (j.png) j.info = png_create_info_struct(j.png);
    if (!j.png || !j.info) {
        png_destroy_write_struct(j.png ? &j.png : NULL, NULL);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory starting libpng", name);
    }
    int ok = png_write_run(&j);
    png_destroy_write_struct(&j.png, &j.info);
    if (!ok) return cnn_fail(CNN_ERR_IO, "%s: cannot write the PNG: %s", name, j.msg);
    return CNN_OK;
}
