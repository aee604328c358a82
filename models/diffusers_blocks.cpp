// The diffusers building blocks shared by the VAE, UNet and ControlNet (see diffusers_blocks.h):
// ResnetBlock2D (diffusers/models/resnet.py, time_embedding_norm "default", pre_norm),
// Downsample2D (downsampling.py, use_conv), Upsample2D (upsampling.py, use_conv, interpolate) and
// the VAE blocks DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D (unets/unet_2d_blocks.py).
#include "models/diffusers_blocks.h"

#include "autograd/conv.h"         // upsample_nearest2d
#include "autograd/elementwise.h"  // add, div, silu
#include "autograd/indexing.h"     // pad
#include "autograd/views.h"        // reshape

namespace cxr::models {

namespace {

std::string undefined_or(const Tensor& t) {
  return t.defined() ? describe(t) : std::string("undefined");
}

// "[N, C, H, W]" input check shared by the blocks.
void check_nchw(const Tensor& x, int64_t channels, const char* block) {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == channels, block, ": expected input [N, ",
            channels, ", H, W], got ", undefined_or(x));
}

}  // namespace

// ---- ResnetBlock2D ----

ResnetBlock2D::ResnetBlock2D(int64_t in, const ResnetBlock2DOptions& o)
    : Module("ResnetBlock2D"),
      in_channels(in),
      out_channels(o.out_channels < 0 ? in : o.out_channels),
      options(o) {
  CXR_CHECK(in > 0 && out_channels > 0 && o.groups > 0,
            "ResnetBlock2D: channels and groups must be positive, got in_channels ", in,
            ", out_channels ", out_channels, ", groups ", o.groups);
  CXR_CHECK(in % o.groups == 0 && out_channels % o.groups == 0, "ResnetBlock2D: groups (", o.groups,
            ") must divide in_channels (", in, ") and out_channels (", out_channels, ")");
  CXR_CHECK(o.output_scale_factor != 0, "ResnetBlock2D: output_scale_factor must not be 0");
  // Registration order of resnet.py's __init__.
  norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(o.groups, in, o.eps));
  conv1 = register_module(
      "conv1", std::make_shared<nn::Conv2d>(in, out_channels, 3, nn::Conv2dOptions{.padding = 1}));
  if (o.temb_channels > 0)
    time_emb_proj = register_module("time_emb_proj",
                                    std::make_shared<nn::Linear>(o.temb_channels, out_channels));
  norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(o.groups, out_channels, o.eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out_channels, out_channels, 3,
                                                                nn::Conv2dOptions{.padding = 1}));
  if (in != out_channels)
    conv_shortcut =
        register_module("conv_shortcut", std::make_shared<nn::Conv2d>(in, out_channels, 1));
}

Tensor ResnetBlock2D::forward(const Tensor& x) {
  return forward(x, Tensor());
}

Tensor ResnetBlock2D::forward(const Tensor& x, const Tensor& temb) {
  check_nchw(x, in_channels, "ResnetBlock2D");
  CXR_CHECK(!temb.defined() || time_emb_proj,
            "ResnetBlock2D: got a time embedding but the block has no time_emb_proj "
            "(temb_channels not set)");
  CXR_CHECK(!temb.defined() || (temb.dim() == 2 && temb.size(0) == x.size(0) &&
                                temb.size(1) == options.temb_channels),
            "ResnetBlock2D: expected temb [", x.size(0), ", ", options.temb_channels, "], got ",
            undefined_or(temb));
  Tensor h = conv1->forward(norm1->forward_silu(x));
  if (temb.defined()) {
    // time_emb_proj(silu(temb))[:, :, None, None], broadcast over H and W.
    const Tensor t = time_emb_proj->forward(silu(temb));
    h = add(h, reshape(t, {t.size(0), t.size(1), 1, 1}));
  }
  h = conv2->forward(dropout->forward(norm2->forward_silu(h)));
  const Tensor shortcut = conv_shortcut ? conv_shortcut->forward(x) : x;
  Tensor out = add(shortcut, h);
  if (options.output_scale_factor != 1.0) out = div(out, options.output_scale_factor);
  return out;
}

// ---- Downsample2D ----

Downsample2D::Downsample2D(int64_t channels, int64_t out_channels, int64_t pad)
    : Module("Downsample2D"), padding(pad) {
  CXR_CHECK(pad >= 0, "Downsample2D: padding must be >= 0, got ", pad);
  conv = register_module(
      "conv", std::make_shared<nn::Conv2d>(channels, out_channels < 0 ? channels : out_channels, 3,
                                           nn::Conv2dOptions{.stride = 2, .padding = pad}));
}

Tensor Downsample2D::forward(const Tensor& x) {
  check_nchw(x, conv->in_channels, "Downsample2D");
  // padding 0: zero-pad right and bottom by one (F.pad(x, (0, 1, 0, 1)) in downsampling.py).
  return conv->forward(padding == 0 ? pad(x, {0, 1, 0, 1}) : x);
}

