// UNet2DConditionModel: Stable Diffusion's denoising UNet, as diffusers 0.42
// (diffusers/models/unets/unet_2d_condition.py), under diffusers' state-dict names
// ("conv_in.weight", "time_embedding.linear_1.weight",
// "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k. weight",
// "mid_block.resnets.1.conv2.bias", "up_blocks.3.resnets.2.conv_shortcut.weight", ...), so that a
// diffusers unet/diffusion_pytorch_model.safetensors loads by name. With
// UNet2DConditionConfig::stable_diffusion_v1() the state dict is exactly SD v1's (686 tensors,
// 859,520,964 parameters; ../shared/spec/keys/unet.tsv). Math and order:
// ../shared/spec/diffusion.md §1.
//
//   emb = time_embedding(Timesteps(t)); h = conv_in(sample)
//   down path: skips = [h] + every layer/downsampler output of the down blocks
//   (ControlNet: skips[i] += down_block_additional_residuals[i])
//   h = mid_block(h); (ControlNet: h += mid_block_additional_residual)
//   up path: each up block takes the last len(resnets) skips; then conv_out(silu(conv_norm_out(h)))
//
// NOTE the config's attention_head_dim is the NUMBER OF HEADS (diffusers' naming bug, kept for
// compatibility): SD v1 has 8 heads in every transformer, of channels / 8 dims.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/json_config.h"
#include "models/unet_blocks.h"
#include "nn/nn.h"
#include "tensor/random.h"

namespace cxr::models {

// The architecture keys of a diffusers unet/config.json; defaults are UNet2DConditionModel.
// __init__'s. Per-block settings hold one entry per down block (an int in the JSON is repeated).
struct UNet2DConditionConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;  // sample -> 2 sample - 1 first
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  // "CrossAttnDownBlock2D" | "DownBlock2D" per block; "CrossAttnUpBlock2D" | "UpBlock2D" per block.
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "CrossAttnDownBlock2D", "DownBlock2D"};
  std::vector<std::string> up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  std::vector<int64_t> layers_per_block = {2, 2, 2, 2};  // resnets per down block (up: + 1)
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;  // the mid block resnets' output_scale_factor
  double dropout = 0.0;                 // in the resnets
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  int64_t cross_attention_dim = 1280;  // features of encoder_hidden_states (SD v1: 768)
  std::vector<int64_t> transformer_layers_per_block = {1, 1, 1, 1};
  // HEAD COUNTS per block (diffusers' attention_head_dim; num_attention_heads must be null).
  std::vector<int64_t> attention_head_dim = {8, 8, 8, 8};
  bool use_linear_projection = false;         // Transformer2DModel proj_in/proj_out as Linear
  std::optional<int64_t> time_embedding_dim;  // default block_out_channels[0] * 4
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  // The latent side the model was trained at (diffusers' sample_size; 64 for SD v1): not part of
  // the architecture, but what pipelines take as the default image size (x the VAE's factor).
  // Empty when unknown; {side} or {height, width} (diffusers accepts an int or a pair).
  std::vector<int64_t> sample_size;

  // SD v1.x's unet/config.json (diffusers defaults with cross_attention_dim 768).
  static UNet2DConditionConfig stable_diffusion_v1();
  // Reads a diffusers config. Every key of UNet2DConditionModel.__init__ is known: the ones above
  // (int-or-list keys as diffusers accepts them), "_class_name", "_diffusers_version",
  // "_name_or_path" (ignored), "sample_size" (recorded), and the options we do not implement, which
  // must keep their default (null, false, "default", ...) or the error names the key and its value:
  // class_embed_type, addition_embed_type, dual_cross_attention, only_cross_attention,
  // upcast_attention, resnet_time_scale_shift other than "default", time_embedding_type other
  // than "positional", num_attention_heads, encoder_hid_dim, ... Unknown keys throw
  // (check_all_used), so a misspelt key fails before anything is built.
  static UNet2DConditionConfig from_json(JsonConfig& json);
  static UNet2DConditionConfig from_json_file(const std::string& path);
  // The config.json diffusers writes for this configuration (what from_json reads back).
  nlohmann::json to_json() const;
  // Throws naming the first bad value (block type names and counts, channels not divisible by
  // groups or heads, non-positive sizes, even kernels, ...).
  void validate() const;

  size_t num_blocks() const { return block_out_channels.size(); }
  int64_t time_embed_dim() const;
  // The Transformer2DModel settings of down block i (up block i uses the reversed lists).
  Transformer2DOptions attention_options(int64_t heads, int64_t transformer_layers) const;
  // Settings of every resnet block of the UNet with `num_layers` layers.
  UNetBlockOptions block_options(int64_t num_layers, bool add_sample) const;
};

