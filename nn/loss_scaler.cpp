// Dynamic loss scaler. Semantics of torch/amp/grad_scaler.py and ATen's
// _amp_foreach_non_finite_check_and_unscale_ / _amp_update_scale_ (the reciprocal of the scale
// is taken in double and rounded to float32; the finiteness check reads the gradient before it
// is multiplied).
#include "nn/loss_scaler.h"

#include <algorithm>  // std::find_if
#include <cmath>
#include <utility>
#include <vector>

#include "autograd/elementwise.h"  // differentiable mul for scale()
#include "autograd/grad_mode.h"    // NoGradGuard
#include "nn/optim.h"
#include "tensor/creation.h"
#include "tensor/optim_ops.h"  // raw::unscale_and_check_finite_

namespace cxr::nn {

LossScaler::LossScaler(const LossScalerOptions& options)
    : scale_(float(options.init_scale)),
      growth_factor_(options.growth_factor),
      backoff_factor_(options.backoff_factor),
      growth_interval_(options.growth_interval),
      enabled_(options.enabled) {
  CXR_CHECK(std::isfinite(scale_) && scale_ > 0.0f,
            "LossScaler: init_scale must be a positive finite float32, got ", options.init_scale);
  CXR_CHECK(growth_factor_ > 1.0, "LossScaler: growth_factor must be > 1, got ", growth_factor_);
  CXR_CHECK(backoff_factor_ > 0.0 && backoff_factor_ < 1.0,
            "LossScaler: backoff_factor must lie in (0, 1), got ", backoff_factor_);
  CXR_CHECK(growth_interval_ > 0, "LossScaler: growth_interval must be > 0, got ",
            growth_interval_);
}

Tensor LossScaler::scale(const Tensor& loss) const {
  CXR_CHECK(loss.defined() && is_floating(loss.dtype()),
            "LossScaler.scale: expected a floating loss tensor, got ",
            loss.defined() ? describe(loss) : std::string("undefined"));
  if (!enabled_) return loss;
  return mul(loss, double(scale_));
}

void LossScaler::unscale_(Optimizer& optimizer) {
  if (!enabled_) return;
  PerOptimizer& state = iteration_[&optimizer];
  CXR_CHECK(!state.unscaled, "LossScaler.unscale_: already called for this optimizer since the ",
            "last update()");
  CXR_CHECK(!state.stepped, "LossScaler.unscale_: called after step(); call it before");
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const ParamGroup& group : optimizer.param_groups()) {
    for (const Tensor& p : group.params) {
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      CXR_CHECK(is_floating(g.dtype()), "LossScaler.unscale_: gradient ", describe(g),
                "; expected a floating tensor");
      grads.push_back(g);
    }
  }
  // One fused pass per gradient; gradients on different devices are unscaled device by device
  // (one host read-back of the inf/NaN flag per device).
  const float inv_scale = float(1.0 / double(scale_));
  bool found = false;
  std::vector<std::pair<Device, std::vector<Tensor>>> by_device;
  for (const Tensor& g : grads) {
    auto it = std::find_if(by_device.begin(), by_device.end(),
                           [&](const auto& entry) { return entry.first == g.device(); });
    if (it == by_device.end()) it = by_device.insert(by_device.end(), {g.device(), {}});
    it->second.push_back(g);
  }
  for (const auto& [device, list] : by_device) {
    found = raw::unscale_and_check_finite_(list, inv_scale) || found;
    for (const Tensor& g : list) g.storage()->bump_version();
  }
  state.unscaled = true;
  state.found_inf = found;
  found_inf_ = found_inf_ || state.found_inf;
}

bool LossScaler::step(Optimizer& optimizer) {
  if (!enabled_) {
    optimizer.step();
    return true;
  }
  PerOptimizer& state = iteration_[&optimizer];
  CXR_CHECK(!state.stepped, "LossScaler.step: already called for this optimizer since the last ",
            "update()");
  if (!state.unscaled) unscale_(optimizer);
  PerOptimizer& after = iteration_[&optimizer];
  after.stepped = true;
  if (after.found_inf) return false;
  optimizer.step();
  return true;
}

void LossScaler::update() {
  if (!enabled_) return;
  CXR_CHECK(!iteration_.empty(), "LossScaler.update: no inf/NaN checks were recorded since the ",
            "last update(); call unscale_() or step() first");
  bool any_inf = false;
  for (const auto& [opt, state] : iteration_) any_inf = any_inf || state.found_inf;
  if (any_inf) {
    scale_ = float(double(scale_) * backoff_factor_);
    growth_tracker_ = 0;
  } else if (growth_tracker_ + 1 == growth_interval_) {
    const float grown = float(double(scale_) * growth_factor_);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  } else {
    ++growth_tracker_;
  }
  iteration_.clear();
  found_inf_ = false;
}

std::map<std::string, Tensor> LossScaler::state_dict() const {
  return {{"scale", raw::scalar_tensor(double(scale_), kFloat32)},
          {"growth_tracker", raw::scalar_tensor(double(growth_tracker_), kInt64)},
          {"growth_factor", raw::scalar_tensor(growth_factor_, kFloat64)},
          {"backoff_factor", raw::scalar_tensor(backoff_factor_, kFloat64)},
          {"growth_interval", raw::scalar_tensor(double(growth_interval_), kInt64)}};
}

void LossScaler::load_state_dict(const std::map<std::string, Tensor>& state) {
  const char* keys[] = {"scale", "growth_tracker", "growth_factor", "backoff_factor",
                        "growth_interval"};
  for (const char* key : keys) {
    CXR_CHECK(state.count(key), "LossScaler.load_state_dict: missing key '", key, "'");
    CXR_CHECK(state.at(key).numel() == 1, "LossScaler.load_state_dict: '", key,
              "' must be a scalar, got ", describe(state.at(key)));
  }
  for (const auto& [key, t] : state) {
    bool known = false;
    for (const char* k : keys) known = known || key == k;
    CXR_CHECK(known, "LossScaler.load_state_dict: unexpected key '", key, "'");
  }
  const double scale = state.at("scale").item();
  const double tracker = state.at("growth_tracker").item();
  const double interval = state.at("growth_interval").item();
  constexpr double kMaxCount = 9.0e18;  // within int64
  CXR_CHECK(std::isfinite(scale) && scale > 0.0 && tracker >= 0.0 && tracker < kMaxCount &&
                interval > 0.0 && interval < kMaxCount,
            "LossScaler.load_state_dict: invalid state (scale ", scale, ", growth_tracker ",
            tracker, ", growth_interval ", interval, ")");
  scale_ = float(scale);
  growth_tracker_ = int64_t(tracker);
  growth_factor_ = state.at("growth_factor").item();
  backoff_factor_ = state.at("backoff_factor").item();
  growth_interval_ = int64_t(interval);
  iteration_.clear();
  found_inf_ = false;
}

}  // namespace cxr::nn
