// nn/init and the layers' default initialisation: bounds and standard deviations as PyTorch's
// formulas state them (torch/nn/init.py; Glorot & Bengio 2010; He et al. 2015), moments of the
// truncated normal, reproducibility from a Generator, and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "nn/nn.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats stats(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  Stats s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / double(v.size() - 1));
  return s;
}

// U(-b, b): inside the bounds, reaching close to them, std b/sqrt(3) and mean 0 (tolerances are
// several standard errors for the sample sizes used).
void expect_uniform(const Tensor& t, double bound, const char* what) {
  SCOPED_TRACE(what);
  Stats s = stats(t);
  const double n = double(t.numel());
  EXPECT_GE(s.min, -bound);
  EXPECT_LE(s.max, bound);
  EXPECT_GT(s.max, bound * (1 - 20 / n));
  EXPECT_LT(s.min, -bound * (1 - 20 / n));
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 5 * bound / std::sqrt(3.0) / std::sqrt(2 * n));
  EXPECT_NEAR(s.mean, 0.0, 5 * bound / std::sqrt(3.0) / std::sqrt(n));
}

void expect_normal(const Tensor& t, double mean, double stddev, const char* what) {
  SCOPED_TRACE(what);
  Stats s = stats(t);
  const double n = double(t.numel());
  EXPECT_NEAR(s.mean, mean, 5 * stddev / std::sqrt(n));
  EXPECT_NEAR(s.std, stddev, 5 * stddev / std::sqrt(2 * n));
}

double phi(double x) {
  return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
}
double cdf(double x) {
  return 0.5 * (1 + std::erf(x / std::sqrt(2.0)));
}

}  // namespace

TEST(Init, LinearAndConvDefaultsAreKaimingUniformWithSqrt5) {
  manual_seed(1);
  Linear fc(400, 300);
  // kaiming_uniform(a=sqrt(5)): gain sqrt(2/6), bound sqrt(3)·gain/sqrt(fan_in) = 1/sqrt(fan_in).
  expect_uniform(fc.weight, 1.0 / std::sqrt(400.0), "Linear weight");
  EXPECT_LE(stats(fc.bias).max, 1.0 / std::sqrt(400.0));
  EXPECT_GE(stats(fc.bias).min, -1.0 / std::sqrt(400.0));
  EXPECT_GT(stats(fc.bias).max, 0.8 / std::sqrt(400.0));

  Conv2d conv(32, 64, 3, {.groups = 2});  // fan_in = 16 * 3 * 3
  expect_uniform(conv.weight, 1.0 / std::sqrt(144.0), "Conv2d weight");
  EXPECT_LE(std::max(stats(conv.bias).max, -stats(conv.bias).min), 1.0 / 12.0);
}

TEST(Init, LayerDefaults) {
  manual_seed(2);
  Embedding emb(1000, 64);
  expect_normal(emb.weight, 0.0, 1.0, "Embedding");
  GroupNorm gn(4, 8);
  LayerNorm ln({8});
  BatchNorm2d bn(8);
  for (Module* m : std::vector<Module*>{&gn, &ln, &bn}) {
    EXPECT_EQ(stats(m->tensor("weight")).min, 1.0);
    EXPECT_EQ(stats(m->tensor("weight")).max, 1.0);
    EXPECT_EQ(stats(m->tensor("bias")).min, 0.0);
    EXPECT_EQ(stats(m->tensor("bias")).max, 0.0);
  }
  EXPECT_EQ(stats(bn.running_mean).max, 0.0);
  EXPECT_EQ(stats(bn.running_var).min, 1.0);
  EXPECT_EQ(bn.num_batches_tracked.item(), 0);
  MultiheadAttention mha(64, 4);  // xavier_uniform on [192, 64]: bound sqrt(6 / (64 + 192))
  expect_uniform(mha.in_proj_weight, std::sqrt(6.0 / 256.0), "MHA in_proj_weight");
}

TEST(Init, XavierAndKaiming) {
  Generator gen(3);
  Tensor w = raw::empty({200, 100, 3, 3});  // fan_in 900, fan_out 1800
  EXPECT_EQ(init::fan_in_and_fan_out(w), (std::pair<int64_t, int64_t>{900, 1800}));
  init::xavier_uniform(w, 2.0, gen);
  expect_uniform(w, 2.0 * std::sqrt(6.0 / 2700.0), "xavier_uniform");
  init::xavier_normal(w, 1.0, gen);
  expect_normal(w, 0.0, std::sqrt(2.0 / 2700.0), "xavier_normal");
  init::kaiming_uniform(w, 0.0, init::FanMode::FanIn, "relu", gen);
  expect_uniform(w, std::sqrt(6.0 / 900.0), "kaiming_uniform relu fan_in");
  init::kaiming_normal(w, 0.0, init::FanMode::FanOut, "relu", gen);
  expect_normal(w, 0.0, std::sqrt(2.0 / 1800.0), "kaiming_normal relu fan_out");
  init::kaiming_normal(w, 0.2, init::FanMode::FanIn, "leaky_relu", gen);
  expect_normal(w, 0.0, std::sqrt(2.0 / 1.04) / 30.0, "kaiming_normal leaky_relu(0.2)");
}

