// ResNet-18/34/50 as torchvision.models.resnet (torchvision/models/resnet.py): BasicBlock and the
// v1.5 Bottleneck as nn::Modules registered under torchvision's child names, the four stages as
// Sequentials ("layer2.0.downsample.1.running_var"), torchvision's init, and the encoder outputs of
// segmentation_models_pytorch's ResNetEncoder (segmentation_models_pytorch/encoders/resnet.py).
#include "models/resnet.h"

#include <algorithm>
#include <sstream>

#include "autograd/elementwise.h"  // add, relu
#include "autograd/views.h"        // flatten

namespace cxr::models {

namespace {

using nn::Conv2dOptions;

std::shared_ptr<nn::Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<nn::Conv2d>(in, out, 3,
                                      Conv2dOptions{.stride = stride, .padding = 1, .bias = false});
}

std::shared_ptr<nn::Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<nn::Conv2d>(in, out, 1, Conv2dOptions{.stride = stride, .bias = false});
}

// torchvision's downsample branch: Sequential(conv1x1(in, out, stride), BatchNorm2d(out)), present
// when the block changes the resolution or the channel count.
std::shared_ptr<nn::Sequential> make_downsample(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      conv1x1(in, out, stride), std::make_shared<nn::BatchNorm2d>(out)});
}

// Common part of both blocks: the residual sum and the final ReLU (relu(out + identity)).
Tensor residual_out(const Tensor& out, const Tensor& x, const std::shared_ptr<nn::Sequential>& ds) {
  return relu(add(out, ds ? ds->forward(x) : x));
}

// BasicBlock (expansion 1): conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + identity, ReLU.
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t planes, int64_t stride) : Module("BasicBlock") {
    // Registration order of torchvision's __init__ (named_parameters order).
    conv1 = register_module("conv1", conv3x3(in, planes, stride));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
    register_module("relu", std::make_shared<nn::ReLU>());
    conv2 = register_module("conv2", conv3x3(planes, planes, 1));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
    downsample = make_downsample(in, planes, stride);
    if (downsample) register_module("downsample", downsample);
  }
  Tensor forward(const Tensor& x) override {
    const Tensor h = relu(bn1->forward(conv1->forward(x)));
    return residual_out(bn2->forward(conv2->forward(h)), x, downsample);
  }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> downsample;
};

// Bottleneck v1.5 (expansion 4): conv1x1 -> BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv1x1
// (4 planes) -> BN, + identity, ReLU. torchvision's width = planes * (width_per_group / 64) *
// groups is `planes` here (groups 1, width_per_group 64).
class Bottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride) : Module("Bottleneck") {
    conv1 = register_module("conv1", conv1x1(in, planes, 1));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, stride));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
    conv3 = register_module("conv3", conv1x1(planes, planes * expansion, 1));
    bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(planes * expansion));
    register_module("relu", std::make_shared<nn::ReLU>());
    downsample = make_downsample(in, planes * expansion, stride);
    if (downsample) register_module("downsample", downsample);
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(bn1->forward(conv1->forward(x)));
    h = relu(bn2->forward(conv2->forward(h)));
    return residual_out(bn3->forward(conv3->forward(h)), x, downsample);
  }
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<nn::Sequential> downsample;
};

int64_t expansion_of(ResNetBlock block) {
  return block == ResNetBlock::Bottleneck ? Bottleneck::expansion : 1;
}

std::string join(const std::vector<int64_t>& v) {
  std::ostringstream os;
  os << "{";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "}";
  return os.str();
}

}  // namespace

ResNetConfig ResNetConfig::named(const std::string& name) {
  // torchvision's resnet18 / resnet34 / resnet50 builders.
  ResNetConfig c;
  if (name == "resnet18") {
    c.block = ResNetBlock::Basic;
    c.layers = {2, 2, 2, 2};
  } else if (name == "resnet34") {
    c.block = ResNetBlock::Basic;
    c.layers = {3, 4, 6, 3};
  } else if (name == "resnet50") {
    c.block = ResNetBlock::Bottleneck;
    c.layers = {3, 4, 6, 3};
  } else {
    CXR_CHECK(false, "ResNetConfig: unknown model name '", name,
              "'; known: resnet18, resnet34, resnet50");
  }
  return c;
}

