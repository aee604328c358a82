// UNet2DConditionModel as diffusers 0.42 (unets/unet_2d_condition.py): config, the shared encoder
// helpers, and the model (see unet2d_condition.h).
#include "models/unet2d_condition.h"

#include <algorithm>
#include <sstream>

#include "autograd/checkpoint.h"
#include "autograd/elementwise.h"  // add, mul, sub
#include "autograd/grad_mode.h"
#include "autograd/views.h"   // expand, reshape, to
#include "tensor/creation.h"  // raw::to (device)

namespace cxr::models {

namespace {

const char* const kCrossDown = "CrossAttnDownBlock2D";
const char* const kDown = "DownBlock2D";
const char* const kCrossUp = "CrossAttnUpBlock2D";
const char* const kUp = "UpBlock2D";
const char* const kMid = "UNetMidBlock2DCrossAttn";

std::string undefined_or(const Tensor& t) {
  return t.defined() ? describe(t) : std::string("undefined");
}

std::string join(const std::vector<int64_t>& values) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  os << ")";
  return os.str();
}

// An int (repeated for every block) or a list of ints, as diffusers accepts for per-block keys;
// `fallback` for every block when absent or null.
std::vector<int64_t> per_block(JsonConfig& json, const std::string& key, int64_t fallback,
                               size_t blocks) {
  auto it = json.json().find(key);
  if (it != json.json().end() && it->is_array()) return json.get_int_list(key, {});
  return std::vector<int64_t>(blocks, json.get_int(key, fallback));
}

// A key of an architecture option we do not implement: absent or equal to diffusers' default
// (`allowed`, several when diffusers treats them alike), else an error naming key and value.
void require_default(JsonConfig& json, const std::string& key,
                     const std::vector<nlohmann::json>& allowed) {
  json.ignore({key});
  auto it = json.json().find(key);
  if (it == json.json().end()) return;
  for (const auto& a : allowed)
    if (*it == a) return;
  std::string expected;
  for (const auto& a : allowed) expected += (expected.empty() ? "" : " or ") + a.dump();
  CXR_FAIL("UNet2DConditionModel config (", json.source(), "): '", key, "' = ", it->dump(),
           " is not supported (only ", expected, ")");
}

// fn(inputs), or its checkpointed form (recomputed in backward, `block`'s parameters as the
// node's) when `checkpointing` and grad mode is on.
std::vector<Tensor> run_block(bool checkpointing, nn::Module& block,
                              const autograd::CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  if (!checkpointing || !autograd::GradMode::is_enabled()) return fn(inputs);
  return autograd::checkpoint(fn, inputs, block.parameters());
}

}  // namespace

// ---- UNet2DConditionConfig ----

UNet2DConditionConfig UNet2DConditionConfig::stable_diffusion_v1() {
  UNet2DConditionConfig c;
  c.cross_attention_dim = 768;
  c.sample_size = {64};  // 512 px through the SD VAE
  return c;
}

