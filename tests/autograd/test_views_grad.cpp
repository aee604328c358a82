// Differentiable views: gradients against PyTorch (tests/golden/gen_indexing.py) and against
// finite differences (gradcheck, float64), including chains of views and the backward of the
// backward (create_graph); view marking (in-place on a view of a tensor requiring grad is
// refused), detach, contiguous/clone and dtype conversion.
#include <gtest/gtest.h>

#include <functional>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/views.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using Fn = std::function<Tensor(const Tensor&)>;

constexpr const char* kFixture = "indexing.safetensors";

// A float64 leaf requiring grad with distinct values.
Tensor leaf(const Shape& shape) {
  Tensor t = raw::from_vector(std::vector<double>(size_t(shape_numel(shape)), 0.0), shape);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.25 * double(i) - 1.5 + 0.01 * double(i * i);
  t.set_requires_grad(true);
  return t;
}

// gradcheck of fn at x, and of its backward as a function of the output gradient v (every op
// here is linear, so d/dv of the vector-Jacobian product checks the double-backward graph).
void check_grads(const Fn& fn, const Shape& shape) {
  Tensor x = leaf(shape);
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return fn(in[0]); }, {x}));
  Shape out_shape = fn(x).sizes();
  Tensor v = leaf(out_shape);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        autograd::EnableGradGuard grad_mode;  // gradcheck evaluates under NoGradGuard too
        return autograd::grad({fn(x)}, {x}, {in[0]}, false, /*create_graph=*/true)[0];
      },
      {v}));
}

}  // namespace

TEST(ViewsGrad, MatchPyTorchThroughNonContiguousViews) {
  const std::map<std::string, Fn> cases = {
      {"reshape_t",
       [](const Tensor& x) {
         return reshape(transpose(x, 0, 2), {4, -1});
       }},
      {"view_sliced",
       [](const Tensor& x) {
         return reshape(slice(x, 1, 0, 8, 2), {3, 2, 2});
       }},
      {"permute",
       [](const Tensor& x) {
         return permute(x, {2, 0, 1});
       }},
      {"slice_step", [](const Tensor& x) { return slice(x, 1, 1, INT64_MAX, 2); }},
      {"slice_neg", [](const Tensor& x) { return slice(x, -1, -4, -1); }},
      {"select_t", [](const Tensor& x) { return select(transpose(x, 0, 1), 0, -2); }},
      {"narrow_t", [](const Tensor& x) { return narrow(transpose(x, 0, 1), 1, 1, 2); }},
      {"expand",
       [](const Tensor& x) {
         return expand(unsqueeze(transpose(x, 0, 1), 0), {2, 3, 4});
       }},
      {"expand_new",
       [](const Tensor& x) {
         return expand(x, {2, 3, 4});
       }},
      {"flatten_t", [](const Tensor& x) { return flatten(transpose(x, 0, 1), 1); }},
      {"unflatten",
       [](const Tensor& x) {
         return unflatten(x, 1, {2, -1});
       }},
      {"squeeze", [](const Tensor& x) { return squeeze(unsqueeze(x, 1)); }},
      {"chain",
       [](const Tensor& x) {
         return slice(reshape(permute(x, {1, 0, 2}), {3, 8}), 1, 1, 7, 2);
       }},
  };
  for (const auto& [name, fn] : cases) {
    SCOPED_TRACE(name);
    Tensor x = raw::clone(test::fixture_tensor(kFixture, name + ".x"));
    x.set_requires_grad(true);
    Tensor out = fn(x);
    EXPECT_ALL_CLOSE(out, test::fixture_tensor(kFixture, name + ".out"), 0, 0);
    autograd::backward({out}, {test::fixture_tensor(kFixture, name + ".w")});
    EXPECT_ALL_CLOSE(x.grad(), test::fixture_tensor(kFixture, name + ".grad_x"), 1e-6, 1e-6);
  }
}

TEST(ViewsGrad, GradcheckEveryView) {
  const std::vector<std::pair<const char*, std::pair<Fn, Shape>>> cases = {
      {"view",
       {[](const Tensor& x) {
          return view(x, {3, -1});
        },
        {2, 3, 2}}},
      {"reshape_copy", {[](const Tensor& x) { return reshape(transpose(x, 0, 1), {-1}); }, {2, 3}}},
      {"permute",
       {[](const Tensor& x) {
          return permute(x, {1, 2, 0});
        },
        {2, 3, 2}}},
      {"transpose", {[](const Tensor& x) { return transpose(x, -1, 0); }, {2, 3, 2}}},
      {"squeeze_all", {[](const Tensor& x) { return squeeze(x); }, {2, 1, 3, 1}}},
      {"squeeze_dim", {[](const Tensor& x) { return squeeze(x, 1); }, {2, 1, 3}}},
      {"unsqueeze", {[](const Tensor& x) { return unsqueeze(x, -1); }, {2, 3}}},
      {"slice_step", {[](const Tensor& x) { return slice(x, 1, -5, 100, 2); }, {2, 6}}},
      {"narrow", {[](const Tensor& x) { return narrow(x, 0, -3, 2); }, {4, 2}}},
      {"select", {[](const Tensor& x) { return select(x, 1, -1); }, {2, 3}}},
      {"expand",
       {[](const Tensor& x) {
          return expand(x, {2, -1, 4});
        },
        {3, 1}}},
      {"expand_as",
       {[](const Tensor& x) {
          return expand_as(x, raw::empty({2, 3}));
        },
        {1, 3}}},
      {"flatten", {[](const Tensor& x) { return flatten(x, 0, 1); }, {2, 3, 2}}},
      {"unflatten",
       {[](const Tensor& x) {
          return unflatten(x, 0, {2, 3});
        },
        {6, 2}}},
      {"clone", {[](const Tensor& x) { return clone(transpose(x, 0, 1)); }, {2, 3}}},
      {"contiguous", {[](const Tensor& x) { return contiguous(transpose(x, 0, 1)); }, {2, 3}}},
      // The chain of the issue: x.permute().reshape().slice(), and a longer one.
      {"chain",
       {[](const Tensor& x) {
          return slice(reshape(permute(x, {2, 0, 1}), {4, 6}), 1, 1, 6, 2);
        },
        {2, 3, 4}}},
      {"chain_long",
       {[](const Tensor& x) {
          Tensor y = expand(unsqueeze(select(transpose(x, 0, 2), 1, 1), 0), {3, 4, 2});
          return narrow(flatten(y, 1), 1, 2, 5);
        },
        {2, 3, 4}}},
  };
  for (const auto& [name, c] : cases) {
    SCOPED_TRACE(name);
    check_grads(c.first, c.second);
  }
}

