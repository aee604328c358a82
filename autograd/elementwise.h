// Differentiable elementwise ops (namespace cxr) over the raw kernels of tensor/elementwise.h:
// unary math and activations, arithmetic with NumPy broadcasting (each input's gradient is summed
// back to its shape and converted back to its dtype), scalar forms, operators, comparisons (never
// differentiated) and in-place forms. Backward functions use the fused raw backward kernels in a
// plain backward pass and these same differentiable ops under create_graph, so any order of
// derivative works.
#pragma once

#include "tensor/elementwise.h"  // UnaryOp, BinaryOp, CompareOp
#include "tensor/tensor.h"

namespace cxr {

// ---- unary ----
Tensor unary(UnaryOp op, const Tensor& x);
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor silu(const Tensor& x);
// Exact GELU x Phi(x); approximate_tanh selects 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// (torch's approximate="tanh").
Tensor gelu(const Tensor& x, bool approximate_tanh = false);
Tensor quick_gelu(const Tensor& x);  // x sigmoid(1.702 x)
Tensor erf(const Tensor& x);

// ---- parameterised activations ----
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
// Pass -inf / +inf for a one-sided bound; the gradient flows where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
Tensor clamp_max(const Tensor& x, double hi);
// a + w (b - a), broadcast.
Tensor lerp(const Tensor& a, const Tensor& b, double w);
Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& w);

// ---- binary, with broadcasting and type promotion ----
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, double b);
Tensor binary(BinaryOp op, double a, const Tensor& b);
Tensor add(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, double b);
Tensor sub(double a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, double b);
Tensor div(double a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor pow(double base, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties split the gradient in half
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);

// ---- comparisons: bool results, no gradient ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);

// ---- in place: self <- self op other (other broadcast to self's shape; self's dtype kept).
// Return self. Under grad mode they refuse a leaf that requires grad (use NoGradGuard for
// parameter updates) and record the op otherwise.
Tensor add_(const Tensor& self, const Tensor& other);
Tensor add_(const Tensor& self, double other);
Tensor sub_(const Tensor& self, const Tensor& other);
Tensor sub_(const Tensor& self, double other);
Tensor mul_(const Tensor& self, const Tensor& other);
Tensor mul_(const Tensor& self, double other);
Tensor div_(const Tensor& self, const Tensor& other);
Tensor div_(const Tensor& self, double other);
Tensor clamp_(const Tensor& self, double lo, double hi);

}  // namespace cxr
