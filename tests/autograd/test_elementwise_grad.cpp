// Differentiable elementwise ops: gradients against PyTorch (tests/golden/gen_elementwise.py) and
// against finite differences in float64 (gradcheck) for every op, broadcasting and promotion of
// gradients, second derivatives through create_graph, in-place forms, and comparisons (no grad).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "support/tensors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

constexpr const char* kFixture = "elementwise.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// First derivatives by finite differences, then the second derivative: the gradient (with a
// fixed output weight, under create_graph) checked as a function of the same inputs.
void check_first_and_second(const Fn& fn, const std::vector<Tensor>& inputs) {
  EXPECT_TRUE(gradcheck(fn, inputs));
  Tensor out = fn(inputs);
  Tensor v = test::spread_values(out.sizes(), 0.2, 1.3);
  for (size_t wrt = 0; wrt < inputs.size(); ++wrt) {
    auto grad_fn = [&](const std::vector<Tensor>& in) {
      autograd::EnableGradGuard grad_mode;  // gradcheck evaluates under NoGradGuard too
      return autograd::grad({fn(in)}, {in[wrt]}, {v}, false, /*create_graph=*/true)[0];
    };
    // A gradient that does not depend on the inputs (linear ops, piecewise-constant
    // derivatives) has no graph: its derivative is 0 and there is nothing more to check.
    if (!grad_fn(inputs).requires_grad()) continue;
    EXPECT_TRUE(gradcheck(grad_fn, inputs)) << "second derivative w.r.t. input " << wrt;
  }
}

struct UnaryCase {
  const char* name;
  UnaryOp op;
  double lo, hi;  // gradcheck domain
};
const UnaryCase kUnary[] = {
    {"neg", UnaryOp::Neg, -2, 2},
    {"abs", UnaryOp::Abs, -2, 2},
    {"sign", UnaryOp::Sign, -2, 2},
    {"square", UnaryOp::Square, -2, 2},
    {"reciprocal", UnaryOp::Reciprocal, 0.3, 3},
    {"exp", UnaryOp::Exp, -2, 2},
    {"log", UnaryOp::Log, 0.2, 3},
    {"log1p", UnaryOp::Log1p, -0.7, 3},
    {"sqrt", UnaryOp::Sqrt, 0.2, 3},
    {"rsqrt", UnaryOp::Rsqrt, 0.2, 3},
    {"sin", UnaryOp::Sin, -3, 3},
    {"cos", UnaryOp::Cos, -3, 3},
    {"tanh", UnaryOp::Tanh, -2, 2},
    {"sigmoid", UnaryOp::Sigmoid, -4, 4},
    {"relu", UnaryOp::Relu, -2, 2},
    {"silu", UnaryOp::Silu, -4, 4},
    {"gelu", UnaryOp::Gelu, -4, 4},
    {"gelu_tanh", UnaryOp::GeluTanh, -4, 4},
    {"quick_gelu", UnaryOp::QuickGelu, -4, 4},
    {"erf", UnaryOp::Erf, -2.5, 2.5},
};

}  // namespace

// ---- unary ----------------------------------------------------------------------------------

class UnaryGrad : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(UnaryGrad, MatchesTorchAndFiniteDifferences) {
  const UnaryCase c = GetParam();
  const std::string n = std::string("unary.") + c.name;
  Tensor x = test::leaf_copy(fx(n + ".x"));
  Tensor y = unary(c.op, x);
  EXPECT_TRUE(y.requires_grad() || c.op == UnaryOp::Sign);
  auto g = autograd::grad({y}, {x}, {fx(n + ".gy")});
  EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_x"), 1e-4, 1e-5);
  check_first_and_second([&](const std::vector<Tensor>& in) { return unary(c.op, in[0]); },
                         {test::spread_leaf({3, 5}, c.lo, c.hi)});
}

INSTANTIATE_TEST_SUITE_P(Ops, UnaryGrad, ::testing::ValuesIn(kUnary),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(UnaryGrad, NamedFormsAndStridedInputs) {
  Tensor x = test::spread_leaf({4, 3});
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        Tensor t = transpose(in[0], 0, 1);  // strided input and strided gradient
        return add(mul(gelu(t, true), sigmoid(t)), mul(quick_gelu(t), -tanh(t)));
      },
      {x}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return sqrt(exp(in[0])) + log1p(square(in[0])); }, {x}));
}

// ---- binary ---------------------------------------------------------------------------------

TEST(BinaryGrad, BroadcastingMatchesTorch) {
  for (auto [name, op] :
       {std::pair{"add", BinaryOp::Add}, std::pair{"sub", BinaryOp::Sub},
        std::pair{"mul", BinaryOp::Mul}, std::pair{"div", BinaryOp::Div},
        std::pair{"maximum", BinaryOp::Maximum}, std::pair{"minimum", BinaryOp::Minimum},
        std::pair{"pow", BinaryOp::Pow}}) {
    const std::string n = std::string("binary.") + name;
    Tensor a = test::leaf_copy(fx(n + ".a")), b = test::leaf_copy(fx(n + ".b"));
    auto g = autograd::grad({binary(op, a, b)}, {a, b}, {fx(n + ".gy")});
    EXPECT_EQ(g[0].sizes(), a.sizes());
    EXPECT_EQ(g[1].sizes(), b.sizes());
    EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_a"), 1e-5, 1e-5) << name;
    EXPECT_ALL_CLOSE(g[1], fx(n + ".grad_b"), 1e-5, 1e-5) << name;
  }
}

