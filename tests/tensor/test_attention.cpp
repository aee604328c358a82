// Memory-efficient scaled dot-product attention (raw forward and backward): PyTorch golden values
// for head dims 40/64/80, L != S, bool and float masks, causal and custom scale; a naive float64
// reference (explicit score matrix) for odd sizes 1..1000 and permuted inputs; fully masked rows;
// thread-count independence; errors.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

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

// ---- golden ---------------------------------------------------------------------------------

struct GoldenCase {
  const char* name;
  bool mask, causal;
  double scale;  // 0 = default 1/sqrt(D)
};
class AttentionGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(AttentionGolden, ForwardAndBackwardMatchTorch) {
  const GoldenCase c = GetParam();
  const std::string n = c.name;
  Tensor q = fx(n + ".q"), k = fx(n + ".k"), v = fx(n + ".v");
  Tensor mask = c.mask ? fx(n + ".mask") : Tensor();
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, mask, c.causal, c.scale);
  EXPECT_ALL_CLOSE(r.out, fx(n + ".out"), 1e-4, 1e-5);
  raw::AttentionGrads g = raw::scaled_dot_product_attention_backward(fx(n + ".gy"), q, k, v, r,
                                                                     mask, c.causal, c.scale);
  EXPECT_ALL_CLOSE(g.q, fx(n + ".grad_q"), 1e-4, 1e-4);
  EXPECT_ALL_CLOSE(g.k, fx(n + ".grad_k"), 1e-4, 1e-4);
  EXPECT_ALL_CLOSE(g.v, fx(n + ".grad_v"), 1e-4, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Cases, AttentionGolden,
                         ::testing::Values(GoldenCase{"attn_d40", false, false, 0},
                                           GoldenCase{"attn_d64", false, false, 0},
                                           GoldenCase{"attn_d80", false, false, 0},
                                           GoldenCase{"attn_bool", true, false, 0},
                                           GoldenCase{"attn_float", true, false, 0},
                                           GoldenCase{"attn_causal", false, true, 0},
                                           GoldenCase{"attn_causal_ls", false, true, 0},
                                           GoldenCase{"attn_scale", false, false, 0.3},
                                           GoldenCase{"attn_dv", false, false, 0}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- naive reference ------------------------------------------------------------------------

// Explicit L×S attention in float64 for one [BH, L, D] problem with an optional additive mask
// [L, S] (shared by every head; -inf = masked); returns out and the three gradients for gy.
struct Naive {
  std::vector<double> out, dq, dk, dv;
};
Naive naive_attention(const std::vector<double>& q, const std::vector<double>& k,
                      const std::vector<double>& v, const std::vector<double>& gy,
                      const std::vector<double>* mask, int64_t bh, int64_t L, int64_t S, int64_t D,
                      int64_t Dv, bool causal, double scale) {
  Naive r;
  r.out.assign(size_t(bh * L * Dv), 0);
  r.dq.assign(size_t(bh * L * D), 0);
  r.dk.assign(size_t(bh * S * D), 0);
  r.dv.assign(size_t(bh * S * Dv), 0);
  std::vector<double> p(static_cast<size_t>(S)), dp(static_cast<size_t>(S));
  for (int64_t h = 0; h < bh; ++h)
    for (int64_t i = 0; i < L; ++i) {
      const double* qi = &q[size_t((h * L + i) * D)];
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < S; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qi[d] * k[size_t((h * S + j) * D + d)];
        s *= scale;
        if (mask) s += (*mask)[size_t(i * S + j)];
        if (causal && j > i) s = -std::numeric_limits<double>::infinity();
        p[size_t(j)] = s;
        mx = std::max(mx, s);
      }
      if (mx == -std::numeric_limits<double>::infinity()) continue;  // fully masked: zeros
      double sum = 0;
      for (int64_t j = 0; j < S; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
      for (int64_t j = 0; j < S; ++j) p[size_t(j)] /= sum;
      const double* g = &gy[size_t((h * L + i) * Dv)];
      double dsum = 0;
      for (int64_t j = 0; j < S; ++j) {
        double o = 0;
        for (int64_t c = 0; c < Dv; ++c) {
          r.out[size_t((h * L + i) * Dv + c)] += p[size_t(j)] * v[size_t((h * S + j) * Dv + c)];
          r.dv[size_t((h * S + j) * Dv + c)] += p[size_t(j)] * g[c];
          o += g[c] * v[size_t((h * S + j) * Dv + c)];
        }
        dp[size_t(j)] = o;
        dsum += p[size_t(j)] * o;
      }
      for (int64_t j = 0; j < S; ++j) {
        const double ds = p[size_t(j)] * (dp[size_t(j)] - dsum) * scale;
        for (int64_t d = 0; d < D; ++d) {
          r.dq[size_t((h * L + i) * D + d)] += ds * k[size_t((h * S + j) * D + d)];
          r.dk[size_t((h * S + j) * D + d)] += ds * qi[d];
        }
      }
    }
  return r;
}

Tensor as_tensor(const std::vector<double>& v, const Shape& s) {
  return raw::from_vector(v, s, kFloat64);
}

struct SizeCase {
  int64_t L, S, D;
  bool causal;
};

class AttentionNaive : public ::testing::TestWithParam<SizeCase> {};

TEST_P(AttentionNaive, MatchesExplicitScoreMatrix) {
  const SizeCase c = GetParam();
  const int64_t B = 1, H = 2, Dv = c.D;
  Generator gen(uint64_t(c.L * 1000 + c.S));
  Tensor q = raw::randn({B, H, c.L, c.D}, gen), k = raw::randn({B, H, c.S, c.D}, gen);
  Tensor v = raw::randn({B, H, c.S, Dv}, gen), gy = raw::randn({B, H, c.L, Dv}, gen);
  const double scale = 1 / std::sqrt(double(c.D));
  Naive ref =
      naive_attention(q.to_vector<double>(), k.to_vector<double>(), v.to_vector<double>(),
                      gy.to_vector<double>(), nullptr, B * H, c.L, c.S, c.D, Dv, c.causal, scale);
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, {}, c.causal, 0);
  EXPECT_ALL_CLOSE(r.out, as_tensor(ref.out, {B, H, c.L, Dv}), 1e-4, 2e-5);
  raw::AttentionGrads g =
      raw::scaled_dot_product_attention_backward(gy, q, k, v, r, {}, c.causal, 0);
  EXPECT_ALL_CLOSE(g.q, as_tensor(ref.dq, {B, H, c.L, c.D}), 1e-3, 1e-4);
  EXPECT_ALL_CLOSE(g.k, as_tensor(ref.dk, {B, H, c.S, c.D}), 1e-3, 1e-4);
  EXPECT_ALL_CLOSE(g.v, as_tensor(ref.dv, {B, H, c.S, Dv}), 1e-3, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(OddSizes, AttentionNaive,
                         ::testing::Values(SizeCase{1, 1, 64, false}, SizeCase{7, 7, 40, false},
                                           SizeCase{63, 65, 64, false}, SizeCase{65, 63, 80, true},
                                           SizeCase{1000, 1000, 64, false},
                                           SizeCase{1000, 77, 40, false},
                                           SizeCase{129, 1000, 160, false},
                                           SizeCase{1000, 1000, 40, true}, SizeCase{7, 1, 64, true},
                                           SizeCase{1, 65, 16, false}),
                         [](const auto& info) {
                           const SizeCase& c = info.param;
                           return "L" + std::to_string(c.L) + "_S" + std::to_string(c.S) + "_D" +
                                  std::to_string(c.D) + (c.causal ? "_causal" : "");
                         });

TEST(Attention, PermutedInputsAndBroadcastMaskMatchNaive) {
  // q/k/v given as [B, L, H, D] views permuted to [B, H, L, D] (what a model's reshape gives),
  // an additive float mask [L, S] broadcast over batch and heads with some -inf entries.
  const int64_t B = 2, H = 3, L = 70, S = 90, D = 24;
  Generator gen(5);
  Tensor qb = raw::randn({B, L, H, D}, gen), kb = raw::randn({B, S, H, D}, gen);
  Tensor vb = raw::randn({B, S, H, D}, gen), gy = raw::randn({B, H, L, D}, gen);
  Tensor q = raw::permute(qb, {0, 2, 1, 3}), k = raw::permute(kb, {0, 2, 1, 3}),
         v = raw::permute(vb, {0, 2, 1, 3});
  std::vector<double> m(size_t(L * S));
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < S; ++j)
      m[size_t(i * S + j)] = (i + 2 * j) % 7 == 0 && j != 0
                                 ? -std::numeric_limits<double>::infinity()
                                 : 0.1 * double((i * 3 + j) % 5);
  Tensor mask = raw::to(as_tensor(m, {L, S}), kFloat32);
  Naive ref = naive_attention(raw::contiguous(q).to_vector<double>(),
                              raw::contiguous(k).to_vector<double>(),
                              raw::contiguous(v).to_vector<double>(), gy.to_vector<double>(), &m,
                              B * H, L, S, D, D, false, 0.5);
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, mask, false, 0.5);
  EXPECT_ALL_CLOSE(r.out, as_tensor(ref.out, {B, H, L, D}), 1e-4, 2e-5);
  raw::AttentionGrads g =
      raw::scaled_dot_product_attention_backward(gy, q, k, v, r, mask, false, 0.5);
  EXPECT_ALL_CLOSE(g.q, as_tensor(ref.dq, {B, H, L, D}), 1e-3, 1e-4);
  EXPECT_ALL_CLOSE(g.k, as_tensor(ref.dk, {B, H, S, D}), 1e-3, 1e-4);
  EXPECT_ALL_CLOSE(g.v, as_tensor(ref.dv, {B, H, S, D}), 1e-3, 1e-4);
  // The bool keep-mask equivalent of the -inf entries gives the same result as an additive mask
  // holding just those -inf entries.
  std::vector<double> only_inf(m.size());
  std::vector<float> keep(m.size());
  for (size_t e = 0; e < m.size(); ++e) {
    only_inf[e] = std::isinf(m[e]) ? m[e] : 0.0;
    keep[e] = std::isinf(m[e]) ? 0.0f : 1.0f;
  }
  Tensor keep_mask = raw::to(raw::from_vector(keep, {L, S}), kBool);
  raw::AttentionResult rb = raw::scaled_dot_product_attention(q, k, v, keep_mask, false, 0.5);
  raw::AttentionResult rf = raw::scaled_dot_product_attention(
      q, k, v, raw::to(as_tensor(only_inf, {L, S}), kFloat32), false, 0.5);
  EXPECT_ALL_CLOSE(rb.out, rf.out, 1e-6, 1e-7);
}

TEST(Attention, FullyMaskedRowsGiveZeroOutputAndZeroGradients) {
  const int64_t L = 5, S = 6, D = 8;
  Generator gen(11);
  Tensor q = raw::randn({1, 1, L, D}, gen), k = raw::randn({1, 1, S, D}, gen);
  Tensor v = raw::randn({1, 1, S, D}, gen), gy = raw::randn({1, 1, L, D}, gen);
  std::vector<float> keep(size_t(L * S), 1.0f);
  for (int64_t j = 0; j < S; ++j) keep[size_t(2 * S + j)] = 0.0f;  // row 2 sees nothing
  Tensor mask = raw::to(raw::from_vector(keep, {L, S}), kBool);
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, mask, false, 0);
  for (int64_t c = 0; c < D; ++c) EXPECT_EQ(r.out.at({0, 0, 2, c}), 0.0);
  EXPECT_NE(r.out.at({0, 0, 1, 0}), 0.0);
  raw::AttentionGrads g =
      raw::scaled_dot_product_attention_backward(gy, q, k, v, r, mask, false, 0);
  for (int64_t c = 0; c < D; ++c) EXPECT_EQ(g.q.at({0, 0, 2, c}), 0.0);
  for (double x : g.k.to_vector<double>()) EXPECT_TRUE(std::isfinite(x));
}

