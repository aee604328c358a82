// Deterministic test inputs: float64 tensors with distinct, spread-out values, and leaves that
// require grad.
#pragma once

#include "tensor/ops.h"

namespace cxr::test {

// A float64 tensor of `shape` whose values lie in [lo, hi): element i is
// lo + (hi - lo) * frac(7.31 * (i + 0.37) / n). Distinct for n up to a few thousand and never on a
// simple rational like 0 (where some ops have kinks).
Tensor spread_values(const Shape& shape, double lo = -2.0, double hi = 2.0);
// spread_values(...) as a leaf that requires grad.
Tensor spread_leaf(const Shape& shape, double lo = -2.0, double hi = 2.0);
// A copy of `t` (e.g. a shared fixture input) as a leaf that requires grad.
Tensor leaf_copy(const Tensor& t);

}  // namespace cxr::test
