// Differentiable elementwise ops: the raw kernel computes the output, autograd::record attaches
// the backward. Gradients of broadcast inputs are summed back to the input's shape (sum_to) and
// converted back to its dtype. In a plain backward pass (grad mode off) unary derivatives use the
// fused raw backward kernels; under create_graph they are built from these differentiable ops.
#include "autograd/elementwise.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "tensor/creation.h"
#include "tensor/math.h"

namespace cxr {
namespace {

using Grads = std::vector<Tensor>;

// What a backward needs to know of an input it does not read: shape, dtype, whether it wants a
// gradient.
struct InputInfo {
  Shape shape;
  DType dtype;
  bool needs;
};
InputInfo info(const Tensor& t) {
  return {t.sizes(), t.dtype(), t.requires_grad()};
}

// The gradient `g` of a broadcast (and possibly promoted) input, summed back to its shape and
// converted back to its dtype; undefined when the input needs no gradient.
Tensor fit(const Tensor& g, const InputInfo& in) {
  if (!in.needs) return Tensor();
  Tensor r = g.sizes() == in.shape ? g : sum_to(g, in.shape);
  return r.dtype() == in.dtype ? r : to(r, in.dtype);
}

// A bool mask as a constant tensor of dtype `d`.
Tensor mask_as(const Tensor& mask, DType d) {
  return raw::to(mask, d);
}

// g * f'(x) built from differentiable ops (create_graph).
Tensor unary_grad_graph(UnaryOp op, const Tensor& g, const Tensor& x) {
  switch (op) {
    case UnaryOp::Neg:
      return neg(g);
    case UnaryOp::Abs:
      return mul(g, sign(x));
    case UnaryOp::Sign:
      return mul(g, 0.0);
    case UnaryOp::Square:
      return mul(g, mul(x, 2.0));
    case UnaryOp::Reciprocal:
      return neg(div(g, square(x)));
    case UnaryOp::Exp:
      return mul(g, exp(x));
    case UnaryOp::Log:
      return div(g, x);
    case UnaryOp::Log1p:
      return div(g, add(x, 1.0));
    case UnaryOp::Sqrt:
      return div(g, mul(sqrt(x), 2.0));
    case UnaryOp::Rsqrt:
      return mul(g, mul(pow(x, -1.5), -0.5));
    case UnaryOp::Sin:
      return mul(g, cos(x));
    case UnaryOp::Cos:
      return neg(mul(g, sin(x)));
    case UnaryOp::Tanh:
      return mul(g, sub(1.0, square(tanh(x))));
    case UnaryOp::Sigmoid: {
      Tensor s = sigmoid(x);
      return mul(g, mul(s, sub(1.0, s)));
    }
    case UnaryOp::Relu:
      return mul(g, mask_as(raw::compare(CompareOp::Gt, x, 0.0), x.dtype()));
    case UnaryOp::Silu: {
      Tensor s = sigmoid(x);
      return mul(g, mul(s, add(mul(x, sub(1.0, s)), 1.0)));
    }
    case UnaryOp::Gelu: {
      Tensor cdf = mul(add(erf(mul(x, 0.70710678118654752440)), 1.0), 0.5);
      Tensor pdf = mul(exp(mul(square(x), -0.5)), math::kInvSqrt2Pi);
      return mul(g, add(cdf, mul(x, pdf)));
    }
    case UnaryOp::GeluTanh: {
      Tensor x2 = square(x);
      Tensor t = tanh(mul(add(x, mul(mul(x2, x), math::kGeluTanhCubic)), math::kSqrt2OverPi));
      Tensor du = mul(add(mul(x2, 3 * math::kGeluTanhCubic), 1.0), math::kSqrt2OverPi);
      return mul(g, add(mul(add(t, 1.0), 0.5), mul(mul(mul(x, sub(1.0, square(t))), du), 0.5)));
    }
    case UnaryOp::QuickGelu: {
      Tensor s = sigmoid(mul(x, math::kQuickGelu));
      return mul(g, add(s, mul(mul(x, math::kQuickGelu), mul(s, sub(1.0, s)))));
    }
    case UnaryOp::Erf:
      return mul(g, mul(exp(neg(square(x))), math::k2OverSqrtPi));
  }
  CXR_FAIL("unary backward: unknown op");
}

// g * f'(x) for a derivative that is constant between break points (leaky_relu, clamp): the raw
// backward kernel, or under create_graph g times the (constant) derivative.
template <typename RawBackward>
Tensor piecewise_grad(const Tensor& g, const Tensor& x, RawBackward raw_backward) {
  if (!autograd::GradMode::is_enabled()) return raw_backward(g, x);
  return mul(g, raw_backward(raw::ones_like(x), x));
}

// Gradients of a binary op for inputs a and b (either may be a constant standing for a scalar).
// Add and Sub do not read the inputs (a and b may then be undefined).
Grads binary_grads(BinaryOp op, const Tensor& g, const Tensor& a, const Tensor& b,
                   const InputInfo& ia, const InputInfo& ib) {
  switch (op) {
    case BinaryOp::Add:
      return {fit(g, ia), fit(g, ib)};
    case BinaryOp::Sub:
      return {fit(g, ia), ib.needs ? fit(neg(g), ib) : Tensor()};
    case BinaryOp::Mul:
      return {ia.needs ? fit(mul(g, b), ia) : Tensor(), ib.needs ? fit(mul(g, a), ib) : Tensor()};
    case BinaryOp::Div:
      return {ia.needs ? fit(div(g, b), ia) : Tensor(),
              ib.needs ? fit(neg(div(mul(g, a), square(b))), ib) : Tensor()};
    case BinaryOp::Pow: {
      Tensor ga, gb;
      if (ia.needs) ga = fit(mul(g, mul(b, pow(a, sub(b, 1.0)))), ia);
      if (ib.needs) {
        // d(a^b)/db = a^b log a, taken as 0 where a == 0 (log evaluated at 1 there).
        Tensor safe_a = add(a, mask_as(raw::compare(CompareOp::Eq, a, 0.0), a.dtype()));
        gb = fit(mul(g, mul(pow(a, b), log(safe_a))), ib);
      }
      return {ga, gb};
    }
    case BinaryOp::Maximum:
    case BinaryOp::Minimum: {
      // The larger (smaller) input takes the gradient; ties split it in half (as torch).
      const DType d = g.dtype();
      Tensor half_tie = raw::mul(mask_as(raw::compare(CompareOp::Eq, a, b), d), 0.5);
      const CompareOp wins = op == BinaryOp::Maximum ? CompareOp::Gt : CompareOp::Lt;
      Tensor ga, gb;
      if (ia.needs) ga = fit(mul(g, raw::add(mask_as(raw::compare(wins, a, b), d), half_tie)), ia);
      if (ib.needs) gb = fit(mul(g, raw::add(mask_as(raw::compare(wins, b, a), d), half_tie)), ib);
      return {ga, gb};
    }
  }
  CXR_FAIL("binary backward: unknown op");
}

bool reads_inputs(BinaryOp op) {
  return op != BinaryOp::Add && op != BinaryOp::Sub;
}

// Records `out` = a op b. a_val / b_val are what the backward reads for a and b (the inputs, or a
// constant standing for a scalar operand); `inputs` are the tensor operands: {a, b}, or just the
// one tensor of a scalar form, whose gradient is then the only one returned.
void record_binary(BinaryOp op, const Tensor& out, const std::vector<Tensor>& inputs,
                   const Tensor& a_val, const Tensor& b_val, const InputInfo& ia,
                   const InputInfo& ib) {
  if (!autograd::needs_grad(inputs)) return;
  const bool keep = reads_inputs(op);
  Tensor a = keep ? a_val : Tensor(), b = keep ? b_val : Tensor();
  // With one tensor input: 0 when it is a, 1 when it is b.
  const int only = inputs.size() == 2 ? -1 : (inputs[0].is_same(a_val) ? 0 : 1);
  autograd::record(
      binary_op_name(op), inputs, {out},
      [op, a, b, ia, ib, only](const Grads& g) {
        Grads both = binary_grads(op, g[0], a, b, ia, ib);
        return only < 0 ? both : Grads{both[size_t(only)]};
      },
      keep ? inputs : std::vector<Tensor>{});
}

InputInfo constant_info(const Tensor& t) {
  return {t.sizes(), t.dtype(), false};
}

// A scalar operand as a 0-dim constant of the dtype the op computes in, on the op's device.
Tensor scalar_like(double v, const Tensor& out) {
  return raw::scalar_tensor(v, out.dtype(), out.device());
}

// In place: self <- self op other, recorded with self's old history as input 0.
Tensor binary_inplace(BinaryOp op, const Tensor& self, const Tensor& other) {
  if (!autograd::needs_grad({self, other})) {
    raw::binary_(op, self, other);
    return self;
  }
  const char* name = binary_op_name(op);
  // Mul and Div need self's old value for other's gradient; self is overwritten, so copy it.
  Tensor old = other.requires_grad() && reads_inputs(op) ? raw::clone(self) : Tensor();
  Tensor result = raw::binary(op, self, other);
  CXR_CHECK(is_floating(self.dtype()) || !is_floating(result.dtype()), name, "_: the result type ",
            dtype_name(result.dtype()), " of ", describe(self), " and ", describe(other),
            " cannot be stored in place into the first tensor");
  const InputInfo is = info(self), io = info(other);
  autograd::record_inplace(name, self, result, {self, other},
                           [op, old, other, is, io](const Grads& g) {
                             return binary_grads(op, g[0], old, other, is, io);
                           },
                           {other});
  return self;
}

Tensor binary_inplace(BinaryOp op, const Tensor& self, double other) {
  if (!autograd::needs_grad({self})) {
    raw::binary_(op, self, other);
    return self;
  }
  Tensor result = raw::binary(op, self, other);
  const InputInfo is = info(self);
  Tensor c = raw::scalar_tensor(other, self.dtype(), self.device());
  autograd::record_inplace(binary_op_name(op), self, result, {self}, [op, c, is](const Grads& g) {
    return Grads{binary_grads(op, g[0], Tensor(), c, is, constant_info(c))[0]};
  });
  return self;
}

}  // namespace

// ---- unary ----

Tensor unary(UnaryOp op, const Tensor& x) {
  Tensor out = raw::unary(op, x);
  autograd::record(unary_op_name(op), {x}, {out},
                   [op, x](const Grads& g) {
                     if (autograd::GradMode::is_enabled())
                       return Grads{unary_grad_graph(op, g[0], x)};
                     return Grads{raw::unary_backward(op, g[0], x, Tensor())};
                   },
                   {x});
  return out;
}

Tensor neg(const Tensor& x) {
  return unary(UnaryOp::Neg, x);
}
Tensor abs(const Tensor& x) {
  return unary(UnaryOp::Abs, x);
}
Tensor sign(const Tensor& x) {
  return unary(UnaryOp::Sign, x);
}
Tensor square(const Tensor& x) {
  return unary(UnaryOp::Square, x);
}
Tensor reciprocal(const Tensor& x) {
  return unary(UnaryOp::Reciprocal, x);
}
Tensor exp(const Tensor& x) {
  return unary(UnaryOp::Exp, x);
}
Tensor log(const Tensor& x) {
  return unary(UnaryOp::Log, x);
}
Tensor log1p(const Tensor& x) {
  return unary(UnaryOp::Log1p, x);
}
Tensor sqrt(const Tensor& x) {
  return unary(UnaryOp::Sqrt, x);
}
Tensor rsqrt(const Tensor& x) {
  return unary(UnaryOp::Rsqrt, x);
}
Tensor sin(const Tensor& x) {
  return unary(UnaryOp::Sin, x);
}
Tensor cos(const Tensor& x) {
  return unary(UnaryOp::Cos, x);
}
Tensor tanh(const Tensor& x) {
  return unary(UnaryOp::Tanh, x);
}
Tensor sigmoid(const Tensor& x) {
  return unary(UnaryOp::Sigmoid, x);
}
Tensor relu(const Tensor& x) {
  return unary(UnaryOp::Relu, x);
}
Tensor silu(const Tensor& x) {
  return unary(UnaryOp::Silu, x);
}
Tensor gelu(const Tensor& x, bool approximate_tanh) {
  return unary(approximate_tanh ? UnaryOp::GeluTanh : UnaryOp::Gelu, x);
}
Tensor quick_gelu(const Tensor& x) {
  return unary(UnaryOp::QuickGelu, x);
}
Tensor erf(const Tensor& x) {
  return unary(UnaryOp::Erf, x);
}

// ---- parameterised activations ----

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  Tensor out = raw::leaky_relu(x, negative_slope);
  autograd::record("leaky_relu", {x}, {out},
                   [x, negative_slope](const Grads& g) {
                     return Grads{piecewise_grad(g[0], x, [&](const Tensor& gg, const Tensor& xx) {
                       return raw::leaky_relu_backward(gg, xx, negative_slope);
                     })};
                   },
                   {x});
  return out;
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  Tensor out = raw::softplus(x, beta, threshold);
  autograd::record(
      "softplus", {x}, {out},
      [x, beta, threshold](const Grads& g) {
        if (!autograd::GradMode::is_enabled())
          return Grads{raw::softplus_backward(g[0], x, beta, threshold)};
        // f' = sigmoid(beta x) below the threshold, 1 above it.
        Tensor above = raw::compare(CompareOp::Gt, raw::mul(x, beta), threshold);
        Tensor below = mask_as(raw::compare(CompareOp::Eq, above, 0.0), x.dtype());
        return Grads{mul(g[0], add(mul(sigmoid(mul(x, beta)), below), mask_as(above, x.dtype())))};
      },
      {x});
  return out;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  Tensor out = raw::clamp(x, lo, hi);
  autograd::record("clamp", {x}, {out},
                   [x, lo, hi](const Grads& g) {
                     return Grads{piecewise_grad(g[0], x, [&](const Tensor& gg, const Tensor& xx) {
                       return raw::clamp_backward(gg, xx, lo, hi);
                     })};
                   },
                   {x});
  return out;
}

