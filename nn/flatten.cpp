// Flatten over the differentiable cxr::flatten (a view when the strides allow).
#include "nn/flatten.h"

#include "autograd/views.h"  // flatten

namespace cxr::nn {

Flatten::Flatten(int64_t start, int64_t end) : Module("Flatten"), start_dim(start), end_dim(end) {}

Tensor Flatten::forward(const Tensor& x) {
  return flatten(x, start_dim, end_dim);
}

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

}  // namespace cxr::nn
