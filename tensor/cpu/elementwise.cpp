// Elementwise ops: dtype promotion and validation for every device, then, on the CPU, one strided
// loop per op (cpu::for_each_row) whose body is a functor of tensor/math.h. Contiguous float32 rows
// (and rows where one operand is a broadcast scalar) go through small functions compiled for
// AVX-512, AVX2 and the baseline (GCC target_clones, picked at load time), so the same scalar math
// is vectorised for the machine it runs on; every other case runs the generic template loop. CUDA
// tensors take the same validation and then the kernels of tensor/cuda/elementwise*.cu (same
// functors), which read a scalar operand from its 0-dim CPU tensor.
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/cpu/loops.h"
#include "tensor/creation.h"
#include "tensor/cuda/elementwise.h"
#include "tensor/elementwise.h"
#include "tensor/math.h"

#define CXR_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace cxr {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
      return "neg";
    case UnaryOp::Abs:
      return "abs";
    case UnaryOp::Sign:
      return "sign";
    case UnaryOp::Square:
      return "square";
    case UnaryOp::Reciprocal:
      return "reciprocal";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Log:
      return "log";
    case UnaryOp::Log1p:
      return "log1p";
    case UnaryOp::Sqrt:
      return "sqrt";
    case UnaryOp::Rsqrt:
      return "rsqrt";
    case UnaryOp::Sin:
      return "sin";
    case UnaryOp::Cos:
      return "cos";
    case UnaryOp::Tanh:
      return "tanh";
    case UnaryOp::Sigmoid:
      return "sigmoid";
    case UnaryOp::Relu:
      return "relu";
    case UnaryOp::Silu:
      return "silu";
    case UnaryOp::Gelu:
      return "gelu";
    case UnaryOp::GeluTanh:
      return "gelu_tanh";
    case UnaryOp::QuickGelu:
      return "quick_gelu";
    case UnaryOp::Erf:
      return "erf";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    case BinaryOp::Div:
      return "div";
    case BinaryOp::Pow:
      return "pow";
    case BinaryOp::Maximum:
      return "maximum";
    case BinaryOp::Minimum:
      return "minimum";
  }
  return "binary";
}

