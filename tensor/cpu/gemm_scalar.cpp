// The portable GEMM pieces, compiled for baseline x86-64: the scalar micro-kernel (the fallback for
// sgemm on CPUs without AVX2, and dgemm's kernel without AVX-512) and the generic panel packing.
#include <algorithm>  // std::min
#include <array>      // std::array of kernels by width
#include <cstring>    // std::memcpy for unit-stride packing

#include "tensor/cpu/gemm_kernels.h"

namespace cxr::cpu::gemm_detail {

template <typename T>
void pack_panels_generic(int64_t len, int64_t k, const T* src, int64_t stride_len, int64_t stride_k,
                         int w, T* dst, int64_t panel_stride) {
  const int64_t panels = (len + w - 1) / w;
  if (stride_len == 1) {  // k-slices are contiguous in the source: copy each across all panels
    for (int64_t p = 0; p < k; ++p) {
      if (p + kPackPrefetchAhead < k) prefetch_span(src + (p + kPackPrefetchAhead) * stride_k, len);
      for (int64_t r = 0; r < panels; ++r) {
        const int64_t n = std::min<int64_t>(w, len - r * w);
        T* out = dst + r * panel_stride + p * w;
        std::memcpy(out, src + p * stride_k + r * w, sizeof(T) * n);
        for (int64_t i = n; i < w; ++i) out[i] = T(0);
      }
    }
    return;
  }
  // Otherwise walk each source line along k (contiguous when stride_k == 1), scattering by w.
  for (int64_t r = 0; r < panels; ++r, dst += panel_stride) {
    const int64_t n = std::min<int64_t>(w, len - r * w);
    for (int64_t i = 0; i < n; ++i) {
      const T* line = src + (r * w + i) * stride_len;
      for (int64_t p = 0; p < k; ++p) dst[p * w + i] = line[p * stride_k];
    }
    for (int64_t p = 0; p < k; ++p)
      for (int64_t i = n; i < w; ++i) dst[p * w + i] = T(0);
  }
}

template void pack_panels_generic<float>(int64_t, int64_t, const float*, int64_t, int64_t, int,
                                         float*, int64_t);
template void pack_panels_generic<double>(int64_t, int64_t, const double*, int64_t, int64_t, int,
                                          double*, int64_t);

namespace {

// MR x NR accumulators in a local array; the i-loop is contiguous in both the packed A and the
// accumulator, so the compiler vectorises it with baseline SSE2. Separate multiply and add (no FMA
// on baseline x86-64), hence results differ in the last bits from the FMA kernels.
template <typename T, int MR, int N, int NR>
void ukr_scalar(int64_t k, T alpha, const T* a, const T* b, T beta, T* c, int64_t ldc,
                const void* const* pf, int64_t npf) {
  T acc[N][MR] = {};
  for (int64_t p = 0; p < k; ++p, a += MR, b += NR) {
    if (p < npf) prefetch_l2(pf[p]);
    for (int j = 0; j < N; ++j)
      for (int i = 0; i < MR; ++i) acc[j][i] += a[i] * b[j];
  }
  for (int j = 0; j < N; ++j)
    for (int i = 0; i < MR; ++i) {
      T t = alpha * acc[j][i];
      c[i + j * ldc] = beta == T(0) ? t : beta * c[i + j * ldc] + t;
    }
}

constexpr int kScalarMR = 8;
constexpr int kScalarNR = 4;

template <typename T>
constexpr std::array<MicroKernel<T>, kScalarNR> kScalarKernels = {
    ukr_scalar<T, kScalarMR, 1, kScalarNR>, ukr_scalar<T, kScalarMR, 2, kScalarNR>,
    ukr_scalar<T, kScalarMR, 3, kScalarNR>, ukr_scalar<T, kScalarMR, 4, kScalarNR>};

template <typename T>
GemmKernel<T> scalar_kernel() {
  // Small tiles and blocks: 8x4 accumulators fit the 16 SSE registers (as 2-wide vectors for
  // double, 4-wide for float); KC x NR of B and MC x KC of A stay within L1 and L2.
  return {"scalar",
          kScalarMR,
          kScalarNR,
          128,
          256,
          4096,
          kScalarKernels<T>.data(),
          pack_panels_generic<T>};
}

}  // namespace

GemmKernel<float> sgemm_kernel_scalar() {
  return scalar_kernel<float>();
}
GemmKernel<double> dgemm_kernel_scalar() {
  return scalar_kernel<double>();
}

}  // namespace cxr::cpu::gemm_detail
