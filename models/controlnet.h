// ControlNetModel: the trainable encoder copy of Stable Diffusion's UNet that turns a conditioning
// image into residuals for the UNet's skip tensors and mid block, as diffusers 0.42
// (diffusers/models/controlnets/controlnet.py), under diffusers' state-dict names so that a
// diffusers controlnet/diffusion_pytorch_model.safetensors loads by name. With
// ControlNetConfig::stable_diffusion_v1() the state dict is exactly SD v1's ControlNet (340
// tensors, 361,279,120 parameters; ../shared/spec/keys/controlnet.tsv). Math and order:
// ../shared/spec/diffusion.md §4.
//
//   emb = time_embedding(time_proj(t))                       (the UNet's, models/unet_blocks.h)
//   h = conv_in(sample) + controlnet_cond_embedding(cond)    (cond [B, 3, 8 H, 8 W] in [0, 1])
//   skips = [h, every layer / downsampler output of down_blocks]; h = mid_block(skips.back())
//   down_block_res_samples[i] = controlnet_down_blocks[i](skips[i]) * conditioning_scale
//   mid_block_res_sample      = controlnet_mid_block(h) * conditioning_scale
//
// The zero convs (controlnet_cond_embedding.conv_out, controlnet_down_blocks.*,
// controlnet_mid_block) start at zero, so a fresh ControlNet (from_unet) leaves the UNet unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/json_config.h"
#include "models/unet2d_condition.h"
#include "nn/nn.h"
#include "tensor/random.h"

namespace cxr::models {

// The keys of a diffusers controlnet/config.json. The encoder settings are the UNet's (`unet`;
// its up-path fields are unused: up_block_types mirror down_block_types, the rest keep their
// defaults). ControlNetModel has no per-block layers_per_block (one int), no conv_in_kernel,
// time_embedding_dim, dropout or center_input_sample: those keep the UNet defaults.
struct ControlNetConfig {
  UNet2DConditionConfig unet;
  int64_t conditioning_channels = 3;
  // Channels of controlnet_cond_embedding: conv_in to the first, then per step a 3x3 conv and a
  // stride-2 3x3 conv to the next; the cond image is 2^(size - 1) times the latent size (8 in SD).
  std::vector<int64_t> conditioning_embedding_out_channels = {16, 32, 96, 256};

  // SD v1.x's ControlNet (lllyasviel/sd-controlnet-*: diffusers defaults, cross_attention_dim 768).
  static ControlNetConfig stable_diffusion_v1();
  // diffusers' ControlNetModel.from_unet: the encoder settings of `unet` (throws when `unet` has
  // settings a ControlNet cannot copy: per-block layers_per_block, conv_in_kernel other than 3, a
  // time_embedding_dim).
  static ControlNetConfig from_unet(
      const UNet2DConditionConfig& unet,
      std::vector<int64_t> conditioning_embedding_out_channels = {16, 32, 96, 256},
      int64_t conditioning_channels = 3);
  // Reads a diffusers controlnet/config.json: every key of ControlNetModel.__init__ is known;
  // "_class_name", "_diffusers_version", "_name_or_path" are ignored; the encoder keys go through
  // UNet2DConditionConfig::from_json (so its unimplemented options are rejected by name);
  // controlnet_conditioning_channel_order must be "rgb" and global_pool_conditions false (not
  // implemented); unknown keys throw.
  static ControlNetConfig from_json(JsonConfig& json);
  static ControlNetConfig from_json_file(const std::string& path);
  // The config.json diffusers writes for this configuration (what from_json reads back).
  nlohmann::json to_json() const;
  // Throws naming the first bad value.
  void validate() const;

  // 2^(conditioning_embedding_out_channels.size() - 1): cond image size / latent size.
  int64_t conditioning_downscale() const;
};

// controlnet.py ControlNetConditioningEmbedding: e = silu(conv_in(c)); per block e = silu(block(e))
// (blocks.2k: 3x3 at the same channels, blocks.2k+1: 3x3 stride 2 to the next channels); then
// conv_out (3x3, zero-initialised, no activation) to `embedding_channels`.
class ControlNetConditioningEmbedding : public nn::Module {
 public:
  ControlNetConditioningEmbedding(int64_t embedding_channels, int64_t conditioning_channels,
                                  const std::vector<int64_t>& block_out_channels);
  // [B, conditioning_channels, H, W] -> [B, embedding_channels, H / 2^k, W / 2^k].
  Tensor forward(const Tensor& conditioning) override;

  std::shared_ptr<nn::Conv2d> conv_in;
  std::shared_ptr<nn::ModuleList> blocks;  // of nn::Conv2d
  std::shared_ptr<nn::Conv2d> conv_out;
};

struct ControlNetOutput {
  std::vector<Tensor> down_block_res_samples;  // one per UNet skip tensor (12 in SD v1)
  Tensor mid_block_res_sample;
};

class ControlNetModel : public nn::Module {
 public:
  // PyTorch's default initialisation from the default generator (as diffusers' constructor), the
  // zero convs zero. Throws on an invalid config.
  explicit ControlNetModel(const ControlNetConfig& config);
  // diffusers' ControlNetModel.from_unet(unet, load_weights_from_unet=True): the config from
  // ControlNetConfig::from_unet, then conv_in, time_embedding, down_blocks and mid_block copied
  // from `unet` (values, not shared); controlnet_cond_embedding default-initialised, zero convs 0.
  static std::shared_ptr<ControlNetModel> from_unet(
      const UNet2DConditionModel& unet,
      std::vector<int64_t> conditioning_embedding_out_channels = {16, 32, 96, 256},
      int64_t conditioning_channels = 3);
  // Draws the default initialisation again from `gen` (registration order), zero convs zero.
  void reset_parameters(Generator& gen);

  using nn::Module::forward;
  // sample [B, in_channels, H, W]; timestep a 0-dim tensor, [1] or [B]; encoder_hidden_states
  // [B, S, cross_attention_dim]; controlnet_cond [B, conditioning_channels, H f, W f] with f =
  // conditioning_downscale() (pixels in [0, 1]). Residuals are scaled by conditioning_scale
  // (guess_mode off), in the shapes UNet2DConditionModel::forward takes them.
  ControlNetOutput forward(const Tensor& sample, const Tensor& timestep,
                           const Tensor& encoder_hidden_states, const Tensor& controlnet_cond,
                           double conditioning_scale = 1.0);

  size_t num_down_residuals() const { return controlnet_down_blocks->size(); }
  const ControlNetConfig& config() const { return config_; }

  // Recompute each down / mid block in backward instead of storing its activations (as the UNet).
  bool gradient_checkpointing = false;

  std::shared_ptr<nn::Conv2d> conv_in;
  std::shared_ptr<Timesteps> time_proj;  // no parameters
  std::shared_ptr<TimestepEmbedding> time_embedding;
  std::shared_ptr<ControlNetConditioningEmbedding> controlnet_cond_embedding;
  std::shared_ptr<nn::ModuleList> down_blocks;             // of UNetDownBlock
  std::shared_ptr<nn::ModuleList> controlnet_down_blocks;  // of 1x1 nn::Conv2d (zero)
  std::shared_ptr<nn::Conv2d> controlnet_mid_block;        // 1x1 (zero)
  std::shared_ptr<UNetMidBlock2DCrossAttn> mid_block;

 private:
  void zero_convs();

  ControlNetConfig config_;
};

}  // namespace cxr::models
