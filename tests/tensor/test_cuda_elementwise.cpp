// The CUDA elementwise ops (tensor/cuda/elementwise*.cu) against the CPU ops on the same inputs:
// every UnaryOp (forward, backward, in place), BinaryOp and CompareOp (tensor-tensor with
// broadcasting, both scalar forms, in place), the parameterised ops and lerp, in every dtype, on
// contiguous, transposed and step-sliced operands, empty and large tensors; both kernels of
// tensor/cuda/loops.cuh (the contiguous one with sizes around its 4-element step and views at odd
// offsets, the strided one with 8 dims, and both beyond one grid with 32- and 64-bit index math);
// dtype copies; and the errors (refusals with the CPU's message, mixed devices). Both backends run
// the functors of tensor/math.h in the same compute type without contraction (--fmad=false,
// -ffp-contract=off), so results are compared bit for bit (NaN payloads aside) wherever the functor
// is pure IEEE arithmetic or tensor/math.h's own float32 polynomials; functors that call the C
// library (sin, cos and pow in float32, the transcendental float64 functions) use CUDA's own
// implementations on the device and are compared within a tolerance. Every test skips without a
// GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

const Device kCuda = Device::cuda(0);

using test::kAllDtypes;
using test::kFloatDtypes;

const UnaryOp kUnaryOps[] = {
    UnaryOp::Neg,  UnaryOp::Abs,  UnaryOp::Sign,     UnaryOp::Square,    UnaryOp::Reciprocal,
    UnaryOp::Exp,  UnaryOp::Log,  UnaryOp::Log1p,    UnaryOp::Sqrt,      UnaryOp::Rsqrt,
    UnaryOp::Sin,  UnaryOp::Cos,  UnaryOp::Tanh,     UnaryOp::Sigmoid,   UnaryOp::Relu,
    UnaryOp::Silu, UnaryOp::Gelu, UnaryOp::GeluTanh, UnaryOp::QuickGelu, UnaryOp::Erf};
const BinaryOp kBinaryOps[] = {BinaryOp::Add, BinaryOp::Sub,     BinaryOp::Mul,    BinaryOp::Div,
                               BinaryOp::Pow, BinaryOp::Maximum, BinaryOp::Minimum};
const CompareOp kCompareOps[] = {CompareOp::Eq, CompareOp::Ne, CompareOp::Lt,
                                 CompareOp::Le, CompareOp::Gt, CompareOp::Ge};
const char* compare_name(CompareOp op) {
  const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  return names[int(op)];
}

// Deterministic inputs: values in [lo, hi] (rounded for integer dtypes; bool alternates), and for
// floating dtypes with `specials` the first elements are 0, -0, inf, -inf, NaN and a value near
// the float32 underflow.
Tensor values(const Shape& shape, DType dtype, uint32_t seed, double lo, double hi,
              bool specials = true) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  uint64_t state = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (int64_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const double u = double(state >> 11) / 9007199254740992.0;  // [0, 1)
    double x = lo + (hi - lo) * u;
    if (dtype == kBool)
      x = (state >> 40) % 3 == 0 ? 1.0 : 0.0;
    else if (!is_floating(dtype))
      x = std::round(x);
    v[size_t(i)] = x;
  }
  if (specials && is_floating(dtype)) {
    const double inf = std::numeric_limits<double>::infinity();
    const double special[] = {0.0, -0.0, inf, -inf, std::nan(""), 1e-39};
    for (size_t i = 0; i < 6 && i < v.size(); ++i) v[i] = special[i];
  }
  return raw::to(raw::from_vector(v, shape, kFloat64), dtype);
}

// Integer-valued ranges per dtype that keep products and small powers in range (no signed
// overflow, which C++ leaves undefined) and uint8 nonnegative.
double lo_of(DType d, double float_lo) {
  return d == kUInt8 || d == kBool ? 0.0 : (is_floating(d) ? float_lo : -4.0);
}
double hi_of(DType d, double float_hi) {
  return d == kUInt8 ? 6.0 : (is_floating(d) ? float_hi : 4.0);
}

std::vector<Tensor> to_cuda(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(test::to_cuda(t));
  return out;
}

