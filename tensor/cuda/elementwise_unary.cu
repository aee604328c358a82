// CUDA kernels of the unary elementwise ops (tensor/elementwise.h): every UnaryOp and the
// parameterised leaky_relu, softplus, clamp and pow(x, scalar). Each runs the functor of
// tensor/math.h through launch_map, in the compute type of the dtype, as the CPU loops do.
#include <type_traits>

// The math.h functors instantiated for uint8 compare it with zero (x < 0 in relu, the exponent
// sign in ipow), which nvcc flags as pointless; the comparisons are right for the signed types.
#pragma nv_diag_suppress 186

#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/dtype.h"
#include "tensor/math.h"

namespace cxr::cuda {

namespace {

// The unary functors defined on integers too (tensor/cpu/elementwise.cpp's unary_allows_integers).
template <typename Fn>
inline constexpr bool integer_unary_v =
    std::is_same_v<Fn, math::NegFn> || std::is_same_v<Fn, math::AbsFn> ||
    std::is_same_v<Fn, math::SignFn> || std::is_same_v<Fn, math::SquareFn> ||
    std::is_same_v<Fn, math::ReluFn>;

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  const char* name = unary_op_name(op);
  CXR_DISPATCH_ALL(x.dtype(), name, ([&]<typename T>() {
                     math::visit_unary(op, [&](auto fn) {
                       using Fn = decltype(fn);
                       constexpr bool defined =
                           !std::is_same_v<T, bool> &&
                           (math::is_float_v<compute_t<T>> || integer_unary_v<Fn>);
                       // The raw op refuses the other combinations before calling.
                       CXR_CHECK(defined, name, ": not defined for ", describe(x));
                       if constexpr (defined) launch_map<T, T, 1>(out, {&x}, fn, name);
                     });
                   }));
}

void leaky_relu(const Tensor& out, const Tensor& x, double negative_slope) {
  CXR_DISPATCH_FLOAT(x.dtype(), "leaky_relu", ([&]<typename T>() {
                       using C = compute_t<T>;
                       launch_map<T, T, 1>(out, {&x}, math::LeakyReluFn<C>{C(negative_slope)},
                                           "leaky_relu");
                     }));
}

void softplus(const Tensor& out, const Tensor& x, double beta, double threshold) {
  CXR_DISPATCH_FLOAT(
      x.dtype(), "softplus", ([&]<typename T>() {
        using C = compute_t<T>;
        launch_map<T, T, 1>(out, {&x}, math::SoftplusFn<C>{C(beta), C(threshold)}, "softplus");
      }));
}

void clamp(const Tensor& out, const Tensor& x, double lo, double hi) {
  CXR_DISPATCH_ALL(x.dtype(), "clamp", ([&]<typename T>() {
                     using C = compute_t<T>;
                     CXR_CHECK((!std::is_same_v<T, bool>), "clamp: not defined for ", describe(x));
                     if constexpr (!std::is_same_v<T, bool>)
                       launch_map<T, T, 1>(
                           out, {&x}, math::ClampFn<C>{saturate<C>(lo), saturate<C>(hi)}, "clamp");
                   }));
}

void pow(const Tensor& out, const Tensor& x, double exponent) {
  CXR_DISPATCH_ALL(x.dtype(), "pow", ([&]<typename T>() {
                     using C = compute_t<T>;
                     CXR_CHECK((!std::is_same_v<T, bool>), "pow: not defined for ", describe(x));
                     // Integers take the exponent saturated to their own type (integral, >= 0:
                     // checked by the raw op); floating types round it to the compute type.
                     if constexpr (!std::is_same_v<T, bool>)
                       launch_map<T, T, 1>(out, {&x}, math::PowScalarFn<C>{saturate<C>(exponent)},
                                           "pow");
                   }));
}

}  // namespace cxr::cuda