Tensor clamp_min(const Tensor& x, double lo) {
  return clamp(x, lo, std::numeric_limits<double>::infinity());
}
Tensor clamp_max(const Tensor& x, double hi) {
  return clamp(x, -std::numeric_limits<double>::infinity(), hi);
}

Tensor lerp(const Tensor& a, const Tensor& b, double w) {
  Tensor out = raw::lerp(a, b, w);
  const InputInfo ia = info(a), ib = info(b);
  autograd::record("lerp", {a, b}, {out}, [w, ia, ib](const Grads& g) {
    return Grads{ia.needs ? fit(mul(g[0], 1.0 - w), ia) : Tensor(),
                 ib.needs ? fit(mul(g[0], w), ib) : Tensor()};
  });
  return out;
}

Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& w) {
  Tensor out = raw::lerp(a, b, w);
  const InputInfo ia = info(a), ib = info(b), iw = info(w);
  autograd::record("lerp", {a, b, w}, {out},
                   [a, b, w, ia, ib, iw](const Grads& g) {
                     return Grads{ia.needs ? fit(mul(g[0], sub(1.0, w)), ia) : Tensor(),
                                  ib.needs ? fit(mul(g[0], w), ib) : Tensor(),
                                  iw.needs ? fit(mul(g[0], sub(b, a)), iw) : Tensor()};
                   },
                   {a, b, w});
  return out;
}

