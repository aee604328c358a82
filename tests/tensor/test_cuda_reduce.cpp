// CUDA reductions and softmax against the CPU (the specification): every op of tensor/reduce.h and
// softmax/log_softmax with their backward kernels, in every dtype each op takes, over single dims,
// dim sets, all dims and negative dims with and without keepdim, on transposed and sliced inputs,
// for row lengths around the block sizes, one long row and many short rows, ties (first index),
// NaN and -inf entries, empty tensors, determinism (the same bits twice), reductions of leading
// dims read as columns, and the errors. Every test needs a GPU and skips without one.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using test::kAllDtypes;
using test::kFloatDtypes;

Device gpu() {
  return Device::cuda(0);
}
Tensor on_gpu(const Tensor& t) {
  return test::to_cuda(t);
}

// Relative tolerance of a result in `d` (the integer results are exact).
double tol(DType d) {
  return test::cuda_tolerance(d);
}

// Values for `dtype`: uniform in [-4, 4) for floats, small integers otherwise (0/1 for bool,
// 0..7 for uint8) so that sums stay exact and ties occur.
Tensor sample(const Shape& shape, DType dtype, uint64_t seed) {
  Generator gen(seed);
  if (is_floating(dtype)) return raw::to(raw::rand(shape, gen, kFloat64, -4, 4), dtype);
  const int64_t lo = dtype == kBool || dtype == kUInt8 ? 0 : -5;
  const int64_t hi = dtype == kBool ? 2 : 8;
  return raw::to(raw::randint(lo, hi, shape, gen, kInt64), dtype);
}

std::string dname(DType d) {
  return std::string(dtype_name(d));
}

std::string name_of(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + shape_str(t.sizes()) +
         (t.is_contiguous() ? "" : " (strided)");
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "{";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "}";
}

using Op = std::function<Tensor(const Tensor&)>;
using View = std::function<Tensor(const Tensor&)>;
Tensor identity(const Tensor& t) {
  return t;
}

// op(view(x)) on the GPU against the CPU: device, dtype, shape and values within rtol and
// atol. Returns the GPU result.
Tensor expect_matches(const std::string& what, const Tensor& x, const Op& op, double rtol,
                      double atol, const View& view = identity) {
  const Tensor expected = op(view(x));
  const Tensor actual = op(view(on_gpu(x)));
  EXPECT_TRUE(actual.device().is_cuda()) << what;
  EXPECT_EQ(actual.dtype(), expected.dtype()) << what;
  EXPECT_TRUE(actual.is_contiguous()) << what;
  EXPECT_TRUE(test::all_close(actual, expected, rtol, atol)) << what << " on " << name_of(view(x));
  return actual;
}

// An op with its name in failure messages.
struct NamedOp {
  std::string name;
  Op op;
};

// Each op(view(x)) on the GPU equals the CPU result exactly (values and indices): expect_matches
// with no tolerance, named "<op name><suffix>".
void expect_exact(const std::vector<NamedOp>& ops, const std::string& suffix, const Tensor& x,
                  const View& view = identity) {
  for (const NamedOp& o : ops) expect_matches(o.name + suffix, x, o.op, 0, 0, view);
}

// The largest sum of |x| over the reduced dims (of the float64 values): the scale of a sum's
// rounding error. `mean` divides it by the reduced count.
double sum_scale(const Tensor& x, const std::vector<int64_t>& dims, bool mean) {
  const Tensor a = raw::abs(raw::to(x, kFloat64));
  if (a.numel() == 0) return 1.0;
  const Tensor s = mean ? raw::mean(a, dims) : raw::sum(a, dims);
  return std::max(1.0, raw::amax(s).item());
}

const std::vector<std::vector<int64_t>> kDimSets = {{},   {0},    {1},    {2},     {-1},
                                                    {-3}, {0, 2}, {1, 2}, {-1, 0}, {0, 1, 2}};

