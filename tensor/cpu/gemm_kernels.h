// Private to the GEMM: the packed micro-panel formats, the micro-kernel signature and the per-ISA
// kernel descriptors shared by gemm.cpp and the gemm_<isa>.cpp kernel files, plus a test hook.
#pragma once

#include <array>    // std::array of kernels by width
#include <cstdint>  // int64_t
#include <utility>  // std::integer_sequence

#include "tensor/cpu/prefetch.h"

namespace cxr::cpu::gemm_detail {

// Packed formats (BLIS docs/KernelsHowTo.md): an A micro-panel holds MR rows x k columns stored
// column by column (for each p < k, MR consecutive values A[i,p]); a B micro-panel holds k rows x
// NR columns stored row by row (for each p < k, NR consecutive values B[p,j]). Partial panels are
// zero-padded, so a micro-kernel always computes a full MR-row tile.
//
// A micro-kernel computes the first n <= NR columns of that tile (one kernel per n, so a narrow
// edge of C is written directly, with no wasted FMAs; OpenBLAS has such edge kernels too) into C,
// column-major with leading dimension ldc (element (i,j) at c[i + j*ldc]): every element becomes t
// = alpha * acc (acc = the k-term dot product, summed in order p = 0..k-1) and then, unless beta ==
// 0, fma(beta, c, t). With beta == 0 C is not read.
//
// While it computes, a micro-kernel also prefetches the cache lines at pf[0..npf), npf <= k, into
// L2, one per k step: the GEMM driver hands it the source of the block it packs next, so that the
// reads from memory overlap the arithmetic instead of stalling the packing (gemm.cpp,
// PrefetchList).
template <typename T>
using MicroKernel = void (*)(int64_t k, T alpha, const T* a, const T* b, T beta, T* c, int64_t ldc,
                             const void* const* pf, int64_t npf);

// Packs `len` lines of a k-long strip into ceil(len / w) micro-panels of width w, `panel_stride`
// values apart (w*k when the panels hold exactly this strip): line i goes to panel i / w, slot
// i % w, so dst[(i / w)*panel_stride + p*w + i % w] = src[i*stride_len + p*stride_k], and the slots
// past the last line are zero. For A, lines are rows (stride_len = rsa, stride_k = csa); for B,
// lines are columns (stride_len = csb, stride_k = rsb). Packing a block at once, not panel by
// panel, lets a k-slice contiguous in the source be read as one long run. A panel stride larger
// than w*k lets a caller fill the k-slices of wider panels a few at a time (cpu::pack_panels).
template <typename T>
using PackPanels = void (*)(int64_t len, int64_t k, const T* src, int64_t stride_len,
                            int64_t stride_k, int w, T* dst, int64_t panel_stride);

// One micro-kernel and the cache blocking that suits it.
template <typename T>
struct GemmKernel {
  const char* isa;
  int mr, nr;                 // micro-tile rows and columns
  int64_t mc, kc, nc;         // cache blocks: mc a multiple of mr, nc a multiple of nr
  const MicroKernel<T>* ukr;  // ukr[n - 1] computes the first n columns, n = 1..nr
  PackPanels<T> pack;
};

// The register-tile micro-kernel shared by the SIMD files: the tile is 2 vectors tall (MR = 2 *
// Vec::kLanes) and N columns wide, of B micro-panels NR wide; per k step two A vectors are loaded
// and each of the NR B values is broadcast once and feeds 2 FMAs (BLIS skx
// kernels/skx/3/bli_sgemm_skx_asm_32x12_l2.c uses this layout with NR = 12). `Vec` wraps one ISA's
// vector type (zero, set1, load, store, fmadd, mul) and must be defined in an anonymous namespace
// of the file compiled for that ISA, so that each file gets its own instantiation.
template <typename Vec, int N, int NR>
void two_vector_kernel(int64_t k, typename Vec::T alpha, const typename Vec::T* a,
                       const typename Vec::T* b, typename Vec::T beta, typename Vec::T* c,
                       int64_t ldc, const void* const* pf, int64_t npf) {
  using T = typename Vec::T;
  using V = typename Vec::V;
  constexpr int L = Vec::kLanes;
  V acc0[N], acc1[N];  // column j of the tile: rows 0..L-1 in acc0[j], rows L..2L-1 in acc1[j]
#pragma GCC unroll 16
  for (int j = 0; j < N; ++j) acc0[j] = acc1[j] = Vec::zero();
  auto k_step = [&](const T* ap, const T* bp) __attribute__((always_inline)) {
    const V a0 = Vec::load(ap), a1 = Vec::load(ap + L);
#pragma GCC unroll 16
    for (int j = 0; j < N; ++j) {
      const V bj = Vec::set1(bp[j]);
      acc0[j] = Vec::fmadd(a0, bj, acc0[j]);
      acc1[j] = Vec::fmadd(a1, bj, acc1[j]);
    }
  };
  int64_t p = 0;
  for (; p < npf; ++p, a += 2 * L, b += NR) {
    prefetch_l2(pf[p]);
    k_step(a, b);
  }
  for (; p < k; ++p, a += 2 * L, b += NR) k_step(a, b);
  const V va = Vec::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int j = 0; j < N; ++j) {
      Vec::store(c + j * ldc, Vec::mul(va, acc0[j]));
      Vec::store(c + j * ldc + L, Vec::mul(va, acc1[j]));
    }
  } else {
    const V vb = Vec::set1(beta);
#pragma GCC unroll 16
    for (int j = 0; j < N; ++j) {
      T* cj = c + j * ldc;
      Vec::store(cj, Vec::fmadd(vb, Vec::load(cj), Vec::mul(va, acc0[j])));
      Vec::store(cj + L, Vec::fmadd(vb, Vec::load(cj + L), Vec::mul(va, acc1[j])));
    }
  }
}

