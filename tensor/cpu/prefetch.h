// Software prefetch of a run of values, for loops whose reads are many short runs far apart (which
// the hardware prefetchers pick up too late): the GEMM's packing and the convolution's im2col.
#pragma once

#include <cstdint>  // int64_t

namespace cxr::cpu {

// Prefetches the cache lines of [p, p + count) into L1. A prefetch never faults, but callers keep
// the range inside their data.
template <typename T>
inline void prefetch_span(const T* p, int64_t count) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));
  for (int64_t i = 0; i < count; i += kLine) __builtin_prefetch(p + i, 0, 3);
}

}  // namespace cxr::cpu