// The views a reduction is checked on: contiguous, transposed, sliced with a step.
struct ViewCase {
  const char* name;
  View view;
};
const std::vector<ViewCase> kViews = {
    {"contiguous", identity},
    {"transposed", [](const Tensor& t) { return raw::transpose(t, 0, 2); }},
    {"sliced", [](const Tensor& t) { return raw::slice(t, 1, 1, t.size(1), 2); }},
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sums and statistics

TEST(CudaReduce, SumOverDimSetsEveryDtypeAndView) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : kAllDtypes) {
    const Tensor x = sample({5, 7, 9}, dt, 1);
    for (const ViewCase& v : kViews)
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) {
          const std::string what =
              std::string("sum ") + v.name + " dims " + dims_str(dims) + (keep ? " keepdim" : "");
          const double t = tol(dt);
          expect_matches(
              what, x, [&](const Tensor& a) { return raw::sum(a, dims, keep); }, t,
              t * sum_scale(v.view(x), dims, false), v.view);
        }
  }
}

// Broadcast (stride-0) inputs, as the gradients of broadcast ops are.
TEST(CudaReduce, ReductionsOfExpandedInputs) {
  CXR_SKIP_WITHOUT_CUDA();
  const View expanded = [](const Tensor& t) { return raw::expand(t, {5, 7, 9}); };
  for (DType dt : {kFloat32, kFloat16, kInt32}) {
    const Tensor x = sample({5, 1, 9}, dt, 21);
    const double t = tol(dt);
    for (const auto& dims : kDimSets) {
      const std::string tag = " of an expanded input dims " + dims_str(dims) + " " + dname(dt);
      expect_matches(
          "sum" + tag, x, [&](const Tensor& a) { return raw::sum(a, dims); }, t,
          t * sum_scale(expanded(x), dims, false), expanded);
      expect_matches(
          "amax" + tag, x, [&](const Tensor& a) { return raw::amax(a, dims); }, 0, 0, expanded);
    }
    expect_matches(
        "sum_to [1, 7, 1] of an expanded input " + dname(dt), x,
        [](const Tensor& a) {
          return raw::sum_to(a, {1, 7, 1});
        },
        t, t * 200, expanded);
    expect_matches(
        "cumsum dim 1 of an expanded input " + dname(dt), x,
        [](const Tensor& a) { return raw::cumsum(a, 1); }, t, t * 30, expanded);
  }
}

TEST(CudaReduce, MeanVarStdOverDimSetsFloatDtypes) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatDtypes) {
    const Tensor x = sample({6, 5, 11}, dt, 2);
    const double t = tol(dt);
    for (const ViewCase& v : kViews)
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) {
          const std::string tag =
              std::string(v.name) + " dims " + dims_str(dims) + (keep ? " keepdim" : "");
          expect_matches(
              "mean " + tag, x, [&](const Tensor& a) { return raw::mean(a, dims, keep); }, t,
              t * sum_scale(v.view(x), dims, true), v.view);
          for (int64_t correction : {0, 1, 3}) {
            const std::string c = " correction " + std::to_string(correction);
            expect_matches(
                "var " + tag + c, x,
                [&](const Tensor& a) { return raw::var(a, dims, correction, keep); }, t, t * 16,
                v.view);
            expect_matches(
                "std " + tag + c, x,
                [&](const Tensor& a) { return raw::std(a, dims, correction, keep); }, t, t * 4,
                v.view);
          }
        }
  }
}

TEST(CudaReduce, SumRowLengthsAroundBlockSizes) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : {kFloat32, kFloat64, kFloat16, kInt32, kBool}) {
    for (int64_t n : {1, 31, 32, 33, 255, 256, 257, 1023, 1024, 1025, 4097, 8192, 8193, 70000}) {
      const Tensor x = sample({3, n}, dt, uint64_t(n));
      const double t = tol(dt);
      const std::string what = "sum/mean rows of " + std::to_string(n);
      expect_matches(
          what + " dim 1", x, [](const Tensor& a) { return raw::sum(a, {1}); }, t,
          t * sum_scale(x, {1}, false));
      expect_matches(
          what + " dim 0", x, [](const Tensor& a) { return raw::sum(a, {0}); }, t,
          t * sum_scale(x, {0}, false));
      if (is_floating(dt))
        expect_matches(
            what + " mean", x, [](const Tensor& a) { return raw::mean(a, {1}); }, t,
            t * sum_scale(x, {1}, true));
    }
  }
}

