// Host entry points of the CUDA matrix products (tensor/cuda/linalg.cu, through cuBLAS). The raw
// ops of tensor/linalg.h validate devices, dtypes and shapes before calling these, so every tensor
// here is on one CUDA device with one floating dtype and compatible shapes. Plain C++ header,
// present only in CUDA builds (definitions).
#pragma once

#include "tensor/tensor.h"

namespace cxr::cuda {

// torch.matmul (1-D/2-D/N-D with broadcast batch dims); bmm is the 3-D case of it.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in] · weightᵀ [out, in] + bias [out] (bias may be undefined): the output starts as the
// broadcast bias and the GEMM adds onto it (beta = 1).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// The plain cuBLAS GEMM the benchmark compares against (bench/bench_cuda_gemm.cpp): one
// cublasGemmEx call on device `device`'s handle and stream computing the row-major product
// c [m, n] = a [m, k] · b [k, n] of contiguous device buffers, with the compute type raw::matmul
// uses for `dtype` (TF32 tensor cores for float32, float32 accumulation for float16/bfloat16).
// Asynchronous, like every op on the device's stream.
void reference_gemm(int device, DType dtype, int64_t m, int64_t n, int64_t k, const void* a,
                    const void* b, void* c);

}  // namespace cxr::cuda