// The kernels for widths 1..NR: kernels_by_width<Vec, NR>()[n - 1] computes n columns.
template <typename Vec, int NR, int... I>
constexpr std::array<MicroKernel<typename Vec::T>, NR> kernels_by_width(
    std::integer_sequence<int, I...>) {
  return {two_vector_kernel<Vec, I + 1, NR>...};
}
template <typename Vec, int NR>
constexpr std::array<MicroKernel<typename Vec::T>, NR> kernels_by_width() {
  return kernels_by_width<Vec, NR>(std::make_integer_sequence<int, NR>{});
}

// The packing routines read their source a k-slice (or, for lines contiguous along k, a 16-value
// step of each line) at a time, as many short runs far apart: from memory, the hardware
// prefetchers pick such runs up too late. They therefore prefetch the runs kPackPrefetchAhead
// slices (steps) ahead. On the Zen 5 VM this took a 1x1 convolution's GEMM (M=64, N=3136, K=256,
// source in memory) from 135 to 217 GFLOP/s on one thread; 2 to 16 ahead all gave 205-217.
constexpr int64_t kPackPrefetchAhead = 4;
// Lines contiguous along k are read 16 values (one cache line) per step, 16 lines at a time, and a
// step takes only some 50-80 cycles: those are prefetched 8 steps ahead (a weight gradient's 1x1
// convolution, both operands transposed, went from 343 to 365 GFLOP/s on two threads against 4;
// 12 was faster still there but slowed some NT products).
constexpr int64_t kTransposePrefetchSteps = 8;

// Defined in gemm_avx512.cpp, gemm_avx2.cpp and gemm_scalar.cpp; call only the supported ones.
GemmKernel<float> sgemm_kernel_avx512();
GemmKernel<float> sgemm_kernel_avx2();
GemmKernel<float> sgemm_kernel_scalar();
GemmKernel<double> dgemm_kernel_avx512();
GemmKernel<double> dgemm_kernel_scalar();

// The portable packing routine (gemm_scalar.cpp), used where an ISA has no faster one.
template <typename T>
void pack_panels_generic(int64_t len, int64_t k, const T* src, int64_t stride_len, int64_t stride_k,
                         int w, T* dst, int64_t panel_stride);

// Whether this CPU can run the micro-kernel of `isa` ("avx512", "avx2", "scalar").
bool gemm_isa_supported(const char* isa);

// Test hook: sgemm with the micro-kernel of `isa`, bypassing CXR_GEMM_ISA; throws cxr::Error if
// this CPU does not support it.
void sgemm_with_isa(const char* isa, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t rsa, int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta,
                    float* C, int64_t rsc, int64_t csc);

}  // namespace cxr::cpu::gemm_detail
