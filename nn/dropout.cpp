// Dropout layer over the differentiable cxr::dropout.
#include "nn/dropout.h"

#include <sstream>

#include "autograd/nn_ops.h"  // dropout

namespace cxr::nn {

Dropout::Dropout(double p_) : Dropout(p_, default_generator()) {}

Dropout::Dropout(double p_, Generator& gen) : Module("Dropout"), p(p_), gen_(&gen) {
  CXR_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  return dropout(x, p, is_training(), *gen_);
}

std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p;
  return os.str();
}

}  // namespace cxr::nn
