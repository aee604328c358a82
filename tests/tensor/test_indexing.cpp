// Raw indexing and joining: forward values against PyTorch (tests/golden/gen_indexing.py) on
// non-contiguous inputs, every dtype, int32 and int64 indices, empty tensors, cat's dtype
// promotion, split/chunk views, large (multi-threaded) inputs against plain loops, thread-count
// independence of scatter_add, and the errors.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using raw::PadMode;

namespace {

using Fixture = std::map<std::string, Tensor>;

constexpr const char* kFixture = "indexing.safetensors";

using test::ints;
using test::iota;

Tensor t01(const Tensor& x) {
  return raw::transpose(x, 0, 1);
}
Tensor every_other(const Tensor& x, int64_t dim) {
  return raw::slice(x, dim, 0, INT64_MAX, 2);
}

// The op of each golden case, applied to the fixture inputs (same views as the script).
const std::map<std::string, std::function<Tensor(const Fixture&, const std::string&)>>& cases() {
  using F = const Fixture&;
  using S = const std::string&;
  auto in = [](F f, S name, const char* key) { return test::fixture_tensor(f, name + "." + key); };
  static const std::map<std::string, std::function<Tensor(F, S)>> c = {
      {"index_select_t",
       [=](F f, S n) { return raw::index_select(t01(in(f, n, "x")), 1, in(f, n, "index")); }},
      {"index_select_i32",
       [=](F f, S n) { return raw::index_select(in(f, n, "x"), 0, in(f, n, "index")); }},
      {"gather_t", [=](F f, S n) { return raw::gather(t01(in(f, n, "x")), 1, in(f, n, "index")); }},
      {"gather_d0", [=](F f, S n) { return raw::gather(in(f, n, "x"), 0, in(f, n, "index")); }},
      {"scatter_add",
       [=](F f, S n) {
         return raw::scatter_add(in(f, n, "x"), 1, in(f, n, "index"),
                                 every_other(in(f, n, "src"), 1));
       }},
      {"index_add",
       [=](F f, S n) {
         Tensor out = raw::clone(in(f, n, "x"));
         raw::index_add_(out, 0, in(f, n, "index"), in(f, n, "src"));
         return out;
       }},
      {"masked_fill_t",
       [=](F f, S n) { return raw::masked_fill(t01(in(f, n, "x")), in(f, n, "mask"), -2.5); }},
      {"where",
       [=](F f, S n) { return raw::where(in(f, n, "cond"), t01(in(f, n, "x")), in(f, n, "b")); }},
      {"cat_d1",
       [=](F f, S n) {
         return raw::cat({t01(in(f, n, "x")), every_other(in(f, n, "y"), 1)}, 1);
       }},
      {"cat_d0",
       [=](F f, S n) {
         return raw::cat({in(f, n, "x"), in(f, n, "y")}, 0);
       }},
      {"stack_d1",
       [=](F f, S n) {
         return raw::stack({t01(in(f, n, "x")), in(f, n, "y")}, 1);
       }},
      {"pad_constant",
       [=](F f, S n) {
         return raw::pad(raw::transpose(in(f, n, "x"), 1, 2), {2, 1, 1, 0}, PadMode::Constant, 1.5);
       }},
      {"pad_negative",
       [=](F f, S n) {
         return raw::pad(raw::transpose(in(f, n, "x"), 1, 2), {-1, 2, 0, -2});
       }},
      {"pad_reflect",
       [=](F f, S n) {
         return raw::pad(raw::transpose(in(f, n, "x"), 1, 2), {2, 1, 3, 2}, PadMode::Reflect);
       }},
      {"pad_replicate",
       [=](F f, S n) {
         return raw::pad(raw::transpose(in(f, n, "x"), 1, 2), {2, 1, 1, 3}, PadMode::Replicate);
       }},
      {"pad_reflect1d",
       [=](F f, S n) {
         return raw::pad(raw::unsqueeze(every_other(in(f, n, "x"), 1), 0), {3, 2},
                         PadMode::Reflect);
       }},
      {"flip",
       [=](F f, S n) {
         return raw::flip(t01(in(f, n, "x")), {0, 2});
       }},
      {"roll",
       [=](F f, S n) {
         return raw::roll(t01(in(f, n, "x")), {1, -2}, {0, 2});
       }},
      {"roll_flat", [=](F f, S n) { return raw::roll(t01(in(f, n, "x")), {5}, {}); }},
      {"repeat",
       [=](F f, S n) {
         return raw::repeat(t01(in(f, n, "x")), {2, 1, 3});
       }},
  };
  return c;
}

const std::vector<DType> kAllDtypes = {kFloat32, kFloat64, kFloat16, kBFloat16,
                                       kInt32,   kInt64,   kUInt8,   kBool};

}  // namespace

