// AutoencoderKL as diffusers 0.42 (autoencoders/autoencoder_kl.py, vae.py): config, posterior,
// encoder, decoder and the model (see autoencoder_kl.h).
#include "models/autoencoder_kl.h"

#include <sstream>

#include "autograd/elementwise.h"  // clamp, exp, mul, add, sub, square
#include "autograd/indexing.h"     // chunk
#include "autograd/reduce.h"       // sum
#include "tensor/ops.h"            // raw::to

namespace cxr::models {

namespace {

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

// Every entry of `types` must be `expected`, one per block.
void check_block_types(const std::vector<std::string>& types, const std::string& key,
                       const std::string& expected, size_t blocks, const std::string& source) {
  CXR_CHECK(types.size() == blocks, "AutoencoderKL config (", source, "): '", key, "' lists ",
            types.size(), " blocks but block_out_channels has ", blocks);
  for (const auto& t : types)
    CXR_CHECK(t == expected, "AutoencoderKL config (", source, "): '", key, "' entry \"", t,
              "\" is not supported (only \"", expected, "\")");
}

}  // namespace

// ---- AutoencoderKLConfig ----

AutoencoderKLConfig AutoencoderKLConfig::stable_diffusion() {
  AutoencoderKLConfig c;
  c.block_out_channels = {128, 256, 512, 512};
  c.layers_per_block = 2;
  return c;
}

AutoencoderKLConfig AutoencoderKLConfig::from_json(JsonConfig& json) {
  AutoencoderKLConfig c;
  json.ignore(
      {"_class_name", "_diffusers_version", "_name_or_path", "sample_size", "force_upcast"});
  c.in_channels = json.get_int("in_channels", c.in_channels);
  c.out_channels = json.get_int("out_channels", c.out_channels);
  c.latent_channels = json.get_int("latent_channels", c.latent_channels);
  c.block_out_channels = json.get_int_list("block_out_channels", c.block_out_channels);
  c.layers_per_block = json.get_int("layers_per_block", c.layers_per_block);
  c.norm_num_groups = json.get_int("norm_num_groups", c.norm_num_groups);
  c.use_quant_conv = json.get_bool("use_quant_conv", c.use_quant_conv);
  c.use_post_quant_conv = json.get_bool("use_post_quant_conv", c.use_post_quant_conv);
  c.mid_block_add_attention = json.get_bool("mid_block_add_attention", c.mid_block_add_attention);
  c.scaling_factor = json.get_double("scaling_factor", c.scaling_factor);
  if (json.has("shift_factor")) c.shift_factor = json.get_double("shift_factor", 0.0);
  c.latents_mean = json.get_double_list("latents_mean", {});
  c.latents_std = json.get_double_list("latents_std", {});
  // diffusers' defaults are one block of each type, matching its default block_out_channels.
  const size_t blocks = c.block_out_channels.size();
  check_block_types(json.get_string_list("down_block_types", {"DownEncoderBlock2D"}),
                    "down_block_types", "DownEncoderBlock2D", blocks, json.source());
  check_block_types(json.get_string_list("up_block_types", {"UpDecoderBlock2D"}), "up_block_types",
                    "UpDecoderBlock2D", blocks, json.source());
  const std::string act = json.get_string("act_fn", "silu");
  CXR_CHECK(act == "silu" || act == "swish", "AutoencoderKL config (", json.source(),
            "): act_fn \"", act, "\" is not supported (only \"silu\")");
  // shift_factor, latents_mean and latents_std may be null: mark them read either way.
  json.ignore({"shift_factor", "latents_mean", "latents_std"});
  json.check_all_used();
  c.validate();
  return c;
}

AutoencoderKLConfig AutoencoderKLConfig::from_json_file(const std::string& path) {
  JsonConfig json = JsonConfig::from_file(path);
  return from_json(json);
}

nlohmann::json AutoencoderKLConfig::to_json() const {
  nlohmann::json j = {
      {"_class_name", "AutoencoderKL"},
      {"act_fn", "silu"},
      {"block_out_channels", block_out_channels},
      {"down_block_types",
       std::vector<std::string>(block_out_channels.size(), "DownEncoderBlock2D")},
      {"in_channels", in_channels},
      {"latent_channels", latent_channels},
      {"latents_mean", nullptr},
      {"latents_std", nullptr},
      {"layers_per_block", layers_per_block},
      {"mid_block_add_attention", mid_block_add_attention},
      {"norm_num_groups", norm_num_groups},
      {"out_channels", out_channels},
      {"scaling_factor", scaling_factor},
      {"shift_factor", nullptr},
      {"up_block_types", std::vector<std::string>(block_out_channels.size(), "UpDecoderBlock2D")},
      {"use_post_quant_conv", use_post_quant_conv},
      {"use_quant_conv", use_quant_conv}};
  if (shift_factor) j["shift_factor"] = *shift_factor;
  if (!latents_mean.empty()) j["latents_mean"] = latents_mean;
  if (!latents_std.empty()) j["latents_std"] = latents_std;
  return j;
}

void AutoencoderKLConfig::validate() const {
  CXR_CHECK(in_channels > 0 && out_channels > 0 && latent_channels > 0,
            "AutoencoderKL: in_channels (", in_channels, "), out_channels (", out_channels,
            ") and latent_channels (", latent_channels, ") must be positive");
  CXR_CHECK(layers_per_block > 0, "AutoencoderKL: layers_per_block must be positive, got ",
            layers_per_block);
  CXR_CHECK(norm_num_groups > 0, "AutoencoderKL: norm_num_groups must be positive, got ",
            norm_num_groups);
  CXR_CHECK(!block_out_channels.empty(), "AutoencoderKL: block_out_channels must not be empty");
  for (int64_t ch : block_out_channels)
    CXR_CHECK(ch > 0 && ch % norm_num_groups == 0, "AutoencoderKL: block_out_channels ",
              join(block_out_channels), " must be positive multiples of norm_num_groups (",
              norm_num_groups, ")");
  CXR_CHECK(latents_mean.size() == latents_std.size(), "AutoencoderKL: latents_mean has ",
            latents_mean.size(), " entries but latents_std ", latents_std.size());
}

// ---- DiagonalGaussianDistribution ----

DiagonalGaussianDistribution::DiagonalGaussianDistribution(const Tensor& moments) {
  CXR_CHECK(moments.defined() && moments.dim() == 4 && moments.size(1) % 2 == 0,
            "DiagonalGaussianDistribution: expected moments [N, 2 * latent_channels, h, w], got ",
            undefined_or(moments));
  std::vector<Tensor> parts = chunk(moments, 2, 1);
  mean = parts[0];
  logvar = clamp(parts[1], -30.0, 20.0);
}

Tensor DiagonalGaussianDistribution::stddev() const {
  return exp(mul(logvar, 0.5));
}

Tensor DiagonalGaussianDistribution::var() const {
  return exp(logvar);
}

Tensor DiagonalGaussianDistribution::sample(Generator& gen) const {
  // eps drawn in float32 on the mean's device (the same numbers as on the CPU), then to its dtype.
  const Tensor eps =
      raw::to(raw::randn(mean.sizes(), gen, kFloat32, 0.0, 1.0, mean.device()), mean.dtype());
  return add(mean, mul(stddev(), eps));
}

Tensor DiagonalGaussianDistribution::kl() const {
  return mul(sum(sub(sub(add(square(mean), var()), 1.0), logvar), {1, 2, 3}), 0.5);
}

// ---- VaeEncoder ----

VaeEncoder::VaeEncoder(const AutoencoderKLConfig& c) : Module("Encoder") {
  const auto& ch = c.block_out_channels;
  const int64_t g = c.norm_num_groups;
  const double eps = 1e-6;  // every VAE GroupNorm (vae.py)
  conv_in = register_module(
      "conv_in",
      std::make_shared<nn::Conv2d>(c.in_channels, ch[0], 3, nn::Conv2dOptions{.padding = 1}));
  down_blocks = register_module("down_blocks", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i < ch.size(); ++i)
    down_blocks->push_back(std::make_shared<DownEncoderBlock2D>(
        i == 0 ? ch[0] : ch[i - 1], ch[i], c.layers_per_block, g, eps, i + 1 < ch.size()));
  mid_block = register_module(
      "mid_block", std::make_shared<UNetMidBlock2D>(ch.back(), g, eps, c.mid_block_add_attention));
  conv_norm_out =
      register_module("conv_norm_out", std::make_shared<nn::GroupNorm>(g, ch.back(), eps));
  // double_z: mean and logvar.
  conv_out =
      register_module("conv_out", std::make_shared<nn::Conv2d>(ch.back(), 2 * c.latent_channels, 3,
                                                               nn::Conv2dOptions{.padding = 1}));
}

Tensor VaeEncoder::forward(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == conv_in->in_channels,
            "AutoencoderKL encoder: expected sample [N, ", conv_in->in_channels, ", H, W], got ",
            undefined_or(x));
  Tensor h = conv_in->forward(x);
  for (size_t i = 0; i < down_blocks->size(); ++i)
    h = down_blocks->at<DownEncoderBlock2D>(i)->forward(h);
  h = mid_block->forward(h);
  return conv_out->forward(conv_norm_out->forward_silu(h));
}

