/* imgfiles.h — picture files made in the tests, in memory: PNG through
 * libpng and JPEG through libjpeg (every colour type, bit depth, palette,
 * transparency, interlacing, progressive scan scripts, CMYK, EXIF), BMP and
 * GIF by hand. An encoder that fails returns no bytes (the test then
 * fails on that). */
#ifndef CNN_IMGFILES_H
#define CNN_IMGFILES_H

#include <cstdint>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

using Bytes = std::vector<uint8_t>;

struct PngOptions {
    int color_type = PNG_COLOR_TYPE_GRAY;
    int bit_depth = 8;
    bool interlace = false;           /* Adam7 */
    std::vector<png_color> palette;   /* PNG_COLOR_TYPE_PALETTE */
    Bytes palette_alpha;              /* tRNS for a palette */
    bool color_key = false;           /* tRNS for grey or RGB: this value is transparent */
    png_color_16 key{};
    Bytes exif;                       /* an eXIf chunk (a TIFF stream) */
    bool exif_after_pixels = false;
};
/* samples: h rows of w pixels of the colour type's channels, each sample a
 * number below 2^bit_depth (palette: an index). */
Bytes png_encode(int w, int h, const std::vector<unsigned> &samples, const PngOptions &o);

struct JpegOptions {
    int quality = 95;
    J_COLOR_SPACE in_space = JCS_GRAYSCALE; /* of samples: GRAYSCALE, RGB or CMYK */
    J_COLOR_SPACE file_space = JCS_UNKNOWN; /* UNKNOWN: libjpeg's default (YCbCr for RGB) */
    bool full_chroma = true;                /* 1x1 sampling for every component */
    bool adobe_marker = true;               /* libjpeg's default for CMYK and YCCK */
    bool progressive = false;               /* libjpeg's standard progression */
    std::vector<jpeg_scan_info> scans;      /* or this scan script */
    Bytes app1;                             /* an APP1 segment's payload */
};
Bytes jpeg_encode(int w, int h, const Bytes &samples, const JpegOptions &o);

/* A progressive colour JPEG written by hand: a flat w x h picture (every
 * coefficient zero) in one DC scan and then every AC coefficient of every
 * component in its own scans, sent one bit at a time (Al = 10 .. 0): 2080
 * scans of a few bytes each, however large the picture. */
Bytes jpeg_flat_many_scans(int w, int h);
/* Decode with plain libjpeg, no limits: whether it worked, how many scans
 * it read and how many warnings it gave. */
bool jpeg_plain_decode(const Bytes &file, int *scans, long *warnings);

/* A TIFF stream holding IFD0 with an Orientation entry (and a dummy entry
 * before it), in either byte order: a PNG eXIf chunk. */
Bytes tiff_orientation(int orientation, bool big_endian);
/* The same as a JPEG APP1 payload ("Exif\0\0" first). */
Bytes exif_app1(int orientation, bool big_endian);

/* A 24-bit BMP (bottom-up rows) of RGB samples. */
Bytes bmp24(int w, int h, const Bytes &rgb);
/* A GIF with a black and white palette; samples > 127 are white. */
Bytes gif_bw(int w, int h, const Bytes &grey);

void write_bytes(const std::string &path, const Bytes &b);
Bytes read_bytes(const std::string &path);

#endif
