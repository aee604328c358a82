// The study's generator: a latent diffusion model (VAE + CLIP text encoder + UNet, the Stable
// Diffusion 1.x architecture) with an optional ControlNet for a mask condition, and the paper's
// condition rules in ONE place, used by training and by sampling alike:
//   - text "N/A" (any case, surrounding spaces ignored), an empty prompt, or mode m2i gives a ZERO
//     text-condition vector (not the encoding of the literal text);
//   - an all-black mask (no non-zero pixel), a missing mask, or mode t2i gives ZERO control
//     residuals;
// so one model serves text-only (t2i), mask-only (m2i) and text+mask (tm2i) generation. Training
// minimises the paper's Eq. 1, ||eps - eps_theta(z_t, t, c_t, c_f)||^2 (or the v-prediction
// target); sampling runs a diffusers-equivalent scheduler with classifier-free guidance whose
// unconditional branch is the zero text condition (the same rule), with one seed per image.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/clip_tokenizer.h"
#include "models/controlnet.h"
#include "models/schedulers.h"
#include "models/unet2d_condition.h"

namespace cxr::models {

enum class ConditionMode { Text, Mask, TextMask };  // t2i, m2i, tm2i
// "t2i" | "m2i" | "tm2i"; throws naming the accepted values.
ConditionMode parse_condition_mode(std::string_view name);
const char* condition_mode_name(ConditionMode mode);

// The rules above, per sample.
bool is_null_prompt(std::string_view prompt);
// mask: any dtype, any shape; null when undefined or without a non-zero element.
bool is_null_mask(const Tensor& mask);

struct LatentDiffusion {
  std::shared_ptr<AutoencoderKL> vae;
  std::shared_ptr<ClipTextModel> text_encoder;
  std::shared_ptr<ClipTokenizer> tokenizer;
  std::shared_ptr<UNet2DConditionModel> unet;
  std::shared_ptr<ControlNetModel> controlnet;  // null: a text-only model
  SchedulerConfig noise;                        // training noise schedule and prediction type

  // Throws naming the mismatch when the components do not fit together (latent channels, text
  // width vs cross-attention width, ControlNet vs UNet).
  void validate() const;

  // Text conditions [B, L, D]: the text encoder's last_hidden_state, rows of null prompts (and all
  // rows in m2i mode) zero. Differentiable when the text encoder has trainable parameters.
  Tensor encode_prompts(const std::vector<std::string>& prompts, ConditionMode mode) const;
  // Images [B, C, H, W] in [-1, 1] -> latents (a posterior sample times the scaling factor).
  Tensor encode_images(const Tensor& images, Generator& gen) const;
  // Latents -> images in [-1, 1].
  Tensor decode_latents(const Tensor& latents) const;
  // Which samples' masks count (false = zero residuals) under `mode`; masks may be undefined.
  std::vector<bool> active_masks(const Tensor& masks, int64_t batch, ConditionMode mode) const;

  // The UNet's prediction for noisy latents z_t at timesteps t (int64 [B]) with text conditions
  // and, with a ControlNet, masks [B, 3, 8h, 8w] in [0, 1] whose residuals are kept where
  // `mask_active` is true and zeroed elsewhere.
  Tensor predict(const Tensor& z_t, const Tensor& t, const Tensor& text, const Tensor& masks,
                 const std::vector<bool>& mask_active, double conditioning_scale = 1.0) const;

  // Eq. 1 on a batch: images [B, C, H, W] in [-1, 1], one prompt each, masks [B, 3, H, W] in
  // [0, 1] (or undefined). The VAE runs without gradients; whichever of text encoder / UNet /
  // ControlNet requires grad receives them. Noise and timesteps come from `gen`.
  Tensor training_loss(const Tensor& images, const std::vector<std::string>& prompts,
                       const Tensor& masks, ConditionMode mode, Generator& gen) const;
};

struct SampleOptions {
  std::string scheduler = "pndm";  // ddpm | ddim | pndm | euler_ancestral
  int64_t steps = 50;
  double guidance_scale = 7.5;  // 1 = no guidance (one UNet pass per step)
  double conditioning_scale = 1.0;
  double eta = 0.0;  // DDIM
  int64_t height = 512, width = 512;
  ConditionMode mode = ConditionMode::TextMask;
};

// The image size the model was trained for: the UNet's sample_size (latent side; 64 for SD v1,
// 64 when unset) times the VAE's downsampling factor, as {height, width}.
std::array<int64_t, 2> native_image_size(const LatentDiffusion& model);

// One image per prompt (and mask), each from its own seed: the same seed and settings give the
// same image whatever the batch it is in. masks: [B, 3, height, width] in [0, 1] or undefined.
// Returns images [B, C, height, width] in [0, 1].
Tensor sample_images(const LatentDiffusion& model, const std::vector<std::string>& prompts,
                     const Tensor& masks, const std::vector<uint64_t>& seeds,
                     const SampleOptions& options);

}  // namespace cxr::models
