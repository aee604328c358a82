// Raw reductions: every reduction against PyTorch golden values (tests/golden/gen_elementwise.py)
// over single dims, dim sets and all dims, with keepdim, on contiguous and strided inputs and in
// several dtypes; the accuracy of long float32 sums; independence from the thread count; empty
// inputs; sum_to; and the errors on bad input.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

constexpr const char* kFixture = "reduce.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// The same values as the 3-D `t` held in a permuted (non-contiguous) view.
Tensor strided_copy(const Tensor& t) {
  return raw::permute(raw::contiguous(raw::permute(t, {2, 0, 1})), {1, 2, 0});
}

struct DimsCase {
  std::vector<int64_t> dims;
  const char* tag;
};
const DimsCase kSumDims[] = {{{}, "all"},     {{0}, "0"},      {{1}, "1"},  {{2}, "2"},
                             {{0, 2}, "0_2"}, {{1, 2}, "1_2"}, {{-1}, "-1"}};
const DimsCase kStatDims[] = {{{1}, "1"}, {{0, 2}, "0_2"}, {{}, "all"}};

}  // namespace

TEST(ReduceGolden, SumAndMeanOverDimSetsWithKeepdim) {
  Tensor x = fx("sum.all.n.x");
  for (const Tensor& in : {x, strided_copy(x)}) {
    for (const DimsCase& c : kSumDims) {
      for (bool keep : {false, true}) {
        const std::string k = std::string(c.tag) + (keep ? ".k" : ".n");
        EXPECT_ALL_CLOSE(raw::sum(in, c.dims, keep), fx("sum." + k + ".out"), 1e-5, 1e-5) << k;
        EXPECT_ALL_CLOSE(raw::mean(in, c.dims, keep), fx("mean." + k + ".out"), 1e-5, 1e-6) << k;
      }
    }
  }
}

TEST(ReduceGolden, VarStdAmaxAminLogsumexpNorm) {
  Tensor x = fx("var.1.c0.x");
  for (const Tensor& in : {x, strided_copy(x)}) {
    for (const DimsCase& c : kStatDims) {
      const std::string t = c.tag;
      for (int64_t corr : {0, 1}) {
        const std::string k = t + ".c" + std::to_string(corr);
        EXPECT_ALL_CLOSE(raw::var(in, c.dims, corr), fx("var." + k + ".out"), 1e-5, 1e-6) << k;
        EXPECT_ALL_CLOSE(raw::std(in, c.dims, corr), fx("std." + k + ".out"), 1e-5, 1e-6) << k;
      }
      EXPECT_ALL_CLOSE(raw::amax(in, c.dims), fx("amax." + t + ".out"), 0, 0) << t;
      EXPECT_ALL_CLOSE(raw::amin(in, c.dims), fx("amin." + t + ".out"), 0, 0) << t;
      EXPECT_ALL_CLOSE(raw::logsumexp(raw::mul(in, 5.0), c.dims), fx("logsumexp." + t + ".out"),
                       1e-5, 1e-5)
          << t;
      for (const char* p : {"1.0", "2.0", "3.0", "inf"}) {
        const double pv = std::string(p) == "inf" ? INFINITY : std::stod(p);
        EXPECT_ALL_CLOSE(raw::norm(in, pv, c.dims), fx("norm." + t + ".p" + p + ".out"), 1e-5, 1e-5)
            << t << " p " << p;
      }
    }
  }
}

TEST(ReduceGolden, MaxMinValuesAndFirstIndexOnTies) {
  for (int64_t dim : {0, 1, 2}) {
    for (bool is_max : {true, false}) {
      const std::string k = std::string(is_max ? "max." : "min.") + std::to_string(dim);
      Tensor x = fx(k + ".x");
      raw::ValuesIndices r = is_max ? raw::max(x, dim) : raw::min(x, dim);
      EXPECT_ALL_CLOSE(r.values, fx(k + ".out"), 0, 0) << k;
      EXPECT_EQ(r.indices.dtype(), kInt64);
      EXPECT_EQ(r.indices.to_vector<int64_t>(), fx(k + ".indices").to_vector<int64_t>()) << k;
      Tensor a = is_max ? raw::argmax(strided_copy(x), dim) : raw::argmin(strided_copy(x), dim);
      EXPECT_EQ(a.to_vector<int64_t>(), fx(k + ".indices").to_vector<int64_t>()) << k;
      raw::ValuesIndices kd = is_max ? raw::max(x, dim, true) : raw::min(x, dim, true);
      Shape ks = x.sizes();
      ks[size_t(dim)] = 1;
      EXPECT_EQ(kd.values.sizes(), ks);
      EXPECT_EQ(kd.indices.sizes(), ks);
    }
  }
  raw::ValuesIndices n = raw::max(fx("max_nan.x"), 1);
  EXPECT_ALL_CLOSE(n.values, fx("max_nan.out"), 0, 0);
  EXPECT_EQ(n.indices.to_vector<int64_t>(), fx("max_nan.indices").to_vector<int64_t>());
  EXPECT_ALL_CLOSE(raw::amax(fx("amax_nan.x"), {0}), fx("amax_nan.out"), 0, 0);
}

