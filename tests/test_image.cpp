/* test_image.cpp — loading a user's picture and making it look like MNIST:
 * every format gives the same 28x28 result, polarity does not matter, the
 * digit fits 20x20 with its centre of mass at (14, 14), and bad files are
 * refused with a message naming them. */
#include "imgfiles.h"
#include "testutil.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {


struct Gray {
    int w, h;
    Bytes px;
};

double seg_dist(double px, double py, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay;
    double t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return std::sqrt(ex * ex + ey * ey);
}

/* A "7" drawn with an antialiased pen of radius r, dark ink on light paper,
 * large and well off the centre of a 240x180 canvas. */
Gray draw_seven(int paper = 230, int ink = 25)
{
    Gray g{240, 180, Bytes(240 * 180)};
    const double seg[2][4] = {{120, 30, 220, 30}, {220, 30, 160, 165}};
    const double r = 9;
    for (int y = 0; y < g.h; y++)
        for (int x = 0; x < g.w; x++) {
            double d = 1e9;
            for (auto &s : seg) d = std::min(d, seg_dist(x + 0.5, y + 0.5, s[0], s[1], s[2], s[3]));
            double cover = std::clamp(r + 0.5 - d, 0.0, 1.0);
            g.px[y * g.w + x] = (uint8_t)std::lround(paper + (ink - paper) * cover);
        }
    return g;
}

Gray inverted(const Gray &g)
{
    Gray o = g;
    for (auto &v : o.px) v = (uint8_t)(255 - v);
    return o;
}

void write_file(const std::string &path, const Bytes &b)
{
    write_bytes(path, b);
    ASSERT_EQ(read_bytes(path), b) << path;
}

Bytes read_file(const std::string &path) { return read_bytes(path); }

/* An 8-bit PNG of 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels. */
std::string write_png_channels(const TempDir &d, const std::string &name, int w, int h,
                               int channels, const Bytes &px)
{
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    PngOptions o;
    o.color_type = types[channels];
    Bytes b = png_encode(w, h, std::vector<unsigned>(px.begin(), px.end()), o);
    EXPECT_FALSE(b.empty()) << name;
    std::string p = d / name;
    write_bytes(p, b);
    return p;
}

std::string write_png(const TempDir &d, const std::string &name, const Gray &g)
{
    return write_png_channels(d, name, g.w, g.h, 1, g.px);
}

std::string write_jpeg(const TempDir &d, const std::string &name, const Gray &g, int quality)
{
    JpegOptions o;
    o.quality = quality;
    Bytes b = jpeg_encode(g.w, g.h, g.px, o);
    EXPECT_FALSE(b.empty()) << name;
    std::string p = d / name;
    write_bytes(p, b);
    return p;
}

std::string write_bmp(const TempDir &d, const std::string &name, const Gray &g)
{
    Bytes rgb(g.px.size() * 3);
    for (size_t i = 0; i < rgb.size(); i++) rgb[i] = g.px[i / 3];
    std::string p = d / name;
    write_bytes(p, bmp24(g.w, g.h, rgb));
    return p;
}

std::string write_pgm(const TempDir &d, const std::string &name, const Gray &g, bool ascii)
{
    std::string p = d / name;
    std::string head = std::string(ascii ? "P2" : "P5") + "\n# made by test_image\n" +
                       std::to_string(g.w) + " " + std::to_string(g.h) + "\n255\n";
    Bytes b(head.begin(), head.end());
    if (ascii) {
        for (size_t i = 0; i < g.px.size(); i++) {
            std::string v = std::to_string(g.px[i]) + ((i + 1) % 17 ? " " : "\n");
            b.insert(b.end(), v.begin(), v.end());
        }
    } else {
        b.insert(b.end(), g.px.begin(), g.px.end());
    }
    write_file(p, b);
    return p;
}

struct Result {
    cnn_status status;
    std::string msg;
    Bytes out;
};

