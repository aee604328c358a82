// Pooling and upsampling on CUDA against the CPU kernels (the specification): forward values,
// max-pool indices (ties and NaNs included) and every backward pass, for float32/float64/float16/
// bfloat16, 3-D and 4-D inputs of odd sizes, the parameter combinations of test_pool.cpp,
// non-contiguous inputs and gradients, empty batches, run-to-run determinism of the backward
// kernels, and the errors (the CPU's messages; mixed devices). Every test skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "support/pool_cases.h"
#include "tensor/ops.h"

using namespace cxr;
using raw::Int2;
using raw::Pool2dParams;

namespace {

using test::channels_last_copy;
using test::kFloatDtypes;
using test::pool_params;

Tensor cuda(const Tensor& t) {
  return test::to_cuda(t);
}

// Tolerance of a CUDA result against the CPU result in `dtype` (the kernels add in the CPU's
// order, so float32/float64 differ at most by the last bits of the few formulas GCC may contract).
double tol(DType dtype) {
  return test::cuda_tolerance(dtype);
}

// Distinct values in [-2, 2) as `dtype`.
Tensor input(const Shape& shape, DType dtype, double lo = -2.0, double hi = 2.0) {
  return test::spread_input(shape, dtype, lo, hi);
}

std::string label(const std::string& op, DType dtype, const Tensor& x) {
  return op + " " + std::string(dtype_name(dtype)) + " " + shape_str(x.sizes()) +
         (x.is_contiguous() ? "" : " non-contiguous");
}

// The CUDA result (on the device, of the same dtype and shape) is close to the CPU result.
void expect_matches_cpu(const Tensor& got, const Tensor& expected, DType dtype) {
  EXPECT_TRUE(got.device().is_cuda());
  EXPECT_EQ(got.dtype(), expected.dtype());
  EXPECT_ALL_CLOSE(got, expected, tol(dtype), tol(dtype));
}

// The golden parameter sets of test_pool.cpp followed by `more`.
std::vector<test::PoolCase> golden_and(const std::vector<test::PoolCase>& golden,
                                       std::initializer_list<test::PoolCase> more) {
  std::vector<test::PoolCase> cases = golden;
  cases.insert(cases.end(), more);
  return cases;
}

const std::vector<test::PoolCase> kMaxCases =
    golden_and(test::golden_max_pool_cases(),
               {{"k3s1", pool_params({3, 3}, {1, 1}, {1, 1})},
                {"dil_ceil", pool_params({2, 3}, {3, 2}, {1, 1}, {2, 1}, true)}});

const std::vector<test::PoolCase> kAvgCases =
    golden_and(test::golden_avg_pool_cases(),
               {{"k3s1", pool_params({3, 3}, {1, 1}, {1, 1}, {1, 1}, false, true)},
                {"k5s3_ceil", pool_params({5, 4}, {3, 3}, {2, 1}, {1, 1}, true, false)}});

// Odd sizes, a 3-D input, and one large enough for many blocks.
const Shape kShapes[] = {{2, 3, 9, 11}, {3, 7, 10}, {2, 8, 33, 35}};

}  // namespace

TEST(CudaMaxPool2d, ValuesIndicesAndGradientMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const auto& [name, p] : kMaxCases)
    for (const Shape& shape : kShapes)
      for (DType dt : kFloatDtypes) {
        const Tensor x = input(shape, dt);
        for (const Tensor& xc : {cuda(x), channels_last_copy(cuda(x))}) {
          SCOPED_TRACE(label(std::string("max_pool2d ") + name, dt, xc));
          const raw::PoolResult want = raw::max_pool2d(x, p);
          const raw::PoolResult got = raw::max_pool2d(xc, p);
          EXPECT_ALL_CLOSE(got.out, want.out, 0, 0);  // a max is one of the inputs
          EXPECT_TRUE(got.indices.device().is_cuda());
          EXPECT_EQ(got.indices.to_vector<int64_t>(), want.indices.to_vector<int64_t>());
          const Tensor gy = input(want.out.sizes(), dt, -1.0, 3.0);
          const Tensor gi = raw::max_pool2d_backward(gy, want.indices, x.sizes());
          expect_matches_cpu(raw::max_pool2d_backward(cuda(gy), got.indices, xc.sizes()), gi, dt);
          expect_matches_cpu(
              raw::max_pool2d_backward(channels_last_copy(cuda(gy)), got.indices, xc.sizes()), gi,
              dt);
        }
      }
}

