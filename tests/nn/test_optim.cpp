// Optimizers against torch.optim: 12 steps of SGD (Nesterov, dampening), Adam (AMSGrad) and
// AdamW with an LR schedule and gradient clipping, from tests/golden/gen_optim.py (whose case
// parameters are repeated here); state save/restore; zero_grad; bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "nn/grad_utils.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

constexpr int kSteps = 12;

constexpr const char* kFixture = "optim.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

struct Clip {
  bool by_norm;
  double max;
  double norm_type = 2.0;
};

// Mirrors optimizer_case() of gen_optim.py: groups {p0, p2} and {p1 with lr1 / wd1}.
void run_case(
    const std::string& name,
    const std::function<std::unique_ptr<Optimizer>(std::vector<ParamGroupOptions>)>& make_optimizer,
    double lr1, double wd1, const Schedule& schedule, const Clip& clip) {
  SCOPED_TRACE(name);
  std::vector<Tensor> params;
  for (int i = 0; i < 3; ++i)
    params.push_back(
        raw::clone(fx(name + ".p" + std::to_string(i) + ".init")).set_requires_grad(true));
  auto opt = make_optimizer(
      {{{params[0], params[2]}, std::nullopt, std::nullopt}, {{params[1]}, lr1, wd1}});
  LRScheduler sched(*opt, schedule);
  const auto lrs = fx(name + ".lr").to_vector<double>();
  const auto norms = fx(name + ".norm").to_vector<double>();
  for (int s = 0; s < kSteps; ++s) {
    for (int i = 0; i < 3; ++i) {
      const std::string key = name + ".grad." + std::to_string(s) + "." + std::to_string(i);
      if (test::cached_fixture(kFixture).count(key))
        params[i].set_grad(raw::clone(fx(key)));
      else
        params[i].set_grad(Tensor());
    }
    if (clip.by_norm) {
      const double norm = clip_grad_norm_(params, clip.max, clip.norm_type);
      EXPECT_NEAR(norm, norms[s], 1e-6 * norms[s]) << "step " << s;
    } else {
      clip_grad_value_(params, clip.max);
    }
    EXPECT_NEAR(opt->param_groups()[0].lr, lrs[s], 1e-12 + 1e-9 * lrs[s]) << "step " << s;
    opt->step();
    sched.step();
  }
  for (int i = 0; i < 3; ++i)
    EXPECT_ALL_CLOSE(params[i], fx(name + ".p" + std::to_string(i) + ".final"), 1e-6, 1e-7);
  // The moment buffers of p0 match torch's optimizer.state.
  const auto state = opt->state_dict();
  for (const char* buffer : {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) {
    const std::string key = name + ".state." + buffer;
    if (!test::cached_fixture(kFixture).count(key)) continue;
    ASSERT_TRUE(state.count(std::string("state.0.") + buffer)) << buffer;
    EXPECT_ALL_CLOSE(state.at(std::string("state.0.") + buffer), fx(key), 1e-5, 1e-7);
  }
}

}  // namespace

TEST(Optim, SgdNesterovWithOneCycleAndNormClippingMatchesTorch) {
  SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 1e-2;
  run_case("sgd_nesterov", [&](auto groups) { return std::make_unique<SGD>(std::move(groups), o); },
           0.02, 0.0, Schedule::one_cycle_policy(kSteps), {true, 1.0});
}

TEST(Optim, SgdDampeningWithStepDecayAndValueClippingMatchesTorch) {
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.8;
  o.dampening = 0.3;
  o.weight_decay = 1e-3;
  run_case("sgd_dampening",
           [&](auto groups) { return std::make_unique<SGD>(std::move(groups), o); }, 0.03, 1e-2,
           Schedule::step_decay(4, 0.5), {false, 0.5});
}