TEST(Indexing, MatchPyTorchOnNonContiguousInputs) {
  for (const auto& [name, fn] : cases()) {
    SCOPED_TRACE(name);
    EXPECT_ALL_CLOSE(fn(test::cached_fixture(kFixture), name),
                     test::fixture_tensor(kFixture, name + ".out"), 1e-6, 1e-6);
  }
}

// Data movement is exact in every dtype: op(x in dtype d) == op(x in float64) converted to d.
TEST(Indexing, EveryDtypeMovesValuesExactly) {
  Tensor base = raw::to(iota({4, 3}), kFloat64);  // the ops see its [3, 4] transpose
  Tensor index = ints({2, 0, 2}, {3});
  Tensor gidx = ints({0, 3, 1, 1, 2, 0}, {3, 2});
  Tensor mask = raw::from_vector(std::vector<int64_t>{1, 0, 0, 1}, {4}, kBool);
  Tensor cond = raw::from_vector(std::vector<int64_t>{0, 1, 1}, {3, 1}, kBool);
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops = {
      {"index_select", [&](const Tensor& x) { return raw::index_select(x, 1, index); }},
      {"gather", [&](const Tensor& x) { return raw::gather(x, 1, gidx); }},
      {"scatter_add", [&](const Tensor& x) { return raw::scatter_add(x, 1, gidx, x); }},
      {"index_add_",
       [&](const Tensor& x) {
         Tensor out = raw::clone(x);
         raw::index_add_(out, 0, index, raw::narrow(x, 0, 0, 3));
         return out;
       }},
      {"masked_fill", [&](const Tensor& x) { return raw::masked_fill(x, mask, 1.0); }},
      {"where", [&](const Tensor& x) { return raw::where(cond, x, raw::flip(x, {0})); }},
      {"cat",
       [&](const Tensor& x) {
         return raw::cat({x, raw::narrow(x, 0, 1, 2)}, 0);
       }},
      {"stack",
       [&](const Tensor& x) {
         return raw::stack({x, x}, 2);
       }},
      {"pad_constant",
       [&](const Tensor& x) {
         return raw::pad(x, {1, 2, 0, 1}, PadMode::Constant, 1);
       }},
      {"pad_reflect",
       [&](const Tensor& x) {
         return raw::pad(x, {2, 1, 1, 2}, PadMode::Reflect);
       }},
      {"pad_replicate",
       [&](const Tensor& x) {
         return raw::pad(x, {2, 1, 1, 2}, PadMode::Replicate);
       }},
      {"flip",
       [&](const Tensor& x) {
         return raw::flip(x, {0, 1});
       }},
      {"roll",
       [&](const Tensor& x) {
         return raw::roll(x, {-1, 2}, {0, 1});
       }},
      {"repeat",
       [&](const Tensor& x) {
         return raw::repeat(x, {2, 1, 2});
       }},
  };
  for (DType d : kAllDtypes) {
    // Bool holds 0/1 only: use the parity so the reference is meaningful.
    Tensor ref_base = d == kBool ? raw::to(raw::to(base, kBool), kFloat64) : base;
    Tensor ref_in = t01(ref_base), x = t01(raw::to(ref_base, d));
    for (const auto& [name, op] : ops) {
      SCOPED_TRACE(std::string(name) + " " + std::string(dtype_name(d)));
      Tensor got = op(x);
      EXPECT_EQ(got.dtype(), d);
      Tensor expected = raw::to(op(ref_in), d);
      EXPECT_EQ(got.sizes(), expected.sizes());
      EXPECT_EQ(got.to_vector<double>(), expected.to_vector<double>());
    }
  }
}

