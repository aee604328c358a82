// gradcheck: compares the gradients computed by backward with central finite differences, in
// float64. Used by the tests of every differentiable op.
#pragma once

#include <functional>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  uint64_t seed = 1234;  // for the random projection of non-scalar outputs
};

// `fn` maps the inputs to one output tensor. Inputs must be float64; those that require grad are
// checked. A non-scalar output is reduced to sum(out * v) with a fixed random v, so one backward
// checks the whole vector-Jacobian product. Returns true or throws cxr::Error naming the input, the
// element and both values of the first mismatch.
bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace cxr::autograd

namespace cxr {
using autograd::gradcheck;
}