namespace {

const char* compare_op_name(CompareOp op) {
  switch (op) {
    case CompareOp::Eq:
      return "eq";
    case CompareOp::Ne:
      return "ne";
    case CompareOp::Lt:
      return "lt";
    case CompareOp::Le:
      return "le";
    case CompareOp::Gt:
      return "gt";
    case CompareOp::Ge:
      return "ge";
  }
  return "compare";
}

// Ops that are defined on integers too (the rest need a floating dtype).
bool unary_allows_integers(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Square ||
         op == UnaryOp::Relu;
}

// The one device of `ts` (each must be defined); throws naming the op and the devices otherwise.
Device device_of(const char* op, std::initializer_list<Tensor> ts) {
  for (const Tensor& t : ts) CXR_CHECK(t.defined(), op, ": undefined tensor");
  return common_device(op, ts);
}

void check_floating(const Tensor& t, const char* op) {
  CXR_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor (float32, float64, float16, ",
            "bfloat16), got ", describe(t));
}

// An in-place op writes every element of `t` once; an expanded (stride 0) dim would make several
// elements share one memory location.
void check_writable(const Tensor& t, const char* op) {
  for (int64_t d = 0; d < t.dim(); ++d)
    CXR_CHECK(t.size(d) <= 1 || t.stride(d) != 0, op, ": in-place write into ", describe(t),
              ", whose dim ", d, " is expanded (several elements share one memory location)");
}

// `src` read while `dst` is written in place: a copy unless it is exactly dst or shares no memory.
Tensor detach_overlap(const Tensor& dst, const Tensor& src) {
  if (src.storage() != dst.storage()) return src;
  if (src.offset() == dst.offset() && src.sizes() == dst.sizes() && src.strides() == dst.strides())
    return src;
  return raw::clone(src);
}

bool is_integral_value(double v) {
  return std::isfinite(v) && v == std::nearbyint(v);
}

// ---------------------------------------------------------------------------------------------
// Vectorised contiguous float32 rows (compiled per instruction set).

// In-place rows (y == x) get their own one-pointer loop: with two pointers GCC's run-time overlap
// check sends exactly aliased rows to its scalar fallback.
template <typename F>
inline __attribute__((always_inline)) void row1(F f, const float* x, float* y, int64_t n) {
  if (x == y) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(y[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
  }
}
template <typename F>
inline __attribute__((always_inline)) void row_bwd(F f, const float* g, const float* x, float* y,
                                                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f.backward(g[i], x[i]);
}
// y = f(a, b) with a and b each either contiguous (stride 1) or one broadcast value (stride 0);
// y == a (in place) has its own loops, as in row1.
template <typename F>
inline __attribute__((always_inline)) void row2(F f, const float* a, int64_t sa, const float* b,
                                                int64_t sb, float* y, int64_t n) {
  if (sa == 1 && sb == 1) {
    if (y == a) {
      for (int64_t i = 0; i < n; ++i) y[i] = f(y[i], b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
    }
  } else if (sa == 1) {
    const float bv = b[0];
    if (y == a) {
      for (int64_t i = 0; i < n; ++i) y[i] = f(y[i], bv);
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], bv);
    }
  } else {
    const float av = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(av, b[i]);
  }
}

CXR_VECTOR_CLONES void unary_f32(UnaryOp op, const float* x, float* y, int64_t n) {
  using namespace math;
  switch (op) {
    case UnaryOp::Neg:
      return row1(NegFn{}, x, y, n);
    case UnaryOp::Abs:
      return row1(AbsFn{}, x, y, n);
    case UnaryOp::Sign:
      return row1(SignFn{}, x, y, n);
    case UnaryOp::Square:
      return row1(SquareFn{}, x, y, n);
    case UnaryOp::Reciprocal:
      return row1(ReciprocalFn{}, x, y, n);
    case UnaryOp::Exp:
      return row1(ExpFn{}, x, y, n);
    case UnaryOp::Log:
      return row1(LogFn{}, x, y, n);
    case UnaryOp::Log1p:
      return row1(Log1pFn{}, x, y, n);
    case UnaryOp::Sqrt:
      return row1(SqrtFn{}, x, y, n);
    case UnaryOp::Rsqrt:
      return row1(RsqrtFn{}, x, y, n);
    case UnaryOp::Sin:
      return row1(SinFn{}, x, y, n);
    case UnaryOp::Cos:
      return row1(CosFn{}, x, y, n);
    case UnaryOp::Tanh:
      return row1(TanhFn{}, x, y, n);
    case UnaryOp::Sigmoid:
      return row1(SigmoidFn{}, x, y, n);
    case UnaryOp::Relu:
      return row1(ReluFn{}, x, y, n);
    case UnaryOp::Silu:
      return row1(SiluFn{}, x, y, n);
    case UnaryOp::Gelu:
      return row1(GeluFn{}, x, y, n);
    case UnaryOp::GeluTanh:
      return row1(GeluTanhFn{}, x, y, n);
    case UnaryOp::QuickGelu:
      return row1(QuickGeluFn{}, x, y, n);
    case UnaryOp::Erf:
      return row1(ErfFn{}, x, y, n);
  }
}

CXR_VECTOR_CLONES void unary_backward_f32(UnaryOp op, const float* g, const float* x, float* y,
                                          int64_t n) {
  using namespace math;
  switch (op) {
    case UnaryOp::Neg:
      return row_bwd(NegFn{}, g, x, y, n);
    case UnaryOp::Abs:
      return row_bwd(AbsFn{}, g, x, y, n);
    case UnaryOp::Sign:
      return row_bwd(SignFn{}, g, x, y, n);
    case UnaryOp::Square:
      return row_bwd(SquareFn{}, g, x, y, n);
    case UnaryOp::Reciprocal:
      return row_bwd(ReciprocalFn{}, g, x, y, n);
    case UnaryOp::Exp:
      return row_bwd(ExpFn{}, g, x, y, n);
    case UnaryOp::Log:
      return row_bwd(LogFn{}, g, x, y, n);
    case UnaryOp::Log1p:
      return row_bwd(Log1pFn{}, g, x, y, n);
    case UnaryOp::Sqrt:
      return row_bwd(SqrtFn{}, g, x, y, n);
    case UnaryOp::Rsqrt:
      return row_bwd(RsqrtFn{}, g, x, y, n);
    case UnaryOp::Sin:
      return row_bwd(SinFn{}, g, x, y, n);
    case UnaryOp::Cos:
      return row_bwd(CosFn{}, g, x, y, n);
    case UnaryOp::Tanh:
      return row_bwd(TanhFn{}, g, x, y, n);
    case UnaryOp::Sigmoid:
      return row_bwd(SigmoidFn{}, g, x, y, n);
    case UnaryOp::Relu:
      return row_bwd(ReluFn{}, g, x, y, n);
    case UnaryOp::Silu:
      return row_bwd(SiluFn{}, g, x, y, n);
    case UnaryOp::Gelu:
      return row_bwd(GeluFn{}, g, x, y, n);
    case UnaryOp::GeluTanh:
      return row_bwd(GeluTanhFn{}, g, x, y, n);
    case UnaryOp::QuickGelu:
      return row_bwd(QuickGeluFn{}, g, x, y, n);
    case UnaryOp::Erf:
      return row_bwd(ErfFn{}, g, x, y, n);
  }
}

CXR_VECTOR_CLONES void binary_f32(BinaryOp op, const float* a, int64_t sa, const float* b,
                                  int64_t sb, float* y, int64_t n) {
  using namespace math;
  switch (op) {
    case BinaryOp::Add:
      return row2(AddFn{}, a, sa, b, sb, y, n);
    case BinaryOp::Sub:
      return row2(SubFn{}, a, sa, b, sb, y, n);
    case BinaryOp::Mul:
      return row2(MulFn{}, a, sa, b, sb, y, n);
    case BinaryOp::Div:
      return row2(DivFn{}, a, sa, b, sb, y, n);
    case BinaryOp::Pow:
      return row2(PowFn{}, a, sa, b, sb, y, n);
    case BinaryOp::Maximum:
      return row2(MaximumFn{}, a, sa, b, sb, y, n);
    case BinaryOp::Minimum:
      return row2(MinimumFn{}, a, sa, b, sb, y, n);
  }
}

CXR_VECTOR_CLONES void clamp_f32(const float* x, float* y, int64_t n, float lo, float hi) {
  row1(math::ClampFn<float>{lo, hi}, x, y, n);
}

// ---------------------------------------------------------------------------------------------
// The generic loop: out[i] = f(in_0[i], ..., in_k[i]) over broadcast strides, loading each input
// as its compute type and storing through convert<TO>. Rows where every operand is contiguous get
// their own loop so the compiler can vectorise it.

template <typename TO, typename TI, typename F, size_t... K>
void map_row(const F& f, const std::array<char*, sizeof...(K) + 1>& p,
             const std::array<int64_t, sizeof...(K) + 1>& s, int64_t n, std::index_sequence<K...>) {
  using CI = compute_t<TI>;
  TO* o = reinterpret_cast<TO*>(p[0]);
  const std::array<const TI*, sizeof...(K)> in = {reinterpret_cast<const TI*>(p[K + 1])...};
  if (s[0] == 1 && ((s[K + 1] == 1) && ...)) {
    for (int64_t i = 0; i < n; ++i) o[i] = convert<TO>(f(CI(in[K][i])...));
  } else {
    for (int64_t i = 0; i < n; ++i) o[i * s[0]] = convert<TO>(f(CI(in[K][i * s[K + 1]])...));
  }
}

// `ins` all have dtype TI and broadcast to out's shape; out has dtype TO.
template <typename TO, typename TI, size_t NIN, typename F>
void map_kernel(const Tensor& out, const std::array<const Tensor*, NIN>& ins, const F& f) {
  std::array<const Tensor*, NIN + 1> all;
  all[0] = &out;
  for (size_t k = 0; k < NIN; ++k) all[k + 1] = ins[k];
  cpu::for_each_row<int(NIN + 1)>(
      out.sizes(), all,
      [&f](const std::array<char*, NIN + 1>& p, const std::array<int64_t, NIN + 1>& s, int64_t n) {
        map_row<TO, TI>(f, p, s, n, std::make_index_sequence<NIN>{});
      });
}

template <typename T>
constexpr bool is_half_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// ---------------------------------------------------------------------------------------------
// Unary

void unary_into(UnaryOp op, const Tensor& out, const Tensor& x) {
  const char* name = unary_op_name(op);
  CXR_CHECK(x.dtype() != kBool, name, ": not defined for bool tensors, got ", describe(x));
  CXR_CHECK(is_floating(x.dtype()) || unary_allows_integers(op), name,
            ": expected a floating tensor (float32, float64, float16, bfloat16), got ",
            describe(x));
  if constexpr (kCudaBuilt)
    if (out.device().is_cuda()) return cuda::unary(op, out, x);
  if (x.dtype() == kFloat32) {
    cpu::for_each_row<2>(
        out.sizes(), {&out, &x},
        [op](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
          float* y = reinterpret_cast<float*>(p[0]);
          const float* v = reinterpret_cast<const float*>(p[1]);
          if (s[0] == 1 && s[1] == 1) return unary_f32(op, v, y, n);
          math::visit_unary(op, [&](auto fn) {
            for (int64_t i = 0; i < n; ++i) y[i * s[0]] = fn(v[i * s[1]]);
          });
        });
    return;
  }
  CXR_DISPATCH_ALL(x.dtype(), name, ([&]<typename T>() {
                     using C = compute_t<T>;
                     if constexpr (std::is_same_v<T, bool>) {
                       // refused above
                     } else if constexpr (!math::is_float_v<C>) {
                       switch (op) {  // the ops unary_allows_integers accepts
                         case UnaryOp::Neg:
                           return map_kernel<T, T, 1>(out, {&x}, math::NegFn{});
                         case UnaryOp::Abs:
                           return map_kernel<T, T, 1>(out, {&x}, math::AbsFn{});
                         case UnaryOp::Sign:
                           return map_kernel<T, T, 1>(out, {&x}, math::SignFn{});
                         case UnaryOp::Square:
                           return map_kernel<T, T, 1>(out, {&x}, math::SquareFn{});
                         case UnaryOp::Relu:
                           return map_kernel<T, T, 1>(out, {&x}, math::ReluFn{});
                         default:
                           break;
                       }
                     } else {
                       math::visit_unary(op, [&](auto fn) { map_kernel<T, T, 1>(out, {&x}, fn); });
                     }
                   }));
}

// ---------------------------------------------------------------------------------------------
// Binary: `a` and `b` already have the result dtype.

void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  CXR_CHECK(
      out.dtype() != kBool || (op != BinaryOp::Sub && op != BinaryOp::Pow && op != BinaryOp::Div),
      name, ": not defined for bool tensors, got ", describe(a), " and ", describe(b));
  // Division of integers is true division and was promoted to float by the caller.
  CXR_CHECK(op != BinaryOp::Div || is_floating(out.dtype()), name,
            ": internal error, integer division");
  if constexpr (kCudaBuilt)
    if (out.device().is_cuda()) return cuda::binary(op, out, a, b);
  if (out.dtype() == kFloat32) {
    cpu::for_each_row<3>(
        out.sizes(), {&out, &a, &b},
        [op](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
          float* y = reinterpret_cast<float*>(p[0]);
          const float* va = reinterpret_cast<const float*>(p[1]);
          const float* vb = reinterpret_cast<const float*>(p[2]);
          if (s[0] == 1 && s[1] <= 1 && s[2] <= 1 && s[1] >= 0 && s[2] >= 0 &&
              (s[1] == 1 || s[2] == 1))
            return binary_f32(op, va, s[1], vb, s[2], y, n);
          math::visit_binary(op, [&](auto fn) {
            for (int64_t i = 0; i < n; ++i) y[i * s[0]] = fn(va[i * s[1]], vb[i * s[2]]);
          });
        });
    return;
  }
  CXR_DISPATCH_ALL(out.dtype(), name, ([&]<typename T>() {
                     using C = compute_t<T>;
                     // The branches left empty were refused above.
                     math::visit_binary(op, [&](auto fn) {
                       if constexpr (std::is_same_v<decltype(fn), math::DivFn>) {
                         if constexpr (math::is_float_v<C>) map_kernel<T, T, 2>(out, {&a, &b}, fn);
                       } else if constexpr (std::is_same_v<T, bool> &&
                                            (std::is_same_v<decltype(fn), math::SubFn> ||
                                             std::is_same_v<decltype(fn), math::PowFn>)) {
                       } else {
                         map_kernel<T, T, 2>(out, {&a, &b}, fn);
                       }
                     });
                   }));
}