TEST(Indexing, Int32AndInt64IndicesAgree) {
  Tensor x = t01(iota({5, 4}));  // [4, 5]
  Tensor i64 = ints({4, 0, 3, 3}, {2, 2});
  Tensor i32 = raw::to(i64, kInt32);
  EXPECT_EQ(raw::gather(x, 1, i32).to_vector<double>(), raw::gather(x, 1, i64).to_vector<double>());
  EXPECT_EQ(raw::gather(x, 1, i64).to_vector<double>(), (std::vector<double>{16, 0, 13, 13}));
  Tensor j64 = ints({1, 1, 0}, {3});
  EXPECT_EQ(raw::index_select(x, 0, raw::to(j64, kInt32)).to_vector<double>(),
            raw::index_select(x, 0, j64).to_vector<double>());
  Tensor src = raw::ones({3, 5});
  Tensor a = raw::zeros({4, 5}), b = raw::zeros({4, 5});
  raw::index_add_(a, 0, j64, src);
  raw::index_add_(b, 0, raw::to(j64, kInt32), src);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  EXPECT_EQ(raw::select(a, 0, 1).to_vector<double>(), (std::vector<double>(5, 2.0)));
  EXPECT_EQ(raw::select(a, 0, 0).to_vector<double>(), (std::vector<double>(5, 1.0)));
  // A 0-D index selects a single slice, keeping the dim.
  EXPECT_EQ(raw::index_select(x, 1, raw::scalar_tensor(2, kInt64)).sizes(), (Shape{4, 1}));
}

TEST(Indexing, IndexErrorsNameTheOp) {
  Tensor x = iota({3, 4});
  auto expect_error = [](const std::function<void()>& fn, const std::string& op) {
    EXPECT_ERROR_CONTAINS(fn(), op);
  };
  expect_error([&] { raw::index_select(x, 0, ints({3}, {1})); }, "index_select");
  expect_error([&] { raw::index_select(x, 0, ints({-1}, {1})); }, "index_select");
  expect_error([&] { raw::index_select(x, 2, ints({0}, {1})); }, "index_select");
  expect_error([&] { raw::index_select(x, 0, raw::zeros({1})); }, "index_select");  // float index
  expect_error([&] { raw::index_select(x, 0, ints({0, 0}, {1, 2})); }, "index_select");
  expect_error([&] { raw::gather(x, 1, ints({4}, {1, 1})); }, "gather");
  expect_error([&] { raw::gather(x, 1, ints({0}, {1})); }, "gather");              // dims differ
  expect_error([&] { raw::gather(x, 1, raw::zeros({4, 1}, kInt64)); }, "gather");  // 4 > 3 rows
  expect_error([&] { raw::gather(x, 1, raw::zeros({1, 1}, kUInt8)); }, "gather");
  expect_error([&] { raw::scatter_add(x, 0, ints({3}, {1, 1}), x); }, "scatter_add");
  expect_error(
      [&] {
        raw::scatter_add(x, 0, ints({0}, {1, 1}), raw::to(x, kFloat64));
      },
      "scatter_add");
  expect_error([&] { raw::scatter_add(x, 0, raw::zeros({4, 4}, kInt64), x); }, "scatter_add");
  expect_error([&] { raw::index_add_(x, 0, ints({0}, {1}), raw::ones({1, 3})); }, "index_add_");
  expect_error([&] { raw::index_add_(x, 1, ints({5}, {1}), raw::ones({3, 1})); }, "index_add_");
  expect_error(
      [&] {
        raw::index_add_(raw::expand(raw::zeros({1, 4}), {3, 4}), 1, ints({0}, {1}),
                        raw::ones({3, 1}));
      },
      "index_add_");
  expect_error([&] { raw::masked_fill(x, raw::zeros({3, 4}), 1.0); }, "masked_fill");
  expect_error([&] { raw::masked_fill(x, raw::zeros({2, 4}, kBool), 1.0); }, "masked_fill");
  expect_error(
      [&] {
        raw::masked_fill(raw::zeros({4}), raw::zeros({3, 4}, kBool), 1.0);
      },
      "masked_fill");
  expect_error([&] { raw::where(raw::zeros({2}, kBool), x, x); }, "where");
}

