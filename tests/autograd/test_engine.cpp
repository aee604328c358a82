// The backward engine on hand-recorded ops (so these tests depend only on the engine): chain rule
// and accumulation, retain_graph, grad(), higher-order gradients, NoGradGuard, in-place checks,
// checkpointing and gradcheck itself.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

// Differentiable a * b (same shapes) whose backward is itself differentiable.
Tensor tmul(const Tensor& a, const Tensor& b) {
  Tensor out = raw::mul(a, b);
  autograd::record("tmul", {a, b}, {out},
                   [a, b](const std::vector<Tensor>& g) {
                     return std::vector<Tensor>{tmul(g[0], b), tmul(g[0], a)};
                   },
                   {a, b});
  return out;
}

// sum of all elements.
Tensor tsum(const Tensor& x) {
  Tensor out = raw::sum(x);
  Shape shape = x.sizes();
  autograd::record("tsum", {x}, {out}, [shape](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{raw::contiguous(raw::expand(g[0], shape))};
  });
  return out;
}

// exp(x) whose backward captures its own output the documented way.
Tensor texp(const Tensor& x) {
  Tensor out = raw::exp(x);
  Tensor saved = raw::alias(out);
  autograd::record(
      "texp", {x}, {out},
      [saved](const std::vector<Tensor>& g) { return std::vector<Tensor>{raw::mul(g[0], saved)}; },
      {saved});
  return out;
}

// A deliberately wrong derivative (d/dx x^2 reported as x).
Tensor wrong_square(const Tensor& x) {
  Tensor out = raw::mul(x, x);
  autograd::record("wrong_square", {x}, {out}, [x](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{raw::mul(g[0], x)};
  });
  return out;
}

Tensor leaf(std::vector<double> values, DType dtype = kFloat64) {
  Tensor t = raw::from_vector(values, {int64_t(values.size())}, dtype);
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST(Engine, ChainRuleAndAccumulationOverSharedInputs) {
  Tensor x = leaf({1.0, 2.0, -3.0});
  // L = sum(x * x * x): dL/dx = 3 x^2, with x reaching the product along three edges.
  Tensor loss = tsum(tmul(tmul(x, x), x));
  backward(loss);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3.0, 12.0, 27.0}));
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(loss.is_leaf());
}

TEST(Engine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({2.0});
  backward(tsum(tmul(x, x)));
  backward(tsum(tmul(x, x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{8.0}));
}

TEST(Engine, SecondBackwardNeedsRetainGraph) {
  Tensor x = leaf({1.5});
  Tensor loss = tsum(texp(x));
  backward(loss, Tensor(), /*retain_graph=*/true);
  backward(loss);
  EXPECT_NEAR(x.grad().item(), 2 * std::exp(1.5), 1e-12);
  EXPECT_ERROR_CONTAINS(backward(loss), "second time");
}

TEST(Engine, NonScalarRootNeedsAGradient) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = tmul(x, x);
  EXPECT_THROW(backward(y), Error);
  backward(y, raw::from_vector(std::vector<double>{1.0, 0.5}, {2}, kFloat64));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0}));
}

TEST(Engine, GradReturnsWithoutTouchingDotGrad) {
  Tensor x = leaf({3.0});
  Tensor y = tsum(tmul(x, x));
  auto g = autograd::grad({y}, {x});
  EXPECT_EQ(g[0].item(), 6.0);
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, CreateGraphGivesSecondDerivatives) {
  Tensor x = leaf({2.0, -1.0});
  Tensor y = tsum(tmul(tmul(x, x), x));                                 // sum x^3
  auto g = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true);  // 3 x^2
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{12.0, 3.0}));
  ASSERT_TRUE(g[0].requires_grad());
  auto gg = autograd::grad({tsum(g[0])}, {x});  // 6 x
  EXPECT_EQ(gg[0].to_vector<double>(), (std::vector<double>{12.0, -6.0}));
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1.0});
  {
    autograd::NoGradGuard guard;
    Tensor y = tmul(x, x);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_TRUE(tmul(x, x).requires_grad());
}

TEST(Engine, RootWithoutHistoryIsAClearError) {
  Tensor x = raw::ones({1}, kFloat64);
  EXPECT_ERROR_CONTAINS(backward(x), "does not require grad");
}