TEST(CudaMaxPool2d, TiesNansAndMinusInfinityPickTheCpuIndex) {
  CXR_SKIP_WITHOUT_CUDA();
  // Few distinct values: most windows hold several equal maxima (the first one wins).
  const Tensor ties = raw::to(raw::to(input({2, 3, 13, 12}, kFloat32, 0.0, 3.0), kInt64), kFloat32);
  for (const auto& [name, p] : kMaxCases) {
    SCOPED_TRACE(std::string("ties ") + name);
    const raw::PoolResult want = raw::max_pool2d(ties, p);
    const raw::PoolResult got = raw::max_pool2d(cuda(ties), p);
    EXPECT_EQ(got.indices.to_vector<int64_t>(), want.indices.to_vector<int64_t>());
    EXPECT_ALL_CLOSE(got.out, want.out, 0, 0);
    // Overlapping windows whose maxima coincide send several gradients to one input element.
    const Tensor gy = input(want.out.sizes(), kFloat32);
    EXPECT_ALL_CLOSE(raw::max_pool2d_backward(cuda(gy), got.indices, ties.sizes()),
                     raw::max_pool2d_backward(gy, want.indices, ties.sizes()), 1e-6, 1e-6);
  }
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = raw::from_vector(
      std::vector<double>{1, std::nan(""), 3, 2, -inf, -inf, -inf, -inf}, {1, 2, 2, 2}, kFloat32);
  const raw::PoolResult r = raw::max_pool2d(cuda(x), pool_params({2, 2}, {2, 2}, {0, 0}));
  EXPECT_TRUE(std::isnan(r.out.at({0, 0, 0, 0})));
  EXPECT_EQ(r.indices.at({0, 0, 0, 0}), 1);
  EXPECT_EQ(r.out.at({0, 1, 0, 0}), -inf);
  EXPECT_EQ(r.indices.at({0, 1, 0, 0}), 0);
}

TEST(CudaAvgPool2d, PaddingCeilModeAndGradientMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const auto& [name, p] : kAvgCases)
    for (const Shape& shape : kShapes)
      for (DType dt : kFloatDtypes) {
        const Tensor x = input(shape, dt);
        const Tensor want = raw::avg_pool2d(x, p);
        const Tensor gy = input(want.sizes(), dt, -1.0, 3.0);
        const Tensor gi = raw::avg_pool2d_backward(gy, x.sizes(), p);
        for (const Tensor& xc : {cuda(x), channels_last_copy(cuda(x))}) {
          SCOPED_TRACE(label(std::string("avg_pool2d ") + name, dt, xc));
          expect_matches_cpu(raw::avg_pool2d(xc, p), want, dt);
          expect_matches_cpu(raw::avg_pool2d_backward(cuda(gy), xc.sizes(), p), gi, dt);
          expect_matches_cpu(raw::avg_pool2d_backward(channels_last_copy(cuda(gy)), xc.sizes(), p),
                             gi, dt);
        }
      }
}

TEST(CudaAdaptiveAvgPool2d, BinsAndGradientMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Int2 sizes[] = {{3, 4}, {1, 1}, {5, 4}, {4, 2}, {13, 17}, {9, 11}};
  for (const Int2& o : sizes)
    for (const Shape& shape : {Shape{2, 3, 7, 9}, Shape{3, 5, 6}, Shape{2, 8, 31, 29}})
      for (DType dt : kFloatDtypes) {
        const Tensor x = input(shape, dt);
        const Tensor want = raw::adaptive_avg_pool2d(x, o);
        const Tensor gy = input(want.sizes(), dt, -1.0, 3.0);
        const Tensor gi = raw::adaptive_avg_pool2d_backward(gy, x.sizes());
        const Tensor xc = channels_last_copy(cuda(x));
        SCOPED_TRACE(label("adaptive_avg_pool2d to " + shape_str({o[0], o[1]}), dt, xc));
        expect_matches_cpu(raw::adaptive_avg_pool2d(xc, o), want, dt);
        expect_matches_cpu(
            raw::adaptive_avg_pool2d_backward(channels_last_copy(cuda(gy)), xc.sizes()), gi, dt);
      }
}

