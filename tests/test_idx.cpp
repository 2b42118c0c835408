/* test_idx.cpp — the IDX loader: round trips (raw and gzip), every kind of
 * malformed file, directory lookup, and the real data sets when present. */
#include "testutil.h"

extern "C" {
#include "io/idx.h"
}

#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {


Bytes idx_bytes(uint8_t dtype, std::vector<uint32_t> dims, const Bytes &data)
{
    Bytes b = {0, 0, dtype, (uint8_t)dims.size()};
    for (uint32_t d : dims) {
        b.push_back(d >> 24);
        b.push_back(d >> 16);
        b.push_back(d >> 8);
        b.push_back(d);
    }
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

void write_raw(const std::string &path, const Bytes &b)
{
    std::ofstream f(path, std::ios::binary);
    f.write((const char *)b.data(), (std::streamsize)b.size());
    ASSERT_TRUE(f.good()) << path;
}

void write_gz(const std::string &path, const Bytes &b)
{
    gzFile g = gzopen(path.c_str(), "wb1");
    ASSERT_NE(g, nullptr) << path;
    if (!b.empty()) ASSERT_EQ(gzwrite(g, b.data(), (unsigned)b.size()), (int)b.size());
    ASSERT_EQ(gzclose(g), Z_OK);
}

Bytes read_all(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Bytes random_bytes(size_t n, uint64_t seed, uint32_t below = 256)
{
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    Bytes b(n);
    for (auto &x : b) x = (uint8_t)cnn_rng_below(&r, below);
    return b;
}

/* A data set of n random h x w images and labels below `classes`, written
 * as images.idx / labels.idx (gzipped if asked). */
struct Written {
    std::string images, labels;
    Bytes pixels, labs;
};
Written write_set(const TempDir &d, int n, int h, int w, int classes, bool gz_images,
                  bool gz_labels, uint64_t seed)
{
    Written s;
    s.pixels = random_bytes((size_t)n * h * w, seed);
    s.labs = random_bytes((size_t)n, seed + 1, (uint32_t)classes);
    s.images = d / (gz_images ? "images.idx.gz" : "images.idx");
    s.labels = d / (gz_labels ? "labels.idx.gz" : "labels.idx");
    Bytes ib = idx_bytes(8, {(uint32_t)n, (uint32_t)h, (uint32_t)w}, s.pixels);
    Bytes lb = idx_bytes(8, {(uint32_t)n}, s.labs);
    if (gz_images) write_gz(s.images, ib); else write_raw(s.images, ib);
    if (gz_labels) write_gz(s.labels, lb); else write_raw(s.labels, lb);
    return s;
}

/* Load and expect failure with `code`; the message must name `file` and
 * contain `what`. The output must be left empty. */
void expect_fail(const std::string &images, const std::string &labels, cnn_status code,
                 const std::string &file, const std::string &what)
{
    cnn_dataset d;
    memset(&d, 0xAB, sizeof d);
    cnn_status s = cnn_idx_load(images.c_str(), labels.c_str(), &d);
    std::string msg = cnn_errmsg();
    EXPECT_EQ(s, code) << msg;
    EXPECT_NE(msg.find(file), std::string::npos) << "message does not name the file: " << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected \"" << what << "\" in: " << msg;
    EXPECT_EQ(d.images, nullptr);
    EXPECT_EQ(d.labels, nullptr);
    EXPECT_EQ(d.n, 0);
    cnn_dataset_free(&d);
}

int max_of(const Bytes &b)
{
    int m = 0;
    for (uint8_t x : b) m = x > m ? x : m;
    return m;
}

}  // namespace

/* ------------------------------------------------------------ round trips */

TEST(Idx, RoundTripRawAndGzip)
{
    TempDir d;
    ASSERT_FALSE(d.path.empty());
    const bool combos[4][2] = {{false, false}, {true, true}, {true, false}, {false, true}};
    for (int c = 0; c < 4; c++) {
        SCOPED_TRACE(c);
        Written s = write_set(d, 37, 9, 13, 7, combos[c][0], combos[c][1], 100 + c);
        cnn_dataset ds;
        ASSERT_EQ(cnn_idx_load(s.images.c_str(), s.labels.c_str(), &ds), CNN_OK) << cnn_errmsg();
        EXPECT_EQ(ds.n, 37);
        EXPECT_EQ(ds.c, 1);
        EXPECT_EQ(ds.h, 9);
        EXPECT_EQ(ds.w, 13);
        EXPECT_EQ(ds.classes, max_of(s.labs) + 1);
        EXPECT_EQ(Bytes(ds.images, ds.images + s.pixels.size()), s.pixels);
        EXPECT_EQ(Bytes(ds.labels, ds.labels + s.labs.size()), s.labs);
        cnn_dataset_free(&ds);
        EXPECT_EQ(ds.images, nullptr);
        cnn_dataset_free(&ds); /* twice is harmless */
    }
}

TEST(Idx, LargerThanOneReadChunkGzip)
{
    /* 20 MB of pixels: more than the first 16 MB buffer, so it must grow. */
    TempDir d;
    Written s = write_set(d, 2000, 100, 100, 256, true, true, 7);
    cnn_dataset ds;
    ASSERT_EQ(cnn_idx_load(s.images.c_str(), s.labels.c_str(), &ds), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(ds.n, 2000);
    EXPECT_EQ(ds.classes, max_of(s.labs) + 1);
    EXPECT_TRUE(memcmp(ds.images, s.pixels.data(), s.pixels.size()) == 0);
    cnn_dataset_free(&ds);
}

TEST(Idx, GzipIsDetectedByContentNotName)
{
    TempDir d;
    Bytes pixels = random_bytes(3 * 4 * 4, 1), labs = {2, 0, 1};
    std::string img = d / "plain-but-named.gz", lab = d / "gzipped-without-suffix";
    write_raw(img, idx_bytes(8, {3, 4, 4}, pixels));
    write_gz(lab, idx_bytes(8, {3}, labs));
    cnn_dataset ds;
    ASSERT_EQ(cnn_idx_load(img.c_str(), lab.c_str(), &ds), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(Bytes(ds.labels, ds.labels + 3), labs);
    EXPECT_EQ(ds.classes, 3);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------- malformed files */

TEST(Idx, TruncatedRawLabels)
{
    TempDir d;
    Written s = write_set(d, 5, 2, 2, 3, false, false, 1);
    std::string lab = d / "short-labels";
    write_raw(lab, idx_bytes(8, {100}, random_bytes(90, 2)));
    expect_fail(s.images, lab, CNN_ERR_FORMAT, lab,
                "truncated: header says 100 labels, file holds 90");
}

TEST(Idx, TruncatedImagesRawAndGzip)
{
    TempDir d;
    Written s = write_set(d, 10, 28, 28, 3, false, false, 1);
    Bytes full = idx_bytes(8, {10, 28, 28}, random_bytes(10 * 784, 3));
    Bytes cut(full.begin(), full.end() - 784 - 100);
    std::string raw = d / "cut.idx", gz = d / "cut.idx.gz";
    write_raw(raw, cut);
    write_gz(gz, cut);
    for (const std::string &p : {raw, gz}) {
        SCOPED_TRACE(p);
        expect_fail(p, s.labels, CNN_ERR_FORMAT, p, "truncated: header says 10 images of 28x28");
        expect_fail(p, s.labels, CNN_ERR_FORMAT, p, "8 whole images");
    }
}

TEST(Idx, TruncatedGzipStream)
{
    TempDir d;
    Written s = write_set(d, 50, 28, 28, 10, true, false, 4);
    Bytes gz = read_all(s.images);
    ASSERT_GT(gz.size(), 100u);
    std::string cut = d / "cut-stream.gz";
    write_raw(cut, Bytes(gz.begin(), gz.begin() + gz.size() / 2));
    expect_fail(cut, s.labels, CNN_ERR_FORMAT, cut, "truncated");
}

TEST(Idx, CorruptGzipStream)
{
    TempDir d;
    Written s = write_set(d, 50, 28, 28, 10, true, false, 4);
    Bytes gz = read_all(s.images);
    /* random pixels deflate to stored blocks: a flipped byte in the middle
     * inflates fine and only the CRC-32 in the trailer can catch it */
    Bytes flipped = gz;
    flipped[flipped.size() / 2] ^= 0x5A;
    std::string crc = d / "bad-crc.gz";
    write_raw(crc, flipped);
    expect_fail(crc, s.labels, CNN_ERR_FORMAT, crc, "corrupt gzip data");
    /* a broken deflate block header */
    Bytes zeros = idx_bytes(8, {50, 28, 28}, Bytes(50 * 784, 0));
    std::string z = d / "zeros.gz";
    write_gz(z, zeros);
    Bytes zb = read_all(z);
    zb[10] = 0xFF; /* BTYPE 11 is reserved */
    write_raw(z, zb);
    expect_fail(z, s.labels, CNN_ERR_FORMAT, z, "corrupt gzip data");
}

TEST(Idx, TrailingGarbage)
{
    TempDir d;
    Written s = write_set(d, 4, 3, 3, 2, false, false, 5);
    Bytes lab = idx_bytes(8, {4}, {0, 1, 1, 0});
    lab.push_back(7);
    lab.push_back(7);
    std::string raw = d / "trailing", gz = d / "trailing.gz";
    write_raw(raw, lab);
    write_gz(gz, lab);
    expect_fail(s.images, raw, CNN_ERR_FORMAT, raw, "2 bytes of trailing data after the 4 labels");
    expect_fail(s.images, gz, CNN_ERR_FORMAT, gz, "trailing data after the 4 labels");
}

TEST(Idx, GzipBombStopsAtTheAnnouncedSize)
{
    /* The header announces 28x28 bytes; the stream inflates to 64 MB. */
    TempDir d;
    Written s = write_set(d, 1, 28, 28, 2, false, false, 6);
    std::string bomb = d / "bomb.gz";
    gzFile g = gzopen(bomb.c_str(), "wb9");
    ASSERT_NE(g, nullptr);
    Bytes head = idx_bytes(8, {1, 28, 28}, {});
    gzwrite(g, head.data(), (unsigned)head.size());
    Bytes zeros(1 << 20, 0);
    for (int i = 0; i < 64; i++) gzwrite(g, zeros.data(), (unsigned)zeros.size());
    gzclose(g);
    auto t0 = std::chrono::steady_clock::now();
    expect_fail(bomb, s.labels, CNN_ERR_FORMAT, bomb, "trailing data after the 1 images of 28x28");
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(sec, 0.5) << "the loader inflated more than it needed";
}

TEST(Idx, HugeHeaderIsRefusedBeforeAllocating)
{
    TempDir d;
    Written s = write_set(d, 2, 2, 2, 2, false, false, 6);
    std::string big = d / "huge.idx";
    write_raw(big, idx_bytes(8, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {1, 2, 3}));
    expect_fail(big, s.labels, CNN_ERR_FORMAT, big, "4294967295 x 4294967295 x 4294967295");
    expect_fail(big, s.labels, CNN_ERR_FORMAT, big, "refusing");
    /* just under the cap, in a tiny gzip file: a truncation, found without
     * allocating the announced 2 GB */
    std::string under = d / "under.gz";
    write_gz(under, idx_bytes(8, {1000, 1000, 2000}, random_bytes(1000, 1)));
    expect_fail(under, s.labels, CNN_ERR_FORMAT, under, "truncated: header says 1000 images");
}

TEST(Idx, BadMagicDtypeAndDimensions)
{
    TempDir d;
    Written s = write_set(d, 3, 2, 2, 2, false, false, 8);
    struct Case {
        const char *name;
        Bytes bytes;
        bool as_images;
        const char *what;
    } cases[] = {
        {"zip", {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0}, true, "not an IDX file (magic bytes 50 4b 03 04"},
        {"float", idx_bytes(0x0D, {3, 2, 2}, Bytes(48)), true,
         "unsupported IDX data type 0x0d"},
        {"int32-labels", idx_bytes(0x0C, {3}, Bytes(12)), false, "unsupported IDX data type 0x0c"},
        {"labels-as-images", idx_bytes(8, {3}, {1, 2, 3}), true,
         "has 1 dimension (an IDX labels file), expected images"},
        {"images-as-labels", idx_bytes(8, {3, 2, 2}, Bytes(12)), false,
         "has 3 dimensions (an IDX images file), expected labels"},
        {"four-dims", idx_bytes(8, {3, 1, 2, 2}, Bytes(12)), true, "has 4 dimensions, expected 3"},
        {"zero-dim", idx_bytes(8, {3, 0, 2}, {}), true, "dimension 2 of the header is 0"},
        {"zero-count", idx_bytes(8, {0}, {}), false, "dimension 1 of the header is 0"},
        {"short-header", {0, 0}, false, "truncated header: 2 bytes"},
        {"short-dims", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0}, true, "truncated header: 6 of the 12 bytes"},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name);
        for (bool gz : {false, true}) {
            std::string p = d / (std::string(c.name) + (gz ? ".gz" : ""));
            if (gz) write_gz(p, c.bytes); else write_raw(p, c.bytes);
            if (c.as_images)
                expect_fail(p, s.labels, CNN_ERR_FORMAT, p, c.what);
            else
                expect_fail(s.images, p, CNN_ERR_FORMAT, p, c.what);
        }
    }
}

TEST(Idx, CountMismatchNamesBothFiles)
{
    TempDir d;
    Written s = write_set(d, 6, 2, 2, 2, false, false, 9);
    std::string lab = d / "five-labels";
    write_raw(lab, idx_bytes(8, {5}, {0, 1, 0, 1, 0}));
    expect_fail(s.images, lab, CNN_ERR_FORMAT, s.images, "has 6 images but");
    expect_fail(s.images, lab, CNN_ERR_FORMAT, lab, "has 5 labels");
}

TEST(Idx, EmptyMissingAndDirectory)
{
    TempDir d;
    Written s = write_set(d, 2, 2, 2, 2, false, false, 10);
    std::string empty = d / "empty", missing = d / "no-such-file", dir = d / "a-directory";
    write_raw(empty, {});
    fs::create_directory(dir);
    expect_fail(empty, s.labels, CNN_ERR_FORMAT, empty, "empty file");
    expect_fail(s.images, missing, CNN_ERR_IO, missing, "cannot open");
    expect_fail(dir, s.labels, CNN_ERR_IO, dir, "is a directory");
    /* an empty gzip stream holds no header either */
    std::string emptygz = d / "empty.gz";
    write_gz(emptygz, {});
    expect_fail(emptygz, s.labels, CNN_ERR_FORMAT, emptygz, "truncated header: 0 bytes");
}

TEST(Idx, NullArguments)
{
    cnn_dataset ds;
    EXPECT_EQ(cnn_idx_load(nullptr, "x", &ds), CNN_ERR_ARG);
    EXPECT_EQ(cnn_idx_load("x", "y", nullptr), CNN_ERR_ARG);
    cnn_dataset_free(nullptr);
}

/* --------------------------------------------------------- directories */

TEST(Idx, OpenDirAcceptsTheMirrorsNames)
{
    TempDir d;
    Bytes px = random_bytes(4 * 28 * 28, 11), lab = {3, 1, 4, 1}, tpx = random_bytes(2 * 784, 12),
          tlab = {5, 9};
    write_gz(d / "train-images-idx3-ubyte.gz", idx_bytes(8, {4, 28, 28}, px));
    write_raw(d / "train-labels.idx1-ubyte", idx_bytes(8, {4}, lab));
    write_raw(d / "t10k-images.idx3-ubyte.gz", idx_bytes(8, {2, 28, 28}, tpx));
    write_raw(d / "t10k-labels-idx1-ubyte", idx_bytes(8, {2}, tlab));
    cnn_dataset tr, te;
    ASSERT_EQ(cnn_dataset_open_dir(d.path.c_str(), 0, &tr), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(tr.n, 4);
    EXPECT_EQ(tr.classes, 5);
    EXPECT_EQ(Bytes(tr.labels, tr.labels + 4), lab);
    ASSERT_EQ(cnn_dataset_open_dir((d.path.string() + "/").c_str(), 1, &te), CNN_OK)
        << cnn_errmsg();
    EXPECT_EQ(te.n, 2);
    EXPECT_EQ(te.classes, 10);
    EXPECT_EQ(Bytes(te.images, te.images + tpx.size()), tpx);
    cnn_dataset_free(&tr);
    cnn_dataset_free(&te);
}

TEST(Idx, OpenDirListsTheNamesItLookedFor)
{
    TempDir d;
    write_raw(d / "train-images-idx3-ubyte", idx_bytes(8, {1, 2, 2}, {0, 0, 0, 0}));
    cnn_dataset ds;
    EXPECT_EQ(cnn_dataset_open_dir(d.path.c_str(), 0, &ds), CNN_ERR_IO);
    std::string msg = cnn_errmsg();
    for (const char *n : {"no training labels file found", "train-labels-idx1-ubyte,",
                          "train-labels-idx1-ubyte.gz", "train-labels.idx1-ubyte,",
                          "train-labels.idx1-ubyte.gz"})
        EXPECT_NE(msg.find(n), std::string::npos) << n << " not in: " << msg;
    EXPECT_NE(msg.find(d.path.string()), std::string::npos) << msg;

    EXPECT_EQ(cnn_dataset_open_dir(d.path.c_str(), 1, &ds), CNN_ERR_IO);
    msg = cnn_errmsg();
    EXPECT_NE(msg.find("no test images file found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("t10k-images-idx3-ubyte"), std::string::npos) << msg;

    std::string missing = d / "nowhere";
    EXPECT_EQ(cnn_dataset_open_dir(missing.c_str(), 0, &ds), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("nowhere: cannot open data directory"),
              std::string::npos)
        << cnn_errmsg();
    std::string file = d / "train-images-idx3-ubyte";
    EXPECT_EQ(cnn_dataset_open_dir(file.c_str(), 0, &ds), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("is not a directory"), std::string::npos);
    EXPECT_EQ(ds.images, nullptr);
}

/* ----------------------------------------------------- the real data sets */

static std::string source_dir()
{
    const char *s = getenv("CNN_SOURCE_DIR");
    return s ? s : CNN_SOURCE_DIR;
}

/* Facts about the published files that do not depend on our code: sizes,
 * and the first labels (5, 0, 4, 1 in training; 7, 2, 1, 0 in test). */
TEST(Idx, RealMnist)
{
    std::string dir = source_dir() + "/data/mnist";
    if (!fs::exists(dir + "/train-labels-idx1-ubyte") && !fs::exists(dir + "/train-labels-idx1-ubyte.gz"))
        GTEST_SKIP() << dir << " has no MNIST (run data/fetch.sh mnist)";
    cnn_dataset tr, te;
    ASSERT_EQ(cnn_dataset_open_dir(dir.c_str(), 0, &tr), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_dataset_open_dir(dir.c_str(), 1, &te), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(tr.n, 60000);
    EXPECT_EQ(te.n, 10000);
    for (cnn_dataset *ds : {&tr, &te}) {
        EXPECT_EQ(ds->h, 28);
        EXPECT_EQ(ds->w, 28);
        EXPECT_EQ(ds->classes, 10);
        int count[10] = {0};
        for (int i = 0; i < ds->n; i++) count[ds->labels[i]]++;
        for (int k = 0; k < 10; k++) EXPECT_GT(count[k], ds->n / 20) << "class " << k;
    }
    EXPECT_EQ(Bytes(tr.labels, tr.labels + 4), Bytes({5, 0, 4, 1}));
    EXPECT_EQ(Bytes(te.labels, te.labels + 4), Bytes({7, 2, 1, 0}));
    /* MNIST's background is exactly 0 and the corners of every digit are empty */
    for (int i = 0; i < tr.n; i += 997) EXPECT_EQ(tr.images[(size_t)i * 784], 0);
    cnn_dataset_free(&tr);
    cnn_dataset_free(&te);
}

TEST(Idx, RealFashionMnistGzip)
{
    std::string dir = source_dir() + "/data/fashion";
    if (!fs::exists(dir + "/train-labels-idx1-ubyte.gz"))
        GTEST_SKIP() << dir << " has no Fashion-MNIST (run data/fetch.sh fashion)";
    cnn_dataset te;
    ASSERT_EQ(cnn_dataset_open_dir(dir.c_str(), 1, &te), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(te.n, 10000);
    EXPECT_EQ(te.h, 28);
    EXPECT_EQ(te.classes, 10);
    /* the test split is balanced: 1000 of each class */
    int count[10] = {0};
    for (int i = 0; i < te.n; i++) count[te.labels[i]]++;
    for (int k = 0; k < 10; k++) EXPECT_EQ(count[k], 1000);
    cnn_dataset_free(&te);
}
