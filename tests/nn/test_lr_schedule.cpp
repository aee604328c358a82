// LR schedules: each schedule's sequence against torch's schedulers (tests/golden/gen_optim.py,
// "sched.*": base lr 0.1, 30 steps), the scheduler's effect on an optimizer, state restore, and
// bad parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

constexpr const char* kFixture = "optim.safetensors";

// Drives an SGD(lr = 0.1, momentum = 0.9) through `schedule` as the generator drives torch, and
// compares the lr (and momentum) read before each step.
void expect_sequence(const std::string& name, const Schedule& schedule) {
  SCOPED_TRACE(name);
  Tensor p = raw::zeros({1}).set_requires_grad(true);
  SGD opt({p}, SGDOptions{.lr = 0.1, .momentum = 0.9});
  LRScheduler sched(opt, schedule);
  const auto lrs = test::fixture_tensor(kFixture, "sched." + name + ".lr").to_vector<double>();
  const std::string mkey = "sched." + name + ".momentum";
  const auto moms = test::cached_fixture(kFixture).count(mkey)
                        ? test::fixture_tensor(kFixture, mkey).to_vector<double>()
                        : std::vector<double>{};
  for (size_t s = 0; s < lrs.size(); ++s) {
    EXPECT_NEAR(opt.param_groups()[0].lr, lrs[s], 1e-15 + 1e-12 * lrs[s]) << "step " << s;
    EXPECT_NEAR(schedule.factor(int64_t(s)) * 0.1, lrs[s], 1e-15 + 1e-12 * lrs[s]);
    if (!moms.empty()) {
      EXPECT_NEAR(opt.param_groups()[0].momentum, moms[s], 1e-12) << "step " << s;
    }
    sched.step();
  }
  EXPECT_EQ(sched.current_step(), int64_t(lrs.size()));
}

}  // namespace

TEST(LRSchedule, ConstantWithWarmupMatchesTorchLambdaLR) {
  expect_sequence("constant_warmup", Schedule::constant(5));
}

TEST(LRSchedule, LinearWithWarmupMatchesTorchLambdaLR) {
  expect_sequence("linear_warmup", Schedule::linear(5, 30));
}

TEST(LRSchedule, LinearWithoutWarmupMatchesTorchLinearLR) {
  expect_sequence("linear", Schedule::linear(0, 30));
}

TEST(LRSchedule, CosineWithWarmupMatchesTorchLambdaLR) {
  expect_sequence("cosine_warmup", Schedule::cosine(5, 30));
  expect_sequence("cosine_warmup_min", Schedule::cosine(4, 24, 0.2));
}

TEST(LRSchedule, CosineWithoutWarmupMatchesTorchCosineAnnealingLR) {
  expect_sequence("cosine", Schedule::cosine(0, 30, 0.1));  // eta_min 0.01 = 0.1 * base lr
}

TEST(LRSchedule, StepMatchesTorchStepLR) {
  expect_sequence("step", Schedule::step_decay(7, 0.5));
}

TEST(LRSchedule, OneCycleMatchesTorchOneCycleLRWithMomentum) {
  expect_sequence("one_cycle", Schedule::one_cycle_policy(30));
  OneCycleOptions o;
  o.three_phase = true;
  o.pct_start = 0.25;
  o.div_factor = 10.0;
  o.final_div_factor = 100.0;
  expect_sequence("one_cycle_three_phase", Schedule::one_cycle_policy(30, o));
}

TEST(LRSchedule, PureFunctionsAtTheirEnds) {
  EXPECT_EQ(constant_factor(0, 4), 0.0);
  EXPECT_EQ(constant_factor(2, 4), 0.5);
  EXPECT_EQ(constant_factor(4, 4), 1.0);
  EXPECT_EQ(linear_factor(10, 0, 10), 0.0);
  EXPECT_EQ(linear_factor(15, 0, 10), 0.0);  // stays at 0
  EXPECT_EQ(cosine_factor(3, 3, 13), 1.0);
  EXPECT_NEAR(cosine_factor(8, 3, 13), 0.5, 1e-15);  // half way: (1 + cos(pi/2)) / 2
  EXPECT_EQ(cosine_factor(50, 0, 10, 0.25), 0.25);   // clamped at the minimum
  EXPECT_EQ(step_factor(6, 3, 0.5), 0.25);
  EXPECT_NEAR(one_cycle_factor(0, 100), 1.0 / 25.0, 1e-15);
  EXPECT_NEAR(one_cycle_factor(29, 100), 1.0, 1e-15);  // the peak at pct_start·total − 1
  EXPECT_NEAR(one_cycle_factor(99, 100), 1.0 / 25.0 / 1e4, 1e-15);
  EXPECT_NEAR(one_cycle_momentum(29, 100), 0.85, 1e-15);
  EXPECT_THROW(one_cycle_factor(101, 100), Error);
}

TEST(LRSchedule, PerGroupBaseRatesAndStateRestore) {
  Tensor a = raw::zeros({1}).set_requires_grad(true), b = raw::zeros({1}).set_requires_grad(true);
  SGD opt({{{a}, std::nullopt, std::nullopt}, {{b}, 0.5, std::nullopt}}, SGDOptions{.lr = 0.1});
  LRScheduler sched(opt, Schedule::cosine(2, 10));
  EXPECT_EQ(opt.param_groups()[0].lr, 0.0);
  for (int i = 0; i < 4; ++i) sched.step();
  EXPECT_NEAR(opt.param_groups()[1].lr, 0.5 * cosine_factor(4, 2, 10), 1e-15);
  const auto state = sched.state_dict();

  Tensor c = raw::zeros({1}).set_requires_grad(true), d = raw::zeros({1}).set_requires_grad(true);
  SGD opt2({{{c}, std::nullopt, std::nullopt}, {{d}, 0.5, std::nullopt}}, SGDOptions{.lr = 0.1});
  LRScheduler sched2(opt2, Schedule::cosine(2, 10));
  sched2.load_state_dict(state);
  EXPECT_EQ(sched2.current_step(), 4);
  EXPECT_EQ(opt2.param_groups()[0].lr, opt.param_groups()[0].lr);
  sched.step();
  sched2.step();
  EXPECT_EQ(sched2.last_lrs(), sched.last_lrs());

  LRScheduler other_kind(opt2, Schedule::step_decay(3));
  EXPECT_THROW(other_kind.load_state_dict(state), Error);
}

TEST(LRSchedule, BadParametersAreErrors) {
  Tensor p = raw::zeros({1}).set_requires_grad(true);
  SGD opt({p});
  EXPECT_THROW(LRScheduler(opt, Schedule::linear(5, 0)), Error);
  EXPECT_THROW(LRScheduler(opt, Schedule::cosine(11, 10)), Error);
  EXPECT_THROW(LRScheduler(opt, Schedule::step_decay(0)), Error);
  OneCycleOptions o;
  o.pct_start = 1.5;
  EXPECT_THROW(LRScheduler(opt, Schedule::one_cycle_policy(10, o)), Error);
  LRScheduler sched(opt, Schedule::one_cycle_policy(2));
  sched.step();
  sched.step();
  EXPECT_THROW(sched.step(), Error);  // past total_steps, as torch
}