// The CUDA result equals the CPU result: same dtype and shape, and per element the same value
// (with the sign of zero; NaN matches NaN) or, with rel > 0, |got - want| <= rel * max(1, |want|).
::testing::AssertionResult matches(const Tensor& got, const Tensor& want, double rel) {
  if (!got.device().is_cuda())
    return ::testing::AssertionFailure() << "the result is on " << got.device().str();
  if (got.dtype() != want.dtype() || got.sizes() != want.sizes())
    return ::testing::AssertionFailure()
           << "CUDA gave " << describe(got) << ", CPU " << describe(want);
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) {
    const double a = g[i], b = w[i];
    const bool same = (std::isnan(a) && std::isnan(b)) ||
                      (a == b && std::signbit(a) == std::signbit(b)) ||
                      (rel > 0 && std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b)));
    if (!same)
      return ::testing::AssertionFailure()
             << "flat index " << i << ": CUDA " << a << ", CPU " << b
             << (rel > 0 ? " (tolerance " + std::to_string(rel) + ")" : " (exact)") << " of "
             << g.size() << " elements, " << describe(want);
  }
  return ::testing::AssertionSuccess();
}

// Runs `op` on `inputs` (CPU tensors) and on their CUDA copies: both throw the same cxr::Error
// message (up to the device in tensor descriptions) or the results match. `op` builds its views
// from the tensors it gets, so both sides see the same strides; in-place cases return the base.
using Op = std::function<Tensor(const std::vector<Tensor>&)>;
void expect_same(const std::string& what, const std::vector<Tensor>& inputs, const Op& op,
                 double rel = 0.0) {
  SCOPED_TRACE(what);
  std::vector<Tensor> cpu_inputs;
  for (const Tensor& t : inputs) cpu_inputs.push_back(raw::clone(t));  // in-place ops write them
  const std::vector<Tensor> cuda_inputs = to_cuda(inputs);
  Tensor want, got;
  const std::string cpu_error = test::error_message([&] { want = op(cpu_inputs); });
  const std::string cuda_error = test::error_message([&] { got = op(cuda_inputs); });
  if (!cpu_error.empty() || !cuda_error.empty()) {
    EXPECT_EQ(test::without_cuda_suffix(cuda_error), cpu_error) << "the CPU and CUDA errors differ";
    return;
  }
  EXPECT_TRUE(matches(got, want, rel));
}

// Operand layouts: the base itself, a transposed view and a view sliced with steps (2-D bases).
struct Layout {
  const char* name;
  Shape base;  // the shape of the tensor the view is taken from
  std::function<Tensor(const Tensor&)> view;
};
const Layout kLayouts[] = {
    {"contiguous", {7, 13}, [](const Tensor& t) { return t; }},
    {"transposed", {13, 7}, [](const Tensor& t) { return raw::transpose(t, 0, 1); }},
    {"sliced",
     {15, 40},
     [](const Tensor& t) { return raw::slice(raw::slice(t, 0, 1, 15, 2), 1, 2, 40, 3); }},
};

// Exactness per functor and dtype (see the top of the file): 0 means bit for bit.
double unary_tolerance(UnaryOp op, DType d) {
  const bool libm_f32 = op == UnaryOp::Sin || op == UnaryOp::Cos;
  const bool ieee_only = op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign ||
                         op == UnaryOp::Square || op == UnaryOp::Reciprocal ||
                         op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Relu;
  if (d == kFloat64) return ieee_only ? 0.0 : 1e-12;
  if (!libm_f32) return 0.0;
  return d == kFloat32 ? 1e-5 : (d == kFloat16 ? 2e-3 : 1e-2);
}
// Tolerance of a functor that calls the C library in every floating compute type (pow).
double libm_tolerance(DType d) {
  if (d == kFloat64) return 1e-12;
  if (d == kFloat32) return 1e-5;
  if (d == kFloat16) return 2e-3;
  if (d == kBFloat16) return 1e-2;
  return 0.0;
}

std::string label(const std::string& op, DType d, const char* layout) {
  return op + " " + std::string(dtype_name(d)) + " " + layout;
}

// For every unary op, dtype of `dtypes` and layout: expect_same named "<op><suffix> <dtype>
// <layout>" of apply(op, layout, inputs) on inputs(dtype, layout), within unary_tolerance.
template <typename Dtypes>
void expect_unary_cases(
    const std::string& suffix, const Dtypes& dtypes,
    const std::function<std::vector<Tensor>(DType, const Layout&)>& inputs,
    const std::function<Tensor(UnaryOp, const Layout&, const std::vector<Tensor>&)>& apply) {
  for (UnaryOp op : kUnaryOps)
    for (DType d : dtypes)
      for (const Layout& l : kLayouts)
        expect_same(
            label(unary_op_name(op) + suffix, d, l.name), inputs(d, l),
            [&](const std::vector<Tensor>& in) { return apply(op, l, in); },
            unary_tolerance(op, d));
}

}  // namespace