TEST(BinaryGrad, FiniteDifferencesWithBroadcasting) {
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum,
                      BinaryOp::Minimum}) {
    check_first_and_second(
        [op](const std::vector<Tensor>& in) { return binary(op, in[0], in[1]); },
        {test::spread_leaf({3, 1, 4}, -2, 2), test::spread_leaf({2, 1}, 0.5, 1.5)});
  }
  check_first_and_second(
      [](const std::vector<Tensor>& in) { return pow(in[0], in[1]); },
      {test::spread_leaf({3, 1, 4}, 0.3, 2), test::spread_leaf({2, 1}, -1.5, 1.5)});
  // A 0-dim operand and an operand broadcast along a middle dim.
  check_first_and_second([](const std::vector<Tensor>& in) { return in[0] * in[1] - in[1]; },
                         {test::spread_leaf({}, 0.5, 1.5), test::spread_leaf({2, 3})});
  check_first_and_second([](const std::vector<Tensor>& in) { return in[0] / in[1]; },
                         {test::spread_leaf({2, 1, 3}), test::spread_leaf({4, 1}, 0.5, 2)});
}

TEST(BinaryGrad, ScalarFormsAndOperators) {
  check_first_and_second(
      [](const std::vector<Tensor>& in) {
        const Tensor& x = in[0];
        return (2.0 - x) * 3.0 + x / 4.0 - 1.5 / (x + 3.0) + pow(x, 3.0) + pow(2.0, x) +
               (-x) * pow(x + 3.0, 0.5) + (1.0 + x);
      },
      {test::spread_leaf({2, 3})});
}

TEST(BinaryGrad, ScalarFormsMatchTorch) {
  struct Case {
    const char* key;
    std::function<Tensor(const Tensor&)> f;
  };
  for (const Case& c : {Case{"rsub", [](const Tensor& x) { return 3.0 - x; }},
                        Case{"rdiv", [](const Tensor& x) { return 3.0 / x; }},
                        Case{"rpow", [](const Tensor& x) { return pow(2.0, x); }},
                        Case{"pow_scalar.3.5", [](const Tensor& x) { return pow(x, 3.5); }},
                        Case{"pow_scalar.-0.5", [](const Tensor& x) { return pow(x, -0.5); }},
                        Case{"pow_scalar.0.0", [](const Tensor& x) { return pow(x, 0.0); }}}) {
    const std::string k = c.key;
    Tensor x = test::leaf_copy(fx(k + ".x"));
    auto g = autograd::grad({c.f(x)}, {x}, {fx(k + ".gy")});
    EXPECT_ALL_CLOSE(g[0], fx(k + ".grad_x"), 1e-5, 1e-5) << k;
  }
}

