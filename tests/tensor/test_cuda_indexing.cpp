// Indexing and joining on CUDA against the CPU ops (the specification): every dtype on
// non-contiguous inputs, int32 and int64 indices, scatter_add / index_add_ with many duplicate
// indices (deterministic, the CPU's sums), broadcasting and promotion in where, cat's promotion and
// legacy empties, every pad mode, flip/roll/repeat, split/chunk views, empty tensors, large inputs,
// and the errors: out-of-range indices (the CPU's messages, targets untouched), bad shapes and
// mixed devices. Every test skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;
using raw::PadMode;

namespace {

using test::ints;
using test::iota;

Tensor cuda(const Tensor& t) {
  return test::to_cuda(t);
}

Tensor t01(const Tensor& x) {
  return raw::transpose(x, 0, 1);
}

// Same dtype, shape and values (exactly: the ops move values, and the sums run in the CPU's order);
// the CUDA result stays on the device.
void expect_same(const Tensor& got, const Tensor& expected) {
  EXPECT_TRUE(got.device().is_cuda()) << "result on " << got.device().str();
  EXPECT_EQ(got.dtype(), expected.dtype());
  EXPECT_EQ(got.sizes(), expected.sizes());
  EXPECT_EQ(got.to_vector<double>(), expected.to_vector<double>());
}

using test::kAllDtypes;

// An op applied to an input and to index/mask tensors that `dev` moves to the input's device.
using Op = std::function<Tensor(const Tensor&, const std::function<Tensor(const Tensor&)>& dev)>;

}  // namespace

// Every op in every dtype, on a non-contiguous [5, 7] input (the transpose of [7, 5]): the CUDA
// result equals the CPU result of the same input.
TEST(CudaIndexing, EveryDtypeMatchesCpuOnNonContiguousInputs) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor base = raw::to(iota({7, 5}), kFloat64);
  const Tensor index = ints({4, 0, 4, 2, 1}, {5});
  const Tensor gidx = ints({0, 6, 1, 1, 2, 0, 5, 5, 3, 4, 6, 0}, {4, 3});
  const Tensor sidx = ints({2, 0, 2, 1, 1, 0, 6, 6, 3, 3, 3, 0}, {4, 3});
  const Tensor didx = ints({4, 0, 1, 1, 2, 0, 3, 3}, {4, 2});  // for dim 0 (size 5)
  const Tensor mask = raw::from_vector(std::vector<int64_t>{1, 0, 0, 1, 1, 0, 1}, {7}, kBool);
  const Tensor cond = raw::from_vector(std::vector<int64_t>{0, 1, 1, 0, 1}, {5, 1}, kBool);
  const std::vector<std::pair<const char*, Op>> ops = {
      {"index_select d1", [&](auto& x, auto& dev) { return raw::index_select(x, 1, dev(index)); }},
      {"index_select d0",
       [&](auto& x, auto& dev) { return raw::index_select(x, 0, dev(raw::to(index, kInt32))); }},
      {"gather", [&](auto& x, auto& dev) { return raw::gather(x, 1, dev(gidx)); }},
      {"gather i32",
       [&](auto& x, auto& dev) { return raw::gather(x, 0, dev(raw::to(didx, kInt32))); }},
      {"scatter_add",
       [&](auto& x, auto& dev) { return raw::scatter_add(x, 1, dev(sidx), raw::flip(x, {1})); }},
      {"scatter_add d0", [&](auto& x, auto& dev) { return raw::scatter_add(x, 0, dev(didx), x); }},
      {"index_add_",
       [&](auto& x, auto& dev) {
         Tensor out = raw::clone(x);
         raw::index_add_(out, 0, dev(raw::narrow(index, 0, 0, 3)), raw::narrow(x, 0, 1, 3));
         return out;
       }},
      {"index_add_ into a view",
       [&](auto& x, auto& dev) {
         Tensor out = raw::clone(t01(x));  // [7, 5]; index_add_ into its [5, 7] transpose
         raw::index_add_(t01(out), 1,
                         dev(raw::narrow(raw::reshape(raw::to(gidx, kInt32), {-1}), 0, 0, 4)),
                         raw::narrow(x, 1, 1, 4));
         return out;
       }},
      {"masked_fill", [&](auto& x, auto& dev) { return raw::masked_fill(x, dev(mask), 1.0); }},
      {"where", [&](auto& x, auto& dev) { return raw::where(dev(cond), x, raw::flip(x, {0})); }},
      {"cat d0",
       [&](auto& x, auto&) {
         return raw::cat({x, raw::narrow(x, 0, 1, 2)}, 0);
       }},
      {"cat d1",
       [&](auto& x, auto&) {
         return raw::cat({raw::narrow(x, 1, 2, 3), x, x}, 1);
       }},
      {"stack",
       [&](auto& x, auto&) {
         return raw::stack({x, raw::flip(x, {0})}, 2);
       }},
      {"pad constant",
       [&](auto& x, auto&) {
         return raw::pad(x, {1, 2, 0, 1}, PadMode::Constant, 1);
       }},
      {"pad negative",
       [&](auto& x, auto&) {
         return raw::pad(x, {-1, 2, 1, -2});
       }},
      {"pad reflect",
       [&](auto& x, auto&) {
         return raw::pad(x, {2, 1, 3, 4}, PadMode::Reflect);
       }},
      {"pad replicate",
       [&](auto& x, auto&) {
         return raw::pad(x, {2, 3, 1, 2}, PadMode::Replicate);
       }},
      {"flip",
       [&](auto& x, auto&) {
         return raw::flip(x, {0, 1});
       }},
      {"roll",
       [&](auto& x, auto&) {
         return raw::roll(x, {-1, 9}, {0, 1});
       }},
      {"roll flat", [&](auto& x, auto&) { return raw::roll(x, {5}, {}); }},
      {"repeat",
       [&](auto& x, auto&) {
         return raw::repeat(x, {2, 1, 3});
       }},
  };
  const auto on_cpu = [](const Tensor& t) { return t; };
  const auto on_cuda = [](const Tensor& t) { return cuda(t); };
  for (DType d : kAllDtypes) {
    const Tensor x = t01(raw::to(base, d));  // [5, 7], non-contiguous
    const Tensor xc = t01(cuda(raw::to(base, d)));
    for (const auto& [name, op] : ops) {
      SCOPED_TRACE(std::string(name) + " " + std::string(dtype_name(d)));
      expect_same(op(xc, on_cuda), op(x, on_cpu));
    }
  }
}

