// The model registry (registry.h): one entry per network, each reading its reference-named keys.
#include "models/registry.h"

#include <sstream>

#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/controlnet.h"
#include "models/resnet.h"
#include "models/unet2d_condition.h"
#include "models/unetplusplus.h"
#include "tensor/error.h"

namespace cxr::models {

namespace {

// A model with one input tensor "input" and its outputs computed by `fn`.
template <typename M>
class SingleInputModel : public RunnableModel {
 public:
  using Fn = std::function<TensorMap(M&, const Tensor&)>;
  SingleInputModel(std::shared_ptr<M> model, Fn fn)
      : model_(std::move(model)), fn_(std::move(fn)) {}
  nn::Module& module() override { return *model_; }
  TensorMap forward(const TensorMap& inputs) override { return fn_(*model_, inputs.at("input")); }

 private:
  std::shared_ptr<M> model_;
  Fn fn_;
};

ModelEntry resnet_entry(const std::string& name) {
  ModelEntry e;
  e.name = name;
  e.summary = "torchvision " + name + " (" +
              (name == "resnet50" ? "Bottleneck v1.5" : std::string("BasicBlock")) +
              "): image -> class logits";
  e.config_keys = {"num_classes: int = 1000  outputs of fc",
                   "in_channels: int = 3  input channels (ours: 1 for X-rays)",
                   "base_width: int = 64  stem / layer1 width (ours: smaller for quick runs)",
                   "zero_init_residual: bool = false  torchvision's option"};
  e.inputs = {{"input", "float32 [N, in_channels, H, W]"}};
  e.outputs = {{"output", "float32 [N, num_classes] logits"}};
  e.build = [name](JsonConfig& c) -> std::unique_ptr<RunnableModel> {
    ResNetConfig cfg = ResNetConfig::named(name);
    cfg.num_classes = c.get_int("num_classes", cfg.num_classes);
    cfg.in_channels = c.get_int("in_channels", cfg.in_channels);
    cfg.base_width = c.get_int("base_width", cfg.base_width);
    cfg.zero_init_residual = c.get_bool("zero_init_residual", cfg.zero_init_residual);
    CXR_CHECK(cfg.num_classes >= 1, c.source(), ": num_classes must be >= 1, got ",
              cfg.num_classes);
    return std::make_unique<SingleInputModel<ResNet>>(std::make_shared<ResNet>(cfg),
                                                      [](ResNet& m, const Tensor& x) {
                                                        return TensorMap{{"output", m.forward(x)}};
                                                      });
  };
  return e;
}

ModelEntry unetplusplus_entry() {
  ModelEntry e;
  e.name = "unetplusplus";
  e.summary =
      "segmentation_models_pytorch UnetPlusPlus with a ResNet encoder: image -> mask logits";
  e.config_keys = {
      "encoder_name: string = \"resnet34\"  resnet18 | resnet34 | resnet50",
      "encoder_depth: int = 5  3..5",
      "decoder_channels: [int] = [256, 128, 64, 32, 16]  one per encoder stage",
      "in_channels: int = 3",
      "classes: int = 1  output channels (logits)",
      "deep_supervision: bool = false  (ours) also output the logits of the upper nested nodes",
      "encoder_base_width: int = 64  (ours) encoder stem / layer1 width"};
  e.inputs = {{"input", "float32 [N, in_channels, H, W], H and W divisible by 2^encoder_depth"}};
  e.outputs = {{"output", "float32 [N, classes, H, W] logits"},
               {"output.<k>", "with deep_supervision: the k-th supervised node's logits"}};
  e.build = [](JsonConfig& c) -> std::unique_ptr<RunnableModel> {
    UnetPlusPlusConfig cfg;
    cfg.encoder_name = c.get_string("encoder_name", cfg.encoder_name);
    cfg.encoder_depth = int(c.get_int("encoder_depth", cfg.encoder_depth));
    cfg.decoder_channels = c.get_int_list("decoder_channels", cfg.decoder_channels);
    cfg.in_channels = c.get_int("in_channels", cfg.in_channels);
    cfg.classes = c.get_int("classes", cfg.classes);
    cfg.deep_supervision = c.get_bool("deep_supervision", cfg.deep_supervision);
    cfg.encoder_base_width = c.get_int("encoder_base_width", cfg.encoder_base_width);
    // smp's constructor arguments that only take their default here.
    c.ignore({"encoder_weights", "activation", "aux_params"});
    return std::make_unique<SingleInputModel<UnetPlusPlus>>(
        std::make_shared<UnetPlusPlus>(cfg), [](UnetPlusPlus& m, const Tensor& x) {
          std::vector<Tensor> outs = m.forward_deep(x);
          TensorMap out{{"output", outs.back()}};
          for (size_t k = 0; k + 1 < outs.size(); ++k) out["output." + std::to_string(k)] = outs[k];
          return out;
        });
  };
  return e;
}

// diffusers AutoencoderKL: `sample` -> posterior mean/logvar (encode), or `z` -> `sample` (decode).
class AutoencoderKLModel : public RunnableModel {
 public:
  explicit AutoencoderKLModel(std::shared_ptr<AutoencoderKL> model) : model_(std::move(model)) {}
  nn::Module& module() override { return *model_; }
  TensorMap forward(const TensorMap& inputs) override {
    const bool encode = inputs.count("sample") > 0;
    CXR_CHECK(encode != (inputs.count("z") > 0),
              "autoencoder_kl: give exactly one of 'sample' (encode) and 'z' (decode)");
    if (!encode) return {{"sample", model_->decode(inputs.at("z"))}};
    DiagonalGaussianDistribution dist = model_->encode(inputs.at("sample"));
    return {{"latent_dist.mean", dist.mean}, {"latent_dist.logvar", dist.logvar}};
  }

