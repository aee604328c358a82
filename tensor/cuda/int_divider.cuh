// Integer division by a divisor fixed at launch time, for the index arithmetic of the CUDA
// elementwise and normalisation kernels (loops.cuh, norm.cu). A 64-bit division costs the GPU
// tens of instructions per element, which makes a memory-bound kernel compute-bound; below 2^31
// the quotient is one multiply-high, an add and a shift (Granlund and Montgomery, "Division by
// invariant integers using multiplication", 1994). Kernels are templated on the index type: the
// host picks Divider<uint32_t> when every index they divide is below 2^31
// (fits_fast_divider), Divider<uint64_t> (plain division) otherwise.
#pragma once

#include <cstdint>

#include "tensor/macros.h"

namespace cxr::cuda {

template <typename I>
struct Divider;

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31: with s = ceil(log2 d) and
// magic = floor(2^32 (2^s - d) / d) + 1 (< 2^32 since 2^s < 2d), n / d = (mulhi(n, magic) + n) >>
// s; the sum stays below 2^32 because mulhi(n, magic) <= n < 2^31.
template <>
struct Divider<uint32_t> {
  uint32_t divisor = 1, magic = 1, shift = 0;
  Divider() = default;
  explicit Divider(uint32_t d) : divisor(d) {
    while (shift < 32 && (uint64_t(1) << shift) < d) ++shift;
    magic = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }
  CXR_HD uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, magic);
#else
    const uint32_t hi = uint32_t((uint64_t(n) * magic) >> 32);
#endif
    return (hi + n) >> shift;
  }
};

template <>
struct Divider<uint64_t> {
  uint64_t divisor = 1;
  Divider() = default;
  explicit Divider(uint64_t d) : divisor(d) {}
  CXR_HD uint64_t div(uint64_t n) const { return n / divisor; }
};

// Whether Divider<uint32_t> may be used for dividends below `bound` (and divisors up to it).
inline bool fits_fast_divider(int64_t bound) {
  return bound >= 0 && bound < (int64_t(1) << 31);
}

}  // namespace cxr::cuda
