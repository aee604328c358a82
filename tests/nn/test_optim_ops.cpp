// The fused optimizer-side raw ops (tensor/optim_ops.h) on the CPU, called directly: each update
// against the torch.optim formulas evaluated here in float64 (torch/optim/adam.py, sgd.py; the
// end-to-end agreement with torch.optim itself is tests/nn/test_optim.cpp), reduced-precision
// parameters rounded once from a float32 computation, the loss scaler's inf/NaN check and the
// EMA, and the argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "support/compare.h"
#include "support/errors.h"
#include "tensor/ops.h"
#include "tensor/optim_ops.h"

using namespace cxr;

namespace {

std::vector<double> values(const Tensor& t) {
  return t.to_vector<double>();
}

Tensor from(const std::vector<double>& v, DType dtype = kFloat64) {
  return raw::from_vector(v, {int64_t(v.size())}, dtype);
}

}  // namespace

TEST(OptimOps, AdamWUpdateFollowsTheTorchFormulaInFloat64) {
  const std::vector<double> p0 = {0.5, -1.25, 2.0, 0.0, 3.5}, g = {0.1, -0.2, 0.3, 1e-3, -4.0};
  const raw::AdamParams hp{.lr = 0.01,
                           .beta1 = 0.8,
                           .beta2 = 0.95,
                           .eps = 1e-6,
                           .weight_decay = 0.1,
                           .decoupled_weight_decay = true};
  Tensor p = from(p0), m = raw::zeros({5}, kFloat64), v = raw::zeros({5}, kFloat64);
  std::vector<double> ep = p0, em(5, 0.0), ev(5, 0.0);
  for (int64_t t = 1; t <= 3; ++t) {
    raw::adam_update_(p, from(g), m, v, Tensor(), hp, t);
    for (size_t i = 0; i < 5; ++i) {
      ep[i] *= 1.0 - hp.lr * hp.weight_decay;
      em[i] = hp.beta1 * em[i] + (1.0 - hp.beta1) * g[i];
      ev[i] = hp.beta2 * ev[i] + (1.0 - hp.beta2) * g[i] * g[i];
      const double denom =
          std::sqrt(ev[i]) / std::sqrt(1.0 - std::pow(hp.beta2, double(t))) + hp.eps;
      ep[i] -= hp.lr / (1.0 - std::pow(hp.beta1, double(t))) * em[i] / denom;
    }
  }
  EXPECT_ALL_CLOSE(p, from(ep), 1e-13, 1e-15);
  EXPECT_ALL_CLOSE(m, from(em), 1e-13, 1e-15);
  EXPECT_ALL_CLOSE(v, from(ev), 1e-13, 1e-15);
}

TEST(OptimOps, AdamCoupledDecayAndAmsgradKeepTheRunningMaximum) {
  const raw::AdamParams hp{.lr = 0.1, .weight_decay = 0.5, .amsgrad = true};
  Tensor p = from({1.0, -2.0}), m = raw::zeros({2}, kFloat64), v = raw::zeros({2}, kFloat64);
  Tensor vmax = raw::zeros({2}, kFloat64);
  raw::adam_update_(p, from({3.0, 0.0}), m, v, vmax, hp, 1);
  // Coupled decay: g = grad + 0.5·p = {3.5, -1}; v = 0.001·g².
  EXPECT_ALL_CLOSE(v, from({0.001 * 3.5 * 3.5, 0.001}), 1e-14, 0.0);
  EXPECT_ALL_CLOSE(vmax, v, 0.0, 0.0);
  const std::vector<double> big = values(vmax);
  // A zero gradient without decay: v decays, the maximum keeps the first step's values.
  raw::adam_update_(p, from({0.0, 0.0}), m, v, vmax, {.lr = 0.1, .amsgrad = true}, 2);
  EXPECT_LT(values(v)[0], big[0]);
  EXPECT_EQ(values(vmax)[0], big[0]);
}

