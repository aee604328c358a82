// Random draws and dropout on CUDA devices against the CPU: rand, randn, randint, bernoulli (both
// forms) and dropout give the same bits on the GPU as on the CPU for the same generator seed and
// offset, and advance the generator the same way (tensor/cuda/random.cu). The CPU-only tests (they
// run everywhere) check that the default device keeps the CPU draws as they were: the documented
// counter layout and conversions, and Box-Muller through the shared float64 log/sin/cos of
// tensor/random_math.h within 1 ulp of the C library.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"
#include "tensor/random_math.h"

using namespace cxr;

namespace {

const Device kGpu = Device::cuda(0);

int64_t ulp_distance(double a, double b) {
  int64_t x, y;
  std::memcpy(&x, &a, 8);
  std::memcpy(&y, &b, 8);
  return x > y ? x - y : y - x;
}

// The words of element i of a draw starting at block `first` (4 elements per block).
uint32_t word(const Generator& g, uint64_t first, int64_t i) {
  return g.block(first + uint64_t(i / 4))[size_t(i % 4)];
}

std::string where(const char* op, uint64_t seed, uint64_t offset, int64_t n, DType dt) {
  return std::string(op) + " seed " + std::to_string(seed) + " offset " + std::to_string(offset) +
         " n " + std::to_string(n) + " " + std::string(dtype_name(dt));
}

// A CPU and a GPU generator in the same state.
struct GenPair {
  Generator cpu, gpu;
  GenPair(uint64_t seed, uint64_t offset) : cpu(seed), gpu(seed) {
    cpu.set_offset(offset);
    gpu.set_offset(offset);
  }
};

// The GPU tensor is on the device and has the CPU tensor's bits; both generators are at the same
// offset afterwards.
void expect_same_draw(const Tensor& gpu, const Tensor& cpu, const GenPair& g,
                      const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_TRUE(gpu.device().is_cuda()) << gpu.device().str();
  EXPECT_TRUE(test::bitwise_equal(gpu, cpu));
  EXPECT_EQ(g.gpu.offset(), g.cpu.offset());
}

struct DrawCase {
  uint64_t seed, offset;
  int64_t n;
};
const std::vector<DrawCase> kDraws = {{0, 0, 0},
                                      {0, 0, 1},
                                      {42, 0, 3},
                                      {42, 5, 5},
                                      {7, 123456789, 1001},
                                      {(uint64_t(1) << 40) + 7, 3, 4099},
                                      {2024, 0, (1 << 20) + 3}};
using test::kFloatDtypes;

}  // namespace

// ---- CPU (runs everywhere) -------------------------------------------------------------------

TEST(RandomMath, LogSinCosWithinOneUlpOfTheCLibrary) {
  int64_t worst_log = 0, worst_sin = 0, worst_cos = 0;
  Generator g(99);
  for (uint64_t b = 0; b < 200000; ++b) {
    for (uint32_t w : g.block(b)) {
      const double u1 = double(uniform_open_closed(w)), u2 = double(uniform_closed_open(w));
      worst_log = std::max(worst_log, ulp_distance(rng::log_f64(u1), std::log(u1)));
      const double a = 2.0 * M_PI * u2;
      double s, c;
      rng::sincos_f64(a, &s, &c);
      worst_sin = std::max(worst_sin, ulp_distance(s, std::sin(a)));
      worst_cos = std::max(worst_cos, ulp_distance(c, std::cos(a)));
    }
  }
  EXPECT_LE(worst_log, 1);
  EXPECT_LE(worst_sin, 1);
  EXPECT_LE(worst_cos, 1);
  EXPECT_EQ(rng::log_f64(1.0), 0.0);
  EXPECT_NEAR(rng::log_f64(std::ldexp(1.0, -24)), -24 * std::log(2.0), 1e-14);
}

