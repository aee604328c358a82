// Host entry points of the CUDA indexing kernels (tensor/cuda/indexing.cu), called by the raw ops
// of tensor/cpu/indexing.cpp and tensor/cpu/pool.cpp after their validation: every tensor is on one
// CUDA device, shapes and dtypes are checked, outputs are allocated. Index tensors are int64 or
// int32 with any strides. A kernel that meets an out-of-range index skips it, raises a device-side
// flag and returns false (read back after the kernel); the caller then throws the CPU's message.
// Plain C++ header, present only in CUDA builds.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::cuda {

// True when every value of `index` lies in [0, size).
bool index_in_range(const Tensor& index, int64_t size);

// out[p] = src[p] + index[p] * dim_stride elements, for every p of out's shape: `src` is the input
// seen with out's shape and stride 0 along the gathered dim (dim_stride is the input's stride
// there, `size` its length), `index` has out's shape. False when an index is outside [0, size).
bool gather(const Tensor& out, const Tensor& src, const Tensor& index, int64_t size,
            int64_t dim_stride);

// target[p with p[dim] replaced by index[p]] += src[p] for every p of `shape`; `target` is seen
// with `shape` and stride 0 along dim, dim_stride / size are the target's stride and length there.
// One thread per position of the other dims walks dim in order, so the sums are deterministic
// (the same order as the CPU kernel; no atomics). False when an index is outside [0, size) (those
// elements are skipped).
bool scatter_add(const Tensor& target, int64_t dim, const Tensor& index, const Tensor& src,
                 const Shape& shape, int64_t size, int64_t dim_stride);

// out = mask ? fill : t (mask bool, broadcast); `fill_bits` holds the fill value's bytes in out's
// dtype.
void masked_fill(const Tensor& out, const Tensor& t, const Tensor& mask, uint64_t fill_bits);
// out = cond ? a : b (cond bool; a, b of out's dtype; all broadcast to out's shape).
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);

}  // namespace cxr::cuda
