// Tests on CUDA devices (DESIGN.md §6: GPU tests are the same tests run on `cuda`; they skip
// without a GPU). CXR_SKIP_WITHOUT_CUDA() ends the current test as skipped, saying why, when no
// device is usable; test_devices() lists the devices a table-driven test should run on. The rest
// are the helpers the CUDA-vs-CPU tests (tests/*/test_cuda_*.cpp) share: the dtypes they sweep,
// the tolerance of each dtype, input makers, copies to cuda:0 / to CPU float64, the comparison of
// a CUDA result with its CPU reference and of the error messages of both devices.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/device.h"
#include "tensor/ops.h"

#define CXR_SKIP_WITHOUT_CUDA()                                                          \
  do {                                                                                   \
    if (::cxr::cuda_device_count() == 0)                                                 \
      GTEST_SKIP() << "no CUDA device is usable here (build without CUDA, no driver or " \
                      "no GPU); this test runs on machines with one";                    \
  } while (0)

// EXPECT_SAME_ERROR(on_cpu, on_cuda): see cxr::test::same_error.
#define EXPECT_SAME_ERROR(...) EXPECT_TRUE(::cxr::test::same_error(__VA_ARGS__))

namespace cxr::test {

// cpu, then every visible CUDA device.
inline std::vector<Device> test_devices() {
  std::vector<Device> devices = {Device::cpu()};
  for (int i = 0; i < cuda_device_count(); ++i) devices.push_back(Device::cuda(i));
  return devices;
}

// The floating dtypes, and every dtype (floats, then integers and bool).
inline constexpr DType kFloatDtypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16};
inline constexpr DType kAllDtypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16,
                                       kInt32,   kInt64,   kUInt8,   kBool};

// Relative tolerance of a CUDA result in `dtype` against the CPU: float64 1e-12, float32
// `float32_tolerance` (1e-5; TF32 matmul/conv pass 5e-3), float16 1e-2, bfloat16 4e-2; the
// integer and bool results are exact (0).
double cuda_tolerance(DType dtype, double float32_tolerance = 1e-5);

// `t` copied to cuda:0.
Tensor to_cuda(const Tensor& t);
// `t` copied to the CPU as float64 (a reference to compare with).
Tensor cpu_f64(const Tensor& t);

// test::spread_values(shape, lo, hi) rounded to `dtype`, on the CPU.
Tensor spread_input(const Shape& shape, DType dtype, double lo = -2.0, double hi = 2.0);
// 0, 1, 2, ... in `shape` and `dtype`, on the CPU.
Tensor iota(const Shape& shape, DType dtype = kFloat32);
// The integers `v` as a tensor of `shape` and `dtype`, on the CPU.
Tensor ints(const std::vector<int64_t>& v, const Shape& shape, DType dtype = kInt64);

// `got` (a CUDA result of `dtype`) has the shape of the CPU float64 reference `expected` and its
// values within `tolerance`, relative to the largest magnitude of `expected` (at least 1); the
// failures name `what` and the dtype.
void expect_matches_reference(const Tensor& got, const Tensor& expected, DType dtype,
                              double tolerance, const std::string& what);

// expect_matches_reference of an op that runs on TF32 tensor cores in float32 (matmul, conv:
// 10-bit mantissa inputs, float32 accumulation): float32 within 5e-3.
void expect_matches_tf32_reference(const Tensor& got, const Tensor& expected, DType dtype,
                                   const std::string& what);

// `message` without the "@cuda:0" that describe() appends to tensors on cuda:0.
std::string without_cuda_suffix(std::string message);

// Both calls throw a cxr::Error and the CUDA message equals the CPU one without its "@cuda:0"
// suffixes; the failure says which call did not throw or shows both messages.
::testing::AssertionResult same_error(const std::function<void()>& on_cpu,
                                      const std::function<void()>& on_cuda);
// same_error of f(a, b) on the CPU tensors and f(to_cuda(a), to_cuda(b)).
template <typename F>
::testing::AssertionResult same_error(F f, const Tensor& a, const Tensor& b) {
  return same_error([&] { f(a, b); }, [&] { f(to_cuda(a), to_cuda(b)); });
}

}  // namespace cxr::test