 private:
  std::shared_ptr<AutoencoderKL> model_;
};

ModelEntry autoencoder_kl_entry() {
  ModelEntry e;
  e.name = "autoencoder_kl";
  e.summary =
      "diffusers AutoencoderKL (the Stable Diffusion VAE): image -> latent posterior, or latents "
      "-> image";
  e.config_keys = {
      "in_channels: int = 3",
      "out_channels: int = 3",
      "latent_channels: int = 4",
      "block_out_channels: [int] = [64]  SD: [128, 256, 512, 512]",
      "down_block_types: [string] = [\"DownEncoderBlock2D\"]  one DownEncoderBlock2D per block",
      "up_block_types: [string] = [\"UpDecoderBlock2D\"]  one UpDecoderBlock2D per block",
      "layers_per_block: int = 1  SD: 2 (decoder blocks: + 1)",
      "norm_num_groups: int = 32",
      "act_fn: string = \"silu\"  only silu",
      "use_quant_conv: bool = true",
      "use_post_quant_conv: bool = true",
      "mid_block_add_attention: bool = true",
      "scaling_factor: float = 0.18215  latents = sample * scaling_factor (pipeline only)",
      "shift_factor: float = null  (pipeline only)",
      "latents_mean, latents_std: [float] = null  (pipeline only)",
      "sample_size, force_upcast, _class_name, _diffusers_version, _name_or_path: ignored"};
  e.optional_inputs = {{"sample",
                        "float32 [N, in_channels, H, W] in [-1, 1], H and W divisible by "
                        "2^(len(block_out_channels) - 1): encode"},
                       {"z", "float32 [N, latent_channels, h, w], unscaled latents: decode"}};
  e.outputs = {{"latent_dist.mean", "encode: float32 [N, latent_channels, h, w]"},
               {"latent_dist.logvar", "encode: float32 [N, latent_channels, h, w], in [-30, 20]"},
               {"sample", "decode: float32 [N, out_channels, H, W]"}};
  e.build = [](JsonConfig& c) -> std::unique_ptr<RunnableModel> {
    return std::make_unique<AutoencoderKLModel>(
        std::make_shared<AutoencoderKL>(AutoencoderKLConfig::from_json(c)));
  };
  return e;
}

// diffusers UNet2DConditionModel over named tensors: sample, timestep, encoder_hidden_states and
// the optional ControlNet residuals "down_block_additional_residuals.<i>" (i = 0, 1, ... without
// gaps) and "mid_block_additional_residual".
class UNet2DConditionRunnable : public RunnableModel {
 public:
  explicit UNet2DConditionRunnable(std::shared_ptr<UNet2DConditionModel> model)
      : model_(std::move(model)) {}
  nn::Module& module() override { return *model_; }
  TensorMap forward(const TensorMap& inputs) override {
    std::vector<Tensor> down;
    for (size_t i = 0;; ++i) {
      auto it = inputs.find("down_block_additional_residuals." + std::to_string(i));
      if (it == inputs.end()) break;
      down.push_back(it->second);
    }
    auto mid = inputs.find("mid_block_additional_residual");
    return {{"sample", model_->forward(inputs.at("sample"), inputs.at("timestep"),
                                       inputs.at("encoder_hidden_states"), down,
                                       mid == inputs.end() ? Tensor() : mid->second)}};
  }

