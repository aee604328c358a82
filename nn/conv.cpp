// Conv2d layer over the differentiable cxr::conv2d.
#include "nn/conv.h"

#include "autograd/conv.h"  // conv2d
#include "nn/init.h"
#include "tensor/creation.h"  // raw::empty

namespace cxr::nn {

Conv2d::Conv2d(int64_t in, int64_t out, Size2 kernel, const Conv2dOptions& o)
    : Module("Conv2d"), in_channels(in), out_channels(out), kernel_size(kernel), options(o) {
  CXR_CHECK(in > 0 && out > 0 && o.groups > 0 && in % o.groups == 0 && out % o.groups == 0,
            "Conv2d: in_channels (", in, ") and out_channels (", out,
            ") must be positive multiples of groups (", o.groups, ")");
  CXR_CHECK(kernel.h > 0 && kernel.w > 0 && o.stride.h > 0 && o.stride.w > 0 && o.dilation.h > 0 &&
                o.dilation.w > 0 && o.padding.h >= 0 && o.padding.w >= 0,
            "Conv2d: kernel_size ", kernel.str(), ", stride ", o.stride.str(), " and dilation ",
            o.dilation.str(), " must be positive and padding ", o.padding.str(), " >= 0");
  weight = raw::empty({out, in / o.groups, kernel.h, kernel.w});
  if (o.bias) bias = raw::empty({out});
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  reset_parameters();
}

void Conv2d::reset_parameters(Generator& gen) {
  init::default_weight_and_bias(weight, bias, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == in_channels, "Conv2d: expected input [N, ",
            in_channels, ", H, W], got ", x.defined() ? describe(x) : std::string("undefined"));
  Conv2dParams p;
  p.stride = options.stride.pair();
  p.padding = options.padding.pair();
  p.dilation = options.dilation.pair();
  p.groups = options.groups;
  return conv2d(x, weight, bias, p);
}

// PyTorch's Conv2d.extra_repr: padding, dilation and groups only when not the default.
std::string Conv2d::extra_repr() const {
  std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                  ", kernel_size=" + kernel_size.str() + ", stride=" + options.stride.str();
  if (options.padding != Size2(0)) s += ", padding=" + options.padding.str();
  if (options.dilation != Size2(1)) s += ", dilation=" + options.dilation.str();
  if (options.groups != 1) s += ", groups=" + std::to_string(options.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

}  // namespace cxr::nn
