// Philox-based random tensors. Element i of a draw of n elements takes word i%4 of block
// (first + i/4), where `first` is reserved from the generator, so values do not depend on threads.
// Draws on a CUDA device reserve the same blocks and run the same value functions
// (tensor/random_math.h) in tensor/cuda/random.cu.
#include "tensor/random.h"

#include <cmath>
#include <numeric>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/random.h"
#include "tensor/random_math.h"

namespace cxr {

std::array<uint32_t, 4> Generator::block(uint64_t block) const {
  std::array<uint32_t, 4> out;
  rng::philox_block(seed_, block, out.data());
  return out;
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
}

namespace raw {

namespace {

// Calls fill(i, words) for every group of 4 elements [4b, 4b+4) with that block's 4 words; the
// blocks [first, first + blocks) were reserved by the caller.
template <typename Fill>
void for_each_block(const Generator& gen, uint64_t first, int64_t blocks, Fill&& fill) {
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) fill(b, gen.block(first + uint64_t(b)));
}

// A draw of `shape` with one element per Philox word: reserves ceil(n / 4) blocks, then fills the
// tensor on the CPU with value(words, lane, index) or, on a CUDA device, with `cuda_fill(t, seed,
// first)`.
template <typename Value, typename CudaFill>
Tensor generate(const Shape& shape, DType dtype, Device device, Generator& gen, Value&& value,
                CudaFill&& cuda_fill) {
  check_device_available(device);
  Tensor t = empty(shape, dtype, device);
  const int64_t n = t.numel();
  const int64_t blocks = (n + 3) / 4;
  const uint64_t first = gen.reserve(uint64_t(blocks));
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      cuda_fill(t, gen.seed(), first);
      return t;
    }
  }
  CXR_DISPATCH_ALL(dtype, "random", [&]<typename T>() {
    T* p = t.data<T>();
    for_each_block(gen, first, blocks, [&](int64_t b, const std::array<uint32_t, 4>& w) {
      for (int64_t j = 0; j < 4 && b * 4 + j < n; ++j)
        p[b * 4 + j] = convert<T>(value(w.data(), int(j), b * 4 + j));
    });
  });
  return t;
}

}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, double low, double high,
            Device device) {
  CXR_CHECK(is_floating(dtype), "rand: expected a floating dtype, got ", dtype_name(dtype));
  CXR_CHECK(low <= high, "rand: low (", low, ") > high (", high, ")");
  const double span = high - low;
  return generate(
      shape, dtype, device, gen,
      [&](const uint32_t* w, int j, int64_t) { return rng::uniform_value(w[j], low, span); },
      [&](const Tensor& t, uint64_t seed, uint64_t first) {
        cuda::rand(t, seed, first, low, span);
      });
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, double mean, double std,
             Device device) {
  CXR_CHECK(is_floating(dtype), "randn: expected a floating dtype, got ", dtype_name(dtype));
  CXR_CHECK(std >= 0, "randn: std must be >= 0, got ", std);
  return generate(
      shape, dtype, device, gen,
      [&](const uint32_t* w, int j, int64_t) { return rng::normal_value(w, j, mean, std); },
      [&](const Tensor& t, uint64_t seed, uint64_t first) {
        cuda::randn(t, seed, first, mean, std);
      });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype,
               Device device) {
  CXR_CHECK(low < high, "randint: expected low < high, got [", low, ", ", high, ")");
  check_device_available(device);
  const uint64_t range = uint64_t(high - low);
  // Two elements per block (64 random bits each).
  Tensor t = empty(shape, kInt64, device);
  const int64_t n = t.numel();
  const int64_t blocks = (n + 1) / 2;
  const uint64_t first = gen.reserve(uint64_t(blocks));
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      cuda::randint(t, gen.seed(), first, low, range);
      return to(t, dtype);
    }
  }
  int64_t* p = t.data<int64_t>();
  for_each_block(gen, first, blocks, [&](int64_t b, const std::array<uint32_t, 4>& w) {
    for (int64_t j = 0; j < 2 && 2 * b + j < n; ++j)
      p[2 * b + j] = rng::randint_value(w.data(), int(j), low, range);
  });
  return to(t, dtype);
}

Tensor bernoulli(const Tensor& p, Generator& gen) {
  CXR_CHECK(is_floating(p.dtype()), "bernoulli: probabilities must be floating, got ", describe(p));
  Tensor probs = to(contiguous(p), kFloat64);
  const Device device = p.device();
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      int64_t bad = -1;
      double value = 0;
      cuda::find_invalid_probability(probs, &bad, &value);
      CXR_CHECK(bad < 0, "bernoulli: probability ", value, " at index ", bad, " is outside [0, 1]");
    }
  }
  const double* pp = device.is_cpu() ? probs.data<double>() : nullptr;
  for (int64_t i = 0; pp && i < probs.numel(); ++i)
    CXR_CHECK(pp[i] >= 0 && pp[i] <= 1, "bernoulli: probability ", pp[i], " at index ", i,
              " is outside [0, 1]");
  return generate(
      p.sizes(), p.dtype(), device, gen,
      [&](const uint32_t* w, int j, int64_t i) {
        return rng::bernoulli_value(w[j], pp[i]) ? 1.0 : 0.0;
      },
      [&](const Tensor& t, uint64_t seed, uint64_t first) {
        cuda::bernoulli(t, probs, seed, first);
      });
}

Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype, Device device) {
  CXR_CHECK(p >= 0 && p <= 1, "bernoulli: probability ", p, " is outside [0, 1]");
  return generate(
      shape, dtype, device, gen,
      [&](const uint32_t* w, int j, int64_t) { return rng::bernoulli_value(w[j], p) ? 1.0 : 0.0; },
      [&](const Tensor& t, uint64_t seed, uint64_t first) {
        cuda::bernoulli(t, Tensor(), seed, first, p);
      });
}

Tensor randperm(int64_t n, Generator& gen) {
  CXR_CHECK(n >= 0, "randperm: n must be >= 0, got ", n);
  Tensor t = arange(0, double(n), 1, kInt64);
  int64_t* p = t.data<int64_t>();
  // Fisher-Yates with one 64-bit draw per step.
  if (n > 1) {
    Tensor r = randint(0, int64_t(1) << 62, {n}, gen, kInt64);
    const int64_t* rv = r.data<int64_t>();
    for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rv[i] % (i + 1)]);
  }
  return t;
}

}  // namespace raw
}  // namespace cxr
