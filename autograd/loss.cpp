// Loss functions. Forward values use raw ops (and, for the class-index losses, one loop over the
// samples, on the host also for device inputs); each loss records a single node whose backward
// is the analytic gradient:
//   mse:  d/dx (x-t)^2 = 2(x-t)                     l1:  d/dx |x-t| = sign(x-t)
//   bce:  l = (1-t)x + lw·softplus(-x), lw = 1+(pw-1)t:
//         dl/dx = (1-t) - lw·sigmoid(-x),  dl/dt = -x + (pw-1)·softplus(-x)
//   class losses on log-probabilities p (p = log_softmax(x) for cross_entropy), target class y,
//   smoothing e over C classes, weights w:
//         l = (1-e)·(-w_y p_y) + (e/C)·(-sum_c w_c p_c);  dl/dp_c = -(1-e) w_y [c=y] - (e/C) w_c
//   and dx = log_softmax_backward(dl/dp) (PyTorch aten/src/ATen/native/LossNLL.cpp defines the
//   same mean normalisation: the summed weights of the non-ignored targets).
#include "autograd/loss.h"

#include <cmath>
#include <vector>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "tensor/creation.h"
#include "tensor/elementwise.h"
#include "tensor/nn_ops.h"
#include "tensor/reduce.h"
#include "tensor/views.h"

