// Loading and saving diffusers-format Stable Diffusion folders (see sd_folder.h). File names are
// diffusers' (utils/constants.py: CONFIG_NAME "config.json", SAFETENSORS_WEIGHTS_NAME
// "diffusion_pytorch_model.safetensors") and transformers' ("model.safetensors").
#include "models/sd_folder.h"

#include <filesystem>

#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/safetensors.h"

namespace cxr::models {

namespace {

namespace fs = std::filesystem;

const char* const kConfig = "config.json";
const char* const kDiffusersWeights = "diffusion_pytorch_model.safetensors";
const char* const kTransformersWeights = "model.safetensors";
const char* const kSchedulerConfig = "scheduler_config.json";

// `dir`/`name`, which must exist (the error says which component needs it).
std::string existing(const std::string& dir, const std::string& name, const std::string& what) {
  const std::string path = (fs::path(dir) / name).string();
  CXR_CHECK(fs::is_regular_file(path), "sd_folder: missing ", path, " (", what, ")");
  return path;
}

// Loads the weights file `path` into `module`, `convert` mapping the file's names to the
// module's. Strict: any mismatch throws naming the file and the keys.
nn::LoadReport load_weights(nn::Module& module, const std::string& path, bool strict,
                            nn::LoadReport* report_out,
                            nn::StateDict (*convert)(const nn::StateDict&) = nullptr) {
  const SafetensorsFile file = load_safetensors(path);
  const nn::StateDict dict = convert ? convert(file.tensors) : nn::StateDict(file.tensors);
  const nn::LoadReport report = module.load_state_dict(dict, /*strict=*/false);
  CXR_CHECK(!strict || report.ok(), "sd_folder: the weights in ", path, " do not match the ",
            module.type_name(), " of its config.json: ", report.str());
  if (report_out) *report_out = report;
  return report;
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  write_file_atomic(path.string(), j.dump(2) + "\n", "save_sd_folder");
}

void save_component(const std::string& component_dir, const nlohmann::json& config,
                    const nn::Module& module, const char* weights_name) {
  fs::create_directories(component_dir);
  save_safetensors((fs::path(component_dir) / weights_name).string(), module.state_dict());
  write_json(fs::path(component_dir) / kConfig, config);
}

}  // namespace

// ---- components ----

std::shared_ptr<UNet2DConditionModel> load_unet(const std::string& dir, bool strict,
                                                nn::LoadReport* report) {
  auto unet = std::make_shared<UNet2DConditionModel>(
      UNet2DConditionConfig::from_json_file(existing(dir, kConfig, "UNet config")));
  load_weights(*unet, existing(dir, kDiffusersWeights, "UNet weights"), strict, report);
  return unet;
}

std::shared_ptr<AutoencoderKL> load_vae(const std::string& dir, bool strict,
                                        nn::LoadReport* report) {
  auto vae = std::make_shared<AutoencoderKL>(
      AutoencoderKLConfig::from_json_file(existing(dir, kConfig, "VAE config")));
  load_weights(*vae, existing(dir, kDiffusersWeights, "VAE weights"), strict, report);
  return vae;
}

std::shared_ptr<ClipTextModel> load_text_encoder(const std::string& dir, bool strict,
                                                 nn::LoadReport* report) {
  auto text = std::make_shared<ClipTextModel>(
      ClipTextConfig::from_file(existing(dir, kConfig, "text encoder config")));
  // transformers 5 saves the names without "text_model."; older files have position_ids.
  load_weights(*text, existing(dir, kTransformersWeights, "text encoder weights"), strict, report,
               &ClipTextModel::checkpoint_state_dict);
  return text;
}

std::shared_ptr<ControlNetModel> load_controlnet(const std::string& dir, bool strict,
                                                 nn::LoadReport* report) {
  auto net = std::make_shared<ControlNetModel>(
      ControlNetConfig::from_json_file(existing(dir, kConfig, "ControlNet config")));
  load_weights(*net, existing(dir, kDiffusersWeights, "ControlNet weights"), strict, report);
  return net;
}

void save_unet(const std::string& dir, const UNet2DConditionModel& unet) {
  save_component(dir, unet.config().to_json(), unet, kDiffusersWeights);
}

void save_vae(const std::string& dir, const AutoencoderKL& vae) {
  save_component(dir, vae.config().to_json(), vae, kDiffusersWeights);
}

void save_text_encoder(const std::string& dir, const ClipTextModel& text_encoder) {
  save_component(dir, text_encoder.config.to_json(), text_encoder, kTransformersWeights);
}

void save_controlnet(const std::string& dir, const ControlNetModel& controlnet) {
  save_component(dir, controlnet.config().to_json(), controlnet, kDiffusersWeights);
}

// ---- folders ----

SdFolder load_sd_folder(const std::string& dir, const SdFolderOptions& options) {
  CXR_CHECK(fs::is_directory(dir), "load_sd_folder: ", dir, " is not a directory");
  const fs::path root(dir);
  SdFolder out;
  const bool strict = options.strict;
  // Loads one weighted component, keeping its report when something did not match.
  auto component = [&](const char* name, auto load) {
    nn::LoadReport report;
    auto model = load((root / name).string(), strict, &report);
    if (!report.ok()) out.load_reports[(root / name).string()] = report;
    return model;
  };
  if (options.unet) out.unet = component("unet", &load_unet);
  if (options.vae) out.vae = component("vae", &load_vae);
  if (options.text_encoder) out.text_encoder = component("text_encoder", &load_text_encoder);
  if (options.tokenizer) {
    const std::string tok = (root / "tokenizer").string();
    existing(tok, "vocab.json", "tokenizer vocabulary");
    existing(tok, "merges.txt", "tokenizer merges");
    out.tokenizer = std::make_shared<ClipTokenizer>(ClipTokenizer::load(tok));
  }
  if (options.scheduler)
    out.scheduler = load_scheduler(
        existing((root / "scheduler").string(), kSchedulerConfig, "scheduler config"));
  using CN = SdFolderOptions::ControlNet;
  const bool has_controlnet = fs::is_directory(root / "controlnet");
  CXR_CHECK(options.controlnet != CN::Required || has_controlnet, "load_sd_folder: ", dir,
            " has no controlnet/ folder (a ControlNet was required)");
  if (options.controlnet != CN::Skip && has_controlnet)
    out.controlnet = component("controlnet", &load_controlnet);
  return out;
}

void save_sd_folder(const std::string& dir, const SdFolder& folder) {
  const fs::path root(dir);
  fs::create_directories(root);
  nlohmann::json index = {{"_class_name", folder.controlnet ? "StableDiffusionControlNetPipeline"
                                                            : "StableDiffusionPipeline"},
                          {"feature_extractor", {nullptr, nullptr}},
                          {"requires_safety_checker", false},
                          {"safety_checker", {nullptr, nullptr}}};
  // Each saved component, as diffusers lists it: [library, class]; [null, null] when absent.
  auto entry = [&](const char* name, bool present, const char* library, const char* cls) {
    index[name] = present ? nlohmann::json{library, cls} : nlohmann::json{nullptr, nullptr};
  };
  if (folder.unet) save_unet((root / "unet").string(), *folder.unet);
  entry("unet", bool(folder.unet), "diffusers", "UNet2DConditionModel");
  if (folder.vae) save_vae((root / "vae").string(), *folder.vae);
  entry("vae", bool(folder.vae), "diffusers", "AutoencoderKL");
  if (folder.text_encoder)
    save_text_encoder((root / "text_encoder").string(), *folder.text_encoder);
  entry("text_encoder", bool(folder.text_encoder), "transformers", "CLIPTextModel");
  if (folder.tokenizer) folder.tokenizer->save((root / "tokenizer").string());
  entry("tokenizer", bool(folder.tokenizer), "transformers", "CLIPTokenizer");
  if (folder.scheduler) {
    const nlohmann::json config = folder.scheduler->config().to_json(folder.scheduler->kind());
    fs::create_directories(root / "scheduler");
    write_json(root / "scheduler" / kSchedulerConfig, config);
    index["scheduler"] = {"diffusers", config["_class_name"]};
  } else {
    index["scheduler"] = {nullptr, nullptr};
  }
  if (folder.controlnet) {
    save_controlnet((root / "controlnet").string(), *folder.controlnet);
    entry("controlnet", true, "diffusers", "ControlNetModel");
  }
  // Last: a folder with its model_index.json is complete.
  write_json(root / "model_index.json", index);
}

}  // namespace cxr::models