// ---- VaeDecoder ----

VaeDecoder::VaeDecoder(const AutoencoderKLConfig& c) : Module("Decoder") {
  const std::vector<int64_t> rev(c.block_out_channels.rbegin(), c.block_out_channels.rend());
  const int64_t g = c.norm_num_groups;
  const double eps = 1e-6;
  conv_in = register_module(
      "conv_in",
      std::make_shared<nn::Conv2d>(c.latent_channels, rev[0], 3, nn::Conv2dOptions{.padding = 1}));
  // Registration order of vae.py: mid_block before up_blocks.
  mid_block = register_module(
      "mid_block", std::make_shared<UNetMidBlock2D>(rev[0], g, eps, c.mid_block_add_attention));
  up_blocks = register_module("up_blocks", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i < rev.size(); ++i)
    up_blocks->push_back(std::make_shared<UpDecoderBlock2D>(
        i == 0 ? rev[0] : rev[i - 1], rev[i], c.layers_per_block + 1, g, eps, i + 1 < rev.size()));
  conv_norm_out =
      register_module("conv_norm_out", std::make_shared<nn::GroupNorm>(g, rev.back(), eps));
  conv_out = register_module(
      "conv_out",
      std::make_shared<nn::Conv2d>(rev.back(), c.out_channels, 3, nn::Conv2dOptions{.padding = 1}));
}