Result load(const std::string &path)
{
    Result r;
    r.out.assign(28 * 28, 0x77);
    r.status = cnn_image_load_mnist(path.c_str(), r.out.data());
    r.msg = cnn_errmsg();
    return r;
}

/* What the MNIST field must look like: an MNIST-like digit, the centre of
 * mass within half a pixel of (14, 14), on an exactly black background. */
void expect_mnist_like(const Bytes &o)
{
    tu_expect_mnist_like(o, 0.5);
    EXPECT_EQ(o[0], 0);
    EXPECT_EQ(o[27], 0);
    EXPECT_EQ(o[27 * 28], 0);
}

void expect_refused(const std::string &path, cnn_status code, const std::string &what)
{
    Result r = load(path);
    EXPECT_EQ(r.status, code) << r.msg;
    EXPECT_NE(r.msg.find(path), std::string::npos) << "message does not name the file: " << r.msg;
    EXPECT_NE(r.msg.find(what), std::string::npos) << "expected \"" << what << "\" in: " << r.msg;
}

}  // namespace

/* --------------------------------------------------------------- results */

TEST(Image, PngDarkOnLightBecomesMnistLike)
{
    TempDir d;
    Result r = load(write_png(d, "seven.png", draw_seven()));
    ASSERT_EQ(r.status, CNN_OK) << r.msg;
    expect_mnist_like(r.out);
    /* the 7's bar is at the top: the top rows hold more ink than the bottom */
    long top = 0, bottom = 0;
    for (int x = 0; x < 28; x++) {
        for (int y = 4; y < 10; y++) top += r.out[y * 28 + x];
        for (int y = 18; y < 24; y++) bottom += r.out[y * 28 + x];
    }
    EXPECT_GT(top, bottom);
}

TEST(Image, PolarityDoesNotMatter)
{
    TempDir d;
    Result dark = load(write_png(d, "dark.png", draw_seven()));
    Result light = load(write_png(d, "light.png", inverted(draw_seven())));
    ASSERT_EQ(dark.status, CNN_OK) << dark.msg;
    ASSERT_EQ(light.status, CNN_OK) << light.msg;
    EXPECT_EQ(dark.out, light.out);
    /* and low-contrast grey paper with grey pencil gives the same shape */
    Result grey = load(write_png(d, "grey.png", draw_seven(170, 100)));
    ASSERT_EQ(grey.status, CNN_OK) << grey.msg;
    expect_mnist_like(grey.out);
    int differ = 0;
    for (int i = 0; i < 784; i++) differ += std::abs(grey.out[i] - dark.out[i]) > 8;
    EXPECT_LE(differ, 10);
}

TEST(Image, EveryFormatGivesTheSameField)
{
    TempDir d;
    Gray g = draw_seven();
    Result png = load(write_png(d, "seven.png", g));
    ASSERT_EQ(png.status, CNN_OK) << png.msg;

    std::string bmp = write_bmp(d, "seven.bmp", g);
    /* ink on a transparent background, as drawing programs save it: black
     * with alpha = darkness, which over white paper is the same picture */
    Bytes rgba(g.px.size() * 4);
    for (size_t i = 0; i < g.px.size(); i++) {
        rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = 0;
        rgba[4 * i + 3] = (uint8_t)(255 - g.px[i]);
    }
    std::string alpha = write_png_channels(d, "alpha.png", g.w, g.h, 4, rgba);
    /* the same as grey + alpha */
    Bytes ga(g.px.size() * 2);
    for (size_t i = 0; i < g.px.size(); i++) ga[2 * i] = 0, ga[2 * i + 1] = (uint8_t)(255 - g.px[i]);
    std::string gray_alpha = write_png_channels(d, "gray-alpha.png", g.w, g.h, 2, ga);
    /* colour: a grey picture stored as RGB */
    Bytes rgb(g.px.size() * 3);
    for (size_t i = 0; i < rgb.size(); i++) rgb[i] = g.px[i / 3];
    std::string colour = write_png_channels(d, "colour.png", g.w, g.h, 3, rgb);

    for (const std::string &p : {write_pgm(d, "seven.pgm", g, false),
                                 write_pgm(d, "seven-ascii.pgm", g, true), bmp, alpha,
                                 gray_alpha, colour}) {
        SCOPED_TRACE(p);
        Result r = load(p);
        ASSERT_EQ(r.status, CNN_OK) << r.msg;
        int differ = 0;
        for (int i = 0; i < 784; i++) differ += std::abs(r.out[i] - png.out[i]) > 1;
        EXPECT_EQ(differ, 0);
    }

    std::string jpg = write_jpeg(d, "seven.jpg", g, 90);
    Result j = load(jpg);
    ASSERT_EQ(j.status, CNN_OK) << j.msg;
    expect_mnist_like(j.out);
    double mad = 0;
    for (int i = 0; i < 784; i++) mad += std::abs(j.out[i] - png.out[i]) / 784.0;
    EXPECT_LT(mad, 4.0) << "JPEG artefacts should barely show after shrinking";
}

