/* test_hostile.cpp — hostile inputs for the loaders (IDX, safetensors,
 * architecture text, images, CSV files, cache files, image-folder names):
 * hand-made malformed files, the regressions the fuzzers found
 * (tests/fuzz/FINDINGS.md), and a replay of the fuzz corpora through the
 * same calls and checks as the libFuzzer targets, so every build (and the
 * sanitizer build above all) runs them. The cnn program's checkpoints and
 * options: test_hostile_cli.cpp.
 *
 * Each case checks the status code and that the message names the file (or
 * the architecture) and the problem. */
#include "hostile.h"
extern "C" {
#include "io/dataset.h"
#include "model/model.h"
}

#include <gtest/gtest.h>
#include <zlib.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace {

/* The status must be `want` and the message must contain every one of
 * `parts` (the file's name first, then words naming the problem). */
::testing::AssertionResult fails_with(cnn_status got, cnn_status want,
                                      std::vector<std::string> parts)
{
    std::string msg = cnn_errmsg();
    if (got != want)
        return ::testing::AssertionFailure()
               << "status " << cnn_status_name(got) << ", expected " << cnn_status_name(want)
               << " (message: " << msg << ")";
    for (const auto &p : parts)
        if (msg.find(p) == std::string::npos)
            return ::testing::AssertionFailure() << "message lacks '" << p << "': " << msg;
    return ::testing::AssertionSuccess();
}