TEST(CudaIndexing, ScatterAddAndIndexAddSumInTheCpuOrderWithoutAtomics) {
  CXR_SKIP_WITHOUT_CUDA();
  const int64_t rows = 200, cols = 400;
  std::vector<float> values(size_t(rows * cols));
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * float(i));
  std::vector<int64_t> idx(size_t(rows * cols));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t((i * 31) % 7);  // many duplicates
  const Tensor index = ints(idx, {rows, cols});
  for (DType d : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    SCOPED_TRACE(dtype_name(d));
    const Tensor src = raw::to(raw::from_vector(values, {rows, cols}), d);
    const Tensor a = raw::scatter_add(raw::zeros({rows, 7}, d), 1, index, src);
    const Tensor b = raw::scatter_add(raw::zeros({7, cols}, d), 0, index, src);
    const Tensor ac = raw::scatter_add(cuda(raw::zeros({rows, 7}, d)), 1, cuda(index), cuda(src));
    const Tensor bc = raw::scatter_add(cuda(raw::zeros({7, cols}, d)), 0, cuda(index), cuda(src));
    // The same additions in the same order, rounded the same way: the same bits as the CPU.
    EXPECT_TRUE(test::bitwise_equal(raw::to(ac, Device::cpu()), a));
    EXPECT_TRUE(test::bitwise_equal(raw::to(bc, Device::cpu()), b));
    EXPECT_TRUE(test::bitwise_equal(
        raw::scatter_add(cuda(raw::zeros({rows, 7}, d)), 1, cuda(index), cuda(src)), ac));
    // index_add_ along dim 0 (the embedding-gradient pattern): rows gather duplicate targets.
    const Tensor rows_index = raw::narrow(raw::reshape(index, {-1}), 0, 0, rows);
    Tensor t = raw::zeros({7, cols}, d), tc = cuda(raw::zeros({7, cols}, d));
    raw::index_add_(t, 0, rows_index, src);
    raw::index_add_(tc, 0, cuda(rows_index), cuda(src));
    EXPECT_TRUE(test::bitwise_equal(raw::to(tc, Device::cpu()), t));
  }
}