TEST(Attention, Float64AndHalfInputs) {
  const int64_t L = 33, S = 20, D = 16;
  Generator gen(13);
  Tensor q = raw::randn({2, L, D}, gen, kFloat64), k = raw::randn({2, S, D}, gen, kFloat64);
  Tensor v = raw::randn({2, S, D}, gen, kFloat64), gy = raw::randn({2, L, D}, gen, kFloat64);
  Naive ref = naive_attention(q.to_vector<double>(), k.to_vector<double>(), v.to_vector<double>(),
                              gy.to_vector<double>(), nullptr, 2, L, S, D, D, false,
                              1 / std::sqrt(double(D)));
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, {}, false, 0);
  EXPECT_EQ(r.out.dtype(), kFloat64);
  EXPECT_ALL_CLOSE(r.out, as_tensor(ref.out, {2, L, D}), 1e-12, 1e-13);
  raw::AttentionGrads g = raw::scaled_dot_product_attention_backward(gy, q, k, v, r, {}, false, 0);
  EXPECT_ALL_CLOSE(g.q, as_tensor(ref.dq, {2, L, D}), 1e-10, 1e-12);
  EXPECT_ALL_CLOSE(g.k, as_tensor(ref.dk, {2, S, D}), 1e-10, 1e-12);
  raw::AttentionResult rh = raw::scaled_dot_product_attention(
      raw::to(q, kBFloat16), raw::to(k, kBFloat16), raw::to(v, kBFloat16), {}, false, 0);
  EXPECT_EQ(rh.out.dtype(), kBFloat16);
  EXPECT_ALL_CLOSE(rh.out, as_tensor(ref.out, {2, L, D}), 5e-2, 5e-2);
}