UNet2DConditionConfig UNet2DConditionConfig::from_json(JsonConfig& json) {
  UNet2DConditionConfig c;
  json.ignore({"_class_name", "_diffusers_version", "_name_or_path"});
  if (json.has("sample_size")) {
    const nlohmann::json& v = json.json().at("sample_size");
    c.sample_size = v.is_array() ? json.get_int_list("sample_size", {})
                                 : std::vector<int64_t>{json.get_int("sample_size", 0)};
    CXR_CHECK(!c.sample_size.empty() && c.sample_size.size() <= 2 &&
                  *std::min_element(c.sample_size.begin(), c.sample_size.end()) > 0,
              json.source(), ": key 'sample_size' must be a positive int or [height, width], got ",
              v.dump());
  } else {
    json.ignore({"sample_size"});  // may be null
  }
  c.in_channels = json.get_int("in_channels", c.in_channels);
  c.out_channels = json.get_int("out_channels", c.out_channels);
  c.center_input_sample = json.get_bool("center_input_sample", c.center_input_sample);
  c.flip_sin_to_cos = json.get_bool("flip_sin_to_cos", c.flip_sin_to_cos);
  c.freq_shift = json.get_double("freq_shift", c.freq_shift);
  c.down_block_types = json.get_string_list("down_block_types", c.down_block_types);
  c.up_block_types = json.get_string_list("up_block_types", c.up_block_types);
  c.block_out_channels = json.get_int_list("block_out_channels", c.block_out_channels);
  const size_t n = c.block_out_channels.size();
  c.layers_per_block = per_block(json, "layers_per_block", 2, n);
  c.transformer_layers_per_block = per_block(json, "transformer_layers_per_block", 1, n);
  c.attention_head_dim = per_block(json, "attention_head_dim", 8, n);
  c.downsample_padding = json.get_int("downsample_padding", c.downsample_padding);
  c.mid_block_scale_factor = json.get_double("mid_block_scale_factor", c.mid_block_scale_factor);
  c.dropout = json.get_double("dropout", c.dropout);
  c.norm_eps = json.get_double("norm_eps", c.norm_eps);
  c.cross_attention_dim = json.get_int("cross_attention_dim", c.cross_attention_dim);
  c.use_linear_projection = json.get_bool("use_linear_projection", c.use_linear_projection);
  json.ignore({"time_embedding_dim"});  // may be null
  if (json.has("time_embedding_dim")) c.time_embedding_dim = json.get_int("time_embedding_dim", 0);
  c.conv_in_kernel = json.get_int("conv_in_kernel", c.conv_in_kernel);
  c.conv_out_kernel = json.get_int("conv_out_kernel", c.conv_out_kernel);
  // null norm_num_groups (no conv_norm_out, groups picked per block) is not supported.
  auto groups = json.json().find("norm_num_groups");
  CXR_CHECK(groups == json.json().end() || !groups->is_null(), "UNet2DConditionModel config (",
            json.source(), "): 'norm_num_groups' = null is not supported (only an integer)");
  c.norm_num_groups = json.get_int("norm_num_groups", c.norm_num_groups);
  require_default(json, "mid_block_type", {kMid});
  require_default(json, "act_fn", {"silu", "swish"});
  // Options of UNet2DConditionModel.__init__ that we do not implement: only their defaults.
  const nlohmann::json null = nullptr;
  for (const char* key :
       {"num_attention_heads", "reverse_transformer_layers_per_block", "encoder_hid_dim",
        "encoder_hid_dim_type", "class_embed_type", "addition_embed_type",
        "addition_time_embed_dim", "num_class_embeds", "time_embedding_act_fn", "timestep_post_act",
        "time_cond_proj_dim", "projection_class_embeddings_input_dim", "cross_attention_norm"})
    require_default(json, key, {null});
  for (const char* key : {"dual_cross_attention", "only_cross_attention", "upcast_attention",
                          "resnet_skip_time_act", "class_embeddings_concat"})
    require_default(json, key, {false});
  require_default(json, "mid_block_only_cross_attention", {null, false});
  require_default(json, "resnet_time_scale_shift", {"default"});
  require_default(json, "resnet_out_scale_factor", {1.0});
  require_default(json, "time_embedding_type", {"positional"});
  require_default(json, "attention_type", {"default"});
  // Only used by an addition embedding, which must be absent.
  json.ignore({"addition_embed_type_num_heads"});
  json.check_all_used();
  c.validate();
  return c;
}

UNet2DConditionConfig UNet2DConditionConfig::from_json_file(const std::string& path) {
  JsonConfig json = JsonConfig::from_file(path);
  return from_json(json);
}

