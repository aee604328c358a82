// RLE decode/encode in both conventions, against the spec's test vector and the SIIM expectations
// derived with an independent decoder
// (../shared/data/siim_acr/derived/rle_decode_expectations.json).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "data/csv.h"
#include "data/rle.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/error.h"

using namespace cxr::data;

namespace {
int64_t count(const std::vector<uint8_t>& m) {
  int64_t n = 0;
  for (auto v : m) n += v != 0;
  return n;
}
}  // namespace

// spec/datasets.md §5.3: rows 00011 / 01001 / 01001 / 00011 (H=4, W=5) encode to "5 2 5 1 2 5".
TEST(Rle, SpecVectorRelative) {
  std::vector<uint8_t> m = {0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1};
  EXPECT_EQ(rle_encode_relative(m.data(), 4, 5), "5 2 5 1 2 5");
  EXPECT_EQ(rle_decode_relative("5 2 5 1 2 5", 4, 5), m);
  EXPECT_EQ(rle_decode_relative(" 5 2 5 1 2 5 ", 4, 5), m);
}

TEST(Rle, EmptyAndLastPixel) {
  EXPECT_EQ(count(rle_decode_relative("-1", 3, 3)), 0);
  EXPECT_EQ(count(rle_decode_relative(" -1", 3, 3)), 0);
  std::vector<uint8_t> z(9, 0);
  EXPECT_EQ(rle_encode_relative(z.data(), 3, 3), "-1");
  EXPECT_EQ(rle_encode_absolute(z.data(), 3, 3), "-1");
  // A run touching the last pixel is closed (the official encoder drops it).
  std::vector<uint8_t> last(9, 0);
  last[8] = 1;
  EXPECT_EQ(rle_encode_relative(last.data(), 3, 3), "8 1");
  EXPECT_EQ(rle_encode_absolute(last.data(), 3, 3), "9 1");
}

TEST(Rle, AbsoluteRowMajorOneBased) {
  // 2x3 row-major: rows 110 / 011 -> flat 0,1,4,5 -> "1 2 5 2".
  std::vector<uint8_t> m = {1, 1, 0, 0, 1, 1};
  EXPECT_EQ(rle_encode_absolute(m.data(), 2, 3), "1 2 5 2");
  EXPECT_EQ(rle_decode_absolute("1 2 5 2", 2, 3), m);
}

TEST(Rle, MergeRowsIsUnion) {
  std::vector<uint8_t> m(16, 0);
  rle_decode_relative_into("0 3", 4, 4, m.data());  // column 0, rows 0..2
  rle_decode_relative_into("2 2", 4, 4, m.data());  // column 0, rows 2..3
  EXPECT_EQ(count(m), 4);
  EXPECT_EQ(rle_encode_relative(m.data(), 4, 4), "0 4");
}

TEST(Rle, ErrorsForBadStrings) {
  EXPECT_NE(cxr::test::error_message([] {
              rle_decode_relative("10 7", 4, 4);
            }).find("leaves the 4x4 image"),
            std::string::npos);
  EXPECT_NE(cxr::test::error_message([] { rle_decode_relative("1 2 3", 4, 4); }).find("odd number"),
            std::string::npos);
  EXPECT_NE(
      cxr::test::error_message([] { rle_decode_relative("1 x", 4, 4); }).find("bad token 'x'"),
      std::string::npos);
  EXPECT_NE(cxr::test::error_message([] { rle_decode_absolute("0 2", 4, 4); }).find("1-based"),
            std::string::npos);
  EXPECT_NE(cxr::test::error_message([] { rle_decode_absolute("16 2", 4, 4); }).find("leaves"),
            std::string::npos);
  EXPECT_THROW(rle_decode_relative("1 1", 0, 4), cxr::Error);
}

TEST(Rle, RealSiimSampleCountsAndRoundTrip) {
  auto path = cxr::test::shared_data_path("siim_acr/train-rle-sample.csv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path;
  auto t = read_csv(path);
  // n_pixels / bbox / first flat index from rle_decode_expectations.json.
  struct Exp {
    int64_t n, r0, r1, c0, c1, first;
  };
  std::map<std::string, Exp> exp = {
      {"1.2.276.0.7230010.3.1.4.8323329.4904.1517875185.355709", {9418, 99, 254, 171, 433, 175349}},
      {"1.2.276.0.7230010.3.1.4.8323329.1314.1517875167.222290",
       {29079, 106, 736, 116, 453, 119331}},
      {"1.2.276.0.7230010.3.1.4.8323329.4440.1517875182.865105", {2486, 82, 161, 520, 682, 532609}},
      {"1.2.276.0.7230010.3.1.4.8323329.4982.1517875185.837576",
       {5232, 149, 252, 284, 464, 291062}},
      {"1.2.276.0.7230010.3.1.4.8323329.12743.1517875241.599591",
       {2071, 536, 659, 791, 820, 810584}},
  };
  int checked = 0;
  for (auto& row : t.rows) {
    auto m = rle_decode_relative(row[1], 1024, 1024);
    auto it = exp.find(row[0]);
    if (it == exp.end()) {
      EXPECT_EQ(count(m), 0) << row[0];
      continue;
    }
    const Exp& e = it->second;
    EXPECT_EQ(count(m), e.n) << row[0];
    EXPECT_EQ(rle_relative_pixel_count(row[1], 1024, 1024), e.n);
    int64_t r0 = 1 << 30, r1 = -1, c0 = 1 << 30, c1 = -1, first = -1;
    for (int64_t r = 0; r < 1024; ++r)
      for (int64_t c = 0; c < 1024; ++c)
        if (m[r * 1024 + c]) {
          r0 = std::min(r0, r), r1 = std::max(r1, r), c0 = std::min(c0, c), c1 = std::max(c1, c);
          int64_t f = c * 1024 + r;
          if (first < 0 || f < first) first = f;
        }
    EXPECT_EQ(r0, e.r0);
    EXPECT_EQ(r1, e.r1);
    EXPECT_EQ(c0, e.c0);
    EXPECT_EQ(c1, e.c1);
    EXPECT_EQ(first, e.first);
    // Exact round trip of the official string (whitespace-normalised).
    EXPECT_EQ(rle_encode_relative(m.data(), 1024, 1024), std::string(trim(row[1])));
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

// Every positive row of the 1,500-row Kaggle subset re-encodes to its own string.
TEST(Rle, RealSubsetRoundTrip) {
  auto path = cxr::test::shared_data_path("siim_acr/train-rle_subset1500_fin.csv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path;
  auto t = read_csv(path);
  ASSERT_EQ(t.size(), 1500u);
  int positive = 0, exact = 0;
  for (auto& row : t.rows) {
    if (rle_is_empty(row[1])) continue;
    ++positive;
    auto m = rle_decode_relative(row[1], 1024, 1024);
    exact += rle_encode_relative(m.data(), 1024, 1024) == std::string(trim(row[1]));
  }
  EXPECT_EQ(positive, 500);  // README: 500 positive, 1,000 "-1"
  EXPECT_EQ(exact, positive);
}