TEST(CudaElementwise, UnaryMatchesCpuForEveryOpDtypeAndLayout) {
  CXR_SKIP_WITHOUT_CUDA();
  expect_unary_cases(
      "", kAllDtypes,
      [](DType d, const Layout& l) {
        return std::vector<Tensor>{
            values(l.base, d, 1, lo_of(d, -3.0), d == kUInt8 ? 255.0 : hi_of(d, 3.0))};
      },
      [](UnaryOp op, const Layout& l, const std::vector<Tensor>& in) {
        return raw::unary(op, l.view(in[0]));
      });
}

TEST(CudaElementwise, UnaryInPlaceOnViewsMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  // The whole base is compared: elements outside the view must stay as they were.
  expect_unary_cases(
      "_", kAllDtypes,
      [](DType d, const Layout& l) {
        return std::vector<Tensor>{values(l.base, d, 2, lo_of(d, -3.0), hi_of(d, 3.0))};
      },
      [](UnaryOp op, const Layout& l, const std::vector<Tensor>& in) {
        raw::unary_(op, l.view(in[0]));
        return in[0];
      });
}

TEST(CudaElementwise, UnaryBackwardMatchesCpuForEveryOp) {
  CXR_SKIP_WITHOUT_CUDA();
  expect_unary_cases(
      "_backward", kFloatDtypes,
      [](DType d, const Layout& l) {
        return std::vector<Tensor>{values(l.base, d, 4, -2.0, 2.0, false),
                                   values(l.base, d, 3, -3.0, 3.0)};
      },
      [](UnaryOp op, const Layout& l, const std::vector<Tensor>& in) {
        const Tensor xv = l.view(in[1]);
        return raw::unary_backward(op, l.view(in[0]), xv, raw::unary(op, xv));
      });
  // Integer inputs are refused with the CPU's message.
  expect_same("relu_backward int32", {values({4}, kInt32, 5, -3, 3), values({4}, kInt32, 6, -3, 3)},
              [](const std::vector<Tensor>& in) {
                return raw::unary_backward(UnaryOp::Relu, in[0], in[1], Tensor());
              });
}

TEST(CudaElementwise, BinaryMatchesCpuForEveryOpAndDtypePairWithBroadcasting) {
  CXR_SKIP_WITHOUT_CUDA();
  for (BinaryOp op : kBinaryOps)
    for (DType da : kAllDtypes)
      for (DType db : kAllDtypes) {
        // {3, 1, 5} with a transposed {5, 4} -> {4, 5} view: broadcasting on both sides.
        const Tensor a = values({3, 1, 5}, da, 7, lo_of(da, -3.0), hi_of(da, 3.0));
        const Tensor b = values({5, 4}, db, 8, lo_of(db, -3.0), hi_of(db, 3.0));
        const DType rt = promote_types(da, db);
        expect_same(
            std::string(binary_op_name(op)) + " " + std::string(dtype_name(da)) + " " +
                std::string(dtype_name(db)),
            {a, b},
            [&](const std::vector<Tensor>& in) {
              return raw::binary(op, in[0], raw::transpose(in[1], 0, 1));
            },
            op == BinaryOp::Pow ? libm_tolerance(rt) : 0.0);
      }
}

TEST(CudaElementwise, BinaryOnStridedOperandsMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (BinaryOp op : kBinaryOps)
    for (DType d : kAllDtypes)
      for (const Layout& l : kLayouts) {
        const Tensor a = values(l.base, d, 9, lo_of(d, -3.0), hi_of(d, 3.0));
        const Tensor b = values(l.base, d, 10, lo_of(d, -3.0), hi_of(d, 3.0));
        const DType rt = op == BinaryOp::Div && !is_floating(d) ? kFloat32 : d;
        expect_same(
            label(binary_op_name(op), d, l.name), {a, b},
            [&](const std::vector<Tensor>& in) {
              return raw::binary(op, l.view(in[0]), l.view(in[1]));
            },
            op == BinaryOp::Pow ? libm_tolerance(rt) : 0.0);
      }
}

