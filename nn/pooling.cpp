// Pooling layers over the differentiable pooling ops of autograd/conv.h.
#include "nn/pooling.h"

#include "autograd/conv.h"  // max_pool2d, avg_pool2d, adaptive_avg_pool2d

namespace cxr::nn {

namespace {
std::string int2_str(Int2 v) {
  return Size2(v[0], v[1]).str();
}

void check_input(const Tensor& x, const char* layer) {
  CXR_CHECK(x.defined() && x.dim() == 4, layer, ": expected input [N, C, H, W], got ",
            x.defined() ? describe(x) : std::string("undefined"));
}

void check_params(const Pool2dParams& p, const char* layer) {
  CXR_CHECK(p.kernel[0] > 0 && p.kernel[1] > 0 && p.stride[0] > 0 && p.stride[1] > 0 &&
                p.dilation[0] > 0 && p.dilation[1] > 0,
            layer, ": kernel_size ", int2_str(p.kernel), ", stride ", int2_str(p.stride),
            " and dilation ", int2_str(p.dilation), " must be positive");
  CXR_CHECK(p.padding[0] >= 0 && p.padding[1] >= 0 && 2 * p.padding[0] <= p.kernel[0] &&
                2 * p.padding[1] <= p.kernel[1],
            layer, ": padding ", int2_str(p.padding),
            " must be >= 0 and at most half the kernel size ", int2_str(p.kernel));
}
}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel, const MaxPool2dOptions& o) : Module("MaxPool2d") {
  params.kernel = kernel.pair();
  params.stride = o.stride.value_or(kernel).pair();
  params.padding = o.padding.pair();
  params.dilation = o.dilation.pair();
  params.ceil_mode = o.ceil_mode;
  check_params(params, "MaxPool2d");
}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_input(x, "MaxPool2d");
  return max_pool2d(x, params);
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + int2_str(params.kernel) + ", stride=" + int2_str(params.stride) +
         ", padding=" + int2_str(params.padding) + ", dilation=" + int2_str(params.dilation) +
         ", ceil_mode=" + (params.ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(Size2 kernel, const AvgPool2dOptions& o) : Module("AvgPool2d") {
  params.kernel = kernel.pair();
  params.stride = o.stride.value_or(kernel).pair();
  params.padding = o.padding.pair();
  params.ceil_mode = o.ceil_mode;
  params.count_include_pad = o.count_include_pad;
  check_params(params, "AvgPool2d");
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_input(x, "AvgPool2d");
  return avg_pool2d(x, params);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + int2_str(params.kernel) + ", stride=" + int2_str(params.stride) +
         ", padding=" + int2_str(params.padding);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 size) : Module("AdaptiveAvgPool2d"), output_size(size) {
  CXR_CHECK(size.h > 0 && size.w > 0, "AdaptiveAvgPool2d: output_size ", size.str(),
            " must be positive");
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_input(x, "AdaptiveAvgPool2d");
  return adaptive_avg_pool2d(x, output_size.pair());
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return "output_size=" + output_size.str();
}

}  // namespace cxr::nn