TEST(Image, ThinTallAndTinyDigits)
{
    /* a "1": 6 px wide and 120 tall, at the left edge of a wide canvas */
    Gray one{300, 160, Bytes(300 * 160, 255)};
    for (int y = 20; y < 140; y++)
        for (int x = 4; x < 10; x++) one.px[y * 300 + x] = 0;
    Bytes out(784);
    ASSERT_EQ(cnn_image_preprocess_mnist(one.px.data(), one.w, one.h, out.data()), CNN_OK)
        << cnn_errmsg();
    expect_mnist_like(out);
    int cols = 0;
    for (int x = 0; x < 28; x++) {
        int any = 0;
        for (int y = 0; y < 28; y++) any |= out[y * 28 + x];
        cols += any != 0;
    }
    EXPECT_LE(cols, 2) << "a 6:120 stroke is 1 pixel wide at 20 pixels tall";

    /* a plus sign 7 pixels across on a 12x12 image is enlarged to 20x20 */
    Gray plus{12, 12, Bytes(144, 0)};
    for (int i = 2; i < 9; i++) plus.px[5 * 12 + i] = plus.px[i * 12 + 5] = 200;
    ASSERT_EQ(cnn_image_preprocess_mnist(plus.px.data(), 12, 12, out.data()), CNN_OK)
        << cnn_errmsg();
    expect_mnist_like(out);
    EXPECT_EQ(out[14 * 28 + 14], 255);
}

TEST(Image, RealMnistDigitsComeBackAlmostUnchanged)
{
    /* MNIST was made by this very procedure, so running its images through
     * it again must change them little. */
    const char *src = getenv("CNN_SOURCE_DIR");
    std::string dir = std::string(src ? src : CNN_SOURCE_DIR) + "/data/mnist";
    std::string images = dir + "/t10k-images-idx3-ubyte", labels = dir + "/t10k-labels-idx1-ubyte";
    if (!fs::exists(images)) GTEST_SKIP() << "no MNIST in " << dir;
    cnn_dataset ds;
    ASSERT_EQ(cnn_idx_load(images.c_str(), labels.c_str(), &ds), CNN_OK) << cnn_errmsg();
    const int n = 200;
    double corr_sum = 0;
    int moved = 0;
    for (int k = 0; k < n; k++) {
        const uint8_t *img = ds.images + (size_t)k * 784;
        Bytes out(784);
        ASSERT_EQ(cnn_image_preprocess_mnist(img, 28, 28, out.data()), CNN_OK) << k;
        double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
        for (int i = 0; i < 784; i++) {
            double a = img[i], b = out[i];
            sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
        }
        double cov = sab - sa * sb / 784, va = saa - sa * sa / 784, vb = sbb - sb * sb / 784;
        double corr = cov / std::sqrt(va * vb);
        corr_sum += corr;
        moved += corr < 0.8;
    }
    cnn_dataset_free(&ds);
    EXPECT_GT(corr_sum / n, 0.95); /* measured 0.99 over the 10000 test images */
    EXPECT_LT(moved, n / 20);
}

