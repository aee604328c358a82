// Finite-difference gradient checking.
#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"
#include "tensor/random.h"
#include "tensor/reduce.h"

namespace cxr::autograd {

namespace {
// sum(out * v) as a double, without recording.
double project(const Tensor& out, const Tensor& v) {
  return raw::sum(raw::mul(raw::to(out, kFloat64), v)).item();
}
}  // namespace

bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (size_t i = 0; i < inputs.size(); ++i)
    CXR_CHECK(!inputs[i].defined() || !inputs[i].requires_grad() || inputs[i].dtype() == kFloat64,
              "gradcheck: input ", i, " is ", describe(inputs[i]),
              "; inputs that require grad must be float64");

  // Analytic: backward of sum(out * v).
  Tensor out = fn(inputs);
  CXR_CHECK(out.requires_grad(), "gradcheck: the output does not require grad");
  Generator gen(options.seed);
  // v in [0.5, 1.5): nonzero weights so no element's gradient is hidden.
  Tensor v = raw::rand(out.sizes(), gen, kFloat64, 0.5, 1.5);
  std::vector<Tensor> wrt;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      wrt.push_back(inputs[i]);
      wrt_index.push_back(i);
    }
  std::vector<Tensor> analytic = grad({out}, wrt, {raw::to(v, out.dtype())}, false, false, true);

  // Numeric: central differences of the projection, one element at a time.
  NoGradGuard no_grad;
  for (size_t w = 0; w < wrt.size(); ++w) {
    const Tensor& x = wrt[w];
    CXR_CHECK(x.is_contiguous(), "gradcheck: input ", wrt_index[w], " must be contiguous");
    double* data = x.data<double>();
    Tensor a =
        analytic[w].defined() ? raw::to(analytic[w], kFloat64) : raw::zeros(x.sizes(), kFloat64);
    std::vector<double> av = a.to_vector<double>();
    for (int64_t e = 0; e < x.numel(); ++e) {
      const double saved = data[e];
      data[e] = saved + options.eps;
      double plus = project(fn(inputs), v);
      data[e] = saved - options.eps;
      double minus = project(fn(inputs), v);
      data[e] = saved;
      double numeric = (plus - minus) / (2 * options.eps);
      double analytic_value = av[size_t(e)];
      CXR_CHECK(
          std::abs(analytic_value - numeric) <= options.atol + options.rtol * std::abs(numeric),
          "gradcheck: gradient mismatch for input ", wrt_index[w], " ", describe(x),
          " at flat index ", e, ": backward gives ", analytic_value, ", finite differences give ",
          numeric);
    }
  }
  return true;
}

}  // namespace cxr::autograd
