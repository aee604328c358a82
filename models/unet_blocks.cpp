// The UNet's blocks as diffusers 0.42 (see unet_blocks.h): embeddings.py, attention.py,
// activations.py, transformers/transformer_2d.py, unets/unet_2d_blocks.py.
#include "models/unet_blocks.h"

#include <cmath>

#include "autograd/elementwise.h"  // add, mul, sin, cos, silu, gelu
#include "autograd/indexing.h"     // cat, chunk, pad
#include "autograd/views.h"        // permute, reshape, to
#include "tensor/creation.h"       // raw::from_vector, raw::to

namespace cxr::models {

namespace {

std::string undefined_or(const Tensor& t) {
  return t.defined() ? describe(t) : std::string("undefined");
}

void check_nchw(const Tensor& x, int64_t channels, const char* block) {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == channels, block, ": expected input [B, ",
            channels, ", H, W], got ", undefined_or(x));
}

ResnetBlock2DOptions resnet_options(int64_t out_channels, const UNetBlockOptions& o) {
  return {.out_channels = out_channels,
          .temb_channels = o.temb_channels,
          .groups = o.groups,
          .eps = o.eps,
          .dropout = o.dropout,
          .output_scale_factor = o.output_scale_factor};
}

// `n` Transformer2DModels over `channels` into a new ModuleList.
std::shared_ptr<nn::ModuleList> transformers(int64_t n, int64_t channels,
                                             const Transformer2DOptions& options) {
  auto list = std::make_shared<nn::ModuleList>();
  for (int64_t j = 0; j < n; ++j)
    list->push_back(std::make_shared<Transformer2DModel>(channels, options));
  return list;
}

}  // namespace

// ---- timestep embedding ----

Tensor timestep_embedding(const Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                          double downscale_freq_shift, double scale, double max_period) {
  CXR_CHECK(timesteps.defined() && timesteps.dim() == 1,
            "timestep_embedding: expected timesteps [B], got ", undefined_or(timesteps));
  const int64_t half = dim / 2;
  CXR_CHECK(half >= 1 && double(half) != downscale_freq_shift,
            "timestep_embedding: dim must be >= 2 and dim / 2 must differ from "
            "downscale_freq_shift, got dim ",
            dim, ", downscale_freq_shift ", downscale_freq_shift);
  // Frequencies in float32 in diffusers' order of operations: exp((-ln(max_period) * i) /
  // (half - downscale_freq_shift)).
  const float neg_log = static_cast<float>(-std::log(max_period));
  const float denom = static_cast<float>(double(half) - downscale_freq_shift);
  std::vector<float> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freq[size_t(i)] = std::exp(neg_log * float(i) / denom);
  const Tensor f = raw::to(raw::from_vector(freq, {1, half}), timesteps.device());
  Tensor arg = mul(reshape(to(timesteps, kFloat32), {timesteps.size(0), 1}), f);
  if (scale != 1.0) arg = mul(arg, scale);
  Tensor emb = flip_sin_to_cos ? cat({cos(arg), sin(arg)}, 1) : cat({sin(arg), cos(arg)}, 1);
  if (dim % 2 == 1) emb = pad(emb, {0, 1});
  return emb;
}

Timesteps::Timesteps(int64_t channels, bool flip, double shift)
    : Module("Timesteps"),
      num_channels(channels),
      flip_sin_to_cos(flip),
      downscale_freq_shift(shift) {}

Tensor Timesteps::forward(const Tensor& timesteps) {
  return timestep_embedding(timesteps, num_channels, flip_sin_to_cos, downscale_freq_shift);
}

std::string Timesteps::extra_repr() const {
  return "num_channels=" + std::to_string(num_channels) +
         ", flip_sin_to_cos=" + (flip_sin_to_cos ? "True" : "False") +
         ", downscale_freq_shift=" + std::to_string(downscale_freq_shift);
}

TimestepEmbedding::TimestepEmbedding(int64_t in_channels, int64_t time_embed_dim)
    : Module("TimestepEmbedding") {
  linear_1 = register_module("linear_1", std::make_shared<nn::Linear>(in_channels, time_embed_dim));
  linear_2 =
      register_module("linear_2", std::make_shared<nn::Linear>(time_embed_dim, time_embed_dim));
}

Tensor TimestepEmbedding::forward(const Tensor& sample) {
  return linear_2->forward(silu(linear_1->forward(sample)));
}

// ---- feed-forward ----

GEGLU::GEGLU(int64_t dim_in, int64_t dim_out) : Module("GEGLU") {
  proj = register_module("proj", std::make_shared<nn::Linear>(dim_in, 2 * dim_out));
}

Tensor GEGLU::forward(const Tensor& x) {
  const Tensor y = proj->forward(x);
  const std::vector<Tensor> parts = chunk(y, 2, y.dim() - 1);  // value, gate
  return mul(parts[0], gelu(parts[1]));
}

FeedForward::FeedForward(int64_t dim, int64_t mult) : Module("FeedForward") {
  net = register_module("net", std::make_shared<nn::ModuleList>());
  net->push_back(std::make_shared<GEGLU>(dim, dim * mult));
  net->push_back(std::make_shared<nn::Dropout>(0.0));
  net->push_back(std::make_shared<nn::Linear>(dim * mult, dim));
}