TEST(Attention, BitwiseIndependentOfThreadCount) {
  for (int64_t heads : {1, 8}) {
    Generator gen(17);
    Tensor q = raw::randn({1, heads, 300, 64}, gen), k = raw::randn({1, heads, 700, 64}, gen);
    Tensor v = raw::randn({1, heads, 700, 64}, gen), gy = raw::randn({1, heads, 300, 64}, gen);
    omp_set_num_threads(1);
    raw::AttentionResult r1 = raw::scaled_dot_product_attention(q, k, v, {}, true, 0);
    raw::AttentionGrads g1 =
        raw::scaled_dot_product_attention_backward(gy, q, k, v, r1, {}, true, 0);
    omp_set_num_threads(2);
    raw::AttentionResult r2 = raw::scaled_dot_product_attention(q, k, v, {}, true, 0);
    raw::AttentionGrads g2 =
        raw::scaled_dot_product_attention_backward(gy, q, k, v, r2, {}, true, 0);
    EXPECT_EQ(r1.out.to_vector<float>(), r2.out.to_vector<float>());
    EXPECT_EQ(g1.q.to_vector<float>(), g2.q.to_vector<float>());
    EXPECT_EQ(g1.k.to_vector<float>(), g2.k.to_vector<float>());
    EXPECT_EQ(g1.v.to_vector<float>(), g2.v.to_vector<float>());
  }
}