TEST(ReduceGolden, CumsumAndIntegerAndBoolSums) {
  for (int64_t dim : {0, 1, 2}) {
    const std::string k = "cumsum." + std::to_string(dim);
    EXPECT_ALL_CLOSE(raw::cumsum(fx(k + ".x"), dim), fx(k + ".out"), 1e-5, 1e-6) << k;
    EXPECT_ALL_CLOSE(raw::cumsum(strided_copy(fx(k + ".x")), dim), fx(k + ".out"), 1e-5, 1e-6);
  }
  Tensor ci = raw::cumsum(fx("cumsum_int.x"), 1);
  EXPECT_EQ(ci.dtype(), kInt64);
  EXPECT_EQ(ci.to_vector<int64_t>(), fx("cumsum_int.out").to_vector<int64_t>());
  Tensor si = raw::sum(fx("sum_int.x"), {0});
  EXPECT_EQ(si.dtype(), kInt64);
  EXPECT_EQ(si.to_vector<int64_t>(), fx("sum_int.out").to_vector<int64_t>());
  Tensor sb = raw::sum(fx("sum_bool.x"));
  EXPECT_EQ(sb.dtype(), kInt64);
  EXPECT_EQ(sb.item(), fx("sum_bool.out").item());
}

TEST(ReduceGolden, Float64Float16BFloat16) {
  struct Tol {
    const char* dtype;
    double rtol, atol;
  };
  for (Tol t : {Tol{"float64", 1e-12, 1e-12}, Tol{"float16", 2e-3, 2e-3},
                Tol{"bfloat16", 1.6e-2, 1.6e-2}}) {
    const std::string k = std::string("dtype.") + t.dtype;
    Tensor x = fx(k + ".sum.x");
    EXPECT_EQ(raw::sum(x, {1}).dtype(), x.dtype());
    EXPECT_ALL_CLOSE(raw::sum(x, {1}), fx(k + ".sum.out"), t.rtol, t.atol) << k;
    EXPECT_ALL_CLOSE(raw::mean(fx(k + ".mean.x"), {0}), fx(k + ".mean.out"), t.rtol, t.atol) << k;
    EXPECT_ALL_CLOSE(raw::amax(fx(k + ".amax.x"), {1}), fx(k + ".amax.out"), 0, 0) << k;
  }
}

// ---- accuracy, determinism, layouts -------------------------------------------------------------

TEST(ReduceSum, LongFloat32SumIsAccurate) {
  // 10^7 copies of 0.1f: the exact sum is 10^7 * 0.100000001490116... = 1000000.0149.
  const int64_t n = 10'000'000;
  Tensor x = raw::full({n}, 0.1, kFloat32);
  const double exact = double(n) * double(0.1f);
  const double tol = 0.25;  // 4 ulp of float32 at 10^6
  EXPECT_NEAR(raw::sum(x).item(), exact, tol);
  EXPECT_NEAR(raw::mean(x).item(), exact / double(n), 3e-8);
  // Naive sequential float32 summation is off by ~9 % here, so the tolerance is discriminating.
  float naive = 0;
  for (int64_t i = 0; i < n; ++i) naive += 0.1f;
  EXPECT_GT(std::fabs(double(naive) - exact), 1000 * tol);
  // The column layout is pairwise too: sum over dim 0 of [10^6, 4].
  Tensor c = raw::sum(raw::full({1'000'000, 4}, 0.1, kFloat32), {0});
  for (float v : c.to_vector<float>()) EXPECT_NEAR(v, 1e6 * double(0.1f), 0.05);
}

