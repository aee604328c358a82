// Differentiable reductions: gradients against PyTorch (tests/golden/gen_elementwise.py) and
// against finite differences in float64 (gradcheck) over dim sets with and without keepdim,
// second derivatives through create_graph, ties of max/min, zero norms, and sum_to.
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

constexpr const char* kFixture = "reduce.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

void check_first_and_second(const Fn& fn, const std::vector<Tensor>& inputs) {
  EXPECT_TRUE(gradcheck(fn, inputs));
  Tensor v = test::spread_values(fn(inputs).sizes(), 0.2, 1.3);
  auto grad_fn = [&](const std::vector<Tensor>& in) {
    autograd::EnableGradGuard grad_mode;
    return autograd::grad({fn(in)}, {in[0]}, {v}, false, /*create_graph=*/true)[0];
  };
  if (grad_fn(inputs).requires_grad()) {
    EXPECT_TRUE(gradcheck(grad_fn, inputs));
  }
}

struct DimsCase {
  std::vector<int64_t> dims;
  const char* tag;
};

}  // namespace

TEST(ReduceGrad, MatchesTorch) {
  auto golden = [](const std::string& k, const std::function<Tensor(const Tensor&)>& f,
                   double rtol = 1e-5, double atol = 1e-6) {
    Tensor x = test::leaf_copy(fx(k + ".x"));
    auto g = autograd::grad({f(x)}, {x}, {fx(k + ".gy")});
    EXPECT_ALL_CLOSE(g[0], fx(k + ".grad_x"), rtol, atol) << k;
  };
  for (const DimsCase& c : {DimsCase{{}, "all"}, DimsCase{{0}, "0"}, DimsCase{{1, 2}, "1_2"},
                            DimsCase{{0, 2}, "0_2"}, DimsCase{{-1}, "-1"}}) {
    for (bool keep : {false, true}) {
      const std::string k = std::string(c.tag) + (keep ? ".k" : ".n");
      golden("sum." + k, [&](const Tensor& x) { return sum(x, c.dims, keep); });
      golden("mean." + k, [&](const Tensor& x) { return mean(x, c.dims, keep); });
    }
  }
  for (const DimsCase& c : {DimsCase{{1}, "1"}, DimsCase{{0, 2}, "0_2"}, DimsCase{{}, "all"}}) {
    const std::string t = c.tag;
    for (int64_t corr : {0, 1}) {
      const std::string k = t + ".c" + std::to_string(corr);
      golden("var." + k, [&](const Tensor& x) { return var(x, c.dims, corr); });
      golden("std." + k, [&](const Tensor& x) { return cxr::std(x, c.dims, corr); });
    }
    golden("amax." + t, [&](const Tensor& x) { return amax(x, c.dims); });
    golden("amin." + t, [&](const Tensor& x) { return amin(x, c.dims); });
    golden("logsumexp." + t, [&](const Tensor& x) { return logsumexp(x, c.dims); });
    for (const char* p : {"1.0", "2.0", "3.0", "inf"}) {
      const double pv = std::string(p) == "inf" ? INFINITY : std::stod(p);
      golden(
          "norm." + t + ".p" + p, [&](const Tensor& x) { return norm(x, pv, c.dims); }, 1e-4, 1e-5);
    }
  }
  for (int64_t dim : {0, 1, 2}) {
    golden("max_grad." + std::to_string(dim), [&](const Tensor& x) { return max(x, dim).values; });
    golden("cumsum." + std::to_string(dim), [&](const Tensor& x) { return cumsum(x, dim); });
  }
}

