// Counter-based random numbers: Philox 4x32-10 (Salmon et al., SC'11; Random123 philox.h).
// Element i of a draw uses counter (i/4, stream) and lane i%4, keyed by the seed, so the numbers
// depend only on (seed, stream offset, element index): the same for any thread count and on the
// GPU, where the draws of a `device` argument are generated (tensor/cuda/random.cu) with the same
// counters, the same reservation from the Generator and the same conversions
// (tensor/random_math.h), bit for bit.
#pragma once

#include <array>
#include <cstdint>

#include "tensor/macros.h"
#include "tensor/tensor.h"

namespace cxr {

// One Philox 4x32 block with `rounds` rounds (10 is the standard strength).
struct Philox4x32 {
  static constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  static constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

  static CXR_HD void round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = uint64_t(kM0) * c[0];
    uint64_t p1 = uint64_t(kM1) * c[2];
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t out0 = hi1 ^ c[1] ^ k[0], out2 = hi0 ^ c[3] ^ k[1];
    c[0] = out0;
    c[1] = lo1;
    c[2] = out2;
    c[3] = lo0;
  }
  // ctr and key are read, out receives the 4 random words.
  static CXR_HD void block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4],
                           int rounds = 10) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < rounds; ++r) {
      if (r > 0) {
        k[0] += kW0;
        k[1] += kW1;
      }
      round(c, k);
    }
    for (int i = 0; i < 4; ++i) out[i] = c[i];
  }
};

// Exact conversions of a 32-bit word to float (spec/kernels.md §4): the top 24 bits scaled by
// 2^-24.
CXR_HD float uniform_open_closed(uint32_t x) {
  return float((x >> 8) + 1u) * 5.9604644775390625e-8f;
}
CXR_HD float uniform_closed_open(uint32_t x) {
  return float(x >> 8) * 5.9604644775390625e-8f;
}

// A seeded stream of Philox blocks. Each draw reserves a contiguous range of 128-bit counters, so
// successive draws never overlap and a draw's numbers do not depend on how it is parallelised.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  // Offset (in 128-bit blocks) of the next draw; saved/restored for reproducible recomputation.
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  // Reserves `blocks` counters and returns the first.
  uint64_t reserve(uint64_t blocks) {
    uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }
  // Word `lane` (0..3) of block `block`: key = seed, counter = (block lo, block hi, 0, 0).
  std::array<uint32_t, 4> block(uint64_t block) const;

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide default generator (DESIGN.md allows this one piece of global state).
Generator& default_generator();
void manual_seed(uint64_t seed);

namespace raw {
// Draws are made on `device` (the generator stays on the host: only its seed and reserved offset
// travel to the kernel).
// Uniform in [low, high).
Tensor rand(const Shape& shape, Generator& gen, DType dtype = kFloat32, double low = 0.0,
            double high = 1.0, Device device = Device::cpu());
// Normal(mean, std) by Box-Muller on pairs of uniforms.
Tensor randn(const Shape& shape, Generator& gen, DType dtype = kFloat32, double mean = 0.0,
             double std = 1.0, Device device = Device::cpu());
// Integers uniform in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype = kInt64,
               Device device = Device::cpu());
// 1 with probability p[i] (p is a tensor of probabilities), else 0; same dtype and device as p.
Tensor bernoulli(const Tensor& p, Generator& gen);
// 1 with probability p, else 0.
Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype = kFloat32,
                 Device device = Device::cpu());
// A random permutation of 0..n-1 (int64), generated on the CPU.
Tensor randperm(int64_t n, Generator& gen);
}  // namespace raw

}  // namespace cxr
