// Gradients of the differentiable conv2d, pooling, upsampling, matmul, bmm and linear: finite
// differences in float64 (gradcheck), second derivatives through create_graph, and the
// gradients PyTorch computes for the golden cases (tests/golden/gen_conv.py).
#include <gtest/gtest.h>

#include "autograd/conv.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/linalg.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

const std::map<std::string, Tensor>& fixture() {
  static const auto f = test::load_fixture("conv.safetensors");
  return f;
}
Tensor fx(const std::string& key) {
  return test::fixture_tensor(fixture(), key);
}

// A float64 leaf that requires grad.
Tensor leaf(const Shape& shape, Generator& gen) {
  Tensor t = raw::randn(shape, gen, kFloat64);
  t.set_requires_grad(true);
  return t;
}

// A leaf copy of a fixture tensor.
Tensor fixture_leaf(const std::string& key) {
  Tensor t = raw::clone(fx(key));
  t.set_requires_grad(true);
  return t;
}

Pool2dParams pool(Int2 k, Int2 s, Int2 p, Int2 d = {1, 1}, bool ceil = false, bool incl = true) {
  Pool2dParams r;
  r.kernel = k, r.stride = s, r.padding = p, r.dilation = d, r.ceil_mode = ceil;
  r.count_include_pad = incl;
  return r;
}

// gradcheck of the first derivative itself: (inputs, v) -> d<f(inputs), v>/d inputs[wrt] with
// create_graph, so the backward ops are differentiated once more, with respect to the other
// inputs and to the incoming gradient v. (gradcheck evaluates its function under NoGradGuard for
// the finite differences; a function that takes a gradient turns recording back on.)
bool gradcheck_second_order(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, size_t wrt) {
  Generator gen(99);
  Tensor v = raw::randn(f(inputs).sizes(), gen, kFloat64);
  v.set_requires_grad(true);
  inputs.push_back(v);
  return gradcheck(
      [&](const std::vector<Tensor>& in) {
        autograd::EnableGradGuard grad_on;
        Tensor out = f(in);
        return autograd::grad({out}, {in[wrt]}, {in.back()}, true, true)[0];
      },
      inputs);
}

}  // namespace

TEST(ConvGrad, Conv2dGradcheck) {
  Generator gen(1);
  const Conv2dParams ps[] = {{{1, 1}, {0, 0}, {1, 1}, 1},
                             {{2, 2}, {1, 1}, {1, 1}, 1},
                             {{1, 2}, {2, 1}, {2, 1}, 2},
                             {{1, 1}, {1, 1}, {1, 1}, 4}};
  for (const Conv2dParams& p : ps) {
    SCOPED_TRACE(::testing::Message()
                 << "stride " << p.stride[0] << "," << p.stride[1] << " groups " << p.groups);
    const Tensor x = leaf({2, 4, 6, 5}, gen), w = leaf({4, 4 / p.groups, 3, 2}, gen);
    const Tensor b = leaf({4}, gen);
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); }, {x, w, b}));
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], {}, p); }, {x, w}));
  }
}

