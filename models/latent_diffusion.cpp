// The study's latent diffusion generator and its condition rules (latent_diffusion.h).
#include "models/latent_diffusion.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "autograd/elementwise.h"
#include "autograd/grad_mode.h"
#include "autograd/indexing.h"
#include "autograd/loss.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "tensor/reduce.h"
#include "tensor/views.h"

namespace cxr::models {

namespace {

// A [B, 1, ..., 1] (rank `rank`) float tensor of 1 where keep[b], else 0, on `like`'s device.
Tensor keep_mask(const std::vector<bool>& keep, int64_t rank, const Tensor& like) {
  std::vector<float> v(keep.begin(), keep.end());
  Shape shape(size_t(rank), 1);
  shape[0] = int64_t(v.size());
  return raw::to(raw::from_vector(v, shape, like.dtype()), like.device());
}

bool all_of(const std::vector<bool>& v, bool value) {
  return std::all_of(v.begin(), v.end(), [&](bool b) { return b == value; });
}

}  // namespace

ConditionMode parse_condition_mode(std::string_view name) {
  if (name == "t2i") return ConditionMode::Text;
  if (name == "m2i") return ConditionMode::Mask;
  if (name == "tm2i") return ConditionMode::TextMask;
  CXR_FAIL("unknown condition mode '", name, "' (expected t2i, m2i or tm2i)");
}

const char* condition_mode_name(ConditionMode mode) {
  switch (mode) {
    case ConditionMode::Text:
      return "t2i";
    case ConditionMode::Mask:
      return "m2i";
    case ConditionMode::TextMask:
      return "tm2i";
  }
  return "?";
}

bool is_null_prompt(std::string_view prompt) {
  while (!prompt.empty() && std::isspace(static_cast<unsigned char>(prompt.front())))
    prompt.remove_prefix(1);
  while (!prompt.empty() && std::isspace(static_cast<unsigned char>(prompt.back())))
    prompt.remove_suffix(1);
  if (prompt.empty()) return true;
  if (prompt.size() != 3) return false;
  return std::toupper(static_cast<unsigned char>(prompt[0])) == 'N' && prompt[1] == '/' &&
         std::toupper(static_cast<unsigned char>(prompt[2])) == 'A';
}

bool is_null_mask(const Tensor& mask) {
  if (!mask.defined() || mask.numel() == 0) return true;
  return raw::sum(raw::abs(raw::to(mask, kFloat64))).item() == 0.0;
}

void LatentDiffusion::validate() const {
  CXR_CHECK(vae && text_encoder && tokenizer && unet,
            "LatentDiffusion: the VAE, text encoder, tokenizer and UNet are all required");
  const auto& u = unet->config();
  CXR_CHECK(vae->config().latent_channels == u.in_channels, "LatentDiffusion: the VAE has ",
            vae->config().latent_channels, " latent channels, the UNet takes ", u.in_channels);
  CXR_CHECK(text_encoder->config.hidden_size == u.cross_attention_dim,
            "LatentDiffusion: the text encoder's width ", text_encoder->config.hidden_size,
            " differs from the UNet's cross_attention_dim ", u.cross_attention_dim);
  CXR_CHECK(tokenizer->vocab_size() <= text_encoder->config.vocab_size,
            "LatentDiffusion: the tokenizer has ", tokenizer->vocab_size(),
            " tokens, the text encoder embeds ", text_encoder->config.vocab_size);
  if (controlnet)
    CXR_CHECK(controlnet->num_down_residuals() == unet->num_down_residuals(),
              "LatentDiffusion: the ControlNet gives ", controlnet->num_down_residuals(),
              " down residuals, the UNet takes ", unet->num_down_residuals());
}

Tensor LatentDiffusion::encode_prompts(const std::vector<std::string>& prompts,
                                       ConditionMode mode) const {
  CXR_CHECK(!prompts.empty(), "encode_prompts: no prompt");
  // Gradients only when the text encoder is being trained (RoentGen fine-tuned it with the UNet).
  const bool trained = text_encoder->num_parameters(/*trainable_only=*/true) > 0;
  std::optional<autograd::NoGradGuard> no_grad;
  if (!trained) no_grad.emplace();
  std::vector<bool> keep;
  for (const auto& p : prompts) keep.push_back(mode != ConditionMode::Mask && !is_null_prompt(p));
  const Tensor ids = raw::to(tokenizer->input_ids(prompts), unet->conv_in->weight.device());
  const Tensor text = text_encoder->forward(ids);
  return all_of(keep, true) ? text : mul(text, keep_mask(keep, 3, text));
}

Tensor LatentDiffusion::encode_images(const Tensor& images, Generator& gen) const {
  autograd::NoGradGuard no_grad;
  return mul(vae->encode(images).sample(gen), vae->config().scaling_factor);
}

Tensor LatentDiffusion::decode_latents(const Tensor& latents) const {
  autograd::NoGradGuard no_grad;
  return vae->decode(mul(latents, 1.0 / vae->config().scaling_factor));
}

std::vector<bool> LatentDiffusion::active_masks(const Tensor& masks, int64_t batch,
                                                ConditionMode mode) const {
  std::vector<bool> active(size_t(batch), false);
  if (mode == ConditionMode::Text || !masks.defined() || !controlnet) return active;
  CXR_CHECK(masks.dim() == 4 && masks.size(0) == batch, "masks must be [", batch,
            ", C, H, W], got ", shape_str(masks.sizes()));
  for (int64_t b = 0; b < batch; ++b) active[size_t(b)] = !is_null_mask(raw::select(masks, 0, b));
  return active;
}

Tensor LatentDiffusion::predict(const Tensor& z_t, const Tensor& t, const Tensor& text,
                                const Tensor& masks, const std::vector<bool>& mask_active,
                                double conditioning_scale) const {
  if (!controlnet || all_of(mask_active, false)) return unet->forward(z_t, t, text);
  ControlNetOutput control = controlnet->forward(z_t, t, text, masks, conditioning_scale);
  if (!all_of(mask_active, true)) {
    // Null masks contribute nothing: their rows of every residual are zeroed.
    const Tensor keep = keep_mask(mask_active, 4, z_t);
    for (Tensor& r : control.down_block_res_samples) r = mul(r, keep);
    control.mid_block_res_sample = mul(control.mid_block_res_sample, keep);
  }
  return unet->forward(z_t, t, text, control.down_block_res_samples, control.mid_block_res_sample);
}

Tensor LatentDiffusion::training_loss(const Tensor& images, const std::vector<std::string>& prompts,
                                      const Tensor& masks, ConditionMode mode,
                                      Generator& gen) const {
  const int64_t batch = images.size(0);
  CXR_CHECK(int64_t(prompts.size()) == batch, "training_loss: ", prompts.size(), " prompts for ",
            batch, " images");
  const Tensor latents = encode_images(images, gen);
  const Tensor text = encode_prompts(prompts, mode);
  const NoiseSchedule schedule(noise);
  // Drawn on the latents' device: the same numbers as on the CPU (tensor/random.h).
  const Tensor eps = raw::randn(latents.sizes(), gen, kFloat32, 0.0, 1.0, latents.device());
  const Tensor t =
      raw::randint(0, schedule.num_train_timesteps(), {batch}, gen, kInt64, latents.device());
  const Tensor z_t = schedule.add_noise(latents, eps, t);
  Tensor target;
  if (noise.prediction_type == "epsilon")
    target = eps;
  else if (noise.prediction_type == "v_prediction")
    target = schedule.get_velocity(latents, eps, t);
  else
    CXR_FAIL("training_loss: prediction_type '", noise.prediction_type,
             "' (expected epsilon or v_prediction)");
  const Tensor pred = predict(z_t, t, text, masks, active_masks(masks, batch, mode));
  return mse_loss(pred, target);
}

std::array<int64_t, 2> native_image_size(const LatentDiffusion& model) {
  const std::vector<int64_t>& latent = model.unet->config().sample_size;
  const int64_t f = model.vae->downsampling_factor();
  return {(latent.empty() ? 64 : latent.front()) * f, (latent.empty() ? 64 : latent.back()) * f};
}

Tensor sample_images(const LatentDiffusion& model, const std::vector<std::string>& prompts,
                     const Tensor& masks, const std::vector<uint64_t>& seeds,
                     const SampleOptions& o) {
  const int64_t batch = int64_t(prompts.size());
  CXR_CHECK(batch > 0 && seeds.size() == prompts.size(), "sample_images: ", prompts.size(),
            " prompts and ", seeds.size(), " seeds (one per image)");
  const int64_t f = model.vae->downsampling_factor();
  CXR_CHECK(o.height % f == 0 && o.width % f == 0 && o.height > 0 && o.width > 0,
            "sample_images: height and width must be multiples of ", f, ", got ", o.height, "x",
            o.width);
  CXR_CHECK(o.guidance_scale >= 1.0, "sample_images: guidance_scale must be >= 1, got ",
            o.guidance_scale);
  autograd::NoGradGuard no_grad;
  SchedulerConfig config = model.noise;
  config.eta = o.eta;
  std::unique_ptr<Scheduler> scheduler =
      make_scheduler(scheduler_kind_from_name(o.scheduler), config);
  scheduler->set_timesteps(o.steps);

  const Device device = model.unet->conv_in->weight.device();
  const Shape one = {1, model.unet->config().in_channels, o.height / f, o.width / f};
  std::vector<Generator> gens;
  for (uint64_t s : seeds) gens.emplace_back(s);
  // Noise for every image from its own generator, so an image does not depend on its batch.
  auto draw = [&] {
    std::vector<Tensor> parts;
    for (auto& g : gens) parts.push_back(raw::randn(one, g));
    return raw::to(raw::cat(parts, 0), device);
  };
  Tensor latents = mul(draw(), scheduler->init_noise_sigma());

  const Tensor text = model.encode_prompts(prompts, o.mode);
  const std::vector<bool> active = model.active_masks(masks, batch, o.mode);
  const bool guided = o.guidance_scale > 1.0;
  // Guidance: the unconditional branch is the null text (zeros), the mask as given.
  const Tensor text_in = guided ? cat({raw::zeros_like(text), text}, 0) : text;
  Tensor masks_in;
  std::vector<bool> active_in = active;
  if (masks.defined()) {
    const Tensor m = raw::to(masks, device);
    masks_in = guided ? cat({m, m}, 0) : m;
  }
  if (guided) active_in.insert(active_in.end(), active.begin(), active.end());
  for (double t : scheduler->timesteps()) {
    Tensor x = scheduler->scale_model_input(latents, t);
    if (guided) x = cat({x, x}, 0);
    const Tensor tt = raw::full({x.size(0)}, t, kFloat32, device);
    Tensor pred = model.predict(x, tt, text_in, masks_in, active_in, o.conditioning_scale);
    if (guided) {
      const Tensor uncond = raw::narrow(pred, 0, 0, batch),
                   cond = raw::narrow(pred, 0, batch, batch);
      pred = classifier_free_guidance(uncond, cond, o.guidance_scale);
    }
    latents = scheduler->step(pred, t, latents, draw());
  }
  const Tensor images = model.decode_latents(latents);
  return clamp(add(mul(images, 0.5), 0.5), 0.0, 1.0);
}

}  // namespace cxr::models
