// Loss functions (autograd/loss.h): values and gradients against PyTorch golden values for every
// option (tests/golden/gen_nn_ops.py), float64 gradcheck, stability for large logits, and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "autograd/loss.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "support/tensors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

constexpr const char* kFixture = "nn_ops.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}
bool has(const std::string& key) {
  return test::cached_fixture(kFixture).count(key) > 0;
}

Tensor req(const std::string& key) {
  return test::leaf_copy(fx(key));
}

Reduction reduction_of(const std::string& name) {
  if (name.find("_sum") != std::string::npos) return Reduction::Sum;
  if (name.find("_none") != std::string::npos) return Reduction::None;
  return Reduction::Mean;
}

// Checks out against "<case>.out" and d(sum(out * gy))/d(inputs) against "<case>.grad_<name>".
void expect_golden(const std::string& n, const Tensor& out,
                   const std::vector<std::pair<std::string, Tensor>>& inputs, double rtol = 1e-5,
                   double atol = 1e-6) {
  EXPECT_ALL_CLOSE(out, fx(n + ".out"), rtol, atol);
  std::vector<Tensor> leaves;
  for (const auto& in : inputs) leaves.push_back(in.second);
  std::vector<Tensor> g = autograd::grad({out}, leaves, {fx(n + ".gy")});
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_ALL_CLOSE(g[i], fx(n + ".grad_" + inputs[i].first), rtol * 10, atol * 10)
        << "grad_" << inputs[i].first;
}

TEST(LossGolden, MseAndL1) {
  for (const std::string red : {"mean", "sum", "none"}) {
    for (const std::string kind : {"mse", "l1"}) {
      const std::string n = kind + "_" + red;
      SCOPED_TRACE(n);
      Tensor x = req(n + ".x"), y = req(n + ".y");
      Tensor out = kind == "mse" ? mse_loss(x, y, reduction_of(n)) : l1_loss(x, y, reduction_of(n));
      expect_golden(n, out, {{"x", x}, {"y", y}});
    }
  }
}

struct CeCase {
  const char* name;
  int64_t ignore_index;
  double smoothing;
};
class CrossEntropyGolden : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropyGolden, IndexTargets) {
  const CeCase c = GetParam();
  const std::string n = c.name;
  Tensor x = req(n + ".x");
  CrossEntropyOptions o;
  o.weight = has(n + ".weight") ? fx(n + ".weight") : Tensor();
  o.ignore_index = c.ignore_index;
  o.reduction = reduction_of(n);
  o.label_smoothing = c.smoothing;
  expect_golden(n, cross_entropy(x, fx(n + ".target"), o), {{"x", x}});
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CrossEntropyGolden,
    ::testing::Values(CeCase{"ce_mean", -100, 0.0}, CeCase{"ce_sum", -100, 0.0},
                      CeCase{"ce_none", -100, 0.0}, CeCase{"ce_weight_ignore", 2, 0.0},
                      CeCase{"ce_smooth", -100, 0.1},
                      CeCase{"ce_smooth_weight_ignore_mean", 1, 0.2},
                      CeCase{"ce_smooth_weight_ignore_sum", 1, 0.2},
                      CeCase{"ce_smooth_weight_none", -100, 0.2}, CeCase{"ce_kdim", -100, 0.0},
                      CeCase{"ce_kdim_weight_none", 0, 0.0}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LossGolden, CrossEntropyProbabilityTargets) {
  for (const std::string n : {"ce_prob_mean", "ce_prob_weight_smooth_sum", "ce_prob_none"}) {
    SCOPED_TRACE(n);
    Tensor x = req(n + ".x"), t = req(n + ".target");
    CrossEntropyOptions o;
    o.weight = has(n + ".weight") ? fx(n + ".weight") : Tensor();
    o.reduction = reduction_of(n);
    o.label_smoothing = n == "ce_prob_weight_smooth_sum" ? 0.1 : 0.0;
    expect_golden(n, cross_entropy(x, t, o), {{"x", x}, {"target", t}});
  }
}

TEST(LossGolden, NllLoss) {
  for (const std::string n : {"nll_mean", "nll_weight_ignore_mean", "nll_weight_sum", "nll_none"}) {
    SCOPED_TRACE(n);
    Tensor x = req(n + ".x");
    const int64_t ignore = n == "nll_weight_ignore_mean" ? 1 : n == "nll_none" ? 2 : -100;
    Tensor w = has(n + ".weight") ? fx(n + ".weight") : Tensor();
    expect_golden(n, nll_loss(x, fx(n + ".target"), w, ignore, reduction_of(n)), {{"x", x}});
  }
}

TEST(LossGolden, BinaryCrossEntropyWithLogits) {
  for (const std::string n :
       {"bce_mean", "bce_sum", "bce_none", "bce_posw_weight_mean", "bce_posw_none"}) {
    SCOPED_TRACE(n);
    Tensor x = req(n + ".x"), y = req(n + ".y");
    Tensor w = has(n + ".weight") ? fx(n + ".weight") : Tensor();
    Tensor pw = has(n + ".pos_weight") ? fx(n + ".pos_weight") : Tensor();
    expect_golden(n, binary_cross_entropy_with_logits(x, y, w, pw, reduction_of(n)),
                  {{"x", x}, {"y", y}});
  }
}

// ---- gradcheck ------------------------------------------------------------------------------

Tensor leaf(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Generator gen(seed);
  Tensor t = raw::randn(shape, gen, kFloat64, 0.0, scale);
  t.set_requires_grad(true);
  return t;
}

TEST(LossGradcheck, ElementwiseLosses) {
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    EXPECT_TRUE(gradcheck([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                          {leaf({3, 4}, 1), leaf({4}, 2)}));  // target broadcast
    EXPECT_TRUE(gradcheck([r](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); },
                          {leaf({3, 4}, 3), leaf({3, 4}, 4)}));
    Generator wg(5);
    Tensor w = raw::add(raw::abs(raw::randn({2, 3}, wg, kFloat64)), 0.5);
    Tensor pw = raw::from_vector(std::vector<double>{0.5, 2.0, 1.5}, {3});
    Generator tg(6);
    Tensor t = raw::rand({2, 3}, tg, kFloat64);
    t.set_requires_grad(true);
    EXPECT_TRUE(gradcheck(
        [&, r](const std::vector<Tensor>& in) {
          return binary_cross_entropy_with_logits(in[0], in[1], w, pw, r);
        },
        {leaf({2, 3}, 7, 3.0), t}));
  }
}

