/* hostile.h — what the hostile-input tests share: the fixture (a fresh
 * temporary folder per test), binary-safe bytes, and the fuzz corpora
 * (tests/fuzz/corpus) that they replay. */
#ifndef CNN_TESTS_HOSTILE_H
#define CNN_TESTS_HOSTILE_H

#include "testutil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;
using Bytes = std::string; /* binary-safe and easy to concatenate */

inline const fs::path kCorpus = fs::path(CNN_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

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

inline Bytes read_file(const fs::path &p)
{
    std::ifstream f(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline std::vector<fs::path> corpus_files(const std::string &target)
{
    std::vector<fs::path> v;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(kCorpus / target, ec))
        if (e.is_regular_file()) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
}

#endif
