// ControlNetModel as diffusers 0.42 (controlnets/controlnet.py): config, conditioning embedding,
// from_unet and the forward pass (see controlnet.h). The encoder blocks are the UNet's
// (build_down_blocks, build_mid_block, run_down_blocks, run_mid_block of unet2d_condition.h).
#include "models/controlnet.h"

#include "autograd/elementwise.h"  // add, mul, silu
#include "autograd/views.h"        // to
#include "nn/init.h"

namespace cxr::models {

namespace {

const char* const kModel = "ControlNetModel";

// Keys of ControlNetModel.__init__ that configure the encoder: read by UNet2DConditionConfig.
const char* const kEncoderKeys[] = {"in_channels",
                                    "flip_sin_to_cos",
                                    "freq_shift",
                                    "down_block_types",
                                    "mid_block_type",
                                    "only_cross_attention",
                                    "block_out_channels",
                                    "layers_per_block",
                                    "downsample_padding",
                                    "mid_block_scale_factor",
                                    "act_fn",
                                    "norm_num_groups",
                                    "norm_eps",
                                    "cross_attention_dim",
                                    "transformer_layers_per_block",
                                    "encoder_hid_dim",
                                    "encoder_hid_dim_type",
                                    "attention_head_dim",
                                    "num_attention_heads",
                                    "use_linear_projection",
                                    "class_embed_type",
                                    "addition_embed_type",
                                    "addition_time_embed_dim",
                                    "num_class_embeds",
                                    "upcast_attention",
                                    "resnet_time_scale_shift",
                                    "projection_class_embeddings_input_dim",
                                    "addition_embed_type_num_heads"};

std::string undefined_or(const Tensor& t) {
  return t.defined() ? describe(t) : std::string("undefined");
}

// The up block type mirroring a down block type (a ControlNet config has no up path; the UNet
// config it is read into needs one).
std::string mirrored_up_type(const std::string& down) {
  if (down == "CrossAttnDownBlock2D") return "CrossAttnUpBlock2D";
  if (down == "DownBlock2D") return "UpBlock2D";
  return down;  // rejected by validate() as a down block type
}

// Up block i mirrors down block n-1-i.
std::vector<std::string> mirrored_up_types(const std::vector<std::string>& down) {
  std::vector<std::string> up;
  for (auto it = down.rbegin(); it != down.rend(); ++it) up.push_back(mirrored_up_type(*it));
  return up;
}

// A key of an option we do not implement: absent or `allowed`, else an error naming key and value.
void require_value(JsonConfig& json, const std::string& key, const nlohmann::json& allowed) {
  json.ignore({key});
  auto it = json.json().find(key);
  CXR_CHECK(it == json.json().end() || *it == allowed, kModel, " config (", json.source(), "): '",
            key, "' = ", it == json.json().end() ? "" : it->dump(), " is not supported (only ",
            allowed.dump(), ")");
}

std::shared_ptr<nn::Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return std::make_shared<nn::Conv2d>(in, out, 3,
                                      nn::Conv2dOptions{.stride = stride, .padding = 1});
}

std::shared_ptr<nn::Conv2d> conv1x1(int64_t channels) {
  return std::make_shared<nn::Conv2d>(channels, channels, 1);
}

}  // namespace

// ---- ControlNetConfig ----

ControlNetConfig ControlNetConfig::stable_diffusion_v1() {
  return from_unet(UNet2DConditionConfig::stable_diffusion_v1());
}

