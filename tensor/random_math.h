// The value of each element of a random draw, shared by the CPU loops (tensor/random.cpp,
// tensor/cpu/dropout.cpp) and the CUDA kernels (tensor/cuda/random.cu) so both give the same bits:
// the Philox block of a generator position, the conversions of its words to uniforms, normals,
// integers and Bernoulli/dropout decisions, and the float64 log/sin/cos of Box-Muller.
//
// The library log/sin/cos differ between glibc and CUDA in the last bit, so Box-Muller uses its own
// float64 implementations built only from IEEE-rounded +, -, *, / (no contraction on either side:
// -ffp-contract=off on the host, --fmad=false for nvcc) and the correctly rounded sqrt. They are
// accurate to about 1 ulp of float64 (tests/tensor/test_cuda_random.cpp checks them against the C
// library), so float32 draws practically never differ from the library formula.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "tensor/macros.h"
#include "tensor/random.h"

namespace cxr::rng {

// Block `block` of the Philox stream of `seed`: key = (seed lo, seed hi), counter = (block lo,
// block hi, 0, 0); Generator::block on the host.
CXR_HD void philox_block(uint64_t seed, uint64_t block, uint32_t out[4]) {
  const uint32_t ctr[4] = {uint32_t(block), uint32_t(block >> 32), 0u, 0u};
  const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
  Philox4x32::block(ctr, key, out);
}

// Horner's rule: horner(z, c0, c1, ..., cn) = (((c0 z + c1) z + c2) ...) z + cn, one rounded
// multiply and one rounded add per step (x - c and x + (-c) are the same IEEE operation).
CXR_HD double horner(double, double p) {
  return p;
}
template <typename... Rest>
CXR_HD double horner(double z, double p, double c, Rest... rest) {
  return horner(z, p * z + c, rest...);
}

// log(x) for a positive normal finite x (Box-Muller's u1 in [2^-24, 1]). x = 2^e m with m in
// [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f): log(1 + f) = 2 atanh(s)
// = f - s (f - R(s^2)) with R(z) = 2z/3 + 2z^2/5 + ... (|s| <= 0.172, so eleven terms leave a
// truncation below 1e-19), plus e ln2 with ln2 split into a 32-bit head (e * head is exact) and a
// tail. The same reduction as math::log_f32 (tensor/math.h), in float64.
CXR_HD double log_f64(double x) {
  uint64_t u;
  std::memcpy(&u, &x, 8);
  double e = double(int64_t(u >> 52) - 1023);
  const uint64_t mbits = (u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  std::memcpy(&m, &mbits, 8);
  if (m > 1.4142135623730951) {
    m = m * 0.5;
    e = e + 1.0;
  }
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double r = horner(z, 2.0 / 23.0, 2.0 / 21.0, 2.0 / 19.0, 2.0 / 17.0, 2.0 / 15.0, 2.0 / 13.0,
                          2.0 / 11.0, 2.0 / 9.0, 2.0 / 7.0, 2.0 / 5.0, 2.0 / 3.0) *
                   z;
  constexpr double kLn2Hi = 0.6931471806019545;       // ln 2 rounded to 32 significant bits
  constexpr double kLn2Lo = -4.2009150726810846e-11;  // ln 2 - kLn2Hi
  return e * kLn2Hi + (f - (s * (f - r) - e * kLn2Lo));
}

// sin(a) and cos(a) for 0 <= a <= 2 pi + 1 (Box-Muller's angle). Cody-Waite reduction by the
// nearest multiple q of pi/2 (pi/2 split into three 33-bit parts and a tail, so q * part is exact
// and a - q * part1 is exact by Sterbenz), then the Taylor series of sin to r^19 and cos to r^20
// on |r| <= pi/4 (truncation below 1e-19), rotated by the quadrant q mod 4.
CXR_HD void sincos_f64(double a, double* sin_out, double* cos_out) {
  const double q = std::floor(a * 0.6366197723675814 + 0.5);
  double r = a - q * 1.5707963267341256;
  r = r - q * 6.077100506303966e-11;
  r = r - q * 2.0222662487111665e-21;
  r = r - q * 8.4784276603689e-32;
  const double z = r * r;
  // -1/19!, 1/17!, ..., -1/3!
  const double ps = horner(z, -8.22063524662433e-18, 2.8114572543455206e-15, -7.647163731819816e-13,
                           1.6059043836821613e-10, -2.505210838544172e-08, 2.7557319223985893e-06,
                           -0.0001984126984126984, 0.008333333333333333, -0.16666666666666666);
  const double s = r + r * (z * ps);
  // 1/20!, -1/18!, ..., 1/4!
  const double pc = horner(z, 4.110317623312165e-19, -1.5619206968586225e-16, 4.779477332387385e-14,
                           -1.1470745597729725e-11, 2.08767569878681e-09, -2.755731922398589e-07,
                           2.48015873015873e-05, -0.001388888888888889, 0.041666666666666664);
  const double c = 1.0 - (0.5 * z - (z * z) * pc);
  switch (int(q) & 3) {
    case 0:
      *sin_out = s;
      *cos_out = c;
      break;
    case 1:
      *sin_out = c;
      *cos_out = -s;
      break;
    case 2:
      *sin_out = -s;
      *cos_out = -c;
      break;
    default:
      *sin_out = -c;
      *cos_out = s;
      break;
  }
}

// Uniform in [low, low + span) from word w.
CXR_HD double uniform_value(uint32_t w, double low, double span) {
  return low + span * double(uniform_closed_open(w));
}

// Element j (0..3) of a block's normals: Box-Muller on the pairs (w0, w1) and (w2, w3),
// r = sqrt(-2 ln u1) with u1 in (0, 1], angle 2 pi u2 with u2 in [0, 1); even j take r cos, odd j
// r sin.
CXR_HD double normal_value(const uint32_t w[4], int j, double mean, double stddev) {
  const int pair = j / 2 * 2;
  const double u1 = double(uniform_open_closed(w[pair]));
  const double u2 = double(uniform_closed_open(w[pair + 1]));
  const double r = std::sqrt(-2.0 * log_f64(u1));
  double s, c;
  sincos_f64(2.0 * 3.141592653589793 * u2, &s, &c);
  return mean + stddev * r * (j % 2 == 0 ? c : s);
}

// Integer j (0..1) of a block: 64 random bits (words 2j and 2j+1) modulo the range, plus low
// (bias below 2^-32 for ranges < 2^32).
CXR_HD int64_t randint_value(const uint32_t w[4], int j, int64_t low, uint64_t range) {
  const uint64_t bits = (uint64_t(w[2 * j]) << 32) | w[2 * j + 1];
  return low + int64_t(bits % range);
}

// A Bernoulli(p) draw from word w: 1 when the uniform is below p.
CXR_HD bool bernoulli_value(uint32_t w, double p) {
  return double(uniform_closed_open(w)) < p;
}

}  // namespace cxr::rng
