// Host entry points of the CUDA convolutions (tensor/cuda/conv.cu, through cuDNN). The raw ops of
// tensor/conv.h validate devices, dtypes and shapes before calling these (the shapes passed here
// are the validated ones), so every tensor is on one CUDA device with one floating dtype. In a
// build without cuDNN they throw. Plain C++ header, present only in CUDA builds (definitions).
#pragma once

#include "tensor/conv.h"
#include "tensor/tensor.h"

namespace cxr::cuda {

// y [N, OC, OH, OW] (`out_shape`) = conv(x, weight) + bias (bias may be undefined).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              const Shape& out_shape);
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& p);
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& p);

}  // namespace cxr::cuda
