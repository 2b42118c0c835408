/*
 * image_jpeg.c — JPEG through libjpeg-turbo.
 *
 * Errors: libjpeg calls error_exit, which must not return; ours records
 * the message and longjmps back to the setjmp in jpeg_run. The decoder
 * state and our pixels live in a job struct owned by the caller, which
 * destroys and frees them whichever way jpeg_run ends.
 *
 * Warnings: libjpeg warns and carries on when the entropy-coded data is
 * damaged or cut short, filling the rest with grey. Those pixels would be
 * invented, so such a warning stops the decoding like an error (and a
 * truncated 60-Mpixel header stops at once instead of decoding 60 Mpixel
 * of grey). Warnings about metadata are ignored.
 *
 * Work: a progressive JPEG is a series of scans, each refining the whole
 * image, and a file may hold thousands of them: decoding every one takes
 * minutes. The progress monitor counts them, and the decoding stops when
 * pixels x scans passes a budget or the scans pass 500 (TurboJPEG's limit
 * for the same attack); ordinary files have 1 to about 20. The memory for
 * the coefficients of a multi-scan file is capped by max_memory_to_use.
 */
#include "io/image.h"

#include <stdio.h> /* jpeglib.h needs FILE */
#include <jerror.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define JPEG_MAX_SCANS 500
/* pixels x scans: 64 Mpixel (the size limit) with 16 scans, a 12-Mpixel
 * photo with 89. At about 0.65 ns a pixel and scan (libjpeg-turbo 2.1, one
 * core), under a second of decoding. */
#define JPEG_MAX_SCAN_PIXELS ((long long)1 << 30)
/* A progressive 64-Mpixel colour image needs 384 MB of coefficients. */
#define JPEG_MAX_MEMORY (512L << 20)

typedef struct {
    struct jpeg_error_mgr err; /* first: libjpeg's err pointer is the job */
    struct jpeg_progress_mgr progress;
    struct jpeg_decompress_struct cinfo;
    jmp_buf jump;
    const char *name;
    uint8_t *px; /* the decoded pixels; freed by the caller unless handed out */
    int max_scans;
    cnn_status status; /* what stopped jpeg_run */
} jpeg_job;

/* The message of libjpeg's last error or warning, with the file's name. */
static void jpeg_stop(jpeg_job *j, cnn_status code, const char *what)
{
    char text[JMSG_LENGTH_MAX];
    j->err.format_message((j_common_ptr)&j->cinfo, text);
    j->status = cnn_fail(code, "%s: %s (%s)", j->name, what, text);
    longjmp(j->jump, 1);
}

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_job *j = (jpeg_job *)c->err;
    switch (c->err->msg_code) {
    case JERR_OUT_OF_MEMORY:
        jpeg_stop(j, CNN_ERR_NOMEM, "out of memory decoding the JPEG");
        break;
    case JERR_NO_BACKING_STORE: /* over max_memory_to_use */
        j->status = cnn_fail(CNN_ERR_FORMAT, "%s: JPEG needs more than %ld MB to decode",
                             j->name, JPEG_MAX_MEMORY >> 20);
        longjmp(j->jump, 1);
    default:
        jpeg_stop(j, CNN_ERR_FORMAT, "corrupt JPEG");
    }
}

static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level >= 0) return; /* trace messages */
    switch (c->err->msg_code) {
    case JWRN_ADOBE_XFORM:
    case JWRN_BOGUS_ICC:
    case JWRN_JFIF_MAJOR:
    case JWRN_NOT_SEQUENTIAL: /* odd scan parameters in a baseline file */
    case JWRN_EXTRANEOUS_DATA: /* junk between markers */
        return;
    case JWRN_JPEG_EOF:
        jpeg_stop((jpeg_job *)c->err, CNN_ERR_FORMAT,
                  "truncated JPEG: the file ends inside the image");
        break;
    default:
        jpeg_stop((jpeg_job *)c->err, CNN_ERR_FORMAT, "corrupt JPEG");
    }
}

static void jpeg_on_output(j_common_ptr c)
{
    (void)c; /* nothing is ever printed */
}

static void jpeg_on_progress(j_common_ptr c)
{
    jpeg_job *j = (jpeg_job *)c->err;
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (c->is_decompressor && d->input_scan_number > j->max_scans) {
        j->status = cnn_fail(CNN_ERR_FORMAT,
                             "%s: too costly to decode: a %ux%u progressive JPEG with more "
                             "than %d scans (the limit at this size; ordinary files have "
                             "about 10)",
                             j->name, (unsigned)d->image_width, (unsigned)d->image_height,
                             j->max_scans);
        longjmp(j->jump, 1);
    }
}

