/*
 * image_stb.c — BMP and GIF through stb_image, compiled here from Debian's
 * header (libstb-dev) instead of linked from its prebuilt libstb, so that
 * the sanitizer and fuzzing builds instrument it like our own code. Only
 * the BMP and GIF decoders are built (PNG and JPEG go through libpng and
 * libjpeg-turbo), and every stb function is static to this file, so
 * libcnn exports none of them.
 */
#include "io/image.h"

#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS IMG_MAX_SIDE
#define STBI_MALLOC malloc /* so that cnn_image_free's free() matches */
#define STBI_REALLOC realloc
#define STBI_FREE free
#if defined(__GNUC__)
/* the static declarations of the decoders left out are never defined: the
 * compiler says so at the end of the file, so this one stays off */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* stb_image fills a truncated BMP with whatever it has and reports success,
 * so an uncompressed BMP must hold all the rows its header announces. */
static cnn_status bmp_check_complete(const char *name, const uint8_t *buf, size_t len)
{
    if (len < 30) return CNN_OK; /* stb_image judges the rest */
    uint32_t off = le32(buf + 10), dib = le32(buf + 14);
    long long w, h;
    unsigned bpp, compression = 0;
    if (dib == 12) { /* OS/2 BITMAPCOREHEADER */
        w = buf[18] | buf[19] << 8;
        h = buf[20] | buf[21] << 8;
        bpp = buf[24] | buf[25] << 8;
    } else if (dib >= 40 && len >= 34) {
        w = (int32_t)le32(buf + 18);
        h = (int32_t)le32(buf + 22);
        bpp = buf[28] | buf[29] << 8;
        compression = le32(buf + 30);
    } else {
        return CNN_OK;
    }
    if (h < 0) h = -h;
    /* uncompressed rows are padded to 4 bytes; RLE sizes are unknown */
    if ((compression == 0 || compression == 3) && w > 0 && w <= IMG_MAX_SIDE &&
        h <= IMG_MAX_SIDE && bpp > 0 && bpp <= 32) {
        long long need = off + ((bpp * w + 31) / 32) * 4 * h;
        if ((long long)len < need)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated BMP: %lldx%lld at %u bits needs %lld bytes, file "
                            "holds %zu",
                            name, w, h, bpp, need, len);
    }
    return CNN_OK;
}

cnn_status cnn_stb_decode(const char *name, const char *fmt, const uint8_t *buf, size_t len,
                          cnn_image *out)
{
    if (len > (size_t)IMG_MAX_FILE)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s file too large", name, fmt);
    int x, y, comp;
    /* stbi_info reads only the header, so a huge image is refused before a
     * single pixel is decoded. */
    if (!stbi_info_from_memory(buf, (int)len, &x, &y, &comp))
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt %s file (%s)", name, fmt,
                        stbi_failure_reason() ? stbi_failure_reason() : "unreadable header");
    cnn_status s = cnn_img_check_size(name, x, y);
    if (s) return s;
    if ((s = cnn_img_check_density(name, fmt, x, y, len))) return s;
    if (!strcmp(fmt, "BMP") && (s = bmp_check_complete(name, buf, len))) return s;
    /* grey stays grey, colour stays colour, alpha is kept */
    int want = comp == 1 || comp == 2 ? comp : comp == 4 ? 4 : 3;
    int lx, ly, lc;
    uint8_t *px = stbi_load_from_memory(buf, (int)len, &lx, &ly, &lc, want);
    if (!px)
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt %s file (%s)", name, fmt,
                        stbi_failure_reason() ? stbi_failure_reason() : "cannot decode");
    if (lx != x || ly != y) {
        stbi_image_free(px);
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt %s file (size changed while decoding)",
                        name, fmt);
    }
    *out = (cnn_image){x, y, want, px};
    return CNN_OK;
}
