// Differentiable matrix products (namespace cxr) over the raw kernels of tensor/linalg.h. Backward
// functions are written with these same differentiable ops (and the views of autograd/views.h), so
// they can be differentiated again (create_graph).
#pragma once

#include "tensor/tensor.h"

namespace cxr {

// torch.matmul: 1-D/2-D/N-D with broadcast batch dims; a 1-D first argument is a row vector, a
// 1-D second argument a column vector, and the added dim is removed from the result.
Tensor matmul(const Tensor& a, const Tensor& b);
// [B, M, K] x [B, K, N] -> [B, M, N]
Tensor bmm(const Tensor& a, const Tensor& b);
// x [..., in] · weightᵀ [out, in] + bias [out] (bias optional), as torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace cxr
