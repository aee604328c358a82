// Dynamic loss scaling for mixed-precision training, with the semantics of
// torch.cuda.amp.GradScaler: the loss is multiplied by a scale before backward so small float16
// gradients do not flush to zero; before the optimizer step the gradients are divided by it
// again and checked for inf/NaN. A step with non-finite gradients is skipped and the scale backs
// off; after growth_interval clean steps in a row it grows. CPU bookkeeping plus one fused pass
// per gradient on its device (raw::unscale_and_check_finite_), so it works on cpu and cuda.
//
//   Tensor loss = ...; backward(scaler.scale(loss));
//   scaler.unscale_(opt);  // optional: only needed to clip or inspect the true gradients
//   clip_grad_norm_(params, 1.0);
//   scaler.step(opt);      // skipped when a gradient is inf/NaN
//   scaler.update();
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace cxr::nn {

class Optimizer;

struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // disabled: scale() returns the loss, step() just steps
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& options = {});

  // loss * scale (differentiable), or the loss itself when disabled.
  Tensor scale(const Tensor& loss) const;
  // Divides the gradients of the optimizer's parameters by the scale in place and records
  // whether any was inf/NaN. At most once per optimizer between update() calls (throws on a
  // second call, as torch).
  void unscale_(Optimizer& optimizer);
  // Unscales if not yet done, then runs optimizer.step() unless a gradient was inf/NaN. Returns
  // whether the step ran.
  bool step(Optimizer& optimizer);
  // Adjusts the scale after the step(s) of this iteration: backoff_factor on inf/NaN (and the
  // clean-step count restarts), growth_factor after growth_interval clean steps in a row.
  void update();

  double get_scale() const { return enabled_ ? double(scale_) : 1.0; }
  bool enabled() const { return enabled_; }
  // Whether the last unscale_ of this iteration found inf/NaN gradients.
  bool found_inf() const { return found_inf_; }
  // Clean steps since the last growth or backoff.
  int64_t growth_tracker() const { return growth_tracker_; }

  // "scale" (float32), "growth_tracker" (int64) and the options "growth_factor",
  // "backoff_factor" (float64) and "growth_interval" (int64), as torch's state_dict.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

 private:
  float scale_;  // float32, as torch keeps it on the device
  double growth_factor_, backoff_factor_;
  int64_t growth_interval_;
  bool enabled_;
  int64_t growth_tracker_ = 0;
  bool found_inf_ = false;
  struct PerOptimizer {
    bool unscaled = false, stepped = false, found_inf = false;
  };
  std::map<const Optimizer*, PerOptimizer> iteration_;  // this iteration's optimizers
};

}  // namespace cxr::nn