ControlNetConfig ControlNetConfig::from_unet(
    const UNet2DConditionConfig& unet, std::vector<int64_t> conditioning_embedding_out_channels,
    int64_t conditioning_channels) {
  // diffusers copies the encoder keys only; conv_in and time_embedding must then have the
  // UNet's shapes for the weights to copy.
  CXR_CHECK(unet.conv_in_kernel == 3 && !unet.time_embedding_dim, kModel,
            ".from_unet: the UNet's conv_in_kernel (", unet.conv_in_kernel,
            ") must be 3 and its time_embedding_dim unset (a ControlNet has neither option)");
  ControlNetConfig c;
  c.unet = unet;
  c.unet.up_block_types = mirrored_up_types(unet.down_block_types);
  c.unet.center_input_sample = false;  // not an option of ControlNetModel
  c.unet.dropout = 0;
  c.conditioning_embedding_out_channels = std::move(conditioning_embedding_out_channels);
  c.conditioning_channels = conditioning_channels;
  c.validate();
  return c;
}

ControlNetConfig ControlNetConfig::from_json(JsonConfig& json) {
  ControlNetConfig c;
  json.ignore({"_class_name", "_diffusers_version", "_name_or_path"});
  c.conditioning_channels = json.get_int("conditioning_channels", c.conditioning_channels);
  c.conditioning_embedding_out_channels = json.get_int_list("conditioning_embedding_out_channels",
                                                            c.conditioning_embedding_out_channels);
  require_value(json, "controlnet_conditioning_channel_order", "rgb");
  require_value(json, "global_pool_conditions", false);
  // ControlNetModel takes one layers_per_block for every block (no list).
  json.get_int("layers_per_block", 2);
  // The encoder keys are the UNet's: its parser reads (and rejects) them from a copy.
  nlohmann::json encoder = nlohmann::json::object();
  for (const char* key : kEncoderKeys) {
    json.ignore({key});
    if (json.json().contains(key)) encoder[key] = json.json()[key];
  }
  json.check_all_used();
  // The UNet config needs an up path: the mirror of the down path.
  JsonConfig types(encoder, json.source());
  encoder["up_block_types"] =
      mirrored_up_types(types.get_string_list("down_block_types", c.unet.down_block_types));
  JsonConfig unet_json(encoder, json.source());
  c.unet = UNet2DConditionConfig::from_json(unet_json);
  c.validate();
  return c;
}

ControlNetConfig ControlNetConfig::from_json_file(const std::string& path) {
  JsonConfig json = JsonConfig::from_file(path);
  return from_json(json);
}

nlohmann::json ControlNetConfig::to_json() const {
  const nlohmann::json u = unet.to_json();
  nlohmann::json j = {{"_class_name", kModel},
                      {"conditioning_channels", conditioning_channels},
                      {"conditioning_embedding_out_channels", conditioning_embedding_out_channels},
                      {"controlnet_conditioning_channel_order", "rgb"},
                      {"global_pool_conditions", false}};
  for (const char* key : kEncoderKeys)
    if (u.contains(key)) j[key] = u[key];
  // The options we do not implement, at the defaults diffusers writes.
  for (const char* key : {"addition_embed_type", "addition_time_embed_dim", "class_embed_type",
                          "encoder_hid_dim", "encoder_hid_dim_type", "num_attention_heads",
                          "num_class_embeds", "projection_class_embeddings_input_dim"})
    j[key] = nullptr;
  j["addition_embed_type_num_heads"] = 64;
  j["only_cross_attention"] = false;
  j["upcast_attention"] = false;
  j["resnet_time_scale_shift"] = "default";
  return j;
}

void ControlNetConfig::validate() const {
  unet.validate();
  for (int64_t layers : unet.layers_per_block)
    CXR_CHECK(layers == unet.layers_per_block[0], kModel,
              ": layers_per_block must be the same for every block (one int in diffusers), got ",
              layers, " and ", unet.layers_per_block[0]);
  CXR_CHECK(unet.conv_in_kernel == 3 && !unet.time_embedding_dim && !unet.center_input_sample &&
                unet.dropout == 0,
            kModel,
            ": conv_in_kernel must be 3, time_embedding_dim unset, center_input_sample "
            "false and dropout 0 (not options of a ControlNet)");
  CXR_CHECK(conditioning_channels > 0, kModel, ": conditioning_channels must be positive, got ",
            conditioning_channels);
  CXR_CHECK(!conditioning_embedding_out_channels.empty(), kModel,
            ": conditioning_embedding_out_channels must not be empty");
  for (int64_t ch : conditioning_embedding_out_channels)
    CXR_CHECK(ch > 0, kModel, ": conditioning_embedding_out_channels must be positive, got ", ch);
}