// Builders and runners of the encoder half, shared with ControlNetModel (which holds its own
// copies of conv_in, time_proj, time_embedding, down_blocks and mid_block, loaded from the UNet's).
// The down blocks of `config`: CrossAttnDownBlock2D / DownBlock2D, each downsampling but the last.
std::shared_ptr<nn::ModuleList> build_down_blocks(const UNet2DConditionConfig& config);
std::shared_ptr<UNetMidBlock2DCrossAttn> build_mid_block(const UNet2DConditionConfig& config);
// timestep as a 0-dim tensor, [1] or [batch], any dtype, moved to `device` and expanded to
// [batch]; throws naming `model` otherwise.
Tensor broadcast_timesteps(const Tensor& timestep, int64_t batch, Device device,
                           const std::string& model);
// The skip list of the down path from h = conv_in(sample) (plus, in ControlNet, the conditioning):
// [h, every layer and downsampler output of every block]; its last entry is the mid block's input.
// With `checkpointing` (and grad mode on) each block is recomputed in backward instead of keeping
// its activations.
std::vector<Tensor> run_down_blocks(nn::ModuleList& down_blocks, const Tensor& h, const Tensor& emb,
                                    const Tensor& encoder_hidden_states,
                                    bool checkpointing = false);
Tensor run_mid_block(UNetMidBlock2DCrossAttn& mid_block, const Tensor& h, const Tensor& emb,
                     const Tensor& encoder_hidden_states, bool checkpointing = false);

class UNet2DConditionModel : public nn::Module {
 public:
  // Parameters get PyTorch's default initialisation (what diffusers' model has before loading
  // weights), drawn by the layers from the default generator as they are built. Throws on an
  // invalid config (validate()).
  explicit UNet2DConditionModel(const UNet2DConditionConfig& config);
  // Draws that initialisation again from `gen`, layer by layer in registration order (a model
  // independent of the default generator's state; same gen state -> same weights).
  void reset_parameters(Generator& gen);

  using nn::Module::forward;
  // sample [B, in_channels, H, W]; timestep a 0-dim tensor, [1] or [B], integer or floating;
  // encoder_hidden_states [B, S, cross_attention_dim]. ControlNet residuals, both or neither:
  // down_block_additional_residuals one per skip tensor (shapes of run_down_blocks' list, 12 for
  // SD v1), added to the skips; mid_block_additional_residual added to the mid block's output.
  // Returns [B, out_channels, H, W]. H and W need not be multiples of 2^num_upsamplers (the
  // upsamplers then target the skip sizes).
  Tensor forward(const Tensor& sample, const Tensor& timestep, const Tensor& encoder_hidden_states,
                 const std::vector<Tensor>& down_block_additional_residuals = {},
                 const Tensor& mid_block_additional_residual = {});

  // emb = time_embedding(time_proj(timesteps)) [batch, time_embed_dim], the projection cast to
  // `dtype` first (as diffusers casts to the sample's dtype).
  Tensor time_embed(const Tensor& timestep, int64_t batch, DType dtype, Device device);
  // Number of skip tensors of the down path (= ControlNet down residuals).
  size_t num_down_residuals() const;
  int64_t num_upsamplers() const;
  const UNet2DConditionConfig& config() const { return config_; }

  // Recompute each down / mid / up block in backward instead of storing its activations
  // (diffusers' enable_gradient_checkpointing); same results, less memory.
  bool gradient_checkpointing = false;

  std::shared_ptr<nn::Conv2d> conv_in;
  std::shared_ptr<Timesteps> time_proj;  // no parameters
  std::shared_ptr<TimestepEmbedding> time_embedding;
  std::shared_ptr<nn::ModuleList> down_blocks;  // of UNetDownBlock
  std::shared_ptr<nn::ModuleList> up_blocks;    // of UNetUpBlock
  std::shared_ptr<UNetMidBlock2DCrossAttn> mid_block;
  std::shared_ptr<nn::GroupNorm> conv_norm_out;
  std::shared_ptr<nn::Conv2d> conv_out;

 private:
  UNet2DConditionConfig config_;
};

}  // namespace cxr::models
