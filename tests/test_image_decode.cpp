/* test_image_decode.cpp — decoding pictures to pixels: every PNG colour type
 * and bit depth (palettes, transparency, 16 bits, interlacing), grey,
 * colour, CMYK and YCCK JPEGs, BMP and GIF through the stb_image built in
 * our tree; all eight EXIF orientations (JPEG and PNG) give the same
 * upright picture; transparent backgrounds keep the ink visible whatever
 * its colour; a progressive JPEG with thousands of scans is refused at
 * once; truncated or damaged files are refused naming the file. Every file
 * is made here with libpng, libjpeg or by hand (tests/imgfiles.cpp). */
#include "imgfiles.h"
#include "testutil.h"
extern "C" {
#include "io/image.h"
}

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <time.h>
#include <vector>

namespace {

struct Decoded {
    cnn_status status;
    std::string msg;
    int w = 0, h = 0, channels = 0;
    Bytes px;
};

Decoded decode(const Bytes &file, const char *name = "test-file")
{
    Decoded d;
    cnn_image img;
    d.status = cnn_image_decode_memory(file.data(), file.size(), name, &img);
    d.msg = cnn_errmsg();
    if (d.status == CNN_OK) {
        d.w = img.w, d.h = img.h, d.channels = img.channels;
        d.px.assign(img.px, img.px + (size_t)img.w * img.h * img.channels);
        cnn_image_free(&img);
    }
    return d;
}

/* The largest difference between two pixel buffers of the same size. */
int max_diff(const Bytes &a, const Bytes &b)
{
    if (a.size() != b.size()) return 1 << 20;
    int m = 0;
    for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

/* ------------------------------------------------------------------ PNG */

/* A sample pattern that uses every value of `depth` bits and differs
 * between neighbours, channels and rows. */
unsigned pattern(int x, int y, int c, int depth)
{
    unsigned v = (unsigned)(x * 7 + y * 13 + c * 29 + x * y);
    return depth == 16 ? (v % 256) * 257 : v % (1u << depth);
}

struct PngCase {
    const char *what;
    int color_type, depth;
    bool trns, interlace;
};

/* What libpng must give for a PngCase: 8-bit samples, palette to RGB,
 * transparency as an alpha channel. */
Bytes expected_png(const PngCase &c, int w, int h, const std::vector<unsigned> &s,
                   const PngOptions &o, int *channels)
{
    int in_ch = c.color_type == PNG_COLOR_TYPE_RGB ? 3
                : c.color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                : c.color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    int out_ch = c.color_type == PNG_COLOR_TYPE_PALETTE ? 3 : in_ch;
    if (c.trns) out_ch++;
    *channels = out_ch;
    auto to8 = [&](unsigned v) -> uint8_t {
        if (c.depth == 16) return (uint8_t)(v / 257);
        return (uint8_t)(v * 255 / ((1u << c.depth) - 1));
    };
    Bytes e;
    for (int i = 0; i < w * h; i++) {
        const unsigned *p = s.data() + (size_t)i * in_ch;
        if (c.color_type == PNG_COLOR_TYPE_PALETTE) {
            const png_color &pc = o.palette[p[0]];
            e.insert(e.end(), {pc.red, pc.green, pc.blue});
            if (c.trns) e.push_back(p[0] < o.palette_alpha.size() ? o.palette_alpha[p[0]] : 255);
            continue;
        }
        for (int k = 0; k < in_ch; k++) e.push_back(to8(p[k]));
        if (c.trns) {
            bool key = c.color_type == PNG_COLOR_TYPE_GRAY
                           ? p[0] == o.key.gray
                           : p[0] == o.key.red && p[1] == o.key.green && p[2] == o.key.blue;
            e.push_back(key ? 0 : 255);
        }
    }
    return e;
}

}  // namespace

TEST(ImageDecode, PngEveryColourTypeAndDepth)
{
    const PngCase cases[] = {
        {"grey 1-bit", PNG_COLOR_TYPE_GRAY, 1, false, false},
        {"grey 2-bit", PNG_COLOR_TYPE_GRAY, 2, false, false},
        {"grey 4-bit", PNG_COLOR_TYPE_GRAY, 4, false, false},
        {"grey 8-bit", PNG_COLOR_TYPE_GRAY, 8, false, false},
        {"grey 16-bit", PNG_COLOR_TYPE_GRAY, 16, false, false},
        {"grey 4-bit with a transparent level", PNG_COLOR_TYPE_GRAY, 4, true, false},
        {"grey 16-bit with a transparent level", PNG_COLOR_TYPE_GRAY, 16, true, false},
        {"palette 1-bit", PNG_COLOR_TYPE_PALETTE, 1, false, false},
        {"palette 2-bit", PNG_COLOR_TYPE_PALETTE, 2, false, false},
        {"palette 4-bit", PNG_COLOR_TYPE_PALETTE, 4, false, false},
        {"palette 8-bit", PNG_COLOR_TYPE_PALETTE, 8, false, false},
        {"palette 4-bit with tRNS", PNG_COLOR_TYPE_PALETTE, 4, true, false},
        {"palette 8-bit with tRNS", PNG_COLOR_TYPE_PALETTE, 8, true, false},
        {"grey + alpha 8-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false},
        {"grey + alpha 16-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, false},
        {"RGB 8-bit", PNG_COLOR_TYPE_RGB, 8, false, false},
        {"RGB 16-bit", PNG_COLOR_TYPE_RGB, 16, false, false},
        {"RGB 8-bit with a transparent colour", PNG_COLOR_TYPE_RGB, 8, true, false},
        {"RGBA 8-bit", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false},
        {"RGBA 16-bit", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, false},
        {"grey 1-bit interlaced", PNG_COLOR_TYPE_GRAY, 1, false, true},
        {"grey 8-bit interlaced", PNG_COLOR_TYPE_GRAY, 8, false, true},
        {"palette 2-bit with tRNS interlaced", PNG_COLOR_TYPE_PALETTE, 2, true, true},
        {"RGBA 16-bit interlaced", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, true},
    };
    const int w = 19, h = 11; /* odd sizes: partial bytes and Adam7 passes */
    for (const PngCase &c : cases) {
        SCOPED_TRACE(c.what);
        PngOptions o;
        o.color_type = c.color_type;
        o.bit_depth = c.depth;
        o.interlace = c.interlace;
        int in_ch = c.color_type == PNG_COLOR_TYPE_RGB ? 3
                    : c.color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                    : c.color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
        std::vector<unsigned> s;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < in_ch; k++) s.push_back(pattern(x, y, k, c.depth));
        if (c.color_type == PNG_COLOR_TYPE_PALETTE) {
            for (int i = 0; i < (1 << c.depth); i++)
                o.palette.push_back({(uint8_t)(i * 37 + 5), (uint8_t)(255 - i * 11), (uint8_t)(i * 90)});
            if (c.trns) /* fewer alphas than entries: the rest are opaque */
                for (int i = 0; i < (1 << c.depth) / 2 + 1; i++) o.palette_alpha.push_back((uint8_t)(i * 50));
        } else if (c.trns) {
            o.color_key = true;
            o.key.gray = (png_uint_16)s[0];
            o.key.red = (png_uint_16)s[0], o.key.green = (png_uint_16)s[1 % in_ch],
            o.key.blue = (png_uint_16)s[2 % in_ch];
        }
        Bytes file = png_encode(w, h, s, o);
        ASSERT_FALSE(file.empty());
        int channels;
        Bytes want = expected_png(c, w, h, s, o, &channels);
        Decoded d = decode(file);
        ASSERT_EQ(d.status, CNN_OK) << d.msg;
        EXPECT_EQ(d.w, w);
        EXPECT_EQ(d.h, h);
        EXPECT_EQ(d.channels, channels);
        EXPECT_EQ(d.px, want);
    }
}

/* ----------------------------------------------------------------- JPEG */

namespace {

/* 8x8 cells of one value each (JPEG keeps a flat block almost exactly):
 * channel k of cell (cx, cy) is `cell(cx, cy, k)`. */
Bytes cells(int w, int h, int channels, uint8_t (*cell)(int, int, int))
{
    Bytes b;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < channels; k++) b.push_back(cell(x / 8, y / 8, k));
    return b;
}

uint8_t cell_value(int cx, int cy, int k) { return (uint8_t)(20 + ((cy * 6 + cx) * 9 + k * 70) % 216); }

}  // namespace

TEST(ImageDecode, JpegGreyColourCmykYcck)
{
    const int w = 48, h = 32;
    /* grey stays one channel */
    Bytes grey = cells(w, h, 1, cell_value);
    JpegOptions o;
    o.quality = 100;
    Decoded d = decode(jpeg_encode(w, h, grey, o));
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    EXPECT_EQ(d.channels, 1);
    EXPECT_LE(max_diff(d.px, grey), 2);

    /* colour (YCbCr in the file) comes back as RGB, also progressive and
     * with 4:2:0 chroma (cells of 16 keep the chroma flat) */
    Bytes rgb = cells(w, h, 3, cell_value);
    for (bool progressive : {false, true}) {
        SCOPED_TRACE(progressive ? "progressive" : "baseline");
        JpegOptions oc;
        oc.quality = 100;
        oc.in_space = JCS_RGB;
        oc.progressive = progressive;
        d = decode(jpeg_encode(w, h, rgb, oc));
        ASSERT_EQ(d.status, CNN_OK) << d.msg;
        EXPECT_EQ(d.channels, 3);
        EXPECT_LE(max_diff(d.px, rgb), 3);
    }
    Bytes rgb16 = cells(w, h, 3, [](int cx, int cy, int k) { return cell_value(cx / 2, cy / 2, k); });
    JpegOptions sub;
    sub.quality = 100;
    sub.in_space = JCS_RGB;
    sub.full_chroma = false;
    d = decode(jpeg_encode(w, h, rgb16, sub));
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    EXPECT_LE(max_diff(d.px, rgb16), 4);

    /* CMYK: with an Adobe marker the samples are stored inverted (255 = no
     * ink, Photoshop's way), without one 0 = no ink; YCCK is CMYK stored
     * as YCbCr + K. Either way ink is taken out of white. */
    Bytes cmyk = cells(w, h, 4, cell_value);
    for (int variant = 0; variant < 3; variant++) {
        SCOPED_TRACE(variant == 0 ? "Adobe CMYK" : variant == 1 ? "plain CMYK" : "YCCK");
        JpegOptions ok;
        ok.quality = 100;
        ok.in_space = JCS_CMYK;
        ok.adobe_marker = variant != 1;
        if (variant == 2) ok.file_space = JCS_YCCK;
        d = decode(jpeg_encode(w, h, cmyk, ok));
        ASSERT_EQ(d.status, CNN_OK) << d.msg;
        ASSERT_EQ(d.channels, 3);
        Bytes want;
        for (size_t i = 0; i < cmyk.size(); i += 4)
            for (int k = 0; k < 3; k++) {
                unsigned c = cmyk[i + k], K = cmyk[i + 3];
                if (variant == 1) c = 255 - c, K = 255 - K;
                want.push_back((uint8_t)((c * K + 127) / 255));
            }
        EXPECT_LE(max_diff(d.px, want), 4);
    }
}

TEST(ImageDecode, BmpAndGifThroughTheStbImageInOurTree)
{
    const int w = 13, h = 7;
    Bytes rgb;
    for (int i = 0; i < w * h * 3; i++) rgb.push_back((uint8_t)(i * 31 % 251));
    Decoded d = decode(bmp24(w, h, rgb));
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    EXPECT_EQ(d.channels, 3);
    EXPECT_EQ(d.px, rgb);

    Bytes grey;
    for (int i = 0; i < w * h; i++) grey.push_back((i * 7) % 3 ? 255 : 0);
    d = decode(gif_bw(w, h, grey));
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    ASSERT_EQ(d.channels, 4);
    for (int i = 0; i < w * h; i++) {
        EXPECT_EQ(d.px[4 * i], grey[i]) << i;
        EXPECT_EQ(d.px[4 * i + 3], 255) << i;
    }
}

/* ---------------------------------------------------------- orientation */

namespace {

/* The stored picture for orientation o of an upright W x H picture, made
 * from EXIF's own definition: the stored image's first row is the upright
 * image's top, right, bottom or left side, and its first column the left,
 * top, right or bottom one. */
Bytes stored_for(const Bytes &up, int W, int H, int ch, int o, int *sw, int *sh)
{
    static const char row0[9] = {0, 'T', 'T', 'B', 'B', 'L', 'R', 'R', 'L'};
    static const char col0[9] = {0, 'L', 'R', 'R', 'L', 'T', 'T', 'B', 'B'};
    bool rows_across = row0[o] == 'T' || row0[o] == 'B';
    *sw = rows_across ? W : H;
    *sh = rows_across ? H : W;
    Bytes s((size_t)W * H * ch);
    for (int r = 0; r < *sh; r++)
        for (int c = 0; c < *sw; c++) {
            int x, y;
            if (rows_across) {
                y = row0[o] == 'T' ? r : H - 1 - r;
                x = col0[o] == 'L' ? c : W - 1 - c;
            } else {
                x = row0[o] == 'L' ? r : W - 1 - r;
                y = col0[o] == 'T' ? c : H - 1 - c;
            }
            for (int k = 0; k < ch; k++)
                s[((size_t)r * *sw + c) * ch + k] = up[((size_t)y * W + x) * ch + k];
        }
    return s;
}

}  // namespace

TEST(ImageDecode, AllEightExifOrientationsGiveTheSameUprightPicture)
{
    const int W = 48, H = 32; /* cells of 8: no two alike, so any wrong turn shows */
    Bytes up = cells(W, H, 1, cell_value);
    for (int o = 1; o <= 8; o++) {
        SCOPED_TRACE("orientation " + std::to_string(o));
        int sw, sh;
        Bytes s = stored_for(up, W, H, 1, o, &sw, &sh);
        for (bool be : {false, true}) {
            SCOPED_TRACE(be ? "big endian" : "little endian");
            JpegOptions jo;
            jo.quality = 100;
            jo.app1 = exif_app1(o, be);
            Decoded d = decode(jpeg_encode(sw, sh, s, jo));
            ASSERT_EQ(d.status, CNN_OK) << d.msg;
            ASSERT_EQ(d.w, W);
            ASSERT_EQ(d.h, H);
            EXPECT_LE(max_diff(d.px, up), 2);

            for (bool after : {false, true}) {
                PngOptions po;
                po.exif = tiff_orientation(o, be);
                po.exif_after_pixels = after;
                d = decode(png_encode(sw, sh, std::vector<unsigned>(s.begin(), s.end()), po));
                ASSERT_EQ(d.status, CNN_OK) << d.msg;
                ASSERT_EQ(d.w, W);
                ASSERT_EQ(d.h, H);
                EXPECT_EQ(d.px, up) << (after ? "eXIf after the pixels" : "eXIf before");
            }
        }
    }
    /* and a colour picture turns as a whole (channels stay together) */
    Bytes rgb = cells(W, H, 3, cell_value);
    int sw, sh;
    Bytes s = stored_for(rgb, W, H, 3, 6, &sw, &sh);
    PngOptions po;
    po.color_type = PNG_COLOR_TYPE_RGB;
    po.exif = tiff_orientation(6, false);
    Decoded d = decode(png_encode(sw, sh, std::vector<unsigned>(s.begin(), s.end()), po));
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    EXPECT_EQ(d.px, rgb);
}

TEST(ImageDecode, SidewaysPhotoOfADigitReadsUpright)
{
    /* an "F" (no symmetry at all), dark on white, stored as a phone would
     * for each orientation: the 28x28 field is the same every time */
    const int W = 40, H = 56;
    Bytes up(W * H, 250);
    for (int y = 8; y < 48; y++)
        for (int x = 10; x < 16; x++) up[y * W + x] = 10;
    for (int y = 8; y < 14; y++)
        for (int x = 10; x < 32; x++) up[y * W + x] = 10;
    for (int y = 24; y < 30; y++)
        for (int x = 10; x < 26; x++) up[y * W + x] = 10;
    TempDir dir;
    Bytes first(784);
    for (int o = 1; o <= 8; o++) {
        SCOPED_TRACE("orientation " + std::to_string(o));
        int sw, sh;
        Bytes s = stored_for(up, W, H, 1, o, &sw, &sh);
        PngOptions po;
        po.exif = tiff_orientation(o, o % 2);
        std::string p = dir / ("f" + std::to_string(o) + ".png");
        write_bytes(p, png_encode(sw, sh, std::vector<unsigned>(s.begin(), s.end()), po));
        Bytes out(784);
        ASSERT_EQ(cnn_image_load_mnist(p.c_str(), out.data()), CNN_OK) << cnn_errmsg();
        if (o == 1) {
            /* the upright picture's own field */
            first.assign(784, 0);
            ASSERT_EQ(cnn_image_preprocess_mnist(up.data(), W, H, first.data()), CNN_OK);
            EXPECT_EQ(out, first);
            /* which differs from the field of the picture as stored sideways */
            int tw, th;
            Bytes turned = stored_for(up, W, H, 1, 6, &tw, &th), side(784);
            ASSERT_EQ(cnn_image_preprocess_mnist(turned.data(), tw, th, side.data()), CNN_OK);
            EXPECT_NE(out, side);
        } else {
            EXPECT_EQ(out, first);
        }
    }
}

TEST(ImageDecode, ExifParserSurvivesHostileBytes)
{
    for (bool be : {false, true})
        for (int o = 1; o <= 8; o++) {
            Bytes t = tiff_orientation(o, be);
            EXPECT_EQ(cnn_exif_orientation(t.data(), t.size()), o);
            /* every truncation is refused: the entry is the last thing */
            for (size_t n = 0; n + 6 < t.size(); n++)
                EXPECT_EQ(cnn_exif_orientation(t.data(), n), 1) << "cut at " << n;
        }
    Bytes t = tiff_orientation(6, false);
    auto with = [&](size_t at, std::initializer_list<uint8_t> b) {
        Bytes c = t;
        std::copy(b.begin(), b.end(), c.begin() + (long)at);
        return cnn_exif_orientation(c.data(), c.size());
    };
    EXPECT_EQ(with(0, {'I', 'M'}), 1);                   /* no byte order */
    EXPECT_EQ(with(2, {43, 0}), 1);                      /* not 42 */
    EXPECT_EQ(with(4, {0xFF, 0xFF, 0xFF, 0xFF}), 1);     /* IFD0 far past the end */
    EXPECT_EQ(with(4, {(uint8_t)(t.size() - 1), 0, 0, 0}), 1); /* IFD0 count cut */
    EXPECT_EQ(with(8, {0xFF, 0xFF}), 6);                 /* 65535 entries claimed: reads what is there */
    EXPECT_EQ(with(24, {4, 0}), 1);                      /* LONG, not SHORT */
    EXPECT_EQ(with(26, {0, 0, 0, 0}), 1);                /* count 0 */
    EXPECT_EQ(with(30, {9, 0}), 1);                      /* out of 1..8 */
    EXPECT_EQ(with(30, {0, 0}), 1);
    EXPECT_EQ(cnn_exif_orientation(nullptr, 100), 1);

    /* the APP1 locator: found in a real file, never outside the bytes */
    JpegOptions jo;
    jo.app1 = exif_app1(3, true);
    Bytes jpg = jpeg_encode(16, 16, Bytes(256, 128), jo);
    size_t tlen;
    const uint8_t *tiff = cnn_jpeg_find_exif(jpg.data(), jpg.size(), &tlen);
    ASSERT_NE(tiff, nullptr);
    EXPECT_EQ(cnn_exif_orientation(tiff, tlen), 3);
    for (size_t n = 0; n < 60 && n < jpg.size(); n++) {
        tiff = cnn_jpeg_find_exif(jpg.data(), n, &tlen);
        if (tiff) EXPECT_LE((size_t)(tiff - jpg.data()) + tlen, n);
    }
    /* random bytes after SOI: no read outside the buffer (ASan watches) */
    cnn_rng r;
    cnn_rng_seed(&r, 9);
    for (int i = 0; i < 20000; i++) {
        size_t n = cnn_rng_below(&r, 64);
        Bytes b(n);
        for (auto &v : b) v = (uint8_t)cnn_rng_below(&r, 4) ? (uint8_t)cnn_rng_below(&r, 256) : 0xFF;
        if (n >= 2) b[0] = 0xFF, b[1] = 0xD8;
        Bytes heap(b); /* exact size on the heap */
        tiff = cnn_jpeg_find_exif(heap.data(), heap.size(), &tlen);
        if (tiff) ASSERT_LE((size_t)(tiff - heap.data()) + tlen, heap.size());
        int v = cnn_exif_orientation(heap.data(), heap.size());
        ASSERT_TRUE(v >= 1 && v <= 8);
    }
}

/* --------------------------------------------------------- transparency */

TEST(ImageDecode, InkOnATransparentPageIsReadWhateverItsColour)
{
    /* a "7" as coverage 0..255 */
    const int W = 60, H = 80;
    Bytes cover(W * H, 0);
    for (int y = 10; y < 18; y++)
        for (int x = 10; x < 50; x++) cover[y * W + x] = 255;
    for (int y = 18; y < 70; y++)
        for (int x = 42 - (y - 18) / 2; x < 50 - (y - 18) / 2; x++) cover[y * W + x] = 255;
    TempDir dir;
    auto mnist = [&](const std::string &name, int color_type, const Bytes &px, PngOptions o = {}) {
        o.color_type = color_type;
        std::string p = dir / name;
        write_bytes(p, png_encode(W, H, std::vector<unsigned>(px.begin(), px.end()), o));
        Bytes out(784);
        EXPECT_EQ(cnn_image_load_mnist(p.c_str(), out.data()), CNN_OK) << name << ": " << cnn_errmsg();
        return out;
    };
    /* the reference: opaque black ink on white paper */
    Bytes ref_px(W * H);
    for (int i = 0; i < W * H; i++) ref_px[i] = (uint8_t)(255 - cover[i]);
    Bytes ref = mnist("ref.png", PNG_COLOR_TYPE_GRAY, ref_px);
    long ink = 0;
    for (uint8_t v : ref) ink += v;
    ASSERT_GT(ink, 255 * 40);

    auto rgba_ink = [&](uint8_t r, uint8_t g, uint8_t b, uint8_t bg_rgb) {
        Bytes px;
        for (int i = 0; i < W * H; i++) /* transparent pixels keep a colour of their own */
            px.insert(px.end(), {cover[i] ? r : bg_rgb, cover[i] ? g : bg_rgb, cover[i] ? b : bg_rgb,
                                 cover[i]});
        return px;
    };
    struct {
        const char *what;
        Bytes px;
    } inks[] = {
        {"black ink", rgba_ink(0, 0, 0, 255)},
        {"white ink", rgba_ink(255, 255, 255, 255)},
        {"white ink, black transparent pixels", rgba_ink(255, 255, 255, 0)},
        {"red ink", rgba_ink(220, 20, 20, 0)},
        {"blue ink", rgba_ink(20, 40, 200, 255)},
        {"yellow ink", rgba_ink(250, 230, 20, 0)},
    };
    for (auto &c : inks) {
        Bytes out = mnist(std::string(c.what) + ".png", PNG_COLOR_TYPE_RGB_ALPHA, c.px);
        int differ = 0;
        for (int i = 0; i < 784; i++) differ += std::abs(out[i] - ref[i]) > 8;
        EXPECT_LE(differ, 4) << c.what;
    }
    /* white ink on transparency as grey + alpha, and as a palette with tRNS */
    Bytes ga;
    for (int i = 0; i < W * H; i++) ga.push_back(255), ga.push_back(cover[i]);
    Bytes out = mnist("white-ga.png", PNG_COLOR_TYPE_GRAY_ALPHA, ga);
    EXPECT_EQ(max_diff(out, ref), 0);
    PngOptions pal;
    pal.bit_depth = 1;
    pal.palette = {{255, 255, 255}, {255, 255, 255}};
    pal.palette_alpha = {0}; /* entry 0 transparent, 1 opaque: both white */
    Bytes idx(W * H);
    for (int i = 0; i < W * H; i++) idx[i] = cover[i] ? 1 : 0;
    out = mnist("white-palette.png", PNG_COLOR_TYPE_PALETTE, idx, pal);
    EXPECT_LE(max_diff(out, ref), 1);

    /* a fully opaque RGBA picture is read as it is, light or dark */
    Bytes opaque;
    for (int i = 0; i < W * H; i++) opaque.insert(opaque.end(), {ref_px[i], ref_px[i], ref_px[i], 255});
    EXPECT_EQ(mnist("opaque.png", PNG_COLOR_TYPE_RGB_ALPHA, opaque), ref);
    /* nothing opaque at all is a blank page */
    Bytes clear(W * H * 4, 0);
    std::string p = dir / "clear.png";
    write_bytes(p, png_encode(W, H, std::vector<unsigned>(clear.begin(), clear.end()),
                              [] { PngOptions o; o.color_type = PNG_COLOR_TYPE_RGB_ALPHA; return o; }()));
    Bytes o784(784);
    EXPECT_EQ(cnn_image_load_mnist(p.c_str(), o784.data()), CNN_ERR_FORMAT);
    EXPECT_NE(std::string(cnn_errmsg()).find("no ink"), std::string::npos) << cnn_errmsg();

    /* the rule itself, on two pixels: light opaque content goes over black */
    uint8_t two[8] = {255, 255, 255, 255, 9, 9, 9, 0};
    cnn_image img = {2, 1, 4, two};
    uint8_t g[2];
    ASSERT_EQ(cnn_image_to_gray(&img, g), CNN_OK);
    EXPECT_EQ(g[0], 255);
    EXPECT_EQ(g[1], 0);
    two[0] = two[1] = two[2] = 30; /* dark content: over white */
    ASSERT_EQ(cnn_image_to_gray(&img, g), CNN_OK);
    EXPECT_EQ(g[0], 30);
    EXPECT_EQ(g[1], 255);
}

TEST(ImageDecode, PaletteDigitsAreNotBlank)
{
    /* dark blue ink on cream paper through palettes of every depth: the
     * same field as the grey picture */
    const int W = 50, H = 70;
    Bytes idx(W * H, 0);
    for (int y = 8; y < 62; y++)
        for (int x = 22; x < 29; x++) idx[y * W + x] = 1; /* a "1" ... */
    for (int x = 14; x < 29; x++) idx[8 * W + x] = idx[9 * W + x] = 1; /* ... with a flag */
    TempDir dir;
    Bytes grey(W * H);
    for (int i = 0; i < W * H; i++) grey[i] = idx[i] ? 40 : 235;
    std::string gp = dir / "grey.png";
    write_bytes(gp, png_encode(W, H, std::vector<unsigned>(grey.begin(), grey.end()), PngOptions{}));
    Bytes ref(784);
    ASSERT_EQ(cnn_image_load_mnist(gp.c_str(), ref.data()), CNN_OK) << cnn_errmsg();
    for (int depth : {1, 2, 4, 8}) {
        SCOPED_TRACE("palette depth " + std::to_string(depth));
        PngOptions o;
        o.color_type = PNG_COLOR_TYPE_PALETTE;
        o.bit_depth = depth;
        o.palette = {{235, 235, 235}, {40, 40, 40}}; /* luma equal to the grey picture's */
        std::string p = dir / ("pal" + std::to_string(depth) + ".png");
        write_bytes(p, png_encode(W, H, std::vector<unsigned>(idx.begin(), idx.end()), o));
        Bytes out(784);
        ASSERT_EQ(cnn_image_load_mnist(p.c_str(), out.data()), CNN_OK) << cnn_errmsg();
        EXPECT_EQ(out, ref);
    }
}

/* ---------------------------------------------------------- work limits */

namespace {

/* CPU seconds of this thread: what the decoding costs, however busy the
 * machine is. */
double thread_seconds()
{
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Decode `file` (written to disk) and say how long it took. */
cnn_status timed_decode(const std::string &path, const Bytes &file, double *cpu, double *wall,
                        std::string *msg)
{
    write_bytes(path, file);
    auto t0 = std::chrono::steady_clock::now();
    double c0 = thread_seconds();
    cnn_image img;
    cnn_status s = cnn_image_decode_file(path.c_str(), &img);
    *cpu = thread_seconds() - c0;
    *wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    *msg = cnn_errmsg();
    if (s == CNN_OK) cnn_image_free(&img);
    return s;
}

int count_scans(const Bytes &b)
{
    int sos = 0;
    for (size_t i = 0; i + 1 < b.size(); i++) sos += b[i] == 0xFF && b[i + 1] == 0xDA;
    return sos;
}

}  // namespace

TEST(ImageDecode, JpegWithThousandsOfScansIsRefusedQuickly)
{
    TempDir dir;
    double cpu, wall;
    std::string msg;
    /* libjpeg's own encoder, the longest valid progression: every
     * coefficient of every component in its own scans, sent one bit at a
     * time (Al = 10 .. 0): 11 DC scans and 3 x 63 x 11 AC scans. */
    std::vector<jpeg_scan_info> script;
    for (int al = 10; al >= 0; al--)
        script.push_back({3, {0, 1, 2, 0}, 0, 0, al == 10 ? 0 : al + 1, al});
    for (int comp = 0; comp < 3; comp++)
        for (int k = 1; k < 64; k++)
            for (int al = 10; al >= 0; al--)
                script.push_back({1, {comp, 0, 0, 0}, k, k, al == 10 ? 0 : al + 1, al});
    const int w = 256, h = 256;
    Bytes rgb;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            rgb.insert(rgb.end(), {(uint8_t)(x ^ y), (uint8_t)(x * 3 + y), (uint8_t)(y * 5 - x)});
    JpegOptions o;
    o.in_space = JCS_RGB;
    o.scans = script;
    Bytes encoded = jpeg_encode(w, h, rgb, o);
    ASSERT_FALSE(encoded.empty());
    EXPECT_EQ(count_scans(encoded), 2090);
    std::string p = dir / "many-scans.jpg";
    EXPECT_EQ(timed_decode(p, encoded, &cpu, &wall, &msg), CNN_ERR_FORMAT);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("more than 500 scans"), std::string::npos) << msg;
    EXPECT_LT(cpu, 1.0);
    std::printf("[          ] %dx%d, 2090 scans (libjpeg): refused in %.3f s CPU, %.3f s wall: %s\n",
                w, h, cpu, wall, msg.c_str());

