/* test_hostile.cpp — hostile inputs for the loaders (IDX, safetensors,
 * architecture text, images, CSV files, cache files, image-folder names),
 * the checkpoints `cnn train --resume` reads and the command line:
 * hand-made malformed files, the regressions the fuzzers found
 * (tests/fuzz/FINDINGS.md), and a replay of the fuzz corpora through the
 * same calls and checks as the libFuzzer targets, so every build (and the
 * sanitizer build above all) runs them.
 *
 * Each case checks the status code and that the message names the file (or
 * the architecture) and the problem. */
#include "testutil.h"
extern "C" {
#include "io/dataset.h"
#include "cli/checkpoint.h"
#include "cli/train.h"
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

namespace fs = std::filesystem;
using Bytes = std::string; /* binary-safe and easy to concatenate */

namespace {

const fs::path kCorpus = fs::path(CNN_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

class Hostile : public ::testing::Test {
  protected:
    TempDir tmp{"cnn_hostile"};
    const std::string dir = tmp.path.string();
    void SetUp() override { ASSERT_FALSE(dir.empty()) << "no temporary directory"; }
    std::string write(const std::string &name, const Bytes &b)
    {
        std::string p = dir + "/" + name;
        std::ofstream f(p, std::ios::binary);
        f.write(b.data(), (std::streamsize)b.size());
        EXPECT_TRUE(f.good()) << p;
        return p;
    }
};

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

Bytes read_file(const fs::path &p)
{
    std::ifstream f(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<fs::path> corpus_files(const std::string &target)
{
    std::vector<fs::path> v;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(kCorpus / target, ec))
        if (e.is_regular_file()) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
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

/* ------------------------------------ the cnn program: checkpoints, options */

/* A call's stdout and stderr, captured as the fuzz targets capture them. */
struct Printed {
    std::string out, err;
};

int captured(Printed &p, const std::function<int()> &call)
{
    fflush(stdout);
    fflush(stderr);
    char *ob = nullptr, *eb = nullptr;
    size_t ol = 0, el = 0;
    FILE *real_out = stdout, *real_err = stderr;
    FILE *o = open_memstream(&ob, &ol), *e = open_memstream(&eb, &el);
    if (!o || !e) {
        ADD_FAILURE() << "open_memstream failed";
        return -100;
    }
    stdout = o;
    stderr = e;
    int rc = call();
    fclose(o);
    fclose(e);
    stdout = real_out;
    stderr = real_err;
    p.out.assign(ob, ol);
    p.err.assign(eb, el);
    free(ob);
    free(eb);
    return rc;
}

bool starts(const std::string &s, const std::string &p) { return s.rfind(p, 0) == 0; }
bool ends(const std::string &s, const std::string &p)
{
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

/* An input split into arguments at NUL bytes (a final NUL ends the last). */
std::vector<std::string> split_args(const Bytes &in)
{
    std::vector<std::string> v;
    size_t start = 0;
    for (size_t i = 0; i <= in.size(); i++) {
        if (i < in.size() && in[i] != 0) continue;
        if (i == in.size() && start == in.size() && !in.empty() && in.back() == 0) break;
        v.push_back(in.substr(start, i - start));
        start = i + 1;
    }
    return v;
}

/* An option's value formats to a text that reads back to the same text. */
::testing::AssertionResult reads_back(const cli_opt &o)
{
    char text[4096], again[4096], msg[256];
    cli_opt_format(&o, text, sizeof text);
    if (o.kind == CLI_STR && !*(const char *const *)o.dest) return ::testing::AssertionSuccess();
    union {
        int i;
        uint64_t u;
        double d;
        const char *s;
    } scratch{};
    cli_opt tmp = o;
    tmp.dest = &scratch;
    if (cli_opt_check(&tmp, text, msg, sizeof msg))
        return ::testing::AssertionFailure() << "--" << o.name << " " << text << " is refused: " << msg;
    cli_opt_format(&tmp, again, sizeof again);
    if (strcmp(text, again) != 0)
        return ::testing::AssertionFailure() << "--" << o.name << " " << text << " reads back as " << again;
    return ::testing::AssertionSuccess();
}

/* cli_parse with a command's real table, checked as tests/fuzz/fuzz_cli.c
 * checks it: 0, 2 (one usage message on stderr) or -1 (--help), nothing on
 * stdout, every value given in range and reading back. */
int parse_checked(const std::string &what, const char *cmd, std::vector<char *> argv, cli_opt *opts,
                  char **pos, int max_pos, int *npos)
{
    Printed p;
    int rc = captured(p, [&] {
        return cli_parse(cmd, (int)argv.size(), argv.data(), opts, pos, max_pos, npos);
    });
    EXPECT_TRUE(rc == CLI_OK || rc == CLI_EUSAGE || rc == -1) << what << ": " << rc;
    EXPECT_EQ(p.out, "") << what;
    if (rc == CLI_EUSAGE) {
        EXPECT_TRUE(starts(p.err, std::string("cnn ") + cmd + ": ") &&
                    ends(p.err, std::string("\nTry 'cnn ") + cmd + " --help'.\n"))
            << what << ": " << p.err;
        return rc;
    }
    EXPECT_EQ(p.err, "") << what;
    if (rc) return rc;
    /* the text that set each option last (the parse succeeded) */
    std::vector<const char *> text(64, nullptr);
    for (size_t i = 1, only_pos = 0; i < argv.size(); i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') continue;
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        for (int j = 0; opts[j].name; j++)
            if (strlen(opts[j].name) == n && strncmp(opts[j].name, a + 2, n) == 0)
                text[j] = opts[j].kind == CLI_FLAG ? "1" : eq ? eq + 1 : argv[++i];
    }
    for (int i = 0; opts[i].name; i++) {
        const cli_opt &o = opts[i];
        if (!o.given) continue;
        EXPECT_NE(text[i], nullptr) << what << ": --" << o.name;
        if (!text[i]) continue;
        /* a number's text starts as one (F7) */
        const char *t = text[i];
        if (o.kind == CLI_U64) EXPECT_TRUE(isdigit((unsigned char)t[0])) << what << ": --" << o.name << " '" << t << "'";
        if (o.kind == CLI_INT) EXPECT_TRUE(isdigit((unsigned char)t[t[0] == '-'])) << what << ": --" << o.name << " '" << t << "'";
        if (o.kind == CLI_FLOAT || o.kind == CLI_FLOAT_ABOVE)
            EXPECT_TRUE(isdigit((unsigned char)t[t[0] == '-']) || t[t[0] == '-'] == '.')
                << what << ": --" << o.name << " '" << t << "'";
        if (o.kind == CLI_INT) {
            int v = *(const int *)o.dest;
            EXPECT_TRUE(v >= o.lo && v <= o.hi) << what << ": --" << o.name << " " << v;
        } else if (o.kind == CLI_FLOAT || o.kind == CLI_FLOAT_ABOVE) {
            double v = *(const double *)o.dest;
            EXPECT_TRUE(std::isfinite(v) && (o.kind == CLI_FLOAT ? v >= o.lo : v > o.lo) && v <= o.hi)
                << what << ": --" << o.name << " " << v;
        }
        EXPECT_TRUE(reads_back(o)) << what;
    }
    return rc;
}

void mem_limit_checked(const std::string &what, const char *text)
{
    double bytes, pct;
    if (cli_mem_limit_parse(text, &bytes, &pct) != 0) return;
    EXPECT_TRUE(isdigit((unsigned char)text[0]) || text[0] == '.') << what << ": " << text;
    if (pct > 0) EXPECT_TRUE(pct <= 100 && bytes == 0 && ends(text, "%")) << what << ": " << text;
    else EXPECT_TRUE(bytes >= 1 && bytes < 0x1p64) << what << ": " << text;
}

/* What tests/fuzz/fuzz_cli.c does with one input: a command word and its
 * arguments (or, without one, the arguments for every command). */
void replay_cli(const std::string &what, const Bytes &in)
{
    std::vector<std::string> args = split_args(in);
    static const char *const cmds[] = {"train", "eval", "predict", "info"};
    int known = -1;
    for (int c = 0; c < 4 && !args.empty(); c++)
        if (args[0] == cmds[c]) known = c;
    for (int c = 0; c < 4; c++) {
        if (known >= 0 && c != known) continue;
        std::vector<char *> argv{(char *)cmds[c]};
        for (size_t i = known >= 0 ? 1 : 0; i < args.size(); i++) argv.push_back(args[i].data());
        if (c == 0) {
            train_cfg cfg;
            const char *mem;
            cli_opt opts[TRAIN_NOPTS + 1];
            train_options_init(&cfg, &mem, opts);
            if (parse_checked(what, "train", argv, opts, nullptr, 0, nullptr) != CLI_OK) continue;
            if (mem) mem_limit_checked(what, mem);
            opt_source src{};
            src.opts = opts;
            src.resume = cfg.resume;
            for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;
            run_choices x;
            Printed p;
            int rc = captured(p, [&] { return train_check_options(&cfg, &src, &x); });
            EXPECT_TRUE(rc == CLI_OK || (rc == CLI_EUSAGE && starts(p.err, "cnn train: --")))
                << what << ": " << rc << " " << p.err;
            if (rc) continue;
            for (int i = 0; opts[i].name; i++)
                if (train_listed(train_run_options, opts[i].name) ||
                    train_listed(train_output_options, opts[i].name))
                    EXPECT_TRUE(reads_back(opts[i])) << what << " (recorded)";
        } else if (c == 1) {
            eval_cfg cfg;
            cli_opt opts[EVAL_NOPTS + 1];
            cli_eval_options(&cfg, opts);
            if (parse_checked(what, "eval", argv, opts, nullptr, 0, nullptr) != CLI_OK) continue;
            cnn_kernels k;
            Printed p;
            int rc = captured(p, [&] { return cli_parse_kernels("eval", cfg.kernels, &k); });
            bool ok = strcmp(cfg.kernels, "ref") == 0 || strcmp(cfg.kernels, "fast") == 0;
            EXPECT_EQ(rc, ok ? CLI_OK : CLI_EUSAGE) << what;
            if (cfg.mem_limit) mem_limit_checked(what, cfg.mem_limit);
        } else if (c == 2) {
            predict_cfg cfg;
            cli_opt opts[PREDICT_NOPTS + 1];
            cli_predict_options(&cfg, opts);
            std::vector<char *> files(CLI_PREDICT_MAX_IMAGES);
            int n = 0;
            if (parse_checked(what, "predict", argv, opts, files.data(), CLI_PREDICT_MAX_IMAGES, &n) != CLI_OK)
                continue;
            if (cfg.mem_limit) mem_limit_checked(what, cfg.mem_limit);
        } else {
            info_cfg cfg;
            cli_opt opts[INFO_NOPTS + 1];
            cli_info_options(&cfg, opts);
            parse_checked(what, "info", argv, opts, nullptr, 0, nullptr);
        }
    }
}

/* F7: strtoll, strtoull and strtod skip white space and take a sign, so
 * `--seed " -15"` was the seed 18446744073709551601 (and " 5", "+5" were
 * taken as 5, "\t8" as --batch 8). A number's text starts as one. */
TEST_F(Hostile, OptionNumbersStartAsNumbers)
{
    struct Case {
        const char *flag, *value, *says;
    } refused[] = {
        {"--seed", " -15", "expected a whole number from 0 to 18446744073709551615, got ' -15'"},
        {"--seed", "+15", "got '+15'"},
        {"--seed", "\t15", "got '\t15'"},
        {"--epochs", " 5", "expected a whole number from 1 to 100000, got ' 5'"},
        {"--epochs", "+5", "got '+5'"},
        {"--epochs", "- 5", "got '- 5'"},
        {"--lr", " 0.1", "expected a number above 0 and at most 100, got ' 0.1'"},
        {"--momentum", "+0.5", "expected a number from 0 to 0.999999, got '+0.5'"},
        {"--batch", "\t8", "--batch: expected a whole number from 1 to 1000000 or 'all', got '\t8'"},
        {"--batch", "\n8", "got '\n8'"},
    };
    for (const Case &c : refused) {
        train_cfg cfg;
        const char *mem;
        cli_opt opts[TRAIN_NOPTS + 1];
        train_options_init(&cfg, &mem, opts);
        std::string flag = c.flag, value = c.value;
        std::vector<char *> argv{(char *)"train", flag.data(), value.data()};
        Printed p;
        int rc = captured(p, [&] { return cli_parse("train", 3, argv.data(), opts, nullptr, 0, nullptr); });
        if (rc == CLI_OK) {
            /* --batch is a text, read by train_check_options */
            opt_source src{};
            src.opts = opts;
            for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;
            run_choices x;
            rc = captured(p, [&] { return train_check_options(&cfg, &src, &x); });
        }
        EXPECT_EQ(rc, CLI_EUSAGE) << c.flag << " '" << c.value << "'";
        EXPECT_NE(p.err.find(c.says), std::string::npos) << c.flag << ": " << p.err;
    }
    /* what still reads: negative whole numbers where the range has them,
     * fractions without a leading digit */
    train_cfg cfg;
    const char *mem;
    cli_opt opts[TRAIN_NOPTS + 1];
    train_options_init(&cfg, &mem, opts);
    std::vector<std::string> args{"train", "--seed", "18446744073709551615", "--lr", ".5", "--epochs", "007",
                                  "--min-lr", "0", "--clip", "-0"};
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    Printed p;
    ASSERT_EQ(captured(p, [&] { return cli_parse("train", (int)argv.size(), argv.data(), opts, nullptr, 0, nullptr); }),
              CLI_OK)
        << p.err;
    EXPECT_EQ(cfg.seed, 18446744073709551615ull);
    EXPECT_EQ(cfg.lr, 0.5);
    EXPECT_EQ(cfg.epochs, 7);
    /* and a checkpoint's options are read by the same checks */
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_shapes_from_text("input 1x28x28\nflatten\ndense 10\nsoftmax\n", "arch", &m), CNN_OK);
    train_options_init(&cfg, &mem, opts);
    for (int i = 0; opts[i].name; i++) {
        int run = train_listed(train_run_options, opts[i].name);
        if (!run) continue;
        char key[64], val[256];
        snprintf(key, sizeof key, "train.opt.%s", opts[i].name);
        cli_opt_format(&opts[i], val, sizeof val);
        /* options resolved by train_check_options (--fit) have no value yet:
         * a checkpoint always holds what they resolved to */
        if (strcmp(opts[i].name, "fit") == 0) continue;
        ASSERT_EQ(cnn_model_set_meta(m, key, strcmp(opts[i].name, "seed") == 0 ? " -1" : val), CNN_OK);
    }
    opt_source src{};
    src.opts = opts;
    src.resume = "x.ckpt";
    int rc = captured(p, [&] { return train_options_from_checkpoint(m, &src); });
    EXPECT_EQ(rc, CLI_EDATA);
    EXPECT_NE(p.err.find("x.ckpt: train.opt.seed: expected a whole number"), std::string::npos) << p.err;
    for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
        free(src.owned[i]);
        free(src.recorded[i]);
    }
    cnn_model_free(m);
}

/* A checkpoint whose model cannot take its recorded loss (cce, but the model
 * ends without a softmax) is the checkpoint's fault: exit 1 naming it and
 * train.opt.loss. Only a --loss the command line gave is a usage error. */
TEST_F(Hostile, CheckpointLossTheModelCannotTakeIsTheCheckpoints)
{
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_shapes_from_text("input 1x28x28\nflatten\ndense 10\nflatten\n", "arch", &m), CNN_OK);
    for (int given = 0; given < 2; given++) {
        train_cfg cfg;
        const char *mem;
        cli_opt opts[TRAIN_NOPTS + 1];
        train_options_init(&cfg, &mem, opts);
        opt_source src{};
        src.opts = opts;
        src.resume = "x.ckpt";
        for (int i = 0; opts[i].name; i++)
            if (strcmp(opts[i].name, "loss") == 0) src.cmdline[i] = given;
        cnn_loss cce{};
        ASSERT_EQ(cnn_loss_parse("cce", &cce), CNN_OK);
        Printed p;
        int rc = captured(p, [&] { return train_check_loss(m, &src, cce); });
        EXPECT_EQ(p.out, "");
        if (given) {
            EXPECT_EQ(rc, CLI_EUSAGE);
            EXPECT_TRUE(starts(p.err, "cnn train: --loss: ")) << p.err;
        } else {
            EXPECT_EQ(rc, CLI_EDATA);
            EXPECT_TRUE(starts(p.err, "cnn train: --resume: x.ckpt: train.opt.loss: ")) << p.err;
            EXPECT_EQ(p.err.find("Try 'cnn train --help'"), std::string::npos) << p.err;
        }
    }
    cnn_model_free(m);
}

TEST_F(Hostile, ReplayCliCorpus)
{
    auto files = corpus_files("cli");
    ASSERT_FALSE(files.empty()) << kCorpus / "cli";
    for (const auto &f : files) replay_cli(f.filename().string(), read_file(f));
}

const char *meta_get(const void *ctx, const char *key)
{
    return cnn_model_get_meta((const cnn_model *)ctx, key);
}

int meta_set(void *ctx, const char *key, const char *value)
{
    if (!value) {
        cnn_model_unset_meta((cnn_model *)ctx, key);
        return 0;
    }
    return cnn_model_set_meta((cnn_model *)ctx, key, value) == CNN_OK ? 0 : -1;
}

/* A run resumed from a checkpoint, as tests/fuzz/fuzz_checkpoint.c resumes
 * it: cli_train's --resume path on a training file of 60000 images. */
struct Resumed {
    train_cfg c{};
    const char *mem_limit = nullptr;
    cli_opt opts[TRAIN_NOPTS + 1]{};
    opt_source src{};
    run_choices x{};
    cli_ckpt_run run{};
    cli_ckpt_state st{};
    cli_norm nm{};
    cli_classes names{};
    std::string stage, message; /* where and why it was refused */
    std::vector<std::string> args; /* the arguments next to --resume: options point into them */
    Resumed() = default;
    ~Resumed()
    {
        for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
            free(src.owned[i]);
            free(src.recorded[i]);
        }
        cli_ckpt_state_free(&st);
        cli_classes_free(&names);
    }
    Resumed(const Resumed &) = delete;
    Resumed &operator=(const Resumed &) = delete;
};

const int kTrainImages = 60000;

/* A refusal: exit 1 naming the checkpoint (if `name`) and one of the keys,
 * or exit 2 about an option the command line gave. */
::testing::AssertionResult refusal_ok(const Resumed &r, int rc, const Printed &p, const char *name,
                                      std::vector<std::string> keys)
{
    if (!p.out.empty()) return ::testing::AssertionFailure() << r.stage << " printed on stdout";
    if (rc == CLI_EUSAGE) {
        if (!starts(p.err, "cnn train: --"))
            return ::testing::AssertionFailure() << r.stage << ": a usage error naming no option: " << p.err;
        std::string opt = p.err.substr(13, strcspn(p.err.c_str() + 13, " :="));
        for (int i = 0; r.opts[i].name; i++)
            if (opt == r.opts[i].name && r.src.cmdline[i]) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << r.stage << ": a usage error about --" << opt
                                             << ", not given on the command line: " << p.err;
    }
    if (rc != CLI_EDATA) return ::testing::AssertionFailure() << r.stage << " returned " << rc;
    if (!starts(p.err, "cnn train: "))
        return ::testing::AssertionFailure() << r.stage << ": exit 1 without a message";
    if (name && p.err.find(name) == std::string::npos)
        return ::testing::AssertionFailure() << r.stage << ": the checkpoint is not named: " << p.err;
    for (const auto &k : keys)
        if (p.err.find(k) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << r.stage << ": no field named: " << p.err;
}

/* Returns CLI_OK if the run would train; a refusal is checked. */
int resume_checked(cnn_model *m, const char *name, const std::vector<std::string> &extra, Resumed &r)
{
    train_options_init(&r.c, &r.mem_limit, r.opts);
    r.args = extra;
    std::vector<char *> argv{(char *)"train", (char *)"--resume", (char *)name};
    for (auto &a : r.args) argv.push_back(a.data());
    Printed p;
    r.stage = "cli_parse";
    int rc = captured(p, [&] { return cli_parse(TRAIN_CMD, (int)argv.size(), argv.data(), r.opts, nullptr, 0, nullptr); });
    if (rc) return rc;
    name = r.c.resume;
    double b, pc;
    if (r.mem_limit && cli_mem_limit_parse(r.mem_limit, &b, &pc)) return CLI_EUSAGE;
    r.src.opts = r.opts;
    r.src.resume = r.c.resume;
    for (int i = 0; r.opts[i].name; i++) r.src.cmdline[i] = r.opts[i].given;
    if (r.c.init || (r.c.data && cli_opt_find(r.opts, "dataset")->given)) return CLI_EUSAGE;
    if (!cli_ckpt_is_checkpoint(meta_get, m)) return CLI_EDATA;

    r.stage = "train_options_from_checkpoint";
    rc = captured(p, [&] { return train_options_from_checkpoint(m, &r.src); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.", "train.out."}));
        return rc;
    }
    r.stage = "train_check_options";
    rc = captured(p, [&] { return train_check_options(&r.c, &r.src, &r.x); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt."}));
        return rc;
    }
    r.stage = "train_check_loss";
    rc = captured(p, [&] { return train_check_loss(m, &r.src, r.x.loss); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.loss"}));
        return rc;
    }
    r.stage = "train_val_count";
    rc = captured(p, [&] { return train_val_count(&r.c, &r.src, kTrainImages); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.val"}));
        return rc;
    }
    if (r.c.val >= kTrainImages) {
        r.stage = "--val";
        rc = captured(p, [&] { return train_option_error(&r.src, "val", "leaves no training images"); });
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.val"}));
        return rc;
    }
    int batch = r.x.batch, ntrain, steps;
    train_shape(&r.c, kTrainImages - r.c.val, &batch, &ntrain, &steps);
    r.run = cli_ckpt_run{r.src.ckpt_epochs, steps, batch, ntrain, r.c.val > 0, r.c.early_stop};
    char msg[512] = "";
    r.stage = "cli_ckpt_state_read";
    rc = captured(p, [&] { return cli_ckpt_state_read(meta_get, m, &r.run, &r.st, msg, sizeof msg); });
    EXPECT_EQ(p.out + p.err, "") << "cli_ckpt_state_read printed";
    if (rc) {
        r.message = msg;
        EXPECT_TRUE(starts(msg, "train.") || r.message == "out of memory") << msg;
        EXPECT_EQ(r.st.rows, nullptr);
        return CLI_EDATA;
    }
    const cli_ckpt_state &st = r.st;
    EXPECT_TRUE(st.epoch >= 0 && st.epoch <= r.run.epochs && st.step >= 0 && st.step <= r.run.steps &&
                !(st.epoch == r.run.epochs && st.step))
        << st.epoch << " " << st.step;
    EXPECT_EQ(st.seen, std::min<long long>((long long)st.step * r.run.batch, r.run.ntrain));
    EXPECT_TRUE(st.correct >= 0 && st.correct <= st.seen);
    EXPECT_TRUE(std::isfinite(st.loss_sum) && st.loss_sum >= 0 && (st.seen || st.loss_sum == 0));
    EXPECT_TRUE(std::isfinite(st.epoch_seconds) && st.epoch_seconds >= 0);
    EXPECT_EQ(st.nrows, st.epoch);
    for (int i = 0; i < st.nrows; i++) {
        const cli_epoch_row &w = st.rows[i];
        EXPECT_EQ(w.epoch, i + 1);
        EXPECT_TRUE(w.lr >= 0 && w.lr <= 100 && std::isfinite(w.train_loss) && w.train_loss >= 0 &&
                    w.train_acc >= 0 && w.train_acc <= 100 && std::isfinite(w.seconds) && w.seconds >= 0);
        if (r.run.has_val)
            EXPECT_TRUE(std::isfinite(w.val_loss) && w.val_loss >= 0 && w.val_acc >= 0 && w.val_acc <= 100);
        else
            EXPECT_TRUE(std::isnan(w.val_loss) && std::isnan(w.val_acc));
    }
    if (r.c.epochs < st.epoch + (st.step > 0)) {
        EXPECT_TRUE(cli_opt_find(r.opts, "epochs")->given);
        return CLI_EUSAGE;
    }
    r.stage = "cli_norm_from_model";
    rc = captured(p, [&] { return cli_norm_from_model(TRAIN_CMD, m, &r.nm); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, nullptr, {"norm_mean", "norm_std"}));
        return rc;
    }
    for (int ch = 0; ch < r.nm.channels; ch++)
        for (float v : r.nm.lut[ch]) EXPECT_TRUE(std::isfinite(v));
    r.stage = "cli_classes_from_model";
    rc = captured(p, [&] { return cli_classes_from_model(TRAIN_CMD, m, &r.names); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, nullptr, {"'classes'"}));
        return rc;
    }
    EXPECT_LE(r.names.n, cnn_model_output_size(m));
    r.stage = "";
    return CLI_OK;
}

/* Resume, record what the run would write, resume that: the same state.
 * Returns whether the first resume was accepted. */
bool resume_twice(const std::string &what, cnn_model *m, const char *name,
                  const std::vector<std::string> &extra)
{
    Resumed a;
    if (resume_checked(m, name, extra, a) != CLI_OK) return false;
    EXPECT_EQ(cli_ckpt_state_write(meta_set, m, &a.st, 1), 0);
    EXPECT_EQ(train_record_options(a.opts, meta_set, m, 1), 0);
    Resumed b;
    EXPECT_EQ(resume_checked(m, name, extra, b), CLI_OK) << what << ": the recorded checkpoint: " << b.stage
                                                          << " " << b.message;
    EXPECT_EQ(a.st.epoch, b.st.epoch) << what;
    EXPECT_EQ(a.st.step, b.st.step) << what;
    EXPECT_EQ(memcmp(&a.st.epoch_rng, &b.st.epoch_rng, sizeof a.st.epoch_rng), 0) << what;
    EXPECT_EQ(a.st.loss_sum, b.st.loss_sum) << what;
    EXPECT_EQ(a.st.seen, b.st.seen) << what;
    EXPECT_EQ(a.st.correct, b.st.correct) << what;
    EXPECT_EQ(a.st.epoch_seconds, b.st.epoch_seconds) << what;
    EXPECT_EQ(a.st.nrows, b.st.nrows) << what;
    for (int i = 0; i < std::min(a.st.nrows, b.st.nrows); i++) {
        EXPECT_EQ(a.st.rows[i].lr, b.st.rows[i].lr) << what;
        EXPECT_EQ(a.st.rows[i].train_loss, b.st.rows[i].train_loss) << what;
        EXPECT_EQ(a.st.rows[i].seconds, b.st.rows[i].seconds) << what;
    }
    for (int i = 0; a.opts[i].name; i++) {
        char x[4096], y[4096];
        cli_opt_format(&a.opts[i], x, sizeof x);
        cli_opt_format(&b.opts[i], y, sizeof y);
        EXPECT_STREQ(x, y) << what << ": --" << a.opts[i].name;
    }
    return true;
}

/* fuzz_checkpoint's second reading of an input: "key=value" lines ("\n"
 * in a value: a line break), "--" lines are arguments, "arch" builds the
 * model. */
struct Table {
    std::vector<std::pair<std::string, std::string>> meta;
    std::vector<std::string> extra;
    std::string arch = "input 1x28x28\nflatten\ndense 10\nsoftmax\n";
};

Table parse_table(const Bytes &in)
{
    Table t;
    std::string text = in.substr(0, strlen(in.c_str()));
    size_t at = 0;
    for (int n = 0; at <= text.size() && n < 256;) {
        size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? text.size() + 1 : nl + 1;
        if (starts(line, "--")) {
            if (t.extra.size() < 16) t.extra.push_back(line);
            continue;
        }
        size_t eq = line.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        std::string key = line.substr(0, eq), val, raw = line.substr(eq + 1);
        for (size_t i = 0; i < raw.size(); i++) {
            if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == 'n') {
                val += '\n';
                i++;
            } else {
                val += raw[i];
            }
        }
        if (key == "arch") {
            if (val.size() <= 1024) t.arch = val;
            continue;
        }
        t.meta.emplace_back(key, val);
        n++;
    }
    return t;
}

/* fuzz_checkpoint's state reader alone on a table: against its "fuzz.run"
 * (epochs,steps,batch,images,validation[,early-stop]) or the seeds' run; an
 * accepted state written back reads back the same. Returns whether it was
 * accepted. */
bool state_alone(const std::string &what, cnn_model *m)
{
    cli_ckpt_run run = {2, 5, 8, 40, 1, 0};
    if (const char *r = cnn_model_get_meta(m, "fuzz.run")) {
        int v[6] = {0, 0, 0, 0, 0, 0};
        const int k = sscanf(r, "%d,%d,%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
        if (k != 5 && k != 6) return false;
        if (v[0] < 1 || v[0] > 100000 || v[2] < 1 || v[3] < 1 || v[2] > v[3] || v[3] > 100000000 ||
            v[1] != (v[3] + v[2] - 1) / v[2] || v[5] < 0 || v[5] > 100000)
            return false;
        run = cli_ckpt_run{v[0], v[1], v[2], v[3], v[4] != 0, v[5]};
    }
    cli_ckpt_state st, again;
    char msg[512] = "";
    if (cli_ckpt_state_read(meta_get, m, &run, &st, msg, sizeof msg)) {
        EXPECT_TRUE(starts(msg, "train.")) << what << ": " << msg;
        EXPECT_EQ(st.rows, nullptr) << what;
        return false;
    }
    EXPECT_TRUE(st.epoch <= run.epochs && st.step <= run.steps && st.nrows == st.epoch) << what;
    EXPECT_EQ(cli_ckpt_state_write(meta_set, m, &st, 1), 0) << what;
    EXPECT_EQ(cli_ckpt_state_read(meta_get, m, &run, &again, msg, sizeof msg), 0) << what << ": " << msg;
    EXPECT_EQ(st.epoch, again.epoch) << what;
    EXPECT_EQ(st.step, again.step) << what;
    EXPECT_EQ(st.seen, again.seen) << what;
    EXPECT_EQ(st.loss_sum, again.loss_sum) << what;
    EXPECT_EQ(st.nrows, again.nrows) << what;
    cli_ckpt_state_free(&st);
    cli_ckpt_state_free(&again);
    return true;
}

TEST_F(Hostile, ReplayCheckpointCorpus)
{
    auto files = corpus_files("checkpoint");
    ASSERT_FALSE(files.empty()) << kCorpus / "checkpoint";
    int files_ok = 0, tables_ok = 0, states_ok = 0;
    for (const auto &f : files) {
        std::string what = f.filename().string();
        cnn_model *m = nullptr;
        cnn_status s = cnn_model_load(f.c_str(), &m);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find(f.string()), std::string::npos) << what << ": " << cnn_errmsg();
        } else {
            files_ok += resume_twice(what, m, f.c_str(), {});
            cnn_model_free(m);
        }
        Bytes in = read_file(f);
        Table t = parse_table(in);
        m = nullptr;
        if (cnn_model_shapes_from_text(t.arch.c_str(), "arch", &m) != CNN_OK)
            ASSERT_EQ(cnn_model_shapes_from_text("input 1x28x28\nflatten\ndense 10\nsoftmax\n", "arch", &m), CNN_OK);
        for (const auto &kv : t.meta) ASSERT_EQ(cnn_model_set_meta(m, kv.first.c_str(), kv.second.c_str()), CNN_OK);
        tables_ok += resume_twice(what + " (table)", m, "table.ckpt", t.extra);
        states_ok += state_alone(what + " (state)", m);
        cnn_model_free(m);
    }
    EXPECT_GT(files_ok, 0) << "no checkpoint in the corpus resumes";
    EXPECT_GT(tables_ok, 0) << "no table in the corpus resumes";
    EXPECT_GT(states_ok, 0) << "no table's state reads alone";
}

} // namespace