TEST(ConvGrad, Conv2dSecondDerivatives) {
  Generator gen(2);
  const Conv2dParams p{{2, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = leaf({1, 2, 5, 4}, gen), w = leaf({3, 2, 3, 3}, gen), b = leaf({3}, gen);
  auto f = [&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); };
  // d/dx is bwd_input(v, w), a function of (v, w); d/dw is bwd_weight(v, x), of (v, x).
  EXPECT_TRUE(gradcheck_second_order(f, {x, w, b}, 0));
  EXPECT_TRUE(gradcheck_second_order(f, {x, w, b}, 1));
}

TEST(ConvGrad, Conv2dMatchesPyTorchGradients) {
  for (const char* name : {"s2p1", "g2", "dw", "pw", "rect"}) {
    SCOPED_TRACE(name);
    const std::string k = std::string("conv_") + name + ".";
    const Tensor x = fixture_leaf(k + "x"), w = fixture_leaf(k + "w");
    const bool has_b = fixture().count(k + "b") > 0;
    const Tensor b = has_b ? fixture_leaf(k + "b") : Tensor();
    Conv2dParams p;
    if (std::string(name) == "s2p1") p = {{2, 2}, {1, 1}, {1, 1}, 1};
    if (std::string(name) == "g2") p = {{2, 1}, {1, 0}, {1, 1}, 2};
    if (std::string(name) == "dw") p = {{1, 1}, {1, 1}, {1, 1}, 5};
    if (std::string(name) == "rect") p = {{1, 2}, {1, 2}, {2, 1}, 1};
    const Tensor y = conv2d(x, w, b, p);
    EXPECT_ALL_CLOSE(y, fx(k + "out"), 1e-4, 1e-4);
    std::vector<Tensor> wrt{x, w};
    if (has_b) wrt.push_back(b);
    const auto grads = autograd::grad({y}, wrt, {fx(k + "gy")});
    EXPECT_ALL_CLOSE(grads[0], fx(k + "grad_x"), 1e-4, 1e-4);
    EXPECT_ALL_CLOSE(grads[1], fx(k + "grad_w"), 1e-4, 1e-4);
    if (has_b) {
      EXPECT_ALL_CLOSE(grads[2], fx(k + "grad_b"), 1e-4, 1e-4);
    }
  }
}

TEST(PoolGrad, GradcheckEveryPoolAndUpsample) {
  Generator gen(3);
  const Tensor x = leaf({2, 3, 7, 6}, gen);
  using Fn = std::function<Tensor(const Tensor&)>;
  const std::pair<const char*, Fn> ops[] = {
      {"max_pool2d",
       [](const Tensor& t) {
         return max_pool2d(t, pool({3, 3}, {2, 2}, {1, 1}));
       }},
      {"max_pool2d dilated ceil",
       [](const Tensor& t) {
         return max_pool2d(t, pool({2, 3}, {2, 1}, {1, 1}, {2, 1}, true));
       }},
      {"avg_pool2d incl",
       [](const Tensor& t) {
         return avg_pool2d(t, pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, true));
       }},
      {"avg_pool2d excl",
       [](const Tensor& t) {
         return avg_pool2d(t, pool({3, 2}, {2, 1}, {1, 1}, {1, 1}, true, false));
       }},
      {"adaptive_avg_pool2d",
       [](const Tensor& t) {
         return adaptive_avg_pool2d(t, {3, 4});
       }},
      {"upsample_nearest2d",
       [](const Tensor& t) {
         return upsample_nearest2d(t, {11, 9});
       }},
      {"upsample_bilinear2d",
       [](const Tensor& t) {
         return upsample_bilinear2d(t, {11, 4}, false);
       }},
      {"upsample_bilinear2d align",
       [](const Tensor& t) {
         return upsample_bilinear2d(t, {9, 13}, true);
       }},
  };
  for (const auto& [name, op] : ops) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return op(in[0]); }, {x}));
    // The backward, a map of the incoming gradient v, is itself differentiable.
    const Tensor v = leaf(op(x).sizes(), gen);
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& in) {
          autograd::EnableGradGuard grad_on;
          return autograd::grad({op(x)}, {x}, {in[0]}, true, true)[0];
        },
        {v}));
  }
}