TEST(CudaIndexing, WhereBroadcastsPromotesAndAcceptsNonBoolConditions) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor cond = raw::from_vector(std::vector<float>{0.0f, 2.0f, -0.5f}, {3, 1});
  const Tensor a = ints({1, 2}, {2}, kInt32);
  const Tensor b = raw::from_vector(std::vector<double>{0.5}, {1}, kFloat64);
  const Tensor out = raw::where(cuda(cond), cuda(a), cuda(b));
  expect_same(out, raw::where(cond, a, b));
  EXPECT_EQ(out.to_vector<double>(), (std::vector<double>{0.5, 0.5, 1, 2, 1, 2}));
  // Masks broadcast in masked_fill, non-contiguous inputs included.
  const Tensor x = t01(iota({6, 5}));
  const Tensor mask = raw::from_vector(std::vector<int64_t>{1, 0, 1, 1, 0, 0}, {1, 6}, kBool);
  expect_same(raw::masked_fill(cuda(x), cuda(mask), -2.5), raw::masked_fill(x, mask, -2.5));
}

TEST(CudaIndexing, CatPromotesMixedDtypesAndSkipsLegacyEmpty) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor a = ints({1, 2}, {1, 2}, kInt32);
  const Tensor b = raw::from_vector(std::vector<float>{0.5f, -1.5f}, {1, 2}, kFloat16);
  expect_same(raw::cat({cuda(a), cuda(b)}, 0), raw::cat({a, b}, 0));
  const Tensor e =
      raw::cat({cuda(raw::empty({0})), cuda(iota({2, 3})), cuda(raw::empty({0, 3}))}, 0);
  expect_same(e, iota({2, 3}));
  const Tensor both = raw::cat({cuda(raw::empty({0})), cuda(raw::empty({0}))}, 0);
  EXPECT_TRUE(both.device().is_cuda());
  EXPECT_EQ(both.sizes(), (Shape{0}));
  expect_same(raw::stack({cuda(iota({2, 3})), cuda(iota({2, 3}))}, -1),
              raw::stack({iota({2, 3}), iota({2, 3})}, -1));
  EXPECT_SAME_ERROR(
      [&] {
        raw::cat({iota({2, 3}), iota({2, 4})}, 0);
      },
      [&] {
        raw::cat({cuda(iota({2, 3})), cuda(iota({2, 4}))}, 0);
      });
  EXPECT_SAME_ERROR(
      [&] {
        raw::stack({iota({2, 3}), iota({3, 2})}, 0);
      },
      [&] {
        raw::stack({cuda(iota({2, 3})), cuda(iota({3, 2}))}, 0);
      });
}

TEST(CudaIndexing, SplitAndChunkReturnViewsOnTheDevice) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = cuda(iota({7, 2}));
  const auto pieces = raw::split(x, 3, 0);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1].storage(), x.storage());
  EXPECT_TRUE(pieces[1].device().is_cuda());
  EXPECT_EQ(pieces[1].to_vector<int64_t>(), (std::vector<int64_t>{6, 7, 8, 9, 10, 11}));
  const auto sized = raw::split_with_sizes(x, {2, 0, 5}, 0);
  ASSERT_EQ(sized.size(), 3u);
  EXPECT_EQ(sized[2].to_vector<int64_t>()[0], 4);
  const auto chunks = raw::chunk(raw::narrow(x, 0, 0, 6), 4, 0);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].to_vector<int64_t>(), (std::vector<int64_t>{8, 9, 10, 11}));
}

