// Building blocks shared by the CUDA reduction and softmax kernels (reduce.cu, softmax.cu): the
// view that moves chosen dims behind the others (so that a reduction runs over contiguous rows
// once the view is made contiguous), shared-memory slots for any value type, and the
// deterministic tree reduction inside a group of G threads of a block.
#pragma once

#include <vector>

#include "tensor/cuda/context.cuh"
#include "tensor/tensor.h"

namespace cxr::cuda {

// The view of `t` with the dims marked in `last` moved behind the others; both groups keep their
// order. raw::contiguous of it is the [rows, n] matrix the row kernels read.
inline Tensor move_to_end(const Tensor& t, const std::vector<bool>& last) {
  Shape sizes, strides;
  for (bool moved : {false, true})
    for (int64_t d = 0; d < t.dim(); ++d)
      if (last[size_t(d)] == moved) {
        sizes.push_back(t.size(d));
        strides.push_back(t.stride(d));
      }
  return Tensor(t.storage(), sizes, strides, t.offset(), t.dtype());
}

// kThreads slots of T in shared memory (a raw buffer: types with constructors, such as the half
// types, cannot be declared as __shared__ arrays).
template <typename T>
__device__ T* shared_slots() {
  __shared__ alignas(16) unsigned char raw[kThreads * sizeof(T)];
  return reinterpret_cast<T*>(raw);
}

// Combines the values `v` of the G threads of each group of the block (G a power of two dividing
// kThreads) as a fixed binary tree and returns the result to every thread of the group. Every
// thread of the block must call it (it synchronises the block).
template <int G, typename T, typename Combine>
__device__ T group_reduce(T v, T* slots, const Combine& combine) {
  const int t = int(threadIdx.x), lane = t % G;
  slots[t] = v;
  __syncthreads();
  for (int w = G / 2; w > 0; w /= 2) {
    if (lane < w) slots[t] = combine(slots[t], slots[t + w]);
    __syncthreads();
  }
  const T result = slots[t - lane];
  __syncthreads();
  return result;
}

template <typename T>
struct SumCombine {
  __device__ T identity() const { return T(0); }
  __device__ T operator()(T a, T b) const { return a + b; }
};

}  // namespace cxr::cuda
