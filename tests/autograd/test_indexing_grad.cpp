// Differentiable indexing and joining: gradients against PyTorch (tests/golden/gen_indexing.py)
// on non-contiguous inputs, against finite differences (gradcheck, float64) for every op and every
// differentiable input, the backward of the backward (create_graph), and dtype handling of cat.
#include <gtest/gtest.h>

#include <functional>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/indexing.h"
#include "autograd/views.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using Fixture = std::map<std::string, Tensor>;
using Inputs = std::vector<Tensor>;

constexpr const char* kFixture = "indexing.safetensors";

Tensor leaf(const Shape& shape, double scale = 1.0) {
  Tensor t = raw::empty(shape, kFloat64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = scale * (0.3 * double(i) - 1.1 + 0.02 * double(i * i % 7));
  t.set_requires_grad(true);
  return t;
}

Tensor ints(const std::vector<int64_t>& v, const Shape& shape, DType dtype = kInt64) {
  return raw::from_vector(v, shape, dtype);
}

Tensor t01(const Tensor& x) {
  return transpose(x, 0, 1);
}

// gradcheck of fn at `inputs`, and of its backward as a function of the output gradient (the ops
// are linear in their differentiable inputs, so this checks the double-backward graph).
void check_grads(const std::function<Tensor(const Inputs&)>& fn, const Inputs& inputs) {
  EXPECT_TRUE(gradcheck(fn, inputs));
  Inputs wrt;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) wrt.push_back(t);
  Tensor v = leaf(fn(inputs).sizes(), 0.5);
  for (size_t k = 0; k < wrt.size(); ++k) {
    SCOPED_TRACE("double backward, input " + std::to_string(k));
    EXPECT_TRUE(gradcheck(
        [&](const Inputs& in) {
          autograd::EnableGradGuard grad_mode;  // gradcheck evaluates under NoGradGuard too
          return autograd::grad({fn(inputs)}, wrt, {in[0]}, false, /*create_graph=*/true)[k];
        },
        {v}));
  }
}

}  // namespace

