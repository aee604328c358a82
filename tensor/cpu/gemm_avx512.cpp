// AVX-512 GEMM micro-kernels (compiled with -mavx512f ...; call only when the CPU has AVX-512F).
// Tiles of 2 zmm x 12 columns (32x12 float, 16x12 double), the BLIS skx layout: 24 zmm accumulators
// + 2 A vectors + 1 broadcast fit the 32 registers, 14 loads per 24 FMAs (spec/kernels.md §1.4).
#include <immintrin.h>  // AVX-512 intrinsics

#include <algorithm>  // std::min, std::max

#include "tensor/cpu/gemm_kernels.h"

namespace cxr::cpu::gemm_detail {
namespace {

constexpr int kNR = 12;

struct ZmmF32 {
  using T = float;
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};

struct ZmmF64 {
  using T = double;
  using V = __m512d;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};

// The shuffles below through their zero-masked forms with a full mask (compiled to the plain
// instructions): GCC 12's plain forms start from _mm512_undefined_ps() and trip
// -Wmaybe-uninitialized under -Werror.
constexpr __mmask16 kAll16 = 0xFFFF;
constexpr __mmask8 kAll8 = 0xFF;
__m512 unpacklo_ps(__m512 a, __m512 b) {
  return _mm512_maskz_unpacklo_ps(kAll16, a, b);
}
__m512 unpackhi_ps(__m512 a, __m512 b) {
  return _mm512_maskz_unpackhi_ps(kAll16, a, b);
}
__m512d unpacklo_pd(__m512d a, __m512d b) {
  return _mm512_maskz_unpacklo_pd(kAll8, a, b);
}
__m512d unpackhi_pd(__m512d a, __m512d b) {
  return _mm512_maskz_unpackhi_pd(kAll8, a, b);
}
template <int kImm>
__m512 shuffle_f32x4(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(kAll16, a, b, kImm);
}

// Transposes a block of up to 16 lines x 16 k-values in registers: line r (r < lines) holds
// src[r*stride_len + 0..kcount-1] (missing lines and values read as 0); writes, for p < kcount, the
// first `out` values (lines 0..out-1) of k-slice p to dst + p*w. Three shuffle stages: unpack
// pairs of lines (32-bit), then pairs of pairs (64-bit), then 128-bit lanes.
void transpose_16x16(const float* src, int64_t stride_len, int lines, int kcount, float* dst, int w,
                     int out) {
  const __mmask16 k_mask = static_cast<__mmask16>((1u << kcount) - 1);
  __m512 r[16];
  for (int i = 0; i < 16; ++i)
    r[i] = i < lines ? _mm512_maskz_loadu_ps(k_mask, src + i * stride_len) : _mm512_setzero_ps();
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {  // t[2i], t[2i+1]: lines 2i, 2i+1 interleaved (values 0,1 | 2,3)
    t[2 * i] = unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i+c], 128-bit lane l: lines 4i..4i+3 of k-value 4l+c
    const __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(unpacklo_pd(t0, t2));
    u[4 * i + 1] = _mm512_castpd_ps(unpackhi_pd(t0, t2));
    u[4 * i + 2] = _mm512_castpd_ps(unpacklo_pd(t1, t3));
    u[4 * i + 3] = _mm512_castpd_ps(unpackhi_pd(t1, t3));
  }
  const __mmask16 out_mask = static_cast<__mmask16>((1u << out) - 1);
  for (int c = 0; c < 4; ++c) {
    // Gather lane l of u[c], u[4+c], u[8+c], u[12+c] into k-slice 4l+c: 0x88 picks lanes (0, 2)
    // of each source, 0xDD lanes (1, 3).
    const __m512 v0 = shuffle_f32x4<0x88>(u[c], u[4 + c]);
    const __m512 v1 = shuffle_f32x4<0xDD>(u[c], u[4 + c]);
    const __m512 w0 = shuffle_f32x4<0x88>(u[8 + c], u[12 + c]);
    const __m512 w1 = shuffle_f32x4<0xDD>(u[8 + c], u[12 + c]);
    const __m512 slices[4] = {shuffle_f32x4<0x88>(v0, w0), shuffle_f32x4<0x88>(v1, w1),
                              shuffle_f32x4<0xDD>(v0, w0), shuffle_f32x4<0xDD>(v1, w1)};
    for (int l = 0; l < 4; ++l) {
      if (4 * l + c >= kcount) continue;
      if (out == 16)  // plain stores where possible: masked stores are much slower on Zen
        _mm512_storeu_ps(dst + (4 * l + c) * w, slices[l]);
      else
        _mm512_mask_storeu_ps(dst + (4 * l + c) * w, out_mask, slices[l]);
    }
  }
}

// PackPanels for float (gemm_kernels.h): lines contiguous along k are transposed 16 x 16 in
// registers; k-slices contiguous in the source are copied with (masked) vector moves.
void pack_panels_avx512(int64_t len, int64_t k, const float* src, int64_t stride_len,
                        int64_t stride_k, int w, float* dst, int64_t panel_stride) {
  const int64_t panels = (len + w - 1) / w;
  // The lanes [i0, i0 + 16) of a w-wide panel holding n lines: the valid ones, and those to store.
  auto valid = [](int64_t n, int i0) {
    return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(16, n - i0)));
  };
  auto mask = [](int lanes) { return static_cast<__mmask16>((1u << lanes) - 1); };
  if (stride_k == 1 && stride_len != 1) {
    for (int64_t r = 0; r < panels; ++r, dst += panel_stride, src += w * stride_len) {
      const int64_t n = std::min<int64_t>(w, len - r * w);
      for (int i0 = 0; i0 < w; i0 += 16) {
        // Each line is read 16 values (a cache line) per step: prefetch the first steps of all
        // lines at once, then each line kTransposePrefetchSteps steps ahead as the transposes go
        // on.
        const int lines = valid(n, i0);
        for (int i = 0; i < lines; ++i)
          for (int64_t p = 0; p < std::min<int64_t>(k, 16 * kTransposePrefetchSteps); p += 16)
            __builtin_prefetch(src + (i0 + i) * stride_len + p, 0, 3);
        for (int64_t p = 0; p < k; p += 16) {
          if (const int64_t ahead = p + 16 * kTransposePrefetchSteps; ahead < k)
            for (int i = 0; i < lines; ++i)
              __builtin_prefetch(src + (i0 + i) * stride_len + ahead, 0, 3);
          transpose_16x16(src + i0 * stride_len + p, stride_len, valid(n, i0),
                          static_cast<int>(std::min<int64_t>(16, k - p)), dst + p * w + i0, w,
                          std::min(16, w - i0));
        }
      }
    }
    return;
  }
  if (stride_len == 1) {
    for (int64_t p = 0; p < k; ++p) {
      if (p + kPackPrefetchAhead < k) prefetch_span(src + (p + kPackPrefetchAhead) * stride_k, len);
      for (int64_t r = 0; r < panels; ++r) {
        const int64_t n = std::min<int64_t>(w, len - r * w);
        const float* in = src + p * stride_k + r * w;
        float* out = dst + r * panel_stride + p * w;
        for (int i0 = 0; i0 < w; i0 += 16) {
          // Whole vectors with plain moves: masked stores are much slower on Zen.
          if (n - i0 >= 16 && w - i0 >= 16)
            _mm512_storeu_ps(out + i0, _mm512_loadu_ps(in + i0));
          else
            _mm512_mask_storeu_ps(out + i0, mask(std::min(16, w - i0)),
                                  _mm512_maskz_loadu_ps(mask(valid(n, i0)), in + i0));
        }
      }
    }
    return;
  }
  pack_panels_generic(len, k, src, stride_len, stride_k, w, dst, panel_stride);
}

constexpr auto kSgemmKernels = kernels_by_width<ZmmF32, kNR>();
constexpr auto kDgemmKernels = kernels_by_width<ZmmF64, kNR>();

}  // namespace

GemmKernel<float> sgemm_kernel_avx512() {
  // Blocks measured on the 2-core EPYC (Zen 5, 48 KiB L1D, 1 MiB L2): KC = 256 keeps the 12 KiB B~
  // micro-panel well inside L1 next to the streaming A~ and beat 384 and 512 by a few per cent; MC
  // = 512 rows (an A~ block of 512 KiB in L2) reads a strided A in long runs.
  return {"avx512", 32, kNR, 512, 256, 4092, kSgemmKernels.data(), pack_panels_avx512};
}

GemmKernel<double> dgemm_kernel_avx512() {
  return {"avx512", 16, kNR, 256, 384, 2040, kDgemmKernels.data(), pack_panels_generic<double>};
}

}  // namespace cxr::cpu::gemm_detail