TEST(ReduceGrad, FiniteDifferencesOverDimSets) {
  const Shape shape{3, 4, 2};
  for (std::vector<int64_t> dims :
       std::vector<std::vector<int64_t>>{{}, {0}, {1}, {2}, {0, 2}, {-2, -1}}) {
    for (bool keep : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "dims " << shape_str(dims) << " keepdim " << keep);
      check_first_and_second([&](const std::vector<Tensor>& in) { return sum(in[0], dims, keep); },
                             {test::spread_leaf(shape)});
      check_first_and_second([&](const std::vector<Tensor>& in) { return mean(in[0], dims, keep); },
                             {test::spread_leaf(shape)});
      check_first_and_second(
          [&](const std::vector<Tensor>& in) { return var(in[0], dims, 1, keep); },
          {test::spread_leaf(shape)});
      check_first_and_second(
          [&](const std::vector<Tensor>& in) { return cxr::std(in[0], dims, 0, keep); },
          {test::spread_leaf(shape)});
      check_first_and_second([&](const std::vector<Tensor>& in) { return amax(in[0], dims, keep); },
                             {test::spread_leaf(shape)});
      check_first_and_second([&](const std::vector<Tensor>& in) { return amin(in[0], dims, keep); },
                             {test::spread_leaf(shape)});
      check_first_and_second(
          [&](const std::vector<Tensor>& in) { return logsumexp(in[0], dims, keep); },
          {test::spread_leaf(shape)});
      for (double p : {1.0, 2.0, 3.0, double(INFINITY)})
        check_first_and_second(
            [&](const std::vector<Tensor>& in) { return norm(in[0], p, dims, keep); },
            {test::spread_leaf(shape, 0.3, 2.0)});
    }
  }
  for (int64_t dim : {0, 1, -1}) {
    for (bool keep : {false, true}) {
      check_first_and_second(
          [&](const std::vector<Tensor>& in) { return max(in[0], dim, keep).values; },
          {test::spread_leaf(shape)});
      check_first_and_second(
          [&](const std::vector<Tensor>& in) { return min(in[0], dim, keep).values; },
          {test::spread_leaf(shape)});
    }
    check_first_and_second([&](const std::vector<Tensor>& in) { return cumsum(in[0], dim); },
                           {test::spread_leaf(shape)});
  }
  // Non-contiguous input.
  check_first_and_second(
      [](const std::vector<Tensor>& in) {
        return sum(mul(transpose(in[0], 0, 2), in[0].size(1)), {1});
      },
      {test::spread_leaf(shape)});
}

TEST(ReduceGrad, TiesAndZeroNorms) {
  // amax shares the gradient among ties; max(dim) gives it to the first index.
  Tensor x = raw::from_vector(std::vector<double>{1, 3, 3, 2}, {4});
  x.set_requires_grad(true);
  EXPECT_EQ(autograd::grad({amax(x)}, {x})[0].to_vector<double>(),
            (std::vector<double>{0, 0.5, 0.5, 0}));
  EXPECT_EQ(autograd::grad({max(x, 0).values}, {x})[0].to_vector<double>(),
            (std::vector<double>{0, 1, 0, 0}));
  EXPECT_EQ(argmax(x, 0).item(), 1.0);
  EXPECT_FALSE(argmax(x, 0).requires_grad());
  // The gradient of a zero norm is 0, not NaN.
  Tensor z = raw::zeros({3}, kFloat64);
  z.set_requires_grad(true);
  for (double p : {2.0, 3.0})
    EXPECT_EQ(autograd::grad({norm(z, p)}, {z})[0].to_vector<double>(),
              (std::vector<double>{0, 0, 0}));
}

TEST(ReduceGrad, SumToIsTheAdjointOfBroadcasting) {
  check_first_and_second(
      [](const std::vector<Tensor>& in) {
        return sum_to(in[0], {3, 1});
      },
      {test::spread_leaf({2, 3, 4})});
  check_first_and_second([](const std::vector<Tensor>& in) { return sum_to(in[0], {4}); },
                         {test::spread_leaf({2, 3, 4})});
  Tensor x = test::spread_leaf({2, 3});
  EXPECT_TRUE(sum_to(x, {2, 3}).is_same(x));
  EXPECT_THROW(sum_to(x, {4}), Error);
  // Through a graph: d/dx sum_to(x * w, w.shape) = w (broadcast).
  Tensor w = test::spread_leaf({3}, 0.5, 1.5);
  auto g = autograd::grad({sum(sum_to(mul(x, w), {3}))}, {x});
  EXPECT_ALL_CLOSE(g[0], raw::expand(w, {2, 3}), 0, 0);
}
