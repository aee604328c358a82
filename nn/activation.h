// Pointwise modules: Identity and the activations ReLU, SiLU, GELU (exact or tanh), QuickGELU
// (x sigmoid(1.702 x), OpenAI CLIP's), Sigmoid and Tanh. None has parameters.
#pragma once

#include <string>

#include "nn/module.h"

namespace cxr::nn {

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class SiLU : public Module {
 public:
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& x) override;
};

class GELU : public Module {
 public:
  // approximate: "none" (x Phi(x)) or "tanh", as torch.nn.GELU.
  explicit GELU(const std::string& approximate = "none");
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  bool approximate_tanh;
};

class QuickGELU : public Module {
 public:
  QuickGELU() : Module("QuickGELU") {}
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

}  // namespace cxr::nn
