// Raw NN primitives (softmax, layer/group/batch norm, dropout, embedding) and their backward
// kernels: forward and gradients against PyTorch golden values (tests/golden/gen_nn_ops.py),
// dropout statistics and determinism, and the errors on bad input.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

constexpr const char* kFixture = "nn_ops.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// ---- softmax ------------------------------------------------------------------------------------

struct SoftmaxCase {
  const char* name;
  int64_t dim;
  bool log;
  bool transpose;  // the op runs on x.transpose(0, 1)
};

class SoftmaxGolden : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxGolden, ForwardAndBackwardMatchTorch) {
  const SoftmaxCase c = GetParam();
  const std::string n = c.name;
  Tensor x = fx(n + ".x");
  if (c.transpose) x = raw::transpose(x, 0, 1);  // a non-contiguous input
  Tensor y = c.log ? raw::log_softmax(x, c.dim) : raw::softmax(x, c.dim);
  EXPECT_ALL_CLOSE(y, fx(n + ".out"), 1e-5, 1e-6);
  Tensor gy = fx(n + ".gy");
  Tensor dx = c.log ? raw::log_softmax_backward(gy, y, c.dim) : raw::softmax_backward(gy, y, c.dim);
  if (c.transpose) dx = raw::transpose(dx, 0, 1);
  EXPECT_ALL_CLOSE(dx, fx(n + ".grad_x"), 1e-4, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Cases, SoftmaxGolden,
                         ::testing::Values(SoftmaxCase{"softmax_last", -1, false, false},
                                           SoftmaxCase{"softmax_dim1", 1, false, false},
                                           SoftmaxCase{"softmax_dim0_t", 0, false, true},
                                           SoftmaxCase{"softmax_wide", 1, false, false},
                                           SoftmaxCase{"log_softmax_last", -1, true, false},
                                           SoftmaxCase{"log_softmax_dim0", 0, true, false},
                                           SoftmaxCase{"log_softmax_dim1_t", 1, true, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Softmax, RowsSumToOneAndLargeValuesStayFinite) {
  // exp(1000) overflows unless the max is subtracted; each row must still sum to 1.
  Tensor x = raw::from_vector(std::vector<float>{1000, 1001, 1002, -5, 0, 5}, {2, 3});
  Tensor y = raw::softmax(x, 1);
  auto v = y.to_vector<double>();
  EXPECT_NEAR(v[0] + v[1] + v[2], 1.0, 1e-6);
  EXPECT_NEAR(v[2] / v[1], std::exp(1.0), 1e-4);
  Tensor ls = raw::log_softmax(x, 1);
  EXPECT_NEAR(ls.at({0, 2}), -std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-5);
}

TEST(Softmax, LargeTensorMatchesFloat64AndIsThreadCountIndependent) {
  Generator gen(7);
  Tensor x = raw::randn({64, 37, 129}, gen);
  for (int64_t dim : {0, 1, 2}) {
    Tensor ref = raw::to(raw::softmax(raw::to(x, kFloat64), dim), kFloat32);
    omp_set_num_threads(1);
    Tensor y1 = raw::softmax(x, dim);
    omp_set_num_threads(2);
    Tensor y2 = raw::softmax(x, dim);
    EXPECT_ALL_CLOSE(y2, ref, 1e-5, 1e-7);
    EXPECT_EQ(y1.to_vector<float>(), y2.to_vector<float>()) << "dim " << dim;
  }
}

TEST(Softmax, HalfInputComputesInFloat) {
  Tensor x = raw::from_vector(std::vector<float>{0.5f, 1.5f, -1.0f, 2.0f}, {4});
  Tensor y = raw::softmax(raw::to(x, kFloat16), 0);
  EXPECT_EQ(y.dtype(), kFloat16);
  EXPECT_ALL_CLOSE(y, raw::softmax(x, 0), 1e-3, 1e-3);
}

TEST(Softmax, BadInputThrows) {
  Tensor x = raw::zeros({2, 3});
  EXPECT_THROW(raw::softmax(x, 2), Error);
  EXPECT_THROW(raw::softmax(raw::zeros({2, 3}, kInt64), 1), Error);
  EXPECT_THROW(raw::softmax_backward(raw::zeros({2, 2}), x, 1), Error);
  EXPECT_ERROR_CONTAINS(raw::log_softmax(raw::zeros({2}, kInt32), 0), "log_softmax");
}

// ---- layer norm -------------------------------------------------------------------------------

struct LayerCase {
  const char* name;
  int64_t nd;
  bool affine;
};
class LayerNormGolden : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LayerNormGolden, ForwardAndBackwardMatchTorch) {
  const LayerCase c = GetParam();
  const std::string n = c.name;
  Tensor x = fx(n + ".x");
  Tensor w = c.affine ? fx(n + ".w") : Tensor(), b = c.affine ? fx(n + ".b") : Tensor();
  raw::NormResult r = raw::layer_norm(x, c.nd, w, b, 1e-5);
  EXPECT_ALL_CLOSE(r.out, fx(n + ".out"), 1e-5, 1e-5);
  raw::NormGrads g = raw::layer_norm_backward(fx(n + ".gy"), x, r, w, c.nd);
  EXPECT_ALL_CLOSE(g.input, fx(n + ".grad_x"), 1e-4, 1e-5);
  if (c.affine) {
    EXPECT_ALL_CLOSE(g.weight, fx(n + ".grad_w"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g.bias, fx(n + ".grad_b"), 1e-4, 1e-5);
  } else {
    EXPECT_FALSE(g.weight.defined());
  }
}
INSTANTIATE_TEST_SUITE_P(Cases, LayerNormGolden,
                         ::testing::Values(LayerCase{"layer_norm_affine", 1, true},
                                           LayerCase{"layer_norm_plain", 1, false},
                                           LayerCase{"layer_norm_2d", 2, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LayerNorm, LargeOffsetKeepsPrecision) {
  // float32 values 1e4 + small noise: a one-pass E[x^2] - E[x]^2 in float would lose all digits.
  std::vector<float> v(256);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 10000.0f + float(i % 7) * 0.01f;
  Tensor x = raw::from_vector(v, {1, 256});
  raw::NormResult r = raw::layer_norm(x, 1, {}, {}, 0.0);
  double mean = 0, var = 0;
  for (float f : v) mean += f;
  mean /= 256;
  for (float f : v) var += (f - mean) * (f - mean);
  var /= 256;
  EXPECT_NEAR(r.mean.item(), mean, 1e-3);
  EXPECT_NEAR(r.rstd.item(), 1 / std::sqrt(var), 1e-3 / std::sqrt(var));
}

TEST(LayerNorm, BadInputThrows) {
  Tensor x = raw::zeros({2, 4});
  EXPECT_THROW(raw::layer_norm(x, 3, {}, {}, 1e-5), Error);
  EXPECT_THROW(raw::layer_norm(x, 1, raw::ones({3}), {}, 1e-5), Error);
  EXPECT_THROW(raw::layer_norm(raw::zeros({2, 4}, kInt64), 1, {}, {}, 1e-5), Error);
}

// ---- group norm -------------------------------------------------------------------------------

struct GroupCase {
  const char* name;
  int64_t groups;
  bool affine, silu;
};
class GroupNormGolden : public ::testing::TestWithParam<GroupCase> {};

TEST_P(GroupNormGolden, ForwardAndBackwardMatchTorch) {
  const GroupCase c = GetParam();
  const std::string n = c.name;
  Tensor x = fx(n + ".x");
  Tensor w = c.affine ? fx(n + ".w") : Tensor(), b = c.affine ? fx(n + ".b") : Tensor();
  raw::NormResult r = raw::group_norm(x, c.groups, w, b, 1e-5, c.silu);
  EXPECT_ALL_CLOSE(r.out, fx(n + ".out"), 1e-5, 1e-5);
  raw::NormGrads g = raw::group_norm_backward(fx(n + ".gy"), x, r, w, b, c.groups, c.silu);
  EXPECT_ALL_CLOSE(g.input, fx(n + ".grad_x"), 1e-4, 1e-5);
  if (c.affine) {
    EXPECT_ALL_CLOSE(g.weight, fx(n + ".grad_w"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g.bias, fx(n + ".grad_b"), 1e-4, 1e-5);
  }
}
INSTANTIATE_TEST_SUITE_P(Cases, GroupNormGolden,
                         ::testing::Values(GroupCase{"group_norm_affine", 3, true, false},
                                           GroupCase{"group_norm_plain", 2, false, false},
                                           GroupCase{"group_norm_silu", 2, true, true},
                                           GroupCase{"group_norm_1group", 1, true, false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GroupNorm, LargeInputIsThreadCountIndependent) {
  Generator gen(3);
  Tensor x = raw::randn({2, 32, 24, 24}, gen);
  Tensor w = raw::randn({32}, gen), b = raw::randn({32}, gen),
         gy = raw::randn({2, 32, 24, 24}, gen);
  omp_set_num_threads(1);
  raw::NormResult r1 = raw::group_norm(x, 8, w, b, 1e-5, true);
  raw::NormGrads g1 = raw::group_norm_backward(gy, x, r1, w, b, 8, true);
  omp_set_num_threads(2);
  raw::NormResult r2 = raw::group_norm(x, 8, w, b, 1e-5, true);
  raw::NormGrads g2 = raw::group_norm_backward(gy, x, r2, w, b, 8, true);
  EXPECT_EQ(r1.out.to_vector<float>(), r2.out.to_vector<float>());
  EXPECT_EQ(g1.input.to_vector<float>(), g2.input.to_vector<float>());
  EXPECT_EQ(g1.weight.to_vector<float>(), g2.weight.to_vector<float>());
  // And the float32 path agrees with the float64 one.
  raw::NormResult r64 = raw::group_norm(raw::to(x, kFloat64), 8, raw::to(w, kFloat64),
                                        raw::to(b, kFloat64), 1e-5, true);
  EXPECT_ALL_CLOSE(r2.out, r64.out, 1e-5, 1e-5);
}

TEST(GroupNorm, BadInputThrows) {
  EXPECT_THROW(raw::group_norm(raw::zeros({2, 6, 3}), 4, {}, {}, 1e-5), Error);
  EXPECT_THROW(raw::group_norm(raw::zeros({6}), 2, {}, {}, 1e-5), Error);
  EXPECT_THROW(raw::group_norm(raw::zeros({2, 6, 3}), 3, raw::ones({5}), {}, 1e-5), Error);
}

// ---- batch norm -------------------------------------------------------------------------------

TEST(BatchNorm, TrainingMatchesTorchAndUpdatesRunningStats) {
  for (const std::string n : {"batch_norm_train", "batch_norm_train_plain"}) {
    SCOPED_TRACE(n);
    const bool affine = n == "batch_norm_train";
    Tensor x = fx(n + ".x");
    Tensor w = affine ? fx(n + ".w") : Tensor(), b = affine ? fx(n + ".b") : Tensor();
    Tensor rm = raw::clone(fx(n + ".running_mean")), rv = raw::clone(fx(n + ".running_var"));
    raw::NormResult r = raw::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
    EXPECT_ALL_CLOSE(r.out, fx(n + ".out"), 1e-5, 1e-5);
    EXPECT_ALL_CLOSE(rm, fx(n + ".running_mean_after"), 1e-6, 1e-6);
    EXPECT_ALL_CLOSE(rv, fx(n + ".running_var_after"), 1e-6, 1e-6);
    raw::NormGrads g = raw::batch_norm_backward(fx(n + ".gy"), x, r, w, true);
    EXPECT_ALL_CLOSE(g.input, fx(n + ".grad_x"), 1e-4, 1e-5);
    if (affine) {
      EXPECT_ALL_CLOSE(g.weight, fx(n + ".grad_w"), 1e-4, 1e-5);
      EXPECT_ALL_CLOSE(g.bias, fx(n + ".grad_b"), 1e-4, 1e-5);
    }
  }
}

TEST(BatchNorm, EvalUsesRunningStatsAndLeavesThemAlone) {
  const std::string n = "batch_norm_eval";
  Tensor x = fx(n + ".x"), w = fx(n + ".w"), b = fx(n + ".b");
  Tensor rm = raw::clone(fx(n + ".running_mean")), rv = raw::clone(fx(n + ".running_var"));
  raw::NormResult r = raw::batch_norm(x, w, b, rm, rv, false, 0.1, 1e-5);
  EXPECT_ALL_CLOSE(r.out, fx(n + ".out"), 1e-5, 1e-5);
  EXPECT_ALL_CLOSE(rm, fx(n + ".running_mean"), 0, 0);
  EXPECT_ALL_CLOSE(rv, fx(n + ".running_var"), 0, 0);
  raw::NormGrads g = raw::batch_norm_backward(fx(n + ".gy"), x, r, w, false);
  EXPECT_ALL_CLOSE(g.input, fx(n + ".grad_x"), 1e-4, 1e-5);
  EXPECT_ALL_CLOSE(g.weight, fx(n + ".grad_w"), 1e-4, 1e-5);
  EXPECT_ALL_CLOSE(g.bias, fx(n + ".grad_b"), 1e-4, 1e-5);
}

TEST(BatchNorm, BadInputThrows) {
  Tensor x = raw::zeros({1, 3});
  EXPECT_THROW(raw::batch_norm(x, {}, {}, {}, {}, true, 0.1, 1e-5), Error);  // 1 value/channel
  EXPECT_THROW(raw::batch_norm(raw::zeros({2, 3}), {}, {}, {}, {}, false, 0.1, 1e-5), Error);
  EXPECT_THROW(
      raw::batch_norm(raw::zeros({2, 3}), {}, {}, raw::zeros({2}), raw::ones({2}), true, 0.1, 1e-5),
      Error);
  EXPECT_THROW(raw::batch_norm(raw::zeros({4}), {}, {}, {}, {}, true, 0.1, 1e-5), Error);
}

// ---- dropout ----------------------------------------------------------------------------------

TEST(Dropout, KeptFractionAndMeanMatchTheProbability) {
  const int64_t n = 1 << 20;
  for (double p : {0.1, 0.5, 0.9}) {
    Generator gen(42);
    raw::DropoutResult r = raw::dropout(raw::ones({n}), p, gen);
    auto m = r.mask.to_vector<float>();
    auto o = r.out.to_vector<float>();
    int64_t kept = 0;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(m[size_t(i)] == 0.0f || std::abs(m[size_t(i)] - 1 / (1 - p)) < 1e-5);
      kept += m[size_t(i)] != 0.0f;
      sum += o[size_t(i)];
    }
    // Binomial: the kept fraction has sd sqrt(p(1-p)/n); the mean of out has sd sqrt(p/(1-p)/n).
    // Allow 6 standard deviations.
    const double frac = double(kept) / double(n);
    EXPECT_NEAR(frac, 1 - p, 6 * std::sqrt(p * (1 - p) / double(n))) << "p " << p;
    EXPECT_NEAR(sum / double(n), 1.0, 6 * std::sqrt(p / (1 - p) / double(n))) << "p " << p;
  }
}

TEST(Dropout, DeterministicForSeedAndDependsOnlyOnIndex) {
  Generator a(9), b(9);
  Tensor x = raw::ones({100001});
  omp_set_num_threads(1);
  raw::DropoutResult ra = raw::dropout(x, 0.3, a);
  omp_set_num_threads(2);
  raw::DropoutResult rb = raw::dropout(x, 0.3, b);
  EXPECT_EQ(ra.mask.to_vector<float>(), rb.mask.to_vector<float>());
  EXPECT_EQ(a.offset(), b.offset());
  EXPECT_EQ(a.offset(), uint64_t((100001 + 3) / 4));
  // A second draw continues the stream: a different mask.
  raw::DropoutResult rc = raw::dropout(x, 0.3, a);
  EXPECT_NE(ra.mask.to_vector<float>(), rc.mask.to_vector<float>());
  // The same generator state on a shorter tensor gives the prefix of the same mask.
  Generator d(9);
  raw::DropoutResult rd = raw::dropout(raw::ones({50}), 0.3, d);
  auto full = ra.mask.to_vector<float>();
  EXPECT_EQ(rd.mask.to_vector<float>(), std::vector<float>(full.begin(), full.begin() + 50));
}

TEST(Dropout, EdgeProbabilities) {
  Generator gen(1);
  Tensor x = raw::from_vector(std::vector<float>{1, -2, 3}, {3});
  raw::DropoutResult r0 = raw::dropout(x, 0.0, gen);
  EXPECT_ALL_CLOSE(r0.out, x, 0, 0);
  raw::DropoutResult r1 = raw::dropout(x, 1.0, gen);
  EXPECT_ALL_CLOSE(r1.out, raw::zeros({3}), 0, 0);
  EXPECT_EQ(gen.offset(), 0u);  // no random numbers drawn at the edges
  EXPECT_THROW(raw::dropout(x, 1.5, gen), Error);
  EXPECT_THROW(raw::dropout(x, -0.1, gen), Error);
  EXPECT_THROW(raw::dropout(raw::zeros({3}, kInt64), 0.5, gen), Error);
}

// ---- embedding --------------------------------------------------------------------------------

TEST(Embedding, ForwardAndBackwardMatchTorch) {
  Tensor w = fx("embedding.w"), idx = fx("embedding.idx");
  EXPECT_ALL_CLOSE(raw::embedding(w, idx), fx("embedding.out"), 0, 0);
  EXPECT_ALL_CLOSE(raw::embedding(w, raw::to(idx, kInt32)), fx("embedding.out"), 0, 0);
  EXPECT_ALL_CLOSE(raw::embedding_backward(fx("embedding.gy"), idx, 10), fx("embedding.grad_w"),
                   1e-6, 1e-6);
}

TEST(Embedding, BadInputThrows) {
  Tensor w = raw::zeros({5, 3});
  EXPECT_THROW(raw::embedding(w, raw::from_vector(std::vector<int64_t>{0, 5}, {2})), Error);
  EXPECT_THROW(raw::embedding(w, raw::from_vector(std::vector<int64_t>{-1}, {1})), Error);
  EXPECT_THROW(raw::embedding(w, raw::zeros({2})), Error);  // float indices
  EXPECT_THROW(raw::embedding(raw::zeros({5}), raw::zeros({2}, kInt64)), Error);
  EXPECT_THROW(raw::embedding_backward(raw::zeros({2, 3}), raw::zeros({3}, kInt64), 5), Error);
}

}  // namespace