Bytes be32(uint32_t v)
{
    return Bytes{(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
}

Bytes le64(uint64_t v)
{
    Bytes b;
    for (int i = 0; i < 8; i++) b.push_back((char)(v >> (8 * i)));
    return b;
}

Bytes idx_images(uint32_t n, uint32_t h, uint32_t w, size_t pixels)
{
    return Bytes("\0\0\x08\x03", 4) + be32(n) + be32(h) + be32(w) + Bytes(pixels, '\x07');
}

Bytes idx_labels(uint32_t n, size_t count)
{
    return Bytes("\0\0\x08\x01", 4) + be32(n) + Bytes(count, '\x01');
}

Bytes gzip(const Bytes &b)
{
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    Bytes out(deflateBound(&z, b.size()), '\0');
    z.next_in = (Bytef *)b.data();
    z.avail_in = (uInt)b.size();
    z.next_out = (Bytef *)out.data();
    z.avail_out = (uInt)out.size();
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

/* ------------------------------------------------------------------ IDX */

TEST_F(Hostile, IdxHandMade)
{
    std::string lab = write("lab", idx_labels(2, 2));
    struct Case {
        const char *what;
        Bytes images;
        cnn_status want;
        const char *problem;
    } cases[] = {
        {"wrong magic", Bytes("\x1f\x00\x08\x03", 4) + be32(2) + be32(1) + be32(1) + "ab",
         CNN_ERR_FORMAT, "not an IDX file"},
        {"float dtype", Bytes("\0\0\x0d\x03", 4) + be32(2) + be32(1) + be32(1) + Bytes(8, 0),
         CNN_ERR_FORMAT, "data type 0x0d"},
        {"product over the limit",
         Bytes("\0\0\x08\x03", 4) + be32(0xffffffffu) + be32(0xffffffffu) + be32(0xffffffffu),
         CNN_ERR_FORMAT, "refusing"},
        {"zero dimension", idx_images(2, 0, 5, 0), CNN_ERR_FORMAT, "is 0"},
        {"header cut inside the dims", Bytes("\0\0\x08\x03\0\0\0\x02\0", 9), CNN_ERR_FORMAT,
         "truncated header"},
        {"three bytes", Bytes("\0\0\x08", 3), CNN_ERR_FORMAT, "truncated header"},
        {"one pixel short", idx_images(2, 2, 2, 7), CNN_ERR_FORMAT, "truncated"},
        {"one pixel too many", idx_images(2, 2, 2, 9), CNN_ERR_FORMAT, "trailing data"},
        {"255 dimensions", Bytes("\0\0\x08\xff", 4) + Bytes(64, 0), CNN_ERR_FORMAT,
         "255 dimensions"},
        {"gzip of a truncated file", gzip(idx_images(2, 2, 2, 5)), CNN_ERR_FORMAT, "truncated"},
        {"gzip cut short", gzip(idx_images(2, 2, 2, 8)).substr(0, 20), CNN_ERR_FORMAT,
         "truncated gzip"},
        {"gzip with trailing data", gzip(idx_images(2, 2, 2, 8) + "zz"), CNN_ERR_FORMAT,
         "trailing data"},
    };
    for (const auto &c : cases) {
        std::string img = write("img", c.images);
        cnn_dataset d;
        EXPECT_TRUE(fails_with(cnn_idx_load(img.c_str(), lab.c_str(), &d), c.want,
                               {img, c.problem}))
            << c.what;
        EXPECT_EQ(d.images, nullptr) << c.what;
        EXPECT_EQ(d.labels, nullptr) << c.what;
    }
}

TEST_F(Hostile, IdxCountsDirectoryAndEmpty)
{
    std::string img = write("img", idx_images(3, 2, 2, 12));
    std::string lab = write("lab", idx_labels(2, 2));
    cnn_dataset d;
    EXPECT_TRUE(fails_with(cnn_idx_load(img.c_str(), lab.c_str(), &d), CNN_ERR_FORMAT,
                           {img, lab, "3 images", "2 labels"}));
    EXPECT_TRUE(fails_with(cnn_idx_load(img.c_str(), dir.c_str(), &d), CNN_ERR_IO,
                           {dir, "directory"}));
    std::string empty = write("empty", "");
    EXPECT_TRUE(fails_with(cnn_idx_load(img.c_str(), empty.c_str(), &d), CNN_ERR_FORMAT,
                           {empty, "empty"}));
    /* images where labels belong: the dimension count names the mix-up */
    EXPECT_TRUE(fails_with(cnn_idx_load(img.c_str(), img.c_str(), &d), CNN_ERR_FORMAT,
                           {img, "expected labels"}));
}

/* ---------------------------------------------------------- safetensors */

/* The model the crafted files are for, and a file builder. */
const char *kArch = "input 1x2x2\nflatten\ndense 2\n";
const char *kArchJson = "input 1x2x2\\nflatten\\ndense 2\\n";

Bytes st_file(const std::string &json, const Bytes &data)
{
    return le64(json.size()) + json + data;
}

std::string st_meta(const char *arch = kArchJson)
{
    return std::string("\"__metadata__\":{\"format\":\"cnn\",\"format_version\":\"1\",\"arch\":\"") +
           arch + "\"}";
}

std::string st_tensor(const char *name, const char *dtype, const char *shape, uint64_t b,
                      uint64_t e)
{
    return std::string("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":[" + std::to_string(b) + "," + std::to_string(e) + "]}";
}

Bytes f32s(int n, float v)
{
    Bytes b;
    for (int i = 0; i < n; i++) b.append((const char *)&v, 4);
    return b;
}

const std::string kW = st_tensor("1.weight", "F32", "[2,4]", 0, 32);
const std::string kB = st_tensor("1.bias", "F32", "[2]", 32, 40);

TEST_F(Hostile, SafetensorsValidBaselineLoads)
{
    /* the cases below differ from this file in one thing each */
    std::string p = write("ok", st_file("{" + st_meta() + "," + kW + "," + kB + "}", f32s(10, 0.5f)));
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_load(p.c_str(), &m), CNN_OK) << cnn_errmsg();
    cnn_model_free(m);
}

TEST_F(Hostile, SafetensorsHandMade)
{
    const Bytes data = f32s(10, 0.5f);
    const std::string meta = st_meta();
    struct Case {
        const char *what;
        Bytes file;
        const char *problem;
        cnn_status want = CNN_ERR_FORMAT;
    } cases[] = {
        {"header length beyond the file", le64(1000) + "{}", "beyond the end"},
        {"absurd header length", le64(~0ull) + "{}", "larger than"},
        {"seven bytes", Bytes(7, 'x'), "too short"},
        {"malformed JSON", st_file("{\"__metadata__\":{\"arch\":", data), "JSON"},
        {"not an object", st_file("[1,2,3,4]", data), "JSON object"},
        {"unknown dtype",
         st_file("{" + meta + "," + st_tensor("1.weight", "F31", "[2,4]", 0, 32) + "," + kB + "}",
                 data),
         "unknown dtype"},
        {"shape and range disagree",
         st_file("{" + meta + "," + st_tensor("1.weight", "F32", "[2,3]", 0, 32) + "," + kB + "}",
                 data),
         "data_offsets span 32 bytes"},
        {"overlap",
         st_file("{" + meta + "," + kW + "," + st_tensor("1.bias", "F32", "[2]", 24, 32) + "}",
                 data),
         "overlap"},
        {"out of the file",
         st_file("{" + meta + "," + kW + "," + st_tensor("1.bias", "F32", "[2]", 40, 48) + "}",
                 data),
         "beyond"},
        {"reversed offsets",
         st_file("{" + meta + "," + kW + "," + st_tensor("1.bias", "F32", "[2]", 40, 32) + "}",
                 data),
         "out of order"},
        {"negative offset",
         st_file("{" + meta + "," + kW +
                     ",\"1.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
                 data),
         "non-negative whole numbers"},
        {"missing tensor", st_file("{" + meta + "," + kW + "}", data.substr(0, 32)),
         "'1.bias' (F32 [2]) is missing"},
        {"extra tensor",
         st_file("{" + meta + "," + kW + "," + kB + "," +
                     st_tensor("7.weight", "F32", "[1]", 40, 44) + "}",
                 data + f32s(1, 1.f)),
         "unknown tensor '7.weight'"},
        {"wrong dtype for the model",
         st_file("{" + meta + "," + st_tensor("1.weight", "F64", "[2,4]", 0, 64) + "," +
                     st_tensor("1.bias", "F32", "[2]", 64, 72) + "}",
                 f32s(18, 0.f)),
         "F64"},
        {"a NaN weight",
         st_file("{" + meta + "," + kW + "," + kB + "}", f32s(9, 0.f) + f32s(1, NAN)), "NaN"},
        {"arch does not parse",
         st_file("{" + st_meta("input 1x2x2\\nfrobnicate 2\\n") + "," + kW + "," + kB + "}", data),
         "unknown layer 'frobnicate'", CNN_ERR_PARSE},
        {"arch does not match the tensors",
         st_file("{" + st_meta("input 1x2x2\\nflatten\\ndense 3\\n") + "," + kW + "," + kB + "}",
                 data),
         "needs F32 [3, 4]"},
        {"no arch", st_file("{\"__metadata__\":{}," + kW + "," + kB + "}", data), "no 'arch'"},
        {"metadata not strings",
         st_file("{\"__metadata__\":{\"arch\":3}," + kW + "," + kB + "}", data), "not a string"},
        {"junk after the JSON", st_file("{" + meta + "," + kW + "," + kB + "}xx", data),
         "unexpected bytes"},
        {"shape entry negative",
         st_file("{" + meta + "," + st_tensor("1.weight", "F32", "[-2,4]", 0, 32) + "," + kB + "}",
                 data),
         "shape entry 0"},
        {"shape product overflows",
         st_file("{" + meta + "," +
                     st_tensor("1.weight", "F32", "[4294967296,4294967296,4294967296]", 0, 32) +
                     "," + kB + "}",
                 data),
         "data_offsets span"},
        {"duplicate tensor", st_file("{" + meta + "," + kW + "," + kW + "," + kB + "}", data),
         "twice"},
        {"huge architecture for a tiny file",
         st_file("{" + st_meta("input 1x1000x1000\\nflatten\\ndense 1000\\n") + "," + kW + "," +
                     kB + "}",
                 data),
         "arch"},
    };
    for (const auto &c : cases) {
        std::string p = write("bad", c.file);
        cnn_model *m = nullptr;
        EXPECT_TRUE(fails_with(cnn_model_load(p.c_str(), &m), c.want, {p, c.problem})) << c.what;
        EXPECT_EQ(m, nullptr) << c.what;
        cnn_model_free(m);
    }
}

TEST_F(Hostile, SafetensorsFailedLoadWeightsLeavesTheModelAlone)
{
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_from_text(kArch, "tiny", &m), CNN_OK) << cnn_errmsg();
    ASSERT_EQ(cnn_model_init(m, CNN_INIT_XAVIER_NORMAL, 3), CNN_OK);
    auto weights = [&] {
        std::vector<float> v;
        for (int i = 0; i < cnn_model_num_tensors(m); i++) {
            cnn_tensor t;
            EXPECT_EQ(cnn_model_tensor(m, i, &t), CNN_OK);
            v.insert(v.end(), t.data, t.data + t.size);
        }
        return v;
    };
    std::vector<float> before = weights();
    /* the weight is fine and is read first; the bias holds an Inf */
    std::string p = write("inf", st_file("{" + st_meta() + "," + kW + "," + kB + "}",
                                         f32s(9, 2.f) + f32s(1, INFINITY)));
    EXPECT_TRUE(fails_with(cnn_model_load_weights(m, p.c_str()), CNN_ERR_FORMAT,
                           {p, "'1.bias'", "NaN or Inf"}));
    EXPECT_EQ(weights(), before);
    cnn_model_free(m);
}

/* Runs fn in a child process and returns its exit status, or -1 if it has
 * not finished within `seconds` (it is killed then): a test of a hang fails
 * instead of hanging. */
template <class F> int exit_status_within(double seconds, F fn)
{
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    if (pid < 0) return -2;
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
}

/* FINDINGS.md F1: every metadata entry went through cnn_model_set_meta,
 * which searches the entries so far: quadratic, 56 s for a 1 MB file of
 * 80000 keys, hours for the 100 MB a header may hold. */
TEST_F(Hostile, SafetensorsManyMetadataKeysDoNotHang)
{
    std::string json = "{\"__metadata__\":{\"format\":\"cnn\",\"format_version\":\"1\",\"arch\":\"" +
                       std::string(kArchJson) + "\"";
    for (int i = 0; i < 200000; i++) json += ",\"k" + std::to_string(i) + "\":\"\"";
    json += "}," + kW + "," + kB + "}";
    std::string p = write("meta.safetensors", st_file(json, f32s(10, 0.5f)));
    int rc = exit_status_within(10.0, [&] {
        cnn_model *m = nullptr;
        cnn_status s = cnn_model_load(p.c_str(), &m);
        /* refusing is fine, if it says why */
        if (s != CNN_OK && !strstr(cnn_errmsg(), p.c_str())) _exit(3);
        cnn_model_free(m);
    });
    EXPECT_NE(rc, -1) << "cnn_model_load of 200000 metadata keys took more than 10 s";
    EXPECT_EQ(rc, 0) << "the refusal does not name the file (3) or the child crashed";
}

/* FINDINGS.md F2: the architecture in a model file had no size limit (an
 * architecture file has 64 KiB): 400000 "relu" lines in a 2 MB file took
 * 190 MB and 4 s, so a 100 MB header could ask for ~10 GB. */
TEST_F(Hostile, SafetensorsHugeArchitectureIsRefused)
{
    std::string arch = "input 1x2x2\\nflatten\\n";
    for (int i = 0; i < 20000; i++) arch += "relu\\n";
    arch += "dense 2\\n";
    std::string json = "{" + st_meta(arch.c_str()) + "," +
                       st_tensor("20002.weight", "F32", "[2,4]", 0, 32) + "," +
                       st_tensor("20002.bias", "F32", "[2]", 32, 40) + "}";
    std::string p = write("layers.safetensors", st_file(json, f32s(10, 0.5f)));
    cnn_model *m = nullptr;
    EXPECT_TRUE(fails_with(cnn_model_load(p.c_str(), &m), CNN_ERR_FORMAT, {p, "'arch'", "limit"}));
    EXPECT_EQ(m, nullptr);
    cnn_model_free(m);
}

/* --------------------------------------------------------- architectures */

TEST_F(Hostile, ArchHandMade)
{
    struct Case {
        const char *what;
        const char *text;
        cnn_status want;
        const char *problem;
    } cases[] = {
        {"unknown layer", "input 1x4x4\nfrobnicate 3\n", CNN_ERR_PARSE, "arch:2"},
        {"negative filters", "input 1x4x4\nconv -3 3x3\nflatten\ndense 2\n", CNN_ERR_PARSE,
         "arch:2"},
        {"not a number", "input 1x4x4\nconv x 3x3\nflatten\ndense 2\n", CNN_ERR_PARSE, "arch:2"},
        {"number overflows int", "input 1x4x4\nconv 99999999999999999999 3x3\n", CNN_ERR_PARSE,
         "arch:2"},
        {"shrinks to zero", "input 1x2x2\nconv 1 5x5\nflatten\ndense 2\n", CNN_ERR_PARSE, "arch:2"},
        {"pool to zero", "input 1x3x3\nmaxpool 4\nflatten\ndense 2\n", CNN_ERR_PARSE, "arch:2"},
        {"dense on a picture", "input 1x4x4\ndense 3\n", CNN_ERR_PARSE, "arch"},
        {"no input line", "conv 1 3x3\n", CNN_ERR_PARSE, "arch:1"},
        {"empty", "", CNN_ERR_PARSE, "arch"},
        {"only comments", "# nothing\n\n   \n", CNN_ERR_PARSE, "arch"},
        {"input only", "input 1x4x4\n", CNN_ERR_PARSE, "no layers"},
        {"input twice", "input 1x4x4\ninput 1x4x4\n", CNN_ERR_PARSE, "arch:2"},
        {"zero input", "input 0x4x4\nflatten\ndense 2\n", CNN_ERR_PARSE, "arch:1"},
        {"huge input", "input 65536x65536x65536\nflatten\ndense 2\n", CNN_ERR_PARSE, "arch:1"},
        {"unknown option", "input 1x4x4\nconv 2 3x3 colour=blue\nflatten\ndense 2\n",
         CNN_ERR_PARSE, "colour"},
        {"reflect pad wider than the image", "input 1x2x2\nconv 1 3x3 pad=2 padmode=reflect\n"
                                             "flatten\ndense 2\n",
         CNN_ERR_PARSE, "arch:2"},
        {"dropout of 1", "input 1x4x4\nflatten\ndropout 1.5\ndense 2\n", CNN_ERR_PARSE, "arch:3"},
        {"a NaN slope", "input 1x4x4\nleaky_relu nan\nflatten\ndense 2\n", CNN_ERR_PARSE,
         "arch:2"},
        {"too many words", "input 1x4x4\nrelu a b c d e f g h i j k l m n o p q r s\n",
         CNN_ERR_PARSE, "arch:2"},
        {"one dense layer too large", "input 1x65536x1\nflatten\ndense 65536\n", CNN_ERR_PARSE,
         "arch:3"},
        /* each layer at the per-layer limit, together over the 16 GiB cap */
        {"too large to allocate", "input 1x65536x1\nflatten\ndense 32768\ndense 65536\n",
         CNN_ERR_NOMEM, "GiB"},
    };
    for (const auto &c : cases) {
        cnn_model *m = nullptr;
        EXPECT_TRUE(fails_with(cnn_model_from_text(c.text, "arch", &m), c.want, {c.problem}))
            << c.what;
        EXPECT_EQ(m, nullptr) << c.what;
        cnn_model_free(m);
    }
}

/* ----------------------------------------------------------------- images */

Bytes png_chunk(const char *type, const Bytes &d)
{
    Bytes td = Bytes(type, 4) + d;
    uint32_t crc = (uint32_t)crc32(0, (const Bytef *)td.data(), (uInt)td.size());
    return be32((uint32_t)d.size()) + td + be32(crc);
}

Bytes png_gray(uint32_t w, uint32_t h, const Bytes &rows_with_filters)
{
    uLongf n = compressBound(rows_with_filters.size());
    Bytes z(n, '\0');
    compress((Bytef *)z.data(), &n, (const Bytef *)rows_with_filters.data(),
             rows_with_filters.size());
    z.resize(n);
    return Bytes("\x89PNG\r\n\x1a\n", 8) +
           png_chunk("IHDR", be32(w) + be32(h) + Bytes("\x08\x00\x00\x00\x00", 5)) +
           png_chunk("IDAT", z) + png_chunk("IEND", "");
}

Bytes digit_rows(int w, int h)
{
    Bytes b;
    for (int y = 0; y < h; y++) {
        b.push_back(0);
        for (int x = 0; x < w; x++) b.push_back((x == w / 2 || y == h / 3) ? (char)255 : 0);
    }
    return b;
}

TEST_F(Hostile, ImagesHandMade)
{
    Bytes good = png_gray(8, 10, digit_rows(8, 10));
    {
        std::string p = write("good.png", good);
        uint8_t out[28 * 28];
        ASSERT_EQ(cnn_image_load_mnist(p.c_str(), out), CNN_OK) << cnn_errmsg();
    }
    Bytes jpeg = read_file(kCorpus / "image" / "python.jpg");
    struct Case {
        const char *what;
        Bytes file;
        const char *problem;
    } cases[] = {
        {"png cut in the IDAT", good.substr(0, 50), "PNG"},
        {"png without IEND", good.substr(0, good.size() - 12), ""},
        {"png zero width", png_gray(0, 10, digit_rows(0, 10)), "PNG"},
        {"png huge", png_gray(100000, 100000, digit_rows(8, 1)), "too large"},
        {"png 16384 x 16384 (above the pixel cap)", png_gray(16384, 16384, digit_rows(8, 1)),
         "too large"},
        {"jpeg cut in half", jpeg.substr(0, jpeg.size() / 2), "JPEG"},
        {"jpeg header only", jpeg.substr(0, 20), "JPEG"},
        {"pgm zero size", "P5 0 0 255\n", "zero-size"},
        {"pgm huge", "P5 99999 99999 255\n", "too large"},
        {"pgm short", "P5 4 4 255\n" + Bytes(10, 'x'), "truncated"},
        {"pgm bad maxval", "P5 4 4 0\n" + Bytes(16, 'x'), "maximum value"},
        {"ascii pgm value over maxval", "P2 2 1 15\n3 99\n", "corrupt"},
        {"unknown magic", "GIF90a..........", "unknown magic"},
        {"bmp truncated", Bytes("BM", 2) + Bytes(52, '\0'), ""},
        {"empty", "", "empty"},
    };
    for (const auto &c : cases) {
        std::string p = write("bad.img", c.file);
        uint8_t out[28 * 28];
        EXPECT_TRUE(fails_with(cnn_image_load_mnist(p.c_str(), out), CNN_ERR_FORMAT,
                               {p, c.problem}))
            << c.what;
    }
    uint8_t out[28 * 28];
    EXPECT_TRUE(fails_with(cnn_image_load_mnist(dir.c_str(), out), CNN_ERR_IO, {dir, "directory"}));
}

/* FINDINGS.md F3 (fuzz_image timeout): 30 bytes of GIF announcing
 * 6913x8249 and holding no pixels decoded for 2.5 s (15 s under ASan) into
 * 280 MB of background, then failed as "blank". */
TEST_F(Hostile, ImageDecompressionBombIsRefusedBeforeDecoding)
{
    Bytes gif = read_file(kCorpus / "image" / "regress_F3_gif_bomb.gif");
    ASSERT_EQ(gif.size(), 30u);
    std::string p = write("bomb.gif", gif);
    uint8_t out[28 * 28];
    EXPECT_TRUE(fails_with(cnn_image_load_mnist(p.c_str(), out), CNN_ERR_FORMAT,
                           {p, "truncated GIF", "6913x8249"}));
    /* the same for PNG: a header alone, promising 16000x4000 */
    Bytes png = png_gray(16000, 4000, digit_rows(8, 2));
    p = write("bomb.png", png);
    EXPECT_TRUE(fails_with(cnn_image_load_mnist(p.c_str(), out), CNN_ERR_FORMAT,
                           {p, "truncated PNG", "16000x4000"}));
}

/* FINDINGS.md F6 (fuzz_image): 45 bytes of PNG whose eXIf chunk claims
 * 0x2000001a bytes made libpng allocate 512 MB before reading it (the
 * sanitizer's allocation limit caught it). Every chunk must now fit in the
 * file before libpng sees it; the same for any chunk type. */
TEST_F(Hostile, PngChunkLongerThanTheFileIsRefusedBeforeLibpng)
{
    Bytes f6 = read_file(kCorpus / "image" / "regress_F6_png_chunk_512mb.png");
    ASSERT_EQ(f6.size(), 45u);
    std::string p = write("f6.png", f6);
    uint8_t out[28 * 28];
    EXPECT_TRUE(fails_with(cnn_image_load_mnist(p.c_str(), out), CNN_ERR_FORMAT,
                           {p, "truncated or corrupt PNG", "eXIf chunk", "claims 536870938 bytes"}));
    Bytes good = png_gray(8, 10, digit_rows(8, 10));
    for (const char *type : {"zTXt", "iCCP", "tEXt", "abcd", "IDAT"}) {
        Bytes big = good.substr(0, 33) + be32(0x7fffffffu) + type + "xyz";
        p = write("big-chunk.png", big);
        EXPECT_TRUE(fails_with(cnn_image_load_mnist(p.c_str(), out), CNN_ERR_FORMAT,
                               {p, std::string(type) + " chunk", "claims 2147483647 bytes"}))
            << type;
    }
}

/* ------------------------------------------------ the fuzz corpora, replayed */

/* What tests/fuzz/fuzz_idx.c does with one input (flag byte, LE32 length
 * of the images file, images, labels), minus the in-harness gzip. */
TEST_F(Hostile, ReplayIdxCorpus)
{
    auto files = corpus_files("idx");
    ASSERT_FALSE(files.empty()) << kCorpus / "idx";
    int ok = 0;
    for (const auto &f : files) {
        Bytes in = read_file(f);
        if (in.size() < 5) continue;
        uint32_t len = (uint8_t)in[1] | (uint8_t)in[2] << 8 | (uint8_t)in[3] << 16 |
                       (uint32_t)(uint8_t)in[4] << 24;
        size_t rest = in.size() - 5, split = len % (rest + 1);
        Bytes img = in.substr(5, split), lab = in.substr(5 + split);
        if (in[0] & 1) img = gzip(img);
        if (in[0] & 2) lab = gzip(lab);
        std::string ip = write("images", img), lp = write("labels", lab);
        cnn_dataset d;
        cnn_status s = cnn_idx_load(ip.c_str(), lp.c_str(), &d);
        if (s) {
            std::string msg = cnn_errmsg();
            EXPECT_TRUE(msg.find(ip) != std::string::npos || msg.find(lp) != std::string::npos)
                << f << ": " << msg;
            EXPECT_EQ(d.images, nullptr) << f;
            continue;
        }
        ok++;
        int maxl = 0;
        for (int i = 0; i < d.n; i++) maxl = std::max<int>(maxl, d.labels[i]);
        EXPECT_EQ(d.classes, maxl + 1) << f;
        cnn_dataset_free(&d);
    }
    EXPECT_GT(ok, 0) << "no input in the IDX corpus loads";
}

TEST_F(Hostile, ReplayImageCorpus)
{
    auto files = corpus_files("image");
    ASSERT_FALSE(files.empty());
    int ok = 0;
    for (const auto &f : files) {
        uint8_t out[28 * 28];
        cnn_status s = cnn_image_load_mnist(f.c_str(), out);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find(f.string()), std::string::npos)
                << f << ": " << cnn_errmsg();
            continue;
        }
        ok++;
        int sum = 0;
        for (uint8_t v : out) sum += v;
        EXPECT_GT(sum, 0) << f;
        /* and the harness's second use: the bytes as a grayscale picture */
        Bytes in = read_file(f);
        if (in.size() < 2) continue;
        int w = (uint8_t)in[0] % 64 + 1, h = (int)((in.size() - 1) / w);
        if (h < 1) continue;
        std::vector<uint8_t> gray(in.begin() + 1, in.begin() + 1 + (size_t)w * h);
        s = cnn_image_preprocess_mnist(gray.data(), w, h, out);
        EXPECT_TRUE(s == CNN_OK || s == CNN_ERR_FORMAT) << f << ": " << cnn_errmsg();
    }
    EXPECT_GT(ok, 0) << "no image in the corpus loads";
}

