// Activation modules over the differentiable elementwise ops.
#include "nn/activation.h"

#include "autograd/elementwise.h"  // relu, silu, gelu, quick_gelu, sigmoid, tanh

namespace cxr::nn {

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}
Tensor SiLU::forward(const Tensor& x) {
  return silu(x);
}

GELU::GELU(const std::string& approximate)
    : Module("GELU"), approximate_tanh(approximate == "tanh") {
  CXR_CHECK(approximate == "none" || approximate == "tanh",
            "GELU: approximate must be 'none' or 'tanh', got '", approximate, "'");
}

Tensor GELU::forward(const Tensor& x) {
  return gelu(x, approximate_tanh);
}

std::string GELU::extra_repr() const {
  return approximate_tanh ? "approximate='tanh'" : "approximate='none'";
}

Tensor QuickGELU::forward(const Tensor& x) {
  return quick_gelu(x);
}
Tensor Sigmoid::forward(const Tensor& x) {
  return sigmoid(x);
}
Tensor Tanh::forward(const Tensor& x) {
  return tanh(x);
}

}  // namespace cxr::nn
