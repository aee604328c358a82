// CPU matrix multiplication on raw pointers with general (row, column) strides: a packed,
// cache-blocked GEMM (Goto / BLIS five loops) with AVX-512, AVX2/FMA and scalar micro-kernels
// chosen at run time, threaded with OpenMP over M or N only, so results do not depend on the thread
// count.
#pragma once

#include <cstdint>     // int64_t
#include <functional>  // std::function

namespace cxr::cpu {

// C[i,j] = alpha * sum_k A[i,k] * B[k,j] + beta * C[i,j] for i<M, j<N, k<K. Every matrix is given
// by a pointer and (row stride, column stride) in elements, so transposed and strided views need no
// copy (BLIS-style general strides). beta == 0 means C is not read (it may hold NaN).
// Element (i,k) of A is A[i*rsa + k*csa]; likewise for B and C. Strides may be negative; C must not
// overlap A or B, and two elements of C must not share an address. Throws cxr::Error on negative
// sizes or null pointers. Bitwise deterministic: the same call gives the same bits with any number
// of OpenMP threads (the K dimension is never split between threads).
void sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa, int64_t csa,
           const float* B, int64_t rsb, int64_t csb, float beta, float* C, int64_t rsc,
           int64_t csc);

// The same in float64 (used by gradient checks; a portable blocked kernel, not tuned).
void dgemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa, int64_t csa,
           const double* B, int64_t rsb, int64_t csb, double beta, double* C, int64_t rsc,
           int64_t csc);

// The naive triple loop (float64 accumulation), the reference for tests and benchmarks.
void sgemm_naive(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                 int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                 int64_t rsc, int64_t csc);

// Which micro-kernel sgemm uses on this machine: "avx512", "avx2" or "scalar"; the env variable
// CXR_GEMM_ISA=avx2|scalar|avx512 forces a (supported) lower one, for tests and benchmarks. The
// variable is read once, at the first call; an unknown value throws cxr::Error.
const char* gemm_isa();

// A GEMM operand that is not stored but produced, block by block, straight into the packed
// micro-panel format: a convolution's im2col matrix, which then never exists in full (an "implicit
// GEMM"; the packed format is BLIS's, docs/KernelsHowTo.md). Its lines are the rows of an A operand
// or the columns of a B operand; k runs along the reduction.
template <typename T>
class PanelSource {
 public:
  virtual ~PanelSource() = default;
  // Writes lines [line0, line0 + len) x reduction indices [k0, k0 + kc) as ceil(len / w) micro-
  // panels of width w: value (line0 + i, k0 + p) at dst[(i / w)*w*kc + p*w + i % w], the slots past
  // the last line zero (pack_panels below does that for a strided block). The GEMM's threads call
  // it concurrently for disjoint blocks, so it must not share writable state between calls.
  virtual void pack(int64_t line0, int64_t len, int64_t k0, int64_t kc, int w, T* dst) const = 0;
  // The memory that pack() reads for that block, as ranges passed to read(pointer, bytes): the
  // GEMM prefetches them into L2 while it computes the block before (see gemm.cpp). Optional (a
  // source that lists nothing is just not prefetched); ranges may cover more than is read.
  virtual void reads(int64_t /*line0*/, int64_t /*len*/, int64_t /*k0*/, int64_t /*kc*/,
                     const std::function<void(const void*, int64_t)>& /*read*/) const {}
};

// The GEMM's packing routine for this machine's kernel, for PanelSource implementations: writes
// `len` lines of a strided block (line i, index p at src[i*stride_len + p*stride_k]) into
// micro-panels of width w that are `panel_stride` values apart, line i in panel i / w at
// dst[(i / w)*panel_stride + p*w + i % w], padding the last panel with zeros. With panel_stride =
// w*kc a source can fill kc-long panels a few k-slices at a time.
void pack_panels(int64_t len, int64_t k, const float* src, int64_t stride_len, int64_t stride_k,
                 int w, float* dst, int64_t panel_stride);
void pack_panels(int64_t len, int64_t k, const double* src, int64_t stride_len, int64_t stride_k,
                 int w, double* dst, int64_t panel_stride);

// C = A · B + beta * C (alpha = 1) where the K x N operand B comes from a PanelSource; otherwise as
// sgemm/dgemm, with the same results as passing the stored B (the packed values are the same).
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa,
          const PanelSource<float>& B, float beta, float* C, int64_t rsc, int64_t csc);
void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsa, int64_t csa,
          const PanelSource<double>& B, double beta, double* C, int64_t rsc, int64_t csc);

// Typed forms with alpha = 1, for kernels templated on float/double (conv, matmul).
inline void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa,
                 const float* B, int64_t rsb, int64_t csb, float beta, float* C, int64_t rsc,
                 int64_t csc) {
  sgemm(M, N, K, 1.0f, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
inline void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsa, int64_t csa,
                 const double* B, int64_t rsb, int64_t csb, double beta, double* C, int64_t rsc,
                 int64_t csc) {
  dgemm(M, N, K, 1.0, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

}  // namespace cxr::cpu