TEST_F(Hostile, ReplayArchCorpus)
{
    auto files = corpus_files("arch");
    ASSERT_FALSE(files.empty());
    int ok = 0;
    for (const auto &f : files) {
        Bytes text = read_file(f);
        text = text.substr(0, strlen(text.c_str())); /* the harness stops at a NUL */
        cnn_model *m = nullptr;
        /* the harness fails allocations above 64 MB; so does this, before
         * drawing millions of weights (1M floats of parameters) */
        cnn_status s = cnn_model_from_text_limited(text.c_str(), "fuzz.arch", (size_t)1 << 20, &m);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()), "") << f;
            if (s == CNN_ERR_PARSE)
                EXPECT_NE(std::string(cnn_errmsg()).find("fuzz.arch"), std::string::npos)
                    << f << ": " << cnn_errmsg();
            EXPECT_EQ(m, nullptr) << f;
            continue;
        }
        ok++;
        /* the harness runs models up to 1e7 FLOPs; 400 of those would take
         * this test past its budget, so only the small ones run here */
        if (cnn_model_flops(m) <= 1e6) {
            int c, h, w;
            cnn_model_input_shape(m, &c, &h, &w);
            ASSERT_EQ(cnn_model_set_batch(m, 2), CNN_OK) << f << ": " << cnn_errmsg();
            std::vector<float> x((size_t)2 * c * h * w);
            for (size_t i = 0; i < x.size(); i++) x[i] = (float)((i * 7919u) % 201u) / 100.f - 1.f;
            const float *y;
            EXPECT_EQ(cnn_model_forward(m, x.data(), 2, 0, &y), CNN_OK) << f << cnn_errmsg();
            cnn_optim_config oc = cnn_optim_defaults(CNN_OPT_SGD);
            ASSERT_EQ(cnn_model_set_optimizer(m, &oc), CNN_OK);
            int k = cnn_model_output_size(m);
            uint8_t labels[2] = {0, (uint8_t)(k - 1 > 255 ? 255 : k - 1)};
            cnn_batch_stats st;
            cnn_status ts =
                cnn_model_train_batch(m, x.data(), labels, 2, cnn_loss{CNN_LOSS_XENT, 1.f}, &st);
            EXPECT_TRUE(ts == CNN_OK || ts == CNN_ERR_NUMERIC) << f << ": " << cnn_errmsg();
        }
        cnn_model_free(m);
    }
    EXPECT_GT(ok, 0) << "no architecture in the corpus parses";
}

