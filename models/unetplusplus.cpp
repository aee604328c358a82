// UNet++ as segmentation_models_pytorch's UnetPlusPlus (smp 0.6): encoder, nested decoder,
// segmentation head, smp's initialisation, and our deep-supervision heads (see unetplusplus.h).
#include "models/unetplusplus.h"

#include <algorithm>
#include <sstream>

#include "autograd/conv.h"      // upsample_nearest2d
#include "autograd/indexing.h"  // cat

namespace cxr::models {

namespace {

// smp's Conv2dReLU with batchnorm (base/modules.py): the conv has no bias because a BN follows.
std::shared_ptr<nn::Sequential> conv_bn_relu(int64_t in, int64_t out) {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(in, out, 3, nn::Conv2dOptions{.padding = 1, .bias = false}),
      std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU>()});
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string join(const std::vector<int64_t>& values) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  os << ")";
  return os.str();
}

// smp's initialize_head (base/initialization.py): xavier_uniform weights, zero biases.
void initialize_head(nn::Module& head, Generator& gen) {
  head.apply([&](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      nn::init::xavier_uniform(conv->weight, 1.0, gen);
      if (conv->bias.defined()) nn::init::zeros(conv->bias);
    }
  });
}

}  // namespace

// ---- UnetPlusPlusDecoderBlock ----

UnetPlusPlusDecoderBlock::UnetPlusPlusDecoderBlock(int64_t in, int64_t skip, int64_t out)
    : Module("DecoderBlock"), in_channels(in), skip_channels(skip), out_channels(out) {
  conv1_ = register_module("conv1", conv_bn_relu(in + skip, out));
  conv2_ = register_module("conv2", conv_bn_relu(out, out));
}

Tensor UnetPlusPlusDecoderBlock::forward(const Tensor& x) {
  return forward(x, Tensor());
}

Tensor UnetPlusPlusDecoderBlock::forward(const Tensor& x, const Tensor& skip) {
  Tensor h = upsample_nearest2d(x, {2 * x.size(2), 2 * x.size(3)});
  if (skip.defined()) h = cat({h, skip}, 1);
  return conv2_->forward(conv1_->forward(h));
}

// ---- UnetPlusPlusDecoder ----

UnetPlusPlusDecoder::UnetPlusPlusDecoder(const std::vector<int64_t>& encoder_channels,
                                         const std::vector<int64_t>& decoder_channels)
    : Module("UnetPlusPlusDecoder"), decoder_channels_(decoder_channels) {
  const int n = depth();
  CXR_CHECK(n >= 2 && encoder_channels.size() == decoder_channels.size() + 1,
            "UnetPlusPlusDecoder: expected 2 or more decoder channels and one more encoder channel "
            "count (the input's), got decoder ",
            join(decoder_channels), " and encoder ", join(encoder_channels));
  // As smp's constructor: drop the input's channels and reverse, deepest first. Block l (the
  // top node x_0_<l>) takes in(l) channels from below and skip(l) per concatenated map.
  const std::vector<int64_t> enc(encoder_channels.rbegin(), encoder_channels.rend() - 1);
  auto in = [&](int l) { return l == 0 ? enc[0] : decoder_channels[l - 1]; };
  auto skip = [&](int l) { return l + 1 < n ? enc[l + 1] : int64_t(0); };
  blocks_ = register_module("blocks", std::make_shared<nn::ModuleDict>());
  for (int l = 0; l + 1 < n; ++l) {
    for (int d = 0; d <= l; ++d) {
      // x_<d>_<l> concatenates x_<d+1..l>_<l> and the encoder skip: (l + 1 - d) maps of skip(l)
      // channels. Intermediate nodes (d > 0) keep skip(l) channels, their input x_<d>_<l-1> has
      // skip(l-1).
      auto b = d == 0 ? std::make_shared<UnetPlusPlusDecoderBlock>(in(l), skip(l) * (l + 1),
                                                                   decoder_channels[l])
                      : std::make_shared<UnetPlusPlusDecoderBlock>(skip(l - 1),
                                                                   skip(l) * (l + 1 - d), skip(l));
      blocks_->insert(node_name(d, l), b);
    }
  }
  blocks_->insert(node_name(0, n - 1), std::make_shared<UnetPlusPlusDecoderBlock>(
                                           in(n - 1), 0, decoder_channels[n - 1]));
}