TEST(CudaReduce, LongRowAndManyShortRows) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt64}) {
    const double t = tol(dt);
    const Tensor row = sample({1000000}, dt, 3);
    expect_matches(
        "sum of a 1e6 row", row, [](const Tensor& a) { return raw::sum(a); }, t,
        t * sum_scale(row, {}, false));
    expect_matches(
        "amax of a 1e6 row", row, [](const Tensor& a) { return raw::amax(a); }, 0, 0);
    expect_matches(
        "argmin of a 1e6 row", row, [](const Tensor& a) { return raw::argmin(a, 0); }, 0, 0);
    if (is_floating(dt))
      expect_matches(
          "var of a 1e6 row", row, [](const Tensor& a) { return raw::var(a); }, t * 10, t * 10);
    const Tensor many = sample({200000, 3}, dt, 4);
    expect_matches(
        "sum of many short rows", many, [](const Tensor& a) { return raw::sum(a, {1}); }, t,
        t * sum_scale(many, {1}, false));
    expect_matches(
        "sum of 3 long columns", many, [](const Tensor& a) { return raw::sum(a, {0}); }, t,
        t * sum_scale(many, {0}, false));
    expect_matches(
        "max of many short rows", many, [](const Tensor& a) { return raw::max(a, 1).indices; }, 0,
        0);
  }
}

TEST(CudaReduce, LongFloat32SumIsAccurate) {
  CXR_SKIP_WITHOUT_CUDA();
  // 4M values of 0.1: a naive float32 running sum is off by percents; the tree is not.
  const Tensor x = raw::full({1 << 22}, 0.1, kFloat32, gpu());
  const double got = raw::sum(x).item();
  const double want = double(1 << 22) * double(0.1f);
  EXPECT_NEAR(got, want, want * 1e-5);
}

TEST(CudaReduce, ReductionsAreBitwiseDeterministic) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = on_gpu(sample({3, 700001}, kFloat32, 5));
  EXPECT_TRUE(test::bitwise_equal(raw::sum(x, {1}), raw::sum(x, {1})));
  EXPECT_TRUE(test::bitwise_equal(raw::sum(x), raw::sum(x)));
  EXPECT_TRUE(test::bitwise_equal(raw::var(x, {0, 1}), raw::var(x, {0, 1})));
  EXPECT_TRUE(test::bitwise_equal(raw::logsumexp(x, {1}), raw::logsumexp(x, {1})));
  EXPECT_TRUE(test::bitwise_equal(raw::norm(x, 3.0), raw::norm(x, 3.0)));
  EXPECT_TRUE(test::bitwise_equal(raw::softmax(x, 1), raw::softmax(x, 1)));
  EXPECT_TRUE(test::bitwise_equal(raw::cumsum(x, 1), raw::cumsum(x, 1)));
}

// ---------------------------------------------------------------------------------------------
// Max / min

TEST(CudaReduce, AmaxAminOverDimSetsEveryDtypeAndView) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : kAllDtypes) {
    const Tensor x = sample({5, 7, 9}, dt, 6);
    for (const ViewCase& v : kViews)
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) {
          const std::string tag =
              std::string(v.name) + " dims " + dims_str(dims) + (keep ? " keepdim" : "");
          expect_exact({{"amax", [&](const Tensor& a) { return raw::amax(a, dims, keep); }},
                        {"amin", [&](const Tensor& a) { return raw::amin(a, dims, keep); }}},
                       " " + tag, x, v.view);
        }
  }
}