/* ------------------------------------------------------------ rejections */

TEST(Image, BlankImageHasNoInk)
{
    TempDir d;
    Gray white{64, 48, Bytes(64 * 48, 240)};
    expect_refused(write_png(d, "white.png", white), CNN_ERR_FORMAT, "no ink found");
    /* faint noise is not ink either */
    cnn_rng r;
    cnn_rng_seed(&r, 3);
    for (auto &v : white.px) v = (uint8_t)(235 + cnn_rng_below(&r, 10));
    expect_refused(write_png(d, "noise.png", white), CNN_ERR_FORMAT, "no ink found");
}

TEST(Image, BadFilesAreRefusedNamingThem)
{
    TempDir d;
    Gray g = draw_seven();
    std::string png = write_png(d, "good.png", g);
    Bytes pb = read_file(png);

    std::string empty = d / "empty.png";
    write_file(empty, {});
    expect_refused(empty, CNN_ERR_FORMAT, "empty file");

    std::string half = d / "half.png";
    write_file(half, Bytes(pb.begin(), pb.begin() + pb.size() / 2));
    expect_refused(half, CNN_ERR_FORMAT, "corrupt PNG");

    std::string header_only = d / "header-only.png";
    write_file(header_only, Bytes(pb.begin(), pb.begin() + 33));
    expect_refused(header_only, CNN_ERR_FORMAT, "corrupt PNG");

    Bytes garbled = pb;
    for (size_t i = 40; i < garbled.size(); i++) garbled[i] = (uint8_t)(i * 131);
    std::string corrupt = d / "corrupt.png";
    write_file(corrupt, garbled);
    expect_refused(corrupt, CNN_ERR_FORMAT, "corrupt PNG");

    std::string text = d / "notes.png";
    write_file(text, Bytes({'h', 'e', 'l', 'l', 'o', '\n'}));
    expect_refused(text, CNN_ERR_FORMAT, "not a PNG, JPEG, BMP, GIF or PGM/PPM file");

    std::string jpg = write_jpeg(d, "good.jpg", g, 90);
    Bytes jb = read_file(jpg);
    std::string jcut = d / "cut.jpg";
    write_file(jcut, Bytes(jb.begin(), jb.begin() + jb.size() * 2 / 3));
    expect_refused(jcut, CNN_ERR_FORMAT, "truncated JPEG");

    std::string bmp = write_bmp(d, "good.bmp", g);
    Bytes bb = read_file(bmp);
    std::string bcut = d / "cut.bmp";
    write_file(bcut, Bytes(bb.begin(), bb.end() - 1000));
    expect_refused(bcut, CNN_ERR_FORMAT, "truncated BMP");

    std::string pgm = write_pgm(d, "good.pgm", g, false);
    Bytes gb = read_file(pgm);
    std::string pcut = d / "cut.pgm";
    write_file(pcut, Bytes(gb.begin(), gb.end() - 240));
    expect_refused(pcut, CNN_ERR_FORMAT, "truncated: 240x180 P5 image needs 43200 bytes");

    std::string apgm = write_pgm(d, "good-ascii.pgm", g, true);
    Bytes ab = read_file(apgm);
    std::string acut = d / "cut-ascii.pgm";
    write_file(acut, Bytes(ab.begin(), ab.begin() + ab.size() * 9 / 10));
    expect_refused(acut, CNN_ERR_FORMAT, "truncated: P2 file ends after");

    std::string aclaim = d / "claims-much.pgm";
    const char *claim = "P2 4000 4000 255\n1 2 3\n";
    write_file(aclaim, Bytes(claim, claim + strlen(claim)));
    expect_refused(aclaim, CNN_ERR_FORMAT, "truncated: 4000x4000 P2 image needs at least");

    std::string abad = d / "bad-ascii.pgm";
    write_file(abad, Bytes({'P', '2', ' ', '2', ' ', '1', ' ', '2', '5', '5', ' ', '1', ' ', 'x'}));
    expect_refused(abad, CNN_ERR_FORMAT, "corrupt P2 data at pixel 1");

    std::string zero = d / "zero.pgm";
    write_file(zero, Bytes({'P', '5', ' ', '0', ' ', '5', ' ', '2', '5', '5', '\n'}));
    expect_refused(zero, CNN_ERR_FORMAT, "zero-size image");

    std::string dir = d / "folder.png";
    fs::create_directory(dir);
    expect_refused(dir, CNN_ERR_IO, "is a directory");
    expect_refused(d / "missing.png", CNN_ERR_IO, "cannot open");
}

