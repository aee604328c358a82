// Normalisation layers (torch.nn.GroupNorm, LayerNorm, BatchNorm2d). Affine parameters start at
// weight = 1, bias = 0; BatchNorm2d's running statistics at mean 0, var 1, with the int64
// num_batches_tracked counter, all in state_dict() under PyTorch's names.
#pragma once

#include <optional>

#include "nn/module.h"

namespace cxr::nn {

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  void reset_parameters();
  // x [N, num_channels, *].
  Tensor forward(const Tensor& x) override;
  // silu(forward(x)) in one pass (the GroupNorm+SiLU pair of Stable Diffusion ResNet blocks).
  Tensor forward_silu(const Tensor& x);
  std::string extra_repr() const override;

  int64_t num_groups, num_channels;
  double eps;
  Tensor weight, bias;  // [num_channels], undefined when affine = false
};

class LayerNorm : public Module {
 public:
  LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
            bool bias = true);
  void reset_parameters();
  // Normalises over x's trailing dims, which must equal normalized_shape.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Shape normalized_shape;
  double eps;
  Tensor weight, bias;  // normalized_shape
};

struct BatchNormOptions {
  double eps = 1e-5;
  // Running-statistics update weight; nullopt means a cumulative average (1 / batches seen).
  std::optional<double> momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
  // Running statistics to mean 0, var 1, no batches; affine parameters to 1 and 0.
  void reset_parameters();
  // x [N, num_features, H, W]. Training (or without running statistics): batch statistics, and
  // the running ones updated with the unbiased variance; eval: the running statistics.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias;                                    // [C] when affine
  Tensor running_mean, running_var, num_batches_tracked;  // when track_running_stats
};

}  // namespace cxr::nn
