// Host entry points of the CUDA elementwise kernels (tensor/cuda/elementwise*.cu): copies with
// broadcasting and dtype conversion, fills, and the kernels behind the ops of tensor/elementwise.h.
// The raw ops (tensor/cpu/elementwise.cpp) validate shapes, dtypes and devices, allocate the
// output on the device and then call these, so every tensor argument is on one CUDA device, except
// that a 0-dim CPU tensor may stand for a scalar operand where noted (its value is passed to the
// kernel). Outputs are written through their own strides (they may alias an input: in place).
// Plain C++ header; the functions are defined only in CUDA builds.
#pragma once

#include <limits>
#include <type_traits>

#include "tensor/elementwise.h"
#include "tensor/tensor.h"

namespace cxr {

// A double parameter (clamp bound, integer exponent) as the element type C: floating types round,
// integer types saturate (so -inf/+inf bounds become the type's limits) and NaN becomes 0. Shared
// by both backends so that they convert parameters identically.
template <typename C>
C saturate(double v) {
  if constexpr (std::is_floating_point_v<C>) {
    return C(v);
  } else {
    if (v != v) return C(0);
    const double lo = double(std::numeric_limits<C>::lowest()),
                 hi = double(std::numeric_limits<C>::max());
    return v <= lo ? std::numeric_limits<C>::lowest()
                   : (v >= hi ? std::numeric_limits<C>::max() : C(v));
  }
}

namespace cuda {

// dst <- src broadcast to dst's shape, converted to dst's dtype; any strides on both sides.
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);

// out <- op(x); out and x share dtype and shape (bool and float-only ops on integers refused by
// the caller).
void unary(UnaryOp op, const Tensor& out, const Tensor& x);
// out <- grad * op'(x); out, grad and x share one floating dtype and shape.
void unary_backward(UnaryOp op, const Tensor& out, const Tensor& grad, const Tensor& x);
// out <- a op b; a and b have out's dtype and broadcast to its shape; either may be a 0-dim CPU
// tensor (a scalar operand).
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
// out (bool) <- a op b; a and b share one dtype and broadcast to out's shape; b may be a 0-dim CPU
// tensor.
void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b);

// The parameterised ops (math.h functors built with the parameters in the compute type, as the CPU
// does); out, grad and x share dtype and shape; x is floating except for clamp and pow (integer
// dtypes: bounds and exponent saturated; pow's exponent is a nonnegative integer).
void leaky_relu(const Tensor& out, const Tensor& x, double negative_slope);
void leaky_relu_backward(const Tensor& out, const Tensor& grad, const Tensor& x,
                         double negative_slope);
void softplus(const Tensor& out, const Tensor& x, double beta, double threshold);
void softplus_backward(const Tensor& out, const Tensor& grad, const Tensor& x, double beta,
                       double threshold);
void clamp(const Tensor& out, const Tensor& x, double lo, double hi);
void clamp_backward(const Tensor& out, const Tensor& grad, const Tensor& x, double lo, double hi);
void pow(const Tensor& out, const Tensor& x, double exponent);
// out <- a + w (b - a) (math::lerp); a, b (and w) of out's floating dtype, broadcast to its shape.
void lerp(const Tensor& out, const Tensor& a, const Tensor& b, double w);
void lerp(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& w);

}  // namespace cuda
}  // namespace cxr