// rand, bernoulli and randint with the default device follow the documented layout exactly: word
// i % 4 of block first + i / 4 (two words per randint element); the generator advances by the
// blocks used.
TEST(RandomDefaultDevice, CpuDrawsFollowTheCounterLayout) {
  const int64_t n = 1003;
  Generator g(31);
  g.set_offset(17);
  const Generator ref = g;
  Tensor u = raw::rand({n}, g, kFloat64, -1.0, 3.0);
  EXPECT_EQ(u.device(), Device::cpu());
  EXPECT_EQ(g.offset(), 17u + uint64_t((n + 3) / 4));
  std::vector<double> uv = u.to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(uv[size_t(i)], -1.0 + 4.0 * double(uniform_closed_open(word(ref, 17, i)))) << i;

  const Generator ref_b = g;
  const uint64_t first_b = g.offset();
  Tensor b = raw::bernoulli({n}, 0.3, g);
  std::vector<float> bv = b.to_vector<float>();
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(bv[size_t(i)], double(uniform_closed_open(word(ref_b, first_b, i))) < 0.3 ? 1.f : 0.f)
        << i;

  const Generator ref_i = g;
  const uint64_t first_i = g.offset();
  Tensor r = raw::randint(-5, 1000003, {n}, g);
  EXPECT_EQ(g.offset(), first_i + uint64_t((n + 1) / 2));
  std::vector<int64_t> rv = r.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto w = ref_i.block(first_i + uint64_t(i / 2));
    const uint64_t bits = (uint64_t(w[size_t(2 * (i % 2))]) << 32) | w[size_t(2 * (i % 2) + 1)];
    ASSERT_EQ(rv[size_t(i)], -5 + int64_t(bits % 1000008u)) << i;
  }
}

// randn with the default device: the Box-Muller formula with the C library's log/sqrt/cos/sin
// (the CPU implementation before the shared float64 functions): float32 draws identical, float64
// standard normals within 4 ulp.
TEST(RandomDefaultDevice, CpuRandnMatchesTheLibraryFormula) {
  const int64_t n = 100003;
  Generator g32(5), g64(5);
  Tensor x32 = raw::randn({n}, g32, kFloat32, 0.5, 2.0);
  Tensor x64 = raw::randn({n}, g64, kFloat64);
  EXPECT_EQ(g32.offset(), uint64_t((n + 3) / 4));
  const Generator ref(5);
  std::vector<float> v32 = x32.to_vector<float>();
  std::vector<double> v64 = x64.to_vector<double>();
  int64_t worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto w = ref.block(uint64_t(i / 4));
    const int j = int(i % 4), pair = j / 2 * 2;
    const double u1 = double(uniform_open_closed(w[size_t(pair)]));
    const double u2 = double(uniform_closed_open(w[size_t(pair + 1)]));
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
    const double normal = r * (j % 2 == 0 ? std::cos(a) : std::sin(a));
    ASSERT_EQ(v32[size_t(i)], float(0.5 + 2.0 * normal)) << i;
    worst = std::max(worst, ulp_distance(v64[size_t(i)], normal));
  }
  EXPECT_LE(worst, 4);
}

TEST(RandomDefaultDevice, ExplicitCpuDeviceEqualsTheDefault) {
  Generator a(8), b(8);
  EXPECT_TRUE(test::bitwise_equal(raw::randn({37}, a),
                                  raw::randn({37}, b, kFloat32, 0.0, 1.0, Device::cpu())));
  EXPECT_TRUE(test::bitwise_equal(raw::rand({37}, a),
                                  raw::rand({37}, b, kFloat32, 0.0, 1.0, Device::cpu())));
  EXPECT_TRUE(test::bitwise_equal(raw::randint(0, 9, {37}, a),
                                  raw::randint(0, 9, {37}, b, kInt64, Device::cpu())));
  EXPECT_TRUE(test::bitwise_equal(raw::bernoulli({37}, 0.5, a),
                                  raw::bernoulli({37}, 0.5, b, kFloat32, Device::cpu())));
  EXPECT_EQ(a.offset(), b.offset());
}

