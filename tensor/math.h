// The one definition of elementwise math: scalar functors for every UnaryOp / BinaryOp /
// CompareOp and the parameterised activations, with their derivatives. They are CXR_HD-style
// (host + device) and branch-free where it matters, so the same code runs in the CPU loops (where
// GCC vectorises it) and in CUDA kernels. float64 uses the C++ library (correctly rounded or
// nearly); float32 uses our own polynomials for exp, expm1, log, log1p, tanh and erf, which stay
// within about 2 ulp of the exact value (tests/tensor/test_elementwise.cpp checks them against
// float64 over dense grids). Half types are computed in float by the callers (compute_t).
#pragma once

#include <cmath>        // std::exp etc. for float64, std::sin/cos/pow for float32
#include <cstdint>      // bit patterns
#include <cstring>      // std::memcpy for type punning
#include <limits>       // infinity, quiet NaN
#include <type_traits>  // is_floating_point for the integer/float split

#include "tensor/elementwise.h"  // UnaryOp, BinaryOp, CompareOp
#include "tensor/macros.h"       // CXR_HD

// Math functions are forced inline on the host: the CPU kernels call them from functions compiled
// for several instruction sets (target_clones), and an out-of-line copy would be built for only
// one.
#if defined(__CUDACC__)
#define CXR_MATH __host__ __device__ __forceinline__
#else
#define CXR_MATH inline __attribute__((always_inline))
#endif