TEST(Indexing, BadIndicesInLargeInputsAreReportedAndLeaveInPlaceTargetsUntouched) {
  // The kernels check indices as they go (in parallel); the message names the worst value.
  Tensor x = iota({300, 400});
  std::vector<int64_t> idx(size_t(300 * 200), 5);
  idx[12345] = 999;
  idx[200] = -3;
  Tensor index = ints(idx, {300, 200});
  EXPECT_ERROR_CONTAINS(raw::gather(x, 1, index),
                        "gather: index -3 out of range for dim 1 of size 400");
  EXPECT_THROW(raw::scatter_add(x, 1, index, x), Error);
  EXPECT_THROW(raw::index_select(x, 1, raw::narrow(raw::reshape(index, {-1}), 0, 12000, 400)),
               Error);
  // index_add_ validates before writing: the target is unchanged after the error.
  Tensor target = raw::zeros({3, 4});
  EXPECT_THROW(raw::index_add_(target, 0, ints({0, 1, 3}, {3}), raw::ones({3, 4})), Error);
  EXPECT_EQ(target.to_vector<double>(), std::vector<double>(12, 0.0));
  // Empty outputs still validate the index.
  EXPECT_THROW(raw::index_select(raw::empty({0, 4}), 1, ints({7}, {1})), Error);
  EXPECT_THROW(raw::index_select(x, 0, raw::empty({0}, kFloat32)), Error);
}

TEST(Indexing, ScatterAddAndIndexAddIntoNonContiguousTargets) {
  // index_add_ into a transposed view writes through to the base.
  Tensor base = raw::zeros({4, 3});
  Tensor view = t01(base);  // [3, 4]
  raw::index_add_(view, 1, ints({3, 0, 3}, {3}), iota({3, 3}));
  // view[:, 3] += col0 + col2, view[:, 0] += col1.
  EXPECT_EQ(raw::select(base, 0, 3).to_vector<double>(), (std::vector<double>{2, 8, 14}));
  EXPECT_EQ(raw::select(base, 0, 0).to_vector<double>(), (std::vector<double>{1, 4, 7}));
  EXPECT_EQ(raw::select(base, 0, 1).to_vector<double>(), (std::vector<double>{0, 0, 0}));
  // scatter_add: out[i][index[i][j]] += src[i][j] along dim 1; the input is not modified.
  Tensor x = t01(raw::ones({2, 2}));
  Tensor out =
      raw::scatter_add(x, 1, ints({1, 1, 0, 1}, {2, 2}), ints({5, 6, 7, 8}, {2, 2}, kFloat32));
  EXPECT_EQ(out.to_vector<double>(), (std::vector<double>{1, 12, 8, 9}));
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{1, 1, 1, 1}));
}

