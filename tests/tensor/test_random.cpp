// Philox 4x32 against the Random123 known-answer vectors (spec/kernels.md §4), the generator's
// counter layout, thread-count independence, and statistics of the distributions.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "tensor/ops.h"

using namespace cxr;

namespace {
std::array<uint32_t, 4> philox(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key,
                               int rounds) {
  std::array<uint32_t, 4> out;
  Philox4x32::block(ctr.data(), key.data(), out.data(), rounds);
  return out;
}
}  // namespace

// DEShawResearch/random123 tests/kat_vectors, lines 27-29 (10 rounds) and the 7-round lines.
TEST(Philox, MatchesRandom123KnownAnswers) {
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox({0, 0, 0, 0}, {0, 0}, 10), (A4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, 10),
            (A4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, 10),
            (A4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
  EXPECT_EQ(philox({0, 0, 0, 0}, {0, 0}, 7), (A4{0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}));
  EXPECT_EQ(philox({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, 7),
            (A4{0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}));
}

// Generator block b = philox(ctr = (b lo, b hi, 0, 0), key = (seed lo, seed hi)); vectors from
// spec/kernels.md §4 (independent implementation).
TEST(Philox, GeneratorCounterLayout) {
  using A4 = std::array<uint32_t, 4>;
  Generator g(42);
  EXPECT_EQ(g.block(0), (A4{0x9ceaf053, 0x77f5493b, 0x12bf50ad, 0x5742b3d7}));
  EXPECT_EQ(g.block(1), (A4{0xfcdb2127, 0x53ba6cfd, 0x838f5a6e, 0x744e06fb}));
}

TEST(Random, UniformConversionsAreExactAndInRange) {
  EXPECT_EQ(uniform_closed_open(0u), 0.0f);
  EXPECT_EQ(uniform_closed_open(0xffffffffu), 1.0f - std::ldexp(1.0f, -24));
  EXPECT_EQ(uniform_open_closed(0u), std::ldexp(1.0f, -24));
  EXPECT_EQ(uniform_open_closed(0xffffffffu), 1.0f);
}

TEST(Random, SameSeedSameNumbersAnyThreadCount) {
  const int saved = omp_get_max_threads();
  Generator a(7), b(7);
  omp_set_num_threads(1);
  Tensor x = raw::randn({300001}, a);
  omp_set_num_threads(2);
  Tensor y = raw::randn({300001}, b);
  omp_set_num_threads(saved);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  // Successive draws continue the stream instead of repeating it.
  Tensor z = raw::randn({8}, b);
  auto first = x.to_vector<float>();
  first.resize(8);
  EXPECT_NE(z.to_vector<float>(), first);
}

TEST(Random, RandnMomentsMatchTheStandardNormal) {
  Generator g(2024);
  const int64_t n = 1000000;
  Tensor x = raw::randn({n}, g, kFloat64);
  auto v = x.to_vector<double>();
  double mean = 0, m2 = 0, m4 = 0;
  for (double e : v) mean += e;
  mean /= n;
  for (double e : v) {
    m2 += (e - mean) * (e - mean);
    m4 += std::pow(e - mean, 4);
  }
  m2 /= n;
  m4 /= n;
  // Standard errors: mean 1/sqrt(n) = 1e-3, variance sqrt(2/n) = 1.4e-3, kurtosis ~ sqrt(96/n).
  EXPECT_NEAR(mean, 0.0, 5e-3);
  EXPECT_NEAR(m2, 1.0, 7e-3);
  EXPECT_NEAR(m4 / (m2 * m2), 3.0, 0.05);
  Tensor y = raw::randn({1000}, g, kFloat32, 5.0, 0.0);
  for (float e : y.to_vector<float>()) EXPECT_EQ(e, 5.0f);
}

TEST(Random, RandRangeAndMean) {
  Generator g(3);
  Tensor x = raw::rand({200000}, g, kFloat32, -2.0, 4.0);
  auto v = x.to_vector<double>();
  double mean = 0;
  for (double e : v) {
    ASSERT_GE(e, -2.0);
    ASSERT_LT(e, 4.0);
    mean += e;
  }
  EXPECT_NEAR(mean / double(v.size()), 1.0, 0.03);  // sd of the mean: 6/sqrt(12 n) = 0.004
}

TEST(Random, RandintCoversTheRangeUniformly) {
  Generator g(5);
  Tensor x = raw::randint(-3, 4, {70000}, g);
  std::vector<int> counts(7, 0);
  for (int64_t e : x.to_vector<int64_t>()) {
    ASSERT_GE(e, -3);
    ASSERT_LT(e, 4);
    ++counts[size_t(e + 3)];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);  // sd ~ 93
  EXPECT_THROW(raw::randint(3, 3, {2}, g), Error);
}

TEST(Random, BernoulliFrequencyAndValidation) {
  Generator g(9);
  Tensor b = raw::bernoulli({100000}, 0.3, g);
  double ones = 0;
  for (float e : b.to_vector<float>()) ones += e;
  EXPECT_NEAR(ones / 100000, 0.3, 0.006);  // sd 0.00145
  Tensor p = raw::from_vector(std::vector<float>{0.0f, 1.0f, 0.0f, 1.0f}, {4});
  EXPECT_EQ(raw::bernoulli(p, g).to_vector<float>(), (std::vector<float>{0, 1, 0, 1}));
  EXPECT_THROW(raw::bernoulli({2}, 1.5, g), Error);
}

TEST(Random, RandpermIsAPermutation) {
  Generator g(11);
  auto v = raw::randperm(1000, g).to_vector<int64_t>();
  std::vector<int64_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[size_t(i)], i);
  EXPECT_NE(v, sorted);
}