TEST(BinaryGrad, PromotedInputsGetGradientsInTheirOwnDtype) {
  Tensor a = raw::from_vector(std::vector<float>{1, 2, 3}, {3});
  a.set_requires_grad(true);
  Tensor b = raw::from_vector(std::vector<double>{0.5, -1, 2}, {3});
  b.set_requires_grad(true);
  Tensor y = a * b;
  EXPECT_EQ(y.dtype(), kFloat64);
  auto g = autograd::grad({sum(y)}, {a, b});
  EXPECT_EQ(g[0].dtype(), kFloat32);
  EXPECT_EQ(g[1].dtype(), kFloat64);
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{0.5, -1, 2}));
  EXPECT_EQ(g[1].to_vector<double>(), (std::vector<double>{1, 2, 3}));
  // An integer operand takes no gradient; the float one does.
  Tensor i = raw::arange(1, 4, 1, kInt64);
  auto gi = autograd::grad({sum(a * i)}, {a});
  EXPECT_EQ(gi[0].to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

// ---- activations ------------------------------------------------------------------------------

TEST(ActivationGrad, MatchTorchAndFiniteDifferences) {
  auto golden = [](const std::string& k, const std::function<Tensor(const Tensor&)>& f) {
    Tensor x = test::leaf_copy(fx(k + ".x"));
    auto g = autograd::grad({f(x)}, {x}, {fx(k + ".gy")});
    EXPECT_ALL_CLOSE(g[0], fx(k + ".grad_x"), 1e-5, 1e-6) << k;
  };
  golden("leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); });
  golden("softplus", [](const Tensor& x) { return softplus(x, 2.0, 5.0); });
  golden("softplus_default", [](const Tensor& x) { return softplus(x); });
  golden("clamp_grad", [](const Tensor& x) { return clamp(x, -0.5, 0.7); });
  {
    Tensor a = test::leaf_copy(fx("lerp_tensor.a")), b = test::leaf_copy(fx("lerp_tensor.b")),
           w = test::leaf_copy(fx("lerp_tensor.w"));
    auto g = autograd::grad({lerp(a, b, w)}, {a, b, w}, {fx("lerp_tensor.gy")});
    EXPECT_ALL_CLOSE(g[0], fx("lerp_tensor.grad_a"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(g[1], fx("lerp_tensor.grad_b"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(g[2], fx("lerp_tensor.grad_w"), 1e-5, 1e-6);
    Tensor a2 = test::leaf_copy(fx("lerp_scalar.a")), b2 = test::leaf_copy(fx("lerp_scalar.b"));
    auto g2 = autograd::grad({lerp(a2, b2, 0.3)}, {a2, b2}, {fx("lerp_scalar.gy")});
    EXPECT_ALL_CLOSE(g2[0], fx("lerp_scalar.grad_a"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(g2[1], fx("lerp_scalar.grad_b"), 1e-5, 1e-6);
  }
  check_first_and_second([](const std::vector<Tensor>& in) { return leaky_relu(in[0], 0.1); },
                         {test::spread_leaf({3, 4})});
  check_first_and_second([](const std::vector<Tensor>& in) { return softplus(in[0], 1.5, 2.0); },
                         {test::spread_leaf({3, 4}, -3, 3)});
  check_first_and_second([](const std::vector<Tensor>& in) { return clamp(in[0], -1.1, 0.9); },
                         {test::spread_leaf({3, 4})});
  check_first_and_second(
      [](const std::vector<Tensor>& in) { return clamp_min(in[0], 0.3) + clamp_max(in[0], -0.3); },
      {test::spread_leaf({3, 4})});
  check_first_and_second(
      [](const std::vector<Tensor>& in) { return lerp(in[0], in[1], in[2]); },
      {test::spread_leaf({2, 3}), test::spread_leaf({3}), test::spread_leaf({2, 1}, 0.1, 0.9)});
  check_first_and_second([](const std::vector<Tensor>& in) { return lerp(in[0], in[1], 0.7); },
                         {test::spread_leaf({2, 3}), test::spread_leaf({3})});
}

// ---- comparisons and in-place ----------------------------------------------------------------

TEST(CompareGrad, ComparisonsCarryNoGradient) {
  Tensor x = test::spread_leaf({2, 3});
  for (const Tensor& c : {x == x, x != 0.5, x<0.0, x <= x, x> 1.0, x >= 0.0, eq(x, 1.0)}) {
    EXPECT_EQ(c.dtype(), kBool);
    EXPECT_FALSE(c.requires_grad());
  }
}

TEST(InPlaceGrad, RecordedOnNonLeavesAndRefusedOnLeaves) {
  Tensor x = test::spread_leaf({2, 3});
  Tensor w = test::spread_leaf({3}, 0.5, 1.5);
  // y = ((x * 2 + w) * w - 1) / w, built in place on a non-leaf.
  auto f = [](const Tensor& xx, const Tensor& ww) {
    Tensor y = mul(xx, 2.0);
    add_(y, ww);
    mul_(y, ww);
    sub_(y, 1.0);
    div_(y, ww);
    mul_(y, 3.0);
    div_(y, 2.0);
    add_(y, 0.25);
    sub_(y, ww);
    clamp_(y, -3.0, 3.0);
    return y;
  };
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return f(in[0], in[1]); }, {x, w}));
  // Against the out-of-place formula.
  Tensor want = clamp((((x * 2.0 + w) * w - 1.0) / w * 3.0 / 2.0 + 0.25) - w, -3.0, 3.0);
  auto g1 = autograd::grad({sum(f(x, w))}, {x, w});
  auto g2 = autograd::grad({sum(want)}, {x, w});
  EXPECT_ALL_CLOSE(g1[0], g2[0], 1e-12, 1e-12);
  EXPECT_ALL_CLOSE(g1[1], g2[1], 1e-12, 1e-12);
  // A leaf that requires grad cannot be modified in place under grad mode...
  EXPECT_THROW(add_(x, 1.0), Error);
  EXPECT_THROW(mul_(x, w), Error);
  EXPECT_THROW(clamp_(x, 0, 1), Error);
  // ...but can under NoGradGuard (an optimizer step), without recording.
  {
    autograd::NoGradGuard no_grad;
    Tensor before = raw::clone(x);
    sub_(x, mul(w, 0.5));
    EXPECT_ALL_CLOSE(x, raw::sub(before, raw::mul(w, 0.5)), 0, 0);
  }
  EXPECT_TRUE(x.is_leaf());
  // An integer tensor cannot take a float result in place.
  EXPECT_THROW(add_(raw::zeros({3}, kInt64), w), Error);
}

TEST(InPlaceGrad, ModifyingASavedInputIsReported) {
  Tensor x = test::spread_leaf({4});
  Tensor y = mul(x, 1.0);  // a non-leaf
  Tensor z = exp(y);       // saves y
  add_(y, 1.0);
  EXPECT_THROW(backward(sum(z)), Error);
}
