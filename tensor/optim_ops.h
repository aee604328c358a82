// Fused in-place optimizer-side updates on raw tensors (no autograd): one pass per parameter over
// the parameter, its gradient and its state, on the tensors' device (cpu or cuda). The math is
// tensor/optim_math.h, shared by both backends; nn/optim.cpp, nn/loss_scaler.cpp and
// nn/grad_utils.cpp keep the bookkeeping (state maps, step counters, schedules) on the host.
// Every tensor argument must be floating, of the parameter's shape and dtype and on its device.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::raw {

struct SgdParams {
  double lr = 0.0;
  double weight_decay = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
};

// One torch.optim.SGD step of `param` with `grad`. momentum_buffer is undefined when
// momentum == 0; first_step says the buffer is fresh (it then receives the gradient, whatever
// it held).
void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const SgdParams& p, bool first_step);

struct AdamParams {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // AdamW
  bool amsgrad = false;
};

// One torch.optim.Adam / AdamW step number `step` (>= 1, already incremented) of `param`.
// max_exp_avg_sq is required with amsgrad and ignored without.
void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, const AdamParams& p,
                  int64_t step);

// g *= inv_scale for every tensor of `grads` (float32 multiplier, rounded to each compute type);
// returns whether any element was inf/NaN before scaling. One host read-back on cuda.
bool unscale_and_check_finite_(const std::vector<Tensor>& grads, float inv_scale);

// shadow -= (1 − decay)·(shadow − param).
void ema_update_(const Tensor& shadow, const Tensor& param, double decay);

}  // namespace cxr::raw