int64_t ControlNetConfig::conditioning_downscale() const {
  return int64_t(1) << (conditioning_embedding_out_channels.size() - 1);
}

// ---- ControlNetConditioningEmbedding ----

ControlNetConditioningEmbedding::ControlNetConditioningEmbedding(
    int64_t embedding_channels, int64_t conditioning_channels,
    const std::vector<int64_t>& block_out_channels)
    : Module("ControlNetConditioningEmbedding") {
  const auto& ch = block_out_channels;
  conv_in = register_module("conv_in", conv3x3(conditioning_channels, ch.at(0)));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i + 1 < ch.size(); ++i) {
    blocks->push_back(conv3x3(ch[i], ch[i]));
    blocks->push_back(conv3x3(ch[i], ch[i + 1], 2));
  }
  conv_out =
      register_module("conv_out", nn::init::zero_module(conv3x3(ch.back(), embedding_channels)));
}

Tensor ControlNetConditioningEmbedding::forward(const Tensor& conditioning) {
  Tensor e = silu(conv_in->forward(conditioning));
  for (size_t i = 0; i < blocks->size(); ++i) e = silu(blocks->at<nn::Conv2d>(i)->forward(e));
  return conv_out->forward(e);
}

// ---- ControlNetModel ----

ControlNetModel::ControlNetModel(const ControlNetConfig& config) : Module(kModel), config_(config) {
  config_.validate();
  const UNet2DConditionConfig& u = config_.unet;
  const auto& ch = u.block_out_channels;
  // Registration order of controlnet.py: conv_in, time_proj, time_embedding,
  // controlnet_cond_embedding, down_blocks, controlnet_down_blocks, controlnet_mid_block,
  // mid_block.
  conv_in = register_module("conv_in", conv3x3(u.in_channels, ch[0]));
  time_proj = register_module("time_proj",
                              std::make_shared<Timesteps>(ch[0], u.flip_sin_to_cos, u.freq_shift));
  time_embedding = register_module("time_embedding",
                                   std::make_shared<TimestepEmbedding>(ch[0], u.time_embed_dim()));
  controlnet_cond_embedding = register_module(
      "controlnet_cond_embedding",
      std::make_shared<ControlNetConditioningEmbedding>(
          ch[0], config_.conditioning_channels, config_.conditioning_embedding_out_channels));
  down_blocks = register_module("down_blocks", build_down_blocks(u));
  // One zero conv per skip tensor: conv_in's, each layer's, each downsampler's.
  controlnet_down_blocks =
      register_module("controlnet_down_blocks", std::make_shared<nn::ModuleList>());
  controlnet_down_blocks->push_back(conv1x1(ch[0]));
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t convs = u.layers_per_block[i] + (i + 1 < ch.size() ? 1 : 0);
    for (int64_t j = 0; j < convs; ++j) controlnet_down_blocks->push_back(conv1x1(ch[i]));
  }
  controlnet_mid_block = register_module("controlnet_mid_block", conv1x1(ch.back()));
  mid_block = register_module("mid_block", build_mid_block(u));
  zero_convs();
}

void ControlNetModel::zero_convs() {
  nn::init::zero_module(*controlnet_cond_embedding->conv_out);
  nn::init::zero_module(*controlnet_down_blocks);
  nn::init::zero_module(*controlnet_mid_block);
}

void ControlNetModel::reset_parameters(Generator& gen) {
  apply([&gen](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) conv->reset_parameters(gen);
    if (auto* linear = dynamic_cast<nn::Linear*>(&m)) linear->reset_parameters(gen);
  });
  zero_convs();
}

