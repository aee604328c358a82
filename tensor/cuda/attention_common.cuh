// Shared pieces of the CUDA attention kernels (attention.cu: SIMT kernels and the host entry
// points; attention_tc.cu: the tensor-core kernels for float16/bfloat16): the problem description
// passed to every kernel by value, the masking convention of the CPU op (tensor/cpu/attention.cpp)
// and small launch helpers. Included by .cu files only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "tensor/tensor.h"

namespace cxr::cuda::attention_detail {

constexpr int kMaxBatchDims = 6;
constexpr int kMaxHeadDim = 256;

// One operand: base pointer, element strides of the batch dims, of the rows and of the columns
// (0 where the operand is broadcast).
struct View {
  const void* ptr = nullptr;
  int64_t batch_stride[kMaxBatchDims] = {};
  int64_t rs = 0, cs = 0;
};

enum class MaskKind { None, Keep, Add };

// The whole problem, passed to the kernels by value.
struct Problem {
  int nb = 0;  // leading (batch) dims
  int64_t batch[kMaxBatchDims] = {};
  int64_t bh = 0, L = 0, S = 0;
  int D = 0, Dv = 0;
  View q, k, v, mask, dout, out;
  MaskKind mask_kind = MaskKind::None;
  bool causal = false;
  double scale = 1;
};

// Element offset of batch·head element `bh` in `v`.
inline __device__ int64_t batch_offset(const Problem& p, const View& v, int64_t bh) {
  int64_t off = 0;
  for (int d = p.nb - 1; d >= 0; --d) {
    off += (bh % p.batch[d]) * v.batch_stride[d];
    bh /= p.batch[d];
  }
  return off;
}

// This block's place in a grid of bh × ceil(n / tile) blocks: its batch·head and the first row
// (or key) of its tile.
struct BlockTile {
  int64_t bh, first;
};
inline __device__ BlockTile block_tile(int64_t n, int tile) {
  const int64_t tiles = (n + tile - 1) / tile;
  return {int64_t(blockIdx.x) / tiles, int64_t(blockIdx.x) % tiles * tile};
}

// The (batch·head) bh slice of operand `t`, as elements of type T.
template <typename T>
__device__ __forceinline__ const T* head_slice(const Problem& p, const View& t, int64_t bh) {
  return static_cast<const T*>(t.ptr) + batch_offset(p, t, bh);
}

// Element offset of the (batch·head) bh slice of the mask (0 without a mask).
inline __device__ int64_t mask_offset(const Problem& p, int64_t bh) {
  return p.mask_kind == MaskKind::None ? 0 : batch_offset(p, p.mask, bh);
}

// lse_s[e] and delta_s[e] of the query rows i0 + e, e < n, of batch·head bh (+inf and 0 past L,
// so P = 0 there), loaded by the block's nthreads threads.
template <typename Acc>
__device__ void load_row_stats(Acc* lse_s, Acc* delta_s, const Acc* lse, const Acc* delta,
                               const Problem& p, int64_t bh, int64_t i0, int n, int nthreads) {
  for (int e = int(threadIdx.x); e < n; e += nthreads) {
    lse_s[e] = i0 + e < p.L ? lse[bh * p.L + i0 + e] : std::numeric_limits<Acc>::infinity();
    delta_s[e] = i0 + e < p.L ? delta[bh * p.L + i0 + e] : Acc(0);
  }
}

// The score of (row i, key j) after masking: -inf outside the problem, above the causal diagonal
// (top-left aligned: row i sees keys j <= i) or where a bool mask says false; plus the additive
// mask (already in the arithmetic type Acc).
template <typename Acc>
__device__ Acc masked_score(const Problem& p, int64_t mask_off, int64_t i, int64_t j, Acc s) {
  constexpr Acc kNegInf = -std::numeric_limits<Acc>::infinity();
  if (i >= p.L || j >= p.S || (p.causal && j > i)) return kNegInf;
  const int64_t e = mask_off + i * p.mask.rs + j * p.mask.cs;
  if (p.mask_kind == MaskKind::Keep) return static_cast<const bool*>(p.mask.ptr)[e] ? s : kNegInf;
  if (p.mask_kind == MaskKind::Add) return s + static_cast<const Acc*>(p.mask.ptr)[e];
  return s;
}

// Lets `kernel` use `bytes` of dynamic shared memory (checked against the device's limit).
void allow_smem(const void* kernel, size_t bytes, int device, const char* op);

// Blocks of a grid over bh × ceil(n / tile) tiles (checked against the CUDA grid limit).
unsigned grid_size(int64_t bh, int64_t n, int64_t tile, const char* op);

// ---- tensor-core path (attention_tc.cu) -------------------------------------------------------

// Whether the tensor-core kernels take this problem: float16/bfloat16 inputs, head dims multiples
// of 8 up to 256, a device of compute capability 8.0 or more, and the process-wide selection
// (set_attention_kernel) at Auto.
bool tensor_core_supported(const Problem& p, DType dtype, int device);

// Forward: out [bh, L, Dv] contiguous in `dtype`, lse [bh, L] float32.
void tensor_core_forward(const Problem& p, DType dtype, void* out, float* lse, int device,
                         const char* op);

// Backward from lse and delta = rowsum(dO ∘ O) (both [bh, L] float32): dq [bh, L, D], dk [bh, S,
// D], dv [bh, S, Dv] contiguous in `dtype`.
void tensor_core_backward(const Problem& p, DType dtype, const float* lse, const float* delta,
                          void* dq, void* dk, void* dv, int device, const char* op);

}  // namespace cxr::cuda::attention_detail
