// Differentiable NN primitives (autograd/nn_ops.h): float64 gradcheck of every op and option,
// vector-Jacobian products against PyTorch golden gradients (tests/golden/gen_nn_ops.py), and
// the graph wiring (no node without grad, dropout in eval, running statistics).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/nn_ops.h"
#include "autograd/views.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "support/tensors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

constexpr const char* kFixture = "nn_ops.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// A float64 leaf that requires grad, with values from a seeded normal.
Tensor leaf(const Shape& shape, uint64_t seed, double scale = 1.0, double shift = 0.0) {
  Generator gen(seed);
  Tensor t = raw::randn(shape, gen, kFloat64, shift, scale);
  t.set_requires_grad(true);
  return t;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(NnOpsGradcheck, Softmax) {
  for (int64_t dim : {0, 1, 2}) {
    EXPECT_TRUE(gradcheck([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); },
                          {leaf({3, 4, 5}, 1)}))
        << "dim " << dim;
    EXPECT_TRUE(gradcheck([dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); },
                          {leaf({3, 4, 5}, 2)}))
        << "dim " << dim;
  }
  // A transposed (non-contiguous) input.
  EXPECT_TRUE(
      gradcheck([](const std::vector<Tensor>& in) { return softmax(transpose(in[0], 0, 1), 1); },
                {leaf({4, 3}, 3)}));
}

TEST(NnOpsGradcheck, LayerNorm) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {6}, in[1], in[2], 1e-5); },
      {leaf({3, 6}, 4), leaf({6}, 5), leaf({6}, 6)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return layer_norm(in[0], {2, 3});
      },
      {leaf({4, 2, 3}, 7)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, in[1], {}, 1e-5); },
      {leaf({2, 5}, 8), leaf({5}, 9)}));
}

TEST(NnOpsGradcheck, GroupNormWithAndWithoutSilu) {
  for (bool silu : {false, true}) {
    EXPECT_TRUE(gradcheck(
        [silu](const std::vector<Tensor>& in) {
          return group_norm(in[0], 2, in[1], in[2], 1e-5, silu);
        },
        {leaf({2, 4, 3}, 10), leaf({4}, 11), leaf({4}, 12)}))
        << "silu " << silu;
  }
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return group_norm(in[0], 3, {}, {}, 1e-5, true); },
      {leaf({2, 6, 2, 2}, 13)}));
}

TEST(NnOpsGradcheck, BatchNormTrainingAndEval) {
  Tensor rm = raw::zeros({3}, kFloat64), rv = raw::ones({3}, kFloat64);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5);
      },
      {leaf({4, 3, 2}, 14), leaf({3}, 15), leaf({3}, 16)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, {}, {}, true); },
      {leaf({5, 2}, 17)}));
  Tensor erm = raw::from_vector(std::vector<double>{0.1, -0.2, 0.3}, {3});
  Tensor erv = raw::from_vector(std::vector<double>{0.5, 1.5, 2.0}, {3});
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], erm, erv, in[1], in[2], false, 0.1, 1e-5);
      },
      {leaf({2, 3, 2}, 18), leaf({3}, 19), leaf({3}, 20)}));
}

TEST(NnOpsGradcheck, DropoutWithAFixedGenerator) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator gen(77);  // the same mask on every call
        return dropout(in[0], 0.4, true, gen);
      },
      {leaf({4, 5}, 21)}));
}

TEST(NnOpsGradcheck, Embedding) {
  Tensor idx = raw::from_vector(std::vector<int64_t>{2, 0, 2, 4, 1, 2}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], idx); },
                        {leaf({5, 3}, 22)}));
}

TEST(NnOpsGradcheck, Attention) {
  const Fn plain = [](const std::vector<Tensor>& in) {
    return scaled_dot_product_attention(in[0], in[1], in[2]);
  };
  EXPECT_TRUE(
      gradcheck(plain, {leaf({1, 2, 3, 4}, 23), leaf({1, 2, 5, 4}, 24), leaf({1, 2, 5, 6}, 25)}));
  const Fn causal_scaled = [](const std::vector<Tensor>& in) {
    return scaled_dot_product_attention(in[0], in[1], in[2], {}, true, 0.7);
  };
  EXPECT_TRUE(
      gradcheck(causal_scaled, {leaf({2, 4, 3}, 26), leaf({2, 4, 3}, 27), leaf({2, 4, 3}, 28)}));
  // Bool keep-mask with a fully masked row, and an additive float mask broadcast over heads.
  Tensor keep =
      raw::to(raw::from_vector(std::vector<double>{1, 0, 1, 0, 0, 0, 1, 1, 0}, {3, 3}), kBool);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], keep);
      },
      {leaf({1, 2, 3, 4}, 29), leaf({1, 2, 3, 4}, 30), leaf({1, 2, 3, 4}, 31)}));
  Generator mask_gen(32);
  Tensor add = raw::randn({2, 1, 3, 4}, mask_gen, kFloat64);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], add);
      },
      {leaf({2, 2, 3, 5}, 33), leaf({2, 2, 4, 5}, 34), leaf({2, 2, 4, 5}, 35)}));
}

// ---- vector-Jacobian products against PyTorch ---------------------------------------------

// d(sum(out * gy)) / d(inputs) through the engine.
std::vector<Tensor> vjp(const Tensor& out, const std::vector<Tensor>& inputs, const Tensor& gy) {
  return autograd::grad({out}, inputs, {gy});
}

Tensor req(const std::string& key) {
  return test::leaf_copy(fx(key));
}

