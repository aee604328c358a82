// Gradient clipping, accumulation and the EMA of weights. Clipping follows
// torch/nn/utils/clip_grad.py (the 1e-6 in the coefficient included); the EMA follows diffusers'
// training_utils.EMAModel (step / get_decay).
#include "nn/grad_utils.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "autograd/grad_mode.h"  // NoGradGuard
#include "tensor/creation.h"
#include "tensor/elementwise.h"
#include "tensor/indexing.h"   // raw::cat of per-tensor norms
#include "tensor/optim_ops.h"  // raw::ema_update_
#include "tensor/reduce.h"     // raw::norm
#include "tensor/views.h"      // raw::reshape

namespace cxr::nn {

namespace {

// sum |x|^p (p finite, > 0) or max |x| (p = inf) of a contiguous tensor, in double. Fixed blocks
// are reduced in parallel and combined in order, so the result does not depend on thread count.
template <typename T>
double reduce_abs_pow(const T* x, int64_t n, double p) {
  constexpr int64_t kBlock = 1 << 15;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(size_t(blocks), 0.0);
  const bool is_max = std::isinf(p), square = p == 2.0;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    double acc = 0.0;
    for (int64_t i = b * kBlock; i < end; ++i) {
      const double a = std::abs(double(x[i]));
      if (is_max)
        acc = (a > acc || a != a) ? a : acc;  // NaN wins, as torch's max
      else
        acc += square ? a * a : std::pow(a, p);
    }
    partial[size_t(b)] = acc;
  }
  double total = 0.0;
  for (double v : partial) total = is_max ? ((v > total || v != v) ? v : total) : total + v;
  return total;
}

std::vector<Tensor> defined_grads(const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    CXR_CHECK(p.defined(), "clip_grad: a parameter is undefined");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    CXR_CHECK(is_floating(g.dtype()), "clip_grad: gradient ", describe(g),
              "; expected a floating tensor");
    grads.push_back(g);
  }
  return grads;
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params, double norm_type) {
  CXR_CHECK(norm_type > 0.0, "grad_norm: norm_type must be > 0 (or inf), got ", norm_type);
  const bool is_max = std::isinf(norm_type);
  double total = 0.0;
  // Device gradients: each one's norm in float64 on its device, then the norm of those norms
  // (sum |g|^p over all elements, grouped by tensor), read back once per device.
  std::vector<std::pair<Device, std::vector<Tensor>>> device_norms;
  for (const Tensor& g : defined_grads(params)) {
    if (g.numel() == 0) continue;  // adds nothing to any norm
    if (!g.device().is_cpu()) {
      const Tensor n = raw::reshape(raw::norm(raw::to(g, kFloat64), norm_type), {1});
      auto it = std::find_if(device_norms.begin(), device_norms.end(),
                             [&](const auto& entry) { return entry.first == g.device(); });
      if (it == device_norms.end()) it = device_norms.insert(device_norms.end(), {g.device(), {}});
      it->second.push_back(n);
      continue;
    }
    const Tensor c = raw::contiguous(g);
    auto kernel = [&]<typename T>() { return reduce_abs_pow(c.data<T>(), c.numel(), norm_type); };
    const double part = CXR_DISPATCH_FLOAT(c.dtype(), "grad_norm", kernel);
    total = is_max ? ((part > total || part != part) ? part : total) : total + part;
  }
  for (const auto& [device, norms] : device_norms) {
    const double n = raw::norm(raw::cat(norms, 0), norm_type).item();
    const double part = is_max ? n : std::pow(n, norm_type);
    total = is_max ? ((part > total || part != part) ? part : total) : total + part;
  }
  if (is_max) return total;
  return norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  CXR_CHECK(max_norm >= 0.0, "clip_grad_norm_: max_norm must be >= 0, got ", max_norm);
  const double total = grad_norm(params, norm_type);
  CXR_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of ",
            "order ", norm_type, " of the gradients is non-finite (", total,
            "), so it cannot be clipped");
  const double coef = std::min(max_norm / (total + 1e-6), 1.0);  // NaN stays NaN, as torch
  if (coef != 1.0) scale_grads_(params, coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  CXR_CHECK(clip_value >= 0.0, "clip_grad_value_: clip_value must be >= 0, got ", clip_value);
  autograd::NoGradGuard no_grad;
  for (const Tensor& g : defined_grads(params)) raw::clamp_(g, -clip_value, clip_value);
}

void scale_grads_(const std::vector<Tensor>& params, double factor) {
  autograd::NoGradGuard no_grad;
  for (const Tensor& g : defined_grads(params)) raw::binary_(BinaryOp::Mul, g, factor);
}

// ---- GradAccumulator ----

GradAccumulator::GradAccumulator(int64_t micro_batches) : micro_batches_(micro_batches) {
  CXR_CHECK(micro_batches >= 1, "GradAccumulator: micro_batches must be >= 1, got ", micro_batches);
}

