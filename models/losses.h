// Segmentation losses of the training binaries (issue #6), built from the differentiable API of
// autograd/: segmentation_models_pytorch's binary DiceLoss and its sum with BCE-with-logits.
#pragma once

#include "tensor/tensor.h"

namespace cxr::models {

// smp's DiceLoss(mode='binary', from_logits=True, smooth, eps) (smp 0.6, losses/dice.py and
// losses/_functional.py soft_tversky_score with alpha = beta = 0.5). p = sigmoid(logits); the sums
// run over the whole batch (smp's dims=(0, 2) after reshaping to [N, 1, H*W]), so this is one Dice
// for the batch, not a mean over images:
//   I = (sum p + sum t - sum |p - t|) / 2      (= sum p*t for 0/1 targets)
//   dice = (I + smooth) / max((sum p + sum t) / 2 + smooth, eps)
//   loss = (1 - dice) * [sum t > 0]             (a batch with no positive pixel gives 0)
// With smooth = 0 this is smp 0.3's 2*sum(p*t) / max(sum p + sum t, eps); with smooth > 0 it is
// smp 0.6's value (which differs from 0.3's). logits: floating [N, 1, H, W]; target: the same
// shape, 0/1 values of any dtype (converted to the logits' dtype). Returns a scalar.
Tensor dice_loss(const Tensor& logits, const Tensor& target, double smooth = 0.0,
                 double eps = 1e-7);

// dice_weight * dice_loss(logits, target) + bce_weight * binary_cross_entropy_with_logits(logits,
// target) (mean over all pixels): the segmentation loss of `cxr train-segmenter`. Same shapes as
// dice_loss; the weights must be finite and >= 0.
Tensor dice_bce_loss(const Tensor& logits, const Tensor& target, double dice_weight = 1.0,
                     double bce_weight = 1.0);

}  // namespace cxr::models
