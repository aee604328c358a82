// Stable Diffusion model folders in diffusers' layout (what StableDiffusionPipeline /
// StableDiffusionControlNetPipeline.save_pretrained write and from_pretrained read):
//   model_index.json
//   unet/        config.json, diffusion_pytorch_model.safetensors   (UNet2DConditionModel)
//   vae/         config.json, diffusion_pytorch_model.safetensors   (AutoencoderKL)
//   text_encoder/ config.json, model.safetensors                    (transformers CLIPTextModel)
//   tokenizer/   vocab.json, merges.txt (+ special_tokens_map.json, tokenizer_config.json)
//   scheduler/   scheduler_config.json
//   controlnet/  config.json, diffusion_pytorch_model.safetensors   (optional, ControlNetModel)
// Loading is strict by default: a missing file, a bad config key, or weights with missing keys,
// unexpected keys or shape mismatches throw a cxr::Error naming the file (and the keys). Saving
// writes the same layout, every file atomically (model_index.json last), so a folder saved here
// loads back bitwise and loads in diffusers.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/clip_tokenizer.h"
#include "models/controlnet.h"
#include "models/schedulers.h"
#include "models/unet2d_condition.h"

namespace cxr::models {

// Which components load_sd_folder reads (the others stay null).
struct SdFolderOptions {
  bool unet = true;
  bool vae = true;
  bool text_encoder = true;
  bool tokenizer = true;
  bool scheduler = true;
  // controlnet/: read when the folder has it (IfPresent), always (Required: its absence throws)
  // or never (Skip).
  enum class ControlNet { IfPresent, Required, Skip };
  ControlNet controlnet = ControlNet::IfPresent;
  // false: weights load where names and shapes match, and load_reports says what did not.
  bool strict = true;
};

// A pipeline's components; any may be null (not loaded / not saved).
struct SdFolder {
  std::shared_ptr<UNet2DConditionModel> unet;
  std::shared_ptr<AutoencoderKL> vae;
  std::shared_ptr<ClipTextModel> text_encoder;
  std::shared_ptr<ClipTokenizer> tokenizer;
  std::shared_ptr<Scheduler> scheduler;
  std::shared_ptr<ControlNetModel> controlnet;
  // Non-strict loading: weight file path -> what did not match (files that matched exactly are
  // not listed).
  std::map<std::string, nn::LoadReport> load_reports;
};

// Loads the selected components of the folder `dir` on the CPU in float32 (weights of other
// float dtypes are converted). Throws naming the file on any problem (see above).
SdFolder load_sd_folder(const std::string& dir, const SdFolderOptions& options = {});
// Writes every non-null component of `folder` under `dir` (created if needed; existing files of
// those components are replaced) and a model_index.json naming them, diffusers' way.
void save_sd_folder(const std::string& dir, const SdFolder& folder);

// Single components from their own folders ("<dir>/unet", a separately trained "controlnet", ...).
// `report` (optional) receives the load report; with strict, a mismatch throws naming the file.
std::shared_ptr<UNet2DConditionModel> load_unet(const std::string& component_dir,
                                                bool strict = true,
                                                nn::LoadReport* report = nullptr);
std::shared_ptr<AutoencoderKL> load_vae(const std::string& component_dir, bool strict = true,
                                        nn::LoadReport* report = nullptr);
std::shared_ptr<ClipTextModel> load_text_encoder(const std::string& component_dir,
                                                 bool strict = true,
                                                 nn::LoadReport* report = nullptr);
std::shared_ptr<ControlNetModel> load_controlnet(const std::string& component_dir,
                                                 bool strict = true,
                                                 nn::LoadReport* report = nullptr);
// Writes "<component_dir>/config.json" and the weights file of the component's type.
void save_unet(const std::string& component_dir, const UNet2DConditionModel& unet);
void save_vae(const std::string& component_dir, const AutoencoderKL& vae);
void save_text_encoder(const std::string& component_dir, const ClipTextModel& text_encoder);
void save_controlnet(const std::string& component_dir, const ControlNetModel& controlnet);

}  // namespace cxr::models