bool GradAccumulator::micro_step() {
  if (++count_ < micro_batches_) return false;
  count_ = 0;
  return true;
}

double GradAccumulator::partial_correction() const {
  return count_ == 0 ? 1.0 : double(micro_batches_) / double(count_);
}

// ---- EMA ----

EMA::EMA(const std::vector<Tensor>& params, const EMAOptions& options)
    : params_(params), options_(options) {
  CXR_CHECK(options.decay >= 0.0 && options.decay <= 1.0 && options.min_decay >= 0.0 &&
                options.min_decay <= 1.0,
            "EMA: decay and min_decay must lie in [0, 1], got ", options.decay, " and ",
            options.min_decay);
  CXR_CHECK(options.inv_gamma > 0.0 && options.power > 0.0, "EMA: inv_gamma and power must be > 0");
  for (size_t i = 0; i < params.size(); ++i) {
    CXR_CHECK(params[i].defined() && is_floating(params[i].dtype()), "EMA: tensor ", i,
              " must be a defined floating tensor, got ",
              params[i].defined() ? describe(params[i]) : std::string("undefined"));
    shadow_.push_back(raw::clone(params[i]));
  }
}

double EMA::decay_at(int64_t update) const {
  const int64_t t = std::max<int64_t>(0, update - options_.update_after_step - 1);
  if (t <= 0) return 0.0;
  double d = options_.decay;
  if (options_.warmup == EMAWarmup::Ratio)
    d = std::min(d, (1.0 + double(t)) / (10.0 + double(t)));
  else if (options_.warmup == EMAWarmup::Power)
    d = std::min(d, 1.0 - std::pow(1.0 + double(t) / options_.inv_gamma, -options_.power));
  return std::max(d, options_.min_decay);
}

void EMA::update() {
  autograd::NoGradGuard no_grad;
  ++updates_;
  last_decay_ = decay_at(updates_);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor& s = shadow_[i];
    CXR_CHECK(p.sizes() == s.sizes() && p.dtype() == s.dtype(), "EMA.update: tensor ", i,
              " is now ", describe(p), " but its average is ", describe(s));
    if (!p.requires_grad()) {
      raw::copy_(s, p);
      continue;
    }
    raw::ema_update_(s, p, last_decay_);
    s.storage()->bump_version();
  }
}

void EMA::copy_to(const std::vector<Tensor>& params) const {
  CXR_CHECK(params.size() == shadow_.size(), "EMA.copy_to: got ", params.size(),
            " tensors but the EMA holds ", shadow_.size());
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    CXR_CHECK(params[i].sizes() == shadow_[i].sizes(), "EMA.copy_to: tensor ", i, " is ",
              describe(params[i]), " but its average is ", describe(shadow_[i]));
    raw::copy_(params[i], shadow_[i]);
  }
}

std::map<std::string, Tensor> EMA::state_dict() const {
  std::map<std::string, Tensor> out;
  out["num_updates"] = raw::scalar_tensor(double(updates_), kInt64);
  for (size_t i = 0; i < shadow_.size(); ++i)
    out["shadow." + std::to_string(i)] = raw::clone(shadow_[i]);
  return out;
}

void EMA::load_state_dict(const std::map<std::string, Tensor>& state) {
  std::vector<Tensor> shadow(shadow_.size());
  int64_t updates = -1;
  for (const auto& [key, t] : state) {
    if (key == "num_updates") {
      CXR_CHECK(t.numel() == 1 && t.dtype() == kInt64 && t.item() >= 0,
                "EMA.load_state_dict: 'num_updates' must be a non-negative int64 scalar, got ",
                describe(t));
      updates = int64_t(t.item());
      continue;
    }
    size_t i = 0;
    bool ok = key.rfind("shadow.", 0) == 0 && key.size() > 7 &&
              key.find_first_not_of("0123456789", 7) == std::string::npos && key.size() < 17;
    if (ok) i = std::stoull(key.substr(7));
    CXR_CHECK(ok && i < shadow_.size(), "EMA.load_state_dict: unexpected key '", key, "' (the EMA ",
              "holds ", shadow_.size(), " tensors)");
    CXR_CHECK(t.sizes() == shadow_[i].sizes() && t.dtype() == shadow_[i].dtype(),
              "EMA.load_state_dict: '", key, "' is ", describe(t), " but the average is ",
              describe(shadow_[i]));
    shadow[i] = raw::empty_like(shadow_[i]);  // a copy on the average's device
    raw::copy_(shadow[i], t);
  }
  CXR_CHECK(updates >= 0, "EMA.load_state_dict: missing key 'num_updates'");
  for (size_t i = 0; i < shadow.size(); ++i)
    CXR_CHECK(shadow[i].defined(), "EMA.load_state_dict: missing key 'shadow.", i, "'");
  shadow_ = std::move(shadow);
  updates_ = updates;
  last_decay_ = updates_ > 0 ? decay_at(updates_) : 0.0;
}

}  // namespace cxr::nn