TEST(Optim, AdamWithLinearWarmupMatchesTorch) {
  AdamOptions o;
  o.lr = 1e-2;
  o.weight_decay = 1e-2;
  run_case("adam", [&](auto groups) { return std::make_unique<Adam>(std::move(groups), o); }, 3e-3,
           0.0, Schedule::linear(3, kSteps), {true, 2.0});
}

TEST(Optim, AdamAmsgradWithCosineWarmupAndInfNormClippingMatchesTorch) {
  AdamOptions o;
  o.lr = 5e-3;
  o.beta1 = 0.8;
  o.beta2 = 0.99;
  o.eps = 1e-6;
  o.amsgrad = true;
  run_case("adam_amsgrad",
           [&](auto groups) { return std::make_unique<Adam>(std::move(groups), o); }, 2e-3, 1e-3,
           Schedule::cosine(2, kSteps), {true, 0.5, INFINITY});
}

TEST(Optim, AdamWWithCosineToMinimumMatchesTorch) {
  AdamOptions o = AdamW::default_options();
  o.lr = 1e-2;
  o.weight_decay = 0.05;
  run_case("adamw", [&](auto groups) { return std::make_unique<AdamW>(std::move(groups), o); },
           1e-2, 0.0, Schedule::cosine(2, kSteps, 0.1), {true, 1.0});
}

TEST(Optim, AdamWAmsgradWithThreePhaseOneCycleMatchesTorch) {
  AdamOptions o = AdamW::default_options();
  o.lr = 1e-2;
  o.amsgrad = true;
  OneCycleOptions cycle;
  cycle.three_phase = true;
  run_case("adamw_onecycle",
           [&](auto groups) { return std::make_unique<AdamW>(std::move(groups), o); }, 4e-3, 0.1,
           Schedule::one_cycle_policy(kSteps, cycle), {true, 1.0});
}

TEST(Optim, SgdStepIsExactOnHandComputedValues) {
  // p = 1, g = 0.5, momentum 0.5, lr 0.25, wd 0: buffer 0.5 then 0.5*0.5 + 0.5 = 0.75.
  Tensor p = raw::full({2}, 1.0).set_requires_grad(true);
  SGDOptions o;
  o.lr = 0.25;
  o.momentum = 0.5;
  SGD opt({p}, o);
  p.set_grad(raw::full({2}, 0.5));
  opt.step();
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{0.875f, 0.875f}));
  opt.step();
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{0.6875f, 0.6875f}));
}

TEST(Optim, StateDictRestoresAnIdenticalContinuation) {
  auto make_params = [] {
    Generator gen(7);
    return std::vector<Tensor>{raw::randn({5, 4}, gen).set_requires_grad(true),
                               raw::randn({4}, gen).set_requires_grad(true)};
  };
  auto set_grads = [](const std::vector<Tensor>& ps, uint64_t seed) {
    Generator gen(seed);
    for (const Tensor& p : ps) p.set_grad(raw::randn(p.sizes(), gen));
  };
  AdamOptions o;
  o.amsgrad = true;
  o.weight_decay = 0.01;
  auto a = make_params();
  AdamW opt_a(a, o);
  for (uint64_t s = 0; s < 3; ++s) {
    set_grads(a, s);
    opt_a.step();
  }
  const auto state = opt_a.state_dict();
  EXPECT_EQ(state.at("state.1.step").item(), 3.0);
  EXPECT_EQ(state.at("group.0.size").item(), 2.0);

  auto b = make_params();
  for (size_t i = 0; i < b.size(); ++i) raw::copy_(b[i], a[i]);
  AdamW opt_b(b, o);
  opt_b.load_state_dict(state);
  for (uint64_t s = 3; s < 6; ++s) {
    set_grads(a, s);
    set_grads(b, s);
    opt_a.step();
    opt_b.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].to_vector<float>(), b[i].to_vector<float>());
}

