// Linear (torch.nn.Linear): y = x Wᵀ + b, weight [out_features, in_features], bias [out].
#pragma once

#include "nn/module.h"
#include "tensor/random.h"  // Generator

namespace cxr::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  // PyTorch's default init (init::default_weight_and_bias) drawn from `gen`.
  void reset_parameters(Generator& gen = default_generator());
  // x [..., in_features] -> [..., out_features].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined when built with bias = false
};

}  // namespace cxr::nn
