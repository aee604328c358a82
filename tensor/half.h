// float16 and bfloat16 storage types. They convert to and from float with round-to-nearest-even;
// all arithmetic happens in float (DESIGN.md §3: half types are stored and converted on CPU).
#pragma once

#include <cstdint>  // fixed-width integers for the bit patterns
#include <cstring>  // std::memcpy for type punning

#include "tensor/macros.h"

namespace cxr {

namespace detail {
CXR_HD uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
CXR_HD float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace detail

// IEEE 754 binary16.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  CXR_HD Half(float f) : bits(from_float(f)) {}
  CXR_HD operator float() const { return to_float(bits); }

  // Round-to-nearest-even conversion, handling subnormals, overflow to inf and NaN.
  static CXR_HD uint16_t from_float(float f) {
    uint32_t x = detail::float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return uint16_t(sign | (absx > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (absx < 0x38800000u) {                                  // below 2^-14: subnormal or zero
      if (absx < 0x33000000u) return uint16_t(sign);           // below 2^-25 rounds to zero
      uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
      int shift = 126 - int(absx >> 23);  // 14 + 1 + (112 - exp)
      uint32_t half_mant = mant >> shift;
      uint32_t rem = mant & ((1u << shift) - 1u);
      uint32_t halfway = 1u << (shift - 1);
      if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
      return uint16_t(sign | half_mant);
    }
    uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
    uint32_t h = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  static CXR_HD float to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) return detail::bits_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
      if (mant == 0) return detail::bits_float(sign);
      // Subnormal: value = mant * 2^-24.
      float v = float(mant) * 5.9604644775390625e-8f;
      return sign ? -v : v;
    }
    return detail::bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
  }
};

// bfloat16: the upper 16 bits of a float32, rounded to nearest even.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  CXR_HD BFloat16(float f) : bits(from_float(f)) {}
  CXR_HD operator float() const { return detail::bits_float(uint32_t(bits) << 16); }

  static CXR_HD uint16_t from_float(float f) {
    uint32_t x = detail::float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // quiet NaN
    uint32_t lsb = (x >> 16) & 1u;
    return uint16_t((x + 0x7fffu + lsb) >> 16);
  }
};

}  // namespace cxr