TEST(ReduceSum, ResultsDoNotDependOnTheThreadCount) {
  Generator gen(5);
  Tensor x = raw::randn({3, 400'000}, gen);
  Tensor m = raw::randn({70'000, 33}, gen);
  auto run = [&]() {
    std::vector<std::vector<float>> r;
    r.push_back(raw::sum(x).to_vector<float>());
    r.push_back(raw::sum(x, {1}).to_vector<float>());
    r.push_back(raw::sum(m, {0}).to_vector<float>());
    r.push_back(raw::mean(m, {1}).to_vector<float>());
    r.push_back(raw::amax(x, {1}).to_vector<float>());
    r.push_back(raw::var(m, {0}).to_vector<float>());
    r.push_back(raw::argmax(x, 1).to_vector<float>());
    return r;
  };
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = run();
  omp_set_num_threads(2);
  auto two = run();
  omp_set_num_threads(3);
  auto three = run();
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

TEST(ReduceSum, RowColumnAndCopiedLayoutsMatchFloat64) {
  Generator gen(9);
  Tensor x = raw::randn({37, 300, 41}, gen);
  Tensor xd = raw::to(x, kFloat64);
  // dims {1}: columns layout; {2}: rows; {0, 2}: reduced dims not adjacent -> copied layout;
  // a permuted view reduced over all dims.
  for (std::vector<int64_t> dims : std::vector<std::vector<int64_t>>{{1}, {2}, {0, 2}, {0}, {}}) {
    EXPECT_ALL_CLOSE(raw::sum(x, dims), raw::to(raw::sum(xd, dims), kFloat32), 1e-5, 1e-4);
    EXPECT_ALL_CLOSE(raw::amin(x, dims), raw::to(raw::amin(xd, dims), kFloat32), 0, 0);
  }
  EXPECT_NEAR(raw::sum(raw::permute(x, {2, 0, 1})).item(), raw::sum(xd).item(), 1e-3);
  // argmax on long rows with the maximum in a later chunk and ties at chunk boundaries.
  Tensor r = raw::zeros({2, 200'000});
  raw::fill_(raw::select(raw::select(r, 0, 0), 0, 70'000), 5.0);
  raw::fill_(raw::select(raw::select(r, 0, 0), 0, 140'000), 5.0);
  raw::fill_(raw::select(raw::select(r, 0, 1), 0, 131'072), -1.0);
  EXPECT_EQ(raw::argmax(r, 1).to_vector<int64_t>(), (std::vector<int64_t>{70'000, 0}));
  EXPECT_EQ(raw::argmin(r, 1).to_vector<int64_t>(), (std::vector<int64_t>{0, 131'072}));
}

// ---- empty inputs, sum_to, errors --------------------------------------------------------------

TEST(ReduceEmpty, IdentitiesAndErrors) {
  Tensor e = raw::zeros({0, 3});
  EXPECT_EQ(raw::sum(e).item(), 0.0);
  EXPECT_EQ(raw::sum(e, {0}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(raw::sum(e, {1}).sizes(), (Shape{0}));
  EXPECT_TRUE(std::isnan(raw::mean(e).item()));
  EXPECT_EQ(raw::logsumexp(e, {0}).to_vector<float>()[0], -INFINITY);
  EXPECT_EQ(raw::norm(e).item(), 0.0);
  EXPECT_EQ(raw::cumsum(e, 0).sizes(), (Shape{0, 3}));
  EXPECT_EQ(raw::amax(e, {1}).sizes(), (Shape{0}));  // nothing reduced over an empty dim
  EXPECT_THROW(raw::amax(e, {0}), Error);
  EXPECT_THROW(raw::max(e, 0), Error);
  EXPECT_THROW(raw::argmin(e, 0), Error);
  EXPECT_THROW(raw::amax(e), Error);
  // A 0-dim tensor reduces to itself.
  EXPECT_EQ(raw::sum(raw::scalar_tensor(4.0)).item(), 4.0);
  EXPECT_EQ(raw::argmax(raw::scalar_tensor(4.0), 0).item(), 0.0);
}

TEST(ReduceSumTo, ReversesBroadcasting) {
  Tensor g = raw::reshape(raw::arange(0, 60, 1, kFloat32), {4, 3, 5});
  Tensor a = raw::sum_to(g, {3, 1});
  EXPECT_EQ(a.sizes(), (Shape{3, 1}));
  // sum over i, k of 15 i + 5 j + k for row j: 5*90 + 20*5 j + 4*10 = 490 + 100 j.
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{490, 590, 690}));
  Tensor b = raw::sum_to(g, {5});
  EXPECT_EQ(b.sizes(), (Shape{5}));
  EXPECT_EQ(b.to_vector<float>()[0], 330.0f);  // sum of 15 i + 5 j = 12 * 27.5
  EXPECT_EQ(raw::sum_to(g, {4, 3, 5}).to_vector<float>(), g.to_vector<float>());
  EXPECT_EQ(raw::sum_to(g, {1, 1, 1}).item(), 1770.0);
  EXPECT_EQ(raw::sum_to(raw::ones({1, 3}), {3}).sizes(), (Shape{3}));
  EXPECT_THROW(raw::sum_to(g, {2, 5}), Error);
  EXPECT_THROW(raw::sum_to(g, {1, 4, 3, 5}), Error);
}

TEST(ReduceErrors, BadDimsAndDtypes) {
  Tensor x = raw::zeros({2, 3});
  EXPECT_THROW(raw::sum(x, {2}), Error);
  EXPECT_THROW(raw::sum(x, {0, -2}), Error);  // the same dim twice
  EXPECT_THROW(raw::mean(raw::zeros({3}, kInt64)), Error);
  EXPECT_THROW(raw::var(raw::zeros({3}, kInt32)), Error);
  EXPECT_THROW(raw::var(x, {}, -1), Error);
  EXPECT_THROW(raw::logsumexp(raw::zeros({3}, kInt32), {0}), Error);
  EXPECT_THROW(raw::cumsum(x, 5), Error);
  EXPECT_THROW(raw::max(x, -3), Error);
  EXPECT_THROW(raw::sum(Tensor()), Error);
}
