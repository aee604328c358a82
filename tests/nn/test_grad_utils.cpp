// Gradient clipping (by norm: the returned norm and the scaled gradients; by value), gradient
// accumulation over micro-batches (equal to the full-batch gradient), and the EMA of weights
// (against torch's AveragedModel with get_ema_multi_avg_fn, and diffusers' warm-up formulas).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/linalg.h"
#include "autograd/loss.h"
#include "autograd/views.h"
#include "nn/grad_utils.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::nn;

namespace {
Tensor leaf_with_grad(const std::vector<float>& values, const std::vector<float>& grad) {
  Tensor p = raw::zeros({int64_t(values.size())}).set_requires_grad(true);
  raw::copy_(p, raw::from_vector(values, {int64_t(values.size())}));
  p.set_grad(raw::from_vector(grad, {int64_t(grad.size())}));
  return p;
}
}  // namespace

TEST(ClipGrad, NormIsTheNormOfAllGradientsAndScalesThemDown) {
  Tensor a = leaf_with_grad({0, 0}, {3, 0});
  Tensor b = leaf_with_grad({0}, {4});
  Tensor c = raw::zeros({2}).set_requires_grad(true);  // no gradient: ignored
  const double norm = clip_grad_norm_({a, b, c}, 1.0);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  const float coef = float(1.0 / (5.0 + 1e-6));
  EXPECT_FLOAT_EQ(a.grad().to_vector<float>()[0], 3 * coef);
  EXPECT_FLOAT_EQ(b.grad().to_vector<float>()[0], 4 * coef);
  EXPECT_FALSE(c.grad().defined());
}

TEST(ClipGrad, NormBelowTheMaximumLeavesGradientsUnchanged) {
  Tensor a = leaf_with_grad({0, 0}, {0.3f, -0.4f});
  EXPECT_NEAR(clip_grad_norm_({a}, 1.0), 0.5, 1e-7);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0.3f, -0.4f}));
}

TEST(ClipGrad, InfinityAndOneNormsAndLargeTensors) {
  Tensor a = leaf_with_grad({0, 0, 0}, {1, -7, 2});
  EXPECT_EQ(grad_norm({a}, INFINITY), 7.0);
  EXPECT_EQ(grad_norm({a}, 1.0), 10.0);
  // A large gradient is reduced in blocks: sum of i^2 for i < n is exact in double here.
  const int64_t n = 200000;
  Tensor big = raw::zeros({n}).set_requires_grad(true);
  big.set_grad(raw::arange(0, double(n), 1, kFloat32));
  const double expected = std::sqrt(double(n - 1) * double(n) * double(2 * n - 1) / 6.0);
  EXPECT_NEAR(grad_norm({big}), expected, 1e-12 * expected);
}

TEST(ClipGrad, NonFiniteNormIsAnErrorWhenAsked) {
  Tensor a = leaf_with_grad({0, 0}, {1, INFINITY});
  EXPECT_THROW(clip_grad_norm_({a}, 1.0, 2.0, true), Error);
  EXPECT_TRUE(std::isinf(clip_grad_norm_({a}, 1.0)));
}

TEST(ClipGrad, ByValueClampsEveryElement) {
  Tensor a = leaf_with_grad({0, 0, 0}, {-3, 0.25f, 9});
  clip_grad_value_({a}, 0.5);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{-0.5f, 0.25f, 0.5f}));
  EXPECT_THROW(clip_grad_value_({a}, -1.0), Error);
}

TEST(GradAccumulation, MicroBatchesGiveTheFullBatchGradient) {
  Generator gen(11);
  Tensor x = raw::randn({8, 3}, gen), y = raw::randn({8, 2}, gen);
  Tensor w = raw::randn({2, 3}, gen).set_requires_grad(true);
  backward(mse_loss(linear(x, w), y));
  const Tensor full = raw::clone(w.grad());
  w.set_grad(Tensor());

  GradAccumulator acc(4);
  int steps = 0;
  for (int64_t m = 0; m < 4; ++m) {
    Tensor xb = slice(x, 0, 2 * m, 2 * m + 2), yb = slice(y, 0, 2 * m, 2 * m + 2);
    backward(mse_loss(linear(xb, w), yb) * acc.loss_scale());
    steps += acc.micro_step();
  }
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(acc.count(), 0);
  EXPECT_ALL_CLOSE(w.grad(), full, 1e-6, 1e-7);
}

TEST(GradAccumulation, PartialBatchCorrection) {
  GradAccumulator acc(4);
  EXPECT_EQ(acc.partial_correction(), 1.0);
  EXPECT_FALSE(acc.micro_step());
  EXPECT_FALSE(acc.micro_step());
  EXPECT_EQ(acc.count(), 2);
  EXPECT_EQ(acc.partial_correction(), 2.0);  // gradients summed 2 × loss/4: × 2 gives the mean
  Tensor a = leaf_with_grad({0}, {0.25f});
  scale_grads_({a}, acc.partial_correction());
  EXPECT_EQ(a.grad().item(), 0.5);
  EXPECT_THROW(GradAccumulator(0), Error);
}