TEST(NnOpsGolden, LayerNormGroupNormSiluAndBatchNormGradients) {
  {
    const std::string n = "layer_norm_affine";
    Tensor x = req(n + ".x"), w = req(n + ".w"), b = req(n + ".b");
    Tensor out = layer_norm(x, {8}, w, b);
    EXPECT_ALL_CLOSE(out, fx(n + ".out"), 1e-5, 1e-5);
    auto g = vjp(out, {x, w, b}, fx(n + ".gy"));
    EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_x"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g[1], fx(n + ".grad_w"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g[2], fx(n + ".grad_b"), 1e-4, 1e-5);
  }
  {
    const std::string n = "group_norm_silu";
    Tensor x = req(n + ".x"), w = req(n + ".w"), b = req(n + ".b");
    Tensor out = group_norm(x, 2, w, b, 1e-5, true);
    EXPECT_ALL_CLOSE(out, fx(n + ".out"), 1e-5, 1e-5);
    auto g = vjp(out, {x, w, b}, fx(n + ".gy"));
    EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_x"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g[1], fx(n + ".grad_w"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g[2], fx(n + ".grad_b"), 1e-4, 1e-5);
  }
  {
    const std::string n = "batch_norm_train";
    Tensor x = req(n + ".x"), w = req(n + ".w"), b = req(n + ".b");
    Tensor rm = raw::clone(fx(n + ".running_mean")), rv = raw::clone(fx(n + ".running_var"));
    Tensor out = batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    EXPECT_ALL_CLOSE(out, fx(n + ".out"), 1e-5, 1e-5);
    EXPECT_ALL_CLOSE(rm, fx(n + ".running_mean_after"), 1e-6, 1e-6);
    EXPECT_ALL_CLOSE(rv, fx(n + ".running_var_after"), 1e-6, 1e-6);
    auto g = vjp(out, {x, w, b}, fx(n + ".gy"));
    EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_x"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g[1], fx(n + ".grad_w"), 1e-4, 1e-5);
    EXPECT_ALL_CLOSE(g[2], fx(n + ".grad_b"), 1e-4, 1e-5);
  }
}

TEST(NnOpsGolden, SoftmaxEmbeddingAndAttentionGradients) {
  {
    const std::string n = "log_softmax_dim1_t";
    Tensor x = req(n + ".x");
    Tensor out = log_softmax(transpose(x, 0, 1), 1);
    auto g = vjp(out, {x}, fx(n + ".gy"));
    EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_x"), 1e-4, 1e-5);
  }
  {
    Tensor w = req("embedding.w");
    Tensor out = embedding(w, fx("embedding.idx"));
    auto g = vjp(out, {w}, fx("embedding.gy"));
    EXPECT_ALL_CLOSE(g[0], fx("embedding.grad_w"), 1e-6, 1e-6);
  }
  for (const std::string n : {"attn_bool", "attn_causal_ls", "attn_dv"}) {
    SCOPED_TRACE(n);
    Tensor q = req(n + ".q"), k = req(n + ".k"), v = req(n + ".v");
    Tensor mask = n == "attn_bool" ? fx(n + ".mask") : Tensor();
    Tensor out = scaled_dot_product_attention(q, k, v, mask, n == "attn_causal_ls");
    EXPECT_ALL_CLOSE(out, fx(n + ".out"), 1e-4, 1e-5);
    auto g = vjp(out, {q, k, v}, fx(n + ".gy"));
    EXPECT_ALL_CLOSE(g[0], fx(n + ".grad_q"), 1e-4, 1e-4);
    EXPECT_ALL_CLOSE(g[1], fx(n + ".grad_k"), 1e-4, 1e-4);
    EXPECT_ALL_CLOSE(g[2], fx(n + ".grad_v"), 1e-4, 1e-4);
  }
}

// ---- wiring -------------------------------------------------------------------------------

TEST(NnOpsGraph, NoNodeWithoutGradAndDropoutIdentityInEval) {
  Tensor x = raw::ones({2, 3});
  EXPECT_FALSE(softmax(x, 1).requires_grad());
  Tensor xr = leaf({2, 3}, 40);
  EXPECT_TRUE(softmax(xr, 1).requires_grad());
  {
    autograd::NoGradGuard guard;
    EXPECT_FALSE(layer_norm(xr, {3}).requires_grad());
  }
  Generator gen(1);
  EXPECT_TRUE(dropout(xr, 0.5, false, gen).is_same(xr));
  EXPECT_TRUE(dropout(xr, 0.0, true, gen).is_same(xr));
  EXPECT_EQ(gen.offset(), 0u);
  EXPECT_THROW(dropout(xr, 2.0, true, gen), Error);
  EXPECT_THROW(layer_norm(xr, {4}), Error);
}

TEST(NnOpsGraph, GroupNormWeightOnlyGivesNoBiasGradient) {
  Tensor x = leaf({2, 4, 3}, 41), w = leaf({4}, 42);
  Tensor out = group_norm(x, 4, w);  // one channel per group
  auto g = autograd::grad({out}, {x, w}, {raw::ones({2, 4, 3}, kFloat64)});
  ASSERT_TRUE(g[1].defined());
  // With one channel per group, xhat sums to 0 over each (sample, channel), so
  // d(sum out)/dw[c] = sum(xhat[:, c]) = 0.
  for (double v : g[1].to_vector<double>()) EXPECT_NEAR(v, 0.0, 1e-10);
}

}  // namespace
