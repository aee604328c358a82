// Elementwise ops with NumPy broadcasting over any strides. The math of each op is one CXR_HD
// functor in tensor/math.h, shared by the CPU loops and the CUDA kernels. Results follow dtype
// promotion (promote_types); float-only ops (exp, sigmoid, ...) reject integer inputs.
#pragma once

#include "tensor/tensor.h"

namespace cxr {

enum class UnaryOp {
  Neg,
  Abs,
  Sign,
  Square,
  Reciprocal,
  Exp,
  Log,
  Log1p,
  Sqrt,
  Rsqrt,
  Sin,
  Cos,
  Tanh,
  Sigmoid,
  Relu,
  Silu,
  Gelu,       // exact: 0.5 x (1 + erf(x / sqrt 2))
  GeluTanh,   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  QuickGelu,  // x sigmoid(1.702 x) (OpenAI CLIP)
  Erf,
};
const char* unary_op_name(UnaryOp op);

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum };
const char* binary_op_name(BinaryOp op);  // "add", "mul", ...
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

namespace raw {

Tensor unary(UnaryOp op, const Tensor& x);
// grad * f'(x); `y` = f(x) is passed too since some derivatives are cheaper from it (may be
// undefined for ops that do not use it: every op accepts x).
Tensor unary_backward(UnaryOp op, const Tensor& grad, const Tensor& x, const Tensor& y);
void unary_(UnaryOp op, const Tensor& x);  // in place

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, double b);
Tensor binary(BinaryOp op, double a, const Tensor& b);  // scalar first (rsub, rdiv, scalar ** t)
// a <- a op b in place (b broadcast to a's shape; a's dtype kept).
void binary_(BinaryOp op, const Tensor& a, const Tensor& b);
void binary_(BinaryOp op, const Tensor& a, double b);
// Result dtype bool.
Tensor compare(CompareOp op, const Tensor& a, const Tensor& b);
Tensor compare(CompareOp op, const Tensor& a, double b);

// Named forms.
inline Tensor neg(const Tensor& x) {
  return unary(UnaryOp::Neg, x);
}
inline Tensor abs(const Tensor& x) {
  return unary(UnaryOp::Abs, x);
}
inline Tensor exp(const Tensor& x) {
  return unary(UnaryOp::Exp, x);
}
inline Tensor log(const Tensor& x) {
  return unary(UnaryOp::Log, x);
}
inline Tensor sqrt(const Tensor& x) {
  return unary(UnaryOp::Sqrt, x);
}
inline Tensor rsqrt(const Tensor& x) {
  return unary(UnaryOp::Rsqrt, x);
}
inline Tensor tanh(const Tensor& x) {
  return unary(UnaryOp::Tanh, x);
}
inline Tensor sigmoid(const Tensor& x) {
  return unary(UnaryOp::Sigmoid, x);
}
inline Tensor relu(const Tensor& x) {
  return unary(UnaryOp::Relu, x);
}
inline Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
inline Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
inline Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}
inline Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}
inline Tensor add(const Tensor& a, double b) {
  return binary(BinaryOp::Add, a, b);
}
inline Tensor mul(const Tensor& a, double b) {
  return binary(BinaryOp::Mul, a, b);
}

// Parameterised activations.
Tensor leaky_relu(const Tensor& x, double negative_slope);
Tensor leaky_relu_backward(const Tensor& grad, const Tensor& x, double negative_slope);
// log(1 + exp(beta x)) / beta, linear above `threshold` (torch.nn.functional.softplus).
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor softplus_backward(const Tensor& grad, const Tensor& x, double beta, double threshold);
// NaN-free bounds; pass -inf/+inf for a one-sided clamp.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi);
void clamp_(const Tensor& x, double lo, double hi);
Tensor pow(const Tensor& x, double exponent);
// a + w (b - a)
Tensor lerp(const Tensor& a, const Tensor& b, double w);
Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& w);

}  // namespace raw
}  // namespace cxr