TEST(CudaElementwise, BinaryWithScalarsMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  // Integral, fractional and negative scalars: integer tensors keep their dtype only with an
  // integral scalar (float32 otherwise), bool becomes int64.
  const double scalars[] = {2.0, -1.5, 0.5, 3.0};
  for (BinaryOp op : kBinaryOps)
    for (DType d : kAllDtypes)
      for (double s : scalars) {
        const Tensor x = values({15, 40}, d, 11, lo_of(d, -3.0), hi_of(d, 3.0));
        const auto view = kLayouts[2].view;
        const std::string what = std::string(binary_op_name(op)) + " " +
                                 std::string(dtype_name(d)) + " scalar " + std::to_string(s);
        // Pow of integers by integral scalars is exact; in a floating result type it calls pow.
        const DType rt = is_floating(d) ? d : (s == std::round(s) ? d : kFloat32);
        const double rel = op == BinaryOp::Pow ? libm_tolerance(rt) : 0.0;
        expect_same(
            what + " (tensor first)", {x},
            [&](const std::vector<Tensor>& in) { return raw::binary(op, view(in[0]), s); }, rel);
        expect_same(
            what + " (scalar first)", {x},
            [&](const std::vector<Tensor>& in) { return raw::binary(op, s, view(in[0])); }, rel);
      }
}

TEST(CudaElementwise, BinaryInPlaceMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (BinaryOp op : kBinaryOps)
    for (DType d : kAllDtypes) {
      const Tensor base = values({6, 10}, d, 12, lo_of(d, -3.0), hi_of(d, 3.0));
      const Tensor row = values({5}, d, 13, lo_of(d, -3.0), hi_of(d, 3.0));
      const Tensor other = values({5}, kFloat32, 14, 0.5, 2.0, false);
      const std::string name = std::string(binary_op_name(op)) + "_ " + std::string(dtype_name(d));
      const double rel = op == BinaryOp::Pow ? libm_tolerance(d) : 0.0;
      // a (a step-sliced view) op= a broadcast row.
      expect_same(
          name + " broadcast row", {base, row},
          [&](const std::vector<Tensor>& in) {
            raw::binary_(op, raw::slice(in[0], 1, 0, 10, 2), in[1]);
            return in[0];
          },
          rel);
      // b overlaps a without being a (the odd columns of the same storage, shifted): read before
      // written (detach_overlap).
      expect_same(
          name + " overlapping operand", {base},
          [&](const std::vector<Tensor>& in) {
            raw::binary_(op, raw::slice(in[0], 1, 0, 10, 2), raw::slice(in[0], 1, 1, 10, 2));
            return in[0];
          },
          rel);
      // a op= a.
      expect_same(
          name + " with itself", {base},
          [&](const std::vector<Tensor>& in) {
            const Tensor t = raw::transpose(in[0], 0, 1);
            raw::binary_(op, t, t);
            return in[0];
          },
          rel);
      // A float32 operand: integer tensors refuse a floating result with the CPU's message.
      expect_same(
          name + " float32 operand", {base, other},
          [&](const std::vector<Tensor>& in) {
            raw::binary_(op, raw::slice(in[0], 1, 0, 10, 2), in[1]);
            return in[0];
          },
          op == BinaryOp::Pow ? libm_tolerance(is_floating(d) ? d : kFloat32) : 0.0);
      for (double s : {2.0, 0.5}) {
        expect_same(
            name + " scalar " + std::to_string(s), {base},
            [&](const std::vector<Tensor>& in) {
              raw::binary_(op, raw::transpose(in[0], 0, 1), s);
              return in[0];
            },
            rel);
      }
    }
}

TEST(CudaElementwise, CompareMatchesCpuForEveryOpAndDtypePair) {
  CXR_SKIP_WITHOUT_CUDA();
  for (CompareOp op : kCompareOps)
    for (DType da : kAllDtypes) {
      for (DType db : kAllDtypes) {
        const Tensor a = values({3, 1, 5}, da, 15, lo_of(da, -2.0), hi_of(da, 2.0));
        const Tensor b = values({5, 4}, db, 16, lo_of(db, -2.0), hi_of(db, 2.0));
        expect_same(std::string(compare_name(op)) + " " + std::string(dtype_name(da)) + " " +
                        std::string(dtype_name(db)),
                    {a, b}, [&](const std::vector<Tensor>& in) {
                      return raw::compare(op, in[0], raw::transpose(in[1], 0, 1));
                    });
      }
      // Scalars: integral (compared in the tensor's dtype), fractional (float64 for integer
      // tensors), and values a bool tensor cannot hold.
      for (double s : {1.0, 0.0, 0.5, -1.0, 2.0}) {
        const Tensor x = values({15, 40}, da, 17, lo_of(da, -2.0), hi_of(da, 2.0));
        expect_same(std::string(compare_name(op)) + " " + std::string(dtype_name(da)) + " scalar " +
                        std::to_string(s),
                    {x}, [&](const std::vector<Tensor>& in) {
                      return raw::compare(op, kLayouts[2].view(in[0]), s);
                    });
      }
    }
}

