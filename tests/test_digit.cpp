/* test_digit.cpp — the digit preparation on photographs (src/io/digit.c):
 * pages drawn here with the troubles of a phone photo, each compared with
 * the same digit drawn cleanly. A small dark digit on a big unevenly lit
 * page is found and centred; a shadow across the digit, specks, the table
 * beyond the paper and a line along the frame change nothing; a faint thin
 * pencil stroke survives and a broad marker's comes out at MNIST's width;
 * a photo stored turned, with the EXIF tag that turns it back, is
 * prepared upright. */
#include "imgfiles.h"
#include "testutil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace {

struct Page {
    int w, h;
    std::vector<double> px; /* grey levels 0..255 */
};

struct Seg {
    double ax, ay, bx, by;
};

double seg_dist(double px, double py, const Seg &s)
{
    double dx = s.bx - s.ax, dy = s.by - s.ay;
    double t = ((px - s.ax) * dx + (py - s.ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = s.ax + t * dx - px, ey = s.ay + t * dy - py;
    return std::sqrt(ex * ex + ey * ey);
}

/* A "4" (it has a closed-ish shape and a crossing) of height `size` with
 * its top-left corner at (x, y): three strokes. */
std::vector<Seg> four(double x, double y, double size)
{
    const double u = size;
    return {{x + 0.55 * u, y, x, y + 0.65 * u},
            {x, y + 0.65 * u, x + 0.75 * u, y + 0.65 * u},
            {x + 0.55 * u, y, x + 0.55 * u, y + u}};
}

/* A w x h page of paper with the strokes drawn by a round pen of radius r
 * (antialiased), everything multiplied by light(x, y). */
Page draw(int w, int h, const std::vector<Seg> &segs, double r, double paper, double ink,
          const std::function<double(int, int)> &light = nullptr)
{
    Page p{w, h, std::vector<double>((size_t)w * h)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double d = 1e9;
            for (const Seg &s : segs) d = std::min(d, seg_dist(x + 0.5, y + 0.5, s));
            double cover = std::clamp(r + 0.5 - d, 0.0, 1.0);
            double v = paper + (ink - paper) * cover;
            p.px[(size_t)y * w + x] = light ? v * light(x, y) : v;
        }
    return p;
}

Bytes bytes_of(const Page &p)
{
    Bytes b(p.px.size());
    for (size_t i = 0; i < b.size(); i++) b[i] = (uint8_t)std::clamp(std::lround(p.px[i]), 0L, 255L);
    return b;
}

Bytes prepare(const Page &p)
{
    Bytes out(784, 0x77);
    Bytes in = bytes_of(p);
    EXPECT_EQ(cnn_image_preprocess_mnist(in.data(), p.w, p.h, out.data()), CNN_OK) << cnn_errmsg();
    return out;
}

double correlation(const Bytes &a, const Bytes &b)
{
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (int i = 0; i < 784; i++) {
        double x = a[i], y = b[i];
        sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
    }
    double cov = sab - sa * sb / 784, va = saa - sa * sa / 784, vb = sbb - sb * sb / 784;
    return cov / std::sqrt(va * vb);
}

/* Laid out like an MNIST digit, the centre of mass within a pixel of (14, 14). */
void expect_mnist_like(const Bytes &o) { tu_expect_mnist_like(o, 1.0); }

/* Stroke width in the 28x28 output: twice the area over the perimeter of
 * the pixels at half strength or more (MNIST: 2.1 to 4.1 for 90% of its
 * digits). */
double out_stroke_width(const Bytes &o)
{
    long area = 0, edge = 0;
    auto on = [&](int x, int y) { return x >= 0 && y >= 0 && x < 28 && y < 28 && o[y * 28 + x] >= 128; };
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            if (!on(x, y)) continue;
            area++;
            edge += !(on(x - 1, y) && on(x + 1, y) && on(x, y - 1) && on(x, y + 1));
        }
    return edge ? 2.0 * area / edge : 0;
}

/* The reference: the same "4" as pen on an evenly lit page. */
Bytes clean_four(double size)
{
    int side = (int)(size * 1.6);
    return prepare(draw(side, side, four(size * 0.3, size * 0.3, size), size * 0.06, 225, 30));
}

}  // namespace

TEST(Digit, SmallDarkDigitOnAnUnevenlyLitPageIsFoundAndCentred)
{
    /* a 60-pixel "4" on an 800x600 page lit from the right: the left edge at
     * 30% of the right's brightness, vignetted corners; the paper on the
     * left is darker than the ink on the right */
    auto light = [](int x, int y) {
        double g = 0.3 + 0.7 * x / 799.0;
        double dx = (x - 400) / 400.0, dy = (y - 300) / 300.0;
        return g * (1 - 0.35 * std::min(1.0, (dx * dx + dy * dy) / 2));
    };
    Page p = draw(800, 600, four(250, 330, 60), 3.6, 230, 40, light);
    Bytes out = prepare(p);
    expect_mnist_like(out);
    EXPECT_GT(correlation(out, clean_four(60)), 0.9);
}