TEST(CudaIndexing, PadFlipRollRepeatEdgeCasesMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = iota({2, 3}), xc = cuda(x);
  expect_same(raw::pad(xc, {-2, -1}), raw::pad(x, {-2, -1}));
  expect_same(raw::pad(cuda(raw::empty({2, 0})), {1, 2}, PadMode::Constant, 4.0),
              raw::pad(raw::empty({2, 0}), {1, 2}, PadMode::Constant, 4.0));
  expect_same(raw::pad(raw::narrow(xc, 1, 0, 2), {1, 1}, PadMode::Reflect),
              raw::pad(raw::narrow(x, 1, 0, 2), {1, 1}, PadMode::Reflect));
  expect_same(raw::pad(xc, {}), x);
  // 3-D and 4-D pads in every mode, as the convolution code uses them.
  const Tensor img = t01(raw::to(iota({3, 2, 5, 6}), kFloat16));
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate}) {
    SCOPED_TRACE(int(mode));
    expect_same(raw::pad(t01(cuda(raw::to(iota({3, 2, 5, 6}), kFloat16))), {2, 3, 4, 1}, mode, -1),
                raw::pad(img, {2, 3, 4, 1}, mode, -1));
  }
  expect_same(raw::flip(xc, {-1}), raw::flip(x, {-1}));
  expect_same(raw::flip(cuda(raw::empty({0, 3})), {0, 1}), raw::empty({0, 3}));
  expect_same(raw::roll(xc, {1, 1}, {1, 1}), raw::roll(x, {2}, {1}));
  expect_same(raw::roll(xc, {-1}, {}), raw::roll(x, {-1}, {}));
  expect_same(raw::roll(cuda(raw::empty({0, 3})), {1}, {0}), raw::empty({0, 3}));
  expect_same(raw::repeat(xc, {0, 2}), raw::repeat(x, {0, 2}));
  expect_same(raw::repeat(cuda(raw::scalar_tensor(3.0)), {2}),
              raw::repeat(raw::scalar_tensor(3.0), {2}));
  EXPECT_SAME_ERROR(
      [&] {
        raw::pad(x, {3, 1}, PadMode::Reflect);
      },
      [&] {
        raw::pad(xc, {3, 1}, PadMode::Reflect);
      });
  EXPECT_SAME_ERROR(
      [&] {
        raw::pad(raw::empty({2, 0}), {1, 1}, PadMode::Replicate);
      },
      [&] {
        raw::pad(cuda(raw::empty({2, 0})), {1, 1}, PadMode::Replicate);
      });
  EXPECT_SAME_ERROR([&] { raw::flip(x, {0, 0}); }, [&] { raw::flip(xc, {0, 0}); });
  EXPECT_SAME_ERROR([&] { raw::roll(x, {1}, {0, 1}); }, [&] { raw::roll(xc, {1}, {0, 1}); });
  EXPECT_SAME_ERROR([&] { raw::repeat(x, {2}); }, [&] { raw::repeat(xc, {2}); });
}

TEST(CudaIndexing, EmptyIndexAndEmptyInputs) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = cuda(iota({3, 4}));
  EXPECT_EQ(raw::index_select(x, 1, cuda(raw::empty({0}, kInt64))).sizes(), (Shape{3, 0}));
  EXPECT_EQ(raw::gather(x, 0, cuda(raw::empty({0, 4}, kInt64))).sizes(), (Shape{0, 4}));
  expect_same(raw::scatter_add(x, 0, cuda(raw::empty({0, 4}, kInt64)), x), iota({3, 4}));
  const Tensor e = cuda(raw::empty({0, 4}));
  EXPECT_EQ(raw::index_select(e, 1, cuda(ints({3, 3}, {2}))).sizes(), (Shape{0, 2}));
  EXPECT_SAME_ERROR(
      [&] {
        raw::index_select(raw::empty({0, 4}), 0, ints({0}, {1}));
      },
      [&] { raw::index_select(e, 0, cuda(ints({0}, {1}))); });
  EXPECT_EQ(raw::masked_fill(e, cuda(raw::zeros({4}, kBool)), 1.0).sizes(), (Shape{0, 4}));
  EXPECT_EQ(raw::where(cuda(raw::zeros({0, 1}, kBool)), e, cuda(raw::zeros({4}))).sizes(),
            (Shape{0, 4}));
  // An empty result still validates the index (on the device).
  EXPECT_SAME_ERROR(
      [&] {
        raw::index_select(raw::empty({0, 4}), 1, ints({7}, {1}));
      },
      [&] { raw::index_select(e, 1, cuda(ints({7}, {1}))); });
}

