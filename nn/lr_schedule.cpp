// Learning-rate schedules. Formulas: transformers' optimization.py (warm-up lambdas), torch's
// lr_scheduler.py (StepLR, CosineAnnealingLR closed form, OneCycleLR phases), all in double.
#include "nn/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "nn/optim.h"
#include "tensor/creation.h"

namespace cxr::nn {

namespace {

// step / warmup during warm-up (transformers: float(step) / float(max(1, warmup))).
double warmup_ramp(int64_t step, int64_t warmup_steps) {
  return double(step) / double(std::max<int64_t>(1, warmup_steps));
}

// torch's _annealing_cos: from `start` at pct 0 to `end` at pct 1.
double anneal_cos(double start, double end, double pct) {
  const double cos_out = std::cos(std::numbers::pi * pct) + 1.0;
  return end + (start - end) / 2.0 * cos_out;
}

struct Phase {
  double end_step;
  double start_lr, end_lr;  // as fractions of max_lr
  double start_momentum, end_momentum;
};

// OneCycleLR's phases (torch: _schedule_phases), in fractions of max_lr.
std::vector<Phase> one_cycle_phases(int64_t total_steps, const OneCycleOptions& o) {
  const double initial = 1.0 / o.div_factor, min = initial / o.final_div_factor;
  const double total = double(total_steps), up_end = o.pct_start * total - 1.0;
  if (o.three_phase)
    return {{up_end, initial, 1.0, o.max_momentum, o.base_momentum},
            {2.0 * o.pct_start * total - 2.0, 1.0, initial, o.base_momentum, o.max_momentum},
            {total - 1.0, initial, min, o.max_momentum, o.max_momentum}};
  return {{up_end, initial, 1.0, o.max_momentum, o.base_momentum},
          {total - 1.0, 1.0, min, o.base_momentum, o.max_momentum}};
}

// (lr factor, momentum) at `step`, following OneCycleLR.get_lr.
std::pair<double, double> one_cycle_at(int64_t step, int64_t total_steps,
                                       const OneCycleOptions& o) {
  CXR_CHECK(total_steps > 0, "one_cycle: total_steps must be > 0, got ", total_steps);
  CXR_CHECK(step >= 0 && step <= total_steps, "one_cycle: step ", step,
            " is outside the schedule of ", total_steps, " steps");
  const auto phases = one_cycle_phases(total_steps, o);
  double start_step = 0.0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& ph = phases[i];
    if (double(step) <= ph.end_step || i + 1 == phases.size()) {
      const double pct = (double(step) - start_step) / (ph.end_step - start_step);
      return {anneal_cos(ph.start_lr, ph.end_lr, pct),
              anneal_cos(ph.start_momentum, ph.end_momentum, pct)};
    }
    start_step = ph.end_step;
  }
  return {0.0, 0.0};  // not reached: the last phase always matches
}

}  // namespace

double constant_factor(int64_t step, int64_t warmup_steps) {
  return step < warmup_steps ? warmup_ramp(step, warmup_steps) : 1.0;
}