TEST(Optim, LoadStateDictRejectsMismatchesAndChangesNothing) {
  Tensor p = raw::zeros({3}).set_requires_grad(true);
  Adam opt({p});
  p.set_grad(raw::ones({3}));
  opt.step();
  auto good = opt.state_dict();

  auto expect_error = [&](std::map<std::string, Tensor> state, const std::string& needle) {
    EXPECT_ERROR_CONTAINS(opt.load_state_dict(state), needle);
  };
  auto bad = good;
  bad["state.0.exp_avg"] = raw::zeros({4});
  expect_error(bad, "'state.0.exp_avg' is float32[4] but parameter 0 is float32[3]");
  bad = good;
  bad["state.7.exp_avg"] = raw::zeros({3});
  expect_error(bad, "names parameter 7");
  bad = good;
  bad["state.0.momentum_buffer"] = raw::zeros({3});
  expect_error(bad, "no Adam state called 'momentum_buffer'");
  bad = good;
  bad.erase("group.0.lr");
  expect_error(bad, "missing key 'group.0.lr'");
  bad = good;
  bad["bogus"] = raw::zeros({1});
  expect_error(bad, "unexpected key 'bogus'");
  // Nothing changed: the state is still the good one.
  EXPECT_EQ(opt.state_dict().at("state.0.exp_avg").to_vector<float>(),
            good.at("state.0.exp_avg").to_vector<float>());
}

TEST(Optim, ZeroGradAndParametersWithoutGradients) {
  Tensor a = raw::ones({2}).set_requires_grad(true);
  Tensor b = raw::ones({2}).set_requires_grad(true);
  SGD opt({a, b}, SGDOptions{.lr = 1.0});
  a.set_grad(raw::ones({2}));
  opt.step();  // b has no gradient: untouched
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0, 0}));
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, 1}));
  opt.zero_grad(false);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0, 0}));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optim, LargeParametersUseTheParallelPathDeterministically) {
  // Above the parallel grain the update is split across threads; compare with a per-element
  // reference of the same formula computed in float.
  const int64_t n = 100003;
  Generator gen(3);
  Tensor p = raw::randn({n}, gen).set_requires_grad(true);
  Tensor g = raw::randn({n}, gen);
  const auto p0 = p.to_vector<float>(), g0 = g.to_vector<float>();
  Adam opt({p}, AdamOptions{.lr = 0.1});
  p.set_grad(g);
  opt.step();
  const auto p1 = p.to_vector<float>();
  for (int64_t i = 0; i < n; i += 997) {
    // Step 1: m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and sqrt(0.001): p -= lr·sign(g)
    // up to eps.
    const float w1 = float(1.0 - 0.9), w2 = float(1.0 - 0.999);
    const float m = 0.0f + w1 * (g0[i] - 0.0f), v = 0.0f * 0.999f + w2 * g0[i] * g0[i];
    const float denom = std::sqrt(v) / float(std::sqrt(1.0 - 0.999)) + 1e-8f;
    const float expected = p0[i] + float(-0.1 / (1.0 - 0.9)) * m / denom;
    ASSERT_EQ(p1[i], expected) << i;
  }
}

TEST(Optim, BadConstructionIsAnError) {
  Tensor p = raw::ones({2}).set_requires_grad(true);
  EXPECT_THROW(SGD({p}, SGDOptions{.lr = -1.0}), Error);
  EXPECT_THROW(SGD({p}, SGDOptions{.momentum = 0.0, .nesterov = true}), Error);
  EXPECT_THROW(Adam({p}, AdamOptions{.beta1 = 1.0}), Error);
  EXPECT_THROW(Adam(std::vector<Tensor>{}), Error);
  EXPECT_THROW(Adam({p, p}), Error);                    // the same tensor twice
  EXPECT_THROW(Adam({raw::ones({2}, kInt64)}), Error);  // not floating
  Adam opt({p});
  p.set_grad(raw::ones({3}));
  EXPECT_ERROR_CONTAINS(opt.step(), "float32[2] but its gradient is float32[3]");
}
