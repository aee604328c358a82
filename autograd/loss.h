// Differentiable loss functions (namespace cxr) with the semantics of torch.nn.functional:
// mse_loss, l1_loss, cross_entropy (class-index or probability targets, label smoothing, class
// weights, ignore_index), nll_loss and binary_cross_entropy_with_logits (pos_weight, weight).
// Each loss records one node with its own analytic backward (first derivatives); class weights,
// pos_weight and integer targets are not differentiated, floating targets are (as in PyTorch).
#pragma once

#include "tensor/tensor.h"

namespace cxr {

// How per-element losses are combined (torch's reduction="none" / "mean" / "sum").
enum class Reduction { None, Mean, Sum };

// (input - target)^2 and |input - target|, broadcasting input and target.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

struct CrossEntropyOptions {
  Tensor weight;                // [C] class weights (optional)
  int64_t ignore_index = -100;  // class-index targets equal to it add nothing (and no weight)
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;  // in [0, 1]
};
// input: logits [C], [N, C] or [N, C, d1, ...]. target: class indices (int64/int32) of shape
// [], [N] or [N, d1, ...], or class probabilities (floating) of input's shape. Mean reduction
// divides by the summed weights of the non-ignored targets (index targets) or by the number of
// samples N·d1·... (probability targets), as PyTorch.
Tensor cross_entropy(const Tensor& input, const Tensor& target,
                     const CrossEntropyOptions& options = {});
// input: log-probabilities, shaped as cross_entropy's input; target: class indices.
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                int64_t ignore_index = -100, Reduction reduction = Reduction::Mean);
// Numerically stable -[pos_weight·t·log σ(x) + (1-t)·log(1-σ(x))]·weight, computed as
// (1-t)·x + (1 + (pos_weight-1)·t)·softplus(-x). weight broadcasts to input; pos_weight
// broadcasts along the trailing (class) dims. Mean reduction averages over all elements.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = {}, const Tensor& pos_weight = {},
                                        Reduction reduction = Reduction::Mean);

}  // namespace cxr
