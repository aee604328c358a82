// MultiheadAttention (PyTorch's packed in_proj layout) and diffusers' Attention block against
// PyTorch (tests/golden/gen_nn_layers.py): forward, input and parameter gradients, masks,
// state-dict names, and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/nn.h"
#include "torch_case.h"

using namespace cxr;
using namespace cxr::nn;
using test::case_tensor;
using test::expect_matches_torch;

namespace {
// Attention sums over keys and heads: a slightly looser tolerance than single ops.
const test::Tolerance kTol{2e-4, 2e-5};

std::vector<std::string> keys(const StateDict& d) {
  std::vector<std::string> out;
  for (const auto& kv : d) out.push_back(kv.first);
  return out;
}
}  // namespace

TEST(MultiheadAttention, StateDictUsesPyTorchNames) {
  MultiheadAttention mha(8, 2);
  EXPECT_EQ(keys(mha.state_dict()), (std::vector<std::string>{"in_proj_bias", "in_proj_weight",
                                                              "out_proj.bias", "out_proj.weight"}));
  EXPECT_EQ(mha.in_proj_weight.sizes(), (Shape{24, 8}));
  // PyTorch's _reset_parameters: zero biases, xavier_uniform in_proj_weight (bound sqrt(6/32)).
  EXPECT_EQ(raw::amax(raw::abs(mha.in_proj_bias)).item(), 0.0);
  EXPECT_EQ(raw::amax(raw::abs(mha.out_proj->bias)).item(), 0.0);
  EXPECT_LE(raw::amax(raw::abs(mha.in_proj_weight)).item(), std::sqrt(6.0 / 32.0));
}

TEST(MultiheadAttention, SelfAttentionMatchesTorch) {
  MultiheadAttention mha(8, 2);  // inputs [L, N, E]
  expect_matches_torch(mha, "mha_self", "", kTol);
}

TEST(MultiheadAttention, CrossAttentionWithMasksMatchesTorch) {
  MultiheadAttention mha(8, 4, {.batch_first = true});
  expect_matches_torch(
      mha, "mha_cross", {"query", "key", "value", "key_padding_mask", "attn_mask"},
      [&](const std::vector<Tensor>& in) { return mha.forward(in[0], in[1], in[2], in[3], in[4]); },
      "", kTol);
}

TEST(MultiheadAttention, UnbatchedCausalMaskMatchesTorch) {
  MultiheadAttention mha(6, 2, {.bias = false});
  EXPECT_FALSE(mha.in_proj_bias.defined());
  EXPECT_EQ(keys(mha.state_dict()),
            (std::vector<std::string>{"in_proj_weight", "out_proj.weight"}));
  // A bool attn_mask (true = not allowed) ...
  expect_matches_torch(
      mha, "mha_causal", {"x", "attn_mask"},
      [&](const std::vector<Tensor>& in) { return mha.forward(in[0], in[0], in[0], {}, in[1]); },
      "", kTol);
  // ... and the causal flag give the same result.
  expect_matches_torch(
      mha, "mha_causal", {"x"},
      [&](const std::vector<Tensor>& in) {
        return mha.forward(in[0], in[0], in[0], {}, {}, /*causal=*/true);
      },
      "", kTol, /*load=*/false);
}

TEST(MultiheadAttention, RejectsBadShapes) {
  EXPECT_THROW(MultiheadAttention(10, 3), Error);
  MultiheadAttention mha(8, 2, {.batch_first = true});
  Tensor q = raw::zeros({2, 4, 8});
  EXPECT_THROW(mha.forward(raw::zeros({2, 4, 6})), Error);                            // features
  EXPECT_THROW(mha.forward(q, raw::zeros({3, 5, 8}), raw::zeros({3, 5, 8})), Error);  // batch
  EXPECT_THROW(mha.forward(q, q, q, raw::zeros({2, 5}, kBool)), Error);      // key_padding_mask
  EXPECT_THROW(mha.forward(q, q, q, {}, raw::zeros({4, 5}, kBool)), Error);  // attn_mask
}

TEST(Attention, StateDictUsesDiffusersNames) {
  Attention attn(16, {.cross_attention_dim = 10, .heads = 2, .dim_head = 4, .dropout = 0.1});
  EXPECT_EQ(keys(attn.state_dict()),
            (std::vector<std::string>{"to_k.weight", "to_out.0.bias", "to_out.0.weight",
                                      "to_q.weight", "to_v.weight"}));
  EXPECT_EQ(attn.to_k->weight.sizes(), (Shape{8, 10}));
  EXPECT_EQ(attn.to_out->at<Dropout>(1)->p, 0.1);
  Attention vae(8, {.heads = 1, .dim_head = 8, .bias = true, .norm_num_groups = 4});
  EXPECT_EQ(keys(vae.state_dict()),
            (std::vector<std::string>{"group_norm.bias", "group_norm.weight", "to_k.bias",
                                      "to_k.weight", "to_out.0.bias", "to_out.0.weight",
                                      "to_q.bias", "to_q.weight", "to_v.bias", "to_v.weight"}));
}

TEST(Attention, SelfAttentionMatchesTorch) {
  Attention attn(16, {.heads = 2, .dim_head = 4});
  expect_matches_torch(attn, "attn_self", "", kTol);
}

TEST(Attention, CrossAttentionWithMaskMatchesTorch) {
  Attention attn(16, {.cross_attention_dim = 10, .heads = 2, .dim_head = 4, .bias = true});
  expect_matches_torch(
      attn, "attn_cross", {"x", "context", "mask"},
      [&](const std::vector<Tensor>& in) { return attn.forward(in[0], in[1], in[2]); }, "", kTol);
}

TEST(Attention, VaeBlockWithGroupNormAndResidualMatchesTorch) {
  Attention attn(8, {.heads = 1,
                     .dim_head = 8,
                     .bias = true,
                     .norm_num_groups = 4,
                     .eps = 1e-6,
                     .residual_connection = true,
                     .rescale_output_factor = 2.0});
  expect_matches_torch(attn, "attn_vae", "", kTol);
}

TEST(Attention, RejectsBadInputs) {
  Attention cross(16, {.cross_attention_dim = 10, .heads = 2, .dim_head = 4});
  Tensor x = raw::zeros({2, 6, 16});
  EXPECT_THROW(cross.forward(x), Error);                          // needs a context
  EXPECT_THROW(cross.forward(x, raw::zeros({2, 5, 16})), Error);  // context features
  EXPECT_THROW(cross.forward(raw::zeros({2, 6, 8}), raw::zeros({2, 5, 10})), Error);
  EXPECT_THROW(cross.forward(x, raw::zeros({2, 5, 10}), raw::zeros({5}, kBool)), Error);
  EXPECT_THROW(Attention(16, {.heads = 0}), Error);
}