TEST(Init, UniformNormalConstant) {
  Generator gen(4);
  Tensor t = raw::empty({100000}, kFloat64);
  init::uniform(t, 2.0, 5.0, gen);
  Stats s = stats(t);
  EXPECT_GE(s.min, 2.0);
  EXPECT_LT(s.max, 5.0);
  EXPECT_NEAR(s.mean, 3.5, 0.02);
  init::normal(t, -1.0, 0.5, gen);
  expect_normal(t, -1.0, 0.5, "normal");
  init::constant(t, 0.25);
  EXPECT_EQ(stats(t).min, 0.25);
  EXPECT_EQ(stats(t).max, 0.25);
  init::ones(t);
  EXPECT_EQ(stats(t).min, 1.0);
  init::zeros(t);
  EXPECT_EQ(stats(t).max, 0.0);
}

TEST(Init, TruncatedNormalHasTheTruncatedMoments) {
  Generator gen(5);
  Tensor t = raw::empty({200000});
  struct Case {
    double mean, stddev, a, b;
  };
  for (Case c : {Case{0, 1, -2, 2}, Case{1, 0.5, 0, 3}, Case{0, 0.02, -0.04, 0.04}}) {
    init::trunc_normal(t, c.mean, c.stddev, c.a, c.b, gen);
    // Moments of N(mean, std²) truncated to [a, b] (Johnson, Kotz & Balakrishnan, ch. 13).
    const double al = (c.a - c.mean) / c.stddev, be = (c.b - c.mean) / c.stddev;
    const double z = cdf(be) - cdf(al);
    const double m = c.mean + c.stddev * (phi(al) - phi(be)) / z;
    const double var =
        c.stddev * c.stddev *
        (1 + (al * phi(al) - be * phi(be)) / z - std::pow((phi(al) - phi(be)) / z, 2));
    Stats s = stats(t);
    SCOPED_TRACE("trunc_normal mean " + std::to_string(c.mean));
    EXPECT_GE(s.min, c.a);
    EXPECT_LE(s.max, c.b);
    EXPECT_NEAR(s.mean, m, 5 * std::sqrt(var / 200000.0));
    EXPECT_NEAR(s.std, std::sqrt(var), 5 * std::sqrt(var) / std::sqrt(400000.0));
  }
  EXPECT_THROW(init::trunc_normal(t, 0, 1, 2, -2, gen), Error);
}

TEST(Init, ReproducibleFromTheGenerator) {
  Tensor a = raw::empty({64}), b = raw::empty({64});
  Generator g1(42), g2(42);
  init::normal(a, 0, 1, g1);
  init::normal(b, 0, 1, g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  init::normal(b, 0, 1, g2);  // the next draw differs
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
  // Layers draw from the default generator: a seed fixes a model's initial weights.
  manual_seed(7);
  Linear l1(8, 8);
  manual_seed(7);
  Linear l2(8, 8);
  EXPECT_EQ(l1.weight.to_vector<float>(), l2.weight.to_vector<float>());
  EXPECT_EQ(l1.bias.to_vector<float>(), l2.bias.to_vector<float>());
  // reset_parameters from an explicit generator.
  Generator g3(9), g4(9);
  l1.reset_parameters(g3);
  l2.reset_parameters(g4);
  EXPECT_EQ(l1.weight.to_vector<float>(), l2.weight.to_vector<float>());
}

TEST(Init, GainsAndErrors) {
  EXPECT_DOUBLE_EQ(init::calculate_gain("linear"), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("conv2d"), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("sigmoid"), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain("leaky_relu", 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(init::calculate_gain("selu"), 0.75);
  EXPECT_THROW(init::calculate_gain("swish"), Error);
  EXPECT_THROW(init::xavier_uniform(raw::empty({5})), Error);  // fans need 2 dims
  EXPECT_THROW(init::normal(raw::empty({5}, kInt64)), Error);
  EXPECT_THROW(init::uniform(Tensor()), Error);
  EXPECT_THROW(init::uniform(raw::empty({5}), 1.0, 0.0), Error);
}
