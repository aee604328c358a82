// Scalar random draws for the data layer (phantoms, transforms, mask compositions, shuffling), on
// top of the Philox cxr::Generator: numbers depend only on the seed and the order of draws.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "tensor/random.h"

namespace cxr::data {

// SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA'14): mixes a seed with a stream index so
// per-sample generators are independent of each other.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Buffers the 4 words of each Philox block of a Generator it refers to.
class Rng {
 public:
  explicit Rng(Generator& gen) : gen_(&gen) {}
  uint32_t next_u32() {
    if (pos_ == 4) {
      words_ = gen_->block(gen_->reserve(1));
      pos_ = 0;
    }
    return words_[size_t(pos_++)];
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() {
    const uint64_t hi = next_u32() >> 5, lo = next_u32() >> 6;
    return double(hi * 67108864ull + lo) * (1.0 / 9007199254740992.0);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Integer uniform in [0, n), n > 0 (rejection-free multiply-shift; bias < 2^-32 for small n).
  int64_t below(int64_t n) { return int64_t((uint64_t(next_u32()) * uint64_t(n)) >> 32); }
  bool bernoulli(double p) { return uniform() < p; }
  // Standard normal by Box-Muller.
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double normal(double mean, double std) { return mean + std * normal(); }

 private:
  Generator* gen_;
  std::array<uint32_t, 4> words_{};
  int pos_ = 4;
};

}  // namespace cxr::data
