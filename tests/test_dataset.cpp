/* test_dataset.cpp — the data sources of src/io: the conversion of pictures
 * to a model's input (fit.c), CSV files (csv.c), cache files (cache.c),
 * image-folder trees (imagefolder.c) and finding or rebuilding a source's
 * cache (source.c). Hostile inputs of the same loaders: test_hostile.cpp. */
#include "testutil.h"
extern "C" {
#include "io/dataset.h"
}

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Pixels = std::vector<uint8_t>;

std::string msg() { return cnn_errmsg(); }

void write_file(const std::string &path, const std::string &bytes)
{
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), (std::streamsize)bytes.size());
}

/* A binary PGM of w x h grey pixels. */
std::string pgm(int w, int h, const Pixels &px)
{
    std::string s = "P5\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
    s.append((const char *)px.data(), px.size());
    return s;
}

/* A binary PPM of w x h RGB pixels (interleaved). */
std::string ppm(int w, int h, const Pixels &rgb)
{
    std::string s = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
    s.append((const char *)rgb.data(), rgb.size());
    return s;
}

/* ------------------------------------------------------------------- fit */

TEST(Fit, SameSizeIsAnExactCopy)
{
    Pixels src(28 * 28), out(28 * 28);
    for (size_t i = 0; i < src.size(); i++) src[i] = (uint8_t)(i * 37 % 256);
    for (cnn_prep p : {CNN_PREP_PAD, CNN_PREP_CROP, CNN_PREP_DIGIT}) {
        ASSERT_EQ(cnn_planes_prepare(src.data(), 1, 28, 28, p, 1, 28, 28, out.data()), CNN_OK) << msg();
        EXPECT_EQ(src, out) << cnn_prep_name(p);
    }
    cnn_image img{28, 28, 1, src.data()};
    ASSERT_EQ(cnn_image_prepare(&img, CNN_PREP_PAD, 1, 28, 28, out.data()), CNN_OK) << msg();
    EXPECT_EQ(src, out);
}

TEST(Fit, ShrinkingAveragesAreas)
{
    /* a 4x4 of 2x2 blocks to 2x2: each output is its block's mean */
    Pixels src = {0, 100, 10, 10, 200, 100, 10, 10, 50, 50, 255, 255, 50, 50, 255, 255}, out(4);
    ASSERT_EQ(cnn_planes_prepare(src.data(), 1, 4, 4, CNN_PREP_PAD, 1, 2, 2, out.data()), CNN_OK);
    EXPECT_EQ(out, (Pixels{100, 10, 50, 255}));
    /* stripes one pixel wide shrink to grey, not to aliased stripes */
    Pixels stripes(30 * 30), small(10 * 10);
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 30; x++) stripes[y * 30 + x] = x % 2 ? 255 : 0;
    ASSERT_EQ(cnn_planes_prepare(stripes.data(), 1, 30, 30, CNN_PREP_PAD, 1, 10, 10, small.data()), CNN_OK);
    for (uint8_t v : small) EXPECT_NEAR(v, 127.5, 43); /* 1 or 2 bright of 3 */
}

TEST(Fit, ConstantPicturesStayConstantAtAnySize)
{
    for (int sw : {3, 17, 50, 100})
        for (int sh : {5, 28, 64}) {
            Pixels src((size_t)sw * sh, 77), out(32 * 32);
            ASSERT_EQ(cnn_planes_prepare(src.data(), 1, sh, sw, CNN_PREP_CROP, 1, 32, 32, out.data()), CNN_OK);
            for (uint8_t v : out) ASSERT_EQ(v, 77) << sw << "x" << sh;
        }
}

TEST(Fit, PadKeepsTheAspectAndPadsWithBlack)
{
    /* a white 40x20 picture into 20x20: 20x10 of white, centred, rows 0-4 and 15-19 black */
    Pixels src(40 * 20, 255), out(20 * 20);
    ASSERT_EQ(cnn_planes_prepare(src.data(), 1, 20, 40, CNN_PREP_PAD, 1, 20, 20, out.data()), CNN_OK);
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 20; x++)
            EXPECT_EQ(out[y * 20 + x], y >= 5 && y < 15 ? 255 : 0) << x << "," << y;
}