nlohmann::json UNet2DConditionConfig::to_json() const {
  nlohmann::json j = {{"_class_name", "UNet2DConditionModel"},
                      {"act_fn", "silu"},
                      {"attention_head_dim", attention_head_dim},
                      {"block_out_channels", block_out_channels},
                      {"center_input_sample", center_input_sample},
                      {"conv_in_kernel", conv_in_kernel},
                      {"conv_out_kernel", conv_out_kernel},
                      {"cross_attention_dim", cross_attention_dim},
                      {"down_block_types", down_block_types},
                      {"downsample_padding", downsample_padding},
                      {"dropout", dropout},
                      {"flip_sin_to_cos", flip_sin_to_cos},
                      {"freq_shift", freq_shift},
                      {"in_channels", in_channels},
                      {"layers_per_block", layers_per_block},
                      {"mid_block_scale_factor", mid_block_scale_factor},
                      {"mid_block_type", kMid},
                      {"norm_eps", norm_eps},
                      {"norm_num_groups", norm_num_groups},
                      {"out_channels", out_channels},
                      {"time_embedding_dim", nullptr},
                      {"transformer_layers_per_block", transformer_layers_per_block},
                      {"up_block_types", up_block_types},
                      {"use_linear_projection", use_linear_projection}};
  if (time_embedding_dim) j["time_embedding_dim"] = *time_embedding_dim;
  if (sample_size.size() == 1) j["sample_size"] = sample_size[0];
  if (sample_size.size() == 2) j["sample_size"] = sample_size;
  // Per-block lists of one value are written as that int, as diffusers' configs have them (its
  // ControlNetModel.from_unet needs an int layers_per_block).
  for (const char* key :
       {"layers_per_block", "transformer_layers_per_block", "attention_head_dim"}) {
    const std::vector<int64_t> list = j[key];
    if (std::all_of(list.begin(), list.end(), [&](int64_t v) { return v == list[0]; }))
      j[key] = list[0];
  }
  return j;
}

void UNet2DConditionConfig::validate() const {
  const size_t n = block_out_channels.size();
  CXR_CHECK(n > 0, "UNet2DConditionModel: block_out_channels must not be empty");
  CXR_CHECK(down_block_types.size() == n && up_block_types.size() == n,
            "UNet2DConditionModel: down_block_types (", down_block_types.size(),
            ") and up_block_types (", up_block_types.size(),
            ") must list one block per block_out_channels entry (", n, ")");
  for (const auto& [name, list] : {std::pair{"layers_per_block", &layers_per_block},
                                   {"transformer_layers_per_block", &transformer_layers_per_block},
                                   {"attention_head_dim", &attention_head_dim}}) {
    CXR_CHECK(list->size() == n, "UNet2DConditionModel: ", name, " ", join(*list), " must have ", n,
              " entries (one per block)");
    for (int64_t v : *list)
      CXR_CHECK(v > 0, "UNet2DConditionModel: ", name, " ", join(*list), " must be positive");
  }
  for (const auto& t : down_block_types)
    CXR_CHECK(t == kCrossDown || t == kDown, "UNet2DConditionModel: down block type \"", t,
              "\" is not supported (only \"", kCrossDown, "\", \"", kDown, "\")");
  for (const auto& t : up_block_types)
    CXR_CHECK(t == kCrossUp || t == kUp, "UNet2DConditionModel: up block type \"", t,
              "\" is not supported (only \"", kCrossUp, "\", \"", kUp, "\")");
  CXR_CHECK(in_channels > 0 && out_channels > 0, "UNet2DConditionModel: in_channels (", in_channels,
            ") and out_channels (", out_channels, ") must be positive");
  CXR_CHECK(norm_num_groups > 0, "UNet2DConditionModel: norm_num_groups must be positive, got ",
            norm_num_groups);
  for (size_t i = 0; i < n; ++i) {
    const int64_t ch = block_out_channels[i];
    CXR_CHECK(ch > 0 && ch % norm_num_groups == 0, "UNet2DConditionModel: block_out_channels ",
              join(block_out_channels), " must be positive multiples of norm_num_groups (",
              norm_num_groups, ")");
    // Down block i, up block n-1-i and (for the last) the mid block attend at `ch` with
    // attention_head_dim[i] heads.
    const bool attends =
        down_block_types[i] == kCrossDown || up_block_types[n - 1 - i] == kCrossUp || i + 1 == n;
    CXR_CHECK(!attends || ch % attention_head_dim[i] == 0, "UNet2DConditionModel: block ", i,
              " has ", ch, " channels, not divisible by its attention_head_dim (head count) ",
              attention_head_dim[i]);
  }
  CXR_CHECK(cross_attention_dim > 0,
            "UNet2DConditionModel: cross_attention_dim must be positive, got ",
            cross_attention_dim);
  CXR_CHECK(time_embed_dim() > 0, "UNet2DConditionModel: time_embedding_dim must be positive, got ",
            time_embed_dim());
  CXR_CHECK(downsample_padding >= 0, "UNet2DConditionModel: downsample_padding must be >= 0, got ",
            downsample_padding);
  CXR_CHECK(mid_block_scale_factor != 0,
            "UNet2DConditionModel: mid_block_scale_factor must not be 0");
  for (int64_t k : {conv_in_kernel, conv_out_kernel})
    CXR_CHECK(k > 0 && k % 2 == 1, "UNet2DConditionModel: conv_in_kernel (", conv_in_kernel,
              ") and conv_out_kernel (", conv_out_kernel, ") must be odd and positive");
}