TEST(Indexing, WhereBroadcastsPromotesAndAcceptsNonBoolConditions) {
  Tensor cond = raw::from_vector(std::vector<float>{0.0f, 2.0f, -0.5f}, {3, 1});
  Tensor a = ints({1, 2}, {2}, kInt32);
  Tensor b = raw::from_vector(std::vector<double>{0.5}, {1}, kFloat64);
  Tensor out = raw::where(cond, a, b);
  EXPECT_EQ(out.dtype(), kFloat64);
  EXPECT_EQ(out.sizes(), (Shape{3, 2}));
  EXPECT_EQ(out.to_vector<double>(), (std::vector<double>{0.5, 0.5, 1, 2, 1, 2}));
}

TEST(Indexing, CatPromotesMixedDtypesAndSkipsLegacyEmpty) {
  Tensor a = ints({1, 2}, {1, 2}, kInt32);
  Tensor b = raw::from_vector(std::vector<float>{0.5f, -1.5f}, {1, 2}, kFloat16);
  Tensor c = raw::cat({a, b}, 0);
  EXPECT_EQ(c.dtype(), kFloat16);
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{1, 2, 0.5, -1.5}));
  Tensor d = raw::cat(
      {raw::from_vector(std::vector<int64_t>{1, 0}, {2}, kBool), ints({7}, {1}, kInt64)}, 0);
  EXPECT_EQ(d.dtype(), kInt64);
  EXPECT_EQ(d.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 7}));
  // A 1-D tensor with no elements is skipped whatever the other shapes (torch.cat's rule).
  Tensor e = raw::cat({raw::empty({0}), iota({2, 3}), raw::empty({0, 3})}, 0);
  EXPECT_EQ(e.sizes(), (Shape{2, 3}));
  EXPECT_EQ(raw::cat({raw::empty({0}), raw::empty({0})}, 0).sizes(), (Shape{0}));
  EXPECT_THROW(raw::cat({}, 0), Error);
  EXPECT_THROW(raw::cat({iota({2, 3}), iota({2, 4})}, 0), Error);
  EXPECT_THROW(raw::cat({iota({2, 3}), iota({2, 3, 1})}, 0), Error);
  EXPECT_THROW(raw::cat({iota({2, 3})}, 2), Error);
  EXPECT_THROW(raw::cat({raw::scalar_tensor(1.0)}, 0), Error);
  EXPECT_THROW(raw::stack({iota({2, 3}), iota({3, 2})}, 0), Error);
  EXPECT_THROW(raw::stack({iota({2, 3})}, 3), Error);
  EXPECT_EQ(raw::stack({iota({2, 3}), iota({2, 3})}, -1).sizes(), (Shape{2, 3, 2}));
}

TEST(Indexing, SplitAndChunkReturnViews) {
  Tensor x = iota({7, 2});
  auto pieces = raw::split(x, 3, 0);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[2].sizes(), (Shape{1, 2}));
  EXPECT_EQ(pieces[1].to_vector<int64_t>(), (std::vector<int64_t>{6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(pieces[1].storage(), x.storage());
  auto sized = raw::split_with_sizes(x, {2, 0, 5}, 0);
  ASSERT_EQ(sized.size(), 3u);
  EXPECT_EQ(sized[1].sizes(), (Shape{0, 2}));
  EXPECT_EQ(sized[2].to_vector<int64_t>()[0], 4);
  auto chunks = raw::chunk(raw::narrow(x, 0, 0, 6), 4, 0);  // ceil(6/4) = 2 -> 3 pieces
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].to_vector<int64_t>(), (std::vector<int64_t>{8, 9, 10, 11}));
  EXPECT_EQ(raw::chunk(raw::empty({0, 2}), 3, 0).size(), 3u);
  EXPECT_EQ(raw::split(raw::empty({0, 2}), 2, 0).size(), 1u);
  EXPECT_THROW(raw::split(x, 0, 0), Error);
  EXPECT_THROW(raw::split_with_sizes(x, {2, 2}, 0), Error);
  EXPECT_THROW(raw::split_with_sizes(x, {8, -1}, 0), Error);
  EXPECT_THROW(raw::chunk(x, 0, 0), Error);
  EXPECT_THROW(raw::chunk(x, 2, 2), Error);
}

