// The formula-weight fill of tests/golden/formula_weights.py (same hash, constants and branches).
#include "support/formula_weights.h"

#include <cmath>
#include <vector>

#include "tensor/ops.h"

namespace cxr::test {

namespace {

constexpr double kGain = 2.0;  // formula_weights.GAIN

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Steele, Lea & Flood's SplitMix64 finaliser (unsigned arithmetic wraps, as numpy's uint64).
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

Tensor formula_tensor(const std::string& name, const Tensor& t, int64_t k) {
  if (ends_with(name, "num_batches_tracked")) return raw::clone(t);
  const int64_t n = t.numel();
  // value = offset + scale * s with s = 2 u - 1 uniform in [-1, 1).
  double offset = 0.0, scale = 0.05;
  if (ends_with(name, "running_mean")) {
    scale = 0.1;
  } else if (ends_with(name, "running_var")) {
    offset = 1.25, scale = 0.25;
  } else if (t.dim() >= 2) {
    scale = kGain / std::sqrt(double(n / t.size(0)));  // fan_in = size(1) * receptive field
  } else if (ends_with(name, "weight")) {
    offset = 1.0, scale = 0.1;
  }
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t h = splitmix64((uint64_t(k) << 32) | uint64_t(i));
    const double u = double(h >> 11) * 0x1p-53;
    v[size_t(i)] = offset + scale * (2.0 * u - 1.0);
  }
  return raw::from_vector(v, t.sizes(), t.dtype());
}

void fill_formula_weights(const nn::Module& module) {
  int64_t k = 0;
  for (const auto& [name, t] : module.state_dict()) {  // std::map: sorted keys, as Python's sorted
    if (!ends_with(name, "num_batches_tracked")) raw::copy_(t, formula_tensor(name, t, k));
    ++k;
  }
}

}  // namespace cxr::test
