// Linear layer over the differentiable cxr::linear.
#include "nn/linear.h"

#include "autograd/linalg.h"  // linear
#include "nn/init.h"
#include "tensor/creation.h"  // raw::empty

namespace cxr::nn {

Linear::Linear(int64_t in, int64_t out, bool has_bias)
    : Module("Linear"), in_features(in), out_features(out) {
  CXR_CHECK(in >= 0 && out >= 0, "Linear: feature counts must be >= 0, got in_features=", in,
            ", out_features=", out);
  weight = raw::empty({out, in});
  if (has_bias) bias = raw::empty({out});
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  reset_parameters();
}

void Linear::reset_parameters(Generator& gen) {
  init::default_weight_and_bias(weight, bias, gen);
}

Tensor Linear::forward(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_features,
            "Linear: expected input [..., ", in_features, "], got ",
            x.defined() ? describe(x) : std::string("undefined"));
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) +
         ", out_features=" + std::to_string(out_features) +
         ", bias=" + (bias.defined() ? "True" : "False");
}

}  // namespace cxr::nn
