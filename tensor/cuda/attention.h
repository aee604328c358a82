// Host entry points of the CUDA scaled dot-product attention (tensor/cuda/attention.cu), the
// memory-efficient FlashAttention-2 style forward and backward behind raw::scaled_dot_product_
// attention(_backward) for CUDA tensors. The raw ops (tensor/cpu/attention.cpp) have validated
// shapes, dtypes and devices and resolved the scale (> 0) before calling these. Plain C++ header,
// present only in CUDA builds.
#pragma once

#include "tensor/nn_ops.h"
#include "tensor/tensor.h"

namespace cxr::cuda {

// Which kernels run float16/bfloat16 attention: Auto (the default) takes the tensor-core kernels
// (tensor/cuda/attention_tc.cu) where they apply (head dims multiples of 8 up to 256, compute
// capability 8.0+), Simt always the SIMT kernels of attention.cu. Process-wide; for tests and
// benchmarks that compare the two.
enum class AttentionKernel { Auto, Simt };
void set_attention_kernel(AttentionKernel kernel);
AttentionKernel attention_kernel();

// Same results and conventions as the CPU op: out in q's dtype (contiguous), lse [..., L] in
// float32 (float64 for float64 inputs), +inf and a zero output row for a fully masked row.
raw::AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& mask, bool causal, double scale);
raw::AttentionGrads scaled_dot_product_attention_backward(const Tensor& grad_out, const Tensor& q,
                                                          const Tensor& k, const Tensor& v,
                                                          const raw::AttentionResult& saved,
                                                          const Tensor& mask, bool causal,
                                                          double scale);

}  // namespace cxr::cuda