// The dtype arithmetic between `a` and `b` produces: promote_types, with true division of
// integers giving float32.
DType binary_result_type(BinaryOp op, DType a, DType b) {
  DType t = promote_types(a, b);
  if (op == BinaryOp::Div && !is_floating(t)) return kFloat32;
  return t;
}

// The dtype of a tensor combined with a scalar: a floating tensor keeps its dtype; an integer (or
// bool) tensor keeps an integral type when the scalar has an integral value and becomes float32
// otherwise (a double argument cannot tell 2 from 2.0, so the value decides).
DType scalar_result_type(BinaryOp op, DType t, double s) {
  if (is_floating(t)) return t;
  if (op == BinaryOp::Div || !is_integral_value(s)) return kFloat32;
  return t == kBool ? kInt64 : t;
}

Tensor as_dtype(const Tensor& t, DType d) {
  return t.dtype() == d ? t : raw::to(t, d);
}

// A new result on `device` (a scalar operand is a 0-dim CPU tensor whatever the device).
Tensor binary_impl(BinaryOp op, const Tensor& a, const Tensor& b, DType rt, Device device) {
  const char* name = binary_op_name(op);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor out = raw::empty(shape, rt, device);
  binary_into(op, out, as_dtype(a, rt), as_dtype(b, rt));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Compare: the result is bool; both sides are compared in their promoted type.

void compare_into(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  if constexpr (kCudaBuilt)
    if (out.device().is_cuda()) return cuda::compare(op, out, a, b);
  CXR_DISPATCH_ALL(
      a.dtype(), compare_op_name(op), ([&]<typename T>() {
        math::visit_compare(op, [&](auto fn) { map_kernel<bool, T, 2>(out, {&a, &b}, fn); });
      }));
}

// out <- a parameterised unary functor (built for the compute type of x's dtype) of x.
template <template <typename> class Fn, typename... P>
void map_param(const Tensor& out, const Tensor& x, P... params) {
  CXR_DISPATCH_FLOAT(x.dtype(), "elementwise", ([&]<typename T>() {
                       using C = compute_t<T>;
                       map_kernel<T, T, 1>(out, {&x}, Fn<C>{C(params)...});
                     }));
}

// Validates the grad and input of a backward op; returns the (uninitialised) result on their
// device.
Tensor backward_out(const char* name, const Tensor& grad, const Tensor& x) {
  device_of(name, {grad, x});
  check_floating(x, name);
  CXR_CHECK(grad.dtype() == x.dtype() && grad.sizes() == x.sizes(), name,
            ": grad and input must have the same shape and dtype, got ", describe(grad), " and ",
            describe(x));
  return raw::empty_like(x);
}

// out <- grad * f'(x) for a parameterised functor.
template <template <typename> class Fn, typename... P>
void map_param_backward(const Tensor& out, const Tensor& grad, const Tensor& x, P... params) {
  CXR_DISPATCH_FLOAT(
      x.dtype(), "elementwise", ([&]<typename T>() {
        using C = compute_t<T>;
        const Fn<C> fn{C(params)...};
        map_kernel<T, T, 2>(out, {&grad, &x}, [fn](C g, C v) { return fn.backward(g, v); });
      }));
}

template <typename C>
struct LerpFn {
  CXR_MATH C operator()(C a, C b, C w) const { return math::lerp(a, b, w); }
};

void clamp_into(const Tensor& out, const Tensor& x, double lo, double hi) {
  CXR_CHECK(!std::isnan(lo) && !std::isnan(hi), "clamp: bounds must not be NaN, got ", lo, " and ",
            hi);
  CXR_CHECK(x.dtype() != kBool, "clamp: not defined for bool tensors, got ", describe(x));
  if constexpr (kCudaBuilt)
    if (out.device().is_cuda()) return cuda::clamp(out, x, lo, hi);
  if (x.dtype() == kFloat32) {
    const float flo = float(lo), fhi = float(hi);
    cpu::for_each_row<2>(
        out.sizes(), {&out, &x},
        [flo, fhi](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
          float* y = reinterpret_cast<float*>(p[0]);
          const float* v = reinterpret_cast<const float*>(p[1]);
          if (s[0] == 1 && s[1] == 1) return clamp_f32(v, y, n, flo, fhi);
          const math::ClampFn<float> fn{flo, fhi};
          for (int64_t i = 0; i < n; ++i) y[i * s[0]] = fn(v[i * s[1]]);
        });
    return;
  }
  CXR_DISPATCH_ALL(
      x.dtype(), "clamp", ([&]<typename T>() {
        using C = compute_t<T>;
        if constexpr (!std::is_same_v<T, bool>)  // bool refused above
          map_kernel<T, T, 1>(out, {&x}, math::ClampFn<C>{saturate<C>(lo), saturate<C>(hi)});
      }));
}

}  // namespace