int64_t UNet2DConditionConfig::time_embed_dim() const {
  return time_embedding_dim.value_or(block_out_channels.at(0) * 4);
}

Transformer2DOptions UNet2DConditionConfig::attention_options(int64_t heads,
                                                              int64_t transformer_layers) const {
  return {.num_attention_heads = heads,
          .num_layers = transformer_layers,
          .cross_attention_dim = cross_attention_dim,
          .norm_num_groups = norm_num_groups,
          .use_linear_projection = use_linear_projection};
}

UNetBlockOptions UNet2DConditionConfig::block_options(int64_t num_layers, bool add_sample) const {
  return {.num_layers = num_layers,
          .temb_channels = time_embed_dim(),
          .groups = norm_num_groups,
          .eps = norm_eps,
          .dropout = dropout,
          .add_sample = add_sample,
          .downsample_padding = downsample_padding};
}

// ---- shared encoder helpers ----

std::shared_ptr<nn::ModuleList> build_down_blocks(const UNet2DConditionConfig& c) {
  auto blocks = std::make_shared<nn::ModuleList>();
  const auto& ch = c.block_out_channels;
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t in = i == 0 ? ch[0] : ch[i - 1];
    const UNetBlockOptions o = c.block_options(c.layers_per_block[i], i + 1 < ch.size());
    if (c.down_block_types[i] == kCrossDown)
      blocks->push_back(std::make_shared<CrossAttnDownBlock2D>(
          in, ch[i], o,
          c.attention_options(c.attention_head_dim[i], c.transformer_layers_per_block[i])));
    else
      blocks->push_back(std::make_shared<DownBlock2D>(in, ch[i], o));
  }
  return blocks;
}

std::shared_ptr<UNetMidBlock2DCrossAttn> build_mid_block(const UNet2DConditionConfig& c) {
  UNetBlockOptions o = c.block_options(1, false);
  o.output_scale_factor = c.mid_block_scale_factor;
  return std::make_shared<UNetMidBlock2DCrossAttn>(
      c.block_out_channels.back(), o,
      c.attention_options(c.attention_head_dim.back(), c.transformer_layers_per_block.back()));
}

Tensor broadcast_timesteps(const Tensor& timestep, int64_t batch, Device device,
                           const std::string& model) {
  CXR_CHECK(timestep.defined() && timestep.dim() <= 1 &&
                (timestep.numel() == 1 || (timestep.dim() == 1 && timestep.size(0) == batch)),
            model, ": expected timestep as a scalar tensor, [1] or [", batch, "], got ",
            undefined_or(timestep));
  const Tensor t = timestep.device() == device ? timestep : raw::to(timestep, device);
  return expand(reshape(t, {timestep.numel()}), {batch});
}

std::vector<Tensor> run_down_blocks(nn::ModuleList& down_blocks, const Tensor& h, const Tensor& emb,
                                    const Tensor& encoder_hidden_states, bool checkpointing) {
  std::vector<Tensor> skips = {h};
  for (size_t i = 0; i < down_blocks.size(); ++i) {
    auto block = down_blocks.at<UNetDownBlock>(i);
    const std::vector<Tensor> states = run_block(
        checkpointing, *block,
        [block](const std::vector<Tensor>& in) { return block->forward(in[0], in[1], in[2]); },
        {skips.back(), emb, encoder_hidden_states});
    skips.insert(skips.end(), states.begin(), states.end());
  }
  return skips;
}