Tensor VaeDecoder::forward(const Tensor& z) {
  CXR_CHECK(z.defined() && z.dim() == 4 && z.size(1) == conv_in->in_channels,
            "AutoencoderKL decoder: expected latents [N, ", conv_in->in_channels, ", h, w], got ",
            undefined_or(z));
  Tensor h = mid_block->forward(conv_in->forward(z));
  for (size_t i = 0; i < up_blocks->size(); ++i) h = up_blocks->at<UpDecoderBlock2D>(i)->forward(h);
  return conv_out->forward(conv_norm_out->forward_silu(h));
}

// ---- AutoencoderKL ----

AutoencoderKL::AutoencoderKL(const AutoencoderKLConfig& config, Generator& gen)
    : Module("AutoencoderKL"), config_(config) {
  config_.validate();
  const int64_t lat = config_.latent_channels;
  encoder = register_module("encoder", std::make_shared<VaeEncoder>(config_));
  decoder = register_module("decoder", std::make_shared<VaeDecoder>(config_));
  if (config_.use_quant_conv)
    quant_conv = register_module("quant_conv", std::make_shared<nn::Conv2d>(2 * lat, 2 * lat, 1));
  if (config_.use_post_quant_conv)
    post_quant_conv = register_module("post_quant_conv", std::make_shared<nn::Conv2d>(lat, lat, 1));
  // PyTorch's default init of every conv and linear layer, in registration order from `gen`
  // (GroupNorms start at weight 1, bias 0).
  apply([&gen](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) conv->reset_parameters(gen);
    if (auto* linear = dynamic_cast<nn::Linear*>(&m)) linear->reset_parameters(gen);
  });
}

DiagonalGaussianDistribution AutoencoderKL::encode(const Tensor& x) {
  Tensor moments = encoder->forward(x);
  if (quant_conv) moments = quant_conv->forward(moments);
  return DiagonalGaussianDistribution(moments);
}

Tensor AutoencoderKL::decode(const Tensor& z) {
  CXR_CHECK(z.defined() && z.dim() == 4 && z.size(1) == config_.latent_channels,
            "AutoencoderKL decode: expected latents [N, ", config_.latent_channels, ", h, w], got ",
            undefined_or(z));
  return decoder->forward(post_quant_conv ? post_quant_conv->forward(z) : z);
}

Tensor AutoencoderKL::forward(const Tensor& x) {
  return decode(encode(x).mode());
}

Tensor AutoencoderKL::forward(const Tensor& x, Generator& gen) {
  return decode(encode(x).sample(gen));
}

int64_t AutoencoderKL::downsampling_factor() const {
  return int64_t(1) << (config_.block_out_channels.size() - 1);
}

nn::StateDict AutoencoderKL::rename_legacy_keys(const nn::StateDict& dict) const {
  // (old, new) leaf names of diffusers' deprecated attention block.
  static const std::pair<const char*, const char*> kRenames[] = {
      {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};
  nn::StateDict out = dict;
  for (const auto& [path, module] : named_modules()) {
    if (!dynamic_cast<nn::Attention*>(module.get())) continue;
    for (const auto& [from, to] : kRenames)
      for (const char* leaf : {".weight", ".bias"}) {
        auto it = out.find(path + "." + from + leaf);
        if (it == out.end()) continue;
        Tensor t = it->second;
        out.erase(it);
        out[path + "." + to + leaf] = t;
      }
  }
  return out;
}

}  // namespace cxr::models
