// Upsample (torch.nn.Upsample) on NCHW tensors: nearest or bilinear, to a fixed size or by a scale
// factor (output = floor(input * scale), as PyTorch). Source coordinates use the ratio
// input / output, which is PyTorch's whenever output = input * scale exactly (e.g. integer scales).
#pragma once

#include <optional>

#include "nn/module.h"
#include "nn/size2.h"

namespace cxr::nn {

enum class UpsampleMode { Nearest, Bilinear };

class Upsample : public Module {
 public:
  // By a scale factor (one for both dims, or (h, w)).
  explicit Upsample(double scale_factor, UpsampleMode mode = UpsampleMode::Nearest,
                    bool align_corners = false);
  Upsample(double scale_h, double scale_w, UpsampleMode mode = UpsampleMode::Nearest,
           bool align_corners = false);
  // To a fixed output size.
  explicit Upsample(Size2 size, UpsampleMode mode = UpsampleMode::Nearest,
                    bool align_corners = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  std::optional<Size2> size;
  std::optional<std::array<double, 2>> scale_factor;
  UpsampleMode mode;
  bool align_corners;  // bilinear only
};

}  // namespace cxr::nn
