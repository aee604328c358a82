// Conv2d (torch.nn.Conv2d with padding_mode="zeros"): weight [out, in/groups, kh, kw], bias [out].
#pragma once

#include "nn/module.h"
#include "nn/size2.h"
#include "tensor/random.h"  // Generator

namespace cxr::nn {

struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  // e.g. Conv2d(3, 64, 7, {.stride = 2, .padding = 3, .bias = false}).
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
         const Conv2dOptions& options = {});
  // PyTorch's default init (init::default_weight_and_bias) drawn from `gen`.
  void reset_parameters(Generator& gen = default_generator());
  // x [N, in_channels, H, W] -> [N, out_channels, OH, OW].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Size2 kernel_size;
  Conv2dOptions options;
  Tensor weight, bias;
};

}  // namespace cxr::nn
