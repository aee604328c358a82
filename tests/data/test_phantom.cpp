// Phantom generator: determinism for a seed, finding masks present exactly where labelled (inside
// the lung fields for the lung findings), captions, option errors.
#include <gtest/gtest.h>

#include "data/phantom.h"
#include "support/compare.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;

namespace {
int64_t count(const Tensor& m) {
  int64_t n = 0;
  const uint8_t* p = m.data<uint8_t>();
  for (int64_t i = 0; i < m.numel(); ++i) n += p[i] != 0;
  return n;
}
}  // namespace

TEST(Phantom, DeterministicForSeedAndIndex) {
  PhantomOptions o;
  o.size = 96;
  const PhantomSample a = make_phantom(o, 42, 3), b = make_phantom(o, 42, 3);
  EXPECT_TRUE(test::bitwise_equal(a.image, b.image));
  EXPECT_EQ(a.caption, b.caption);
  for (int k = 0; k < kNumFindings; ++k)
    EXPECT_TRUE(test::bitwise_equal(a.masks[size_t(k)], b.masks[size_t(k)]));
  const PhantomSample c = make_phantom(o, 42, 4), d = make_phantom(o, 43, 3);
  EXPECT_EQ(a.image.sizes(), c.image.sizes());
  EXPECT_FALSE(test::bitwise_equal(a.image, c.image));
  EXPECT_EQ(a.image.sizes(), d.image.sizes());
  EXPECT_FALSE(test::bitwise_equal(a.image, d.image));
}

TEST(Phantom, ImageRangeAndShape) {
  PhantomOptions o;
  o.size = 64;
  const PhantomSample s = make_phantom(o, 1, 0);
  ASSERT_EQ(s.image.sizes(), (Shape{64, 64}));
  EXPECT_EQ(s.image.dtype(), kFloat32);
  for (float v : s.image.to_vector<float>()) {
    ASSERT_GE(v, 0.f);
    ASSERT_LE(v, 1.f);
  }
  EXPECT_GT(count(s.lungs), 64 * 64 / 10);
  EXPECT_GT(count(s.heart), 64 * 64 / 100);
}

TEST(Phantom, EachFindingHasANonEmptyMaskOnlyWhenLabelled) {
  PhantomOptions o;
  o.size = 128;
  for (int k = 0; k < kNumFindings; ++k) {
    for (int64_t idx = 0; idx < 4; ++idx) {
      std::array<bool, kNumFindings> f{};
      f[size_t(k)] = true;
      const PhantomSample s = make_phantom_with(o, 9, idx, f);
      for (int q = 0; q < kNumFindings; ++q) {
        const int64_t n = count(s.masks[size_t(q)]);
        if (q == k)
          EXPECT_GT(n, 20) << finding_name(Finding(q)) << " index " << idx;
        else
          EXPECT_EQ(n, 0) << finding_name(Finding(q));
      }
      EXPECT_NE(s.caption, "Normal");
      if (Finding(k) != Finding::Cardiomegaly) {
        // Lung findings lie inside the lung fields.
        const uint8_t* m = s.masks[size_t(k)].data<uint8_t>();
        const uint8_t* l = s.lungs.data<uint8_t>();
        int64_t outside = 0;
        for (int64_t p = 0; p < s.lungs.numel(); ++p) outside += m[p] && !l[p];
        EXPECT_LE(outside, count(s.masks[size_t(k)]) / 20) << finding_name(Finding(k));
      }
    }
  }
}

TEST(Phantom, NormalCaptionAndPneumothoraxCaption) {
  PhantomOptions o;
  o.size = 64;
  EXPECT_EQ(make_phantom_with(o, 5, 0, {}).caption, "Normal");
  std::array<bool, kNumFindings> f{};
  f[size_t(Finding::Pneumothorax)] = true;
  const PhantomSample s = make_phantom_with(o, 5, 0, f);
  EXPECT_NE(s.caption.find("pneumothorax"), std::string::npos) << s.caption;
  EXPECT_TRUE(s.caption.find("right") != std::string::npos ||
              s.caption.find("left") != std::string::npos);
}

TEST(Phantom, PneumothoraxRemovesLungMarkings) {
  // Beyond the collapsed edge the lung is darker on average than the rest of that lung field.
  PhantomOptions o;
  o.size = 192;
  o.noise = 0;
  std::array<bool, kNumFindings> f{};
  f[size_t(Finding::Pneumothorax)] = true;
  int darker = 0;
  for (int64_t idx = 0; idx < 6; ++idx) {
    const PhantomSample s = make_phantom_with(o, 11, idx, f);
    const float* im = s.image.data<float>();
    const uint8_t* m = s.mask(Finding::Pneumothorax).data<uint8_t>();
    const uint8_t* l = s.lungs.data<uint8_t>();
    const uint8_t* h = s.heart.data<uint8_t>();
    double in = 0, nin = 0, lung = 0, nl = 0;
    for (int64_t p = 0; p < s.image.numel(); ++p) {
      if (m[p])
        in += im[p], nin += 1;
      else if (l[p] && !h[p])
        lung += im[p], nl += 1;
    }
    darker += (in / nin) < (lung / nl);
  }
  EXPECT_GE(darker, 5);
}

TEST(Phantom, PrevalenceRoughlyHonoured) {
  PhantomOptions o;
  o.size = 32;
  o.prevalence = {1.0, 0.0, 0.5, 0.0, 0.0, 0.0};
  int cm = 0;
  for (int64_t i = 0; i < 200; ++i) {
    const PhantomSample s = make_phantom(o, 3, i);
    EXPECT_TRUE(s.has(Finding::Pneumothorax));
    EXPECT_FALSE(s.has(Finding::Effusion));
    cm += s.has(Finding::Cardiomegaly);
  }
  EXPECT_GT(cm, 70);  // Binomial(200, 0.5): mean 100, sd ~7
  EXPECT_LT(cm, 130);
}

TEST(Phantom, BadOptionsThrow) {
  PhantomOptions o;
  o.size = 8;
  EXPECT_THROW(make_phantom(o, 0, 0), cxr::Error);
  o.size = 64;
  o.prevalence[2] = 1.5;
  EXPECT_THROW(make_phantom(o, 0, 0), cxr::Error);
  o.prevalence[2] = 0.1;
  EXPECT_THROW(make_phantom(o, 0, -1), cxr::Error);
}
