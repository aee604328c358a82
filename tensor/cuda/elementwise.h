// Host entry points of the CUDA elementwise kernels (tensor/cuda/elementwise.cu): copies with
// broadcasting and dtype conversion, fills, and the ops of tensor/elementwise.h. Every tensor
// argument is on the same CUDA device (the raw ops check that before calling); shapes and dtypes
// have been validated by the raw op. Plain C++ header, present only in CUDA builds.
#pragma once

#include "tensor/tensor.h"

namespace cxr::cuda {

// dst <- src broadcast to dst's shape, converted to dst's dtype; any strides on both sides.
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);

}  // namespace cxr::cuda