// ---- CUDA --------------------------------------------------------------------------------------

TEST(CudaRandom, RandMatchesCpuBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DrawCase& c : kDraws)
    for (DType dt : kFloatDtypes) {
      GenPair g(c.seed, c.offset);
      Tensor cpu = raw::rand({c.n}, g.cpu, dt, -2.0, 3.5);
      Tensor gpu = raw::rand({c.n}, g.gpu, dt, -2.0, 3.5, kGpu);
      expect_same_draw(gpu, cpu, g, where("rand", c.seed, c.offset, c.n, dt));
    }
}

TEST(CudaRandom, RandnMatchesCpuBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DrawCase& c : kDraws)
    for (DType dt : kFloatDtypes) {
      GenPair g(c.seed, c.offset);
      Tensor cpu = raw::randn({c.n}, g.cpu, dt, 0.25, 1.5);
      Tensor gpu = raw::randn({c.n}, g.gpu, dt, 0.25, 1.5, kGpu);
      expect_same_draw(gpu, cpu, g, where("randn", c.seed, c.offset, c.n, dt));
    }
  // A multi-dimensional shape and std 0.
  GenPair g(3, 11);
  expect_same_draw(raw::randn({3, 5, 7}, g.gpu, kFloat32, 0.0, 1.0, kGpu),
                   raw::randn({3, 5, 7}, g.cpu, kFloat32), g, "randn [3, 5, 7]");
  expect_same_draw(raw::randn({9}, g.gpu, kFloat64, 5.0, 0.0, kGpu),
                   raw::randn({9}, g.cpu, kFloat64, 5.0, 0.0), g, "randn std 0");
}

TEST(CudaRandom, RandintMatchesCpuBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  const int64_t big = int64_t(1) << 40;
  for (const DrawCase& c : kDraws)
    for (DType dt : {kInt64, kInt32}) {
      const int64_t low = dt == kInt64 ? -big : -7, high = dt == kInt64 ? big + 3 : 100003;
      GenPair g(c.seed, c.offset);
      Tensor cpu = raw::randint(low, high, {c.n}, g.cpu, dt);
      Tensor gpu = raw::randint(low, high, {c.n}, g.gpu, dt, kGpu);
      expect_same_draw(gpu, cpu, g, where("randint", c.seed, c.offset, c.n, dt));
    }
  Generator g(1);
  EXPECT_ERROR_CONTAINS(raw::randint(3, 3, {2}, g, kInt64, kGpu), "expected low < high");
}

TEST(CudaRandom, BernoulliScalarMatchesCpuBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DrawCase& c : kDraws)
    for (double p : {0.0, 0.3, 1.0})
      for (DType dt : {kFloat32, kFloat16, kBool, kInt64}) {
        GenPair g(c.seed, c.offset);
        Tensor cpu = raw::bernoulli({c.n}, p, g.cpu, dt);
        Tensor gpu = raw::bernoulli({c.n}, p, g.gpu, dt, kGpu);
        expect_same_draw(gpu, cpu, g,
                         where("bernoulli", c.seed, c.offset, c.n, dt) + " p " + std::to_string(p));
      }
}

TEST(CudaRandom, BernoulliTensorMatchesCpuBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DrawCase& c : kDraws)
    for (DType dt : kFloatDtypes) {
      Generator pg(c.seed + 1);
      Tensor p = raw::rand({c.n}, pg, dt);
      GenPair g(c.seed, c.offset);
      Tensor cpu = raw::bernoulli(p, g.cpu);
      Tensor gpu = raw::bernoulli(raw::to(p, kGpu), g.gpu);
      expect_same_draw(gpu, cpu, g, where("bernoulli(p)", c.seed, c.offset, c.n, dt));
    }
  // Non-contiguous probabilities.
  Generator pg(4);
  Tensor p = raw::transpose(raw::rand({6, 9}, pg, kFloat32), 0, 1);
  GenPair g(12, 34);
  expect_same_draw(raw::bernoulli(raw::to(p, kGpu), g.gpu), raw::bernoulli(p, g.cpu), g,
                   "bernoulli(p) of a transposed p");
}