TEST(Fit, CropTakesTheCentre)
{
    /* 30x10: left third 0, middle third 200, right third 0; crop to 10x10 keeps the middle */
    Pixels src(30 * 10), out(10 * 10);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 30; x++) src[y * 30 + x] = x >= 10 && x < 20 ? 200 : 0;
    ASSERT_EQ(cnn_planes_prepare(src.data(), 1, 10, 30, CNN_PREP_CROP, 1, 10, 10, out.data()), CNN_OK);
    for (uint8_t v : out) EXPECT_EQ(v, 200);
}

TEST(Fit, EnlargingIsBilinear)
{
    Pixels src = {0, 255}, out(4);
    ASSERT_EQ(cnn_planes_prepare(src.data(), 1, 1, 2, CNN_PREP_CROP, 1, 1, 4, out.data()), CNN_OK);
    /* centres at -0.25, 0.25, 0.75, 1.25 of the source: edges repeated */
    EXPECT_EQ(out, (Pixels{0, 64, 191, 255}));
}

TEST(Fit, GreyAndColourConvert)
{
    /* colour to grey: BT.601 luma; grey to colour: copied to R, G, B */
    Pixels rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}; /* 2x2, interleaved */
    cnn_image img{2, 2, 3, rgb.data()};
    Pixels grey(4), colour(12);
    ASSERT_EQ(cnn_image_prepare(&img, CNN_PREP_PAD, 1, 2, 2, grey.data()), CNN_OK);
    EXPECT_EQ(grey, (Pixels{76, 149, 28, 18}));
    ASSERT_EQ(cnn_image_prepare(&img, CNN_PREP_PAD, 3, 2, 2, colour.data()), CNN_OK);
    EXPECT_EQ(colour, (Pixels{255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30})); /* planar */
    Pixels g = {5, 6, 7, 8};
    cnn_image gi{2, 2, 1, g.data()};
    ASSERT_EQ(cnn_image_prepare(&gi, CNN_PREP_PAD, 3, 2, 2, colour.data()), CNN_OK);
    EXPECT_EQ(colour, (Pixels{5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8}));
    /* planar colour rows (a CSV's) to grey */
    Pixels planes = {255, 0, 0, 255, 0, 0}; /* 1x2: red, green */
    Pixels two(2);
    ASSERT_EQ(cnn_planes_prepare(planes.data(), 3, 1, 2, CNN_PREP_PAD, 1, 1, 2, two.data()), CNN_OK);
    EXPECT_EQ(two, (Pixels{76, 149}));
}

TEST(Fit, RefusesWhatItCannotMake)
{
    Pixels src(4), out(64);
    EXPECT_EQ(cnn_planes_prepare(src.data(), 1, 2, 2, CNN_PREP_PAD, 2, 2, 2, out.data()), CNN_ERR_ARG);
    EXPECT_NE(msg().find("1 or 3 channels"), std::string::npos) << msg();
    cnn_prep p;
    EXPECT_EQ(cnn_prep_parse("stretch", &p), CNN_ERR_ARG);
    EXPECT_EQ(cnn_prep_parse("crop", &p), CNN_OK);
    EXPECT_EQ(p, CNN_PREP_CROP);
}

/* ------------------------------------------------------------------- CSV */

struct Rows {
    std::vector<Pixels> images;
    std::vector<int> labels;
};

cnn_status collect(void *ctx, const uint8_t *image, int label)
{
    Rows *r = (Rows *)ctx;
    r->images.emplace_back(image, image + 4);
    r->labels.push_back(label);
    return CNN_OK;
}

cnn_status parse(const std::string &text, Rows &r)
{
    return cnn_csv_parse(text.data(), text.size(), "t.csv", 1, 2, 2, collect, &r);
}

TEST(Csv, ReadsRowsWithOrWithoutAHeader)
{
    Rows r;
    ASSERT_EQ(parse("label,p0,p1,p2,p3\n3,0,1,2,255\r\n\n7, 4 ,5,6,\"7\"", r), CNN_OK) << msg();
    ASSERT_EQ(r.images.size(), 2u);
    EXPECT_EQ(r.labels, (std::vector<int>{3, 7}));
    EXPECT_EQ(r.images[0], (Pixels{0, 1, 2, 255}));
    EXPECT_EQ(r.images[1], (Pixels{4, 5, 6, 7}));
    Rows r2;
    ASSERT_EQ(parse("1,0,0,0,0\n2,1.0,2,3,4\n", r2), CNN_OK) << msg();
    EXPECT_EQ(r2.labels, (std::vector<int>{1, 2}));
}

