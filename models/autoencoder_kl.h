// AutoencoderKL: the KL-regularised VAE of Stable Diffusion, as diffusers 0.42
// (diffusers/models/autoencoders/autoencoder_kl.py and vae.py Encoder / Decoder /
// DiagonalGaussianDistribution), under diffusers' state-dict names ("encoder.down_blocks.0.
// resnets.0.conv1.weight", "quant_conv.weight", "decoder.up_blocks.3.resnets.2.norm2.bias", ...),
// so that a diffusers vae/diffusion_pytorch_model.safetensors loads by name. With
// AutoencoderKLConfig::stable_diffusion() the state dict is exactly SD v1's (248 tensors,
// 83,653,863 parameters; ../shared/spec/keys/vae.tsv). Math: ../shared/spec/diffusion.md §2.
//
//   encode: moments = quant_conv(encoder(x)) -> DiagonalGaussianDistribution(mean, logvar)
//   decode: sample = decoder(post_quant_conv(z))
// The latents a diffusion model sees are posterior samples times scaling_factor (0.18215 for SD
// v1); decode takes unscaled latents, as diffusers' decode does (the pipeline divides first).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/diffusers_blocks.h"
#include "models/json_config.h"
#include "nn/nn.h"
#include "tensor/random.h"

namespace cxr::models {

// The architecture keys of a diffusers vae/config.json; defaults are AutoencoderKL.__init__'s.
struct AutoencoderKLConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 4;
  std::vector<int64_t> block_out_channels = {64};  // one per down / up block
  int64_t layers_per_block = 1;                    // resnets per down block (up blocks: + 1)
  int64_t norm_num_groups = 32;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;
  // Not architecture; kept for the pipeline that scales latents.
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;             // null in SD v1
  std::vector<double> latents_mean, latents_std;  // empty (null) in SD v1

  // Stable Diffusion v1's vae/config.json (block_out_channels 128, 256, 512, 512,
  // layers_per_block 2, 32 groups).
  static AutoencoderKLConfig stable_diffusion();
  // Reads a diffusers config. down_block_types / up_block_types must list one
  // "DownEncoderBlock2D" / "UpDecoderBlock2D" per block_out_channels entry and act_fn must be
  // "silu" (the only ones diffusers' AutoencoderKL builds that we support); "_class_name",
  // "_diffusers_version", "_name_or_path", "sample_size" (tiling only) and "force_upcast" (a
  // precision hint) are accepted and ignored; any other unknown key throws (check_all_used).
  static AutoencoderKLConfig from_json(JsonConfig& json);
  static AutoencoderKLConfig from_json_file(const std::string& path);
  // The config.json diffusers writes for this configuration (what from_json reads back).
  nlohmann::json to_json() const;
  // Throws naming the first bad value (non-positive channels, groups not dividing channels, ...).
  void validate() const;
};

// The posterior N(mean, exp(logvar)) over latents (vae.py DiagonalGaussianDistribution, not
// deterministic): mean and logvar [N, latent_channels, h, w], logvar clamped to [-30, 20].
struct DiagonalGaussianDistribution {
  // moments [N, 2 * latent_channels, h, w]: mean first, logvar second (chunk along dim 1).
  explicit DiagonalGaussianDistribution(const Tensor& moments);
  Tensor stddev() const;  // exp(0.5 logvar) (diffusers' .std)
  Tensor var() const;     // exp(logvar)
  // mean + std * eps, eps ~ N(0, 1) drawn from `gen` (our Philox generator: the same seed gives
  // the same sample, but not torch's numbers).
  Tensor sample(Generator& gen = default_generator()) const;
  Tensor mode() const { return mean; }
  // KL(this || N(0, 1)) per sample: 0.5 sum over [1, 2, 3] of mean^2 + var - 1 - logvar -> [N].
  Tensor kl() const;

  Tensor mean, logvar;
};

// vae.py Encoder with double_z: conv_in, down_blocks (DownEncoderBlock2D, downsampling all but the
// last), mid_block, conv_norm_out + SiLU, conv_out to 2 * latent_channels.
class VaeEncoder : public nn::Module {
 public:
  explicit VaeEncoder(const AutoencoderKLConfig& config);
  // x [N, in_channels, H, W], H and W divisible by 2^(blocks - 1) -> [N, 2 * latent, h, w].
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv_in, conv_out;
  std::shared_ptr<nn::ModuleList> down_blocks;  // of DownEncoderBlock2D
  std::shared_ptr<UNetMidBlock2D> mid_block;
  std::shared_ptr<nn::GroupNorm> conv_norm_out;
};

// vae.py Decoder (norm_type "group"): conv_in, mid_block, up_blocks (UpDecoderBlock2D with
// layers_per_block + 1 resnets over the reversed channels, upsampling all but the last),
// conv_norm_out + SiLU, conv_out.
class VaeDecoder : public nn::Module {
 public:
  explicit VaeDecoder(const AutoencoderKLConfig& config);
  // z [N, latent_channels, h, w] -> [N, out_channels, h * 2^(blocks - 1), w * 2^(blocks - 1)].
  Tensor forward(const Tensor& z) override;

  std::shared_ptr<nn::Conv2d> conv_in, conv_out;
  std::shared_ptr<UNetMidBlock2D> mid_block;
  std::shared_ptr<nn::ModuleList> up_blocks;  // of UpDecoderBlock2D
  std::shared_ptr<nn::GroupNorm> conv_norm_out;
};

class AutoencoderKL : public nn::Module {
 public:
  // Parameters get PyTorch's default initialisation (what diffusers' AutoencoderKL has before
  // loading weights) drawn from `gen`. Throws on an invalid config (validate()).
  explicit AutoencoderKL(const AutoencoderKLConfig& config, Generator& gen = default_generator());

  // x [N, in_channels, H, W] in [-1, 1], H and W divisible by the downsampling factor.
  DiagonalGaussianDistribution encode(const Tensor& x);
  // z [N, latent_channels, h, w] (unscaled) -> sample [N, out_channels, H, W].
  Tensor decode(const Tensor& z);
  // decode(encode(x).mode()) (diffusers' forward with sample_posterior False).
  Tensor forward(const Tensor& x) override;
  // decode(encode(x).sample(gen)) (sample_posterior True).
  Tensor forward(const Tensor& x, Generator& gen);

  // Spatial factor between image and latent: 2^(blocks - 1) (8 for SD).
  int64_t downsampling_factor() const;
  const AutoencoderKLConfig& config() const { return config_; }

  // `dict` with older diffusers' names of the attention blocks' weights ("<attn>.query|key|value|
  // proj_attn.{weight,bias}", 2022-era checkpoints) renamed to the current ones
  // ("<attn>.to_q|to_k|to_v|to_out.0"), for this model's attention blocks <attn>, as diffusers'
  // ModelMixin._fix_state_dict_keys_on_load does; other keys unchanged. Load the result with
  // load_state_dict.
  nn::StateDict rename_legacy_keys(const nn::StateDict& dict) const;

  std::shared_ptr<VaeEncoder> encoder;
  std::shared_ptr<VaeDecoder> decoder;
  std::shared_ptr<nn::Conv2d> quant_conv, post_quant_conv;  // null when the config turns them off

 private:
  AutoencoderKLConfig config_;
};

}  // namespace cxr::models