namespace raw {

Tensor unary(UnaryOp op, const Tensor& x) {
  const Device device = device_of(unary_op_name(op), {x});
  Tensor out = empty(x.sizes(), x.dtype(), device);
  unary_into(op, out, x);
  return out;
}

void unary_(UnaryOp op, const Tensor& x) {
  const char* name = unary_op_name(op);
  device_of(name, {x});
  check_writable(x, name);
  unary_into(op, x, x);
  x.storage()->bump_version();
}

Tensor unary_backward(UnaryOp op, const Tensor& grad, const Tensor& x, const Tensor& /*y*/) {
  const char* name = unary_op_name(op);
  const Device device = device_of(name, {grad, x});
  check_floating(x, name);
  CXR_CHECK(grad.dtype() == x.dtype() && grad.sizes() == x.sizes(), name,
            "_backward: grad and input must have the same shape and dtype, got ", describe(grad),
            " and ", describe(x));
  Tensor out = empty(x.sizes(), x.dtype(), device);
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      cuda::unary_backward(op, out, grad, x);
      return out;
    }
  }
  if (x.dtype() == kFloat32) {
    cpu::for_each_row<3>(
        out.sizes(), {&out, &grad, &x},
        [op](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
          float* y = reinterpret_cast<float*>(p[0]);
          const float* g = reinterpret_cast<const float*>(p[1]);
          const float* v = reinterpret_cast<const float*>(p[2]);
          if (s[0] == 1 && s[1] == 1 && s[2] == 1) return unary_backward_f32(op, g, v, y, n);
          math::visit_unary(op, [&](auto fn) {
            for (int64_t i = 0; i < n; ++i) y[i * s[0]] = fn.backward(g[i * s[1]], v[i * s[2]]);
          });
        });
    return out;
  }
  CXR_DISPATCH_FLOAT(
      x.dtype(), name, ([&]<typename T>() {
        using C = compute_t<T>;
        math::visit_unary(op, [&](auto fn) {
          map_kernel<T, T, 2>(out, {&grad, &x}, [fn](C g, C v) { return fn.backward(g, v); });
        });
      }));
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const Device device = device_of(binary_op_name(op), {a, b});
  return binary_impl(op, a, b, binary_result_type(op, a.dtype(), b.dtype()), device);
}

