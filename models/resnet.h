// ResNet-18/34/50 as torchvision.models.resnet (torchvision/models/resnet.py): the same modules
// under the same state-dict names ("conv1.weight", "layer3.4.bn2.running_var",
// "layer2.0.downsample.0.weight", "fc.bias"), BasicBlock for 18/34 and the v1.5 Bottleneck (stride
// on the 3x3) for 50, BatchNorm eps 1e-5 / momentum 0.1, and torchvision's from-scratch init
// (kaiming_normal fan_out/relu convolutions, BN weight 1 / bias 0). Two extensions: the number of
// input channels (1 for X-rays; 3 to load ImageNet weights converted from torchvision) and a base
// width (64 in torchvision; smaller for quick CPU experiments).
// The same network serves as the encoder of UNet++ (segmentation_models_pytorch's ResNetEncoder:
// no avgpool/fc, features() returns the six feature maps of the decoder's skips).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/nn.h"

namespace cxr::models {

enum class ResNetBlock { Basic, Bottleneck };

struct ResNetConfig {
  ResNetBlock block = ResNetBlock::Basic;
  std::vector<int64_t> layers = {2, 2, 2, 2};  // blocks per stage (four stages)
  int64_t in_channels = 3;
  int64_t num_classes = 1000;       // 0: no fc (an encoder); forward() then returns pooled features
  int64_t base_width = 64;          // channels of the stem and of layer1's 3x3 (torchvision: 64)
  bool zero_init_residual = false;  // torchvision's option: last BN of each block starts at 0

  // "resnet18" {2,2,2,2} Basic, "resnet34" {3,4,6,3} Basic, "resnet50" {3,4,6,3} Bottleneck;
  // throws naming the known names otherwise.
  static ResNetConfig named(const std::string& name);
};

class ResNet : public nn::Module {
 public:
  explicit ResNet(const ResNetConfig& config, Generator& gen = default_generator());

  // x [N, in_channels, H, W] -> logits [N, num_classes] (or pooled features [N, C] without fc).
  Tensor forward(const Tensor& x) override;
  // The encoder outputs of segmentation_models_pytorch's ResNetEncoder.forward: {x, relu(bn1(conv1
  // x)) (1/2), layer1(maxpool(.)) (1/4), layer2 (1/8), layer3 (1/16), layer4 (1/32)}, the first
  // `depth` + 1 of them (depth 1..5).
  std::vector<Tensor> features(const Tensor& x, int depth = 5);
  // Channels of each features() entry: {in_channels, w, e*w, 2e*w, 4e*w, 8e*w} with w the base
  // width and e the block expansion (1 Basic, 4 Bottleneck).
  std::vector<int64_t> feature_channels() const;
  // Channels entering fc (8e*w: 512 for resnet18/34, 2048 for resnet50).
  int64_t num_features() const;

  const ResNetConfig& config() const { return config_; }

 private:
  // Throws naming the model when x is not [N, in_channels, H, W] or, in training, when the
  // 1/2^depth map would leave BatchNorm one value per channel.
  void check_input(const Tensor& x, int depth) const;

  ResNetConfig config_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::MaxPool2d> maxpool_;
  std::shared_ptr<nn::Sequential> layers_[4];
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<nn::Linear> fc_;  // null when num_classes == 0
};

}  // namespace cxr::models