    /* The same progression by hand for a flat 2048x2048 picture: 62 KB
     * that take libjpeg 1.3 s of CPU to decode in full (7.9 s at 4096x4096).
     * The work budget (pixels x scans) stops it after 256 scans. */
    Bytes flat = jpeg_flat_many_scans(2048, 2048);
    EXPECT_EQ(count_scans(flat), 2080);
    p = dir / "flat-many-scans.jpg";
    EXPECT_EQ(timed_decode(p, flat, &cpu, &wall, &msg), CNN_ERR_FORMAT);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("2048x2048 progressive JPEG with more than 256 scans"), std::string::npos)
        << msg;
    EXPECT_LT(cpu, 1.0);
    std::printf("[          ] 2048x2048, 2080 scans (by hand): refused in %.3f s CPU, %.3f s wall\n",
                cpu, wall);
    /* and the hand-made file is a valid JPEG: plain libjpeg reads all its
     * scans without a warning */
    int scans;
    long warnings;
    EXPECT_TRUE(jpeg_plain_decode(jpeg_flat_many_scans(64, 48), &scans, &warnings));
    EXPECT_EQ(scans, 2080);
    EXPECT_EQ(warnings, 0);

    /* the same picture in libjpeg's standard progression (10 scans) is fine */
    JpegOptions normal;
    normal.in_space = JCS_RGB;
    normal.progressive = true;
    Bytes ten = jpeg_encode(w, h, rgb, normal);
    EXPECT_EQ(count_scans(ten), 10);
    Decoded d = decode(ten);
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    EXPECT_EQ(d.w, w);
}

