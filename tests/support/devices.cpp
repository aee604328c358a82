// The helpers of the CUDA-vs-CPU tests (support/devices.h).
#include "support/devices.h"

#include "support/compare.h"
#include "support/errors.h"
#include "support/tensors.h"

namespace cxr::test {

double cuda_tolerance(DType dtype, double float32_tolerance) {
  switch (dtype) {
    case kFloat64:
      return 1e-12;
    case kFloat32:
      return float32_tolerance;
    case kFloat16:
      return 1e-2;
    case kBFloat16:
      return 4e-2;
    default:
      return 0.0;
  }
}

Tensor to_cuda(const Tensor& t) {
  return raw::to(t, Device::cuda(0));
}

Tensor cpu_f64(const Tensor& t) {
  return raw::to(raw::to(t, Device::cpu()), kFloat64);
}

Tensor spread_input(const Shape& shape, DType dtype, double lo, double hi) {
  return raw::to(spread_values(shape, lo, hi), dtype);
}

Tensor iota(const Shape& shape, DType dtype) {
  return raw::reshape(raw::arange(0, double(shape_numel(shape)), 1, dtype), shape);
}

Tensor ints(const std::vector<int64_t>& v, const Shape& shape, DType dtype) {
  return raw::from_vector(v, shape, dtype);
}

void expect_matches_reference(const Tensor& got, const Tensor& expected, DType dtype,
                              double tolerance, const std::string& what) {
  SCOPED_TRACE(what + " " + std::string(dtype_name(dtype)));
  ASSERT_TRUE(got.device().is_cuda()) << describe(got);
  EXPECT_EQ(got.dtype(), dtype);
  EXPECT_EQ(got.sizes(), expected.sizes()) << describe(got) << " vs " << describe(expected);
  EXPECT_TRUE(close_to_reference(cpu_f64(got), expected, tolerance, 1.0));
}

void expect_matches_tf32_reference(const Tensor& got, const Tensor& expected, DType dtype,
                                   const std::string& what) {
  expect_matches_reference(got, expected, dtype, cuda_tolerance(dtype, 5e-3), what);
}

std::string without_cuda_suffix(std::string message) {
  const std::string suffix = "@cuda:0";
  for (size_t at; (at = message.find(suffix)) != std::string::npos;)
    message.erase(at, suffix.size());
  return message;
}

::testing::AssertionResult same_error(const std::function<void()>& on_cpu,
                                      const std::function<void()>& on_cuda) {
  const std::string expected = error_message(on_cpu);
  if (expected.empty()) return ::testing::AssertionFailure() << "the CPU call did not throw";
  const std::string raw_got = error_message(on_cuda);
  if (raw_got.empty())
    return ::testing::AssertionFailure() << "the CUDA call did not throw (CPU: " << expected << ")";
  const std::string got = without_cuda_suffix(raw_got);
  if (got != expected)
    return ::testing::AssertionFailure() << "CUDA error \"" << got << "\" (without @cuda:0)\n"
                                         << "  CPU error \"" << expected << "\"";
  return ::testing::AssertionSuccess();
}

}  // namespace cxr::test
