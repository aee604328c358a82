// Raw views: geometry, storage sharing (writes through a view are visible), -1 inference, Python
// slicing, expand with stride 0, reshape's copy fallback, as_strided bounds, errors, and the
// forward values against PyTorch (tests/golden/gen_indexing.py) on non-contiguous inputs.
#include <gtest/gtest.h>

#include <functional>

#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

// 0, 1, 2, ... in a contiguous float32 tensor of `shape`.
Tensor iota(const Shape& shape, DType dtype = kFloat32) {
  return raw::reshape(raw::arange(0, double(shape_numel(shape)), 1, dtype), shape);
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.storage() == b.storage();
}

constexpr const char* kFixture = "indexing.safetensors";

}  // namespace

TEST(Views, ViewInfersMinusOneAndSharesStorage) {
  Tensor x = iota({2, 3, 4});
  Tensor v = raw::view(x, {4, -1});
  EXPECT_EQ(v.sizes(), (Shape{4, 6}));
  EXPECT_EQ(v.strides(), (Shape{6, 1}));
  EXPECT_TRUE(shares_storage(v, x));
  // A write through the view is visible in the base, and the other way round.
  raw::fill_(raw::select(v, 0, 1), -1.0);
  EXPECT_EQ(x.at({0, 1, 2}), -1.0);  // flat index 6..11 = row 1 of the view
  EXPECT_EQ(x.at({0, 2, 3}), -1.0);
  EXPECT_EQ(x.at({0, 1, 1}), 5.0);
  raw::fill_(raw::select(x, 0, 1), 7.0);
  EXPECT_EQ(v.at({3, 5}), 7.0);
}