std::shared_ptr<ControlNetModel> ControlNetModel::from_unet(
    const UNet2DConditionModel& unet, std::vector<int64_t> conditioning_embedding_out_channels,
    int64_t conditioning_channels) {
  auto net = std::make_shared<ControlNetModel>(ControlNetConfig::from_unet(
      unet.config(), std::move(conditioning_embedding_out_channels), conditioning_channels));
  // The encoder's tensors under the same names in both models.
  nn::StateDict encoder;
  for (const auto& [key, t] : unet.state_dict())
    for (const char* prefix : {"conv_in.", "time_embedding.", "down_blocks.", "mid_block."})
      if (key.rfind(prefix, 0) == 0) encoder[key] = t;
  const nn::LoadReport report = net->load_state_dict(encoder, /*strict=*/false);
  for (const std::string& key : report.missing_keys)
    CXR_CHECK(key.rfind("controlnet_", 0) == 0, kModel, ".from_unet: the UNet lacks ", key);
  CXR_CHECK(report.unexpected_keys.empty() && report.shape_mismatches.empty(), kModel,
            ".from_unet: the UNet's encoder does not match: ", report.str());
  return net;
}

ControlNetOutput ControlNetModel::forward(const Tensor& sample, const Tensor& timestep,
                                          const Tensor& encoder_hidden_states,
                                          const Tensor& controlnet_cond,
                                          double conditioning_scale) {
  const UNet2DConditionConfig& u = config_.unet;
  CXR_CHECK(sample.defined() && sample.dim() == 4 && sample.size(1) == u.in_channels, kModel,
            ": expected sample [B, ", u.in_channels, ", H, W], got ", undefined_or(sample));
  const int64_t batch = sample.size(0);
  CXR_CHECK(encoder_hidden_states.defined() && encoder_hidden_states.dim() == 3 &&
                encoder_hidden_states.size(0) == batch &&
                encoder_hidden_states.size(2) == u.cross_attention_dim,
            kModel, ": expected encoder_hidden_states [", batch, ", S, ", u.cross_attention_dim,
            "], got ", undefined_or(encoder_hidden_states));
  const int64_t f = config_.conditioning_downscale();
  CXR_CHECK(
      controlnet_cond.defined() && controlnet_cond.dim() == 4 && controlnet_cond.size(0) == batch &&
          controlnet_cond.size(1) == config_.conditioning_channels,
      kModel, ": expected controlnet_cond [", batch, ", ", config_.conditioning_channels, ", ", f,
      " H, ", f, " W] (", f, "x the latent size), got ", undefined_or(controlnet_cond));

  const Tensor t = broadcast_timesteps(timestep, batch, sample.device(), kModel);
  const Tensor emb = time_embedding->forward(cxr::to(time_proj->forward(t), sample.dtype()));
  const Tensor h = conv_in->forward(sample);
  const Tensor hint = controlnet_cond_embedding->forward(controlnet_cond);
  CXR_CHECK(hint.sizes() == h.sizes(), kModel, ": controlnet_cond ", describe(controlnet_cond),
            " embeds to ", describe(hint), ", not the latent's ", describe(h),
            " (the cond image must be ", f, "x the latent size ", sample.size(2), " x ",
            sample.size(3), ")");
  const std::vector<Tensor> skips = run_down_blocks(*down_blocks, add(h, hint), emb,
                                                    encoder_hidden_states, gradient_checkpointing);
  const Tensor mid =
      run_mid_block(*mid_block, skips.back(), emb, encoder_hidden_states, gradient_checkpointing);
  ControlNetOutput out;
  for (size_t i = 0; i < skips.size(); ++i)
    out.down_block_res_samples.push_back(
        mul(controlnet_down_blocks->at<nn::Conv2d>(i)->forward(skips[i]), conditioning_scale));
  out.mid_block_res_sample = mul(controlnet_mid_block->forward(mid), conditioning_scale);
  return out;
}

}  // namespace cxr::models