namespace cxr::math {

template <typename C>
inline constexpr bool is_float_v = std::is_floating_point_v<C>;

CXR_MATH uint32_t as_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
CXR_MATH float as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
CXR_MATH float copy_sign(float magnitude, float sign) {
  return as_float((as_bits(magnitude) & 0x7fffffffu) | (as_bits(sign) & 0x80000000u));
}

// ---------------------------------------------------------------------------------------------
// float32 primitives

// exp(hi + lo) for |lo| << |hi| (an argument carried in two floats; lo is added to the reduced
// argument so its bits are kept). Cody-Waite reduction hi = q ln2 + s with |s| <= ln2/2 (ln2 split
// into a 16-bit head, so q * head is exact, and a tail), exp(s) by its Taylor series to s^7
// (truncation < 1e-8 relative), and 2^q applied as two normal factors so that results in the
// subnormal range are rounded once. hi > 89 overflows to inf through the scaling; hi < -105
// gives 0.
CXR_MATH float exp_f32(float hi, float lo) {
  float xc = hi < -105.0f ? -105.0f : (hi > 89.0f ? 89.0f : hi);
  float q = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float s = xc - q * 0.693145751953125f;
  s = s - q * 1.42860682030941723212e-6f;
  s = s + lo;
  float p = 1.0f / 5040.0f;
  p = p * s + 1.0f / 720.0f;
  p = p * s + 1.0f / 120.0f;
  p = p * s + 1.0f / 24.0f;
  p = p * s + 1.0f / 6.0f;
  p = p * s + 0.5f;
  float r = 1.0f + (s + s * s * p);
  int32_t qi = int32_t(q);
  int32_t h = qi / 2;
  r = (r * as_float(uint32_t(h + 127) << 23)) * as_float(uint32_t(qi - h + 127) << 23);
  return hi != hi ? hi : r;
}

CXR_MATH float exp_f32(float x) {
  return exp_f32(x, 0.0f);
}

// exp(x) - 1: the Taylor series to x^10 for |x| < 0.5 (truncation < 1e-9 relative), exp(x) - 1
// above (at most ~3 ulp from the cancellation).
CXR_MATH float expm1_f32(float x) {
  float p = 1.0f / 3628800.0f;
  p = p * x + 1.0f / 362880.0f;
  p = p * x + 1.0f / 40320.0f;
  p = p * x + 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  float small = x + x * x * p;
  float large = exp_f32(x) - 1.0f;
  return (x < 0.5f && x > -0.5f) ? small : large;
}

// log(x). x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f);
// log(1 + f) = 2 atanh(s) = f - s (f - R(s^2)) with R the atanh series 2s^2/3 + 2s^4/5 + ...
// (|s| <= 0.172 so five terms reach 1e-10), plus e ln2 in two parts. Subnormals are scaled by 2^23
// first; x < 0 gives NaN, 0 gives -inf, inf gives inf.
CXR_MATH float log_f32(float x) {
  bool sub = x < 1.17549435e-38f;
  float xs = sub ? x * 8388608.0f : x;
  uint32_t u = as_bits(xs);
  float e = float(int32_t(u >> 23) - 127) - (sub ? 23.0f : 0.0f);
  float m = as_float((u & 0x007fffffu) | 0x3f800000u);
  bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  float f = m - 1.0f;
  float s = f / (2.0f + f);
  float z = s * s;
  float r = 2.0f / 11.0f;
  r = r * z + 2.0f / 9.0f;
  r = r * z + 2.0f / 7.0f;
  r = r * z + 2.0f / 5.0f;
  r = r * z + 2.0f / 3.0f;
  r = r * z;
  float res = e * 0.693145751953125f + (f - (s * (f - r) - e * 1.42860682030941723212e-6f));
  res = x == 0.0f ? -std::numeric_limits<float>::infinity() : res;
  res = x == std::numeric_limits<float>::infinity() ? x : res;
  return (x < 0.0f || x != x) ? std::numeric_limits<float>::quiet_NaN() : res;
}

// log(1 + x) by Goldberg's correction (D. Goldberg, "What every computer scientist should know
// about floating-point arithmetic", 1991, Theorem 4): u = 1 + x; log(u) * x / (u - 1).
CXR_MATH float log1p_f32(float x) {
  float u = 1.0f + x;
  float d = u - 1.0f;
  float r = log_f32(u) * (x / (d == 0.0f ? 1.0f : d));
  r = d == 0.0f ? x : r;
  return x == std::numeric_limits<float>::infinity() ? x : r;
}

// tanh(x) = e / (e + 2) with e = expm1(2|x|), sign restored; |x| > 9 rounds to +-1.
CXR_MATH float tanh_f32(float x) {
  float a = std::fabs(x);
  a = a > 9.0f ? 9.0f : a;
  float e = expm1_f32(2.0f * a);
  float t = e / (e + 2.0f);
  return x != x ? x : copy_sign(t, x);
}

// exp(-c x^2) for c = 1 or 1/2 without the rounding error of x^2 (which costs 2 c x^2 ulp in the
// result): x = head + tail with a 12-bit head, so head^2 is exact and
// x^2 = head^2 + tail (x + head).
CXR_MATH float exp_neg_sq_f32(float x, float c) {
  x = std::fabs(x);
  x = x > 20.0f ? 20.0f : x;  // exp(-c 400) is 0 already; keeps head * head finite
  float head = as_float(as_bits(x) & 0xfffff000u);
  float tail = x - head;
  return exp_f32(-c * (head * head), -c * (tail * (x + head)));
}

// erfc(a) for a >= 0.5, given e = exp(-a^2): e t Q(t), t = 1 / (1 + a/2); Q is a degree-9
// weighted least-squares fit (Lawson iterations on Chebyshev nodes against mpmath, done for this
// file) of erfc(a) exp(a^2) (1 + a/2) on [0.5, 10], max relative error 2.5e-9. Q varies little
// over the range, so Horner's rule stays well conditioned (sum |terms| <= 1.2 |Q|). Beyond
// a = 10 erfc underflows to 0.
CXR_MATH float erfc_tail_f32(float a, float e) {
  float t = 1.0f / (1.0f + 0.5f * a);
  float p = -0.02992559545385797f;
  p = p * t + 0.06494481652572208f;
  p = p * t + 0.06660542667040108f;
  p = p * t - 0.27576979788338357f;
  p = p * t + 0.15479897328375133f;
  p = p * t + 0.0173902547557098f;
  p = p * t + 0.19334510692040408f;
  p = p * t + 0.24416961193576728f;
  p = p * t + 0.2823272925364692f;
  p = p * t + 0.2820861128111522f;
  return a > 10.0f ? 0.0f : e * (t * p);
}

// erf(x) / x for |x| < 0.875 as a degree-6 polynomial in x^2 (same fit, max relative error 2e-10).
CXR_MATH float erf_small_f32(float x) {
  float z = x * x;
  float p = 8.675696922820497e-05f;
  p = p * z - 0.0008211180175877117f;
  p = p * z + 0.0052067547573808465f;
  p = p * z - 0.026861588085529547f;
  p = p * z + 0.112837330785026f;
  p = p * z - 0.3761263607302309f;
  p = p * z + 1.1283791668713496f;
  return x * p;
}

CXR_MATH float erf_f32(float x) {
  float a = std::fabs(x);
  float at = a > 0.875f ? a : 0.875f;
  float tail = 1.0f - erfc_tail_f32(at, exp_neg_sq_f32(at, 1.0f));
  float r = a < 0.875f ? erf_small_f32(x) : copy_sign(tail, x);
  return x != x ? x : r;
}

// erfc(x), accurate in both tails.
CXR_MATH float erfc_f32(float x) {
  float a = std::fabs(x);
  bool tail_branch = a >= 0.5f;
  float e = exp_neg_sq_f32(tail_branch ? a : 0.0f, 1.0f);
  float tail = erfc_tail_f32(tail_branch ? a : 0.5f, e);
  float r = tail_branch ? (x < 0.0f ? 2.0f - tail : tail) : 1.0f - erf_small_f32(x);
  return x != x ? x : r;
}

// The standard normal CDF Phi(x) (for the exact GELU) in one branch-free piece, accurate in the
// left tail: with a = |x| / sqrt 2, h = erfc(a) / 2 = exp(-x^2 / 2) t R(t) / 2,
// t = 1 / (1 + a / 2), R a degree-10 fit (as for erfc_tail_f32) of erfc(a) exp(a^2) (1 + a/2) on
// [0, 10], max relative error 3.4e-9; Phi = h for x < 0 and 1 - h for x >= 0. The exponent is
// taken from x itself, so no rounding of x / sqrt 2 enters it.
CXR_MATH float normal_cdf_f32(float x) {
  float t = 1.0f / (1.0f + 0.353553390593273762f * std::fabs(x));
  float p = 0.03538048652193445f;
  p = p * t - 0.18873558307170893f;
  p = p * t + 0.3754327579940028f;
  p = p * t - 0.280606590058128f;
  p = p * t - 0.030542570287899508f;
  p = p * t + 0.04084332698886142f;
  p = p * t + 0.0525697247299409f;
  p = p * t + 0.18624154538535115f;
  p = p * t + 0.24506504742728f;
  p = p * t + 0.2822638297753639f;
  p = p * t + 0.2820880279908972f;
  float h = 0.5f * (exp_neg_sq_f32(x, 0.5f) * (t * p));
  float r = x < 0.0f ? h : 1.0f - h;
  return x != x ? x : r;
}

// ---------------------------------------------------------------------------------------------
// Generic entry points: float32 -> the functions above, float64 -> the C++ library.

template <typename C>
CXR_MATH C exp(C x) {
  if constexpr (std::is_same_v<C, float>)
    return exp_f32(x);
  else
    return std::exp(x);
}
template <typename C>
CXR_MATH C expm1(C x) {
  if constexpr (std::is_same_v<C, float>)
    return expm1_f32(x);
  else
    return std::expm1(x);
}
template <typename C>
CXR_MATH C log(C x) {
  if constexpr (std::is_same_v<C, float>)
    return log_f32(x);
  else
    return std::log(x);
}
template <typename C>
CXR_MATH C log1p(C x) {
  if constexpr (std::is_same_v<C, float>)
    return log1p_f32(x);
  else
    return std::log1p(x);
}
template <typename C>
CXR_MATH C tanh(C x) {
  if constexpr (std::is_same_v<C, float>)
    return tanh_f32(x);
  else
    return std::tanh(x);
}
template <typename C>
CXR_MATH C erf(C x) {
  if constexpr (std::is_same_v<C, float>)
    return erf_f32(x);
  else
    return std::erf(x);
}
template <typename C>
CXR_MATH C erfc(C x) {
  if constexpr (std::is_same_v<C, float>)
    return erfc_f32(x);
  else
    return std::erfc(x);
}
// exp(-c x^2) for c = 1 or 1/2, accurate for large x.
template <typename C>
CXR_MATH C exp_neg_sq(C x, C c) {
  if constexpr (std::is_same_v<C, float>)
    return exp_neg_sq_f32(x, c);
  else
    return std::exp(-c * x * x);
}
// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2.
template <typename C>
CXR_MATH C normal_cdf(C x) {
  if constexpr (std::is_same_v<C, float>)
    return normal_cdf_f32(x);
  else
    return C(0.5) * std::erfc(-x * C(0.70710678118654752440));
}
template <typename C>
CXR_MATH C sigmoid(C x) {
  return C(1) / (C(1) + exp(-x));
}

// Integer power by squaring; a negative exponent truncates like C division (1 / x^n).
template <typename C>
CXR_MATH C ipow(C base, C exponent) {
  if (exponent < C(0)) {
    if (base == C(1)) return C(1);
    if (base == C(-1)) return (exponent % C(2)) == C(0) ? C(1) : C(-1);
    return C(0);
  }
  C result = C(1);
  while (exponent != C(0)) {
    if (exponent & C(1)) result = C(result * base);
    exponent = C(exponent >> 1);
    base = C(base * base);
  }
  return result;
}
template <>
CXR_MATH bool ipow(bool base, bool exponent) {
  return base || !exponent;
}

template <typename C>
CXR_MATH C pow(C base, C exponent) {
  if constexpr (is_float_v<C>)
    return std::pow(base, exponent);
  else
    return ipow(base, exponent);
}

// Constants (mathematical identities): 2/sqrt(pi), 1/sqrt(2 pi), sqrt(2/pi).
inline constexpr double k2OverSqrtPi = 1.12837916709551257390;
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;
inline constexpr double kSqrt2OverPi = 0.79788456080286535588;
inline constexpr double kGeluTanhCubic = 0.044715;
inline constexpr double kQuickGelu = 1.702;

// ---------------------------------------------------------------------------------------------
// Unary functors: operator()(x) and backward(g, x) = g * f'(x), in the compute type C.

struct NegFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return C(-x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C) const {
    return -g;
  }
};
struct AbsFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    if constexpr (is_float_v<C>)
      return std::fabs(x);
    else if constexpr (std::is_signed_v<C>)
      return x < C(0) ? C(-x) : x;
    else
      return x;
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return x > C(0) ? g : (x < C(0) ? -g : C(0));
  }
};
struct SignFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return C((C(0) < x) - (x < C(0)));
  }
  template <typename C>
  CXR_MATH C backward(C, C) const {
    return C(0);
  }
};
struct SquareFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return C(x * x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return C(2) * x * g;
  }
};
struct ReciprocalFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return C(1) / x;
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return -g / (x * x);
  }
};
struct ExpFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return exp(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return g * exp(x);
  }
};
struct LogFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return log(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return g / x;
  }
};
struct Log1pFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return log1p(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return g / (C(1) + x);
  }
};
struct SqrtFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return std::sqrt(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return g / (C(2) * std::sqrt(x));
  }
};
struct RsqrtFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return C(1) / std::sqrt(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C r = C(1) / std::sqrt(x);
    return C(-0.5) * g * r * r * r;
  }
};
struct SinFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return std::sin(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return g * std::cos(x);
  }
};
struct CosFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return std::cos(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return -g * std::sin(x);
  }
};
struct TanhFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return tanh(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C t = tanh(x);
    return g * (C(1) - t * t);
  }
};
struct SigmoidFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return sigmoid(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C s = sigmoid(x);
    return g * s * (C(1) - s);
  }
};
struct ReluFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return x < C(0) ? C(0) : x;
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return x > C(0) ? g : C(0);
  }
};
// x sigmoid(x), computed as x / (1 + exp(-x)); f' = s (1 + x (1 - s)).
struct SiluFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return x / (C(1) + exp(-x));
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C s = sigmoid(x);
    return g * (s * (C(1) + x * (C(1) - s)));
  }
};
// x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2 (accurate in the left tail);
// f' = Phi(x) + x phi(x), phi the standard normal density.
struct GeluFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return x * normal_cdf(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C cdf = normal_cdf(x);
    C pdf = C(kInvSqrt2Pi) * exp_neg_sq(x, C(0.5));
    return g * (cdf + x * pdf);
  }
};
// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (Hendrycks & Gimpel 2016);
// f' = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
struct GeluTanhFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    C u = C(kSqrt2OverPi) * (x + C(kGeluTanhCubic) * x * x * x);
    return C(0.5) * x * (C(1) + tanh(u));
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C x2 = x * x;
    C u = C(kSqrt2OverPi) * (x + C(kGeluTanhCubic) * x2 * x);
    C t = tanh(u);
    C du = C(kSqrt2OverPi) * (C(1) + C(3 * kGeluTanhCubic) * x2);
    return g * (C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * du);
  }
};
// x sigmoid(1.702 x) (OpenAI CLIP); f' = s + 1.702 x s (1 - s).
struct QuickGeluFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return x / (C(1) + exp(C(-kQuickGelu) * x));
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    C s = sigmoid(C(kQuickGelu) * x);
    return g * (s + C(kQuickGelu) * x * s * (C(1) - s));
  }
};
struct ErfFn {
  template <typename C>
  CXR_MATH C operator()(C x) const {
    return erf(x);
  }
  template <typename C>
  CXR_MATH C backward(C g, C x) const {
    return g * C(k2OverSqrtPi) * exp_neg_sq(x, C(1));
  }
};

