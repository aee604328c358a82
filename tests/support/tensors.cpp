// Deterministic test inputs.
#include "support/tensors.h"

#include <cmath>
#include <vector>

namespace cxr::test {

Tensor spread_values(const Shape& shape, double lo, double hi) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[size_t(i)] = lo + (hi - lo) * std::fmod((double(i) + 0.37) / double(n) * 7.31, 1.0);
  return raw::from_vector(v, shape, kFloat64);
}

Tensor spread_leaf(const Shape& shape, double lo, double hi) {
  Tensor t = spread_values(shape, lo, hi);
  t.set_requires_grad(true);
  return t;
}

Tensor leaf_copy(const Tensor& t) {
  Tensor c = raw::clone(t);
  c.set_requires_grad(true);
  return c;
}

}  // namespace cxr::test