TEST(CudaElementwise, ParameterisedOpsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType d : kAllDtypes)
    for (const Layout& l : kLayouts) {
      const Tensor x = values(l.base, d, 18, lo_of(d, -4.0), hi_of(d, 4.0));
      const Tensor g = values(l.base, d, 19, lo_of(d, -2.0), hi_of(d, 2.0), false);
      const double f64_libm = d == kFloat64 ? 1e-12 : 0.0;
      auto check = [&](const std::string& op, const Op& fn, double rel = 0.0) {
        expect_same(label(op, d, l.name), {x, g}, fn, rel);
      };
      auto v = [&](const std::vector<Tensor>& in, size_t i) { return l.view(in[i]); };
      for (double slope : {0.01, -0.5}) {
        check("leaky_relu", [&](const auto& in) { return raw::leaky_relu(v(in, 0), slope); });
        check("leaky_relu_backward",
              [&](const auto& in) { return raw::leaky_relu_backward(v(in, 1), v(in, 0), slope); });
      }
      for (auto [beta, threshold] : {std::pair{1.0, 20.0}, std::pair{2.0, 3.0}}) {
        check(
            "softplus", [&](const auto& in) { return raw::softplus(v(in, 0), beta, threshold); },
            f64_libm);
        check(
            "softplus_backward",
            [&](const auto& in) {
              return raw::softplus_backward(v(in, 1), v(in, 0), beta, threshold);
            },
            f64_libm);
      }
      const double inf = std::numeric_limits<double>::infinity();
      for (auto [lo, hi] : {std::pair{-1.5, 2.0}, std::pair{-inf, 0.5}, std::pair{1.0, inf},
                            std::pair{-1e30, 1e30}, std::pair{std::nan(""), 1.0}}) {
        check("clamp", [&](const auto& in) { return raw::clamp(v(in, 0), lo, hi); });
        check("clamp_", [&](const auto& in) {
          raw::clamp_(v(in, 0), lo, hi);
          return in[0];
        });
        check("clamp_backward",
              [&](const auto& in) { return raw::clamp_backward(v(in, 1), v(in, 0), lo, hi); });
      }
      // The exponents done by multiplication, sqrt or division are exact everywhere; the others
      // call pow. Integer tensors take integral exponents (fractional ones give float32).
      for (double e : {2.0, 1.0, 0.5, 3.0, -1.0, -2.0, 0.0, 1.7, -0.3}) {
        const bool exact =
            e == 2.0 || e == 1.0 || e == 0.5 || e == 3.0 || e == -1.0 || e == -2.0 || e == 0.0;
        const DType rt = is_floating(d) || e != std::round(e) ? (is_floating(d) ? d : kFloat32) : d;
        check(
            "pow " + std::to_string(e), [&](const auto& in) { return raw::pow(v(in, 0), e); },
            exact ? 0.0 : libm_tolerance(rt));
      }
    }
}

TEST(CudaElementwise, LerpMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType d : kAllDtypes) {
    const Tensor a = values({3, 1, 5}, d, 20, -3.0, 3.0);
    const Tensor b = values({5, 4}, d, 21, -3.0, 3.0);
    const Tensor w = values({4, 1}, d, 22, -0.5, 1.5, false);
    for (double ws : {0.0, 0.25, 0.5, 1.0, -0.7}) {
      expect_same("lerp scalar weight " + std::string(dtype_name(d)) + " " + std::to_string(ws),
                  {a, b}, [&](const std::vector<Tensor>& in) {
                    return raw::lerp(in[0], raw::transpose(in[1], 0, 1), ws);
                  });
    }
    expect_same("lerp tensor weight " + std::string(dtype_name(d)), {a, b, w},
                [&](const std::vector<Tensor>& in) {
                  return raw::lerp(in[0], raw::transpose(in[1], 0, 1), in[2]);
                });
  }
}

