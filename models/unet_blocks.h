// The blocks of diffusers' UNet2DConditionModel (shared with ControlNetModel), under diffusers'
// state-dict names: the sinusoidal timestep embedding (embeddings.py get_timestep_embedding,
// Timesteps, TimestepEmbedding "linear_1"/"linear_2"), the GEGLU FeedForward ("ff.net.0.proj",
// "ff.net.2"; attention.py, activations.py), BasicTransformerBlock ("norm1", "attn1", "norm2",
// "attn2", "norm3", "ff"), Transformer2DModel ("norm", "proj_in", "transformer_blocks",
// "proj_out"; transformers/transformer_2d.py) and the UNet blocks of unets/unet_2d_blocks.py
// (CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D, UpBlock2D:
// "resnets.j", "attentions.j", "downsamplers.0" / "upsamplers.0"). Exact math:
// ../shared/spec/diffusion.md §1.2-1.3.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "models/diffusers_blocks.h"
#include "nn/nn.h"

namespace cxr::models {

// get_timestep_embedding: timesteps [B] (any dtype) -> float32 [B, dim]. With half = dim / 2,
// freq_i = exp(-ln(max_period) i / (half - downscale_freq_shift)) and arg = scale * t * freq, the
// embedding is [sin(arg), cos(arg)] ([cos, sin] when flip_sin_to_cos), zero-padded by one column
// when dim is odd. Computed in float32 as diffusers does, on the timesteps' device; no gradient.
Tensor timestep_embedding(const Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                          double downscale_freq_shift, double scale = 1.0,
                          double max_period = 10000.0);

// embeddings.py Timesteps: timestep_embedding with fixed settings; no parameters.
class Timesteps : public nn::Module {
 public:
  Timesteps(int64_t num_channels, bool flip_sin_to_cos, double downscale_freq_shift);
  Tensor forward(const Tensor& timesteps) override;  // [B] -> float32 [B, num_channels]
  std::string extra_repr() const override;

  int64_t num_channels;
  bool flip_sin_to_cos;
  double downscale_freq_shift;
};

// embeddings.py TimestepEmbedding (act_fn silu, no cond_proj, no post_act):
// linear_2(silu(linear_1(x))).
class TimestepEmbedding : public nn::Module {
 public:
  TimestepEmbedding(int64_t in_channels, int64_t time_embed_dim);
  Tensor forward(const Tensor& sample) override;  // [B, in_channels] -> [B, time_embed_dim]

  std::shared_ptr<nn::Linear> linear_1, linear_2;
};

// activations.py GEGLU: proj (dim_in -> 2 dim_out), then value * gelu(gate) with the value the
// first half and the gate the second half of the last dim (exact erf GELU).
class GEGLU : public nn::Module {
 public:
  GEGLU(int64_t dim_in, int64_t dim_out);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Linear> proj;
};

// attention.py FeedForward(dim, mult 4, activation_fn "geglu"): net = [GEGLU(dim, 4 dim),
// Dropout(0), Linear(4 dim, dim)].
class FeedForward : public nn::Module {
 public:
  explicit FeedForward(int64_t dim, int64_t mult = 4);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::ModuleList> net;
};

// attention.py BasicTransformerBlock as the UNet builds it (norm_type "layer_norm", LayerNorm eps
// 1e-5, no attention bias, self-attention then cross-attention, GEGLU feed-forward):
//   h += attn1(norm1(h)); h += attn2(norm2(h), context); h += ff(norm3(h)).
class BasicTransformerBlock : public nn::Module {
 public:
  BasicTransformerBlock(int64_t dim, int64_t heads, int64_t dim_head, int64_t cross_attention_dim);
  using nn::Module::forward;
  // hidden_states [B, N, dim], encoder_hidden_states [B, S, cross_attention_dim].
  Tensor forward(const Tensor& hidden_states, const Tensor& encoder_hidden_states);

  std::shared_ptr<nn::LayerNorm> norm1, norm2, norm3;
  std::shared_ptr<nn::Attention> attn1, attn2;
  std::shared_ptr<FeedForward> ff;
};

struct Transformer2DOptions {
  // Heads of every attention (the UNet config's attention_head_dim!); head dim = channels / heads.
  int64_t num_attention_heads = 8;
  int64_t num_layers = 1;  // BasicTransformerBlocks
  int64_t cross_attention_dim = 768;
  int64_t norm_num_groups = 32;
  bool use_linear_projection = false;  // proj_in / proj_out Linear instead of 1x1 Conv2d
};

// transformers/transformer_2d.py Transformer2DModel on continuous input:
//   r = x; h = norm(x) (GroupNorm, eps 1e-6); h = proj_in(h) as tokens [B, H W, C] (row-major
//   over H, W); h = transformer_blocks(h, context); out = proj_out(h) back to [B, C, H, W] + r.
class Transformer2DModel : public nn::Module {
 public:
  Transformer2DModel(int64_t in_channels, const Transformer2DOptions& options);
  using nn::Module::forward;
  // x [B, in_channels, H, W], encoder_hidden_states [B, S, cross_attention_dim].
  Tensor forward(const Tensor& x, const Tensor& encoder_hidden_states);