TEST(Digit, ShadowAcrossTheDigitChangesNothing)
{
    /* a hard shadow (45% of the light) over the lower right of the page,
     * its edge cutting the digit */
    auto shadow = [](int x, int y) { return x + 0.6 * y > 330 ? 0.45 : 1.0; };
    Page p = draw(400, 320, four(110, 70, 180), 10.8, 225, 30, shadow);
    Bytes out = prepare(p);
    expect_mnist_like(out);
    EXPECT_GT(correlation(out, clean_four(180)), 0.9);
}

TEST(Digit, SpecksPaperEdgeAndFrameLineAreIgnored)
{
    Page p = draw(480, 360, four(170, 110, 130), 7.8, 225, 30);
    /* dark specks of dirt away from the digit */
    cnn_rng r;
    cnn_rng_seed(&r, 5);
    for (int k = 0; k < 60; k++) {
        int cx = (int)cnn_rng_below(&r, 480), cy = (int)cnn_rng_below(&r, 360);
        if (cx > 140 && cx < 300 && cy > 80 && cy < 270) continue;
        for (int y = cy - 2; y <= cy + 2; y++)
            for (int x = cx - 2; x <= cx + 2; x++)
                if (x >= 0 && y >= 0 && x < 480 && y < 360 && (x - cx) * (x - cx) + (y - cy) * (y - cy) <= 5)
                    p.px[(size_t)y * 480 + x] = 40;
    }
    /* the table beyond the paper's left edge, a dark line along the top */
    for (int y = 0; y < 360; y++)
        for (int x = 0; x < 480; x++) {
            if (x < 30 + y / 20) p.px[(size_t)y * 480 + x] = 70;
            if (y < 3) p.px[(size_t)y * 480 + x] = 20;
        }
    Bytes out = prepare(p);
    expect_mnist_like(out);
    EXPECT_GT(correlation(out, clean_four(130)), 0.95);
}

TEST(Digit, FaintThinPencilStrokeSurvives)
{
    /* a 300-pixel "4" drawn with a 2-pixel pencil line 35 grey levels
     * darker than the paper, grainy, on paper with a little noise */
    Page p = draw(420, 420, four(80, 60, 300), 1.0, 215, 180);
    cnn_rng r;
    cnn_rng_seed(&r, 9);
    for (double &v : p.px) {
        double grain = (double)cnn_rng_below(&r, 21) - 10; /* -10..10 */
        v += v < 210 ? 2 * grain : 0.3 * grain;
    }
    Bytes out = prepare(p);
    expect_mnist_like(out);
    /* the line is thickened to a pen's width, not left a faint hairline */
    double width = out_stroke_width(out);
    EXPECT_GE(width, 2.0);
    EXPECT_LE(width, 4.1);
    EXPECT_GT(correlation(out, clean_four(300)), 0.8);
}

TEST(Digit, BroadMarkerStrokeComesOutAtMnistWidth)
{
    /* strokes 61 pixels wide on a digit 261 tall: 4.7 pixels of MNIST's
     * 20-pixel box, more where they meet (MNIST: 2.7 in the median) */
    Page p = draw(380, 380, four(90, 60, 200), 30, 230, 20);
    Bytes out = prepare(p);
    expect_mnist_like(out);
    EXPECT_LE(out_stroke_width(out), 4.6) << "a marker's stroke is thinned towards MNIST's";
    EXPECT_GT(correlation(out, clean_four(200)), 0.8);
}

TEST(Digit, ExifTurnedPhotoIsPreparedUpright)
{
    /* the lit page of the first test, saved as a JPEG upright and as one
     * stored a quarter turn counter-clockwise with orientation 6 (turn it
     * clockwise to show it) */
    auto light = [](int x, int y) { return 0.45 + 0.55 * (x + y) / 1000.0; };
    Page p = draw(500, 400, four(180, 130, 120), 7.2, 230, 40, light);
    Bytes up = bytes_of(p), turned((size_t)p.w * p.h);
    /* stored is h wide and w tall: stored(row i, col j) = upright(row j, col w-1-i) */
    for (int i = 0; i < p.w; i++)
        for (int j = 0; j < p.h; j++) turned[(size_t)i * p.h + j] = up[(size_t)j * p.w + (p.w - 1 - i)];
    TempDir d;
    JpegOptions o;
    o.quality = 92;
    std::string upright = d / "upright.jpg", rotated = d / "rotated.jpg";
    write_bytes(upright, jpeg_encode(p.w, p.h, up, o));
    o.app1 = exif_app1(6, false);
    write_bytes(rotated, jpeg_encode(p.h, p.w, turned, o));
    Bytes a(784), b(784);
    ASSERT_EQ(cnn_image_load_mnist(upright.c_str(), a.data()), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_image_load_mnist(rotated.c_str(), b.data()), CNN_OK) << cnn_errmsg();
    expect_mnist_like(b);
    EXPECT_GT(correlation(a, b), 0.95);
    EXPECT_GT(correlation(b, clean_four(120)), 0.9);
}

TEST(Digit, LightInkOnDarkGroundIsTheSameDigit)
{
    /* chalk on a board: the page of the shadow test, inverted */
    auto shadow = [](int x, int y) { return x + 0.6 * y > 330 ? 0.6 : 1.0; };
    Page p = draw(400, 320, four(110, 70, 180), 10.8, 225, 30, shadow);
    for (double &v : p.px) v = 255 - v;
    Bytes out = prepare(p);
    expect_mnist_like(out);
    EXPECT_GT(correlation(out, clean_four(180)), 0.9);
}