 private:
  std::shared_ptr<UNet2DConditionModel> model_;
};

// Names accepted for the down residuals: SD v1 has 12 (conv_in + 3 x (2 layers + downsampler) + 2).
constexpr int kUNetDownResiduals = 12;

ModelEntry unet2d_condition_entry() {
  ModelEntry e;
  e.name = "unet2d_condition";
  e.summary =
      "diffusers UNet2DConditionModel (Stable Diffusion's denoiser): noisy latents, timestep, text "
      "embeddings -> predicted noise";
  e.config_keys = {
      "(keys of a diffusers unet/config.json, unchanged; defaults are diffusers')",
      "in_channels: int = 4, out_channels: int = 4",
      "block_out_channels: [int] = [320, 640, 1280, 1280]",
      "down_block_types: [string]  CrossAttnDownBlock2D | DownBlock2D per block",
      "up_block_types: [string]  CrossAttnUpBlock2D | UpBlock2D per block",
      "mid_block_type: string = \"UNetMidBlock2DCrossAttn\"  (the only one)",
      "layers_per_block: int | [int] = 2",
      "attention_head_dim: int | [int] = 8  the NUMBER OF HEADS (diffusers' naming)",
      "transformer_layers_per_block: int | [int] = 1",
      "cross_attention_dim: int = 1280  (SD v1: 768)",
      "norm_num_groups: int = 32, norm_eps: float = 1e-5",
      "use_linear_projection: bool = false",
      "flip_sin_to_cos: bool = true, freq_shift: int = 0, time_embedding_dim: int = null",
      "center_input_sample: bool = false, downsample_padding: int = 1",
      "mid_block_scale_factor: float = 1, dropout: float = 0",
      "conv_in_kernel: int = 3, conv_out_kernel: int = 3",
      "sample_size: int = null  latent side (the default image size / the VAE factor)",
      "act_fn: \"silu\"; _class_name, _diffusers_version, _name_or_path: ignored",
      "other diffusers options (class_embed_type, addition_embed_type, dual_cross_attention, "
      "upcast_attention, resnet_time_scale_shift, ...): only their defaults"};
  e.inputs = {{"sample", "float [B, in_channels, H, W] noisy latents"},
              {"timestep", "scalar, [1] or [B], integer or float"},
              {"encoder_hidden_states", "float [B, S, cross_attention_dim] text embeddings"}};
  for (int i = 0; i < kUNetDownResiduals; ++i)
    e.optional_inputs.push_back(
        {"down_block_additional_residuals." + std::to_string(i),
         i == 0 ? "ControlNet: added to skip tensor i (all of them, with the mid residual)"
                : "ControlNet residual for skip tensor " + std::to_string(i)});
  e.optional_inputs.push_back(
      {"mid_block_additional_residual", "ControlNet: added to the mid block's output"});
  e.outputs = {{"sample", "float [B, out_channels, H, W]"}};
  e.build = [](JsonConfig& c) -> std::unique_ptr<RunnableModel> {
    return std::make_unique<UNet2DConditionRunnable>(
        std::make_shared<UNet2DConditionModel>(UNet2DConditionConfig::from_json(c)));
  };
  return e;
}

// diffusers ControlNetModel over named tensors: sample, timestep, encoder_hidden_states,
// controlnet_cond and the optional scalar conditioning_scale (default 1) ->
// "down_block_res_samples.<i>" (one per UNet skip tensor) and "mid_block_res_sample".
class ControlNetRunnable : public RunnableModel {
 public:
  explicit ControlNetRunnable(std::shared_ptr<ControlNetModel> model) : model_(std::move(model)) {}
  nn::Module& module() override { return *model_; }
  TensorMap forward(const TensorMap& inputs) override {
    double scale = 1.0;
    if (auto it = inputs.find("conditioning_scale"); it != inputs.end()) {
      CXR_CHECK(it->second.numel() == 1,
                "controlnet: conditioning_scale must be a scalar (one element), got shape ",
                shape_str(it->second.sizes()));
      scale = it->second.item();
    }
    const ControlNetOutput out =
        model_->forward(inputs.at("sample"), inputs.at("timestep"),
                        inputs.at("encoder_hidden_states"), inputs.at("controlnet_cond"), scale);
    TensorMap result = {{"mid_block_res_sample", out.mid_block_res_sample}};
    for (size_t i = 0; i < out.down_block_res_samples.size(); ++i)
      result["down_block_res_samples." + std::to_string(i)] = out.down_block_res_samples[i];
    return result;
  }