TEST(CudaElementwise, EmptyTensors) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : {Shape{0, 5}, Shape{3, 0}, Shape{0}}) {
    const Tensor x = values(shape, kFloat32, 23, -1.0, 1.0);
    const Tensor y = values(shape, kFloat32, 24, -1.0, 1.0);
    const std::string s = shape_str(shape);
    expect_same("exp " + s, {x}, [](const auto& in) { return raw::unary(UnaryOp::Exp, in[0]); });
    expect_same("neg_ " + s, {x}, [](const auto& in) {
      raw::unary_(UnaryOp::Neg, in[0]);
      return in[0];
    });
    expect_same("tanh_backward " + s, {x, y}, [](const auto& in) {
      return raw::unary_backward(UnaryOp::Tanh, in[1], in[0], Tensor());
    });
    expect_same("add " + s, {x, y}, [](const auto& in) { return raw::add(in[0], in[1]); });
    expect_same("mul scalar " + s, {x}, [](const auto& in) { return raw::mul(in[0], 2.0); });
    expect_same("lt " + s, {x, y},
                [](const auto& in) { return raw::compare(CompareOp::Lt, in[0], in[1]); });
    expect_same("clamp " + s, {x}, [](const auto& in) { return raw::clamp(in[0], -0.5, 0.5); });
    expect_same("lerp " + s, {x, y}, [](const auto& in) { return raw::lerp(in[0], in[1], 0.3); });
  }
  // Broadcasting against an empty dim.
  expect_same("add {0, 5} + {1, 5}",
              {values({0, 5}, kFloat32, 25, -1, 1), values({1, 5}, kFloat32, 26, -1, 1)},
              [](const auto& in) { return raw::add(in[0], in[1]); });
}

TEST(CudaElementwise, LargeTensorsMatchCpuBitForBit) {
  CXR_SKIP_WITHOUT_CUDA();
  // About 3e6 elements, not a multiple of the block size, through a transposed view and a
  // broadcast operand.
  const Tensor x = values({3, 1001, 999}, kFloat32, 27, -4.0, 4.0);
  const Tensor col = values({1001, 1}, kFloat32, 28, -1.0, 1.0);
  expect_same("gelu large transposed", {x}, [](const auto& in) {
    return raw::unary(UnaryOp::Gelu, raw::transpose(in[0], 1, 2));
  });
  expect_same("add large broadcast", {x, col},
              [](const auto& in) { return raw::add(in[0], in[1]); });
  expect_same("gt large broadcast", {x, col},
              [](const auto& in) { return raw::compare(CompareOp::Gt, in[0], in[1]); });
  expect_same("sigmoid_backward large", {x, x}, [](const auto& in) {
    return raw::unary_backward(UnaryOp::Sigmoid, in[0], in[1], Tensor());
  });
}

// The contiguous kernel (loops.cuh) takes kUnroll = 4 elements per thread: sizes around
// multiples of 4 and of the block size, operands that start one or three elements into their
// buffers (views at an odd offset), in place, a dtype conversion and a scalar form.
TEST(CudaElementwise, ContiguousPathTailsAndOffsetViewsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (int64_t n : {1, 2, 3, 4, 5, 255, 256, 257, 1023, 1024, 1025, 4097, 262145})
    for (DType d : {kFloat32, kFloat16, kFloat64, kUInt8}) {
      const Tensor a = values({n + 3}, d, 51, lo_of(d, -3.0), hi_of(d, 3.0));
      const Tensor b = values({n + 3}, d, 52, lo_of(d, -3.0), hi_of(d, 3.0));
      const std::string what = "n " + std::to_string(n) + " " + std::string(dtype_name(d));
      // at(t, k): the n elements of t from offset k (contiguous views with an offset).
      auto at = [n](const Tensor& t, int64_t k) { return raw::slice(t, 0, k, k + n); };
      expect_same("add offsets 1, 3 " + what, {a, b},
                  [&](const auto& in) { return raw::add(at(in[0], 1), at(in[1], 3)); });
      expect_same("mul aligned " + what, {a, b},
                  [&](const auto& in) { return raw::mul(at(in[0], 0), at(in[1], 0)); });
      expect_same("add scalar offset 1 " + what, {a},
                  [&](const auto& in) { return raw::add(at(in[0], 1), 2.0); });
      expect_same("add_ in place offset 1 " + what, {a, b}, [&](const auto& in) {
        raw::binary_(BinaryOp::Add, at(in[0], 1), at(in[1], 1));
        return in[0];
      });
      expect_same("to float32 offset 3 " + what, {a},
                  [&](const auto& in) { return raw::to(at(in[0], 3), kFloat32); });
      expect_same("clone offset 1 " + what, {a},
                  [&](const auto& in) { return raw::clone(at(in[0], 1)); });
      if (is_floating(d))
        expect_same(
            "exp offset 1 " + what, {a},
            [&](const auto& in) { return raw::unary(UnaryOp::Exp, at(in[0], 1)); },
            unary_tolerance(UnaryOp::Exp, d));
    }
}