Tensor FeedForward::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < net->size(); ++i) h = (*net)[i]->forward(h);
  return h;
}

// ---- transformer ----

BasicTransformerBlock::BasicTransformerBlock(int64_t dim, int64_t heads, int64_t dim_head,
                                             int64_t cross_attention_dim)
    : Module("BasicTransformerBlock") {
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(Shape{dim}));
  attn1 = register_module("attn1",
                          std::make_shared<nn::Attention>(
                              dim, nn::AttentionOptions{.heads = heads, .dim_head = dim_head}));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(Shape{dim}));
  attn2 = register_module("attn2",
                          std::make_shared<nn::Attention>(
                              dim, nn::AttentionOptions{.cross_attention_dim = cross_attention_dim,
                                                        .heads = heads,
                                                        .dim_head = dim_head}));
  norm3 = register_module("norm3", std::make_shared<nn::LayerNorm>(Shape{dim}));
  ff = register_module("ff", std::make_shared<FeedForward>(dim));
}

Tensor BasicTransformerBlock::forward(const Tensor& hidden_states,
                                      const Tensor& encoder_hidden_states) {
  Tensor h = add(hidden_states, attn1->forward(norm1->forward(hidden_states)));
  h = add(h, attn2->forward(norm2->forward(h), encoder_hidden_states));
  return add(h, ff->forward(norm3->forward(h)));
}

Transformer2DModel::Transformer2DModel(int64_t in, const Transformer2DOptions& o)
    : Module("Transformer2DModel"), in_channels(in), options(o) {
  CXR_CHECK(o.num_attention_heads > 0 && in > 0 && in % o.num_attention_heads == 0,
            "Transformer2DModel: num_attention_heads (", o.num_attention_heads,
            ") must divide in_channels (", in, ")");
  CXR_CHECK(o.num_layers > 0, "Transformer2DModel: num_layers must be positive, got ",
            o.num_layers);
  // inner_dim = heads * (in / heads) = in.
  norm = register_module("norm", std::make_shared<nn::GroupNorm>(o.norm_num_groups, in, 1e-6));
  auto projection = [&]() -> nn::ModulePtr {
    if (o.use_linear_projection) return std::make_shared<nn::Linear>(in, in);
    return std::make_shared<nn::Conv2d>(in, in, 1);
  };
  proj_in = register_module("proj_in", projection());
  transformer_blocks = register_module("transformer_blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < o.num_layers; ++i)
    transformer_blocks->push_back(std::make_shared<BasicTransformerBlock>(
        in, o.num_attention_heads, in / o.num_attention_heads, o.cross_attention_dim));
  proj_out = register_module("proj_out", projection());
}

Tensor Transformer2DModel::forward(const Tensor& x, const Tensor& encoder_hidden_states) {
  check_nchw(x, in_channels, "Transformer2DModel");
  const int64_t b = x.size(0), c = in_channels, height = x.size(2), width = x.size(3);
  auto to_tokens = [&](const Tensor& t) {
    return reshape(permute(t, {0, 2, 3, 1}), {b, height * width, c});
  };
  auto to_image = [&](const Tensor& t) {
    return permute(reshape(t, {b, height, width, c}), {0, 3, 1, 2});
  };
  // The projections act before flattening (1x1 conv) or on the tokens (linear).
  Tensor h = norm->forward(x);
  h = options.use_linear_projection ? proj_in->forward(to_tokens(h))
                                    : to_tokens(proj_in->forward(h));
  for (size_t i = 0; i < transformer_blocks->size(); ++i)
    h = transformer_blocks->at<BasicTransformerBlock>(i)->forward(h, encoder_hidden_states);
  h = options.use_linear_projection ? to_image(proj_out->forward(h))
                                    : proj_out->forward(to_image(h));
  return add(h, x);
}

// ---- down blocks ----

UNetDownBlock::UNetDownBlock(const char* type_name, int64_t in, int64_t out,
                             const UNetBlockOptions& o, const Transformer2DOptions* attention)
    : Module(type_name), in_channels(in), out_channels(out) {
  CXR_CHECK(o.num_layers > 0, type_name, ": num_layers must be positive, got ", o.num_layers);
  // Registration order of unet_2d_blocks.py: attentions, resnets, downsamplers.
  if (attention)
    attentions = register_module("attentions", transformers(o.num_layers, out, *attention));
  resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
  for (int64_t j = 0; j < o.num_layers; ++j)
    resnets->push_back(std::make_shared<ResnetBlock2D>(j == 0 ? in : out, resnet_options(out, o)));
  if (o.add_sample) {
    downsamplers = register_module("downsamplers", std::make_shared<nn::ModuleList>());
    downsamplers->push_back(std::make_shared<Downsample2D>(out, out, o.downsample_padding));
  }
}

std::vector<Tensor> UNetDownBlock::forward(const Tensor& x, const Tensor& temb,
                                           const Tensor& encoder_hidden_states) {
  check_nchw(x, in_channels, type_name().c_str());
  std::vector<Tensor> states;
  Tensor h = x;
  for (size_t j = 0; j < resnets->size(); ++j) {
    h = resnets->at<ResnetBlock2D>(j)->forward(h, temb);
    if (attentions) h = attentions->at<Transformer2DModel>(j)->forward(h, encoder_hidden_states);
    states.push_back(h);
  }
  if (downsamplers) states.push_back(downsamplers->at<Downsample2D>(0)->forward(h));
  return states;
}

CrossAttnDownBlock2D::CrossAttnDownBlock2D(int64_t in, int64_t out, const UNetBlockOptions& o,
                                           const Transformer2DOptions& attention)
    : UNetDownBlock("CrossAttnDownBlock2D", in, out, o, &attention) {}

DownBlock2D::DownBlock2D(int64_t in, int64_t out, const UNetBlockOptions& o)
    : UNetDownBlock("DownBlock2D", in, out, o, nullptr) {}

// ---- mid block ----

UNetMidBlock2DCrossAttn::UNetMidBlock2DCrossAttn(int64_t ch, const UNetBlockOptions& o,
                                                 const Transformer2DOptions& attention)
    : Module("UNetMidBlock2DCrossAttn"), channels(ch) {
  CXR_CHECK(o.num_layers > 0, "UNetMidBlock2DCrossAttn: num_layers must be positive, got ",
            o.num_layers);
  attentions = register_module("attentions", transformers(o.num_layers, ch, attention));
  resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
  for (int64_t j = 0; j <= o.num_layers; ++j)
    resnets->push_back(std::make_shared<ResnetBlock2D>(ch, resnet_options(ch, o)));
}

Tensor UNetMidBlock2DCrossAttn::forward(const Tensor& x, const Tensor& temb,
                                        const Tensor& encoder_hidden_states) {
  check_nchw(x, channels, "UNetMidBlock2DCrossAttn");
  Tensor h = resnets->at<ResnetBlock2D>(0)->forward(x, temb);
  for (size_t j = 0; j < attentions->size(); ++j) {
    h = attentions->at<Transformer2DModel>(j)->forward(h, encoder_hidden_states);
    h = resnets->at<ResnetBlock2D>(j + 1)->forward(h, temb);
  }
  return h;
}

// ---- up blocks ----

UNetUpBlock::UNetUpBlock(const char* type_name, int64_t in, int64_t prev, int64_t out,
                         const UNetBlockOptions& o, const Transformer2DOptions* attention)
    : Module(type_name), in_channels(in), prev_output_channels(prev), out_channels(out) {
  CXR_CHECK(o.num_layers > 0, type_name, ": num_layers must be positive, got ", o.num_layers);
  if (attention)
    attentions = register_module("attentions", transformers(o.num_layers, out, *attention));
  resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    const int64_t skip = j == o.num_layers - 1 ? in : out;
    const int64_t input = j == 0 ? prev : out;
    resnets->push_back(std::make_shared<ResnetBlock2D>(input + skip, resnet_options(out, o)));
  }
  if (o.add_sample) {
    upsamplers = register_module("upsamplers", std::make_shared<nn::ModuleList>());
    upsamplers->push_back(std::make_shared<Upsample2D>(out, out));
  }
}

