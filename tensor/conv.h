// 2-D convolution, pooling and upsampling on NCHW tensors, each with its backward passes.
#pragma once

#include <array>

#include "tensor/tensor.h"

namespace cxr {

using Int2 = std::array<int64_t, 2>;  // (height, width)

// The parameter structs live in namespace cxr, not raw, so that argument-dependent lookup on them
// does not make raw::conv2d and the differentiable cxr::conv2d (autograd/conv.h) ambiguous.
struct Conv2dParams {
  Int2 stride{1, 1};
  Int2 padding{0, 0};
  Int2 dilation{1, 1};
  int64_t groups = 1;
};

struct Pool2dParams {
  Int2 kernel{2, 2};
  Int2 stride{2, 2};  // torch's default stride = kernel
  Int2 padding{0, 0};
  Int2 dilation{1, 1};  // max pool only
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pool only
};

}  // namespace cxr

namespace cxr::raw {

using cxr::Conv2dParams;
using cxr::Int2;
using cxr::Pool2dParams;

// x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);
// dL/dx for an input of `input_shape`.
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& p);
// dL/dweight for a weight of `weight_shape`.
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& p);

struct PoolResult {
  Tensor out;
  Tensor indices;  // int64 flat h*W+w index into the input plane (max pool)
};
PoolResult max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Shape& input_shape);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& input_shape, const Pool2dParams& p);
// PyTorch's adaptive bins: start = floor(i*H/OH), end = ceil((i+1)*H/OH).
Tensor adaptive_avg_pool2d(const Tensor& x, Int2 output_size);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& input_shape);

// Nearest: src = floor(dst * in/out) (torch 'nearest').
Tensor upsample_nearest2d(const Tensor& x, Int2 output_size);
Tensor upsample_nearest2d_backward(const Tensor& grad_out, const Shape& input_shape);
Tensor upsample_bilinear2d(const Tensor& x, Int2 output_size, bool align_corners);
Tensor upsample_bilinear2d_backward(const Tensor& grad_out, const Shape& input_shape,
                                    bool align_corners);

}  // namespace cxr::raw