double linear_factor(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return warmup_ramp(step, warmup_steps);
  return std::max(
      0.0, double(total_steps - step) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
}

double cosine_factor(int64_t step, int64_t warmup_steps, int64_t total_steps, double min_ratio) {
  if (step < warmup_steps) return warmup_ramp(step, warmup_steps);
  const double progress = std::min(
      1.0, double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return min_ratio + (1.0 - min_ratio) * cosine;
}

double step_factor(int64_t step, int64_t step_size, double gamma) {
  CXR_CHECK(step_size > 0, "step_factor: step_size must be > 0, got ", step_size);
  return std::pow(gamma, double(step / step_size));
}

double one_cycle_factor(int64_t step, int64_t total_steps, const OneCycleOptions& options) {
  return one_cycle_at(step, total_steps, options).first;
}

double one_cycle_momentum(int64_t step, int64_t total_steps, const OneCycleOptions& options) {
  return one_cycle_at(step, total_steps, options).second;
}

// ---- Schedule ----

Schedule Schedule::constant(int64_t warmup_steps) {
  Schedule s;
  s.warmup_steps = warmup_steps;
  return s;
}
Schedule Schedule::linear(int64_t warmup_steps, int64_t total_steps) {
  Schedule s;
  s.kind = ScheduleKind::Linear;
  s.warmup_steps = warmup_steps;
  s.total_steps = total_steps;
  return s;
}
Schedule Schedule::cosine(int64_t warmup_steps, int64_t total_steps, double min_ratio) {
  Schedule s = linear(warmup_steps, total_steps);
  s.kind = ScheduleKind::Cosine;
  s.min_ratio = min_ratio;
  return s;
}
Schedule Schedule::step_decay(int64_t step_size, double gamma) {
  Schedule s;
  s.kind = ScheduleKind::Step;
  s.step_size = step_size;
  s.gamma = gamma;
  return s;
}
Schedule Schedule::one_cycle_policy(int64_t total_steps, const OneCycleOptions& options) {
  Schedule s;
  s.kind = ScheduleKind::OneCycle;
  s.total_steps = total_steps;
  s.one_cycle = options;
  return s;
}

void Schedule::validate() const {
  CXR_CHECK(warmup_steps >= 0, "Schedule: warmup_steps must be >= 0, got ", warmup_steps);
  switch (kind) {
    case ScheduleKind::Constant:
      break;
    case ScheduleKind::Linear:
    case ScheduleKind::Cosine:
      CXR_CHECK(total_steps > 0 && warmup_steps <= total_steps,
                "Schedule: linear/cosine need 0 <= warmup_steps <= total_steps and total_steps "
                "> 0, got warmup_steps ",
                warmup_steps, ", total_steps ", total_steps);
      CXR_CHECK(min_ratio >= 0.0 && min_ratio <= 1.0,
                "Schedule: min_ratio must lie in [0, 1], got ", min_ratio);
      break;
    case ScheduleKind::Step:
      CXR_CHECK(step_size > 0, "Schedule: step_size must be > 0, got ", step_size);
      break;
    case ScheduleKind::OneCycle: {
      const OneCycleOptions& o = one_cycle;
      CXR_CHECK(total_steps > 0, "Schedule: one-cycle total_steps must be > 0, got ", total_steps);
      CXR_CHECK(o.pct_start > 0.0 && o.pct_start < 1.0,
                "Schedule: one-cycle pct_start must lie in (0, 1), got ", o.pct_start);
      CXR_CHECK(o.div_factor > 0.0 && o.final_div_factor > 0.0,
                "Schedule: one-cycle div_factor and final_div_factor must be > 0");
      break;
    }
  }
}

double Schedule::factor(int64_t step) const {
  switch (kind) {
    case ScheduleKind::Constant:
      return constant_factor(step, warmup_steps);
    case ScheduleKind::Linear:
      return linear_factor(step, warmup_steps, total_steps);
    case ScheduleKind::Cosine:
      return cosine_factor(step, warmup_steps, total_steps, min_ratio);
    case ScheduleKind::Step:
      return step_factor(step, step_size, gamma);
    case ScheduleKind::OneCycle:
      return one_cycle_factor(step, total_steps, one_cycle);
  }
  CXR_FAIL("Schedule: unknown kind");
}

std::optional<double> Schedule::momentum(int64_t step) const {
  if (kind != ScheduleKind::OneCycle || !one_cycle.cycle_momentum) return std::nullopt;
  return one_cycle_momentum(step, total_steps, one_cycle);
}

// ---- LRScheduler ----

LRScheduler::LRScheduler(Optimizer& optimizer, Schedule schedule)
    : optimizer_(&optimizer), schedule_(schedule) {
  schedule_.validate();
  for (const ParamGroup& g : optimizer.param_groups()) base_lrs_.push_back(g.lr);
  apply();
}

void LRScheduler::apply() {
  const double f = schedule_.factor(step_);
  const auto momentum = schedule_.momentum(step_);
  auto& groups = optimizer_->param_groups();
  CXR_CHECK(groups.size() == base_lrs_.size(), "LRScheduler: the optimizer has ", groups.size(),
            " groups but the scheduler was set up for ", base_lrs_.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    groups[g].lr = base_lrs_[g] * f;
    if (momentum) groups[g].momentum = *momentum;
  }
}

void LRScheduler::step() {
  ++step_;
  apply();
}

std::vector<double> LRScheduler::last_lrs() const {
  std::vector<double> out;
  for (const ParamGroup& g : optimizer_->param_groups()) out.push_back(g.lr);
  return out;
}

std::map<std::string, Tensor> LRScheduler::state_dict() const {
  return {{"step", raw::scalar_tensor(double(step_), kInt64)},
          {"kind", raw::scalar_tensor(double(int(schedule_.kind)), kInt64)},
          {"base_lrs", raw::from_vector(base_lrs_, {int64_t(base_lrs_.size())}, kFloat64)}};
}

void LRScheduler::load_state_dict(const std::map<std::string, Tensor>& state) {
  for (const char* key : {"step", "kind", "base_lrs"})
    CXR_CHECK(state.count(key), "LRScheduler.load_state_dict: missing key '", key, "'");
  for (const auto& [key, t] : state)
    CXR_CHECK(key == "step" || key == "kind" || key == "base_lrs",
              "LRScheduler.load_state_dict: unexpected key '", key, "'");
  const Tensor& step = state.at("step");
  const Tensor& kind = state.at("kind");
  const Tensor& base = state.at("base_lrs");
  CXR_CHECK(
      step.numel() == 1 && step.dtype() == kInt64 && kind.numel() == 1 && kind.dtype() == kInt64,
      "LRScheduler.load_state_dict: 'step' and 'kind' must be int64 scalars, got ", describe(step),
      " and ", describe(kind));
  CXR_CHECK(int(kind.item()) == int(schedule_.kind),
            "LRScheduler.load_state_dict: the state is of schedule kind ", int(kind.item()),
            " but this scheduler's kind is ", int(schedule_.kind));
  CXR_CHECK(base.dim() == 1 && base.numel() == int64_t(base_lrs_.size()),
            "LRScheduler.load_state_dict: 'base_lrs' is ", describe(base),
            " but the optimizer has ", base_lrs_.size(), " groups");
  CXR_CHECK(step.item() >= 0, "LRScheduler.load_state_dict: negative step ", step.item());
  step_ = int64_t(step.item());
  base_lrs_ = base.to_vector<double>();
  apply();
}

}  // namespace cxr::nn