TEST_F(Hostile, ReplaySafetensorsCorpus)
{
    auto files = corpus_files("safetensors");
    ASSERT_FALSE(files.empty());
    cnn_model *fixed = nullptr;
    ASSERT_EQ(cnn_model_from_text("input 1x6x6\nconv 2 3x3 pad=1\nbatchnorm\nrelu\nmaxpool 2\n"
                                  "flatten\ndense 3\nsoftmax\n",
                                  "fixed", &fixed),
              CNN_OK)
        << cnn_errmsg();
    int ok = 0, ok_weights = 0;
    for (const auto &f : files) {
        cnn_model *m = nullptr;
        cnn_status s = cnn_model_load(f.c_str(), &m);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find(f.string()), std::string::npos)
                << f << ": " << cnn_errmsg();
            EXPECT_EQ(m, nullptr);
        } else {
            ok++;
            std::string out = dir + "/again.safetensors";
            ASSERT_EQ(cnn_model_save(m, out.c_str(), 1), CNN_OK) << f << ": " << cnn_errmsg();
            cnn_model *m2 = nullptr;
            ASSERT_EQ(cnn_model_load(out.c_str(), &m2), CNN_OK) << f << ": " << cnn_errmsg();
            EXPECT_STREQ(cnn_model_arch(m), cnn_model_arch(m2)) << f;
            ASSERT_EQ(cnn_model_num_tensors(m), cnn_model_num_tensors(m2)) << f;
            for (int i = 0; i < cnn_model_num_tensors(m); i++) {
                cnn_tensor a, b;
                cnn_model_tensor(m, i, &a);
                cnn_model_tensor(m2, i, &b);
                ASSERT_EQ(a.size, b.size);
                EXPECT_EQ(memcmp(a.data, b.data, a.size * sizeof(float)), 0) << f << " " << a.name;
            }
            cnn_model_free(m2);
            cnn_model_free(m);
        }
        s = cnn_model_load_weights(fixed, f.c_str());
        if (s)
            EXPECT_NE(std::string(cnn_errmsg()).find(f.string()), std::string::npos)
                << f << ": " << cnn_errmsg();
        else
            ok_weights++;
    }
    EXPECT_GT(ok, 0) << "no file in the corpus loads as a model";
    EXPECT_GT(ok_weights, 0) << "no file in the corpus fits the fixed model";
    cnn_model_free(fixed);
}