TEST(Attention, WorkspaceIsSmallNextToTheScoreMatrix) {
  Tensor q = raw::zeros({1, 8, 4096, 64}), k = raw::zeros({1, 8, 4096, 64}),
         v = raw::zeros({1, 8, 4096, 64});
  const int64_t ws = raw::scaled_dot_product_attention_workspace_bytes(q, k, v, 2);
  EXPECT_GT(ws, 0);
  // One head's L×S float scores would be 64 MiB; the tiles must stay below 1% of that.
  EXPECT_LT(ws, int64_t(4096) * 4096 * 4 / 100);
}

TEST(Attention, BadInputThrows) {
  Tensor q = raw::zeros({1, 2, 4, 8}), k = raw::zeros({1, 2, 5, 8}), v = raw::zeros({1, 2, 5, 8});
  EXPECT_THROW(raw::scaled_dot_product_attention(q, raw::zeros({1, 2, 5, 7}), v, {}, false, 0),
               Error);  // head dims differ
  EXPECT_THROW(raw::scaled_dot_product_attention(q, k, raw::zeros({1, 2, 6, 8}), {}, false, 0),
               Error);  // key/value lengths differ
  EXPECT_THROW(raw::scaled_dot_product_attention(q, raw::zeros({1, 3, 5, 8}),
                                                 raw::zeros({1, 3, 5, 8}), {}, false, 0),
               Error);  // batch dims differ
  EXPECT_THROW(
      raw::scaled_dot_product_attention(q, k, raw::zeros({1, 2, 5, 8}, kFloat64), {}, false, 0),
      Error);  // dtypes differ
  EXPECT_THROW(raw::scaled_dot_product_attention(q, k, v, raw::zeros({4, 6}), false, 0),
               Error);  // mask not broadcastable
  EXPECT_THROW(raw::scaled_dot_product_attention(q, k, v, raw::zeros({4, 5}, kInt64), false, 0),
               Error);  // integer mask
  EXPECT_THROW(raw::scaled_dot_product_attention(raw::zeros({8}), raw::zeros({8}), raw::zeros({8}),
                                                 {}, false, 0),
               Error);  // fewer than 2 dims
  const std::string msg = test::error_message([&] {
    raw::scaled_dot_product_attention(q, raw::zeros({1, 2, 5, 7}), v, {}, false, 0);
  });
  EXPECT_NE(msg.find("scaled_dot_product_attention"), std::string::npos) << msg;
  EXPECT_NE(msg.find("float32[1, 2, 5, 7]"), std::string::npos) << msg;
}

}  // namespace