// The strided kernel's per-dim index split with up to 8 non-mergeable dims, odd sizes,
// broadcast operands and step slices.
TEST(CudaElementwise, StridedPathManyDimsMatchesCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = values({2, 3, 2, 5, 2, 3, 2, 7}, kFloat32, 53, -2.0, 2.0);
  const Tensor y = values({7, 2, 3, 2, 5, 2, 3, 2}, kFloat32, 54, -2.0, 2.0);
  // Reversing the dims leaves no two adjacent dims mergeable: 8 dims in the kernel.
  const std::vector<int64_t> rev = {7, 6, 5, 4, 3, 2, 1, 0};
  expect_same("add of an 8-dim permuted view", {x, y},
              [&](const auto& in) { return raw::add(raw::permute(in[0], rev), in[1]); });
  expect_same("copy of an 8-dim permuted view", {x},
              [&](const auto& in) { return raw::contiguous(raw::permute(in[0], rev)); });
  const Tensor img = values({3, 37, 19, 23}, kFloat16, 55, -2.0, 2.0);
  const Tensor bias = values({37, 1, 1}, kFloat16, 56, -1.0, 1.0);
  expect_same("add [3, 37, 19, 23] + [37, 1, 1]", {img, bias},
              [](const auto& in) { return raw::add(in[0], in[1]); });
  expect_same("mul of step slices", {img, img}, [](const auto& in) {
    return raw::mul(raw::slice(in[0], 3, 1, 23, 3), raw::slice(in[1], 3, 0, 22, 3));
  });
}

// Sizes beyond one grid: the grid-stride loops of the contiguous kernel (more than 65535 * 8
// blocks x 256 threads x 4 elements) and of the strided kernel with 32-bit (more than 65535 * 8 x
// 256 elements) and 64-bit index math (2^31 elements and more), on uint8 data (about 2 GiB on the
// device at most). Inputs are filled through a hash of the index so that a misplaced element shows.
TEST(CudaElementwise, SizesBeyondOneGridMatchCpuBitForBit) {
  CXR_SKIP_WITHOUT_CUDA();
  auto hashed = [](const Shape& shape) {
    Tensor t = raw::empty(shape, kUInt8);
    uint8_t* p = t.data<uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = uint8_t((uint64_t(i) * 2654435761ull) >> 13);
    return t;
  };
  // One memcmp over the whole buffers (bitwise_equal compares element by element: too slow for
  // 2^31 elements), then the first differing index.
  auto same_bytes = [](const Tensor& got, const Tensor& want) -> ::testing::AssertionResult {
    if (got.sizes() != want.sizes()) return ::testing::AssertionFailure() << "shapes differ";
    const Tensor g = raw::contiguous(raw::to(got, Device::cpu()));
    const Tensor w = raw::contiguous(want);
    const auto* pg = static_cast<const uint8_t*>(g.data_ptr());
    const auto* pw = static_cast<const uint8_t*>(w.data_ptr());
    if (std::memcmp(pg, pw, size_t(w.numel())) == 0) return ::testing::AssertionSuccess();
    int64_t i = 0;
    while (pg[i] == pw[i]) ++i;
    return ::testing::AssertionFailure()
           << "first difference at flat index " << i << " of " << w.numel() << ": CUDA "
           << int(pg[i]) << ", CPU " << int(pw[i]);
  };
  {
    const Tensor a = hashed({536862720 + 1001});
    const Tensor ga = raw::to(a, kCuda);
    EXPECT_TRUE(same_bytes(raw::add(ga, ga), raw::add(a, a))) << "contiguous add";
  }
  {
    const Tensor a = hashed({50000001, 3});
    const Tensor ga = raw::to(a, kCuda);
    EXPECT_TRUE(same_bytes(raw::contiguous(raw::transpose(ga, 0, 1)),
                           raw::contiguous(raw::transpose(a, 0, 1))))
        << "strided copy, 32-bit index math";
  }
  {
    const Tensor a = hashed({(int64_t(1) << 30) + 7, 2});
    const Tensor ga = raw::to(a, kCuda);
    EXPECT_TRUE(same_bytes(raw::contiguous(raw::transpose(ga, 0, 1)),
                           raw::contiguous(raw::transpose(a, 0, 1))))
        << "strided copy, 64-bit index math";
  }
}

