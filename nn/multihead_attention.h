// MultiheadAttention (torch.nn.MultiheadAttention) with PyTorch's packed parameters:
// in_proj_weight [3E, E] and in_proj_bias [3E] hold the q, k, v projections stacked, out_proj is a
// Linear(E, E). The attention itself is the memory-efficient scaled_dot_product_attention.
// Supported: kdim = vdim = embed_dim, no add_bias_kv / add_zero_attn, attention dropout 0.
#pragma once

#include <memory>

#include "nn/linear.h"
#include "nn/module.h"
#include "tensor/random.h"  // Generator

namespace cxr::nn {

struct MultiheadAttentionOptions {
  bool bias = true;
  bool batch_first = false;  // inputs [N, L, E] instead of [L, N, E]
};

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads,
                     const MultiheadAttentionOptions& options = {});
  // PyTorch's _reset_parameters: xavier_uniform in_proj_weight, zero in_proj_bias and
  // out_proj.bias (out_proj.weight keeps Linear's default init).
  void reset_parameters(Generator& gen = default_generator());
  // Self-attention: forward(x, x, x).
  Tensor forward(const Tensor& x) override;
  // query [L, N, E] (or [N, L, E] with batch_first, or unbatched [L, E]); key/value likewise with
  // S positions. key_padding_mask [N, S] (or [S]): bool, true = ignore that key, or floating,
  // added to the scores. attn_mask [L, S] or [N * num_heads, L, S]: bool, true = not allowed, or
  // floating, added. causal: query i sees keys j <= i. A query whose keys are all masked gives 0
  // (PyTorch gives NaN).
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {},
                 bool causal = false);
  std::string extra_repr() const override;

  int64_t embed_dim, num_heads, head_dim;
  bool batch_first;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
};

}  // namespace cxr::nn