std::string UnetPlusPlusDecoder::node_name(int d, int l) {
  return "x_" + std::to_string(d) + "_" + std::to_string(l);
}

std::shared_ptr<UnetPlusPlusDecoderBlock> UnetPlusPlusDecoder::block(int d, int l) const {
  return blocks_->at<UnetPlusPlusDecoderBlock>(node_name(d, l));
}

std::map<std::string, Tensor> UnetPlusPlusDecoder::forward_nodes(
    const std::vector<Tensor>& features) {
  const int n = depth();
  CXR_CHECK(features.size() == size_t(n) + 1, "UnetPlusPlusDecoder: expected ", n + 1,
            " encoder features, got ", features.size());
  // f[0] is the deepest map, f[n - 1] the finest skip (smp: features[1:][::-1]).
  const std::vector<Tensor> f(features.rbegin(), features.rend() - 1);
  std::map<std::string, Tensor> nodes;
  // smp's evaluation order: diagonal by diagonal (offset = l - d, smp's layer_idx), on each the
  // coarsest node x_0_<offset> first.
  for (int offset = 0; offset + 1 < n; ++offset) {
    for (int d = 0; d + offset + 1 < n; ++d) {
      const int l = d + offset;
      if (offset == 0) {
        nodes[node_name(d, l)] = block(d, l)->forward(f[d], f[d + 1]);
        continue;
      }
      std::vector<Tensor> skips;
      for (int k = d + 1; k <= l; ++k) skips.push_back(nodes.at(node_name(k, l)));
      skips.push_back(f[l + 1]);
      nodes[node_name(d, l)] = block(d, l)->forward(nodes.at(node_name(d, l - 1)), cat(skips, 1));
    }
  }
  nodes[node_name(0, n - 1)] = block(0, n - 1)->forward(nodes.at(node_name(0, n - 2)));
  return nodes;
}

Tensor UnetPlusPlusDecoder::forward_features(const std::vector<Tensor>& features) {
  return forward_nodes(features).at(node_name(0, depth() - 1));
}

// ---- UnetPlusPlus ----

const std::vector<std::string>& UnetPlusPlus::encoder_names() {
  static const std::vector<std::string> names = {"resnet18", "resnet34", "resnet50"};
  return names;
}