/* ------------------------------------------------ CSV, caches, folders */

Bytes le32(uint32_t v)
{
    Bytes b;
    for (int i = 0; i < 4; i++) b.push_back((char)(v >> (8 * i)));
    return b;
}

/* A cache file as cache.c writes it (the fields may be made wrong). */
struct CacheFields {
    uint32_t version = 1, header = 128, c = 1, h = 2, w = 2, classes = 2, prep = 1;
    uint64_t count = 2, images_at = 128, labels_at = 0, names_at = 0, names_size = 0, size = 0;
    Bytes images = Bytes(8, '\x05'), labels = Bytes("\0\0\1\0", 4), names = Bytes("a\0b\0", 4);
};

Bytes cache_bytes(CacheFields f, bool fix = true)
{
    if (fix) {
        f.labels_at = f.images_at + f.images.size();
        f.names_at = f.labels_at + f.labels.size();
        f.names_size = f.names.size();
        f.size = f.names_at + f.names.size();
    }
    Bytes b = "CNNCACHE" + le32(f.version) + le32(f.header) + le32(f.c) + le32(f.h) + le32(f.w) +
              le32(f.classes) + le64(f.count) + le64(7) + le64(f.images_at) + le64(f.labels_at) +
              le64(f.names_at) + le64(f.names_size) + le32(f.prep) + le32(0) + le64(f.size);
    b.resize(128, '\0');
    return b + f.images + f.labels + f.names;
}

