// Pooling and upsampling with their backward passes against PyTorch golden values
// (tests/golden/gen_conv.py), plus index formulas stated by hand, non-contiguous inputs, half
// types and the errors for bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "support/pool_cases.h"
#include "tensor/ops.h"

using namespace cxr;
using raw::Int2;

namespace {

const std::map<std::string, Tensor>& fixture() {
  static const auto f = test::load_fixture("conv.safetensors");
  return f;
}
Tensor fx(const std::string& key) {
  return test::fixture_tensor(fixture(), key);
}

using test::channels_last_copy;
using test::pool_params;

}  // namespace

TEST(MaxPool2d, ValuesIndicesAndGradientMatchPyTorch) {
  for (const auto& [name, p] : test::golden_max_pool_cases()) {
    SCOPED_TRACE(name);
    const std::string k = std::string("maxpool_") + name + ".";
    for (const Tensor& x : {fx(k + "x"), channels_last_copy(fx(k + "x"))}) {
      const raw::PoolResult r = raw::max_pool2d(x, p);
      EXPECT_ALL_CLOSE(r.out, fx(k + "out"), 0, 0);
      EXPECT_EQ(r.indices.to_vector<int64_t>(), fx(k + "indices").to_vector<int64_t>());
      EXPECT_ALL_CLOSE(raw::max_pool2d_backward(fx(k + "gy"), r.indices, x.sizes()),
                       fx(k + "grad_x"), 1e-6, 1e-6);
    }
  }
}

TEST(MaxPool2d, NanWinsAndAllMinusInfinityPicksTheFirstTap) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = raw::from_vector(
      std::vector<double>{1, std::nan(""), 3, 2, -inf, -inf, -inf, -inf}, {1, 2, 2, 2}, kFloat32);
  const raw::PoolResult r = raw::max_pool2d(x, pool_params({2, 2}, {2, 2}, {0, 0}));
  EXPECT_TRUE(std::isnan(r.out.at({0, 0, 0, 0})));
  EXPECT_EQ(r.indices.at({0, 0, 0, 0}), 1);
  EXPECT_EQ(r.out.at({0, 1, 0, 0}), -inf);
  EXPECT_EQ(r.indices.at({0, 1, 0, 0}), 0);
}

TEST(AvgPool2d, PaddingCeilModeAndGradientMatchPyTorch) {
  for (const auto& [name, p] : test::golden_avg_pool_cases()) {
    SCOPED_TRACE(name);
    const std::string k = std::string("avgpool_") + name + ".";
    for (const Tensor& x : {fx(k + "x"), channels_last_copy(fx(k + "x"))}) {
      EXPECT_ALL_CLOSE(raw::avg_pool2d(x, p), fx(k + "out"), 1e-5, 1e-6);
      EXPECT_ALL_CLOSE(raw::avg_pool2d_backward(channels_last_copy(fx(k + "gy")), x.sizes(), p),
                       fx(k + "grad_x"), 1e-5, 1e-6);
    }
  }
}

TEST(AvgPool2d, CornerWindowDivisorFollowsCountIncludePad) {
  // A 3x3 window at (-1, -1) covers 4 input cells of ones: the mean is 4/9 with the padding
  // counted and 4/4 without.
  const Tensor x = raw::ones({1, 1, 4, 4});
  EXPECT_NEAR(raw::avg_pool2d(x, pool_params({3, 3}, {2, 2}, {1, 1})).at({0, 0, 0, 0}), 4.0 / 9,
              1e-7);
  EXPECT_NEAR(raw::avg_pool2d(x, pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, false, false))
                  .at({0, 0, 0, 0}),
              1.0, 1e-7);
}