/* Photoshop writes CMYK inverted (255 = no ink) and says so with an Adobe
 * marker; plain CMYK has 0 = no ink. Ink is removed from white. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted)
{
    for (int x = 0; x < w; x++) {
        unsigned c = in[4 * x], m = in[4 * x + 1], y = in[4 * x + 2], k = in[4 * x + 3];
        if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        out[3 * x] = (uint8_t)((c * k + 127) / 255);
        out[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        out[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

/* Returns 1 with j->px filled, or 0 with j->status set. */
static int jpeg_run(jpeg_job *j, const uint8_t *buf, size_t len, cnn_image *out)
{
    if (setjmp(j->jump)) return 0;
    j_decompress_ptr c = &j->cinfo;
    c->err = jpeg_std_error(&j->err);
    j->err.error_exit = jpeg_on_error;
    j->err.emit_message = jpeg_on_message;
    j->err.output_message = jpeg_on_output;
    jpeg_create_decompress(c);
    c->mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_mem_src(c, buf, (unsigned long)len);
    jpeg_read_header(c, TRUE);

    long long w = c->image_width, h = c->image_height;
    if ((j->status = cnn_img_check_size(j->name, w, h))) return 0;
    if ((j->status = cnn_img_check_density(j->name, "JPEG", w, h, len))) return 0;
    int channels, cmyk = 0;
    switch (c->jpeg_color_space) {
    case JCS_GRAYSCALE:
        c->out_color_space = JCS_GRAYSCALE;
        channels = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        c->out_color_space = JCS_RGB;
        channels = 3;
        break;
    case JCS_CMYK:
    case JCS_YCCK: /* libjpeg turns YCCK into CMYK */
        c->out_color_space = JCS_CMYK;
        channels = 3;
        cmyk = 1;
        break;
    default:
        j->status = cnn_fail(CNN_ERR_FORMAT,
                             "%s: unsupported JPEG colour space (%d components)", j->name,
                             c->num_components);
        return 0;
    }
    j->max_scans = (int)(JPEG_MAX_SCAN_PIXELS / (w * h));
    if (j->max_scans > JPEG_MAX_SCANS) j->max_scans = JPEG_MAX_SCANS;
    j->progress.progress_monitor = jpeg_on_progress;
    c->progress = &j->progress;

    jpeg_start_decompress(c);
    if (c->output_width != w || c->output_height != h ||
        c->output_components != (cmyk ? 4 : channels)) {
        j->status = cnn_fail(CNN_ERR_FORMAT, "%s: corrupt JPEG (unexpected output layout)",
                             j->name);
        return 0;
    }
    if (!(j->px = cnn_img_alloc(j->name, (int)w, (int)h, channels))) {
        j->status = CNN_ERR_NOMEM;
        return 0;
    }
    JSAMPARRAY cmyk_row =
        cmyk ? c->mem->alloc_sarray((j_common_ptr)c, JPOOL_IMAGE, (JDIMENSION)w * 4, 1) : NULL;
    while (c->output_scanline < c->output_height) {
        uint8_t *dst = j->px + (size_t)c->output_scanline * w * channels;
        JSAMPROW row = cmyk ? cmyk_row[0] : dst;
        if (jpeg_read_scanlines(c, &row, 1) != 1) {
            j->status = cnn_fail(CNN_ERR_FORMAT, "%s: corrupt JPEG (no progress decoding)",
                                 j->name);
            return 0;
        }
        if (cmyk) cmyk_row_to_rgb(row, dst, (int)w, c->saw_Adobe_marker);
    }
    /* reads on to the end-of-image marker: a file cut after the last
     * pixel row still warns (and is refused) here */
    jpeg_finish_decompress(c);
    *out = (cnn_image){(int)w, (int)h, channels, j->px};
    return 1;
}

cnn_status cnn_jpeg_decode(const char *name, const uint8_t *buf, size_t len, cnn_image *out,
                           int *orientation)
{
    jpeg_job *j = calloc(1, sizeof *j);
    if (!j) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory starting libjpeg", name);
    j->name = name;
    int ok = jpeg_run(j, buf, len, out);
    jpeg_destroy_decompress(&j->cinfo);
    cnn_status st = j->status;
    if (!ok) free(j->px);
    free(j);
    if (!ok) return st ? st : cnn_fail(CNN_ERR_FORMAT, "%s: corrupt JPEG", name);
    size_t tlen;
    const uint8_t *tiff = cnn_jpeg_find_exif(buf, len, &tlen);
    *orientation = tiff ? cnn_exif_orientation(tiff, tlen) : 1;
    return CNN_OK;
}