/* ------------------------------------------------------ damaged files */

TEST(ImageDecode, TruncatedOrDamagedPngAndJpegAreRefusedNamingTheFile)
{
    const int w = 40, h = 30;
    Bytes grey;
    for (int i = 0; i < w * h; i++) grey.push_back((uint8_t)(i * 13 % 256));
    std::vector<unsigned> s(grey.begin(), grey.end());
    PngOptions interlaced;
    interlaced.interlace = true;
    PngOptions pal;
    pal.color_type = PNG_COLOR_TYPE_PALETTE;
    for (int i = 0; i < 256; i++) pal.palette.push_back({(uint8_t)i, (uint8_t)i, (uint8_t)i});
    pal.palette_alpha = {0, 128};
    JpegOptions base, prog;
    prog.progressive = true;
    prog.in_space = JCS_RGB;
    Bytes rgb;
    for (uint8_t v : grey) rgb.insert(rgb.end(), {v, (uint8_t)(255 - v), (uint8_t)(v / 2)});
    struct {
        const char *what;
        Bytes file;
        bool png;
    } files[] = {
        {"png", png_encode(w, h, s, PngOptions{}), true},
        {"interlaced png", png_encode(w, h, s, interlaced), true},
        {"palette png with tRNS", png_encode(w, h, s, pal), true},
        {"baseline jpeg", jpeg_encode(w, h, grey, base), false},
        {"progressive jpeg", jpeg_encode(w, h, rgb, prog), false},
    };
    const char *name = "/some/dir/picture-name";
    for (auto &f : files) {
        SCOPED_TRACE(f.what);
        ASSERT_FALSE(f.file.empty());
        ASSERT_EQ(decode(f.file, name).status, CNN_OK);
        /* cut anywhere: refused, never a crash, never a picture */
        for (size_t n = 1; n < f.file.size(); n += (n < 64 ? 1 : 7)) {
            Decoded d = decode(Bytes(f.file.begin(), f.file.begin() + (long)n), name);
            EXPECT_EQ(d.status, CNN_ERR_FORMAT) << "cut at " << n << ": " << d.msg;
            EXPECT_NE(d.msg.find(name), std::string::npos) << d.msg;
        }
        /* one byte changed anywhere: a PNG's CRCs catch it; a JPEG may still
         * decode (to other pixels) or be refused, never anything else */
        for (size_t i = 0; i < f.file.size(); i += 3) {
            Bytes bad = f.file;
            bad[i] ^= 0x5A;
            Decoded d = decode(bad, name);
            if (f.png)
                EXPECT_EQ(d.status, CNN_ERR_FORMAT) << "byte " << i << ": " << d.msg;
            else
                EXPECT_TRUE(d.status == CNN_OK || d.status == CNN_ERR_FORMAT)
                    << "byte " << i << ": " << d.msg;
            if (d.status) EXPECT_NE(d.msg.find(name), std::string::npos) << d.msg;
        }
    }
    /* the messages say what is wrong */
    Bytes png = files[0].file, jpg = files[3].file;
    Decoded d = decode(Bytes(png.begin(), png.begin() + (long)png.size() / 2), name);
    EXPECT_NE(d.msg.find("corrupt PNG"), std::string::npos) << d.msg;
    d = decode(Bytes(jpg.begin(), jpg.begin() + (long)jpg.size() / 2), name);
    EXPECT_NE(d.msg.find("truncated JPEG"), std::string::npos) << d.msg;
    Bytes garbled = jpg;
    for (size_t i = garbled.size() / 2; i < garbled.size() - 2; i++) garbled[i] = (uint8_t)(i * 131);
    d = decode(garbled, name);
    EXPECT_EQ(d.status, CNN_ERR_FORMAT);
    EXPECT_NE(d.msg.find("JPEG"), std::string::npos) << d.msg;
    /* a JPEG that is only its start and end */
    d = decode(Bytes{0xFF, 0xD8, 0xFF, 0xD9}, name);
    EXPECT_EQ(d.status, CNN_ERR_FORMAT);
    EXPECT_NE(d.msg.find("corrupt JPEG"), std::string::npos) << d.msg;
}