Tensor binary(BinaryOp op, const Tensor& a, double b) {
  const Device device = device_of(binary_op_name(op), {a});
  DType rt = scalar_result_type(op, a.dtype(), b);
  return binary_impl(op, a, scalar_tensor(b, rt), rt, device);
}

Tensor binary(BinaryOp op, double a, const Tensor& b) {
  const Device device = device_of(binary_op_name(op), {b});
  DType rt = scalar_result_type(op, b.dtype(), a);
  return binary_impl(op, scalar_tensor(a, rt), b, rt, device);
}

void binary_(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  device_of(name, {a, b});
  check_writable(a, name);
  DType rt = binary_result_type(op, a.dtype(), b.dtype());
  CXR_CHECK(is_floating(a.dtype()) || !is_floating(rt), name, "_: the result type ", dtype_name(rt),
            " of ", describe(a), " and ", describe(b),
            " cannot be stored in place into the first (integer) tensor");
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  CXR_CHECK(shape == a.sizes(), name, "_: ", describe(b),
            " does not broadcast to the shape of the ", "in-place tensor ", describe(a));
  binary_into(op, a, a, as_dtype(detach_overlap(a, b), a.dtype()));
  a.storage()->bump_version();
}

void binary_(BinaryOp op, const Tensor& a, double b) {
  const char* name = binary_op_name(op);
  device_of(name, {a});
  check_writable(a, name);
  DType rt = scalar_result_type(op, a.dtype(), b);
  CXR_CHECK(is_floating(a.dtype()) || !is_floating(rt), name, "_: the result of ", describe(a),
            " and the scalar ", b, " is ", dtype_name(rt),
            ", which cannot be stored in place into an integer tensor");
  CXR_CHECK(a.dtype() != kBool || rt == kBool, name, "_: the result of ", describe(a),
            " and the scalar ", b, " is not a bool");
  binary_into(op, a, a, scalar_tensor(b, a.dtype()));
  a.storage()->bump_version();
}

Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) {
  const char* name = compare_op_name(op);
  const Device device = device_of(name, {a, b});
  DType t = promote_types(a.dtype(), b.dtype());
  Tensor out = empty(broadcast_shapes(a.sizes(), b.sizes(), name), kBool, device);
  compare_into(op, out, as_dtype(a, t), as_dtype(b, t));
  return out;
}