TEST(Indexing, PadChecksItsArguments) {
  Tensor x = iota({2, 3});
  EXPECT_THROW(raw::pad(x, {1}), Error);                       // not pairs
  EXPECT_THROW(raw::pad(x, {1, 1, 1, 1, 1, 1}), Error);        // more dims than the tensor
  EXPECT_THROW(raw::pad(x, {3, 1}, PadMode::Reflect), Error);  // reflect pad must be < size
  EXPECT_THROW(raw::pad(x, {-1, 0}, PadMode::Replicate), Error);
  EXPECT_THROW(raw::pad(x, {-2, -2}), Error);  // negative size
  EXPECT_THROW(raw::pad(raw::empty({2, 0}), {1, 1}, PadMode::Replicate), Error);
  EXPECT_EQ(raw::pad(x, {-2, -1}).sizes(), (Shape{2, 0}));
  EXPECT_EQ(raw::pad(raw::empty({0, 3}), {1, 1}).sizes(), (Shape{0, 5}));
  EXPECT_EQ(raw::pad(raw::empty({2, 0}), {1, 2}, PadMode::Constant, 4.0).to_vector<double>(),
            (std::vector<double>(6, 4.0)));
  EXPECT_EQ(raw::pad(x, {}).to_vector<double>(), x.to_vector<double>());
  // Reflect with the largest legal pad on a size-2 dim: [a, b] -> [b, a, b, a].
  EXPECT_EQ(raw::pad(raw::narrow(x, 1, 0, 2), {1, 1}, PadMode::Reflect).to_vector<double>(),
            (std::vector<double>{1, 0, 1, 0, 4, 3, 4, 3}));
}