TEST_F(Hostile, CacheHandMade)
{
    cnn_cache c;
    std::string good = write("good.cnncache", cache_bytes({}));
    ASSERT_EQ(cnn_cache_open(good.c_str(), &c), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(c.n, 2);
    cnn_cache_close(&c);

    struct Case {
        const char *name;
        Bytes bytes;
        const char *problem;
    };
    CacheFields f;
    std::vector<Case> cases;
    cases.push_back({"short", cache_bytes({}).substr(0, 100), "shorter than its 128-byte header"});
    cases.push_back({"truncated", cache_bytes({}).substr(0, 140), "its size is not the one its header records"});
    Bytes magic = cache_bytes({});
    magic[0] = 'X';
    cases.push_back({"magic", magic, "no CNNCACHE magic"});
    f = {};
    f.version = 2;
    cases.push_back({"version", cache_bytes(f), "another version"});
    f = {};
    f.count = 1ull << 40;
    cases.push_back({"count", cache_bytes(f), "image count out of range"});
    f = {};
    f.count = 3; /* 3 images of 4 bytes need 12: they would overlap the labels */
    cases.push_back({"count_vs_size", cache_bytes(f), "not laid out end to end"});
    f = {};
    f.count = 30; /* 30 images of 4 bytes: past the end of the file */
    cases.push_back({"count_past_end", cache_bytes(f), "its images lie outside the file"});
    f = {};
    f.h = 1u << 31;
    cases.push_back({"shape", cache_bytes(f), "shape out of range"});
    f = {};
    f.classes = 300;
    cases.push_back({"classes", cache_bytes(f), "class count out of range"});
    f = {};
    f.labels = Bytes("\0\0\2\0", 4);
    cases.push_back({"label", cache_bytes(f), "image 1 has label 2, but there are 2 classes"});
    f = {};
    f.names = Bytes("a\0b", 3);
    cases.push_back({"names_end", cache_bytes(f), "a class name without its end"});
    f = {};
    f.names = Bytes("a\0\0", 3);
    cases.push_back({"empty_name", cache_bytes(f), "the name of class 1 is empty"});
    f = {};
    f.names = Bytes("a\0b\0c\0", 6);
    cases.push_back({"extra_names", cache_bytes(f), "bytes after its class names"});
    f = {};
    f.prep = 9;
    cases.push_back({"prep", cache_bytes(f), "unknown preparation"});
    Bytes far = cache_bytes({});
    for (int i = 0; i < 8; i++) far[56 + i] = (char)0xff; /* labels offset 2^64 - 1 */
    cases.push_back({"labels_offset", far, "its labels lie outside the file"});
    for (const auto &k : cases) {
        std::string p = write(std::string(k.name) + ".cnncache", k.bytes);
        EXPECT_TRUE(fails_with(cnn_cache_open(p.c_str(), &c), CNN_ERR_FORMAT, {p, k.problem})) << k.name;
        EXPECT_EQ(c.map, nullptr) << k.name;
    }
}

TEST_F(Hostile, ReplayCsvCorpus)
{
    auto files = corpus_files("csv");
    ASSERT_FALSE(files.empty()) << kCorpus / "csv";
    int ok = 0;
    for (const auto &f : files) {
        Bytes in = read_file(f);
        if (in.empty()) continue;
        int c = in[0] & 1 ? 3 : 1, h = 1 + ((uint8_t)in[0] >> 1 & 3), w = 1 + ((uint8_t)in[0] >> 3 & 3);
        std::string p = write("in.csv", in.substr(1));
        int rows = 0;
        auto count = [](void *ctx, const uint8_t *, int label) -> cnn_status {
            EXPECT_LT(label, CNN_MAX_CLASSES);
            ++*(int *)ctx;
            return CNN_OK;
        };
        cnn_status s = cnn_csv_read(p.c_str(), c, h, w, count, &rows);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find(p), std::string::npos) << f << ": " << cnn_errmsg();
            continue;
        }
        ok++;
        EXPECT_GT(rows, 0) << f;
        int rows2 = 0;
        EXPECT_EQ(cnn_csv_parse(in.data() + 1, in.size() - 1, "mem", c, h, w, count, &rows2), CNN_OK) << f;
        EXPECT_EQ(rows, rows2) << f;
    }
    EXPECT_GT(ok, 0) << "no file in the CSV corpus reads";
}

