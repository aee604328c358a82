// CUDA kernels of the binary elementwise ops (tensor/elementwise.h): every BinaryOp and CompareOp
// (tensor-tensor with broadcasting, or with a scalar operand on either side) and lerp. A scalar
// operand arrives as a 0-dim CPU tensor of the operands' dtype (the raw op's scalar_tensor); its
// value is read on the host, loaded into the compute type exactly as the CPU loop loads it, and
// bound into the functor, so the kernel runs over the tensor operand alone.
#include <type_traits>

// The math.h functors instantiated for uint8 compare it with zero (the exponent sign in ipow),
// which nvcc flags as pointless; the comparisons are right for the signed types.
#pragma nv_diag_suppress 186

#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/dtype.h"
#include "tensor/math.h"

namespace cxr::cuda {

namespace {

// f(a, x) and f(x, b) with the other operand fixed.
template <typename F, typename C>
struct BindFirst {
  F f;
  C a;
  __device__ auto operator()(C b) const { return f(a, b); }
};
template <typename F, typename C>
struct BindSecond {
  F f;
  C b;
  __device__ auto operator()(C a) const { return f(a, b); }
};

// The value of a scalar operand (a 0-dim CPU tensor of dtype T) in the compute type.
template <typename T>
compute_t<T> host_scalar(const Tensor& t, const char* name) {
  CXR_CHECK(t.dim() == 0, name, ": a CPU operand of a CUDA op must be a 0-dim scalar, got ",
            describe(t));
  return compute_t<T>(*static_cast<const T*>(t.data_ptr()));
}

// out = f(a, b) with a and b of dtype T; at most one of them is a CPU scalar.
template <typename TO, typename T, typename F>
void launch_binary(const Tensor& out, const Tensor& a, const Tensor& b, F f, const char* name) {
  using C = compute_t<T>;
  if (b.device().is_cpu())
    return launch_map<TO, T, 1>(out, {&a}, BindSecond<F, C>{f, host_scalar<T>(b, name)}, name);
  if (a.device().is_cpu())
    return launch_map<TO, T, 1>(out, {&b}, BindFirst<F, C>{f, host_scalar<T>(a, name)}, name);
  launch_map<TO, T, 2>(out, {&a, &b}, f, name);
}

// The (dtype, functor) pairs the raw op accepts: no sub, pow or div of bools, and division only in
// a floating type (true division of integers is promoted to float32 before).
template <typename T, typename Fn>
inline constexpr bool binary_defined_v =
    !(std::is_same_v<T, bool> &&
      (std::is_same_v<Fn, math::SubFn> || std::is_same_v<Fn, math::PowFn>)) &&
    (math::is_float_v<compute_t<T>> || !std::is_same_v<Fn, math::DivFn>);

// (a, b) -> a + w (b - a) for a fixed w, and (a, b, w) -> a + w (b - a).
template <typename C>
struct LerpScalarFn {
  C w;
  __device__ C operator()(C a, C b) const { return math::lerp(a, b, w); }
};
struct LerpFn {
  template <typename C>
  __device__ C operator()(C a, C b, C w) const {
    return math::lerp(a, b, w);
  }
};

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  CXR_DISPATCH_ALL(out.dtype(), name, ([&]<typename T>() {
                     math::visit_binary(op, [&](auto fn) {
                       constexpr bool defined = binary_defined_v<T, decltype(fn)>;
                       // The raw op refuses the other combinations before calling.
                       CXR_CHECK(defined, name, ": not defined for ", describe(a), " and ",
                                 describe(b));
                       if constexpr (defined) launch_binary<T, T>(out, a, b, fn, name);
                     });
                   }));
}

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  CXR_DISPATCH_ALL(a.dtype(), "compare", ([&]<typename T>() {
                     math::visit_compare(
                         op, [&](auto fn) { launch_binary<bool, T>(out, a, b, fn, "compare"); });
                   }));
}

void lerp(const Tensor& out, const Tensor& a, const Tensor& b, double w) {
  CXR_DISPATCH_FLOAT(out.dtype(), "lerp", ([&]<typename T>() {
                       using C = compute_t<T>;
                       launch_map<T, T, 2>(out, {&a, &b}, LerpScalarFn<C>{C(w)}, "lerp");
                     }));
}

void lerp(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& w) {
  CXR_DISPATCH_FLOAT(out.dtype(), "lerp", ([&]<typename T>() {
                       launch_map<T, T, 3>(out, {&a, &b, &w}, LerpFn{}, "lerp");
                     }));
}

}  // namespace cxr::cuda