// ---- Upsample2D ----

Upsample2D::Upsample2D(int64_t channels, int64_t out_channels) : Module("Upsample2D") {
  conv = register_module(
      "conv", std::make_shared<nn::Conv2d>(channels, out_channels < 0 ? channels : out_channels, 3,
                                           nn::Conv2dOptions{.padding = 1}));
}

Tensor Upsample2D::forward(const Tensor& x) {
  return forward(x, std::nullopt);
}

Tensor Upsample2D::forward(const Tensor& x, std::optional<std::pair<int64_t, int64_t>> size) {
  check_nchw(x, conv->in_channels, "Upsample2D");
  CXR_CHECK(!size || (size->first > 0 && size->second > 0),
            "Upsample2D: output size must be positive, got (", size ? size->first : 0, ", ",
            size ? size->second : 0, ")");
  const Int2 out = size ? Int2{size->first, size->second} : Int2{2 * x.size(2), 2 * x.size(3)};
  return conv->forward(upsample_nearest2d(x, out));
}

// ---- DownEncoderBlock2D ----

DownEncoderBlock2D::DownEncoderBlock2D(int64_t in, int64_t out, int64_t num_layers, int64_t groups,
                                       double eps, bool add_downsample)
    : Module("DownEncoderBlock2D") {
  CXR_CHECK(num_layers > 0, "DownEncoderBlock2D: num_layers must be positive, got ", num_layers);
  resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
  for (int64_t j = 0; j < num_layers; ++j)
    resnets->push_back(std::make_shared<ResnetBlock2D>(
        j == 0 ? in : out,
        ResnetBlock2DOptions{.out_channels = out, .groups = groups, .eps = eps}));
  if (add_downsample) {
    downsamplers = register_module("downsamplers", std::make_shared<nn::ModuleList>());
    downsamplers->push_back(std::make_shared<Downsample2D>(out, out, /*padding=*/0));
  }
}

Tensor DownEncoderBlock2D::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t j = 0; j < resnets->size(); ++j) h = resnets->at<ResnetBlock2D>(j)->forward(h);
  if (downsamplers) h = downsamplers->at<Downsample2D>(0)->forward(h);
  return h;
}

// ---- UpDecoderBlock2D ----

UpDecoderBlock2D::UpDecoderBlock2D(int64_t in, int64_t out, int64_t num_layers, int64_t groups,
                                   double eps, bool add_upsample)
    : Module("UpDecoderBlock2D") {
  CXR_CHECK(num_layers > 0, "UpDecoderBlock2D: num_layers must be positive, got ", num_layers);
  resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
  for (int64_t j = 0; j < num_layers; ++j)
    resnets->push_back(std::make_shared<ResnetBlock2D>(
        j == 0 ? in : out,
        ResnetBlock2DOptions{.out_channels = out, .groups = groups, .eps = eps}));
  if (add_upsample) {
    upsamplers = register_module("upsamplers", std::make_shared<nn::ModuleList>());
    upsamplers->push_back(std::make_shared<Upsample2D>(out, out));
  }
}

Tensor UpDecoderBlock2D::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t j = 0; j < resnets->size(); ++j) h = resnets->at<ResnetBlock2D>(j)->forward(h);
  if (upsamplers) h = upsamplers->at<Upsample2D>(0)->forward(h);
  return h;
}

// ---- UNetMidBlock2D ----

UNetMidBlock2D::UNetMidBlock2D(int64_t channels, int64_t groups, double eps, bool add_attention)
    : Module("UNetMidBlock2D") {
  const ResnetBlock2DOptions ro{.groups = groups, .eps = eps};
  resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
  attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
  resnets->push_back(std::make_shared<ResnetBlock2D>(channels, ro));
  // The VAE passes attention_head_dim = channels, so one head of all channels (vae.py Encoder /
  // Decoder -> UNetMidBlock2D -> Attention(..., norm_num_groups, bias=True, residual_connection)).
  if (add_attention)
    attentions->push_back(std::make_shared<nn::Attention>(
        channels, nn::AttentionOptions{.heads = 1,
                                       .dim_head = channels,
                                       .bias = true,
                                       .norm_num_groups = groups,
                                       .eps = eps,
                                       .residual_connection = true}));
  resnets->push_back(std::make_shared<ResnetBlock2D>(channels, ro));
}

Tensor UNetMidBlock2D::forward(const Tensor& x) {
  Tensor h = resnets->at<ResnetBlock2D>(0)->forward(x);
  if (attentions->size() > 0) h = attentions->at<nn::Attention>(0)->forward(h);
  return resnets->at<ResnetBlock2D>(1)->forward(h);
}

}  // namespace cxr::models