// Parameterised unary functors (parameters stored in the compute type).
template <typename C>
struct LeakyReluFn {
  C slope;
  CXR_MATH C operator()(C x) const { return x > C(0) ? x : x * slope; }
  CXR_MATH C backward(C g, C x) const { return x > C(0) ? g : g * slope; }
};
// log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch).
template <typename C>
struct SoftplusFn {
  C beta, threshold;
  CXR_MATH C operator()(C x) const {
    C bx = x * beta;
    return bx > threshold ? x : log1p(exp(bx)) / beta;
  }
  CXR_MATH C backward(C g, C x) const {
    C bx = x * beta;
    return bx > threshold ? g : g * sigmoid(bx);
  }
};
// min(max(x, lo), hi); NaN stays NaN. The gradient passes where lo <= x <= hi.
template <typename C>
struct ClampFn {
  C lo, hi;
  CXR_MATH C operator()(C x) const {
    C y = x < lo ? lo : x;
    return y > hi ? hi : y;
  }
  CXR_MATH C backward(C g, C x) const { return (x >= lo && x <= hi) ? g : C(0); }
};
// x^e for a scalar exponent, with the common exponents done exactly by multiplication.
template <typename C>
struct PowScalarFn {
  C e;
  CXR_MATH C operator()(C x) const {
    if constexpr (is_float_v<C>) {
      if (e == C(2)) return x * x;
      if (e == C(1)) return x;
      if (e == C(0.5)) return std::sqrt(x);
      if (e == C(3)) return x * x * x;
      if (e == C(-1)) return C(1) / x;
      if (e == C(-2)) return C(1) / (x * x);
      return std::pow(x, e);
    } else {
      return ipow(x, e);
    }
  }
  // g e x^(e-1) (0 for e = 0).
  CXR_MATH C backward(C g, C x) const {
    if (e == C(0)) return C(0);
    if (e == C(2)) return g * C(2) * x;
    return g * e * std::pow(x, e - C(1));
  }
};