 private:
  std::shared_ptr<ControlNetModel> model_;
};

ModelEntry controlnet_entry() {
  ModelEntry e;
  e.name = "controlnet";
  e.summary =
      "diffusers ControlNetModel (SD v1 ControlNet): noisy latents, timestep, text embeddings and "
      "a conditioning image -> residuals for the UNet's skip tensors and mid block";
  e.config_keys = {
      "(keys of a diffusers controlnet/config.json, unchanged; defaults are diffusers')",
      "in_channels: int = 4, conditioning_channels: int = 3",
      "conditioning_embedding_out_channels: [int] = [16, 32, 96, 256]  (cond image = 2^(n-1) x "
      "latent size)",
      "block_out_channels: [int] = [320, 640, 1280, 1280]",
      "down_block_types: [string]  CrossAttnDownBlock2D | DownBlock2D per block",
      "mid_block_type: string = \"UNetMidBlock2DCrossAttn\"  (the only one)",
      "layers_per_block: int = 2  (one int, not a list)",
      "attention_head_dim: int | [int] = 8  the NUMBER OF HEADS (diffusers' naming)",
      "transformer_layers_per_block: int | [int] = 1",
      "cross_attention_dim: int = 1280  (SD v1: 768)",
      "norm_num_groups: int = 32, norm_eps: float = 1e-5",
      "use_linear_projection: bool = false",
      "flip_sin_to_cos: bool = true, freq_shift: int = 0",
      "downsample_padding: int = 1, mid_block_scale_factor: float = 1",
      "controlnet_conditioning_channel_order: \"rgb\" (only), global_pool_conditions: false (only)",
      "act_fn: \"silu\"; _class_name, _diffusers_version, _name_or_path: ignored",
      "other diffusers options (class_embed_type, addition_embed_type, upcast_attention, "
      "resnet_time_scale_shift, ...): only their defaults"};
  e.inputs = {{"sample", "float [B, in_channels, H, W] noisy latents"},
              {"timestep", "scalar, [1] or [B], integer or float"},
              {"encoder_hidden_states", "float [B, S, cross_attention_dim] text embeddings"},
              {"controlnet_cond", "float [B, conditioning_channels, 8 H, 8 W] in [0, 1] (SD v1)"}};
  e.optional_inputs = {
      {"conditioning_scale", "scalar (one element), default 1: multiplies every residual"}};
  for (int i = 0; i < kUNetDownResiduals; ++i)
    e.outputs.push_back({"down_block_res_samples." + std::to_string(i),
                         i == 0 ? "residual for UNet skip tensor 0 (12 in SD v1; a smaller "
                                  "config has fewer: one per skip tensor)"
                                : "residual for UNet skip tensor " + std::to_string(i)});
  e.outputs.push_back({"mid_block_res_sample", "residual for the UNet mid block's output"});
  e.build = [](JsonConfig& c) -> std::unique_ptr<RunnableModel> {
    return std::make_unique<ControlNetRunnable>(
        std::make_shared<ControlNetModel>(ControlNetConfig::from_json(c)));
  };
  return e;
}

std::string names(const std::vector<ModelEntry>& entries) {
  std::string out;
  for (const auto& e : entries) out += (out.empty() ? "" : ", ") + e.name;
  return out;
}

std::string doc_names(const std::vector<TensorDoc>& docs) {
  std::string out;
  for (const auto& d : docs) out += (out.empty() ? "" : ", ") + d.name;
  return out.empty() ? "(none)" : out;
}

}  // namespace

const std::vector<ModelEntry>& model_registry() {
  static const std::vector<ModelEntry> entries = {
      resnet_entry("resnet18"), resnet_entry("resnet34"), resnet_entry("resnet50"),
      unetplusplus_entry(),     autoencoder_kl_entry(),   clip_text_registry_entry(),
      unet2d_condition_entry(), controlnet_entry()};
  return entries;
}

const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : model_registry())
    if (e.name == name) return e;
  CXR_FAIL("unknown model '", name, "' (known models: ", names(model_registry()), ")");
}

