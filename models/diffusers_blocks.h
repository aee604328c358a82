// The building blocks shared by diffusers' AutoencoderKL, UNet2DConditionModel and ControlNetModel
// (diffusers/models/resnet.py, downsampling.py, upsampling.py, unet_2d_blocks.py), under their
// state-dict names, so that a block of any of the three loads by name: ResnetBlock2D ("norm1",
// "conv1", "time_emb_proj", "norm2", "conv2", "conv_shortcut"), Downsample2D ("conv"), Upsample2D
// ("conv"), and the VAE's encoder/decoder blocks and attention mid block. Exact math:
// ../shared/spec/diffusion.md §1.3 (UNet) and §2 (VAE).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "nn/nn.h"

namespace cxr::models {

struct ResnetBlock2DOptions {
  int64_t out_channels = -1;   // -1: in_channels
  int64_t temb_channels = -1;  // -1: no time embedding (VAE); 1280 in the SD UNet
  int64_t groups = 32;         // GroupNorm groups (both norms)
  double eps = 1e-6;           // GroupNorm eps (VAE 1e-6, UNet 1e-5)
  double dropout = 0.0;
  double output_scale_factor = 1.0;
};

// h = conv1(silu(norm1(x))); h += time_emb_proj(silu(temb))[:, :, None, None] (when temb);
// h = conv2(dropout(silu(norm2(h)))); out = (shortcut(x) + h) / output_scale_factor, shortcut a 1x1
// conv_shortcut when channels change.
class ResnetBlock2D : public nn::Module {
 public:
  ResnetBlock2D(int64_t in_channels, const ResnetBlock2DOptions& options = {});
  Tensor forward(const Tensor& x) override;             // without time embedding
  Tensor forward(const Tensor& x, const Tensor& temb);  // temb [B, temb_channels] or undefined

  int64_t in_channels, out_channels;
  ResnetBlock2DOptions options;
  std::shared_ptr<nn::GroupNorm> norm1, norm2;
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Linear> time_emb_proj;  // null without temb
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Conv2d> conv_shortcut;  // null when in == out
};

// Conv 3x3 stride 2. `padding` 1 in the UNet; the VAE uses padding 0 after an asymmetric (0, 1,
// 0, 1) zero pad (diffusers Downsample2D with padding=0).
class Downsample2D : public nn::Module {
 public:
  Downsample2D(int64_t channels, int64_t out_channels = -1, int64_t padding = 1);
  Tensor forward(const Tensor& x) override;

  int64_t padding;
  std::shared_ptr<nn::Conv2d> conv;
};

// Nearest-neighbour x2 (or to `size` when given: the UNet's upsample_size for odd latents), then
// conv 3x3 pad 1.
class Upsample2D : public nn::Module {
 public:
  Upsample2D(int64_t channels, int64_t out_channels = -1);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& x, std::optional<std::pair<int64_t, int64_t>> size);

  std::shared_ptr<nn::Conv2d> conv;
};

// The VAE's DownEncoderBlock2D: `num_layers` resnets ("resnets.j"), then an optional
// Downsample2D ("downsamplers.0", padding 0).
class DownEncoderBlock2D : public nn::Module {
 public:
  DownEncoderBlock2D(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups,
                     double eps, bool add_downsample);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::ModuleList> resnets, downsamplers;  // downsamplers null when absent
};

// The VAE's UpDecoderBlock2D: `num_layers` resnets, then an optional Upsample2D ("upsamplers.0").
class UpDecoderBlock2D : public nn::Module {
 public:
  UpDecoderBlock2D(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups,
                   double eps, bool add_upsample);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::ModuleList> resnets, upsamplers;  // upsamplers null when absent
};

// The VAE's UNetMidBlock2D: resnets.0, attentions.0 (nn::Attention with group_norm, one head of
// all channels, residual connection, bias on q/k/v), resnets.1. Without attention
// (mid_block_add_attention false) `attentions` stays empty and the resnets follow each other.
class UNetMidBlock2D : public nn::Module {
 public:
  UNetMidBlock2D(int64_t channels, int64_t groups, double eps, bool add_attention = true);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::ModuleList> resnets, attentions;
};

}  // namespace cxr::models
