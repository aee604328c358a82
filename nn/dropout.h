// Dropout (torch.nn.Dropout): inverted dropout in training, the identity in eval. The mask comes
// from a Philox Generator (the default generator unless one is given), so runs are reproducible.
#pragma once

#include "nn/module.h"
#include "tensor/random.h"  // Generator

namespace cxr::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  // `gen` must outlive the module.
  Dropout(double p, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  double p;

 private:
  Generator* gen_;
};

}  // namespace cxr::nn