Tensor compare(CompareOp op, const Tensor& a, double b) {
  const char* name = compare_op_name(op);
  const Device device = device_of(name, {a});
  // An integer tensor against a fractional scalar is compared in float64 (exact for both).
  DType t = is_floating(a.dtype()) || is_integral_value(b) ? a.dtype() : kFloat64;
  if (t == kBool && b != 0.0 && b != 1.0) t = kInt64;
  Tensor out = empty(a.sizes(), kBool, device);
  compare_into(op, out, as_dtype(a, t), scalar_tensor(b, t));
  return out;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  device_of("leaky_relu", {x});
  check_floating(x, "leaky_relu");
  Tensor out = empty_like(x);
  if constexpr (kCudaBuilt) {
    if (x.device().is_cuda()) {
      cuda::leaky_relu(out, x, negative_slope);
      return out;
    }
  }
  map_param<math::LeakyReluFn>(out, x, negative_slope);
  return out;
}

Tensor leaky_relu_backward(const Tensor& grad, const Tensor& x, double negative_slope) {
  Tensor out = backward_out("leaky_relu_backward", grad, x);
  if constexpr (kCudaBuilt) {
    if (out.device().is_cuda()) {
      cuda::leaky_relu_backward(out, grad, x, negative_slope);
      return out;
    }
  }
  map_param_backward<math::LeakyReluFn>(out, grad, x, negative_slope);
  return out;
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  device_of("softplus", {x});
  check_floating(x, "softplus");
  CXR_CHECK(beta != 0.0, "softplus: beta must be nonzero");
  Tensor out = empty_like(x);
  if constexpr (kCudaBuilt) {
    if (x.device().is_cuda()) {
      cuda::softplus(out, x, beta, threshold);
      return out;
    }
  }
  map_param<math::SoftplusFn>(out, x, beta, threshold);
  return out;
}

