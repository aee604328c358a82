// Transforms: hand-computed resize/affine cases, image and mask staying aligned through random
// pipelines, determinism for a seed, and input errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data/mask_ops.h"
#include "data/transforms.h"
#include "support/compare.h"
#include "tensor/creation.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;

namespace {
Tensor F(const std::vector<float>& v, const Shape& s) {
  return raw::from_vector(v, s);
}
}  // namespace

TEST(Transforms, BilinearUpsampleHalfPixel) {
  // Source centres at 0 and 1; target x maps to (x + 0.5) / 2 - 0.5, clamped to [0, 1].
  const Tensor out = resize(F({0, 1, 2, 3}, {2, 2}), 4, 4, Interp::Bilinear);
  EXPECT_ALL_CLOSE(out,
                   F({0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2,
                      2.25f, 2.75f, 3},
                     {4, 4}),
                   1e-6, 1e-6);
}

TEST(Transforms, AreaDownsampleIsBlockMeanAndFractional) {
  const Tensor a =
      resize(F({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {4, 4}), 2, 2, Interp::Area);
  EXPECT_ALL_CLOSE(a, F({2.5f, 4.5f, 10.5f, 12.5f}, {2, 2}), 1e-6, 1e-6);
  // 1x3 -> 1x2: target 0 covers [0, 1.5): (0 + 0.5 * 3) / 1.5 = 1; target 1: (0.5 * 3 + 6) / 1.5
  // = 5.
  EXPECT_ALL_CLOSE(resize(F({0, 3, 6}, {1, 3}), 1, 2, Interp::Area), F({1, 5}, {1, 2}), 1e-6, 1e-6);
}

TEST(Transforms, NearestKeepsMaskValuesAndDtype) {
  Tensor m = raw::zeros({4, 4}, kUInt8);
  m.data<uint8_t>()[1 * 4 + 3] = 1;  // (row 1, col 3)
  m.data<uint8_t>()[2 * 4 + 0] = 1;  // (row 2, col 0): not sampled
  const Tensor r = resize(m, 2, 2, Interp::Nearest);
  EXPECT_EQ(r.dtype(), kUInt8);
  // Target i samples source floor((i + 0.5) * 2) = 1, 3.
  EXPECT_EQ(r.to_vector<double>(), (std::vector<double>{0, 1, 0, 0}));
}

TEST(Transforms, CropPadFlip) {
  const Tensor t = F({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(crop(t, 0, 1, 2, 2).to_vector<float>(), (std::vector<float>{2, 3, 5, 6}));
  EXPECT_EQ(center_crop(t, 2, 1).to_vector<float>(), (std::vector<float>{2, 5}));
  // 2x3 -> 3x3, the extra row at the bottom.
  EXPECT_EQ(pad_to_square(t, 9).to_vector<float>(),
            (std::vector<float>{1, 2, 3, 4, 5, 6, 9, 9, 9}));
  EXPECT_EQ(hflip(t).to_vector<float>(), (std::vector<float>{3, 2, 1, 6, 5, 4}));
  // Channels are handled plane by plane.
  const Tensor c = F({1, 2, 3, 4}, {2, 1, 2});
  EXPECT_EQ(hflip(c).to_vector<float>(), (std::vector<float>{2, 1, 4, 3}));
}

TEST(Transforms, AffineRotation90AndShift) {
  const Tensor t = F({0, 1, 2, 3, 4, 5, 6, 7, 8}, {3, 3});
  // Counter-clockwise on screen: the right neighbour of the centre moves to the top.
  EXPECT_EQ(affine(t, 90, 0, 0, 1, Interp::Nearest).to_vector<float>(),
            (std::vector<float>{2, 5, 8, 1, 4, 7, 0, 3, 6}));
  EXPECT_ALL_CLOSE(affine(t, 90, 0, 0, 1, Interp::Bilinear), F({2, 5, 8, 1, 4, 7, 0, 3, 6}, {3, 3}),
                   1e-5, 1e-5);
  EXPECT_EQ(affine(t, 0, 1, 0, 1, Interp::Nearest, -1).to_vector<float>(),
            (std::vector<float>{-1, 0, 1, -1, 3, 4, -1, 6, 7}));
  // Scale 2 about the centre: the centre stays, (0, 1) samples (0.5, 1) -> bilinear 1.5... use
  // nearest.
  EXPECT_EQ(affine(t, 0, 0, 0, 2, Interp::Nearest).at({1, 1}), 4.0);
}

TEST(Transforms, BrightnessContrastAndNormalize) {
  const Tensor t = F({0.2f, 0.4f, 0.6f, 0.8f}, {2, 2});
  EXPECT_ALL_CLOSE(brightness_contrast(t, 0.1, 0.0), F({0.6f, 0.6f, 0.6f, 0.6f}, {2, 2}), 1e-6,
                   1e-6);
  EXPECT_ALL_CLOSE(brightness_contrast(t, 0.0, 2.0), F({0, 0.3f, 0.7f, 1.0f}, {2, 2}), 1e-6, 1e-6);
  EXPECT_ALL_CLOSE(normalize(F({0.5f, 1.0f, 0.0f, 1.0f}, {2, 1, 2}), {0.5, 0.0}, {0.5, 2.0}),
                   F({0, 1, 0, 0.5f}, {2, 1, 2}), 1e-6, 1e-6);
}

TEST(Transforms, ImageAndMaskStayAligned) {
  // The image is 0.2 + 0.6 * mask, so after any joint geometric pipeline the thresholded image
  // must agree with the mask except along the shape's boundary (bilinear vs nearest).
  const int64_t S = 64;
  Tensor mask = raw::zeros({1, S, S}, kUInt8);
  Tensor image = raw::empty({1, S, S}, kFloat32);
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) {
      const bool in = (x > 10 && x < 30 && y > 15 && y < 45) || std::hypot(x - 45.0, y - 40.0) < 9;
      mask.data<uint8_t>()[y * S + x] = in;
      image.data<float>()[y * S + x] = in ? 0.8f : 0.2f;
    }
  Pipeline p;
  p.add(random_crop_step(56, 60))
      .add(pad_to_square_step())
      .add(hflip_step(0.5))
      .add(random_affine_step(30, 0.15, 0.8, 1.2))
      .add(resize_step(48, 48, Interp::Bilinear));
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Generator g(seed);
    Tensor im = image, m = mask;
    p(im, m, g);
    ASSERT_EQ(im.sizes(), (Shape{1, 48, 48}));
    ASSERT_EQ(m.sizes(), (Shape{1, 48, 48}));
    ASSERT_EQ(m.dtype(), kUInt8);
    // Boundary band of the transformed mask: where dilation and erosion differ.
    const Tensor band_hi = dilate(m, 3), band_lo = erode(m, 3);
    int64_t bad = 0, fg = 0;
    for (int64_t i = 0; i < 48 * 48; ++i) {
      const bool mi = m.data<uint8_t>()[i] != 0;
      fg += mi;
      const bool boundary = band_hi.data<uint8_t>()[i] != band_lo.data<uint8_t>()[i];
      if (!boundary && ((im.data<float>()[i] > 0.5f) != mi)) ++bad;
    }
    EXPECT_GT(fg, 50) << "seed " << seed;
    EXPECT_EQ(bad, 0) << "seed " << seed;
  }
}

TEST(Transforms, PipelineDeterministicForSeed) {
  Tensor image = raw::empty({32, 32}, kFloat32);
  for (int64_t i = 0; i < 32 * 32; ++i) image.data<float>()[i] = float(i % 7) / 7.0f;
  const Pipeline p = train_pipeline(24, true);
  Generator g1(3), g2(3), g3(4);
  const Tensor a = p(image, g1), b = p(image, g2), c = p(image, g3);
  EXPECT_EQ(a.sizes(), (Shape{24, 24}));
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  const Tensor e = eval_pipeline(16)(F({1, 2, 3, 4, 5, 6}, {2, 3}), g1);
  EXPECT_EQ(e.sizes(), (Shape{16, 16}));
}

TEST(Transforms, Errors) {
  const Tensor t = raw::zeros({4, 4});
  EXPECT_THROW(resize(t, 0, 4), cxr::Error);
  EXPECT_THROW(crop(t, 2, 2, 3, 3), cxr::Error);
  EXPECT_THROW(center_crop(t, 5, 4), cxr::Error);
  EXPECT_THROW(affine(t, 0, 0, 0, 0), cxr::Error);
  EXPECT_THROW(normalize(t, {0.5, 0.5}, {1.0}), cxr::Error);
  EXPECT_THROW(normalize(t, {0.5}, {0.0}), cxr::Error);
  EXPECT_THROW(resize(raw::zeros({4}), 2, 2), cxr::Error);
  EXPECT_THROW(random_affine_step(10, 0.1, 1.2, 1.1), cxr::Error);
  Generator g(0);
  Tensor im = raw::zeros({8, 8}), m = raw::zeros({7, 8}, kUInt8);
  EXPECT_THROW(resize_step(4, 4)(im, m, g), cxr::Error);
}