  int64_t in_channels;
  Transformer2DOptions options;
  std::shared_ptr<nn::GroupNorm> norm;
  nn::ModulePtr proj_in, proj_out;  // nn::Conv2d (1x1), or nn::Linear with use_linear_projection
  std::shared_ptr<nn::ModuleList> transformer_blocks;  // of BasicTransformerBlock
};

// Settings shared by the UNet's blocks (unet_2d_blocks.py get_down_block / get_up_block /
// get_mid_block arguments as UNet2DConditionModel passes them).
struct UNetBlockOptions {
  int64_t num_layers = 1;  // resnets (up blocks: layers_per_block + 1)
  int64_t temb_channels = 1280;
  int64_t groups = 32;  // GroupNorm groups of the resnets and the transformers
  double eps = 1e-5;    // resnet GroupNorm eps (the transformers' is 1e-6)
  double dropout = 0.0;
  double output_scale_factor = 1.0;  // resnets' (the mid block's mid_block_scale_factor)
  bool add_sample = true;            // a downsampler / upsampler after the layers
  int64_t downsample_padding = 1;
};

// CrossAttnDownBlock2D (with attention) and DownBlock2D (without): num_layers x (resnet j, then
// attention j), then the optional Downsample2D (conv stride 2, downsample_padding).
class UNetDownBlock : public nn::Module {
 public:
  using nn::Module::forward;
  // x [B, in_channels, H, W] -> the output of every layer and of the downsampler (the skip
  // tensors for the up path); the last one is the block's output. encoder_hidden_states is
  // unused without attention (may be undefined).
  std::vector<Tensor> forward(const Tensor& x, const Tensor& temb,
                              const Tensor& encoder_hidden_states);

  int64_t in_channels, out_channels;
  std::shared_ptr<nn::ModuleList> attentions;    // of Transformer2DModel; null in DownBlock2D
  std::shared_ptr<nn::ModuleList> resnets;       // of ResnetBlock2D
  std::shared_ptr<nn::ModuleList> downsamplers;  // [Downsample2D] or null

 protected:
  UNetDownBlock(const char* type_name, int64_t in_channels, int64_t out_channels,
                const UNetBlockOptions& options, const Transformer2DOptions* attention);
};

class CrossAttnDownBlock2D final : public UNetDownBlock {
 public:
  CrossAttnDownBlock2D(int64_t in_channels, int64_t out_channels, const UNetBlockOptions& options,
                       const Transformer2DOptions& attention);
};

class DownBlock2D final : public UNetDownBlock {
 public:
  DownBlock2D(int64_t in_channels, int64_t out_channels, const UNetBlockOptions& options);
};

// UNetMidBlock2DCrossAttn (num_layers 1): resnets.0, then per layer attentions.j and resnets.j+1,
// all at `channels`.
class UNetMidBlock2DCrossAttn : public nn::Module {
 public:
  UNetMidBlock2DCrossAttn(int64_t channels, const UNetBlockOptions& options,
                          const Transformer2DOptions& attention);
  using nn::Module::forward;
  Tensor forward(const Tensor& x, const Tensor& temb, const Tensor& encoder_hidden_states);

  int64_t channels;
  std::shared_ptr<nn::ModuleList> attentions, resnets;
};

// CrossAttnUpBlock2D (with attention) and UpBlock2D (without): for each layer j, h = cat([h,
// skip], channels) with the skips taken from the END of the block's list, then resnet j, then
// attention j; then the optional Upsample2D (x2 or to upsample_size). Resnet j's input channels:
// (prev_output_channels if j == 0 else out) + (in_channels if j is the last else out).
class UNetUpBlock : public nn::Module {
 public:
  using nn::Module::forward;
  // skips: this block's num_layers skip tensors in down-path order (the last is used first).
  Tensor forward(const Tensor& x, const std::vector<Tensor>& skips, const Tensor& temb,
                 const Tensor& encoder_hidden_states,
                 std::optional<std::pair<int64_t, int64_t>> upsample_size = std::nullopt);

  int64_t in_channels, prev_output_channels, out_channels;
  std::shared_ptr<nn::ModuleList> attentions;  // null in UpBlock2D
  std::shared_ptr<nn::ModuleList> resnets;
  std::shared_ptr<nn::ModuleList> upsamplers;  // [Upsample2D] or null

 protected:
  UNetUpBlock(const char* type_name, int64_t in_channels, int64_t prev_output_channels,
              int64_t out_channels, const UNetBlockOptions& options,
              const Transformer2DOptions* attention);
};

class CrossAttnUpBlock2D final : public UNetUpBlock {
 public:
  CrossAttnUpBlock2D(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
                     const UNetBlockOptions& options, const Transformer2DOptions& attention);
};

class UpBlock2D final : public UNetUpBlock {
 public:
  UpBlock2D(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
            const UNetBlockOptions& options);
};

}  // namespace cxr::models