// ---------------------------------------------------------------------------------------------
// Binary functors.

struct AddFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    return C(a + b);
  }
};
struct SubFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    return C(a - b);
  }
};
struct MulFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    return C(a * b);
  }
};
struct DivFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    return a / b;
  }
};
struct PowFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    return pow(a, b);
  }
};
// NaN-propagating maximum / minimum (torch.maximum / torch.minimum).
struct MaximumFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    if constexpr (is_float_v<C>) {
      C m = a > b ? a : b;
      m = b != b ? b : m;
      return a != a ? a : m;
    } else {
      return a > b ? a : b;
    }
  }
};
struct MinimumFn {
  template <typename C>
  CXR_MATH C operator()(C a, C b) const {
    if constexpr (is_float_v<C>) {
      C m = a < b ? a : b;
      m = b != b ? b : m;
      return a != a ? a : m;
    } else {
      return a < b ? a : b;
    }
  }
};

// a + w (b - a), evaluated from the nearer end for |w| >= 0.5 so that w = 1 gives b exactly.
template <typename C>
CXR_MATH C lerp(C a, C b, C w) {
  C d = b - a;
  return (w < C(0.5) && w > C(-0.5)) ? a + w * d : b - d * (C(1) - w);
}

struct EqFn {
  template <typename C>
  CXR_MATH bool operator()(C a, C b) const {
    return a == b;
  }
};
struct NeFn {
  template <typename C>
  CXR_MATH bool operator()(C a, C b) const {
    return a != b;
  }
};
struct LtFn {
  template <typename C>
  CXR_MATH bool operator()(C a, C b) const {
    return a < b;
  }
};
struct LeFn {
  template <typename C>
  CXR_MATH bool operator()(C a, C b) const {
    return a <= b;
  }
};
struct GtFn {
  template <typename C>
  CXR_MATH bool operator()(C a, C b) const {
    return a > b;
  }
};
struct GeFn {
  template <typename C>
  CXR_MATH bool operator()(C a, C b) const {
    return a >= b;
  }
};