TEST(Engine, InPlaceChangeOfASavedTensorIsDetected) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = tmul(x, x);
  Tensor e = texp(y);  // saves its output
  raw::fill_(e, 0.0);  // modifies it behind autograd's back
  EXPECT_ERROR_CONTAINS(backward(tsum(e)), "modified in place");
}

TEST(Engine, InPlaceOnALeafThatRequiresGradIsRefused) {
  Tensor x = leaf({1.0});
  Tensor two = raw::full({1}, 2.0, kFloat64);
  EXPECT_THROW(autograd::record_inplace("mul_", x, raw::mul(x, two), {x, two},
                                        [](const std::vector<Tensor>& g) { return g; }),
               Error);
}

TEST(Engine, InPlaceOnANonLeafRebasesItsHistory) {
  Tensor x = leaf({1.0, 3.0});
  Tensor y = tmul(x, x);  // x^2
  Tensor three = raw::full({2}, 3.0, kFloat64);
  // y *= 3 in place: dL/dy_old = 3 g.
  autograd::record_inplace("mul_", y, raw::mul(y, three), {y, three},
                           [three](const std::vector<Tensor>& g) {
                             return std::vector<Tensor>{raw::mul(g[0], three), Tensor()};
                           });
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{3.0, 27.0}));
  backward(tsum(y));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6.0, 18.0}));  // 6 x
}

TEST(Engine, CheckpointMatchesDirectGradients) {
  Tensor x = leaf({0.5, -1.0, 2.0});
  auto block = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{texp(tmul(in[0], in[0]))};
  };
  backward(tsum(block({x})[0]));
  std::vector<double> direct = x.grad().to_vector<double>();
  x.set_grad(Tensor());
  auto out = autograd::checkpoint(block, {x}, {});
  ASSERT_TRUE(out[0].requires_grad());
  backward(tsum(out[0]));
  EXPECT_EQ(x.grad().to_vector<double>(), direct);
}

// Parameters used inside the block get the same gradients as without checkpointing, also when
// the block's input needs no gradient (the first block of a network).
TEST(Engine, CheckpointGivesParametersTheirGradients) {
  Tensor w = leaf({0.5, -2.0, 1.5});
  for (bool input_requires_grad : {true, false}) {
    Tensor x = input_requires_grad
                   ? leaf({1.0, 2.0, -1.0})
                   : raw::from_vector(std::vector<double>{1.0, 2.0, -1.0}, {3}, kFloat64);
    auto block = [&w](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{texp(tmul(in[0], w))};
    };
    w.set_grad(Tensor());
    backward(tsum(block({x})[0]));
    const std::vector<double> direct = w.grad().to_vector<double>();
    w.set_grad(Tensor());
    auto out = autograd::checkpoint(block, {x}, {w});
    ASSERT_TRUE(out[0].requires_grad());
    backward(tsum(out[0]));
    ASSERT_TRUE(w.grad().defined());
    EXPECT_EQ(w.grad().to_vector<double>(), direct) << input_requires_grad;
  }
}

TEST(Engine, CheckpointReplaysTheRandomStream) {
  Tensor x = leaf({1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0});
  Generator gen(77);
  std::vector<double> masks;
  auto block = [&gen, &masks](const std::vector<Tensor>& in) {
    Tensor m = raw::bernoulli({8}, 0.5, gen, kFloat64);
    auto v = m.to_vector<double>();
    masks.insert(masks.end(), v.begin(), v.end());
    return std::vector<Tensor>{tmul(in[0], m)};
  };
  auto out = autograd::checkpoint(block, {x}, {}, &gen);
  backward(tsum(out[0]));
  ASSERT_EQ(masks.size(), 16u);
  EXPECT_EQ(std::vector<double>(masks.begin(), masks.begin() + 8),
            std::vector<double>(masks.begin() + 8, masks.end()));
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>(masks.begin(), masks.begin() + 8));
}

TEST(Gradcheck, AcceptsACorrectGradientAndRejectsAWrongOne) {
  Tensor x = leaf({0.3, -0.7, 1.1});
  EXPECT_TRUE(
      gradcheck([](const std::vector<Tensor>& in) { return texp(tmul(in[0], in[0])); }, {x}));
  EXPECT_ERROR_CONTAINS(
      gradcheck([](const std::vector<Tensor>& in) { return wrong_square(in[0]); }, {x}),
      "mismatch");
  Tensor f = raw::ones({2});
  f.set_requires_grad(true);
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>& in) { return texp(in[0]); }, {f}), Error);
}
