// Attention: the attention block of diffusers (diffusers.models.attention_processor.Attention
// with AttnProcessor2_0), under its state-dict names: to_q, to_k, to_v (Linear), to_out.0
// (Linear) and to_out.1 (Dropout), and group_norm when norm_num_groups is set (the VAE's mid-block
// attention). Self-attention, or cross-attention on encoder_hidden_states of
// cross_attention_dim features.
#pragma once

#include <memory>
#include <optional>

#include "nn/containers.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/normalization.h"

namespace cxr::nn {

struct AttentionOptions {
  // Features of encoder_hidden_states (default: query_dim).
  std::optional<int64_t> cross_attention_dim = std::nullopt;
  int64_t heads = 8;
  int64_t dim_head = 64;
  double dropout = 0.0;                                   // after the output projection
  bool bias = false;                                      // of to_q, to_k, to_v
  bool out_bias = true;                                   // of to_out.0
  std::optional<int64_t> norm_num_groups = std::nullopt;  // GroupNorm on the input channels first
  double eps = 1e-5;                                      // of that GroupNorm
  bool residual_connection = false;                       // add the block's input to its output
  double rescale_output_factor = 1.0;                     // divide the output by it
};

class Attention : public Module {
 public:
  explicit Attention(int64_t query_dim, const AttentionOptions& options = {});
  // Self-attention.
  Tensor forward(const Tensor& hidden_states) override;
  // hidden_states [B, N, query_dim] or [B, query_dim, H, W] (flattened to tokens and restored);
  // encoder_hidden_states [B, S, cross_attention_dim] or undefined (self-attention);
  // attention_mask broadcastable to [B, heads, N, S] (a 2-D [B, S] or 3-D [B, 1|N, S] mask gets
  // the heads dim inserted): bool, true = keep, or floating, added to the scores.
  Tensor forward(const Tensor& hidden_states, const Tensor& encoder_hidden_states,
                 const Tensor& attention_mask = {});
  std::string extra_repr() const override;

  int64_t query_dim, cross_attention_dim, heads, dim_head;
  AttentionOptions options;
  std::shared_ptr<GroupNorm> group_norm;  // null unless norm_num_groups
  std::shared_ptr<Linear> to_q, to_k, to_v;
  std::shared_ptr<ModuleList> to_out;  // [Linear, Dropout]
};

}  // namespace cxr::nn
