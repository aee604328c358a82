// Matrix products on tensors, through the packed GEMM of tensor/cpu/gemm.h. Transposed and strided
// views are consumed as they are (no copy).
#pragma once

#include "tensor/tensor.h"

namespace cxr::raw {

// torch.matmul semantics: 1-D/2-D/N-D with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
// [B, M, K] x [B, K, N] -> [B, M, N]
Tensor bmm(const Tensor& a, const Tensor& b);
// x [..., in] · weightᵀ [out, in] + bias [out] (bias may be undefined), bias fused into the GEMM
// output (C initialised with the bias, beta = 1).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace cxr::raw