TEST(EMA, MatchesTorchAveragedModelWithEmaAveraging) {
  const auto f = test::load_fixture("optim.safetensors");
  Tensor p = raw::clone(test::fixture_tensor(f, "ema.p.0")).set_requires_grad(true);
  EMA ema({p}, EMAOptions{.decay = 0.9});
  for (int k = 0; k < 6; ++k) {
    raw::copy_(p, test::fixture_tensor(f, "ema.p." + std::to_string(k)));
    ema.update();
  }
  EXPECT_EQ(ema.num_updates(), 6);
  EXPECT_ALL_CLOSE(ema.shadow()[0], test::fixture_tensor(f, "ema.avg"), 1e-6, 1e-7);
}

TEST(EMA, WarmupFormulasOfDiffusers) {
  Tensor p = raw::zeros({1}).set_requires_grad(true);
  EMA ratio({p}, EMAOptions{.decay = 0.999, .warmup = EMAWarmup::Ratio});
  EXPECT_EQ(ratio.decay_at(1), 0.0);         // t = 0: copy
  EXPECT_EQ(ratio.decay_at(2), 2.0 / 11.0);  // t = 1: (1 + t) / (10 + t)
  EXPECT_EQ(ratio.decay_at(100000), 0.999);  // capped at decay
  EMA power({p}, EMAOptions{.decay = 0.9999, .update_after_step = 2, .warmup = EMAWarmup::Power});
  EXPECT_EQ(power.decay_at(3), 0.0);                                     // t = 3 - 2 - 1 = 0
  EXPECT_DOUBLE_EQ(power.decay_at(5), 1.0 - std::pow(3.0, -2.0 / 3.0));  // t = 2
  EMA floor({p}, EMAOptions{.decay = 0.5, .min_decay = 0.7});
  EXPECT_EQ(floor.decay_at(5), 0.7);
}

TEST(EMA, UpdatesByTheFormulaAndCopiesTensorsWithoutGrad) {
  Tensor w = raw::full({3}, 1.0).set_requires_grad(true);
  Tensor buffer = raw::full({2}, 5.0);  // e.g. a running statistic
  EMA ema({w, buffer}, EMAOptions{.decay = 0.75});
  raw::fill_(w, 3.0);
  raw::fill_(buffer, 7.0);
  ema.update();  // first update copies (decay 0)
  EXPECT_EQ(ema.shadow()[0].to_vector<float>(), (std::vector<float>{3, 3, 3}));
  raw::fill_(w, 7.0);
  raw::fill_(buffer, 9.0);
  ema.update();  // 3 - 0.25 (3 - 7) = 4
  EXPECT_EQ(ema.last_decay(), 0.75);
  EXPECT_EQ(ema.shadow()[0].to_vector<float>(), (std::vector<float>{4, 4, 4}));
  EXPECT_EQ(ema.shadow()[1].to_vector<float>(), (std::vector<float>{9, 9}));
  Tensor eval = raw::zeros({3});
  Tensor eval_buffer = raw::zeros({2});
  ema.copy_to({eval, eval_buffer});
  EXPECT_EQ(eval.to_vector<float>(), (std::vector<float>{4, 4, 4}));
  EXPECT_THROW(ema.copy_to({eval}), Error);
}

TEST(EMA, StateRestoreContinuesIdentically) {
  Tensor a = raw::zeros({4}).set_requires_grad(true), b = raw::zeros({4}).set_requires_grad(true);
  EMA ea({a}, EMAOptions{.decay = 0.9, .warmup = EMAWarmup::Ratio});
  for (int k = 0; k < 3; ++k) {
    raw::fill_(a, double(k));
    ea.update();
  }
  EMA eb({b}, EMAOptions{.decay = 0.9, .warmup = EMAWarmup::Ratio});
  eb.load_state_dict(ea.state_dict());
  EXPECT_EQ(eb.num_updates(), 3);
  raw::fill_(a, 10.0);
  raw::fill_(b, 10.0);
  ea.update();
  eb.update();
  EXPECT_EQ(ea.shadow()[0].to_vector<float>(), eb.shadow()[0].to_vector<float>());
  auto bad = ea.state_dict();
  bad.erase("shadow.0");
  EXPECT_THROW(eb.load_state_dict(bad), Error);
  bad = ea.state_dict();
  bad["shadow.0"] = raw::zeros({5});
  EXPECT_THROW(eb.load_state_dict(bad), Error);
}