TEST(Views, ViewErrorsNameTheShapes) {
  Tensor x = iota({2, 3, 4});
  {
    const std::string msg = test::error_message([&] { raw::view(x, {5, -1}); });
    EXPECT_NE(msg.find("view"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[5, -1]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("float32[2, 3, 4]"), std::string::npos) << msg;
  }
  EXPECT_THROW(raw::view(x, {-1, -1}), Error);
  EXPECT_THROW(raw::view(x, {25}), Error);
  EXPECT_THROW(raw::reshape(x, {-2, 12}), Error);
  // A transposed tensor cannot be flattened without a copy: view refuses, naming both shapes.
  Tensor t = raw::transpose(x, 0, 2);
  {
    const std::string msg = test::error_message([&] { raw::view(t, {24}); });
    EXPECT_NE(msg.find("[4, 3, 2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[24]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("reshape"), std::string::npos) << msg;
  }
}

TEST(Views, ReshapeIsAViewWhenStridesAllowElseACopy) {
  Tensor x = iota({4, 6});
  // Slicing rows with a step keeps each row contiguous: splitting the row is still a view.
  Tensor rows = raw::slice(x, 0, 0, 4, 2);  // [2, 6], strides [12, 1]
  Tensor r = raw::reshape(rows, {2, 2, 3});
  EXPECT_TRUE(shares_storage(r, x));
  EXPECT_EQ(r.strides(), (Shape{12, 3, 1}));
  EXPECT_EQ(r.at({1, 1, 2}), 17.0);
  // Merging the sliced rows is not: reshape copies (values still right), view refuses.
  Tensor flat = raw::reshape(rows, {12});
  EXPECT_FALSE(shares_storage(flat, x));
  EXPECT_EQ(flat.to_vector<double>(),
            (std::vector<double>{0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17}));
  EXPECT_THROW(raw::view(rows, {12}), Error);
  // A column slice with a step: each element is evenly spaced, so a 1-D view exists.
  Tensor col = raw::slice(raw::select(x, 1, 2), 0, 0, 4, 2);
  Tensor col2 = raw::view(col, {2, 1});
  EXPECT_TRUE(shares_storage(col2, x));
  EXPECT_EQ(col2.to_vector<double>(), (std::vector<double>{2, 14}));
  // Size-1 dims anywhere are free.
  Tensor u = raw::view(raw::transpose(iota({3, 1, 2}), 0, 2), {2, 1, 1, 3});
  EXPECT_EQ(u.to_vector<double>(), (std::vector<double>{0, 2, 4, 1, 3, 5}));
}

TEST(Views, PermuteTransposeAndErrors) {
  Tensor x = iota({2, 3, 4});
  Tensor p = raw::permute(x, {2, 0, -2});
  EXPECT_EQ(p.sizes(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_EQ(p.at({3, 1, 2}), x.at({1, 2, 3}));
  EXPECT_TRUE(shares_storage(p, x));
  Tensor t = raw::transpose(x, -1, 0);
  EXPECT_EQ(t.sizes(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.at({1, 2, 0}), x.at({0, 2, 1}));
  EXPECT_THROW(raw::permute(x, {0, 1}), Error);
  EXPECT_THROW(raw::permute(x, {0, 1, 1}), Error);
  EXPECT_THROW(raw::permute(x, {0, 1, 3}), Error);
  EXPECT_THROW(raw::transpose(x, 0, 3), Error);
}

TEST(Views, SliceFollowsPythonSemantics) {
  Tensor x = iota({10});
  auto values = [&](int64_t s, int64_t e, int64_t step) {
    return raw::slice(x, 0, s, e, step).to_vector<int64_t>();
  };
  EXPECT_EQ(values(2, 8, 3), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(values(-3, 100, 1), (std::vector<int64_t>{7, 8, 9}));  // x[-3:100]
  EXPECT_EQ(values(-100, 2, 1), (std::vector<int64_t>{0, 1}));     // x[-100:2]
  EXPECT_EQ(values(1, -1, 4), (std::vector<int64_t>{1, 5}));       // x[1:-1:4]
  EXPECT_EQ(values(7, 3, 1), (std::vector<int64_t>{}));            // empty
  EXPECT_EQ(values(12, 20, 1), (std::vector<int64_t>{}));          // past the end
  EXPECT_EQ(raw::slice(x, 0, 0, INT64_MAX, 4).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 4, 8}));
  EXPECT_THROW(raw::slice(x, 0, 0, 5, 0), Error);
  EXPECT_THROW(raw::slice(x, 0, 0, 5, -1), Error);
  EXPECT_THROW(raw::slice(x, 1, 0, 5), Error);
  EXPECT_THROW(raw::slice(raw::scalar_tensor(1.0), 0, 0, 1), Error);
  // A write through a stepped slice lands on every other element.
  raw::fill_(raw::slice(x, 0, 1, 10, 2), -1.0);
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{0, -1, 2, -1, 4, -1, 6, -1, 8, -1}));
}

TEST(Views, NarrowAndSelect) {
  Tensor x = iota({3, 4});
  EXPECT_EQ(raw::narrow(x, 1, -3, 2).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(raw::narrow(x, 0, 3, 0).sizes(), (Shape{0, 4}));
  EXPECT_THROW(raw::narrow(x, 1, 3, 2), Error);
  EXPECT_THROW(raw::narrow(x, 1, 0, -1), Error);
  EXPECT_THROW(raw::narrow(x, 2, 0, 1), Error);
  EXPECT_EQ(raw::select(x, 1, -1).to_vector<int64_t>(), (std::vector<int64_t>{3, 7, 11}));
  EXPECT_EQ(raw::select(x, 0, 2).sizes(), (Shape{4}));
  EXPECT_EQ(raw::select(raw::select(x, 0, 2), 0, 1).item(), 9.0);
  EXPECT_ERROR_CONTAINS(raw::select(x, 0, 3), "select");
  EXPECT_THROW(raw::select(x, 1, -5), Error);
}

TEST(Views, SqueezeUnsqueezeFlattenUnflatten) {
  Tensor x = iota({1, 3, 1, 2});
  EXPECT_EQ(raw::squeeze(x).sizes(), (Shape{3, 2}));
  EXPECT_EQ(raw::squeeze(x, 2).sizes(), (Shape{1, 3, 2}));
  EXPECT_EQ(raw::squeeze(x, 1).sizes(), (Shape{1, 3, 1, 2}));  // not size 1: unchanged
  EXPECT_EQ(raw::squeeze(raw::scalar_tensor(2.0)).dim(), 0);
  EXPECT_THROW(raw::squeeze(x, 4), Error);
  Tensor u = raw::unsqueeze(iota({3, 2}), -1);
  EXPECT_EQ(u.sizes(), (Shape{3, 2, 1}));
  EXPECT_EQ(raw::unsqueeze(iota({3, 2}), 0).sizes(), (Shape{1, 3, 2}));
  EXPECT_EQ(raw::unsqueeze(raw::scalar_tensor(2.0), 0).sizes(), (Shape{1}));
  EXPECT_THROW(raw::unsqueeze(iota({3, 2}), 3), Error);
  EXPECT_THROW(raw::unsqueeze(iota({3, 2}), -4), Error);
  Tensor y = iota({2, 3, 4, 5});
  EXPECT_EQ(raw::flatten(y).sizes(), (Shape{120}));
  EXPECT_EQ(raw::flatten(y, 1, 2).sizes(), (Shape{2, 12, 5}));
  EXPECT_EQ(raw::flatten(raw::scalar_tensor(3.0)).sizes(), (Shape{1}));
  EXPECT_THROW(raw::flatten(y, 2, 1), Error);
  EXPECT_TRUE(shares_storage(raw::flatten(y, 1), y));
  EXPECT_EQ(raw::unflatten(y, 1, {3, 1}).sizes(), (Shape{2, 3, 1, 4, 5}));
  EXPECT_EQ(raw::unflatten(y, -1, {-1, 5}).sizes(), (Shape{2, 3, 4, 1, 5}));
  EXPECT_THROW(raw::unflatten(y, 1, {2, 2}), Error);
}

TEST(Views, ExpandUsesStrideZeroAndChecksSizes) {
  Tensor x = iota({3, 1});
  Tensor e = raw::expand(x, {2, -1, 4});
  EXPECT_EQ(e.sizes(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_TRUE(shares_storage(e, x));
  EXPECT_EQ(e.at({1, 2, 3}), 2.0);
  raw::fill_(raw::select(x, 0, 1), 9.0);
  EXPECT_EQ(e.at({0, 1, 2}), 9.0);
  EXPECT_EQ(raw::expand(x, {3, 0}).numel(), 0);
  EXPECT_THROW(raw::expand(x, {3, 4, 1}), Error);   // 3 -> 4 is not a size-1 dim
  EXPECT_THROW(raw::expand(x, {4}), Error);         // fewer dims
  EXPECT_THROW(raw::expand(x, {-1, 3, 4}), Error);  // a new dim needs a size
}

TEST(Views, AliasAndAsStrided) {
  Tensor x = iota({2, 3});
  Tensor a = raw::alias(x);
  EXPECT_FALSE(a.is_same(x));
  EXPECT_TRUE(shares_storage(a, x));
  EXPECT_EQ(a.sizes(), x.sizes());
  // A sliding window of 3 over the 6 elements, advancing by 1 (an overlapping view).
  Tensor w = raw::as_strided(x, {4, 3}, {1, 1}, 0);
  EXPECT_EQ(w.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5}));
  EXPECT_EQ(raw::as_strided(x, {2}, {2}, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 3}));
  EXPECT_THROW(raw::as_strided(x, {4, 3}, {1, 1}, 1), Error);  // reaches element 6 of 6
  EXPECT_THROW(raw::as_strided(x, {7}, {1}, 0), Error);
  EXPECT_THROW(raw::as_strided(x, {2}, {1, 1}, 0), Error);
  EXPECT_THROW(raw::as_strided(x, {2}, {-1}, 1), Error);
  EXPECT_THROW(raw::as_strided(x, {2}, {1}, -1), Error);
  EXPECT_EQ(raw::as_strided(x, {0, 5}, {100, 100}, 6).numel(), 0);  // empty reaches nothing
}

TEST(Views, EmptyTensorsAndOtherDtypes) {
  Tensor e = raw::empty({0, 3});
  EXPECT_EQ(raw::reshape(e, {3, 0, 2}).sizes(), (Shape{3, 0, 2}));
  EXPECT_EQ(raw::view(raw::transpose(e, 0, 1), {3, 1, 0}).sizes(), (Shape{3, 1, 0}));
  EXPECT_THROW(raw::reshape(e, {-1, 0}), Error);  // -1 is ambiguous with a zero-size dim
  EXPECT_EQ(raw::permute(e, {1, 0}).sizes(), (Shape{3, 0}));
  EXPECT_EQ(raw::slice(e, 0, 0, 5).sizes(), (Shape{0, 3}));
  for (DType d : {kFloat16, kBFloat16, kInt32, kUInt8, kBool, kFloat64}) {
    Tensor x = iota({2, 3}, kInt64);
    Tensor y = raw::to(x, d);
    Tensor t = raw::reshape(raw::transpose(y, 0, 1), {6});
    EXPECT_EQ(t.dtype(), d);
    EXPECT_EQ(t.to_vector<int64_t>(),
              raw::to(raw::reshape(raw::transpose(x, 0, 1), {6}), d).to_vector<int64_t>());
  }
}

// Forward values against PyTorch, each on the same non-contiguous view of the stored base as
// tests/golden/gen_indexing.py.
TEST(Views, MatchPyTorchOnNonContiguousInputs) {
  const std::map<std::string, std::function<Tensor(const Tensor&)>> cases = {
      {"reshape_t",
       [](const Tensor& x) {
         return raw::reshape(raw::transpose(x, 0, 2), {4, -1});
       }},
      {"view_sliced",
       [](const Tensor& x) {
         return raw::reshape(raw::slice(x, 1, 0, 8, 2), {3, 2, 2});
       }},
      {"permute",
       [](const Tensor& x) {
         return raw::permute(x, {2, 0, 1});
       }},
      {"slice_step", [](const Tensor& x) { return raw::slice(x, 1, 1, INT64_MAX, 2); }},
      {"slice_neg", [](const Tensor& x) { return raw::slice(x, -1, -4, -1); }},
      {"select_t", [](const Tensor& x) { return raw::select(raw::transpose(x, 0, 1), 0, -2); }},
      {"narrow_t", [](const Tensor& x) { return raw::narrow(raw::transpose(x, 0, 1), 1, 1, 2); }},
      {"expand",
       [](const Tensor& x) {
         return raw::expand(raw::unsqueeze(raw::transpose(x, 0, 1), 0), {2, 3, 4});
       }},
      {"expand_new",
       [](const Tensor& x) {
         return raw::expand(x, {2, 3, 4});
       }},
      {"flatten_t", [](const Tensor& x) { return raw::flatten(raw::transpose(x, 0, 1), 1); }},
      {"unflatten",
       [](const Tensor& x) {
         return raw::unflatten(x, 1, {2, -1});
       }},
      {"squeeze", [](const Tensor& x) { return raw::squeeze(raw::unsqueeze(x, 1)); }},
      {"chain",
       [](const Tensor& x) {
         return raw::slice(raw::reshape(raw::permute(x, {1, 0, 2}), {3, 8}), 1, 1, 7, 2);
       }},
  };
  for (const auto& [name, fn] : cases) {
    SCOPED_TRACE(name);
    Tensor x = test::fixture_tensor(kFixture, name + ".x");
    EXPECT_ALL_CLOSE(fn(x), test::fixture_tensor(kFixture, name + ".out"), 0, 0);
  }
}