TEST(Csv, ErrorsNameTheLineAndTheColumn)
{
    Rows r;
    EXPECT_EQ(parse("label,a,b,c,d\n1,2,3,4\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("t.csv:2: 4 columns, expected 5"), std::string::npos) << msg();
    EXPECT_EQ(parse("1,2,3,4,5,6\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("t.csv:1: 6 columns, expected 5"), std::string::npos) << msg();
    EXPECT_EQ(parse("1,2,3,4,5\n1,2,x3,4,5\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("t.csv:2: column 3 (a pixel): 'x3' is not a whole number"), std::string::npos) << msg();
    EXPECT_EQ(parse("1,2,3,4,256\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("t.csv:1: column 5 (a pixel): '256' is out of range (0 to 255)"), std::string::npos) << msg();
    EXPECT_EQ(parse("1,2,3,-4,5\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("out of range"), std::string::npos) << msg();
    EXPECT_EQ(parse("300,2,3,4,5\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("the label"), std::string::npos) << msg();
    EXPECT_EQ(parse("1,2,3,4,5\nlabel,a,b,c,d\n", r), CNN_ERR_FORMAT); /* a header only first */
    EXPECT_NE(msg().find("t.csv:2: column 1 (the label)"), std::string::npos) << msg();
    EXPECT_EQ(parse("label,a,b,c,d\n", r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("no image"), std::string::npos) << msg();
}

TEST(Csv, FileReadStreamsAndChecksLineLength)
{
    TempDir tmp("cnn_csv");
    std::string p = tmp / "a.csv";
    write_file(p, "label,a,b,c,d\n1,2,3,4,5\n0,9,9,9,9");
    Rows r;
    ASSERT_EQ(cnn_csv_read(p.c_str(), 1, 2, 2, collect, &r), CNN_OK) << msg();
    EXPECT_EQ(r.labels, (std::vector<int>{1, 0}));
    write_file(p, "1,2,3,4,5\n" + std::string(100000, '1') + "\n");
    EXPECT_EQ(cnn_csv_read(p.c_str(), 1, 2, 2, collect, &r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find(p + ":2: a line longer than"), std::string::npos) << msg();
    write_file(p, "");
    EXPECT_EQ(cnn_csv_read(p.c_str(), 1, 2, 2, collect, &r), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("empty file"), std::string::npos) << msg();
}

/* ----------------------------------------------------------------- cache */

std::string make_cache(const std::string &path, int n, int classes, cnn_prep prep = CNN_PREP_PAD)
{
    cnn_cache_writer wr;
    EXPECT_EQ(cnn_cache_begin(&wr, path.c_str(), 1, 2, 3, prep, 0x1234), CNN_OK) << msg();
    for (int i = 0; i < n; i++) {
        uint8_t img[6];
        for (int j = 0; j < 6; j++) img[j] = (uint8_t)(i * 6 + j);
        EXPECT_EQ(cnn_cache_add(&wr, img, i % classes), CNN_OK);
    }
    std::vector<std::string> names;
    std::vector<char *> ptrs;
    for (int k = 0; k < classes; k++) names.push_back("class " + std::to_string(k));
    for (auto &s : names) ptrs.push_back(s.data());
    EXPECT_EQ(cnn_cache_finish(&wr, ptrs.data(), classes), CNN_OK) << msg();
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(Cache, RoundTrip)
{
    TempDir tmp("cnn_cache");
    std::string p = tmp / "c.cnncache";
    std::string bytes = make_cache(p, 5, 3, CNN_PREP_CROP);
    EXPECT_EQ(bytes.size(), 128u + 5 * 6 + 5 * 2 + 3 * 8);
    EXPECT_EQ(bytes.substr(0, 8), "CNNCACHE");
    cnn_cache c;
    ASSERT_EQ(cnn_cache_open(p.c_str(), &c), CNN_OK) << msg();
    EXPECT_EQ(c.n, 5);
    EXPECT_EQ(c.c * 100 + c.h * 10 + c.w, 123);
    EXPECT_EQ(c.classes, 3);
    EXPECT_EQ(c.prep, CNN_PREP_CROP);
    EXPECT_EQ(c.fingerprint, 0x1234u);
    EXPECT_STREQ(c.names[2], "class 2");
    uint8_t scratch[6];
    for (int i = 0; i < 5; i++) {
        EXPECT_EQ(c.labels[i], i % 3);
        const uint8_t *img = cnn_cache_image(&c, i, scratch);
        for (int j = 0; j < 6; j++) EXPECT_EQ(img[j], i * 6 + j);
    }
    EXPECT_EQ(cnn_cache_peek_fingerprint(p.c_str()), 0x1234u);
    cnn_cache_close(&c);
}

TEST(Cache, ImagesAreReadWithPreadWhenMappingIsOff)
{
    TempDir tmp("cnn_cache");
    std::string p = tmp / "c.cnncache";
    make_cache(p, 4, 2);
    cnn_cache c;
    ASSERT_EQ(cnn_cache_open(p.c_str(), &c), CNN_OK);
    c.images = NULL; /* what a cache larger than CNN_CACHE_MAP_MAX gets */
    uint8_t scratch[6];
    const uint8_t *img = cnn_cache_image(&c, 3, scratch);
    EXPECT_EQ(img, scratch);
    EXPECT_EQ(img[5], 23);
    cnn_cache_close(&c);
}

TEST(Cache, NoImageAndTooManyClassesAreRefused)
{
    TempDir tmp("cnn_cache");
    std::string p = tmp / "c.cnncache";
    cnn_cache_writer wr;
    ASSERT_EQ(cnn_cache_begin(&wr, p.c_str(), 1, 1, 1, CNN_PREP_PAD, 1), CNN_OK);
    char name[] = "a";
    char *names[] = {name};
    EXPECT_EQ(cnn_cache_finish(&wr, names, 1), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("no usable image"), std::string::npos) << msg();
    EXPECT_NE(access(p.c_str(), F_OK), 0) << "a refused cache must not be written";
    ASSERT_EQ(cnn_cache_begin(&wr, p.c_str(), 1, 1, 1, CNN_PREP_PAD, 1), CNN_OK);
    uint8_t px = 0;
    EXPECT_EQ(cnn_cache_add(&wr, &px, 256), CNN_ERR_FORMAT);
    cnn_cache_abort(&wr);
}

/* -------------------------------------------------------------- folders */

TEST(Folder, ListingSortsByteOrderAndKeepsImagesOnly)
{
    std::string text = "b\na\nB\n.hidden\nb/2.png\nb/1.JPG\nb/notes.txt\na/x.pgm\nB/y.gif\nB/.z.png\nc/q.png\n";
    cnn_folder f;
    ASSERT_EQ(cnn_folder_from_listing(text.data(), text.size(), "root", &f), CNN_OK) << msg();
    ASSERT_EQ(f.nclasses, 3);
    EXPECT_STREQ(f.classes[0], "B"); /* byte order: upper case first */
    EXPECT_STREQ(f.classes[1], "a");
    EXPECT_STREQ(f.classes[2], "b");
    ASSERT_EQ(f.nfiles, 4);
    EXPECT_STREQ(f.files[0], "B/y.gif");
    EXPECT_STREQ(f.files[1], "a/x.pgm");
    EXPECT_STREQ(f.files[2], "b/1.JPG");
    EXPECT_STREQ(f.files[3], "b/2.png");
    EXPECT_EQ(f.labels[3], 2);
    cnn_folder_free(&f);
}

TEST(Folder, BadTreesAreRefusedNamingTheFolder)
{
    cnn_folder f;
    std::string empty = "a\nb\na/1.png\n";
    EXPECT_EQ(cnn_folder_from_listing(empty.data(), empty.size(), "root", &f), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("root/b: an empty class folder"), std::string::npos) << msg();
    /* no picture in any class folder: nothing to sort, refused as empty */
    std::string no_pictures = "a\nb\na/notes.txt\n";
    EXPECT_EQ(cnn_folder_from_listing(no_pictures.data(), no_pictures.size(), "root", &f), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("root/a: an empty class folder"), std::string::npos) << msg();
    std::string comma = "a,b\na,b/1.png\n";
    EXPECT_EQ(cnn_folder_from_listing(comma.data(), comma.size(), "root", &f), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("root/a,b: the name of a class folder holds a comma"), std::string::npos) << msg();
    std::string none = ".hidden\n\n";
    EXPECT_EQ(cnn_folder_from_listing(none.data(), none.size(), "root", &f), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("root: no class folder"), std::string::npos) << msg();
    std::string many;
    for (int k = 0; k < 257; k++) many += "c" + std::to_string(k) + "\n";
    EXPECT_EQ(cnn_folder_from_listing(many.data(), many.size(), "root", &f), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("more than 256 class folders"), std::string::npos) << msg();
}

TEST(Folder, ScanAndCacheFollowTheFiles)
{
    TempDir tmp("cnn_folder");
    std::string root = tmp / "tree";
    mkdir(root.c_str(), 0777);
    for (const char *k : {"cat", "dog"}) mkdir((root + "/" + k).c_str(), 0777);
    write_file(root + "/cat/1.pgm", pgm(4, 4, Pixels(16, 10)));
    write_file(root + "/cat/2.pgm", pgm(8, 4, Pixels(32, 20)));
    Pixels rgb(3 * 3 * 3, 0);
    for (int i = 0; i < 9; i++) rgb[i * 3] = 255; /* red */
    write_file(root + "/dog/1.ppm", ppm(3, 3, rgb));
    write_file(root + "/dog/broken.png", "not a png at all");

    std::vector<std::string> warnings;
    cnn_source_opts o{};
    o.c = 1;
    o.h = 4;
    o.w = 4;
    o.prep = CNN_PREP_PAD;
    o.warn = [](void *ctx, const char *m) { ((std::vector<std::string> *)ctx)->push_back(m); };
    o.ctx = &warnings;
    cnn_cache c;
    ASSERT_EQ(cnn_source_folder(root.c_str(), &o, &c), CNN_OK) << msg();
    EXPECT_TRUE(o.built);
    EXPECT_EQ(o.skipped, 1);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("dog/broken.png"), std::string::npos) << warnings[0];
    EXPECT_EQ(std::string(o.cache_path), root + "/.cnn-cache/1x4x4-pad.cnncache");
    ASSERT_EQ(c.n, 3);
    EXPECT_EQ(c.classes, 2);
    EXPECT_STREQ(c.names[1], "dog");
    uint8_t scratch[16];
    const uint8_t *img = cnn_cache_image(&c, 1, scratch); /* 8x4 of 20 padded into 4x4 */
    EXPECT_EQ(img[0], 0);
    EXPECT_EQ(img[4], 20);
    EXPECT_EQ(cnn_cache_image(&c, 2, scratch)[5], 76); /* red's luma */
    cnn_cache_close(&c);

    /* a second open reuses the cache */
    ASSERT_EQ(cnn_source_folder(root.c_str(), &o, &c), CNN_OK) << msg();
    EXPECT_FALSE(o.built);
    cnn_cache_close(&c);
    /* a changed file rebuilds it */
    write_file(root + "/cat/1.pgm", pgm(5, 5, Pixels(25, 99)));
    ASSERT_EQ(cnn_source_folder(root.c_str(), &o, &c), CNN_OK) << msg();
    EXPECT_TRUE(o.built);
    EXPECT_EQ(cnn_cache_image(&c, 0, scratch)[0], 99);
    cnn_cache_close(&c);
    /* another policy is another cache */
    o.prep = CNN_PREP_CROP;
    ASSERT_EQ(cnn_source_folder(root.c_str(), &o, &c), CNN_OK) << msg();
    EXPECT_TRUE(o.built);
    EXPECT_EQ(std::string(o.cache_path), root + "/.cnn-cache/1x4x4-crop.cnncache");
    cnn_cache_close(&c);
    /* strict refuses the broken picture, naming it */
    o.strict = 1;
    write_file(root + "/cat/3.pgm", pgm(2, 2, Pixels(4, 1)));
    EXPECT_EQ(cnn_source_folder(root.c_str(), &o, &c), CNN_ERR_FORMAT);
    EXPECT_NE(msg().find("dog/broken.png"), std::string::npos) << msg();
}

TEST(Folder, CacheDirHoldsTheCache)
{
    TempDir tmp("cnn_folder");
    std::string root = tmp / "tree", cdir = tmp / "cachedir";
    mkdir(root.c_str(), 0777);
    mkdir((root + "/a").c_str(), 0777);
    write_file(root + "/a/1.pgm", pgm(2, 2, Pixels(4, 5)));
    cnn_source_opts o{};
    o.c = 1;
    o.h = 2;
    o.w = 2;
    o.prep = CNN_PREP_PAD;
    o.cache_dir = cdir.c_str();
    cnn_cache c;
    ASSERT_EQ(cnn_source_folder(root.c_str(), &o, &c), CNN_OK) << msg();
    EXPECT_EQ(std::string(o.cache_path).rfind(cdir + "/", 0), 0u) << o.cache_path;
    EXPECT_NE(access((root + "/.cnn-cache").c_str(), F_OK), 0);
    cnn_cache_close(&c);
}

} // namespace
