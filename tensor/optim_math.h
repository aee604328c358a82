// The per-element math of the optimizer-side updates (tensor/optim_ops.h), written once as CXR_HD
// functors: the CPU loops (tensor/cpu/optim_ops.cpp) and the CUDA kernels
// (tensor/cuda/optim_ops.cu) call the same operator(), so both backends round identically. The
// operation order follows torch.optim's single-tensor implementations (torch/optim/sgd.py
// _single_tensor_sgd, torch/optim/adam.py _single_tensor_adam) with every scalar rounded to the
// parameter's compute type, as ATen does; the scalars are prepared on the host by make().
#pragma once

#include <cmath>

#include "tensor/dtype.h"  // compute_t
#include "tensor/half.h"
#include "tensor/macros.h"  // CXR_HD

namespace cxr::optim_math {

// SGD with optional momentum, dampening, Nesterov and weight decay:
// g += wd·p; b = g on the first step, else b = μ·b + (1 − dampening)·g; g = g + μ·b (Nesterov)
// or b; p −= lr·g.
template <typename T>
struct SgdStep {
  using C = compute_t<T>;
  C wd, mu, keep, neg_lr;
  bool decay, nesterov, first;

  static SgdStep make(double lr, double weight_decay, double momentum, double dampening,
                      bool nesterov, bool first_step) {
    return {C(weight_decay),     C(momentum), C(1.0 - dampening), C(-lr),
            weight_decay != 0.0, nesterov,    first_step};
  }
  // Without momentum (no buffer).
  CXR_HD void operator()(T& p, const T& g0) const {
    C g = C(g0);
    if (decay) g = g + wd * C(p);
    p = T(C(p) + neg_lr * g);
  }
  // With the momentum buffer b (its old contents are ignored on the first step: torch clones the
  // gradient into it, without dampening).
  CXR_HD void operator()(T& p, const T& g0, T& b) const {
    C g = C(g0);
    if (decay) g = g + wd * C(p);
    const C buf = first ? g : C(b) * mu + keep * g;
    b = T(buf);
    g = nesterov ? g + mu * buf : buf;
    p = T(C(p) + neg_lr * g);
  }
};

// Adam / AdamW (Kingma & Ba 2015, Algorithm 1 with torch's eps placement), step t >= 1:
// g += wd·p (Adam) or p *= 1 − lr·wd (AdamW); m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g²;
// (AMSGrad: v̂ = max(v̂, v)); p −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps).
template <typename T>
struct AdamStep {
  using C = compute_t<T>;
  C wd, decay_factor, w1, b2, w2, bc2, eps, neg_step;
  bool coupled_decay, decoupled_decay, amsgrad, small_weight;

  static AdamStep make(double lr, double beta1, double beta2, double eps, double weight_decay,
                       bool decoupled, bool amsgrad, int64_t step) {
    const double step_size = lr / (1.0 - std::pow(beta1, double(step)));
    const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, double(step)));
    AdamStep s;
    s.wd = C(weight_decay);
    s.decay_factor = C(1.0 - lr * weight_decay);
    s.w1 = C(1.0 - beta1);
    s.b2 = C(beta2);
    s.w2 = C(1.0 - beta2);
    s.bc2 = C(bias_correction2_sqrt);
    s.eps = C(eps);
    s.neg_step = C(-step_size);
    s.coupled_decay = !decoupled && weight_decay != 0.0;
    s.decoupled_decay = decoupled && weight_decay != 0.0;
    s.amsgrad = amsgrad;
    s.small_weight = s.w1 < C(0.5);  // torch's lerp uses one of two forms by weight
    return s;
  }
  // vmax is only touched with amsgrad (without it callers may pass v again).
  CXR_HD void operator()(T& p, const T& g0, T& m, T& v, T& vmax) const {
    C pv = C(p), g = C(g0);
    if (coupled_decay) g = g + wd * pv;
    if (decoupled_decay) pv = pv * decay_factor;
    const C mv = C(m);
    const C mn = small_weight ? mv + w1 * (g - mv) : g - (g - mv) * (C(1) - w1);
    const C vn = C(v) * b2 + w2 * g * g;
    m = T(mn);
    v = T(vn);
    C second = C(v);  // re-read: the stored (rounded) values feed the update, as in torch
    if (amsgrad) {
      const C prev = C(vmax);
      vmax = T((prev < second || second != second) ? second : prev);  // NaN propagates
      second = C(vmax);
    }
    const C denom = std::sqrt(second) / bc2 + eps;
    p = T(pv + neg_step * C(m) / denom);
  }
};

// Loss-scaler unscale (ATen's _amp_foreach_non_finite_check_and_unscale_): v *= inv_scale, where
// inv_scale is the float32 reciprocal of the scale; returns whether v was inf/NaN before.
template <typename T>
struct UnscaleStep {
  using C = compute_t<T>;
  C inv;

  static UnscaleStep make(float inv_scale) { return {C(inv_scale)}; }
  CXR_HD bool operator()(T& v) const {
    const C x = C(v);
    const bool bad = !std::isfinite(x);
    v = T(x * inv);
    return bad;
  }
};

// EMA of weights (diffusers' EMAModel.step): s -= (1 − decay)·(s − p).
template <typename T>
struct EmaStep {
  using C = compute_t<T>;
  C one_minus_decay;

  static EmaStep make(double decay) { return {C(1.0 - decay)}; }
  CXR_HD void operator()(T& s, const T& p) const { s = T(C(s) - one_minus_decay * (C(s) - C(p))); }
};

}  // namespace cxr::optim_math