TEST(CudaElementwise, InPlaceIntoExpandedViewIsRefusedAsOnCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor row = values({1, 5}, kFloat32, 29, -1, 1);
  expect_same("neg_ expanded", {row}, [](const auto& in) {
    raw::unary_(UnaryOp::Neg, raw::expand(in[0], {3, 5}));
    return in[0];
  });
  expect_same("add_ expanded", {row}, [](const auto& in) {
    raw::binary_(BinaryOp::Add, raw::expand(in[0], {3, 5}), 1.0);
    return in[0];
  });
  expect_same("clamp_ expanded", {row}, [](const auto& in) {
    raw::clamp_(raw::expand(in[0], {3, 5}), 0.0, 1.0);
    return in[0];
  });
  // And the CUDA message does say so.
  EXPECT_ERROR_CONTAINS(raw::unary_(UnaryOp::Neg, raw::expand(raw::to(row, kCuda), {3, 5})),
                        "is expanded");
}

TEST(CudaElementwise, IntegerRefusalsNameTheOpAsOnCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor i = raw::to(values({2, 3}, kInt32, 30, -3, 3), kCuda);
  const Tensor b = raw::to(values({2, 3}, kBool, 31, 0, 1), kCuda);
  EXPECT_ERROR_CONTAINS(raw::unary(UnaryOp::Exp, i), "exp: expected a floating tensor");
  EXPECT_ERROR_CONTAINS(raw::unary(UnaryOp::Neg, b), "neg: not defined for bool tensors");
  EXPECT_ERROR_CONTAINS(raw::binary(BinaryOp::Sub, b, b), "sub: not defined for bool tensors");
  EXPECT_ERROR_CONTAINS(raw::binary_(BinaryOp::Mul, i, 0.5), "cannot be stored in place");
  EXPECT_ERROR_CONTAINS(raw::leaky_relu(i, 0.1), "leaky_relu: expected a floating tensor");
  EXPECT_ERROR_CONTAINS(raw::pow(i, -1.0), "integers to negative integer powers");
  EXPECT_ERROR_CONTAINS(raw::clamp(b, 0, 1), "clamp: not defined for bool tensors");
}

TEST(CudaElementwise, MixedDevicesThrowNamingBoth) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor c = values({2, 3}, kFloat32, 32, -1, 1);
  const Tensor g = raw::to(c, kCuda);
  const std::string cuda = kCuda.str();
  for (const std::function<void()>& f : std::vector<std::function<void()>>{
           [&] { raw::add(c, g); }, [&] { raw::binary_(BinaryOp::Mul, g, c); },
           [&] { raw::compare(CompareOp::Lt, g, c); },
           [&] { raw::unary_backward(UnaryOp::Tanh, c, g, Tensor()); },
           [&] { raw::leaky_relu_backward(g, c, 0.1); }, [&] { raw::lerp(g, c, 0.5); },
           [&] { raw::lerp(g, g, c); }}) {
    const std::string message = test::error_message(f);
    EXPECT_NE(message.find("cpu"), std::string::npos) << message;
    EXPECT_NE(message.find(cuda), std::string::npos) << message;
  }
}

TEST(CudaElementwise, CopyConvertsEveryDtypePairAsOnCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType src : kAllDtypes)
    for (DType dst : kAllDtypes) {
      // Float -> uint8 of a negative value is undefined in C++: those sources stay nonnegative.
      const bool unsigned_target = dst == kUInt8 && is_floating(src);
      const Tensor x =
          values({15, 40}, src, 33, unsigned_target ? 0.0 : -100.0, 100.0, !is_integral(dst));
      const Tensor base = values({8, 7}, dst, 34, 0.0, 1.0, false);
      const std::string what = std::string(dtype_name(src)) + " -> " + std::string(dtype_name(dst));
      expect_same("to " + what, {x}, [&](const std::vector<Tensor>& in) {
        return raw::to(kLayouts[2].view(in[0]), dst);
      });
      // Strided source into a transposed destination view, and a broadcast source row.
      expect_same("copy_ " + what, {x, base}, [&](const std::vector<Tensor>& in) {
        raw::copy_(raw::transpose(in[1], 0, 1), raw::slice(kLayouts[2].view(in[0]), 1, 0, 8));
        return in[1];
      });
      expect_same("copy_ broadcast " + what, {x, base}, [&](const std::vector<Tensor>& in) {
        raw::copy_(raw::slice(in[1], 1, 0, 7, 3), raw::slice(raw::slice(in[0], 0, 0, 1), 1, 0, 3));
        return in[1];
      });
    }
}
