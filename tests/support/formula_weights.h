// Deterministic "formula weights" for real-size models whose weights are too large to commit: the
// fill of tests/golden/formula_weights.py, element for element (see there for the formula), so a
// fixture written by PyTorch with these weights can be compared against our module.
#pragma once

#include <cstdint>
#include <string>

#include "nn/module.h"

namespace cxr::test {

// The formula value of state-dict entry `name`, the k-th key in sorted order, with t's shape and
// dtype (num_batches_tracked: a copy of t).
Tensor formula_tensor(const std::string& name, const Tensor& t, int64_t k);
// Writes the formula values into every entry of the module's state dict (parameters and
// persistent buffers, in place; num_batches_tracked untouched).
void fill_formula_weights(const nn::Module& module);

}  // namespace cxr::test