TEST(CudaRandom, BernoulliRejectsBadProbabilitiesLikeTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor p = raw::from_vector(std::vector<float>{0.5f, 0.1f, 1.5f, -1.0f, 0.2f}, {5});
  GenPair g(1, 0);
  const std::string cpu_msg = test::error_message([&] { raw::bernoulli(p, g.cpu); });
  const std::string gpu_msg = test::error_message([&] { raw::bernoulli(raw::to(p, kGpu), g.gpu); });
  EXPECT_NE(cpu_msg.find("probability 1.5 at index 2 is outside [0, 1]"), std::string::npos)
      << cpu_msg;
  EXPECT_EQ(gpu_msg, cpu_msg);
  EXPECT_EQ(g.gpu.offset(), g.cpu.offset());
  Tensor nan_p = raw::from_vector(std::vector<float>{0.5f, NAN}, {2});
  EXPECT_ERROR_CONTAINS(raw::bernoulli(raw::to(nan_p, kGpu), g.gpu), "at index 1");
  EXPECT_ERROR_CONTAINS(raw::bernoulli({2}, 1.5, g.gpu, kFloat32, kGpu), "outside [0, 1]");
}

TEST(CudaRandom, DropoutMatchesCpuBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DrawCase& c : kDraws)
    for (double p : {0.0, 0.3, 1.0})
      for (DType dt : kFloatDtypes) {
        Generator xg(c.seed + 2);
        Tensor x = raw::randn({c.n}, xg, dt);
        GenPair g(c.seed, c.offset);
        raw::DropoutResult cpu = raw::dropout(x, p, g.cpu);
        raw::DropoutResult gpu = raw::dropout(raw::to(x, kGpu), p, g.gpu);
        const std::string what =
            where("dropout", c.seed, c.offset, c.n, dt) + " p " + std::to_string(p);
        expect_same_draw(gpu.out, cpu.out, g, what + " out");
        expect_same_draw(gpu.mask, cpu.mask, g, what + " mask");
      }
  // A non-contiguous input: the mask follows the logical (contiguous) order on both.
  Generator xg(6);
  Tensor x = raw::transpose(raw::randn({5, 7}, xg), 0, 1);
  GenPair g(77, 9);
  raw::DropoutResult cpu = raw::dropout(x, 0.5, g.cpu);
  raw::DropoutResult gpu = raw::dropout(raw::to(x, kGpu), 0.5, g.gpu);
  expect_same_draw(gpu.out, cpu.out, g, "dropout of a transposed input, out");
  expect_same_draw(gpu.mask, cpu.mask, g, "dropout of a transposed input, mask");
}

// Successive draws on the GPU continue the stream exactly as on the CPU.
TEST(CudaRandom, InterleavedDrawsKeepTheGeneratorsInStep) {
  CXR_SKIP_WITHOUT_CUDA();
  GenPair g(2026, 0);
  for (int step = 0; step < 4; ++step) {
    expect_same_draw(raw::randn({7, 3}, g.gpu, kFloat32, 0.0, 1.0, kGpu), raw::randn({7, 3}, g.cpu),
                     g, "randn step " + std::to_string(step));
    expect_same_draw(raw::randint(0, 10, {5}, g.gpu, kInt64, kGpu), raw::randint(0, 10, {5}, g.cpu),
                     g, "randint step " + std::to_string(step));
    Tensor x = raw::ones({13}, kFloat32);
    expect_same_draw(raw::dropout(raw::to(x, kGpu), 0.25, g.gpu).mask,
                     raw::dropout(x, 0.25, g.cpu).mask, g, "dropout step " + std::to_string(step));
  }
}