TEST(Indexing, FlipRollRepeatEdgeCases) {
  Tensor x = iota({2, 3});
  EXPECT_EQ(raw::flip(x, {}).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(raw::flip(x, {-1}).to_vector<double>(), (std::vector<double>{2, 1, 0, 5, 4, 3}));
  EXPECT_THROW(raw::flip(x, {0, 0}), Error);
  EXPECT_THROW(raw::flip(x, {2}), Error);
  EXPECT_EQ(raw::flip(raw::empty({0, 3}), {0, 1}).sizes(), (Shape{0, 3}));
  // A dim listed twice rolls twice; shifts larger than the size wrap.
  EXPECT_EQ(raw::roll(x, {1, 1}, {1, 1}).to_vector<double>(),
            raw::roll(x, {2}, {1}).to_vector<double>());
  EXPECT_EQ(raw::roll(x, {7}, {1}).to_vector<double>(), (std::vector<double>{2, 0, 1, 5, 3, 4}));
  EXPECT_EQ(raw::roll(x, {-1}, {}).to_vector<double>(), (std::vector<double>{1, 2, 3, 4, 5, 0}));
  EXPECT_EQ(raw::roll(raw::empty({0, 3}), {1}, {0}).sizes(), (Shape{0, 3}));
  EXPECT_THROW(raw::roll(x, {1, 2}, {}), Error);
  EXPECT_THROW(raw::roll(x, {1}, {0, 1}), Error);
  EXPECT_EQ(raw::repeat(x, {0, 2}).sizes(), (Shape{0, 6}));
  EXPECT_EQ(raw::repeat(raw::scalar_tensor(3.0), {2}).to_vector<double>(),
            (std::vector<double>{3, 3}));
  EXPECT_THROW(raw::repeat(x, {2}), Error);
  EXPECT_THROW(raw::repeat(x, {2, -1}), Error);
}

TEST(Indexing, EmptyIndexAndEmptyInputs) {
  Tensor x = iota({3, 4});
  EXPECT_EQ(raw::index_select(x, 1, raw::empty({0}, kInt64)).sizes(), (Shape{3, 0}));
  EXPECT_EQ(raw::gather(x, 0, raw::empty({0, 4}, kInt64)).sizes(), (Shape{0, 4}));
  EXPECT_EQ(raw::scatter_add(x, 0, raw::empty({0, 4}, kInt64), x).to_vector<double>(),
            x.to_vector<double>());
  Tensor e = raw::empty({0, 4});
  EXPECT_EQ(raw::index_select(e, 1, ints({3, 3}, {2})).sizes(), (Shape{0, 2}));
  EXPECT_THROW(raw::index_select(e, 0, ints({0}, {1})), Error);
  EXPECT_EQ(raw::masked_fill(e, raw::zeros({4}, kBool), 1.0).sizes(), (Shape{0, 4}));
  EXPECT_EQ(raw::where(raw::zeros({0, 1}, kBool), e, raw::zeros({4})).sizes(), (Shape{0, 4}));
}

// Large inputs take the multi-threaded paths; the results are checked against plain loops.
TEST(Indexing, LargeInputsMatchPlainLoops) {
  const int64_t rows = 300, cols = 517;
  Tensor x = t01(iota({cols, rows}));  // [rows, cols], non-contiguous
  const int64_t width = 200;
  std::vector<int64_t> idx(size_t(rows * width));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t((i * 7919) % size_t(cols));
  Tensor index = ints(idx, {rows, width});
  auto xv = x.to_vector<double>();
  auto g = raw::gather(x, 1, index).to_vector<double>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j)
      ASSERT_EQ(g[size_t(r * width + j)], xv[size_t(r * cols + idx[size_t(r * width + j)])]);

  Tensor c = raw::cat({x, raw::narrow(x, 1, 5, 100)}, 1);
  ASSERT_EQ(c.sizes(), (Shape{rows, cols + 100}));
  auto cv = c.to_vector<double>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols + 100; ++j)
      ASSERT_EQ(cv[size_t(r * (cols + 100) + j)],
                xv[size_t(r * cols + (j < cols ? j : 5 + j - cols))]);

  Tensor p = raw::pad(x, {3, 2, 1, 4}, PadMode::Reflect);
  auto pv = p.to_vector<double>();
  auto reflect = [](int64_t i, int64_t n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; };
  const int64_t pc = cols + 5;
  for (int64_t r = 0; r < rows + 5; ++r)
    for (int64_t j = 0; j < pc; ++j)
      ASSERT_EQ(pv[size_t(r * pc + j)],
                xv[size_t(reflect(r - 1, rows) * cols + reflect(j - 3, cols))]);
}

TEST(Indexing, ScatterAddDoesNotDependOnTheThreadCount) {
  const int64_t rows = 200, cols = 400;
  std::vector<float> values(size_t(rows * cols));
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * float(i));
  Tensor src = raw::from_vector(values, {rows, cols});
  std::vector<int64_t> idx(size_t(rows * cols));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t((i * 31) % 7);  // many duplicates
  Tensor index = ints(idx, {rows, cols});
  auto run = [&](int threads) {
    int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor along_cols = raw::scatter_add(raw::zeros({rows, 7}), 1, index, src);
    Tensor along_rows = raw::scatter_add(raw::zeros({7, cols}), 0, index, src);
    omp_set_num_threads(previous);
    auto a = along_cols.to_vector<float>(), b = along_rows.to_vector<float>();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  auto one = run(1);
  EXPECT_EQ(one, run(2));
  EXPECT_EQ(one, run(3));
  // And the sums are right (to float rounding): every src element lands exactly once.
  double total = 0;
  for (double v : src.to_vector<double>()) total += v;
  double got = 0;
  for (size_t i = 0; i < size_t(rows * 7); ++i) got += one[i];  // the along-cols result
  EXPECT_NEAR(got, total, 1e-2);
}