// ---------------------------------------------------------------------------------------------
// Enum -> functor, for kernels that switch once per call and then run one functor's loop:
// visit_unary(op, [&](auto fn) { ... }) calls the lambda with the functor object of `op`.

template <typename Visitor>
CXR_HD decltype(auto) visit_unary(UnaryOp op, Visitor&& v) {
  switch (op) {
    case UnaryOp::Neg:
      return v(NegFn{});
    case UnaryOp::Abs:
      return v(AbsFn{});
    case UnaryOp::Sign:
      return v(SignFn{});
    case UnaryOp::Square:
      return v(SquareFn{});
    case UnaryOp::Reciprocal:
      return v(ReciprocalFn{});
    case UnaryOp::Exp:
      return v(ExpFn{});
    case UnaryOp::Log:
      return v(LogFn{});
    case UnaryOp::Log1p:
      return v(Log1pFn{});
    case UnaryOp::Sqrt:
      return v(SqrtFn{});
    case UnaryOp::Rsqrt:
      return v(RsqrtFn{});
    case UnaryOp::Sin:
      return v(SinFn{});
    case UnaryOp::Cos:
      return v(CosFn{});
    case UnaryOp::Tanh:
      return v(TanhFn{});
    case UnaryOp::Sigmoid:
      return v(SigmoidFn{});
    case UnaryOp::Relu:
      return v(ReluFn{});
    case UnaryOp::Silu:
      return v(SiluFn{});
    case UnaryOp::Gelu:
      return v(GeluFn{});
    case UnaryOp::GeluTanh:
      return v(GeluTanhFn{});
    case UnaryOp::QuickGelu:
      return v(QuickGeluFn{});
    case UnaryOp::Erf:
      return v(ErfFn{});
  }
  return v(NegFn{});  // unreachable for valid enum values
}

template <typename Visitor>
CXR_HD decltype(auto) visit_binary(BinaryOp op, Visitor&& v) {
  switch (op) {
    case BinaryOp::Add:
      return v(AddFn{});
    case BinaryOp::Sub:
      return v(SubFn{});
    case BinaryOp::Mul:
      return v(MulFn{});
    case BinaryOp::Div:
      return v(DivFn{});
    case BinaryOp::Pow:
      return v(PowFn{});
    case BinaryOp::Maximum:
      return v(MaximumFn{});
    case BinaryOp::Minimum:
      return v(MinimumFn{});
  }
  return v(AddFn{});
}

template <typename Visitor>
CXR_HD decltype(auto) visit_compare(CompareOp op, Visitor&& v) {
  switch (op) {
    case CompareOp::Eq:
      return v(EqFn{});
    case CompareOp::Ne:
      return v(NeFn{});
    case CompareOp::Lt:
      return v(LtFn{});
    case CompareOp::Le:
      return v(LeFn{});
    case CompareOp::Gt:
      return v(GtFn{});
    case CompareOp::Ge:
      return v(GeFn{});
  }
  return v(EqFn{});
}

}  // namespace cxr::math