// Few distinct values, so most rows have ties: the indices must be the first occurrence.
TEST(CudaReduce, MaxMinArgmaxArgminTiesTakeTheFirstIndex) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : kAllDtypes) {
    Generator gen(7);
    const Tensor x = raw::to(raw::randint(0, 2, {4, 33, 300}, gen, kInt64), dt);
    for (const ViewCase& v : kViews)
      for (int64_t dim : {0, 1, 2, -1, -2})
        for (bool keep : {false, true}) {
          const std::string tag = std::string(v.name) + " dim " + std::to_string(dim) +
                                  (keep ? " keepdim" : "") + " " + dname(dt);
          expect_exact(
              {{"max values", [&](const Tensor& a) { return raw::max(a, dim, keep).values; }},
               {"max indices", [&](const Tensor& a) { return raw::max(a, dim, keep).indices; }},
               {"min indices", [&](const Tensor& a) { return raw::min(a, dim, keep).indices; }},
               {"argmax", [&](const Tensor& a) { return raw::argmax(a, dim, keep); }},
               {"argmin", [&](const Tensor& a) { return raw::argmin(a, dim, keep); }}},
              " " + tag, x, v.view);
        }
  }
}

TEST(CudaReduce, TiesAcrossChunksOfALongRow) {
  CXR_SKIP_WITHOUT_CUDA();
  std::vector<float> v(1000000, 1.0f);
  v[5000] = v[900000] = v[999999] = 7.0f;  // the max three times: the first is at 5000
  v[123456] = v[654321] = -3.0f;
  const Tensor x = on_gpu(raw::from_vector(v, {1000000}));
  EXPECT_EQ(int64_t(raw::argmax(x, 0).item()), 5000);
  EXPECT_EQ(int64_t(raw::argmin(x, 0).item()), 123456);
  EXPECT_EQ(raw::max(x, 0).values.item(), 7.0);
  const Tensor flat = raw::full({300000}, 2.0, kFloat32, gpu());
  EXPECT_EQ(int64_t(raw::argmax(flat, 0).item()), 0);
  EXPECT_EQ(int64_t(raw::argmin(flat, 0).item()), 0);
}

TEST(CudaReduce, NaNPropagatesAsOnTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType dt : kFloatDtypes) {
    for (int64_t n : {5, 40, 3000, 20000}) {
      std::vector<float> v(size_t(3 * n));
      for (size_t i = 0; i < v.size(); ++i) v[i] = float(int64_t(i * 7919 % 23) - 11);
      v[size_t(n) + 2] = nan;  // row 1: one NaN
      v[size_t(2 * n) + 1] = nan;
      v[size_t(3 * n) - 1] = nan;  // row 2: two NaNs, the first at 1
      const Tensor x = raw::to(raw::from_vector(v, {3, n}), dt);
      const std::string tag = " with NaN, rows of " + std::to_string(n) + " " + dname(dt);
      const double t = tol(dt);
      expect_matches(
          "sum" + tag, x, [](const Tensor& a) { return raw::sum(a, {1}); }, t, t * 12 * double(n));
      expect_exact({{"amax", [](const Tensor& a) { return raw::amax(a, {1}); }},
                    {"argmax", [](const Tensor& a) { return raw::argmax(a, 1); }},
                    {"argmin", [](const Tensor& a) { return raw::argmin(a, 1); }}},
                   tag, x);
      expect_matches(
          "logsumexp" + tag, x, [](const Tensor& a) { return raw::logsumexp(a, {1}); }, t, t);
      expect_matches(
          "norm inf" + tag, x,
          [](const Tensor& a) {
            return raw::norm(a, std::numeric_limits<double>::infinity(), {1});
          },
          0, 0);
      expect_matches(
          "softmax" + tag, x, [](const Tensor& a) { return raw::softmax(a, 1); }, t, t);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// logsumexp, norm

TEST(CudaReduce, LogsumexpOverDimSetsWithInfinities) {
  CXR_SKIP_WITHOUT_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatDtypes) {
    const double t = tol(dt);
    const Tensor x = sample({4, 6, 300}, dt, 8);
    for (const ViewCase& v : kViews)
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true})
          expect_matches(
              std::string("logsumexp ") + v.name + " dims " + dims_str(dims) +
                  (keep ? " keepdim" : ""),
              x, [&](const Tensor& a) { return raw::logsumexp(a, dims, keep); }, t, t * 8, v.view);
    // Rows of all -inf (-> -inf), one +inf (-> +inf), and -inf among numbers.
    std::vector<double> rows = {-inf, -inf, -inf, 1.0, inf, 2.0, -inf, 0.5, 3.0};
    const Tensor special = raw::to(raw::from_vector(rows, {3, 3}), dt);
    expect_matches(
        std::string("logsumexp of infinities ") + dname(dt), special,
        [](const Tensor& a) { return raw::logsumexp(a, {1}); }, t, t);
  }
}