namespace cxr {
namespace {

using Grads = std::vector<Tensor>;

Tensor reduce(const Tensor& l, Reduction r) {
  if (r == Reduction::Sum) return raw::sum(l);
  if (r == Reduction::Mean) return raw::mean(l);
  return l;
}

// d reduce(l) / d l_i times the upstream gradient g (g is l-shaped for None, a scalar otherwise;
// the caller's multiply broadcasts it).
Tensor reduce_grad(const Tensor& g, int64_t numel, Reduction r) {
  return r == Reduction::Mean ? raw::mul(g, 1.0 / double(numel)) : g;
}

std::string name_of(const Tensor& t) {
  return t.defined() ? describe(t) : std::string("undefined");
}

void check_floating_pair(const Tensor& input, const Tensor& target, const char* op) {
  CXR_CHECK(input.defined() && target.defined() && is_floating(input.dtype()) &&
                is_floating(target.dtype()),
            op, ": input and target must be floating tensors, got ", name_of(input), " and ",
            name_of(target));
  broadcast_shapes(input.sizes(), target.sizes(), op);  // throws naming the op and shapes
}

// Gradients for an (input, target) pair of an elementwise loss: gd has the broadcast shape.
Grads pair_grads(const Tensor& gd, const Tensor& input, const Tensor& target) {
  return {raw::to(raw::sum_to(gd, input.sizes()), input.dtype()),
          raw::to(raw::sum_to(raw::neg(gd), target.sizes()), target.dtype())};
}

// ---- class-index losses ---------------------------------------------------------------------

// input [C] or [N, C, d...] viewed as [n, c, k]; the per-sample loss has shape `out`.
struct ClassGeom {
  int64_t n = 1, c = 1, k = 1;
  int64_t cdim = 0;  // the class dim of the input
  Shape out;
};

ClassGeom class_geom(const Tensor& input, const char* op) {
  CXR_CHECK(input.defined() && is_floating(input.dtype()) && input.dim() >= 1, op,
            ": input must be a floating tensor [C], [N, C] or [N, C, d1, ...], got ",
            name_of(input));
  ClassGeom g;
  if (input.dim() == 1) {
    g.c = input.size(0);
    return g;
  }
  g.cdim = 1;
  g.n = input.size(0);
  g.c = input.size(1);
  g.out = {g.n};
  for (int64_t d = 2; d < input.dim(); ++d) {
    g.k *= input.size(d);
    g.out.push_back(input.size(d));
  }
  return g;
}

// Class weights as a float64 vector (empty when undefined), checked to be [C].
std::vector<double> class_weights(const Tensor& weight, int64_t c, const char* op) {
  if (!weight.defined()) return {};
  CXR_CHECK(is_floating(weight.dtype()) && weight.dim() == 1 && weight.size(0) == c, op,
            ": weight must be a floating [", c, "] tensor (one per class), got ", describe(weight));
  return weight.to_vector<double>();
}

// Target class indices, checked against the class count (ignore_index allowed).
std::vector<int64_t> class_targets(const Tensor& target, const ClassGeom& g, int64_t ignore,
                                   const char* op) {
  CXR_CHECK(target.dtype() == kInt64 || target.dtype() == kInt32, op,
            ": class-index target must be int64 or int32, got ", describe(target));
  CXR_CHECK(target.sizes() == g.out, op, ": target ", describe(target), " must have shape ",
            shape_str(g.out), " (the input without its class dim)");
  std::vector<int64_t> t = target.to_vector<int64_t>();
  for (size_t i = 0; i < t.size(); ++i)
    CXR_CHECK(t[i] == ignore || (t[i] >= 0 && t[i] < g.c), op, ": target ", t[i], " at position ",
              i, " is not a class in [0, ", g.c, ") nor ignore_index ", ignore);
  return t;
}

struct ClassLoss {
  Tensor per_sample;  // [n·k] in the work dtype
  double weight_sum = 0;
};

// Per-sample losses from log-probabilities logp (contiguous [n, c, k], work dtype).
template <typename T>
ClassLoss class_loss_forward(const Tensor& logp, const std::vector<int64_t>& t, const ClassGeom& g,
                             const std::vector<double>& w, int64_t ignore, double eps) {
  const T* p = logp.data<T>();
  ClassLoss r;
  r.per_sample = raw::empty({g.n * g.k}, logp.dtype());
  T* l = r.per_sample.data<T>();
  for (int64_t i = 0; i < g.n * g.k; ++i) {
    const int64_t n = i / g.k, k = i % g.k, y = t[size_t(i)];
    if (y == ignore) {
      l[i] = T(0);
      continue;
    }
    const double wy = w.empty() ? 1.0 : w[size_t(y)];
    double loss = -(1.0 - eps) * wy * double(p[(n * g.c + y) * g.k + k]);
    if (eps > 0) {
      double s = 0;
      for (int64_t c = 0; c < g.c; ++c)
        s += (w.empty() ? 1.0 : w[size_t(c)]) * double(p[(n * g.c + c) * g.k + k]);
      loss -= eps / double(g.c) * s;
    }
    l[i] = T(loss);
    r.weight_sum += wy;
  }
  return r;
}

// dL/dlogp ([n, c, k]) given the per-sample upstream gradient gs ([n·k] or one scalar).
template <typename T>
Tensor class_loss_backward(const Tensor& gs, const std::vector<int64_t>& t, const ClassGeom& g,
                           const std::vector<double>& w, int64_t ignore, double eps) {
  Tensor grad = raw::zeros({g.n, g.c, g.k}, gs.dtype());
  T* d = grad.data<T>();
  const T* gp = gs.data<T>();
  const bool scalar = gs.numel() == 1;
  for (int64_t i = 0; i < g.n * g.k; ++i) {
    const int64_t n = i / g.k, k = i % g.k, y = t[size_t(i)];
    if (y == ignore) continue;
    const double gi = double(scalar ? gp[0] : gp[i]);
    if (eps > 0)
      for (int64_t c = 0; c < g.c; ++c)
        d[(n * g.c + c) * g.k + k] = T(-gi * eps / double(g.c) * (w.empty() ? 1.0 : w[size_t(c)]));
    d[(n * g.c + y) * g.k + k] += T(-gi * (1.0 - eps) * (w.empty() ? 1.0 : w[size_t(y)]));
  }
  return grad;
}

// The shared implementation of nll_loss (from_logits = false) and index-target cross_entropy.
Tensor class_index_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                        int64_t ignore, Reduction red, double eps, bool from_logits,
                        const char* op) {
  const ClassGeom g = class_geom(input, op);
  const std::vector<double> w = class_weights(weight, g.c, op);
  const std::vector<int64_t> t = class_targets(target, g, ignore, op);
  const DType work = input.dtype() == kFloat64 ? kFloat64 : kFloat32;
  const Tensor logp_in = from_logits ? raw::log_softmax(input, g.cdim) : input;
  const Tensor logp = raw::contiguous(raw::reshape(raw::to(logp_in, work), {g.n, g.c, g.k}));
  // The per-sample loops run on the host: on a device the log-probabilities are copied to the cpu
  // (the softmax and its backward stay on the device), and the results are copied back.
  const Device device = input.device();
  const Tensor logp_host = raw::to(logp, Device::cpu());
  const ClassLoss cl = work == kFloat64
                           ? class_loss_forward<double>(logp_host, t, g, w, ignore, eps)
                           : class_loss_forward<float>(logp_host, t, g, w, ignore, eps);
  Tensor out;
  if (red == Reduction::None) {
    out = raw::reshape(cl.per_sample, g.out);
  } else {
    // Sum in float64, in sample order; mean divides by the summed target weights (0/0 = NaN when
    // every target is ignored, as PyTorch).
    const std::vector<double> v = cl.per_sample.to_vector<double>();
    double s = 0;
    for (double x : v) s += x;
    out = raw::scalar_tensor(red == Reduction::Sum ? s : s / cl.weight_sum, work);
  }
  out = raw::to(raw::to(out, input.dtype()), device);
  const double divisor = red == Reduction::Mean ? cl.weight_sum : 1.0;
  autograd::record(op, {input}, {out}, [=](const Grads& grads) {
    Tensor gs = raw::contiguous(raw::to(raw::to(grads[0], work), Device::cpu()));
    if (divisor != 1.0) gs = raw::mul(gs, 1.0 / divisor);
    gs = raw::reshape(gs, {gs.numel()});
    const Tensor dp_host = work == kFloat64 ? class_loss_backward<double>(gs, t, g, w, ignore, eps)
                                            : class_loss_backward<float>(gs, t, g, w, ignore, eps);
    const Tensor dp = raw::to(dp_host, device);
    Tensor dx = from_logits ? raw::log_softmax_backward(dp, logp, 1) : dp;
    return Grads{raw::to(raw::reshape(dx, input.sizes()), input.dtype())};
  });
  return out;
}

// Cross entropy with class-probability targets (same shape as the input).
Tensor cross_entropy_probs(const Tensor& input, const Tensor& target,
                           const CrossEntropyOptions& o) {
  const char* op = "cross_entropy";
  const ClassGeom g = class_geom(input, op);
  CXR_CHECK(target.sizes() == input.sizes(), op, ": probability target ", describe(target),
            " must have the input's shape ", describe(input));
  class_weights(o.weight, g.c, op);  // validates
  // Weights as [C, 1, ...] so they broadcast along the class dim.
  Tensor wb;
  if (o.weight.defined()) {
    Shape ws(size_t(input.dim() - g.cdim), 1);
    ws[0] = g.c;
    wb = raw::reshape(raw::to(o.weight, input.dtype()), ws);
  }
  const double eps = o.label_smoothing;
  const Tensor logp = raw::log_softmax(input, g.cdim);
  const Tensor tp = eps > 0 ? raw::add(raw::mul(target, 1.0 - eps), eps / double(g.c)) : target;
  Tensor prod = raw::mul(logp, tp);
  if (wb.defined()) prod = raw::mul(prod, wb);
  Tensor per = raw::neg(raw::sum(prod, {g.cdim}));
  const int64_t samples = g.n * g.k;
  Tensor out = o.reduction == Reduction::None  ? per
               : o.reduction == Reduction::Sum ? raw::sum(per)
                                               : raw::mul(raw::sum(per), 1.0 / double(samples));
  out = raw::to(out, input.dtype());
  const Reduction red = o.reduction;
  const int64_t cdim = g.cdim;
  autograd::record(op, {input, target}, {out}, [=](const Grads& grads) {
    // Upstream gradient per sample, with the class dim restored for broadcasting.
    Tensor gs = red == Reduction::Mean ? raw::mul(grads[0], 1.0 / double(samples)) : grads[0];
    if (red == Reduction::None) gs = raw::unsqueeze(gs, cdim);
    Tensor gw = wb.defined() ? raw::mul(gs, wb) : gs;  // -dl/d(logp · tp)
    Tensor dlogp = raw::neg(raw::mul(gw, tp));
    Tensor dx =
        raw::log_softmax_backward(raw::contiguous(raw::expand(dlogp, input.sizes())), logp, cdim);
    Tensor dt = raw::neg(raw::mul(raw::mul(gw, logp), 1.0 - eps));
    return Grads{raw::to(dx, input.dtype()),
                 raw::to(raw::sum_to(dt, target.sizes()), target.dtype())};
  });
  return out;
}

// Losses are on autocast's float32 list (autograd/autocast.h): inside a scope, float16/bfloat16
// inputs are cast up (differentiably) and the loss is computed in float32.
bool needs_upcast(std::initializer_list<Tensor> tensors) {
  if (!autocast_dtype()) return false;
  for (const Tensor& t : tensors)
    if (t.defined() && (t.dtype() == kFloat16 || t.dtype() == kBFloat16)) return true;
  return false;
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (needs_upcast({input, target}))
    return mse_loss(autocast_upcast(input), autocast_upcast(target), reduction);
  check_floating_pair(input, target, "mse_loss");
  const Tensor d = raw::sub(input, target);
  Tensor out = reduce(raw::mul(d, d), reduction);
  autograd::record("mse_loss", {input, target}, {out}, [=](const Grads& g) {
    Tensor gd = raw::mul(reduce_grad(g[0], d.numel(), reduction), raw::mul(d, 2.0));
    return pair_grads(gd, input, target);
  });
  return out;
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (needs_upcast({input, target}))
    return l1_loss(autocast_upcast(input), autocast_upcast(target), reduction);
  check_floating_pair(input, target, "l1_loss");
  const Tensor d = raw::sub(input, target);
  Tensor out = reduce(raw::abs(d), reduction);
  autograd::record("l1_loss", {input, target}, {out}, [=](const Grads& g) {
    Tensor gd = raw::mul(reduce_grad(g[0], d.numel(), reduction), raw::unary(UnaryOp::Sign, d));
    return pair_grads(gd, input, target);
  });
  return out;
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  if (needs_upcast({input, target, o.weight})) {
    CrossEntropyOptions up = o;
    up.weight = autocast_upcast(o.weight);
    return cross_entropy(autocast_upcast(input), autocast_upcast(target), up);
  }
  CXR_CHECK(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0,
            "cross_entropy: label_smoothing must be in [0, 1], got ", o.label_smoothing);
  CXR_CHECK(target.defined(), "cross_entropy: target is undefined");
  if (is_floating(target.dtype())) return cross_entropy_probs(input, target, o);
  return class_index_loss(input, target, o.weight, o.ignore_index, o.reduction, o.label_smoothing,
                          true, "cross_entropy");
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                int64_t ignore_index, Reduction reduction) {
  if (needs_upcast({input, weight}))
    return nll_loss(autocast_upcast(input), target, autocast_upcast(weight), ignore_index,
                    reduction);
  CXR_CHECK(target.defined(), "nll_loss: target is undefined");
  return class_index_loss(input, target, weight, ignore_index, reduction, 0.0, false, "nll_loss");
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, const Tensor& pos_weight,
                                        Reduction reduction) {
  if (needs_upcast({input, target, weight, pos_weight}))
    return binary_cross_entropy_with_logits(autocast_upcast(input), autocast_upcast(target),
                                            autocast_upcast(weight), autocast_upcast(pos_weight),
                                            reduction);
  const char* op = "binary_cross_entropy_with_logits";
  check_floating_pair(input, target, op);
  CXR_CHECK(target.sizes() == input.sizes(), op, ": target ", describe(target),
            " must have the input's shape ", describe(input));
  for (const Tensor* t : {&weight, &pos_weight})
    if (t->defined()) {
      CXR_CHECK(is_floating(t->dtype()), op, ": weight and pos_weight must be floating, got ",
                describe(*t));
      broadcast_shapes(t->sizes(), input.sizes(), op);
    }
  const Tensor& x = input;
  const Tensor& t = target;
  // softplus(-x) = max(-x, 0) + log1p(exp(-|x|)), exact for any x.
  const Tensor sp =
      raw::add(raw::relu(raw::neg(x)), raw::unary(UnaryOp::Log1p, raw::exp(raw::neg(raw::abs(x)))));
  const Tensor one_minus_t = raw::add(raw::neg(t), 1.0);
  const Tensor pw_minus_1 = pos_weight.defined() ? raw::add(pos_weight, -1.0) : Tensor();
  const Tensor lw = pos_weight.defined() ? raw::add(raw::mul(pw_minus_1, t), 1.0) : Tensor();
  Tensor l = raw::add(raw::mul(one_minus_t, x), lw.defined() ? raw::mul(lw, sp) : sp);
  if (weight.defined()) l = raw::mul(l, weight);
  Tensor out = reduce(l, reduction);
  const int64_t numel = l.numel();
  autograd::record(op, {input, target}, {out}, [=](const Grads& g) {
    Tensor gl = reduce_grad(g[0], numel, reduction);
    if (weight.defined()) gl = raw::mul(gl, weight);
    const Tensor s = raw::sigmoid(raw::neg(x));
    Tensor dx = raw::mul(gl, raw::sub(one_minus_t, lw.defined() ? raw::mul(lw, s) : s));
    Tensor dt_term = raw::neg(x);
    if (pw_minus_1.defined()) dt_term = raw::add(dt_term, raw::mul(pw_minus_1, sp));
    Tensor dt = raw::mul(gl, dt_term);
    return Grads{raw::to(raw::sum_to(dx, input.sizes()), input.dtype()),
                 raw::to(raw::sum_to(dt, target.sizes()), target.dtype())};
  });
  return out;
}

}  // namespace cxr