UnetPlusPlus::UnetPlusPlus(const UnetPlusPlusConfig& c, Generator& gen)
    : Module("UnetPlusPlus"), config_(c) {
  const auto& known = encoder_names();
  CXR_CHECK(std::find(known.begin(), known.end(), c.encoder_name) != known.end(),
            "UnetPlusPlus: unknown encoder_name '", c.encoder_name, "'; known: ", join(known));
  CXR_CHECK(c.encoder_depth >= 3 && c.encoder_depth <= 5,
            "UnetPlusPlus: encoder_depth must be in 3..5, got ", c.encoder_depth);
  CXR_CHECK(c.decoder_channels.size() == size_t(c.encoder_depth), "UnetPlusPlus: encoder_depth is ",
            c.encoder_depth, " but decoder_channels ", join(c.decoder_channels), " has ",
            c.decoder_channels.size(), " entries; expected one per stage");
  CXR_CHECK(std::all_of(c.decoder_channels.begin(), c.decoder_channels.end(),
                        [](int64_t v) { return v > 0; }),
            "UnetPlusPlus: decoder_channels must be positive, got ", join(c.decoder_channels));
  CXR_CHECK(c.in_channels > 0 && c.classes > 0 && c.encoder_base_width > 0,
            "UnetPlusPlus: in_channels (", c.in_channels, "), classes (", c.classes,
            ") and encoder_base_width (", c.encoder_base_width, ") must be positive");

  // smp keeps every encoder stage whatever the depth (layer3/layer4 stay in the state dict at
  // depth 3); only the first depth + 1 features feed the decoder.
  ResNetConfig rc = ResNetConfig::named(c.encoder_name);
  rc.in_channels = c.in_channels;
  rc.num_classes = 0;
  rc.base_width = c.encoder_base_width;
  encoder_ = register_module("encoder", std::make_shared<ResNet>(rc, gen));
  // smp's set_in_channels without pretrained weights (encoders/_utils.py patch_first_conv) gives
  // conv1 a fresh torch default init when in_channels != 3.
  if (c.in_channels != 3)
    nn::init::default_weight_and_bias(encoder_->tensor("conv1.weight"), {}, gen);

  std::vector<int64_t> enc = encoder_->feature_channels();
  enc.resize(size_t(c.encoder_depth) + 1);
  decoder_ =
      register_module("decoder", std::make_shared<UnetPlusPlusDecoder>(enc, c.decoder_channels));
  // smp's initialize_decoder: convs kaiming_uniform(fan_in, relu) with zero bias; BatchNorm
  // weight 1 and bias 0, as a fresh BatchNorm2d already is.
  decoder_->apply([&](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      nn::init::kaiming_uniform(conv->weight, 0.0, nn::init::FanMode::FanIn, "relu", gen);
      if (conv->bias.defined()) nn::init::zeros(conv->bias);
    }
  });

  // smp's SegmentationHead(decoder_channels[-1], classes, kernel_size=3): Sequential(conv,
  // Identity upsampling, Identity activation); only the conv has parameters.
  segmentation_head_ = register_module(
      "segmentation_head", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                               std::make_shared<nn::Conv2d>(c.decoder_channels.back(), c.classes, 3,
                                                            nn::Conv2dOptions{.padding = 1})}));
  initialize_head(*segmentation_head_, gen);

  if (c.deep_supervision) {
    // The nodes x_<k>_<depth-2>, k = depth-2 .. 1, all carry the finest skip's channels.
    const int64_t channels = enc[1];
    deep_supervision_heads_ =
        register_module("deep_supervision_heads", std::make_shared<nn::ModuleList>());
    for (int i = 0; i + 2 < c.encoder_depth; ++i) {
      deep_supervision_heads_->push_back(
          std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
              std::make_shared<nn::Conv2d>(channels, c.classes, 1),
              std::make_shared<nn::Upsample>(2.0, nn::UpsampleMode::Bilinear, true)}));
    }
    initialize_head(*deep_supervision_heads_, gen);
  }
}

void UnetPlusPlus::check_input(const Tensor& x) const {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == config_.in_channels,
            "UnetPlusPlus: expected input [N, ", config_.in_channels, ", H, W], got ",
            x.defined() ? describe(x) : std::string("undefined"));
  const int64_t stride = int64_t(1) << config_.encoder_depth;
  const int64_t h = x.size(2), w = x.size(3);
  CXR_CHECK(h > 0 && w > 0 && h % stride == 0 && w % stride == 0,
            "UnetPlusPlus: input height and width must be positive multiples of ", stride,
            " (2^encoder_depth), got ", h, "x", w, "; pad to ", (h + stride - 1) / stride * stride,
            "x", (w + stride - 1) / stride * stride);
}

Tensor UnetPlusPlus::forward(const Tensor& x) {
  check_input(x);
  Tensor top = decoder_->forward_features(encoder_->features(x, config_.encoder_depth));
  return segmentation_head_->forward(top);
}

std::vector<Tensor> UnetPlusPlus::forward_deep(const Tensor& x) {
  if (!deep_supervision_heads_) return {forward(x)};
  check_input(x);
  const int n = config_.encoder_depth;
  std::map<std::string, Tensor> nodes =
      decoder_->forward_nodes(encoder_->features(x, config_.encoder_depth));
  std::vector<Tensor> out;
  for (size_t i = 0; i < deep_supervision_heads_->size(); ++i) {
    const Tensor& node = nodes.at(UnetPlusPlusDecoder::node_name(n - 2 - int(i), n - 2));
    out.push_back((*deep_supervision_heads_)[i]->forward(node));
  }
  out.push_back(segmentation_head_->forward(nodes.at(UnetPlusPlusDecoder::node_name(0, n - 1))));
  return out;
}

}  // namespace cxr::models