TEST(CudaUpsample, NearestAndBilinearMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  // Up, odd, down, to one row, equal, doubled, large factors both ways.
  const Int2 sizes[] = {{10, 14}, {8, 11}, {3, 4}, {1, 3}, {5, 7}, {10, 7}, {41, 3}, {2, 60}};
  for (const Int2& o : sizes)
    for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{3, 1, 9}, Shape{1, 2, 17, 19}})
      for (DType dt : kFloatDtypes) {
        const Tensor x = input(shape, dt);
        const Tensor xc = channels_last_copy(cuda(x));
        const std::string size = shape_str({o[0], o[1]});
        {
          SCOPED_TRACE(label("upsample_nearest2d to " + size, dt, xc));
          const Tensor want = raw::upsample_nearest2d(x, o);
          EXPECT_ALL_CLOSE(raw::upsample_nearest2d(xc, o), want, 0, 0);  // a copy
          const Tensor gy = input(want.sizes(), dt, -1.0, 3.0);
          expect_matches_cpu(
              raw::upsample_nearest2d_backward(channels_last_copy(cuda(gy)), xc.sizes()),
              raw::upsample_nearest2d_backward(gy, x.sizes()), dt);
        }
        for (bool ac : {false, true}) {
          SCOPED_TRACE(label(std::string("upsample_bilinear2d ") +
                                 (ac ? "align_corners" : "half-pixel") + " to " + size,
                             dt, xc));
          const Tensor want = raw::upsample_bilinear2d(x, o, ac);
          expect_matches_cpu(raw::upsample_bilinear2d(xc, o, ac), want, dt);
          const Tensor gy = input(want.sizes(), dt, -1.0, 3.0);
          expect_matches_cpu(
              raw::upsample_bilinear2d_backward(channels_last_copy(cuda(gy)), xc.sizes(), ac),
              raw::upsample_bilinear2d_backward(gy, x.sizes(), ac), dt);
        }
      }
}

TEST(CudaPooling, EmptyBatchesGiveEmptyResults) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = cuda(raw::zeros({0, 3, 8, 9}));
  const Shape out{0, 3, 4, 4};
  const raw::PoolResult m = raw::max_pool2d(x, pool_params({2, 2}, {2, 2}, {0, 0}));
  EXPECT_EQ(m.out.sizes(), out);
  EXPECT_EQ(m.indices.sizes(), out);
  EXPECT_EQ(raw::max_pool2d_backward(m.out, m.indices, x.sizes()).sizes(), x.sizes());
  EXPECT_EQ(raw::avg_pool2d(x, pool_params({2, 2}, {2, 2}, {0, 0})).sizes(), out);
  EXPECT_EQ(raw::avg_pool2d_backward(m.out, x.sizes(), pool_params({2, 2}, {2, 2}, {0, 0})).sizes(),
            x.sizes());
  EXPECT_EQ(raw::adaptive_avg_pool2d(x, {4, 4}).sizes(), out);
  EXPECT_EQ(raw::adaptive_avg_pool2d_backward(m.out, x.sizes()).sizes(), x.sizes());
  EXPECT_EQ(raw::upsample_nearest2d(x, {4, 4}).sizes(), out);
  EXPECT_EQ(raw::upsample_nearest2d_backward(m.out, x.sizes()).sizes(), x.sizes());
  EXPECT_EQ(raw::upsample_bilinear2d(x, {4, 4}, false).sizes(), out);
  EXPECT_EQ(raw::upsample_bilinear2d_backward(m.out, x.sizes(), true).sizes(), x.sizes());
}

TEST(CudaPooling, BackwardKernelsAreDeterministic) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = cuda(input({4, 16, 33, 35}, kFloat32));
  const Pool2dParams p = pool_params({3, 3}, {1, 1}, {1, 1});
  const raw::PoolResult m = raw::max_pool2d(x, p);
  const Tensor gy = cuda(input(m.out.sizes(), kFloat32));
  const Tensor up = cuda(input({4, 16, 70, 53}, kFloat32));
  auto run = [&] {
    return std::vector<Tensor>{raw::max_pool2d_backward(gy, m.indices, x.sizes()),
                               raw::avg_pool2d_backward(gy, x.sizes(), p),
                               raw::upsample_bilinear2d_backward(up, x.sizes(), false),
                               raw::upsample_nearest2d_backward(up, x.sizes()),
                               raw::adaptive_avg_pool2d_backward(up, x.sizes())};
  };
  const std::vector<Tensor> a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(test::bitwise_equal(a[i], b[i])) << i;
}