TEST(PoolGrad, MatchesPyTorchGradients) {
  struct Case {
    std::string key;
    std::function<Tensor(const Tensor&)> op;
  };
  const Case cases[] = {
      {"maxpool_ceil.",
       [](const Tensor& t) {
         return max_pool2d(t, pool({3, 3}, {2, 2}, {0, 0}, {1, 1}, true));
       }},
      {"avgpool_ceil_excl.",
       [](const Tensor& t) {
         return avg_pool2d(t, pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false));
       }},
      {"adaptive_down.",
       [](const Tensor& t) {
         return adaptive_avg_pool2d(t, {3, 4});
       }},
      {"nearest_odd.",
       [](const Tensor& t) {
         return upsample_nearest2d(t, {8, 11});
       }},
      {"bilinear_odd_ac1.",
       [](const Tensor& t) {
         return upsample_bilinear2d(t, {8, 11}, true);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    const Tensor x = fixture_leaf(c.key + "x");
    const Tensor y = c.op(x);
    EXPECT_ALL_CLOSE(y, fx(c.key + "out"), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(autograd::grad({y}, {x}, {fx(c.key + "gy")})[0], fx(c.key + "grad_x"), 1e-5,
                     1e-6);
  }
}

TEST(LinalgGrad, MatmulGradcheckAllRanks) {
  Generator gen(4);
  const std::pair<Shape, Shape> cases[] = {
      {{4, 3}, {3, 5}}, {{3}, {3}},          {{3}, {3, 4}},
      {{4, 3}, {3}},    {{2, 4, 3}, {3, 5}}, {{2, 1, 4, 3}, {3, 3, 2}},
      {{3}, {2, 3, 4}}, {{2, 4, 3}, {3}},
  };
  for (const auto& [as, bs] : cases) {
    SCOPED_TRACE(shape_str(as) + " x " + shape_str(bs));
    const Tensor a = leaf(as, gen), b = leaf(bs, gen);
    auto f = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
    EXPECT_TRUE(gradcheck(f, {a, b}));
    EXPECT_TRUE(gradcheck_second_order(f, {a, b}, 0));
  }
  const Tensor a = leaf({3, 2, 4}, gen), b = leaf({3, 4, 5}, gen);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return bmm(in[0], in[1]); }, {a, b}));
}

TEST(LinalgGrad, LinearGradcheck) {
  Generator gen(6);
  const Tensor x = leaf({2, 3, 4}, gen), w = leaf({5, 4}, gen), b = leaf({5}, gen);
  auto f = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  EXPECT_TRUE(gradcheck(f, {x, w, b}));
  EXPECT_TRUE(gradcheck_second_order(f, {x, w, b}, 1));
  EXPECT_TRUE(
      gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, w}));
}

TEST(LinalgGrad, MatchesPyTorchGradients) {
  for (const char* name : {"mm", "dot", "vm", "mv", "bcast", "bvec", "vb"}) {
    SCOPED_TRACE(name);
    const std::string k = std::string("matmul_") + name + ".";
    const Tensor a = fixture_leaf(k + "a"), b = fixture_leaf(k + "b");
    const Tensor y = matmul(a, b);
    EXPECT_ALL_CLOSE(y, fx(k + "out"), 1e-5, 1e-5);
    const auto g = autograd::grad({y}, {a, b}, {fx(k + "gy")});
    EXPECT_ALL_CLOSE(g[0], fx(k + "grad_a"), 1e-5, 1e-5);
    EXPECT_ALL_CLOSE(g[1], fx(k + "grad_b"), 1e-5, 1e-5);
  }
  const Tensor x = fixture_leaf("linear_bias.x"), w = fixture_leaf("linear_bias.w");
  const Tensor b = fixture_leaf("linear_bias.b");
  const auto g = autograd::grad({linear(x, w, b)}, {x, w, b}, {fx("linear_bias.gy")});
  EXPECT_ALL_CLOSE(g[0], fx("linear_bias.grad_x"), 1e-5, 1e-5);
  EXPECT_ALL_CLOSE(g[1], fx("linear_bias.grad_w"), 1e-5, 1e-5);
  EXPECT_ALL_CLOSE(g[2], fx("linear_bias.grad_b"), 1e-5, 1e-5);
}

TEST(LinalgGrad, LeafGradientsAccumulateThroughBackward) {
  Generator gen(8);
  const Tensor a = leaf({3, 4}, gen), b = leaf({4, 2}, gen);
  const Tensor y = matmul(a, b);
  cxr::autograd::backward({y}, {raw::ones({3, 2}, kFloat64)});
  // d sum(A B) / dA = 1 Bᵀ: every row of the gradient is the row sums of B.
  const auto bv = b.to_vector<double>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 4; ++k)
      EXPECT_NEAR(a.grad().at({i, k}), bv[size_t(k * 2)] + bv[size_t(k * 2 + 1)], 1e-12);
}