Tensor run_mid_block(UNetMidBlock2DCrossAttn& mid_block, const Tensor& h, const Tensor& emb,
                     const Tensor& encoder_hidden_states, bool checkpointing) {
  return run_block(checkpointing, mid_block,
                   [&mid_block](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{mid_block.forward(in[0], in[1], in[2])};
                   },
                   {h, emb, encoder_hidden_states})[0];
}

// ---- UNet2DConditionModel ----

UNet2DConditionModel::UNet2DConditionModel(const UNet2DConditionConfig& config)
    : Module("UNet2DConditionModel"), config_(config) {
  config_.validate();
  const auto& c = config_;
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  // Registration order of unet_2d_condition.py: conv_in, time_proj, time_embedding, down_blocks,
  // up_blocks, mid_block, conv_norm_out, conv_out.
  conv_in = register_module(
      "conv_in",
      std::make_shared<nn::Conv2d>(c.in_channels, ch[0], c.conv_in_kernel,
                                   nn::Conv2dOptions{.padding = (c.conv_in_kernel - 1) / 2}));
  time_proj = register_module("time_proj",
                              std::make_shared<Timesteps>(ch[0], c.flip_sin_to_cos, c.freq_shift));
  time_embedding = register_module("time_embedding",
                                   std::make_shared<TimestepEmbedding>(ch[0], c.time_embed_dim()));
  down_blocks = register_module("down_blocks", build_down_blocks(c));
  up_blocks = register_module("up_blocks", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i < n; ++i) {
    // Up block i mirrors down block n-1-i.
    const size_t r = n - 1 - i;
    const int64_t out = ch[r];
    const int64_t prev = ch[i == 0 ? n - 1 : r + 1];
    const int64_t in = ch[r == 0 ? 0 : r - 1];
    const UNetBlockOptions o = c.block_options(c.layers_per_block[r] + 1, i + 1 < n);
    if (c.up_block_types[i] == kCrossUp)
      up_blocks->push_back(std::make_shared<CrossAttnUpBlock2D>(
          in, prev, out, o,
          c.attention_options(c.attention_head_dim[r], c.transformer_layers_per_block[r])));
    else
      up_blocks->push_back(std::make_shared<UpBlock2D>(in, prev, out, o));
  }
  mid_block = register_module("mid_block", build_mid_block(c));
  conv_norm_out = register_module(
      "conv_norm_out", std::make_shared<nn::GroupNorm>(c.norm_num_groups, ch[0], c.norm_eps));
  conv_out = register_module(
      "conv_out",
      std::make_shared<nn::Conv2d>(ch[0], c.out_channels, c.conv_out_kernel,
                                   nn::Conv2dOptions{.padding = (c.conv_out_kernel - 1) / 2}));
}

void UNet2DConditionModel::reset_parameters(Generator& gen) {
  // PyTorch's default init of every conv and linear layer, in registration order from `gen`
  // (norms start at weight 1, bias 0 and keep that).
  apply([&gen](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) conv->reset_parameters(gen);
    if (auto* linear = dynamic_cast<nn::Linear*>(&m)) linear->reset_parameters(gen);
  });
}

Tensor UNet2DConditionModel::time_embed(const Tensor& timestep, int64_t batch, DType dtype,
                                        Device device) {
  const Tensor t = broadcast_timesteps(timestep, batch, device, "UNet2DConditionModel");
  return time_embedding->forward(cxr::to(time_proj->forward(t), dtype));
}

size_t UNet2DConditionModel::num_down_residuals() const {
  size_t count = 1;
  for (size_t i = 0; i < down_blocks->size(); ++i) {
    auto block = down_blocks->at<UNetDownBlock>(i);
    count += block->resnets->size() + (block->downsamplers ? 1 : 0);
  }
  return count;
}

