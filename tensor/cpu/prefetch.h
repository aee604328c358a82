// Software prefetch, for loops whose reads are many short runs far apart (which the hardware
// prefetchers pick up too late): the GEMM's packing and micro-kernels, the convolution's im2col.
#pragma once

#include <cstdint>  // int64_t

namespace cxr::cpu {

// Prefetches one cache line into L2 (prefetcht1): data that is read later, after other work (the
// GEMM's micro-kernels fetch the source of the block packed next).
inline void prefetch_l2(const void* p) {
  __builtin_prefetch(p, 0, 2);
}

// Prefetches the cache lines of [p, p + count) into L1. A prefetch never faults, but callers keep
// the range inside their data.
template <typename T>
inline void prefetch_span(const T* p, int64_t count) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));
  for (int64_t i = 0; i < count; i += kLine) __builtin_prefetch(p + i, 0, 3);
}

}  // namespace cxr::cpu