// Each golden case: the op on the fixture inputs (same views as the script), and which stored
// inputs get gradients compared (x always).
TEST(IndexingGrad, MatchPyTorchOnNonContiguousInputs) {
  struct Case {
    std::vector<std::string> diff;  // inputs besides x with gradients
    std::function<Tensor(const std::map<std::string, Tensor>&)> fn;
  };
  using M = const std::map<std::string, Tensor>&;
  const std::map<std::string, Case> cases = {
      {"index_select_t",
       {{}, [](M in) { return index_select(t01(in.at("x")), 1, in.at("index")); }}},
      {"index_select_i32", {{}, [](M in) { return index_select(in.at("x"), 0, in.at("index")); }}},
      {"gather_t", {{}, [](M in) { return gather(t01(in.at("x")), 1, in.at("index")); }}},
      {"gather_d0", {{}, [](M in) { return gather(in.at("x"), 0, in.at("index")); }}},
      {"scatter_add",
       {{"src"},
        [](M in) {
          return scatter_add(in.at("x"), 1, in.at("index"), slice(in.at("src"), 1, 0, 100, 2));
        }}},
      {"index_add",
       {{"src"}, [](M in) { return index_add(in.at("x"), 0, in.at("index"), in.at("src")); }}},
      {"masked_fill_t",
       {{}, [](M in) { return masked_fill(t01(in.at("x")), in.at("mask"), -2.5); }}},
      {"where", {{"b"}, [](M in) { return where(in.at("cond"), t01(in.at("x")), in.at("b")); }}},
      {"cat_d1",
       {{"y"},
        [](M in) {
          return cat({t01(in.at("x")), slice(in.at("y"), 1, 0, 100, 2)}, 1);
        }}},
      {"cat_d0",
       {{"y"},
        [](M in) {
          return cat({in.at("x"), in.at("y")}, 0);
        }}},
      {"stack_d1",
       {{"y"},
        [](M in) {
          return stack({t01(in.at("x")), in.at("y")}, 1);
        }}},
      {"pad_constant",
       {{},
        [](M in) {
          return pad(transpose(in.at("x"), 1, 2), {2, 1, 1, 0}, PadMode::Constant, 1.5);
        }}},
      {"pad_negative",
       {{},
        [](M in) {
          return pad(transpose(in.at("x"), 1, 2), {-1, 2, 0, -2});
        }}},
      {"pad_reflect",
       {{},
        [](M in) {
          return pad(transpose(in.at("x"), 1, 2), {2, 1, 3, 2}, PadMode::Reflect);
        }}},
      {"pad_replicate",
       {{},
        [](M in) {
          return pad(transpose(in.at("x"), 1, 2), {2, 1, 1, 3}, PadMode::Replicate);
        }}},
      {"pad_reflect1d",
       {{},
        [](M in) {
          return pad(unsqueeze(slice(in.at("x"), 1, 0, 100, 2), 0), {3, 2}, PadMode::Reflect);
        }}},
      {"flip",
       {{},
        [](M in) {
          return flip(t01(in.at("x")), {0, 2});
        }}},
      {"roll",
       {{},
        [](M in) {
          return roll(t01(in.at("x")), {1, -2}, {0, 2});
        }}},
      {"roll_flat", {{}, [](M in) { return roll(t01(in.at("x")), {5}, {}); }}},
      {"repeat",
       {{},
        [](M in) {
          return repeat(t01(in.at("x")), {2, 1, 3});
        }}},
  };
  for (const auto& [name, c] : cases) {
    SCOPED_TRACE(name);
    std::map<std::string, Tensor> in;
    const std::string prefix = name + ".";
    for (const auto& [key, value] : test::cached_fixture(kFixture))
      if (key.rfind(prefix, 0) == 0) in[key.substr(prefix.size())] = value;
    Inputs wrt;
    std::vector<std::string> names = {"x"};
    names.insert(names.end(), c.diff.begin(), c.diff.end());
    for (const std::string& n : names) {
      in[n] = raw::clone(in.at(n));
      in[n].set_requires_grad(true);
      wrt.push_back(in[n]);
    }
    Tensor out = c.fn(in);
    EXPECT_ALL_CLOSE(out, in.at("out"), 1e-6, 1e-6);
    auto grads = autograd::grad({out}, wrt, {in.at("w")});
    for (size_t i = 0; i < names.size(); ++i) {
      SCOPED_TRACE("grad_" + names[i]);
      EXPECT_ALL_CLOSE(grads[i], in.at("grad_" + names[i]), 1e-5, 1e-6);
    }
  }
}

TEST(IndexingGrad, GradcheckIndexSelectGatherScatter) {
  Tensor x = leaf({4, 3});
  check_grads([](const Inputs& in) { return index_select(in[0], 0, ints({3, 0, 3}, {3})); }, {x});
  check_grads(
      [](const Inputs& in) {
        return index_select(t01(in[0]), 1, ints({2, 2}, {2}, kInt32));
      },
      {x});
  check_grads(
      [](const Inputs& in) {
        return gather(in[0], 1, ints({0, 2, 2, 1, 0, 0}, {3, 2}));
      },
      {x});
  check_grads([](const Inputs& in) { return gather(t01(in[0]), 0, ints({2, 2, 0}, {1, 3})); }, {x});
  // scatter_add: both inputs; src larger than the index (only its leading block is read).
  Tensor src = leaf({3, 4}, 0.5);
  check_grads(
      [](const Inputs& in) {
        return scatter_add(in[0], 1, ints({0, 0, 2, 1, 2, 2}, {2, 3}), in[1]);
      },
      {x, src});
  Tensor s2 = leaf({2, 3}, 0.7);
  check_grads(
      [](const Inputs& in) {
        return index_add(in[0], 0, ints({1, 1}, {2}), in[1]);
      },
      {x, s2});
}

