// Host entry points of the CUDA softmax kernels (tensor/cuda/softmax.cu) behind softmax,
// log_softmax and their backward ops of tensor/nn_ops.h. The raw op (tensor/cpu/softmax.cpp) has
// validated the dtypes, shapes and devices and normalized `dim`. Plain C++ header, included in
// every build; the functions are defined only where CUDA is built.
#pragma once

#include "tensor/tensor.h"

namespace cxr::cuda {

// softmax (or log_softmax when `log`) of x along `dim`, in x's dtype (half types computed in
// float32), contiguous.
Tensor softmax(const Tensor& x, int64_t dim, bool log);
// Given y = softmax(x) (or log_softmax): the gradient of x, in y's dtype.
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim, bool log);

}  // namespace cxr::cuda