TEST(OptimOps, SgdMomentumNesterovAndDampeningFollowTorch) {
  const raw::SgdParams hp{.lr = 0.1, .weight_decay = 0.5, .momentum = 0.9, .nesterov = true};
  Tensor p = from({1.0, 2.0}), b = raw::full({2}, 123.0, kFloat64);
  raw::sgd_update_(p, from({1.0, -1.0}), b, hp, true);
  // g = {1.5, 0}; the first step copies g into the buffer (its old contents are ignored);
  // Nesterov: g + 0.9·b = {2.85, 0}; p -= 0.1·that.
  EXPECT_ALL_CLOSE(b, from({1.5, 0.0}), 1e-15, 0.0);
  EXPECT_ALL_CLOSE(p, from({1.0 - 0.1 * 2.85, 2.0}), 1e-15, 0.0);
  const raw::SgdParams damp{.lr = 1.0, .momentum = 0.5, .dampening = 0.25};
  Tensor q = from({0.0}), c = from({2.0});
  raw::sgd_update_(q, from({4.0}), c, damp, false);
  EXPECT_ALL_CLOSE(c, from({0.5 * 2.0 + 0.75 * 4.0}), 1e-15, 0.0);
  EXPECT_ALL_CLOSE(q, from({-4.0}), 1e-15, 0.0);
  // Without momentum no buffer is needed.
  Tensor r = from({1.0});
  raw::sgd_update_(r, from({2.0}), Tensor(), {.lr = 0.25}, false);
  EXPECT_ALL_CLOSE(r, from({0.5}), 0.0, 0.0);
}

TEST(OptimOps, ReducedPrecisionParametersRoundOnceFromFloat32) {
  // bfloat16 / float16 updates compute in float32 and round the stored values once: the result
  // equals the float32 update of the same (exactly representable) inputs, rounded.
  const std::vector<double> p0 = {0.5, -1.25, 2.0, 0.75}, g = {0.125, -0.25, 0.5, 1.0};
  const raw::AdamParams hp{.lr = 0.01, .weight_decay = 0.01, .decoupled_weight_decay = true};
  for (DType dtype : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor p = from(p0, dtype), m = raw::zeros({4}, dtype), v = raw::zeros({4}, dtype);
    Tensor p32 = from(p0, kFloat32), m32 = raw::zeros({4}), v32 = raw::zeros({4});
    raw::adam_update_(p, from(g, dtype), m, v, Tensor(), hp, 1);
    raw::adam_update_(p32, from(g, kFloat32), m32, v32, Tensor(), hp, 1);
    EXPECT_TRUE(test::bitwise_equal(m, raw::to(m32, dtype)));
    EXPECT_TRUE(test::bitwise_equal(v, raw::to(v32, dtype)));
    // p32 used the unrounded moments; one rounding step apart at most.
    EXPECT_ALL_CLOSE(raw::to(p, kFloat32), p32, dtype == kBFloat16 ? 8e-3 : 1e-3, 0.0);
  }
}

TEST(OptimOps, UnscaleFindsInfAndNaNAndScalesEveryGradient) {
  Tensor a = raw::from_vector(std::vector<float>{2.0f, -4.0f, 8.0f}, {3});
  Tensor b = raw::to(raw::from_vector(std::vector<float>{16.0f, 1.0f}, {2}), kBFloat16);
  EXPECT_FALSE(raw::unscale_and_check_finite_({a, b}, 0.5f));
  EXPECT_ALL_CLOSE(a, raw::from_vector(std::vector<float>{1.0f, -2.0f, 4.0f}, {3}), 0.0, 0.0);
  EXPECT_ALL_CLOSE(raw::to(b, kFloat32), raw::from_vector(std::vector<float>{8.0f, 0.5f}, {2}), 0.0,
                   0.0);
  for (double bad : {double(INFINITY), -double(INFINITY), double(NAN)}) {
    Tensor c = raw::from_vector(std::vector<float>{1.0f, float(bad), 3.0f}, {3});
    EXPECT_TRUE(raw::unscale_and_check_finite_({a, c}, 0.25f)) << bad;
    EXPECT_EQ(c.to_vector<float>()[2], 0.75f);  // scaled anyway, as torch
  }
  EXPECT_FALSE(raw::unscale_and_check_finite_({}, 0.5f));
}

