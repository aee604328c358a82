// The dynamic loss scaler on CPU: scaled backward and exact unscaling, skipped steps and back-off
// on inf/NaN, growth after growth_interval clean steps, float16 gradients, misuse errors and
// state restore (semantics of torch.cuda.amp.GradScaler).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/reduce.h"
#include "nn/loss_scaler.h"
#include "nn/optim.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::nn;

namespace {
// loss = sum(w * x) so dloss/dw = x exactly.
Tensor loss_of(const Tensor& w, const std::vector<float>& x) {
  return sum(mul(w, raw::from_vector(x, {int64_t(x.size())})));
}
}  // namespace

TEST(LossScaler, ScalesTheLossAndUnscalesExactly) {
  Tensor w = raw::zeros({3}).set_requires_grad(true);
  SGD opt({w}, SGDOptions{.lr = 1.0});
  LossScaler scaler;
  EXPECT_EQ(scaler.get_scale(), 65536.0);
  Tensor scaled = scaler.scale(loss_of(w, {1, -2, 0.5f}));
  backward(scaled);
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{65536, -131072, 32768}));
  scaler.unscale_(opt);
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{1, -2, 0.5f}));
  EXPECT_FALSE(scaler.found_inf());
  EXPECT_TRUE(scaler.step(opt));  // does not unscale a second time
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{-1, 2, -0.5f}));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 65536.0);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(LossScaler, SkipsTheStepAndBacksOffOnInfOrNaN) {
  for (float bad : {INFINITY, -INFINITY, NAN}) {
    Tensor w = raw::ones({2}).set_requires_grad(true);
    SGD opt({w}, SGDOptions{.lr = 1.0});
    LossScaler scaler(LossScalerOptions{.init_scale = 1024.0});
    w.set_grad(raw::from_vector(std::vector<float>{1.0f, bad}, {2}));
    EXPECT_FALSE(scaler.step(opt));
    EXPECT_TRUE(scaler.found_inf());
    EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 1}));  // untouched
    scaler.update();
    EXPECT_EQ(scaler.get_scale(), 512.0);
    EXPECT_EQ(scaler.growth_tracker(), 0);
    EXPECT_FALSE(scaler.found_inf());
  }
}

TEST(LossScaler, OverflowInALargeFloat16GradientIsFound) {
  const int64_t n = 70000;  // above the parallel grain
  Tensor w = raw::zeros({n}, kFloat16).set_requires_grad(true);
  Adam opt({w});
  LossScaler scaler;
  Tensor g = raw::full({n}, 2.0, kFloat16);
  raw::fill_(raw::slice(g, 0, n - 3, n - 2), INFINITY);  // one element overflowed to inf
  w.set_grad(g);
  EXPECT_FALSE(scaler.step(opt));
  EXPECT_EQ(opt.state_dict().count("state.0.step"), 0u);  // Adam never ran
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 32768.0);
  // A clean float16 step: 2 / 32768 is exact in float16.
  w.set_grad(raw::full({n}, 2.0, kFloat16));
  EXPECT_TRUE(scaler.step(opt));
  EXPECT_EQ(w.grad().to_vector<float>()[n - 1], 2.0f / 32768.0f);
}

TEST(LossScaler, GrowsAfterGrowthIntervalCleanSteps) {
  Tensor w = raw::zeros({1}).set_requires_grad(true);
  SGD opt({w});
  LossScaler scaler(LossScalerOptions{.init_scale = 4.0, .growth_interval = 3});
  std::vector<double> scales;
  for (int i = 0; i < 7; ++i) {
    w.set_grad(raw::ones({1}));
    scaler.step(opt);
    scaler.update();
    scales.push_back(scaler.get_scale());
  }
  EXPECT_EQ(scales, (std::vector<double>{4, 4, 8, 8, 8, 16, 16}));
  // An inf resets the clean-step count: two more clean steps do not grow the scale.
  w.set_grad(raw::full({1}, INFINITY));
  scaler.step(opt);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 8.0);
  for (int i = 0; i < 2; ++i) {
    w.set_grad(raw::ones({1}));
    scaler.step(opt);
    scaler.update();
  }
  EXPECT_EQ(scaler.get_scale(), 8.0);
}

TEST(LossScaler, MisuseIsAnError) {
  Tensor w = raw::zeros({1}).set_requires_grad(true);
  SGD opt({w});
  LossScaler scaler;
  EXPECT_THROW(scaler.update(), Error);  // nothing recorded yet
  w.set_grad(raw::ones({1}));
  scaler.unscale_(opt);
  EXPECT_THROW(scaler.unscale_(opt), Error);  // twice in one iteration
  scaler.step(opt);
  EXPECT_THROW(scaler.step(opt), Error);
  scaler.update();
  EXPECT_THROW(scaler.scale(raw::ones({1}, kInt64)), Error);
  EXPECT_THROW(LossScaler(LossScalerOptions{.init_scale = 0.0}), Error);
  EXPECT_THROW(LossScaler(LossScalerOptions{.backoff_factor = 1.5}), Error);
}

TEST(LossScaler, DisabledIsAPassThrough) {
  Tensor w = raw::zeros({1}).set_requires_grad(true);
  SGD opt({w}, SGDOptions{.lr = 1.0});
  LossScaler scaler(LossScalerOptions{.enabled = false});
  Tensor loss = loss_of(w, {3});
  EXPECT_TRUE(scaler.scale(loss).is_same(loss));
  backward(loss);
  EXPECT_TRUE(scaler.step(opt));
  scaler.update();
  EXPECT_EQ(w.item(), -3.0);
  EXPECT_EQ(scaler.get_scale(), 1.0);
}

TEST(LossScaler, StateDictRoundTrip) {
  Tensor w = raw::zeros({1}).set_requires_grad(true);
  SGD opt({w});
  LossScaler a(LossScalerOptions{.init_scale = 256.0, .growth_interval = 5});
  for (int i = 0; i < 3; ++i) {
    w.set_grad(raw::ones({1}));
    a.step(opt);
    a.update();
  }
  LossScaler b;
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.get_scale(), 256.0);
  EXPECT_EQ(b.growth_tracker(), 3);
  for (int i = 0; i < 2; ++i) {
    w.set_grad(raw::ones({1}));
    b.step(opt);
    b.update();
  }
  EXPECT_EQ(b.get_scale(), 512.0);  // the restored interval (5) and count (3) were used
  auto bad = a.state_dict();
  bad.erase("scale");
  EXPECT_THROW(b.load_state_dict(bad), Error);
}