Tensor softplus_backward(const Tensor& grad, const Tensor& x, double beta, double threshold) {
  CXR_CHECK(beta != 0.0, "softplus_backward: beta must be nonzero");
  Tensor out = backward_out("softplus_backward", grad, x);
  if constexpr (kCudaBuilt) {
    if (out.device().is_cuda()) {
      cuda::softplus_backward(out, grad, x, beta, threshold);
      return out;
    }
  }
  map_param_backward<math::SoftplusFn>(out, grad, x, beta, threshold);
  return out;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  device_of("clamp", {x});
  Tensor out = empty_like(x);
  clamp_into(out, x, lo, hi);
  return out;
}

void clamp_(const Tensor& x, double lo, double hi) {
  device_of("clamp_", {x});
  check_writable(x, "clamp_");
  clamp_into(x, x, lo, hi);
  x.storage()->bump_version();
}

Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi) {
  Tensor out = backward_out("clamp_backward", grad, x);
  if constexpr (kCudaBuilt) {
    if (out.device().is_cuda()) {
      cuda::clamp_backward(out, grad, x, lo, hi);
      return out;
    }
  }
  map_param_backward<math::ClampFn>(out, grad, x, lo, hi);
  return out;
}

Tensor pow(const Tensor& x, double exponent) {
  device_of("pow", {x});
  if (!is_floating(x.dtype())) {
    CXR_CHECK(x.dtype() != kBool, "pow: not defined for bool tensors, got ", describe(x));
    if (!is_integral_value(exponent)) return pow(to(x, kFloat32), exponent);
    CXR_CHECK(exponent >= 0, "pow: integers to negative integer powers are not allowed (",
              describe(x), " ** ", exponent, ")");
  }
  Tensor out = empty_like(x);
  if constexpr (kCudaBuilt) {
    if (x.device().is_cuda()) {
      cuda::pow(out, x, exponent);
      return out;
    }
  }
  if (is_floating(x.dtype())) {
    map_param<math::PowScalarFn>(out, x, exponent);
    return out;
  }
  CXR_DISPATCH_ALL(x.dtype(), "pow", ([&]<typename T>() {
                     if constexpr (!std::is_same_v<T, bool> && !math::is_float_v<compute_t<T>>)
                       map_kernel<T, T, 1>(out, {&x}, math::PowScalarFn<T>{saturate<T>(exponent)});
                   }));
  return out;
}