TEST(OptimOps, EmaMovesTheAverageTowardTheParameter) {
  Tensor s = from({1.0, 2.0}), p = from({3.0, -2.0});
  raw::ema_update_(s, p, 0.75);
  EXPECT_ALL_CLOSE(s, from({1.5, 1.0}), 1e-15, 0.0);
  raw::ema_update_(s, p, 0.0);
  EXPECT_ALL_CLOSE(s, p, 0.0, 0.0);
}

TEST(OptimOps, ResultsDoNotDependOnTheLayout) {
  // A transposed gradient and a strided (sliced) parameter give the same values as contiguous.
  Generator gen(9);
  const Tensor init = raw::randn({40, 70}, gen), gt = raw::randn({70, 40}, gen);
  Tensor dense = raw::clone(init), m1 = raw::zeros({40, 70}), v1 = raw::zeros({40, 70});
  Tensor big = raw::zeros({40, 140});
  Tensor strided = raw::narrow(big, 1, 70, 70);
  raw::copy_(strided, init);
  Tensor m2 = raw::zeros({40, 70}), v2 = raw::zeros({40, 70});
  const raw::AdamParams hp{.lr = 0.01};
  raw::adam_update_(dense, raw::contiguous(raw::transpose(gt, 0, 1)), m1, v1, Tensor(), hp, 1);
  raw::adam_update_(strided, raw::transpose(gt, 0, 1), m2, v2, Tensor(), hp, 1);
  EXPECT_TRUE(test::bitwise_equal(strided, dense));
  EXPECT_TRUE(test::bitwise_equal(m2, m1));
}

TEST(OptimOps, BadArgumentsAreErrors) {
  Tensor p = raw::zeros({3}), m = raw::zeros({3}), v = raw::zeros({3});
  EXPECT_ERROR_CONTAINS(raw::adam_update_(p, raw::zeros({4}), m, v, Tensor(), {}, 1),
                        "adam_update_: the gradient is float32[4] but the parameter is float32[3]");
  EXPECT_ERROR_CONTAINS(raw::adam_update_(p, raw::zeros({3}, kFloat64), m, v, Tensor(), {}, 1),
                        "the gradient is float64[3]");
  EXPECT_ERROR_CONTAINS(raw::adam_update_(p, raw::zeros({3}), m, v, Tensor(), {.amsgrad = true}, 1),
                        "adam_update_: max_exp_avg_sq is undefined");
  EXPECT_ERROR_CONTAINS(raw::adam_update_(p, raw::zeros({3}), m, v, Tensor(), {}, 0),
                        "step must be >= 1");
  EXPECT_ERROR_CONTAINS(raw::sgd_update_(p, raw::zeros({3}), Tensor(), {.momentum = 0.9}, true),
                        "sgd_update_: the momentum buffer is undefined");
  EXPECT_ERROR_CONTAINS(
      raw::sgd_update_(raw::zeros({3}, kInt64), raw::zeros({3}, kInt64), Tensor(), {}, false),
      "sgd_update_: expected a floating parameter tensor, got int64[3]");
  EXPECT_ERROR_CONTAINS(raw::unscale_and_check_finite_({raw::zeros({2}, kInt32)}, 1.0f),
                        "unscale_and_check_finite_: expected floating gradients, got int32[2]");
  EXPECT_ERROR_CONTAINS(raw::ema_update_(raw::zeros({2}), p, 0.5),
                        "ema_update_: the average is float32[2]");
}