TEST(CudaReduce, NormsOfEveryPOverDimSets) {
  CXR_SKIP_WITHOUT_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatDtypes) {
    const Tensor x = raw::binary(BinaryOp::Mul, sample({5, 8, 70}, dt, 9), 0.25);
    for (double p : {0.0, 1.0, 2.0, 3.0, 0.5, -1.5, inf, -inf})
      for (const ViewCase& v : kViews)
        for (const auto& dims : kDimSets)
          for (bool keep : {false, true}) {
            const std::string what = "norm p=" + std::to_string(p) + " " + v.name + " dims " +
                                     dims_str(dims) + (keep ? " keepdim" : "");
            // p < 0 sums small and huge terms; the roots magnify the float rounding a little.
            const double t = tol(dt) * 8;
            expect_matches(
                what, x, [&](const Tensor& a) { return raw::norm(a, p, dims, keep); }, t, t,
                v.view);
          }
  }
}

// ---------------------------------------------------------------------------------------------
// cumsum, sum_to

TEST(CudaReduce, CumsumAlongEveryDimEveryDtype) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : kAllDtypes) {
    const Tensor x = sample({4, 5, 6}, dt, 10);
    const double t = tol(dt);
    for (const ViewCase& v : kViews)
      for (int64_t dim : {0, 1, 2, -1, -3})
        expect_matches(
            std::string("cumsum ") + v.name + " dim " + std::to_string(dim) + " " + dname(dt), x,
            [&](const Tensor& a) { return raw::cumsum(a, dim); }, t, t * 30, v.view);
  }
}

TEST(CudaReduce, CumsumOfLongRowsSpansTiles) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : {kFloat32, kFloat64, kInt32, kBool}) {
    for (int64_t n : {1, 255, 2047, 2048, 2049, 4097, 100003}) {
      const Tensor x = sample({3, n}, dt, uint64_t(n) + 11);
      const double t = tol(dt);
      const std::string what = "cumsum of rows of " + std::to_string(n) + " " + dname(dt);
      // Both sides accumulate in double: float results differ at most in their last rounding,
      // float64 ones by the different order of the double additions.
      const double atol = dt == kFloat64 ? 1e-14 * 4 * double(n) : t * 8;
      expect_matches(
          what + " dim 1", x, [](const Tensor& a) { return raw::cumsum(a, 1); }, t, atol);
      expect_matches(
          what + " dim 0", x, [](const Tensor& a) { return raw::cumsum(a, 0); }, t, t * 12);
    }
  }
}

TEST(CudaReduce, SumToReversesBroadcasting) {
  CXR_SKIP_WITHOUT_CUDA();
  const std::vector<Shape> targets = {{4, 5, 6}, {5, 6}, {5, 1}, {1, 6},   {4, 1, 1},
                                      {6},       {1},    {},     {4, 5, 1}};
  for (DType dt : {kFloat32, kFloat64, kFloat16, kInt64}) {
    const Tensor x = sample({4, 5, 6}, dt, 12);
    const double t = tol(dt);
    for (const Shape& target : targets)
      expect_matches(
          "sum_to " + shape_str(target) + " " + dname(dt), x,
          [&](const Tensor& a) { return raw::sum_to(a, target); }, t, t * 120);
  }
}

