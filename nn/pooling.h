// Pooling layers on NCHW tensors (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d).
#pragma once

#include <optional>

#include "nn/module.h"
#include "nn/size2.h"

namespace cxr::nn {

struct MaxPool2dOptions {
  std::optional<Size2> stride = std::nullopt;  // default: the kernel size
  Size2 padding = 0;
  Size2 dilation = 1;
  bool ceil_mode = false;
};

class MaxPool2d : public Module {
 public:
  // e.g. MaxPool2d(3, {.stride = 2, .padding = 1}) (ResNet's stem).
  explicit MaxPool2d(Size2 kernel_size, const MaxPool2dOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Pool2dParams params;
};

struct AvgPool2dOptions {
  std::optional<Size2> stride = std::nullopt;  // default: the kernel size
  Size2 padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, const AvgPool2dOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Pool2dParams params;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Size2 output_size;
};

}  // namespace cxr::nn