TEST(LossGradcheck, CrossEntropyAndNll) {
  Tensor w = raw::from_vector(std::vector<double>{0.5, 1.0, 2.0, 1.5}, {4});
  Tensor target = raw::from_vector(std::vector<int64_t>{0, 3, 1, 3, 2, 1}, {2, 3});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CrossEntropyOptions o;
    o.weight = w;
    o.ignore_index = 1;
    o.reduction = r;
    o.label_smoothing = 0.15;
    // [N=2, C=4, d=3] logits with index targets [2, 3].
    EXPECT_TRUE(
        gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], target, o); },
                  {leaf({2, 4, 3}, 8)}));
    EXPECT_TRUE(gradcheck(
        [&, r](const std::vector<Tensor>& in) { return nll_loss(in[0], target, w, 3, r); },
        {leaf({2, 4, 3}, 9)}));
    // Probability targets (both differentiated).
    Generator pg(10);
    Tensor probs = raw::softmax(raw::randn({3, 4}, pg, kFloat64), 1);
    probs.set_requires_grad(true);
    EXPECT_TRUE(
        gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], o); },
                  {leaf({3, 4}, 11), probs}));
  }
  // Unbatched logits [C] with a 0-dim target.
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], raw::scalar_tensor(2, kInt64));
      },
      {leaf({5}, 12)}));
}

// ---- behaviour ------------------------------------------------------------------------------

TEST(Loss, LargeLogitsStayFinite) {
  Tensor x = raw::from_vector(std::vector<float>{-200, 200, 90, -90}, {4});
  Tensor y = raw::from_vector(std::vector<float>{1, 0, 1, 0}, {4});
  Tensor l = binary_cross_entropy_with_logits(x, y, {}, {}, Reduction::None);
  EXPECT_NEAR(l.at({0}), 200.0, 1e-3);
  EXPECT_NEAR(l.at({1}), 200.0, 1e-3);
  EXPECT_NEAR(l.at({2}), 0.0, 1e-6);
  Tensor logits = raw::from_vector(std::vector<float>{1000, 0, -1000}, {1, 3});
  Tensor ce = cross_entropy(logits, raw::from_vector(std::vector<int64_t>{1}, {1}));
  EXPECT_NEAR(ce.item(), 1000.0, 1e-2);
}

TEST(Loss, AllTargetsIgnoredGivesNanMeanLikeTorch) {
  Tensor x = raw::zeros({2, 3});
  Tensor t = raw::from_vector(std::vector<int64_t>{-100, -100}, {2});
  EXPECT_TRUE(std::isnan(cross_entropy(x, t).item()));
  CrossEntropyOptions o;
  o.reduction = Reduction::Sum;
  EXPECT_EQ(cross_entropy(x, t, o).item(), 0.0);
}

TEST(Loss, BadInputThrows) {
  Tensor x = raw::zeros({2, 3});
  EXPECT_THROW(cross_entropy(x, raw::from_vector(std::vector<int64_t>{0, 3}, {2})), Error);
  EXPECT_THROW(cross_entropy(x, raw::from_vector(std::vector<int64_t>{0}, {1})), Error);
  EXPECT_THROW(cross_entropy(x, raw::zeros({2, 4})), Error);  // probability shape
  CrossEntropyOptions o;
  o.weight = raw::ones({4});
  EXPECT_THROW(cross_entropy(x, raw::from_vector(std::vector<int64_t>{0, 1}, {2}), o), Error);
  o.weight = Tensor();
  o.label_smoothing = 1.5;
  EXPECT_THROW(cross_entropy(x, raw::from_vector(std::vector<int64_t>{0, 1}, {2}), o), Error);
  EXPECT_THROW(nll_loss(x, raw::zeros({2})), Error);  // float target
  EXPECT_THROW(mse_loss(x, raw::zeros({4})), Error);
  EXPECT_THROW(mse_loss(raw::zeros({2}, kInt64), raw::zeros({2}, kInt64)), Error);
  EXPECT_THROW(binary_cross_entropy_with_logits(x, raw::zeros({3})), Error);
  EXPECT_ERROR_CONTAINS(cross_entropy(x, raw::from_vector(std::vector<int64_t>{0, 7}, {2})),
                        "cross_entropy");
  EXPECT_ERROR_CONTAINS(cross_entropy(x, raw::from_vector(std::vector<int64_t>{0, 7}, {2})), "7");
}

}  // namespace
