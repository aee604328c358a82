// all_close for tests.
#include "support/compare.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace cxr::test {

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                     double atol) {
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.sizes()) << " vs expected "
                                         << shape_str(expected.sizes());
  auto a = actual.to_vector<double>();
  auto e = expected.to_vector<double>();
  double worst = 0;
  int64_t first_bad = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(e[i]) || std::isnan(a[i])) {
      if (std::isnan(e[i]) != std::isnan(a[i]) && first_bad < 0) first_bad = int64_t(i);
      continue;
    }
    if (std::isinf(e[i]) || std::isinf(a[i])) {
      if (a[i] != e[i] && first_bad < 0) first_bad = int64_t(i);
      continue;
    }
    double err = std::abs(a[i] - e[i]);
    worst = std::max(worst, err);
    if (err > atol + rtol * std::abs(e[i]) && first_bad < 0) first_bad = int64_t(i);
  }
  if (first_bad < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "mismatch at flat index " << first_bad << ": " << a[size_t(first_bad)]
         << " vs expected " << e[size_t(first_bad)] << " (max abs error " << worst << ", rtol "
         << rtol << ", atol " << atol << ", shape " << shape_str(actual.sizes()) << ")";
}

::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes() || a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << describe(a) << " vs " << describe(b);
  const Tensor ca = raw::contiguous(raw::to(a, Device::cpu()));
  const Tensor cb = raw::contiguous(raw::to(b, Device::cpu()));
  const size_t width = size_t(ca.element_size());
  const auto* pa = static_cast<const unsigned char*>(ca.data_ptr());
  const auto* pb = static_cast<const unsigned char*>(cb.data_ptr());
  for (int64_t i = 0; i < ca.numel(); ++i)
    if (std::memcmp(pa + size_t(i) * width, pb + size_t(i) * width, width) != 0)
      return ::testing::AssertionFailure()
             << "bytes differ at flat index " << i << " (" << describe(a) << ")";
  return ::testing::AssertionSuccess() << "bitwise equal " << describe(a);
}

::testing::AssertionResult close_to_reference(const Tensor& actual, const Tensor& expected,
                                              double rel, double floor) {
  double scale = floor;
  for (double v : expected.to_vector<double>()) scale = std::max(scale, std::abs(v));
  return all_close(actual, expected, rel, rel * scale);
}

}  // namespace cxr::test