TEST(CudaIndexing, OutOfRangeIndicesThrowTheCpuMessagesAndLeaveTargetsUntouched) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = iota({300, 400}), xc = cuda(x);
  std::vector<int64_t> idx(size_t(300 * 200), 5);
  idx[12345] = 999;
  idx[200] = -3;
  const Tensor index = ints(idx, {300, 200}), ic = cuda(index);
  EXPECT_SAME_ERROR([&] { raw::gather(x, 1, index); }, [&] { raw::gather(xc, 1, ic); });
  EXPECT_ERROR_CONTAINS(raw::gather(xc, 1, ic),
                        "gather: index -3 out of range for dim 1 of size 400");
  EXPECT_SAME_ERROR([&] { raw::gather(x, 1, raw::to(index, kInt32)); },
                    [&] { raw::gather(xc, 1, cuda(raw::to(index, kInt32))); });
  EXPECT_SAME_ERROR([&] { raw::scatter_add(x, 1, index, x); },
                    [&] { raw::scatter_add(xc, 1, ic, xc); });
  const Tensor row = raw::narrow(raw::reshape(index, {-1}), 0, 12000, 400);
  EXPECT_SAME_ERROR([&] { raw::index_select(x, 1, row); },
                    [&] { raw::index_select(xc, 1, cuda(row)); });
  // index_add_ validates before writing: the target is unchanged after the error.
  Tensor target = cuda(raw::zeros({3, 4}));
  EXPECT_SAME_ERROR(
      [&] {
        raw::index_add_(raw::zeros({3, 4}), 0, ints({0, 1, 3}, {3}), raw::ones({3, 4}));
      },
      [&] {
        raw::index_add_(target, 0, cuda(ints({0, 1, 3}, {3})), cuda(raw::ones({3, 4})));
      });
  EXPECT_EQ(target.to_vector<double>(), std::vector<double>(12, 0.0));
}

TEST(CudaIndexing, BadShapesAndDtypesGiveTheCpuErrors) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = iota({3, 4});
  // Each case: the op on CPU tensors, and the same op with every tensor on the GPU.
  const std::vector<std::pair<const char*, std::function<void(std::function<Tensor(Tensor)>)>>>
      cases = {
          {"index_select dim",
           [&](auto dev) { raw::index_select(dev(x), 2, dev(ints({0}, {1}))); }},
          {"index_select float index",
           [&](auto dev) { raw::index_select(dev(x), 0, dev(raw::zeros({1}))); }},
          {"index_select 2-D index",
           [&](auto dev) {
             raw::index_select(dev(x), 0, dev(ints({0, 0}, {1, 2})));
           }},
          {"gather dims", [&](auto dev) { raw::gather(dev(x), 1, dev(ints({0}, {1}))); }},
          {"gather too large",
           [&](auto dev) {
             raw::gather(dev(x), 1, dev(raw::zeros({4, 1}, kInt64)));
           }},
          {"gather uint8 index",
           [&](auto dev) {
             raw::gather(dev(x), 1, dev(raw::zeros({1, 1}, kUInt8)));
           }},
          {"scatter_add dtype",
           [&](auto dev) {
             raw::scatter_add(dev(x), 0, dev(ints({0}, {1, 1})), dev(raw::to(x, kFloat64)));
           }},
          {"scatter_add too large",
           [&](auto dev) {
             raw::scatter_add(dev(x), 0, dev(raw::zeros({4, 4}, kInt64)), dev(x));
           }},
          {"index_add_ shape",
           [&](auto dev) {
             raw::index_add_(dev(x), 0, dev(ints({0}, {1})), dev(raw::ones({1, 3})));
           }},
          {"index_add_ expanded",
           [&](auto dev) {
             raw::index_add_(raw::expand(dev(raw::zeros({1, 4})), {3, 4}), 1, dev(ints({0}, {1})),
                             dev(raw::ones({3, 1})));
           }},
          {"masked_fill float mask",
           [&](auto dev) {
             raw::masked_fill(dev(x), dev(raw::zeros({3, 4})), 1.0);
           }},
          {"masked_fill shape",
           [&](auto dev) {
             raw::masked_fill(dev(x), dev(raw::zeros({2, 4}, kBool)), 1.0);
           }},
          {"where shape",
           [&](auto dev) { raw::where(dev(raw::zeros({2}, kBool)), dev(x), dev(x)); }},
          {"cat 0-dim", [&](auto dev) { raw::cat({dev(raw::scalar_tensor(1.0))}, 0); }},
      };
  const auto on_cpu = [](Tensor t) { return t; };
  const auto on_cuda = [](Tensor t) { return cuda(t); };
  for (const auto& [name, fn] : cases) {
    SCOPED_TRACE(name);
    EXPECT_SAME_ERROR([&] { fn(on_cpu); }, [&] { fn(on_cuda); });
  }
}