TEST(Image, HugeImagesAreRefusedBeforeDecoding)
{
    TempDir d;
    /* a PNG header announcing 20000 x 20000 pixels, and no pixel data */
    auto png_header = [](uint32_t w, uint32_t h) {
        Bytes ihdr = {'I', 'H', 'D', 'R'};
        for (uint32_t v : {w, h})
            for (int s = 24; s >= 0; s -= 8) ihdr.push_back((uint8_t)(v >> s));
        ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});
        uint32_t crc = (uint32_t)crc32(0, ihdr.data(), (uInt)ihdr.size());
        Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13};
        for (uint8_t b : ihdr) png.push_back(b);
        for (int s = 24; s >= 0; s -= 8) png.push_back((uint8_t)(crc >> s));
        /* an empty IDAT and IEND, each with its CRC */
        for (const char *t : {"IDAT", "IEND"}) {
            for (int i = 0; i < 4; i++) png.push_back(0);
            for (int i = 0; i < 4; i++) png.push_back((uint8_t)t[i]);
            uint32_t c = (uint32_t)crc32(0, (const Bytef *)t, 4);
            for (int s = 24; s >= 0; s -= 8) png.push_back((uint8_t)(c >> s));
        }
        return png;
    };
    std::string big = d / "big.png";
    write_file(big, png_header(20000, 20000));
    expect_refused(big, CNN_ERR_FORMAT, "image too large (20000x20000");
    /* 10000 x 10000 is within the side limit but over 64 Mpixel */
    write_file(big, png_header(10000, 10000));
    expect_refused(big, CNN_ERR_FORMAT, "image too large (10000x10000");
    std::string pgm = d / "big.pgm";
    const char *h = "P5 100000 3 255\n";
    write_file(pgm, Bytes(h, h + strlen(h)));
    expect_refused(pgm, CNN_ERR_FORMAT, "image too large (100000x3");
}

TEST(Image, PreprocessArguments)
{
    Bytes img(100, 0), out(784);
    EXPECT_EQ(cnn_image_preprocess_mnist(nullptr, 10, 10, out.data()), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_preprocess_mnist(img.data(), 0, 10, out.data()), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_preprocess_mnist(img.data(), 10, -1, out.data()), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_preprocess_mnist(img.data(), 10, 10, nullptr), CNN_ERR_ARG);
    EXPECT_EQ(cnn_image_preprocess_mnist(img.data(), 10, 10, out.data()), CNN_ERR_FORMAT);
    EXPECT_NE(std::string(cnn_errmsg()).find("no ink found"), std::string::npos);
    /* one pixel of ink on a 1x1 ... 1xN image still works */
    Bytes line = {0, 0, 255, 0};
    ASSERT_EQ(cnn_image_preprocess_mnist(line.data(), 4, 1, out.data()), CNN_OK) << cnn_errmsg();
    int lit = 0;
    for (uint8_t v : out) lit += v != 0;
    EXPECT_EQ(lit, 20 * 20) << "a single pixel is scaled up to fill the 20x20 box";
    EXPECT_EQ(cnn_image_load_mnist(nullptr, out.data()), CNN_ERR_ARG);
}
