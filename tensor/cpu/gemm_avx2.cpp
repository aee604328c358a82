// AVX2/FMA GEMM micro-kernel (compiled with -mavx2 -mfma; call only when the CPU has both).
// A 16x6 tile of 2 ymm x 6 columns: 12 ymm accumulators + 2 A vectors + 1 broadcast fit the 16
// registers, 8 loads per 12 FMAs (the transpose of BLIS haswell 6x16, spec/kernels.md §1.2).
#include <immintrin.h>  // AVX2 / FMA intrinsics

#include "tensor/cpu/gemm_kernels.h"

namespace cxr::cpu::gemm_detail {
namespace {

constexpr int kNR = 6;

struct YmmF32 {
  using T = float;
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};

constexpr auto kKernels = kernels_by_width<YmmF32, kNR>();

}  // namespace

GemmKernel<float> sgemm_kernel_avx2() {
  // BLIS zen3 blocks for its 6x16 AVX2 kernel: MC 144, KC 256, NC 4080 (spec/kernels.md §1.2).
  return {"avx2", 16, kNR, 144, 256, 4080, kKernels.data(), pack_panels_generic<float>};
}

}  // namespace cxr::cpu::gemm_detail