ResNet::ResNet(const ResNetConfig& c, Generator& gen) : Module("ResNet"), config_(c) {
  CXR_CHECK(c.layers.size() == 4 &&
                std::all_of(c.layers.begin(), c.layers.end(), [](int64_t n) { return n > 0; }),
            "ResNet: layers must hold four positive block counts, got ", join(c.layers));
  CXR_CHECK(c.in_channels > 0 && c.base_width > 0 && c.num_classes >= 0, "ResNet: in_channels (",
            c.in_channels, ") and base_width (", c.base_width,
            ") must be positive and num_classes (", c.num_classes, ") >= 0");
  const int64_t w = c.base_width, e = expansion_of(c.block);

  // Registration order of torchvision's ResNet.__init__.
  conv1_ = register_module(
      "conv1", std::make_shared<nn::Conv2d>(
                   c.in_channels, w, 7, Conv2dOptions{.stride = 2, .padding = 3, .bias = false}));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(w));
  register_module("relu", std::make_shared<nn::ReLU>());
  maxpool_ = register_module("maxpool", std::make_shared<nn::MaxPool2d>(
                                            3, nn::MaxPool2dOptions{.stride = 2, .padding = 1}));
  // _make_layer: stage s has planes w * 2^s; its first block takes the stride (2 from layer2 on)
  // and the downsample, the others map planes * e -> planes * e.
  int64_t in = w;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = w << s, stride = s == 0 ? 1 : 2;
    auto layer = std::make_shared<nn::Sequential>();
    for (int64_t b = 0; b < c.layers[size_t(s)]; ++b) {
      const int64_t block_stride = b == 0 ? stride : 1;
      if (c.block == ResNetBlock::Bottleneck)
        layer->push_back(std::make_shared<Bottleneck>(in, planes, block_stride));
      else
        layer->push_back(std::make_shared<BasicBlock>(in, planes, block_stride));
      in = planes * e;
    }
    layers_[s] = register_module("layer" + std::to_string(s + 1), layer);
  }
  avgpool_ = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
  if (c.num_classes > 0) {
    fc_ = register_module("fc", std::make_shared<nn::Linear>(in, c.num_classes));
    fc_->reset_parameters(gen);  // nn.Linear's default init, drawn from `gen`
  }

  // torchvision's init loop: convolutions kaiming_normal(fan_out, relu); BatchNorm weight 1 and
  // bias 0 (as a fresh BatchNorm2d already is); with zero_init_residual the last BN of each block
  // starts at 0, so that each residual branch starts as the identity.
  apply([&](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m))
      nn::init::kaiming_normal(conv->weight, 0.0, nn::init::FanMode::FanOut, "relu", gen);
  });
  if (c.zero_init_residual) {
    apply([](nn::Module& m) {
      if (auto* b = dynamic_cast<Bottleneck*>(&m)) nn::init::zeros(b->bn3->weight);
      if (auto* b = dynamic_cast<BasicBlock*>(&m)) nn::init::zeros(b->bn2->weight);
    });
  }
}

void ResNet::check_input(const Tensor& x, int depth) const {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == config_.in_channels,
            "ResNet: expected input [N, ", config_.in_channels, ", H, W], got ",
            x.defined() ? describe(x) : std::string("undefined"));
  CXR_CHECK(x.size(0) > 0 && x.size(2) > 0 && x.size(3) > 0,
            "ResNet: input batch, height and width must be positive, got ", describe(x));
  if (!is_training()) return;
  // Each stride-2 step maps a side s to ceil(s / 2); the deepest BatchNorm (at 1/2^depth) needs
  // more than one value per channel for batch statistics, as torch's BatchNorm requires.
  const int64_t step = int64_t(1) << depth;
  const int64_t h = (x.size(2) + step - 1) / step, w = (x.size(3) + step - 1) / step;
  CXR_CHECK(
      x.size(0) * h * w > 1, "ResNet: input ", describe(x), " is too small for training: the 1/",
      step, " feature map is ", h, "x", w, " with batch ", x.size(0),
      ", one value per channel for BatchNorm's batch statistics; use a larger input or batch");
}

std::vector<Tensor> ResNet::features(const Tensor& x, int depth) {
  CXR_CHECK(depth >= 1 && depth <= 5, "ResNet::features: depth must be in 1..5, got ", depth);
  check_input(x, depth);
  std::vector<Tensor> out = {x};
  Tensor h = relu(bn1_->forward(conv1_->forward(x)));
  out.push_back(h);
  for (int s = 0; s + 1 < depth; ++s) {
    if (s == 0) h = maxpool_->forward(h);
    h = layers_[s]->forward(h);
    out.push_back(h);
  }
  return out;
}

Tensor ResNet::forward(const Tensor& x) {
  const Tensor h = features(x, 5).back();
  const Tensor pooled = flatten(avgpool_->forward(h), 1);
  return fc_ ? fc_->forward(pooled) : pooled;
}

std::vector<int64_t> ResNet::feature_channels() const {
  const int64_t w = config_.base_width, e = expansion_of(config_.block);
  return {config_.in_channels, w, e * w, 2 * e * w, 4 * e * w, 8 * e * w};
}

int64_t ResNet::num_features() const {
  return 8 * expansion_of(config_.block) * config_.base_width;
}

}  // namespace cxr::models
