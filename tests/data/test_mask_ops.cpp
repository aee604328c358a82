// Mask operations against small hand-computed cases.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/mask_ops.h"
#include "tensor/creation.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;

namespace {
// Builds a uint8 mask from rows of '0'/'1'.
Tensor M(const std::vector<std::string>& rows) {
  const int64_t H = int64_t(rows.size()), W = int64_t(rows[0].size());
  Tensor t = raw::empty({H, W}, kUInt8);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      t.data<uint8_t>()[y * W + x] = rows[size_t(y)][size_t(x)] == '1';
  return t;
}
std::vector<std::string> rows_of(const Tensor& t) {
  std::vector<std::string> r;
  const int64_t H = t.size(0), W = t.size(1);
  const std::vector<double> v = t.to_vector<double>();
  for (int64_t y = 0; y < H; ++y) {
    std::string s;
    for (int64_t x = 0; x < W; ++x) s += v[size_t(y * W + x)] != 0 ? '1' : '0';
    r.push_back(s);
  }
  return r;
}
using Rows = std::vector<std::string>;
}  // namespace

TEST(MaskOps, DilateSinglePixel3x3) {
  EXPECT_EQ(rows_of(dilate(M({"00000", "00000", "00100", "00000", "00000"}), 3)),
            (Rows{"00000", "01110", "01110", "01110", "00000"}));
}

TEST(MaskOps, DilateTwiceEqualsKernel5) {
  const Tensor m = M({"0000000", "0000000", "0000000", "0001000", "0000000", "0000000", "0000000"});
  const Rows five{"0000000", "0111110", "0111110", "0111110", "0111110", "0111110", "0000000"};
  EXPECT_EQ(rows_of(dilate(m, 3, 2)), five);
  EXPECT_EQ(rows_of(dilate(m, 5, 1)), five);
}

TEST(MaskOps, DilateClipsAtBorder) {
  EXPECT_EQ(rows_of(dilate(M({"100", "000", "000"}), 3)), (Rows{"110", "110", "000"}));
}

TEST(MaskOps, ErodeSquare) {
  // A 3x3 square erodes to its centre with a 3x3 kernel; a 4x3 block to a 2x1 line.
  EXPECT_EQ(rows_of(erode(M({"00000", "01110", "01110", "01110", "00000"}), 3)),
            (Rows{"00000", "00000", "00100", "00000", "00000"}));
  EXPECT_EQ(rows_of(erode(M({"000000", "011110", "011110", "011110", "000000"}), 3)),
            (Rows{"000000", "000000", "001100", "000000", "000000"}));
  // Twice removes it.
  EXPECT_EQ(rows_of(erode(M({"00000", "01110", "01110", "01110", "00000"}), 3, 2)),
            (Rows{"00000", "00000", "00000", "00000", "00000"}));
}

TEST(MaskOps, ErodeTreatsOutsideAsBackground) {
  EXPECT_EQ(rows_of(erode(M({"111", "111", "111"}), 3)), (Rows{"000", "010", "000"}));
}

TEST(MaskOps, KernelOneAndZeroIterationsAreIdentity) {
  const Tensor m = M({"0110", "1001"});
  EXPECT_EQ(rows_of(dilate(m, 1, 3)), rows_of(m));
  EXPECT_EQ(rows_of(erode(m, 5, 0)), rows_of(m));
}

TEST(MaskOps, FlipAndTranslate) {
  const Tensor m = M({"1100", "0010"});
  EXPECT_EQ(rows_of(flip_mask_horizontal(m)), (Rows{"0011", "0100"}));
  EXPECT_EQ(rows_of(translate_mask(m, 1, 1)), (Rows{"0000", "0110"}));
  EXPECT_EQ(rows_of(translate_mask(m, -2, 0)), (Rows{"0000", "1000"}));
  EXPECT_EQ(rows_of(translate_mask(m, 10, 0)), (Rows{"0000", "0000"}));
}

TEST(MaskOps, LeadingDimsAreSeparateMasksAndAnyDtype) {
  Tensor m = raw::zeros({2, 3, 3}, kFloat32);
  m.data<float>()[4] = 0.7f;      // centre of plane 0
  m.data<float>()[9 + 0] = 1.0f;  // corner of plane 1
  const Tensor d = dilate(m, 3);
  EXPECT_EQ(d.dtype(), kUInt8);
  const std::vector<double> v = d.to_vector<double>();
  for (int i = 0; i < 9; ++i) EXPECT_EQ(v[size_t(i)], 1.0);
  EXPECT_EQ(v[9 + 0] + v[9 + 1] + v[9 + 3] + v[9 + 4], 4.0);
  EXPECT_EQ(v[9 + 2] + v[9 + 5] + v[9 + 6] + v[9 + 7] + v[9 + 8], 0.0);
}

TEST(MaskOps, RandomCompositionIsSeededAndNonEmpty) {
  Tensor m = M({"00000000", "00111000", "00111000", "00111000", "00000000", "00000000", "00000000",
                "00000000"});
  std::string d1, d2;
  Generator g1(5), g2(5);
  const Tensor a = random_mask_transform(m, g1, {}, &d1);
  const Tensor b = random_mask_transform(m, g2, {}, &d2);
  EXPECT_EQ(rows_of(a), rows_of(b));
  EXPECT_EQ(d1, d2);
  bool differs = false;
  Generator g(1);
  for (int k = 0; k < 20; ++k) {
    const Tensor c = random_mask_transform(m, g);
    const std::vector<double> v = c.to_vector<double>();
    double n = 0;
    for (double x : v) n += x;
    EXPECT_GT(n, 0.0);
    differs |= rows_of(c) != rows_of(m);
  }
  EXPECT_TRUE(differs);
  // Everything off: identity, reported as such.
  MaskAugmentOptions off;
  off.flip_p = off.morph_p = off.translate_p = 0;
  std::string d;
  EXPECT_EQ(rows_of(random_mask_transform(m, g, off, &d)), rows_of(m));
  EXPECT_EQ(d, "identity");
}

TEST(MaskOps, Errors) {
  const Tensor m = M({"01", "10"});
  EXPECT_THROW(dilate(m, 2), cxr::Error);
  EXPECT_THROW(erode(m, 3, -1), cxr::Error);
  EXPECT_THROW(dilate(raw::zeros({4}, kUInt8), 3), cxr::Error);
  Generator g(0);
  MaskAugmentOptions bad;
  bad.max_kernel = 4;
  EXPECT_THROW(random_mask_transform(m, g, bad), cxr::Error);
}
