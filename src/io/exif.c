/*
 * exif.c — the one EXIF field we use: the orientation a camera recorded
 * instead of turning the pixels (phones store portraits sideways).
 *
 * An Exif block is a small TIFF file: "II" (little endian) or "MM" (big
 * endian), the number 42, the offset of IFD0, then IFD0: a count and
 * 12-byte entries (tag, type, count, value or offset). Orientation is tag
 * 0x0112, a SHORT whose value sits in the entry itself. Nothing else is
 * followed, and every offset is checked before it is read.
 */
#include "io/image.h"

#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t len;
    int little;
} tiff;

static unsigned tiff_u16(const tiff *t, size_t off)
{
    const uint8_t *q = t->p + off;
    return t->little ? (unsigned)q[0] | (unsigned)q[1] << 8 : (unsigned)q[0] << 8 | q[1];
}

static uint32_t tiff_u32(const tiff *t, size_t off)
{
    const uint8_t *q = t->p + off;
    return t->little ? (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                           (uint32_t)q[3] << 24
                     : (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

int cnn_exif_orientation(const uint8_t *p, size_t len)
{
    if (!p || len < 8) return 1;
    tiff t = {p, len, 0};
    if (p[0] == 'I' && p[1] == 'I')
        t.little = 1;
    else if (!(p[0] == 'M' && p[1] == 'M'))
        return 1;
    if (tiff_u16(&t, 2) != 42) return 1;
    uint32_t ifd = tiff_u32(&t, 4);
    if (ifd > len || len - ifd < 2) return 1;
    unsigned entries = tiff_u16(&t, ifd);
    size_t e = (size_t)ifd + 2;
    for (unsigned i = 0; i < entries && len - e >= 12; i++, e += 12) {
        if (tiff_u16(&t, e) != 0x0112) continue;
        /* type 3 = SHORT, count 1: the value is the entry's first 2 bytes */
        if (tiff_u16(&t, e + 2) != 3 || tiff_u32(&t, e + 4) < 1) return 1;
        unsigned v = tiff_u16(&t, e + 8);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

const uint8_t *cnn_jpeg_find_exif(const uint8_t *b, size_t len, size_t *tiff_len)
{
    *tiff_len = 0;
    if (!b || len < 4 || b[0] != 0xFF || b[1] != 0xD8) return NULL;
    /* Walk the marker segments after SOI up to the first scan: each is
     * FF, a marker byte, and a big-endian length that counts itself. */
    size_t p = 2;
    while (len - p >= 4) {
        if (b[p] != 0xFF) return NULL; /* not a marker: libjpeg will judge */
        unsigned m = b[p + 1];
        if (m == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { /* markers without a length */
            p += 2;
            continue;
        }
        if (m == 0xDA || m == 0xD9) return NULL; /* a scan or the end: too late */
        size_t seg = (size_t)b[p + 2] << 8 | b[p + 3];
        if (seg < 2 || seg > len - p - 2) return NULL;
        if (m == 0xE1 && seg >= 8 && !memcmp(b + p + 4, "Exif\0\0", 6)) {
            *tiff_len = seg - 8;
            return b + p + 10;
        }
        p += 2 + seg;
    }
    return NULL;
}