std::unique_ptr<RunnableModel> build_model(const std::string& name, JsonConfig config) {
  const ModelEntry& entry = find_model(name);
  std::unique_ptr<RunnableModel> model = entry.build(config);
  config.check_all_used();
  return model;
}

void check_inputs(const ModelEntry& entry, const TensorMap& inputs) {
  std::vector<std::string> missing, unexpected;
  for (const auto& d : entry.inputs)
    if (!inputs.count(d.name)) missing.push_back(d.name);
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const auto* list : {&entry.inputs, &entry.optional_inputs})
      for (const auto& d : *list) known = known || d.name == name;
    if (!known) unexpected.push_back(name);
  }
  if (missing.empty() && unexpected.empty()) return;
  std::ostringstream msg;
  msg << entry.name << ": ";
  if (!missing.empty()) {
    msg << "missing input" << (missing.size() > 1 ? "s" : "");
    for (const auto& n : missing) msg << " '" << n << "'";
    msg << "; ";
  }
  if (!unexpected.empty()) {
    msg << "unexpected input" << (unexpected.size() > 1 ? "s" : "");
    for (const auto& n : unexpected) msg << " '" << n << "'";
    msg << "; ";
  }
  msg << "expected " << doc_names(entry.inputs);
  if (!entry.optional_inputs.empty())
    msg << " (optional: " << doc_names(entry.optional_inputs) << ")";
  CXR_FAIL(msg.str());
}

std::string model_help(const ModelEntry& entry) {
  std::ostringstream os;
  os << entry.name << ": " << entry.summary << "\n  config keys:\n";
  for (const auto& k : entry.config_keys) os << "    " << k << "\n";
  auto list = [&](const char* title, const std::vector<TensorDoc>& docs) {
    if (docs.empty()) return;
    os << "  " << title << ":\n";
    for (const auto& d : docs) os << "    " << d.name << "  " << d.description << "\n";
  };
  list("inputs", entry.inputs);
  list("optional inputs", entry.optional_inputs);
  list("outputs", entry.outputs);
  return os.str();
}

}  // namespace cxr::models
