// Segmentation losses (models/losses.h): values and gradients against segmentation_models_pytorch's
// DiceLoss and torch's BCEWithLogitsLoss (tests/golden/gen_losses.py), a hand-computed Dice, the
// all-empty batch, float64 gradcheck and the errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "autograd/views.h"
#include "models/losses.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "support/tensors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

constexpr const char* kFixture = "losses.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// The loss and d loss / d logits for the logits of fixture case `c`.
std::pair<Tensor, Tensor> value_and_grad(const std::string& c,
                                         const std::function<Tensor(const Tensor&)>& loss) {
  Tensor x = test::leaf_copy(fx(c + ".logits"));
  Tensor value = loss(x);
  return {value, autograd::grad({value}, {x})[0]};
}

const char* const kCases[] = {"basic", "smooth", "one_empty", "empty", "saturated"};

TEST(DiceLossGolden, MatchesSmp) {
  for (const std::string c : kCases) {
    SCOPED_TRACE(c);
    const Tensor target = fx(c + ".target");
    const double smooth = fx(c + ".smooth").item(), eps = fx(c + ".eps").item();
    auto [value, grad] = value_and_grad(
        c, [&](const Tensor& x) { return models::dice_loss(x, target, smooth, eps); });
    EXPECT_EQ(value.dim(), 0);
    EXPECT_EQ(value.dtype(), kFloat32);
    EXPECT_ALL_CLOSE(value, fx(c + ".dice"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(grad, fx(c + ".dice.grad"), 1e-4, 1e-7);
  }
}

TEST(DiceBceLossGolden, MatchesSmpPlusBce) {
  for (const std::string c : kCases) {
    SCOPED_TRACE(c);
    const Tensor target = fx(c + ".target");
    auto [value, grad] =
        value_and_grad(c, [&](const Tensor& x) { return models::dice_bce_loss(x, target); });
    EXPECT_ALL_CLOSE(value, fx(c + ".dice_bce"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(grad, fx(c + ".dice_bce.grad"), 1e-4, 1e-7);
    auto [weighted, weighted_grad] = value_and_grad(
        c, [&](const Tensor& x) { return models::dice_bce_loss(x, target, 0.25, 2.0); });
    EXPECT_ALL_CLOSE(weighted, fx(c + ".dice_bce_w"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(weighted_grad, fx(c + ".dice_bce_w.grad"), 1e-4, 1e-7);
  }
}

TEST(DiceLoss, HandComputed) {
  // Logits 0 give p = 0.5 on all 4 pixels; one positive pixel. sum p = 2, sum t = 1,
  // sum p*t = 0.5, so dice = 2 * 0.5 / (2 + 1) = 1/3 and the loss is 2/3.
  const Tensor logits = raw::zeros({1, 1, 2, 2}, kFloat64);
  const Tensor target = raw::from_vector(std::vector<double>{0, 1, 0, 0}, {1, 1, 2, 2});
  EXPECT_NEAR(models::dice_loss(logits, target).item(), 2.0 / 3.0, 1e-12);
  // smooth = 1 (smp 0.6): (0.5 + 1) / ((2 + 1) / 2 + 1) = 1.5 / 2.5 = 0.6, loss 0.4.
  EXPECT_NEAR(models::dice_loss(logits, target, 1.0).item(), 0.4, 1e-12);
  // BCE at logit 0 is log 2 for every pixel, so Dice + BCE = 2/3 + log 2.
  EXPECT_NEAR(models::dice_bce_loss(logits, target).item(), 2.0 / 3.0 + std::log(2.0), 1e-12);
  EXPECT_NEAR(models::dice_bce_loss(logits, target, 0.0, 3.0).item(), 3.0 * std::log(2.0), 1e-12);
}

TEST(DiceLoss, EmptyBatchGivesZeroLossAndGradient) {
  Tensor x = test::spread_leaf({2, 1, 3, 3});
  const Tensor target = raw::zeros({2, 1, 3, 3}, kFloat64);
  Tensor loss = models::dice_loss(x, target);
  EXPECT_EQ(loss.item(), 0.0);
  const Tensor g = autograd::grad({loss}, {x})[0];
  EXPECT_ALL_CLOSE(g, raw::zeros({2, 1, 3, 3}, kFloat64), 0.0, 0.0);
}

TEST(DiceLoss, TargetOfAnyDtype) {
  const Tensor logits = fx("basic.logits");
  const Tensor target = fx("basic.target");
  const Tensor as_uint8 = raw::to(target, kUInt8);
  EXPECT_ALL_CLOSE(models::dice_loss(logits, as_uint8), models::dice_loss(logits, target), 0.0,
                   0.0);
  EXPECT_ALL_CLOSE(models::dice_bce_loss(logits, as_uint8), models::dice_bce_loss(logits, target),
                   0.0, 0.0);
}

TEST(DiceLossGradcheck, Float64) {
  Generator gen(7);
  const Tensor target = to(lt(raw::rand({2, 1, 3, 4}, gen, kFloat64), 0.4), kFloat64);
  ASSERT_GT(raw::sum(target).item(), 0.0);
  for (double smooth : {0.0, 1.0}) {
    SCOPED_TRACE(smooth);
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& in) { return models::dice_loss(in[0], target, smooth); },
        {test::spread_leaf({2, 1, 3, 4})}));
  }
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) { return models::dice_bce_loss(in[0], target, 0.5, 2.0); },
      {test::spread_leaf({2, 1, 3, 4})}));
}

TEST(DiceLoss, Errors) {
  const Tensor logits = raw::zeros({2, 1, 3, 3});
  EXPECT_ERROR_CONTAINS(models::dice_loss(logits, raw::zeros({2, 1, 3, 4})),
                        "must have the logits' shape");
  EXPECT_ERROR_CONTAINS(models::dice_loss(raw::zeros({2, 3, 3}), raw::zeros({2, 3, 3})),
                        "[N, 1, H, W]");
  EXPECT_ERROR_CONTAINS(models::dice_loss(raw::zeros({2, 2, 3, 3}), raw::zeros({2, 2, 3, 3})),
                        "[N, 1, H, W]");
  EXPECT_ERROR_CONTAINS(models::dice_loss(raw::zeros({2, 1, 3, 3}, kInt64), logits),
                        "must be floating");
  EXPECT_ERROR_CONTAINS(models::dice_loss(logits, logits, -1.0), "smooth >= 0");
  EXPECT_ERROR_CONTAINS(models::dice_loss(logits, logits, 0.0, 0.0), "eps > 0");
  EXPECT_ERROR_CONTAINS(models::dice_bce_loss(logits, logits, -1.0), "dice_bce_loss: weights");
  EXPECT_ERROR_CONTAINS(models::dice_bce_loss(raw::zeros({1, 1, 2}), raw::zeros({1, 1, 2})),
                        "dice_bce_loss");
}

}  // namespace