Tensor UNetUpBlock::forward(const Tensor& x, const std::vector<Tensor>& skips, const Tensor& temb,
                            const Tensor& encoder_hidden_states,
                            std::optional<std::pair<int64_t, int64_t>> upsample_size) {
  check_nchw(x, prev_output_channels, type_name().c_str());
  CXR_CHECK(skips.size() == resnets->size(), type_name(), ": expected ", resnets->size(),
            " skip tensors, got ", skips.size());
  Tensor h = x;
  for (size_t j = 0; j < resnets->size(); ++j) {
    const Tensor& skip = skips[skips.size() - 1 - j];
    CXR_CHECK(skip.defined() && skip.dim() == 4 && skip.size(0) == h.size(0) &&
                  skip.size(2) == h.size(2) && skip.size(3) == h.size(3),
              type_name(), ": skip tensor ", skips.size() - 1 - j, " is ", undefined_or(skip),
              " but the hidden state is ", describe(h));
    h = resnets->at<ResnetBlock2D>(j)->forward(cat({h, skip}, 1), temb);
    if (attentions) h = attentions->at<Transformer2DModel>(j)->forward(h, encoder_hidden_states);
  }
  if (upsamplers) h = upsamplers->at<Upsample2D>(0)->forward(h, upsample_size);
  return h;
}

CrossAttnUpBlock2D::CrossAttnUpBlock2D(int64_t in, int64_t prev, int64_t out,
                                       const UNetBlockOptions& o,
                                       const Transformer2DOptions& attention)
    : UNetUpBlock("CrossAttnUpBlock2D", in, prev, out, o, &attention) {}

UpBlock2D::UpBlock2D(int64_t in, int64_t prev, int64_t out, const UNetBlockOptions& o)
    : UNetUpBlock("UpBlock2D", in, prev, out, o, nullptr) {}

}  // namespace cxr::models
