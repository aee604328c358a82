// Segmentation losses (see losses.h): smp's binary DiceLoss and Dice + BCE-with-logits.
#include "models/losses.h"

#include <cmath>

#include "autograd/elementwise.h"  // sigmoid, abs, clamp_min, gt, arithmetic
#include "autograd/loss.h"         // binary_cross_entropy_with_logits
#include "autograd/reduce.h"       // sum
#include "autograd/views.h"        // to(dtype)
#include "tensor/dtype.h"          // is_floating

namespace cxr::models {

namespace {

// Checks logits [N, 1, H, W] (floating) and a target of the same shape; returns the target in the
// logits' dtype.
Tensor checked_target(const Tensor& logits, const Tensor& target, const char* op) {
  CXR_CHECK(logits.defined() && target.defined(), op, ": logits or target is undefined");
  CXR_CHECK(is_floating(logits.dtype()), op, ": logits must be floating, got ", describe(logits));
  CXR_CHECK(logits.dim() == 4 && logits.size(1) == 1, op,
            ": logits must be [N, 1, H, W] (one-class logits), got ", describe(logits));
  CXR_CHECK(target.sizes() == logits.sizes(), op, ": target ", describe(target),
            " must have the logits' shape ", describe(logits));
  return to(target, logits.dtype());
}

}  // namespace

Tensor dice_loss(const Tensor& logits, const Tensor& target, double smooth, double eps) {
  const Tensor t = checked_target(logits, target, "dice_loss");
  CXR_CHECK(std::isfinite(smooth) && smooth >= 0.0 && std::isfinite(eps) && eps > 0.0,
            "dice_loss: expected smooth >= 0 and eps > 0, got smooth ", smooth, ", eps ", eps);
  const Tensor p = sigmoid(logits);
  const Tensor p_sum = sum(p), t_sum = sum(t);
  // soft_tversky_score's intersection and, with alpha = beta = 0.5, its denominator
  // I + fp/2 + fn/2 = (sum p + sum t) / 2.
  const Tensor intersection = (p_sum + t_sum - sum(abs(p - t))) * 0.5;
  const Tensor dice = (intersection + smooth) / clamp_min((p_sum + t_sum) * 0.5 + smooth, eps);
  // smp zeroes the loss of a class without true pixels (the whole batch here).
  const Tensor has_positive = to(gt(t_sum, 0.0), logits.dtype());
  return (1.0 - dice) * has_positive;
}

Tensor dice_bce_loss(const Tensor& logits, const Tensor& target, double dice_weight,
                     double bce_weight) {
  const Tensor t = checked_target(logits, target, "dice_bce_loss");
  CXR_CHECK(std::isfinite(dice_weight) && dice_weight >= 0.0 && std::isfinite(bce_weight) &&
                bce_weight >= 0.0,
            "dice_bce_loss: weights must be finite and >= 0, got dice_weight ", dice_weight,
            ", bce_weight ", bce_weight);
  return dice_loss(logits, t) * dice_weight +
         binary_cross_entropy_with_logits(logits, t) * bce_weight;
}

}  // namespace cxr::models