// Inputs dense with the reduced dims first are read in place as columns (reduce.cu): one or many
// chunks per column (N from 3 to 100003, chunk counts that do and do not divide N), a transposed
// view whose reduced dim is outermost in memory, ties across chunks (first index), every sum
// type, the two-pass variance, logsumexp and norms.
TEST(CudaReduce, ColumnReductionsOfLeadingDims) {
  CXR_SKIP_WITHOUT_CUDA();
  const std::vector<Shape> shapes = {{100003, 7}, {4099, 1000}, {3, 70001}, {257, 3, 129}};
  for (const Shape& shape : shapes)
    for (DType dt : kAllDtypes) {
      const Tensor x = sample(shape, dt, 31);
      const std::vector<int64_t> dims =
          shape.size() == 3 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0};
      const std::string tag = " over " + dims_str(dims) + " of " + name_of(x);
      const double t = tol(dt);
      expect_matches(
          "sum" + tag, x, [&](const Tensor& a) { return raw::sum(a, dims); }, t,
          t * sum_scale(x, dims, false));
      expect_matches(
          "amax" + tag, x, [&](const Tensor& a) { return raw::amax(a, dims); }, 0, 0);
      expect_matches(
          "argmin dim 0" + tag, x, [&](const Tensor& a) { return raw::argmin(a, 0); }, 0, 0);
      if (!is_floating(dt)) continue;
      expect_matches(
          "mean" + tag, x, [&](const Tensor& a) { return raw::mean(a, dims); }, t,
          t * sum_scale(x, dims, true));
      expect_matches(
          "var" + tag, x, [&](const Tensor& a) { return raw::var(a, dims); }, t, t * 16);
      expect_matches(
          "logsumexp" + tag, x, [&](const Tensor& a) { return raw::logsumexp(a, dims); }, t, t);
      expect_matches(
          "norm 2" + tag, x, [&](const Tensor& a) { return raw::norm(a, 2.0, dims); }, t, t);
    }
  // A transposed view of a dense [C, N]: reducing its dim 1 reads memory as columns.
  for (DType dt : {kFloat32, kFloat16, kInt64}) {
    const Tensor x = sample({5003, 37}, dt, 32);
    const View transposed = [](const Tensor& a) { return raw::transpose(a, 0, 1); };
    const double t = tol(dt);
    expect_matches(
        "sum dim 1 of a transposed " + dname(dt), x,
        [](const Tensor& a) { return raw::sum(a, {1}); }, t,
        t * sum_scale(transposed(x), {1}, false), transposed);
    expect_matches(
        "argmax dim 1 of a transposed " + dname(dt), x,
        [](const Tensor& a) { return raw::argmax(a, 1); }, 0, 0, transposed);
  }
  // Few distinct values: ties within and across the chunks of a column take the first index.
  Generator gen(33);
  const Tensor ties = raw::randint(0, 2, {20011, 5}, gen, kInt64);
  expect_matches(
      "argmax ties of columns", ties, [](const Tensor& a) { return raw::argmax(a, 0); }, 0, 0);
  expect_matches(
      "max indices ties of columns", ties, [](const Tensor& a) { return raw::max(a, 0).indices; },
      0, 0);
  // The sums of broadcasting backward: [B, L, D] -> [D] and [B, L, D] -> [1, L, D].
  const Tensor g = sample({16, 77, 320}, kFloat32, 34);
  expect_matches(
      "sum_to [320]", g, [](const Tensor& a) { return raw::sum_to(a, {320}); }, 1e-5,
      1e-5 * sum_scale(g, {0, 1}, false));
  expect_matches(
      "sum_to [1, 77, 320]", g,
      [](const Tensor& a) {
        return raw::sum_to(a, {1, 77, 320});
      },
      1e-5, 1e-5 * sum_scale(g, {0}, false));
  // The same bits twice.
  const Tensor gg = on_gpu(g);
  EXPECT_TRUE(test::bitwise_equal(raw::sum(gg, {0, 1}), raw::sum(gg, {0, 1})));
  EXPECT_TRUE(test::bitwise_equal(raw::var(gg, {0}), raw::var(gg, {0})));
}

// ---------------------------------------------------------------------------------------------
// Softmax family

