// Philox-based random tensors. Element i of a draw of n elements takes word i%4 of block
// (first + i/4), where `first` is reserved from the generator, so values do not depend on threads.
#include "tensor/random.h"

#include <cmath>
#include <numeric>

#include "tensor/convert.h"
#include "tensor/creation.h"

namespace cxr {

std::array<uint32_t, 4> Generator::block(uint64_t block) const {
  const uint32_t ctr[4] = {uint32_t(block), uint32_t(block >> 32), 0u, 0u};
  const uint32_t key[2] = {uint32_t(seed_), uint32_t(seed_ >> 32)};
  std::array<uint32_t, 4> out;
  Philox4x32::block(ctr, key, out.data());
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

// Calls fill(i, words) for every group of 4 elements [4b, 4b+4) with that block's 4 words.
template <typename Fill>
void for_each_block(Generator& gen, int64_t n, Fill&& fill) {
  const int64_t blocks = (n + 3) / 4;
  const uint64_t first = gen.reserve(uint64_t(blocks));
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) fill(b * 4, gen.block(first + uint64_t(b)));
}

template <typename Value>
Tensor generate(const Shape& shape, DType dtype, Generator& gen, Value&& value) {
  Tensor t = empty(shape, dtype);
  const int64_t n = t.numel();
  CXR_DISPATCH_ALL(dtype, "random", [&]<typename T>() {
    T* p = t.data<T>();
    for_each_block(gen, n, [&](int64_t base, const std::array<uint32_t, 4>& w) {
      for (int64_t j = 0; j < 4 && base + j < n; ++j)
        p[base + j] = convert<T>(value(w, int(j), base + j));
    });
  });
  return t;
}

}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, double low, double high) {
  CXR_CHECK(is_floating(dtype), "rand: expected a floating dtype, got ", dtype_name(dtype));
  CXR_CHECK(low <= high, "rand: low (", low, ") > high (", high, ")");
  return generate(shape, dtype, gen, [&](const std::array<uint32_t, 4>& w, int j, int64_t) {
    return low + (high - low) * double(uniform_closed_open(w[size_t(j)]));
  });
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, double mean, double std) {
  CXR_CHECK(is_floating(dtype), "randn: expected a floating dtype, got ", dtype_name(dtype));
  CXR_CHECK(std >= 0, "randn: std must be >= 0, got ", std);
  // Box-Muller on the pairs (w0, w1) and (w2, w3) of a block: r = sqrt(-2 ln u1) with u1 in (0, 1],
  // angle 2 pi u2; the pair gives r cos and r sin.
  return generate(shape, dtype, gen, [&](const std::array<uint32_t, 4>& w, int j, int64_t) {
    int pair = j / 2 * 2;
    double u1 = double(uniform_open_closed(w[size_t(pair)]));
    double u2 = double(uniform_closed_open(w[size_t(pair + 1)]));
    double r = std::sqrt(-2.0 * std::log(u1));
    double angle = 2.0 * M_PI * u2;
    return mean + std * r * (j % 2 == 0 ? std::cos(angle) : std::sin(angle));
  });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype) {
  CXR_CHECK(low < high, "randint: expected low < high, got [", low, ", ", high, ")");
  const uint64_t range = uint64_t(high - low);
  // 64 random bits per element (two words) modulo the range: bias below 2^-32 for ranges < 2^32.
  Tensor t = empty(shape, kInt64);
  const int64_t n = t.numel();
  int64_t* p = t.data<int64_t>();
  const int64_t blocks = (n + 1) / 2;
  const uint64_t first = gen.reserve(uint64_t(blocks));
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) {
    auto w = gen.block(first + uint64_t(b));
    for (int64_t j = 0; j < 2 && 2 * b + j < n; ++j) {
      uint64_t bits = (uint64_t(w[size_t(2 * j)]) << 32) | w[size_t(2 * j + 1)];
      p[2 * b + j] = low + int64_t(bits % range);
    }
  }
  return to(t, dtype);
}

Tensor bernoulli(const Tensor& p, Generator& gen) {
  CXR_CHECK(is_floating(p.dtype()), "bernoulli: probabilities must be floating, got ", describe(p));
  Tensor probs = to(contiguous(p), kFloat64);
  const double* pp = probs.data<double>();
  for (int64_t i = 0; i < probs.numel(); ++i)
    CXR_CHECK(pp[i] >= 0 && pp[i] <= 1, "bernoulli: probability ", pp[i], " at index ", i,
              " is outside [0, 1]");
  return generate(p.sizes(), p.dtype(), gen,
                  [&](const std::array<uint32_t, 4>& w, int j, int64_t i) {
                    return double(uniform_closed_open(w[size_t(j)])) < pp[i] ? 1.0 : 0.0;
                  });
}

Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype) {
  CXR_CHECK(p >= 0 && p <= 1, "bernoulli: probability ", p, " is outside [0, 1]");
  return generate(shape, dtype, gen, [&](const std::array<uint32_t, 4>& w, int j, int64_t) {
    return double(uniform_closed_open(w[size_t(j)])) < p ? 1.0 : 0.0;
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
