// Gradient utilities for training loops: clipping by global norm and by value (the semantics of
// torch.nn.utils.clip_grad_norm_ / clip_grad_value_), gradient accumulation over micro-batches,
// and an exponential moving average of weights (diffusers' EMAModel) with state save/restore.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

// Scales the gradients of `params` in place so that their joint p-norm is at most max_norm:
// g *= min(1, max_norm / (total + 1e-6)). Returns the total norm before clipping (the p-norm of
// all gradients as one vector; norm_type may be +inf for the largest |g|). Parameters without a
// gradient are ignored (no gradient at all gives 0). A non-finite total throws when
// error_if_nonfinite, else it propagates into the gradients as in torch.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
// The total norm alone (what clip_grad_norm_ returns), without changing the gradients.
double grad_norm(const std::vector<Tensor>& params, double norm_type = 2.0);
// Clamps every gradient element to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);
// g *= factor for every defined gradient.
void scale_grads_(const std::vector<Tensor>& params, double factor);

// Gradient accumulation: one optimizer step per `micro_batches` backward passes. Multiply each
// micro-batch loss by loss_scale() so the accumulated gradient is that of the mean loss over the
// whole batch, and step when micro_step() says so:
//   loss = mean_loss(micro_batch) * acc.loss_scale(); backward(loss);
//   if (acc.micro_step()) { opt.step(); opt.zero_grad(); }
// An epoch that ends mid-batch can still step after scale_grads_(params, acc.partial_correction()).
class GradAccumulator {
 public:
  explicit GradAccumulator(int64_t micro_batches);
  int64_t micro_batches() const { return micro_batches_; }
  double loss_scale() const { return 1.0 / double(micro_batches_); }
  // Counts one finished backward; true (and the count restarts) when a full batch has accumulated.
  bool micro_step();
  // Backward passes accumulated since the last full batch.
  int64_t count() const { return count_; }
  // micro_batches / count: rescales gradients accumulated over a partial batch of `count` to the
  // mean over those micro-batches. 1 when count is 0.
  double partial_correction() const;
  void reset() { count_ = 0; }

 private:
  int64_t micro_batches_;
  int64_t count_ = 0;
};

// How the EMA decay ramps up over the first updates (diffusers' EMAModel.get_decay); t counts
// updates after update_after_step, and t <= 0 copies the weights (decay 0).
enum class EMAWarmup {
  None,   // decay
  Ratio,  // min(decay, (1 + t) / (10 + t))            diffusers' default (use_ema_warmup=False)
  Power,  // min(decay, 1 - (1 + t / inv_gamma)^-power)  diffusers' use_ema_warmup=True
};

struct EMAOptions {
  double decay = 0.9999;
  double min_decay = 0.0;
  int64_t update_after_step = 0;
  EMAWarmup warmup = EMAWarmup::None;
  double inv_gamma = 1.0;
  double power = 2.0 / 3.0;
};

// Exponential moving average of weights: shadow -= (1 - decay_t)·(shadow - param) after each
// optimizer step; tensors that do not require grad (buffers, frozen weights) are copied.
class EMA {
 public:
  // Keeps handles to `params` (updated in place by the optimizer) and copies of them as the
  // initial averages.
  EMA(const std::vector<Tensor>& params, const EMAOptions& options = {});
  // The decay of update number `update` (1-based, as diffusers' optimization_step).
  double decay_at(int64_t update) const;
  // One update from the current parameter values (under no-grad, one pass per tensor).
  void update();
  // Writes the averages into `params` (same shapes and dtypes), e.g. before evaluation.
  void copy_to(const std::vector<Tensor>& params) const;
  const std::vector<Tensor>& shadow() const { return shadow_; }
  int64_t num_updates() const { return updates_; }
  // The decay used by the last update.
  double last_decay() const { return last_decay_; }

  // "shadow.<i>" (the averages) and "num_updates" (int64).
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

 private:
  std::vector<Tensor> params_;
  std::vector<Tensor> shadow_;
  EMAOptions options_;
  int64_t updates_ = 0;
  double last_decay_ = 0.0;
};

}  // namespace cxr::nn