TEST(CudaSoftmax, ForwardAndBackwardAlongLastAndMiddleDims) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatDtypes) {
    const double t = tol(dt);
    for (int64_t n : {1, 7, 32, 33, 1000, 1025, 5000}) {
      const Tensor x = sample({3, n, 4}, dt, uint64_t(n) + 13);
      const Tensor g = sample({3, n, 4}, dt, uint64_t(n) + 14);
      for (int64_t dim : {1, -1, 0}) {
        const std::string tag =
            " n " + std::to_string(n) + " dim " + std::to_string(dim) + " " + dname(dt);
        for (bool log : {false, true}) {
          const Op fwd = [&](const Tensor& a) {
            return log ? raw::log_softmax(a, dim) : raw::softmax(a, dim);
          };
          expect_matches((log ? "log_softmax" : "softmax") + tag, x, fwd, t, t);
          const Tensor y = fwd(x);
          const Tensor expected =
              log ? raw::log_softmax_backward(g, y, dim) : raw::softmax_backward(g, y, dim);
          const Tensor gg = on_gpu(g), yy = on_gpu(y);
          const Tensor actual =
              log ? raw::log_softmax_backward(gg, yy, dim) : raw::softmax_backward(gg, yy, dim);
          EXPECT_TRUE(actual.device().is_cuda());
          EXPECT_EQ(actual.dtype(), expected.dtype());
          EXPECT_TRUE(test::all_close(actual, expected, t * 4, t * 4))
              << (log ? "log_softmax_backward" : "softmax_backward") << tag;
        }
      }
    }
  }
}

TEST(CudaSoftmax, RowsOfTransposedInputsAndManyRows) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = sample({64, 1000}, kFloat32, 15);
  const View transposed = [](const Tensor& t) { return raw::transpose(t, 0, 1); };
  for (int64_t dim : {0, 1}) {
    expect_matches(
        "softmax of a transposed input dim " + std::to_string(dim), x,
        [&](const Tensor& a) { return raw::softmax(a, dim); }, 1e-5, 1e-7, transposed);
    expect_matches(
        "log_softmax of a transposed input dim " + std::to_string(dim), x,
        [&](const Tensor& a) { return raw::log_softmax(a, dim); }, 1e-5, 1e-5, transposed);
  }
  const Tensor many = sample({100000, 3}, kBFloat16, 16);
  expect_matches(
      "softmax of many short rows", many, [](const Tensor& a) { return raw::softmax(a, -1); }, 4e-2,
      4e-2);
  const Tensor scalar = raw::full({}, 2.5, kFloat32);
  expect_matches(
      "softmax of a 0-dim tensor", scalar, [](const Tensor& a) { return raw::softmax(a, 0); }, 0,
      0);
}

TEST(CudaSoftmax, NegativeInfinityEntriesAndMixedGradDtype) {
  CXR_SKIP_WITHOUT_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v = {-inf, 0.0, 1.0, -inf, -inf, 2.0, -inf, -inf, -inf, -inf, 3.0, 3.0};
  for (DType dt : kFloatDtypes) {
    const Tensor x = raw::to(raw::from_vector(v, {3, 4}), dt);
    const double t = tol(dt);
    expect_matches(
        std::string("softmax with -inf ") + dname(dt), x,
        [](const Tensor& a) { return raw::softmax(a, 1); }, t, t);
    expect_matches(
        std::string("log_softmax with -inf ") + dname(dt), x,
        [](const Tensor& a) { return raw::log_softmax(a, 1); }, t, t);
  }
  // grad float32, output bfloat16: both computed in float32, the result in bfloat16.
  const Tensor y = raw::softmax(sample({5, 9}, kBFloat16, 17), 1);
  const Tensor g = sample({5, 9}, kFloat32, 18);
  const Tensor expected = raw::softmax_backward(g, y, 1);
  const Tensor actual = raw::softmax_backward(on_gpu(g), on_gpu(y), 1);
  EXPECT_EQ(actual.dtype(), kBFloat16);
  EXPECT_TRUE(test::all_close(actual, expected, 4e-2, 4e-2));
}

// ---------------------------------------------------------------------------------------------
// Empty tensors and errors