TEST(AdaptiveAvgPool2d, BinsAndGradientMatchPyTorch) {
  const std::pair<const char*, Int2> cases[] = {
      {"down", {3, 4}}, {"global", {1, 1}}, {"up", {5, 4}}, {"unbatched", {4, 2}}};
  for (const auto& [name, o] : cases) {
    SCOPED_TRACE(name);
    const std::string k = std::string("adaptive_") + name + ".";
    const Tensor x = channels_last_copy(fx(k + "x"));
    EXPECT_ALL_CLOSE(raw::adaptive_avg_pool2d(x, o), fx(k + "out"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(raw::adaptive_avg_pool2d_backward(fx(k + "gy"), x.sizes()), fx(k + "grad_x"),
                     1e-5, 1e-6);
  }
}

TEST(Upsample, NearestAndBilinearMatchPyTorch) {
  const std::pair<const char*, Int2> cases[] = {
      {"x2", {10, 14}}, {"odd", {8, 11}}, {"down", {3, 4}}, {"one", {1, 3}}};
  for (const auto& [name, o] : cases) {
    SCOPED_TRACE(name);
    std::string k = std::string("nearest_") + name + ".";
    const Tensor x = channels_last_copy(fx(k + "x"));
    EXPECT_ALL_CLOSE(raw::upsample_nearest2d(x, o), fx(k + "out"), 0, 0);
    EXPECT_ALL_CLOSE(raw::upsample_nearest2d_backward(fx(k + "gy"), x.sizes()), fx(k + "grad_x"),
                     1e-6, 1e-6);
    for (bool ac : {false, true}) {
      SCOPED_TRACE(ac ? "align_corners" : "half-pixel");
      k = std::string("bilinear_") + name + (ac ? "_ac1." : "_ac0.");
      EXPECT_ALL_CLOSE(raw::upsample_bilinear2d(x, o, ac), fx(k + "out"), 1e-5, 1e-6);
      EXPECT_ALL_CLOSE(raw::upsample_bilinear2d_backward(fx(k + "gy"), x.sizes(), ac),
                       fx(k + "grad_x"), 1e-5, 1e-6);
    }
  }
}

TEST(Upsample, NearestIndexFormula) {
  // 3 -> 7: src = floor(dst * 3/7) = 0 0 0 1 1 2 2.
  const Tensor x = raw::from_vector(std::vector<float>{10, 11, 12}, {1, 1, 1, 3});
  EXPECT_EQ(raw::upsample_nearest2d(x, {1, 7}).to_vector<double>(),
            (std::vector<double>{10, 10, 10, 11, 11, 12, 12}));
}

TEST(Upsample, BilinearAlignCornersKeepsTheCorners) {
  // align_corners=True maps the corners exactly; a linear ramp stays a linear ramp.
  const Tensor x = raw::from_vector(std::vector<float>{0, 1, 2, 3}, {1, 1, 1, 4});
  EXPECT_ALL_CLOSE(raw::upsample_bilinear2d(x, {1, 7}, true),
                   raw::from_vector(std::vector<float>{0, 0.5, 1, 1.5, 2, 2.5, 3}, {1, 1, 1, 7}),
                   1e-6, 1e-6);
}

TEST(Pooling, HalfTypesMatchPyTorchLoosely) {
  for (DType dt : {kFloat16, kBFloat16}) {
    const double tol = dt == kFloat16 ? 1e-2 : 5e-2;
    const Tensor x = raw::to(fx("avgpool_k3s2p1_incl.x"), dt);
    const Tensor y = raw::avg_pool2d(x, pool_params({3, 3}, {2, 2}, {1, 1}));
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_ALL_CLOSE(y, fx("avgpool_k3s2p1_incl.out"), tol, tol);
    EXPECT_ALL_CLOSE(
        raw::upsample_bilinear2d(raw::to(fx("bilinear_odd_ac0.x"), dt), {8, 11}, false),
        fx("bilinear_odd_ac0.out"), tol, tol);
  }
}

TEST(Pooling, BadArgumentsGiveClearErrors) {
  const Tensor x = raw::zeros({1, 2, 5, 5});
  EXPECT_ERROR_CONTAINS(
      {
        raw::max_pool2d(x, pool_params({3, 3}, {1, 1}, {2, 2}));
      },
      "at most half the kernel size");
  EXPECT_ERROR_CONTAINS(
      {
        raw::max_pool2d(x, pool_params({0, 3}, {1, 1}, {0, 0}));
      },
      "kernel size must be positive");
  EXPECT_ERROR_CONTAINS(
      {
        raw::avg_pool2d(x, pool_params({3, 3}, {0, 1}, {0, 0}));
      },
      "stride must be positive");
  EXPECT_ERROR_CONTAINS(
      {
        raw::max_pool2d(x, pool_params({6, 6}, {1, 1}, {0, 0}));
      },
      "empty output");
  EXPECT_ERROR_CONTAINS(
      {
        raw::avg_pool2d(raw::zeros({5, 5}), pool_params({2, 2}, {2, 2}, {0, 0}));
      },
      "expected a 3-D [C, H, W] or 4-D [N, C, H, W] input");
  EXPECT_ERROR_CONTAINS({ raw::adaptive_avg_pool2d(x, {0, 2}); }, "output size must be positive");
  EXPECT_ERROR_CONTAINS(
      {
        raw::upsample_bilinear2d(raw::zeros({1, 2, 5, 5}, kInt32), {3, 3}, true);
      },
      "expected a floating input");
  EXPECT_ERROR_CONTAINS(
      {
        raw::avg_pool2d_backward(raw::zeros({1, 2, 3, 3}), x.sizes(),
                                 pool_params({2, 2}, {2, 2}, {0, 0}));
      },
      "does not match the output shape [1, 2, 2, 2]");
  const raw::PoolResult r = raw::max_pool2d(x, pool_params({2, 2}, {2, 2}, {0, 0}));
  EXPECT_ERROR_CONTAINS(
      { raw::max_pool2d_backward(r.out, raw::full(r.out.sizes(), 99, kInt64), x.sizes()); },
      "outside the input plane");
}
