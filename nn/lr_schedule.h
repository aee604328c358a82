// Learning-rate schedules: pure functions of the optimizer step (the multiplier of a group's base
// learning rate), and a scheduler that writes them into an optimizer's groups as torch's
// lr_scheduler does (the constructor sets step 0's rate; step() after each optimizer step).
//
// Step numbering: step 0 is the first optimizer step. Warm-up ramps linearly from 0 at step 0
// to 1 at step `warmup_steps` (the transformers/diffusers get_*_schedule_with_warmup lambdas).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

class Optimizer;

// 1 after warm-up (diffusers' "constant_with_warmup"; "constant" when warmup_steps is 0).
double constant_factor(int64_t step, int64_t warmup_steps = 0);
// Warm-up, then linear decay to 0 at total_steps (transformers' get_linear_schedule_with_warmup);
// 0 after total_steps. With no warm-up it equals torch's LinearLR(1, 0, total_steps).
double linear_factor(int64_t step, int64_t warmup_steps, int64_t total_steps);
// Warm-up, then min_ratio + (1 - min_ratio)·(1 + cos(π·progress))/2 with progress going from 0
// to 1 over the remaining steps (transformers' get_cosine_schedule_with_warmup with 0.5 cycles,
// and its min-lr variant); min_ratio after total_steps. With no warm-up it is torch's
// CosineAnnealingLR(T_max = total_steps, eta_min = min_ratio·lr) in closed form.
double cosine_factor(int64_t step, int64_t warmup_steps, int64_t total_steps,
                     double min_ratio = 0.0);
// gamma^floor(step / step_size) (torch's StepLR).
double step_factor(int64_t step, int64_t step_size, double gamma);

// torch.optim.lr_scheduler.OneCycleLR (Smith & Topin 2017) with its defaults: cosine annealing
// from max_lr/div_factor up to max_lr over pct_start of the steps, then down to
// max_lr/(div_factor·final_div_factor); momentum (SGD) or beta1 (Adam) cycles the other way
// between max_momentum and base_momentum.
struct OneCycleOptions {
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
};
// The learning rate at `step` as a fraction of max_lr; steps past total_steps are an error (as
// torch). Also the momentum at `step`.
double one_cycle_factor(int64_t step, int64_t total_steps, const OneCycleOptions& options = {});
double one_cycle_momentum(int64_t step, int64_t total_steps, const OneCycleOptions& options = {});

enum class ScheduleKind { Constant, Linear, Cosine, Step, OneCycle };

// One of the schedules above with its parameters.
struct Schedule {
  ScheduleKind kind = ScheduleKind::Constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;
  double min_ratio = 0.0;  // cosine
  int64_t step_size = 1;   // step
  double gamma = 0.1;      // step
  OneCycleOptions one_cycle;

  static Schedule constant(int64_t warmup_steps = 0);
  static Schedule linear(int64_t warmup_steps, int64_t total_steps);
  static Schedule cosine(int64_t warmup_steps, int64_t total_steps, double min_ratio = 0.0);
  static Schedule step_decay(int64_t step_size, double gamma = 0.1);
  static Schedule one_cycle_policy(int64_t total_steps, const OneCycleOptions& options = {});

  // Throws cxr::Error naming the bad parameter.
  void validate() const;
  // Multiplier of the base learning rate at `step`.
  double factor(int64_t step) const;
  // The momentum / beta1 to set at `step`, if the schedule cycles it.
  std::optional<double> momentum(int64_t step) const;
};

class LRScheduler {
 public:
  // Takes each group's current lr as its base lr (for one-cycle: its max lr) and sets step 0.
  LRScheduler(Optimizer& optimizer, Schedule schedule);
  // Moves to the next step and sets the groups' lr (and momentum): call after optimizer.step().
  void step();
  // Optimizer steps taken so far (torch's last_epoch).
  int64_t current_step() const { return step_; }
  const Schedule& schedule() const { return schedule_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // The rates it set last, one per group.
  std::vector<double> last_lrs() const;

  // "step" (int64), "kind" (int64) and "base_lrs" (float64 [groups]).
  std::map<std::string, Tensor> state_dict() const;
  // Restores the step and base rates (same kind of schedule, same number of groups) and sets the
  // optimizer's lr for that step.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 private:
  void apply();

  Optimizer* optimizer_;
  Schedule schedule_;
  std::vector<double> base_lrs_;
  int64_t step_ = 0;
};

}  // namespace cxr::nn
