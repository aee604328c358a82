// Differentiable convolution, pooling and upsampling (namespace cxr) on NCHW tensors, over the raw
// kernels of tensor/conv.h. Every backward is itself recorded (each of these maps is linear in the
// tensor it differentiates, so its gradient is again one of these kernels), so they can be
// differentiated again (create_graph).
#pragma once

#include "tensor/conv.h"
#include "tensor/tensor.h"

namespace cxr {

// x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC] (optional).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              const Conv2dParams& p = {});
// The pooled values; the argmax indices stay internal (raw::max_pool2d returns them).
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor adaptive_avg_pool2d(const Tensor& x, Int2 output_size);
Tensor upsample_nearest2d(const Tensor& x, Int2 output_size);
Tensor upsample_bilinear2d(const Tensor& x, Int2 output_size, bool align_corners);

}  // namespace cxr