int64_t UNet2DConditionModel::num_upsamplers() const {
  return static_cast<int64_t>(config_.num_blocks()) - 1;
}

Tensor UNet2DConditionModel::forward(const Tensor& sample, const Tensor& timestep,
                                     const Tensor& encoder_hidden_states,
                                     const std::vector<Tensor>& down_residuals,
                                     const Tensor& mid_residual) {
  const auto& c = config_;
  CXR_CHECK(sample.defined() && sample.dim() == 4 && sample.size(1) == c.in_channels,
            "UNet2DConditionModel: expected sample [B, ", c.in_channels, ", H, W], got ",
            undefined_or(sample));
  const int64_t batch = sample.size(0);
  CXR_CHECK(encoder_hidden_states.defined() && encoder_hidden_states.dim() == 3 &&
                encoder_hidden_states.size(0) == batch &&
                encoder_hidden_states.size(2) == c.cross_attention_dim,
            "UNet2DConditionModel: expected encoder_hidden_states [", batch, ", S, ",
            c.cross_attention_dim, "], got ", undefined_or(encoder_hidden_states));
  const bool controlnet = !down_residuals.empty();
  CXR_CHECK(controlnet == mid_residual.defined(),
            "UNet2DConditionModel: down_block_additional_residuals (", down_residuals.size(),
            " given) and mid_block_additional_residual (",
            mid_residual.defined() ? "given" : "not given", ") go together (ControlNet)");
  CXR_CHECK(!controlnet || down_residuals.size() == num_down_residuals(),
            "UNet2DConditionModel: expected ", num_down_residuals(),
            " down_block_additional_residuals, got ", down_residuals.size());

  const Tensor emb = time_embed(timestep, batch, sample.dtype(), sample.device());
  const Tensor x = c.center_input_sample ? sub(mul(sample, 2.0), 1.0) : sample;
  std::vector<Tensor> skips = run_down_blocks(*down_blocks, conv_in->forward(x), emb,
                                              encoder_hidden_states, gradient_checkpointing);
  Tensor h = skips.back();  // the mid block's input is the down path's, before the residuals
  if (controlnet)
    for (size_t i = 0; i < skips.size(); ++i) {
      CXR_CHECK(down_residuals[i].defined() && down_residuals[i].sizes() == skips[i].sizes(),
                "UNet2DConditionModel: down_block_additional_residuals[", i, "] is ",
                undefined_or(down_residuals[i]), ", expected the skip tensor's shape ",
                describe(skips[i]));
      skips[i] = add(skips[i], down_residuals[i]);
    }
  h = run_mid_block(*mid_block, h, emb, encoder_hidden_states, gradient_checkpointing);
  if (controlnet) {
    CXR_CHECK(mid_residual.sizes() == h.sizes(),
              "UNet2DConditionModel: mid_block_additional_residual is ", describe(mid_residual),
              ", expected the mid block output's shape ", describe(h));
    h = add(h, mid_residual);
  }

  // Sizes that 2^num_upsamplers does not divide: each upsampler targets the next skip's size.
  const int64_t factor = int64_t(1) << num_upsamplers();
  const bool forward_upsample_size = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    auto block = up_blocks->at<UNetUpBlock>(i);
    const size_t n = block->resnets->size();
    std::vector<Tensor> inputs = {h, emb, encoder_hidden_states};
    inputs.insert(inputs.end(), skips.end() - static_cast<std::ptrdiff_t>(n), skips.end());
    skips.resize(skips.size() - n);
    std::optional<std::pair<int64_t, int64_t>> size;
    if (block->upsamplers && forward_upsample_size)
      size = std::pair{skips.back().size(2), skips.back().size(3)};
    h = run_block(
        gradient_checkpointing, *block,
        [block, size](const std::vector<Tensor>& in) {
          const std::vector<Tensor> block_skips(in.begin() + 3, in.end());
          return std::vector<Tensor>{block->forward(in[0], block_skips, in[1], in[2], size)};
        },
        inputs)[0];
  }
  return conv_out->forward(conv_norm_out->forward_silu(h));
}

}  // namespace cxr::models