TEST(ImageDecode, Arguments)
{
    cnn_image img;
    uint8_t one = 0;
    EXPECT_EQ(cnn_image_decode_memory(&one, 1, "x", nullptr), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_decode_memory(nullptr, 5, "x", &img), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_decode_memory(&one, 0, "x", &img), CNN_ERR_FORMAT);
    EXPECT_EQ(img.px, nullptr);
    EXPECT_EQ(cnn_image_decode_file(nullptr, &img), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_to_gray(nullptr, &one), CNN_ERR_ARG);
    cnn_image_free(nullptr);
    cnn_image_free(&img);
}

TEST(ImageDecode, GridPngWriterRoundTrips)
{
    const int w = 37, h = 21;
    Bytes px;
    for (int i = 0; i < w * h; i++) px.push_back((uint8_t)(i * 7));
    TempDir dir;
    std::string p = dir / "out.png";
    FILE *f = fopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(cnn_png_write_gray(f, p.c_str(), px.data(), w, h), CNN_OK) << cnn_errmsg();
    fclose(f);
    Decoded d = decode(read_bytes(p));
    ASSERT_EQ(d.status, CNN_OK) << d.msg;
    EXPECT_EQ(d.channels, 1);
    EXPECT_EQ(d.px, px);
    /* a write error is reported, not a crash: /dev/full takes nothing */
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        setvbuf(full, nullptr, _IONBF, 0);
        EXPECT_EQ(cnn_png_write_gray(full, "/dev/full", px.data(), w, h), CNN_ERR_IO);
        EXPECT_NE(std::string(cnn_errmsg()).find("/dev/full"), std::string::npos) << cnn_errmsg();
        fclose(full);
    }
}