TEST(CudaReduce, EmptyInputsAsOnTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = raw::zeros({0, 3}, kFloat32);
  const std::vector<std::pair<std::string, Op>> ops = {
      {"sum dim 0", [](const Tensor& a) { return raw::sum(a, {0}); }},
      {"sum dim 1", [](const Tensor& a) { return raw::sum(a, {1}); }},
      {"mean dim 0", [](const Tensor& a) { return raw::mean(a, {0}); }},
      {"var dim 0", [](const Tensor& a) { return raw::var(a, {0}); }},
      {"std dim 0", [](const Tensor& a) { return raw::std(a, {0}, 0); }},
      {"logsumexp dim 0", [](const Tensor& a) { return raw::logsumexp(a, {0}); }},
      {"norm 2 dim 0", [](const Tensor& a) { return raw::norm(a, 2.0, {0}); }},
      {"norm -1 dim 0", [](const Tensor& a) { return raw::norm(a, -1.0, {0}); }},
      {"norm inf dim 0",
       [](const Tensor& a) { return raw::norm(a, std::numeric_limits<double>::infinity(), {0}); }},
      {"amax dim 1", [](const Tensor& a) { return raw::amax(a, {1}); }},
      {"cumsum dim 0", [](const Tensor& a) { return raw::cumsum(a, 0); }},
      {"softmax dim 0", [](const Tensor& a) { return raw::softmax(a, 0); }},
      {"sum_to [3]", [](const Tensor& a) { return raw::sum_to(a, {3}); }},
  };
  for (const auto& [what, op] : ops) expect_matches(what + " of an empty tensor", x, op, 0, 0);
}

TEST(CudaReduce, ErrorsAsOnTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = on_gpu(sample({2, 3}, kFloat32, 19));
  const Tensor xi = on_gpu(sample({2, 3}, kInt32, 20));
  EXPECT_ERROR_CONTAINS(raw::sum(x, {2}), "sum: dim 2 out of range for a tensor with 2 dims");
  EXPECT_ERROR_CONTAINS(raw::amax(x, {-3}), "amax: dim -3 out of range");
  EXPECT_ERROR_CONTAINS(raw::sum(x, {1, -1}), "sum: a dim appears more than once");
  EXPECT_ERROR_CONTAINS(raw::mean(xi), "mean: expected a floating tensor");
  EXPECT_ERROR_CONTAINS(raw::var(x, {0}, -1), "var: correction must be >= 0");
  EXPECT_ERROR_CONTAINS(raw::logsumexp(xi, {0}), "logsumexp: expected a floating tensor");
  EXPECT_ERROR_CONTAINS(raw::norm(x, std::nan("")), "norm: p must not be NaN");
  EXPECT_ERROR_CONTAINS(raw::cumsum(x, 2), "cumsum: dim 2 out of range");
  EXPECT_ERROR_CONTAINS(raw::softmax(x, 2), "softmax: dim 2 out of range");
  EXPECT_ERROR_CONTAINS(raw::softmax(xi, 0), "softmax: expected a floating tensor");
  EXPECT_ERROR_CONTAINS(raw::sum_to(x, {4, 2, 3, 1}), "sum_to: cannot sum");
  EXPECT_ERROR_CONTAINS(raw::sum_to(x, {2, 2}), "is not a broadcast of shape");
  const Tensor empty = raw::zeros({2, 0}, kFloat32, gpu());
  EXPECT_ERROR_CONTAINS(raw::amax(empty, {1}), "amax: cannot reduce over an empty dim");
  EXPECT_ERROR_CONTAINS(raw::argmin(empty, 1), "argmin: cannot reduce over an empty dim");
  EXPECT_ERROR_CONTAINS(raw::norm(empty, -std::numeric_limits<double>::infinity(), {1}),
                        "amin: cannot reduce over an empty dim");
  // Mixed devices name both tensors' devices.
  const Tensor y = raw::softmax(x, 1);
  EXPECT_ERROR_CONTAINS(raw::softmax_backward(raw::to(y, Device::cpu()), y, 1),
                        "softmax_backward: expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(raw::log_softmax_backward(y, raw::to(y, Device::cpu()), 1), "cuda:0");
  EXPECT_ERROR_CONTAINS(raw::softmax_backward(y, raw::zeros({2, 4}, kFloat32, gpu()), 1),
                        "must have the same shape");
}