TEST(ViewsGrad, ViewsAreMarkedAndInPlaceOnThemIsRefused) {
  Tensor x = leaf({2, 3});
  Tensor a = slice(x, 1, 0, 2);
  Tensor b = transpose(a, 0, 1);
  ASSERT_TRUE(a.has_autograd_meta() && a.autograd_meta().view_base);
  EXPECT_TRUE(a.autograd_meta().view_base->is_same(x));
  ASSERT_TRUE(b.autograd_meta().view_base);
  EXPECT_TRUE(b.autograd_meta().view_base->is_same(x));  // the base, not the intermediate view
  EXPECT_EQ(b.storage(), x.storage());
  // A reshape that must copy is not a view.
  Tensor c = reshape(b, {4});
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_FALSE(c.has_autograd_meta() && c.autograd_meta().view_base);
  // The engine's in-place recording refuses a view of a tensor that requires grad.
  auto identity = [](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0]}; };
  EXPECT_THROW(autograd::record_inplace("fill_", b, raw::zeros_like(b), {b}, identity), Error);
  // Views of tensors that do not require grad are not marked.
  Tensor plain = raw::zeros({2, 3});
  Tensor pv = slice(plain, 0, 0, 1);
  EXPECT_FALSE(pv.has_autograd_meta() && pv.autograd_meta().view_base);
  EXPECT_FALSE(pv.requires_grad());
}

TEST(ViewsGrad, GradientsOfOverlappingViewsAccumulate) {
  Tensor x = leaf({3, 2});
  Tensor a = slice(x, 0, 0, 2);                // rows 0, 1
  Tensor b = select(x, 0, 1);                  // row 1 again
  Tensor c = expand(select(x, 0, 2), {4, 2});  // row 2, four times
  autograd::backward({a, b, c}, {raw::ones({2, 2}, kFloat64), raw::full({2}, 2.0, kFloat64),
                                 raw::ones({4, 2}, kFloat64)});
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1, 3, 3, 4, 4}));
}

TEST(ViewsGrad, DetachContiguousCloneAndTo) {
  Tensor x = leaf({2, 3});
  Tensor d = detach(x);
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), x.storage());
  raw::fill_(d, 1.0);  // writes are shared
  EXPECT_EQ(x.at({1, 2}), 1.0);
  EXPECT_TRUE(contiguous(x).is_same(x));
  Tensor c = clone(x);
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_TRUE(c.requires_grad());
  EXPECT_TRUE(to(x, kFloat64).is_same(x));

  // float64 -> float32: the gradient comes back as float64.
  Tensor y = to(x, kFloat32);
  EXPECT_EQ(y.dtype(), kFloat32);
  EXPECT_TRUE(y.requires_grad());
  autograd::backward({y}, {raw::full({2, 3}, 0.5, kFloat32)});
  EXPECT_EQ(x.grad().dtype(), kFloat64);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>(6, 0.5)));
  // Integer results carry no gradient.
  EXPECT_FALSE(to(x, kInt64).requires_grad());
  // float32 -> float64 -> float32 gives back a float32 gradient.
  Tensor f = raw::ones({2}, kFloat32);
  f.set_requires_grad(true);
  Tensor g = to(to(f, kFloat64), kFloat32);
  autograd::backward({g}, {raw::full({2}, 3.0, kFloat32)});
  EXPECT_EQ(f.grad().dtype(), kFloat32);
  EXPECT_EQ(f.grad().to_vector<double>(), (std::vector<double>{3, 3}));
}

TEST(ViewsGrad, NoGradModeRecordsNothing) {
  Tensor x = leaf({2, 3});
  autograd::NoGradGuard guard;
  Tensor y = reshape(permute(x, {1, 0}), {6});
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
}

TEST(ViewsGrad, ErrorsComeFromTheRawOps) {
  Tensor x = leaf({2, 3});
  EXPECT_THROW(view(transpose(x, 0, 1), {6}), Error);
  EXPECT_THROW(permute(x, {0}), Error);
  EXPECT_THROW(select(x, 0, 2), Error);
  EXPECT_THROW(narrow(x, 1, 2, 2), Error);
  EXPECT_THROW(expand(x, {3, 3}), Error);
  EXPECT_THROW(slice(x, 0, 0, 1, 0), Error);
}