TEST(IndexingGrad, GradcheckMaskedFillAndWhere) {
  Tensor x = leaf({3, 4});
  Tensor mask = raw::from_vector(std::vector<int64_t>{1, 0, 0, 1}, {4}, kBool);
  check_grads([&](const Inputs& in) { return masked_fill(in[0], mask, 3.0); }, {x});
  // Broadcast a [3, 1] against b [4]; the gradients are summed back to each shape.
  Tensor cond =
      raw::from_vector(std::vector<int64_t>{1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1}, {3, 4}, kBool);
  Tensor a = leaf({3, 1}), b = leaf({4}, -0.5);
  check_grads([&](const Inputs& in) { return where(cond, in[0], in[1]); }, {a, b});
  // A non-differentiable (integer) branch promotes to float64 and gets no gradient.
  Tensor ib = ints({1, 2, 3, 4}, {4}, kInt32);
  check_grads([&](const Inputs& in) { return where(cond, in[0], ib); }, {a});
}

TEST(IndexingGrad, GradcheckJoinsAndSplits) {
  Tensor x = leaf({2, 3}), y = leaf({2, 2}, 0.5), z = leaf({3, 2}, -1.0);
  check_grads([](const Inputs& in) { return cat({in[0], in[1], t01(in[2])}, 1); }, {x, y, z});
  check_grads([](const Inputs& in) { return stack({in[0], t01(in[1])}, -1); }, {x, z});
  check_grads(
      [](const Inputs& in) {
        auto pieces = split(in[0], 2, 1);  // [2, 2], [2, 1]
        return cat({pieces[1], pieces[0]}, 1);
      },
      {x});
  check_grads(
      [](const Inputs& in) {
        auto pieces = split_with_sizes(in[0], {1, 0, 2}, 1);
        return cat({pieces[2], pieces[1], pieces[0]}, 1);
      },
      {x});
  check_grads([](const Inputs& in) { return chunk(in[0], 2, 0)[1]; }, {z});
}

TEST(IndexingGrad, GradcheckPadFlipRollRepeat) {
  Tensor x = leaf({2, 3, 4});
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate}) {
    SCOPED_TRACE(int(mode));
    check_grads([mode](const Inputs& in) { return pad(in[0], {2, 1, 1, 2}, mode, 0.5); }, {x});
    check_grads(
        [mode](const Inputs& in) {
          return pad(transpose(in[0], 0, 2), {0, 1, 2, 0, 1, 1}, mode);
        },
        {x});
  }
  check_grads([](const Inputs& in) { return pad(in[0], {-1, 2, 1, -2}); }, {x});
  check_grads([](const Inputs& in) { return flip(in[0], {0, -1}); }, {x});
  check_grads([](const Inputs& in) { return roll(t01(in[0]), {2, -1}, {0, 2}); }, {x});
  check_grads([](const Inputs& in) { return roll(in[0], {7}, {}); }, {x});
  check_grads([](const Inputs& in) { return repeat(t01(in[0]), {2, 2, 1, 3}); }, {x});
}

TEST(IndexingGrad, CatOfMixedDtypesReturnsEachGradientInItsDtype) {
  Tensor a = raw::ones({2}, kFloat32), b = raw::ones({3}, kFloat64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor c = cat({a, ints({4}, {1}, kInt32), b}, 0);
  EXPECT_EQ(c.dtype(), kFloat64);
  autograd::backward({c}, {raw::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {6})});
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1, 2}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{4, 5, 6}));
  // A legacy empty 1-D input is skipped; its gradient (if the engine fills one in) is empty.
  Tensor e = raw::empty({0}, kFloat64);
  e.set_requires_grad(true);
  Tensor d = cat({e, b}, 0);
  autograd::backward({d}, {raw::ones({3}, kFloat64)});
  EXPECT_TRUE(!e.grad().defined() || e.grad().sizes() == Shape{0});
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{5, 6, 7}));
}

TEST(IndexingGrad, SplitPiecesAreDifferentiableViews) {
  Tensor x = leaf({5, 2});
  auto pieces = split(x, 2, 0);
  ASSERT_EQ(pieces.size(), 3u);
  for (const Tensor& p : pieces) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_EQ(p.storage(), x.storage());
    ASSERT_TRUE(p.autograd_meta().view_base);
  }
  autograd::backward({pieces[0], pieces[2]},
                     {raw::ones({2, 2}, kFloat64), raw::full({1, 2}, 2.0, kFloat64)});
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1, 1, 1, 0, 0, 0, 0, 2, 2}));
}