TEST(CudaPooling, BadArgumentsGiveTheCpuErrors) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = raw::zeros({1, 2, 5, 5}), xc = cuda(x);
  const std::pair<Pool2dParams, bool> bad_pools[] = {
      {pool_params({3, 3}, {1, 1}, {2, 2}), true},   // padding over half the kernel
      {pool_params({0, 3}, {1, 1}, {0, 0}), true},   // empty kernel
      {pool_params({3, 3}, {0, 1}, {0, 0}), false},  // zero stride
      {pool_params({6, 6}, {1, 1}, {0, 0}), true},   // empty output
  };
  for (const auto& [p, max] : bad_pools) {
    if (max) {
      EXPECT_SAME_ERROR([&] { raw::max_pool2d(x, p); }, [&] { raw::max_pool2d(xc, p); });
    } else {
      EXPECT_SAME_ERROR([&] { raw::avg_pool2d(x, p); }, [&] { raw::avg_pool2d(xc, p); });
    }
  }
  EXPECT_SAME_ERROR(
      [&] {
        raw::avg_pool2d(raw::zeros({5, 5}), pool_params({2, 2}, {2, 2}, {0, 0}));
      },
      [&] {
        raw::avg_pool2d(cuda(raw::zeros({5, 5})), pool_params({2, 2}, {2, 2}, {0, 0}));
      });
  EXPECT_SAME_ERROR(
      [&] {
        raw::adaptive_avg_pool2d(x, {0, 2});
      },
      [&] {
        raw::adaptive_avg_pool2d(xc, {0, 2});
      });
  const Tensor ints = raw::zeros({1, 2, 5, 5}, kInt32);
  EXPECT_SAME_ERROR(
      [&] {
        raw::upsample_bilinear2d(ints, {3, 3}, true);
      },
      [&] {
        raw::upsample_bilinear2d(cuda(ints), {3, 3}, true);
      });
  const Tensor g = raw::zeros({1, 2, 3, 3});
  EXPECT_SAME_ERROR(
      [&] {
        raw::avg_pool2d_backward(g, x.sizes(), pool_params({2, 2}, {2, 2}, {0, 0}));
      },
      [&] {
        raw::avg_pool2d_backward(cuda(g), x.sizes(), pool_params({2, 2}, {2, 2}, {0, 0}));
      });
  EXPECT_SAME_ERROR(
      [&] {
        raw::upsample_nearest2d_backward(g, {1, 2, 0, 3});
      },
      [&] {
        raw::upsample_nearest2d_backward(cuda(g), {1, 2, 0, 3});
      });
  // Bad max-pool indices are caught on the device and named as on the CPU.
  const raw::PoolResult r = raw::max_pool2d(x, pool_params({2, 2}, {2, 2}, {0, 0}));
  std::vector<int64_t> bad(size_t(r.indices.numel()), 3);
  bad[5] = 99;
  bad[2] = -4;
  const Tensor bad_idx = raw::from_vector(bad, r.indices.sizes());
  EXPECT_SAME_ERROR([&] { raw::max_pool2d_backward(r.out, bad_idx, x.sizes()); },
                    [&] { raw::max_pool2d_backward(cuda(r.out), cuda(bad_idx), x.sizes()); });
  EXPECT_ERROR_CONTAINS(raw::max_pool2d_backward(cuda(r.out), cuda(bad_idx), x.sizes()),
                        "index -4 is outside the input plane of 25 elements");
}

TEST(CudaPooling, MixedDevicesAreRefused) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = raw::zeros({1, 2, 4, 4});
  const raw::PoolResult r = raw::max_pool2d(x, pool_params({2, 2}, {2, 2}, {0, 0}));
  EXPECT_ERROR_CONTAINS(raw::max_pool2d_backward(cuda(r.out), r.indices, x.sizes()),
                        "max_pool2d_backward: expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(raw::max_pool2d_backward(r.out, cuda(r.indices), x.sizes()), "cuda:0");
}
