// UNet++ (Zhou et al., "UNet++: A Nested U-Net Architecture for Medical Image Segmentation", DLMIA
// 2018) as segmentation_models_pytorch's UnetPlusPlus (smp 0.6,
// segmentation_models_pytorch/decoders/unetplusplus/{model,decoder}.py): a torchvision ResNet
// encoder (models::ResNet without fc, child "encoder"), the nested decoder of smp (child "decoder",
// nodes "decoder.blocks.x_<d>_<l>") and smp's SegmentationHead (3x3 conv with bias, child
// "segmentation_head.0"). With the default configuration the state dict is exactly smp's (names,
// shapes, 26,072,337 parameters for resnet34 with one input channel and one class), so a
// converted smp checkpoint loads. The outputs are logits (smp's activation=None).
//
// Two extensions, both off by default:
// - encoder_base_width: the ResNet's base width (64 in smp/torchvision), for small CPU models.
// - deep_supervision: one head per intermediate node of the finest-skip row. smp has none; the
//   paper puts a 1x1 conv on each top-row node X^{0,j}. In smp's layout the top row (resolution
//   1/2, the finest encoder skip) is x_<k>_<depth-2> for k = depth-2 .. 0, i.e. the paper's
//   X^{0,1..depth-1}; the last of them feeds smp's final block x_0_<depth-1> (upsampling to the
//   input size) and the segmentation head, which stands for the paper's last output. The heads
//   "deep_supervision_heads.<i>" (i = 0 .. depth-3) sit on x_<depth-2-i>_<depth-2> (X^{0,i+1}),
//   whose channels are those of the encoder's first feature (the base width: 64 for ResNets);
//   each is smp's SegmentationHead(C, classes, kernel_size=1, upsampling=2): a 1x1 conv with bias
//   ("deep_supervision_heads.<i>.0.weight" [classes, C, 1, 1], ".0.bias") followed by bilinear
//   x2 upsampling with align_corners=True, giving logits at the input resolution.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/resnet.h"
#include "nn/nn.h"

namespace cxr::models {

struct UnetPlusPlusConfig {
  std::string encoder_name = "resnet34";  // resnet18, resnet34 or resnet50
  int encoder_depth = 5;                  // 3..5 encoder stages feed the decoder
  std::vector<int64_t> decoder_channels = {256, 128, 64, 32, 16};  // one per stage (depth)
  int64_t in_channels = 3;
  int64_t classes = 1;
  bool deep_supervision = false;    // our extension (see the top of this file)
  int64_t encoder_base_width = 64;  // our extension for small CPU models
};

// smp's DecoderBlock (decoders/unetplusplus/decoder.py) without attention: x upsampled x2
// (nearest), concatenated with the skip when there is one, then conv1 and conv2, each smp's
// Conv2dReLU = Sequential(Conv2d 3x3 pad 1 without bias, BatchNorm2d, ReLU) (base/modules.py).
class UnetPlusPlusDecoderBlock : public nn::Module {
 public:
  UnetPlusPlusDecoderBlock(int64_t in_channels, int64_t skip_channels, int64_t out_channels);
  // Without a skip (the last block).
  Tensor forward(const Tensor& x) override;
  // skip [N, skip_channels, 2H, 2W] (undefined: no skip).
  Tensor forward(const Tensor& x, const Tensor& skip);

  const int64_t in_channels, skip_channels, out_channels;

 private:
  std::shared_ptr<nn::Sequential> conv1_, conv2_;
};

// smp's UnetPlusPlusDecoder: the nested nodes "blocks.x_<d>_<l>" (d <= l), built from the encoder's
// channels exactly as smp's constructor does (intermediate nodes, d > 0, output the channels of
// the skip at their resolution; the top nodes x_0_<l> output decoder_channels[l]).
class UnetPlusPlusDecoder : public nn::Module {
 public:
  // encoder_channels: the channels of the encoder's depth + 1 features (the input first);
  // decoder_channels: one per stage (depth = decoder_channels.size()).
  UnetPlusPlusDecoder(const std::vector<int64_t>& encoder_channels,
                      const std::vector<int64_t>& decoder_channels);

  // Every node's output by smp's name ("x_0_0", ...), the final one x_0_<depth-1> included, in
  // smp's evaluation order. `features` are the encoder's depth + 1 feature maps, input first.
  std::map<std::string, Tensor> forward_nodes(const std::vector<Tensor>& features);
  // The final node.
  Tensor forward_features(const std::vector<Tensor>& features);

  int depth() const { return int(decoder_channels_.size()); }
  // "x_<d>_<l>".
  static std::string node_name(int d, int l);
  // The block computing node x_<d>_<l>.
  std::shared_ptr<UnetPlusPlusDecoderBlock> block(int d, int l) const;

 private:
  std::vector<int64_t> decoder_channels_;
  std::shared_ptr<nn::ModuleDict> blocks_;
};

class UnetPlusPlus : public nn::Module {
 public:
  // Throws on an unknown encoder name (listing the known ones), a depth outside 3..5, a number of
  // decoder channels other than the depth, or non-positive channel counts.
  explicit UnetPlusPlus(const UnetPlusPlusConfig& config, Generator& gen = default_generator());

  // x [N, in_channels, H, W], H and W divisible by 2^encoder_depth -> logits [N, classes, H, W].
  Tensor forward(const Tensor& x) override;
  // With deep supervision: the logits of every supervised node at the input resolution, those of
  // deep_supervision_heads.0 .. depth-3 first and forward(x)'s last. Without: {forward(x)}.
  std::vector<Tensor> forward_deep(const Tensor& x);

  const UnetPlusPlusConfig& config() const { return config_; }
  // Known encoder names ("resnet18", "resnet34", "resnet50").
  static const std::vector<std::string>& encoder_names();

 private:
  // Checks x's shape against the configuration (channels, divisibility).
  void check_input(const Tensor& x) const;

  UnetPlusPlusConfig config_;
  std::shared_ptr<ResNet> encoder_;
  std::shared_ptr<UnetPlusPlusDecoder> decoder_;
  std::shared_ptr<nn::Sequential> segmentation_head_;
  std::shared_ptr<nn::ModuleList> deep_supervision_heads_;  // null without deep supervision
};

}  // namespace cxr::models