TEST_F(Hostile, ReplayCacheCorpus)
{
    auto files = corpus_files("cache");
    ASSERT_FALSE(files.empty()) << kCorpus / "cache";
    int ok = 0;
    for (const auto &f : files) {
        std::string p = write("in.cnncache", read_file(f));
        cnn_cache c;
        cnn_status s = cnn_cache_open(p.c_str(), &c);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find(p), std::string::npos) << f << ": " << cnn_errmsg();
            continue;
        }
        ok++;
        std::vector<uint8_t> scratch((size_t)c.c * c.h * c.w);
        long sum = 0;
        for (int i = 0; i < c.n; i++) {
            EXPECT_LT(c.labels[i], c.classes) << f;
            const uint8_t *img = cnn_cache_image(&c, i, scratch.data());
            for (size_t j = 0; j < scratch.size(); j++) sum += img[j];
        }
        EXPECT_GE(sum, 0);
        cnn_cache_close(&c);
    }
    EXPECT_GT(ok, 0) << "no file in the cache corpus opens";
}

TEST_F(Hostile, ReplayFolderCorpus)
{
    auto files = corpus_files("folder");
    ASSERT_FALSE(files.empty()) << kCorpus / "folder";
    int ok = 0;
    for (const auto &f : files) {
        Bytes in = read_file(f);
        cnn_folder fl;
        cnn_status s = cnn_folder_from_listing(in.data(), in.size(), "root", &fl);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find("root"), std::string::npos) << f << ": " << cnn_errmsg();
            continue;
        }
        ok++;
        for (int k = 1; k < fl.nclasses; k++) EXPECT_LT(strcmp(fl.classes[k - 1], fl.classes[k]), 0) << f;
        for (int i = 0; i < fl.nfiles; i++) EXPECT_LT(fl.labels[i], fl.nclasses) << f;
        cnn_folder_free(&fl);
    }
    EXPECT_GT(ok, 0) << "no listing in the folder corpus is accepted";
}

} // namespace