// ---- binary ----

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = raw::binary(op, a, b);
  record_binary(op, out, {a, b}, a, b, info(a), info(b));
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, double b) {
  Tensor out = raw::binary(op, a, b);
  if (autograd::needs_grad({a})) {
    Tensor c = scalar_like(b, out);
    record_binary(op, out, {a}, a, c, info(a), constant_info(c));
  }
  return out;
}

Tensor binary(BinaryOp op, double a, const Tensor& b) {
  Tensor out = raw::binary(op, a, b);
  if (autograd::needs_grad({b})) {
    Tensor c = scalar_like(a, out);
    record_binary(op, out, {b}, c, b, constant_info(c), info(b));
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
Tensor add(const Tensor& a, double b) {
  return binary(BinaryOp::Add, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
Tensor sub(const Tensor& a, double b) {
  return binary(BinaryOp::Sub, a, b);
}
Tensor sub(double a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}
Tensor mul(const Tensor& a, double b) {
  return binary(BinaryOp::Mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}
Tensor div(const Tensor& a, double b) {
  return binary(BinaryOp::Div, a, b);
}
Tensor div(double a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}
Tensor pow(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Pow, a, b);
}
Tensor pow(double base, const Tensor& b) {
  return binary(BinaryOp::Pow, base, b);
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Maximum, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Minimum, a, b);
}

// x^e with a scalar exponent: the raw kernel does 2, 3, 0.5, -1, ... exactly.
Tensor pow(const Tensor& a, double exponent) {
  Tensor out = raw::pow(a, exponent);
  autograd::record("pow", {a}, {out},
                   [a, exponent](const Grads& g) {
                     if (exponent == 0.0) return Grads{mul(g[0], 0.0)};
                     return Grads{mul(g[0], mul(pow(a, exponent - 1.0), exponent))};
                   },
                   {a});
  return out;
}

Tensor operator-(const Tensor& x) {
  return neg(x);
}
Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
Tensor operator+(const Tensor& a, double b) {
  return add(a, b);
}
Tensor operator+(double a, const Tensor& b) {
  return add(b, a);
}
Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
Tensor operator-(const Tensor& a, double b) {
  return sub(a, b);
}
Tensor operator-(double a, const Tensor& b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
Tensor operator*(const Tensor& a, double b) {
  return mul(a, b);
}
Tensor operator*(double a, const Tensor& b) {
  return mul(b, a);
}
Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
Tensor operator/(const Tensor& a, double b) {
  return div(a, b);
}
Tensor operator/(double a, const Tensor& b) {
  return div(a, b);
}

// ---- comparisons ----

Tensor eq(const Tensor& a, const Tensor& b) {
  return raw::compare(CompareOp::Eq, a, b);
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return raw::compare(CompareOp::Ne, a, b);
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return raw::compare(CompareOp::Lt, a, b);
}
Tensor le(const Tensor& a, const Tensor& b) {
  return raw::compare(CompareOp::Le, a, b);
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return raw::compare(CompareOp::Gt, a, b);
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return raw::compare(CompareOp::Ge, a, b);
}
Tensor eq(const Tensor& a, double b) {
  return raw::compare(CompareOp::Eq, a, b);
}
Tensor ne(const Tensor& a, double b) {
  return raw::compare(CompareOp::Ne, a, b);
}
Tensor lt(const Tensor& a, double b) {
  return raw::compare(CompareOp::Lt, a, b);
}
Tensor le(const Tensor& a, double b) {
  return raw::compare(CompareOp::Le, a, b);
}
Tensor gt(const Tensor& a, double b) {
  return raw::compare(CompareOp::Gt, a, b);
}
Tensor ge(const Tensor& a, double b) {
  return raw::compare(CompareOp::Ge, a, b);
}
Tensor operator==(const Tensor& a, const Tensor& b) {
  return eq(a, b);
}
Tensor operator!=(const Tensor& a, const Tensor& b) {
  return ne(a, b);
}
Tensor operator<(const Tensor& a, const Tensor& b) {
  return lt(a, b);
}
Tensor operator<=(const Tensor& a, const Tensor& b) {
  return le(a, b);
}
Tensor operator>(const Tensor& a, const Tensor& b) {
  return gt(a, b);
}
Tensor operator>=(const Tensor& a, const Tensor& b) {
  return ge(a, b);
}
Tensor operator==(const Tensor& a, double b) {
  return eq(a, b);
}
Tensor operator!=(const Tensor& a, double b) {
  return ne(a, b);
}
Tensor operator<(const Tensor& a, double b) {
  return lt(a, b);
}
Tensor operator<=(const Tensor& a, double b) {
  return le(a, b);
}
Tensor operator>(const Tensor& a, double b) {
  return gt(a, b);
}
Tensor operator>=(const Tensor& a, double b) {
  return ge(a, b);
}

// ---- in place ----

Tensor add_(const Tensor& self, const Tensor& other) {
  return binary_inplace(BinaryOp::Add, self, other);
}
Tensor add_(const Tensor& self, double other) {
  return binary_inplace(BinaryOp::Add, self, other);
}
Tensor sub_(const Tensor& self, const Tensor& other) {
  return binary_inplace(BinaryOp::Sub, self, other);
}
Tensor sub_(const Tensor& self, double other) {
  return binary_inplace(BinaryOp::Sub, self, other);
}
Tensor mul_(const Tensor& self, const Tensor& other) {
  return binary_inplace(BinaryOp::Mul, self, other);
}
Tensor mul_(const Tensor& self, double other) {
  return binary_inplace(BinaryOp::Mul, self, other);
}
Tensor div_(const Tensor& self, const Tensor& other) {
  return binary_inplace(BinaryOp::Div, self, other);
}
Tensor div_(const Tensor& self, double other) {
  return binary_inplace(BinaryOp::Div, self, other);
}

Tensor clamp_(const Tensor& self, double lo, double hi) {
  if (!autograd::needs_grad({self})) {
    raw::clamp_(self, lo, hi);
    return self;
  }
  // The gradient mask comes from self's old values, so it is taken before the write.
  Tensor mask = raw::clamp_backward(raw::ones_like(self), self, lo, hi);
  autograd::record_inplace("clamp_", self, raw::clamp(self, lo, hi), {self},
                           [mask](const Grads& g) { return Grads{mul(g[0], mask)}; });
  return self;
}

}  // namespace cxr