TEST(CudaIndexing, MixedDevicesAreRefusedNamingBoth) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor x = iota({3, 4}), xc = cuda(x);
  const Tensor i = ints({0, 2}, {2}), ic = cuda(i);
  const Tensor m = raw::zeros({3, 4}, kBool);
  const std::vector<std::pair<const char*, std::function<void()>>> cases = {
      {"index_select", [&] { raw::index_select(xc, 0, i); }},
      {"gather",
       [&] {
         raw::gather(x, 0, cuda(ints({0}, {1, 1})));
       }},
      {"scatter_add",
       [&] {
         raw::scatter_add(xc, 0, cuda(ints({0}, {1, 1})), x);
       }},
      {"index_add_",
       [&] {
         raw::index_add_(xc, 0, ic, raw::ones({2, 4}));
       }},
      {"masked_fill", [&] { raw::masked_fill(xc, m, 1.0); }},
      {"where", [&] { raw::where(cuda(m), xc, x); }},
      {"cat",
       [&] {
         raw::cat({xc, x}, 0);
       }},
      {"stack",
       [&] {
         raw::stack({x, xc}, 0);
       }},
  };
  for (const auto& [name, fn] : cases) {
    SCOPED_TRACE(name);
    const std::string message = test::error_message(fn);
    EXPECT_NE(message.find("expected all tensors on one device"), std::string::npos) << message;
    EXPECT_NE(message.find("cpu"), std::string::npos) << message;
    EXPECT_NE(message.find("cuda:0"), std::string::npos) << message;
  }
}

// Sizes past one block of threads and many rows, against the CPU.
TEST(CudaIndexing, LargeInputsMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const int64_t rows = 300, cols = 517, width = 200;
  const Tensor x = t01(iota({cols, rows})), xc = t01(cuda(iota({cols, rows})));
  std::vector<int64_t> idx(size_t(rows * width));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t((i * 7919) % size_t(cols));
  const Tensor index = ints(idx, {rows, width});
  expect_same(raw::gather(xc, 1, cuda(index)), raw::gather(x, 1, index));
  expect_same(raw::index_select(xc, 1, cuda(raw::select(index, 0, 3))),
              raw::index_select(x, 1, raw::select(index, 0, 3)));
  expect_same(raw::cat({xc, raw::narrow(xc, 1, 5, 100)}, 1),
              raw::cat({x, raw::narrow(x, 1, 5, 100)}, 1));
  expect_same(raw::pad(xc, {3, 2, 1, 4}, PadMode::Reflect),
              raw::pad(x, {3, 2, 1, 4}, PadMode::Reflect));
  std::vector<int64_t> bits(size_t(rows * cols));
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = int64_t(i % 3 == 0);
  const Tensor mask = raw::from_vector(bits, {rows, cols}, kBool);
  expect_same(raw::masked_fill(xc, cuda(mask), 7.0), raw::masked_fill(x, mask, 7.0));
  expect_same(raw::where(cuda(mask), xc, raw::flip(xc, {1})),
              raw::where(mask, x, raw::flip(x, {1})));
}