Tensor lerp(const Tensor& a, const Tensor& b, double w) {
  const Device device = device_of("lerp", {a, b});
  check_floating(a, "lerp");
  CXR_CHECK(a.dtype() == b.dtype(), "lerp: expected start and end of one dtype, got ", describe(a),
            " and ", describe(b));
  Tensor out = empty(broadcast_shapes(a.sizes(), b.sizes(), "lerp"), a.dtype(), device);
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      cuda::lerp(out, a, b, w);
      return out;
    }
  }
  CXR_DISPATCH_FLOAT(
      a.dtype(), "lerp", ([&]<typename T>() {
        using C = compute_t<T>;
        const C cw = C(w);
        map_kernel<T, T, 2>(out, {&a, &b}, [cw](C x, C y) { return math::lerp(x, y, cw); });
      }));
  return out;
}

Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& w) {
  const Device device = device_of("lerp", {a, b, w});
  check_floating(a, "lerp");
  CXR_CHECK(a.dtype() == b.dtype() && a.dtype() == w.dtype(),
            "lerp: expected start, end and weight of one dtype, got ", describe(a), ", ",
            describe(b), " and ", describe(w));
  Shape shape = broadcast_shapes(broadcast_shapes(a.sizes(), b.sizes(), "lerp"), w.sizes(), "lerp");
  Tensor out = empty(shape, a.dtype(), device);
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      cuda::lerp(out, a, b, w);
      return out;
    }
  }
  CXR_DISPATCH_FLOAT(a.dtype(), "lerp", ([&]<typename T>() {
                       map_kernel<T, T, 3>(out, {&a, &b, &w}, LerpFn<compute_t<T>>{});
                     }));
  return out;
}

}  // namespace raw
}  // namespace cxr
