// Scaled dot-product attention on CUDA (attention.h), FlashAttention-2 style (Dao 2023, arXiv
// 2307.08691, Alg. 1 and 2; the CPU kernel tensor/cpu/attention.cpp is the reference of the
// conventions): the L×S score matrix never exists, memory is the output, the LSE and shared-memory
// tiles.
//
// SIMT kernels (no tensor cores), float32 arithmetic for float32/float16/bfloat16 inputs and
// float64 for float64. A block has kWarps warps; tiles are converted to the arithmetic type when
// they are loaded into shared memory, so any strides and the half types are read in place.
//  - forward: one block per (batch·head, tile of Br query rows); each warp owns R rows, its lanes
//    split the Bc keys of a K/V tile for the scores (row of Q broadcast from shared memory, K rows
//    padded to D+1 so the lanes hit distinct banks) and the head dim for the output accumulator.
//    Online softmax per row (running max m and sum l, accumulator rescaled by exp(m_old - m_new)),
//    O /= l at the end, LSE = m + log(l).
//  - backward: delta_i = rowsum(dO_i ∘ O_i) (float64 sums), then two kernels that each own their
//    outputs, so no atomics and the same bits on every run: dK/dV with one block per (batch·head,
//    key tile) looping over the query tiles (P = exp(S - LSE) recomputed, dV += Pᵀ dO,
//    dP = dO Vᵀ, dS = P ∘ (dP - delta), dK += scale dSᵀ Q), and dQ with one block per
//    (batch·head, query tile) looping over the key tiles (dQ += scale dS K).
// Fully masked rows: output 0 and LSE = +inf, so P = 0 in the backward, as on the CPU. Causal
// masking is top-left aligned (row i sees keys j <= i). Head dims up to 256 (kMaxHeadDim).
// float16/bfloat16 problems with head dims that are multiples of 8 go to the tensor-core kernels
// of attention_tc.cu instead (tensor_core_supported; set_attention_kernel(Simt) keeps them here).
#include <algorithm>
#include <cmath>
#include <limits>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/attention.h"
#include "tensor/cuda/attention_common.cuh"
#include "tensor/cuda/context.cuh"
#include "tensor/dtype.h"
#include "tensor/math.h"  // math::exp, the exp the CPU kernel uses

namespace cxr::cuda {
namespace attention_detail {

void allow_smem(const void* kernel, size_t bytes, int device, const char* op) {
  int limit = 0;
  CXR_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CXR_CHECK(bytes <= size_t(limit), op, ": the CUDA kernel needs ", bytes,
            " bytes of shared memory for these head dims, the device allows ", limit);
  CXR_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

unsigned grid_size(int64_t bh, int64_t n, int64_t tile, const char* op) {
  const int64_t blocks = bh * ((n + tile - 1) / tile);
  CXR_CHECK(blocks <= int64_t(std::numeric_limits<int>::max()), op, ": ", blocks,
            " thread blocks exceed the CUDA grid limit");
  return unsigned(blocks);
}

}  // namespace attention_detail

namespace {

using namespace attention_detail;

constexpr int kWarps = 4;  // warps per block
constexpr int kThreadsPerBlock = kWarps * 32;

// The arithmetic type: float64 for float64 inputs, float32 otherwise.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Tile shapes for head dims up to 32·DCH (DCH "chunks" of 32 lanes: 1, 2, 3, 4, 5 or 8, so the
// SD head dims 40/80/160 waste at most 24 lanes). Rows per warp keep each lane's accumulator at
// ≤ 32 values; float64 and the widest heads take 32 keys (or queries) per tile instead of 64 to
// stay within shared memory.
constexpr int rows_per_warp(int dch) {
  return dch == 1 ? 16 : 32 / dch;
}
template <typename T>
constexpr int cols_per_lane(int dch) {
  return std::is_same_v<T, double> || dch == 8 ? 1 : 2;
}
// dK/dV kernel: keys per warp (two accumulators, dK and dV, of DCH values per key and lane).
constexpr int keys_per_warp(int dch) {
  return dch >= 16 ? 1 : 16 / dch;
}

// dst[r * ld + c] = element (first + r, c) of `src`, the batch·head slice of operand `view`, for
// first + r < n, 0 for the rest of rows; c < cols. All threads of the block take part
// (consecutive threads read consecutive columns).
template <typename T, typename Acc>
__device__ void load_tile(Acc* dst, int ld, const T* src, const View& view, int64_t first,
                          int64_t n, int rows, int cols) {
  src += first * view.rs;
  const int64_t rs = view.rs, cs = view.cs, valid = n - first;
  for (int e = int(threadIdx.x); e < rows * cols; e += kThreadsPerBlock) {
    const int r = e / cols, c = e % cols;
    dst[r * ld + c] = r < valid ? convert<Acc>(src[r * rs + c * cs]) : Acc(0);
  }
}

template <typename Acc>
__device__ Acc warp_max(Acc x) {
  for (int o = 16; o > 0; o >>= 1) x = fmax(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
template <typename Acc>
__device__ Acc warp_sum(Acc x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// The block's dynamic shared memory, as an array of Acc.
template <typename Acc>
__device__ Acc* shared_tiles() {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  return reinterpret_cast<Acc*>(smem_raw);
}

// acc[r][t] = fma(a[(row0 + r)·a_ld + d], b[(lane + 32 t)·b_ld + d], acc[r][t]) for d = 0 .. n-1
// in ascending order: the warp's R rows of the shared tile `a` against the lane's KPL rows of the
// shared tile `b` (scores S = Q Kᵀ, dP = dO Vᵀ and their transposes).
template <int R, int KPL, typename Acc>
__device__ __forceinline__ void warp_dot(Acc (&acc)[R][KPL], const Acc* a, int a_ld, int row0,
                                         const Acc* b, int b_ld, int lane, int n) {
  for (int d = 0; d < n; ++d) {
    Acc bv[KPL];
#pragma unroll
    for (int t = 0; t < KPL; ++t) bv[t] = b[(lane + 32 * t) * b_ld + d];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const Acc av = a[(row0 + r) * a_ld + d];
#pragma unroll
      for (int t = 0; t < KPL; ++t) acc[r][t] = fma(av, bv[t], acc[r][t]);
    }
  }
}

// acc[r][c] = fma(w[(row0 + r)·w_ld + j], b[j·b_ld + lane + 32 c], acc[r][c]) for j = 0 .. n-1 in
// ascending order, b's columns past `cols` read as 0: the warp's R rows of the shared weights `w`
// (P or dS) times the shared tile `b`, the lane owning head-dim columns lane + 32 c (O += P V,
// dQ += dS K).
template <int R, int DCH, typename Acc>
__device__ __forceinline__ void warp_axpy(Acc (&acc)[R][DCH], const Acc* w, int w_ld, int row0,
                                          const Acc* b, int b_ld, int cols, int lane, int n) {
  for (int j = 0; j < n; ++j) {
    Acc bv[DCH];
#pragma unroll
    for (int c = 0; c < DCH; ++c) bv[c] = lane + 32 * c < cols ? b[j * b_ld + lane + 32 * c] : 0;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const Acc wr = w[(row0 + r) * w_ld + j];
#pragma unroll
      for (int c = 0; c < DCH; ++c) acc[r][c] = fma(wr, bv[c], acc[r][c]);
    }
  }
}

// ---- forward --------------------------------------------------------------------------------

template <typename T, int DCH>
size_t forward_smem(int D, int Dv) {
  constexpr int Br = kWarps * rows_per_warp(DCH), Bc = 32 * cols_per_lane<T>(DCH);
  return sizeof(acc_t<T>) * size_t(Br * D + Bc * (D + 1) + Bc * Dv + Br * Bc);
}

template <typename T, int DCH>
__global__ void __launch_bounds__(kThreadsPerBlock)
    forward_kernel(const Problem p, T* out, acc_t<T>* lse) {
  using Acc = acc_t<T>;
  constexpr int R = rows_per_warp(DCH), KPL = cols_per_lane<T>(DCH);
  constexpr int Br = kWarps * R, Bc = 32 * KPL;
  constexpr Acc kInf = std::numeric_limits<Acc>::infinity();
  const int D = p.D, Dv = p.Dv, warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const auto [bh, i0] = block_tile(p.L, Br);
  const Acc scale = Acc(p.scale);

  Acc* qs = shared_tiles<Acc>();  // [Br][D]
  Acc* ks = qs + Br * D;          // [Bc][D + 1]
  Acc* vs = ks + Bc * (D + 1);    // [Bc][Dv]
  Acc* ps = vs + Bc * Dv;         // [Br][Bc], rows of warp w at w·R
  const T* q = head_slice<T>(p, p.q, bh);
  const T* k = head_slice<T>(p, p.k, bh);
  const T* v = head_slice<T>(p, p.v, bh);
  const int64_t mask_off = mask_offset(p, bh);
  load_tile(qs, D, q, p.q, i0, p.L, Br, D);

  Acc o[R][DCH], m[R], l[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -kInf;
    l[r] = 0;
#pragma unroll
    for (int c = 0; c < DCH; ++c) o[r][c] = 0;
  }
  // Under causal, keys past the block's last row are masked for all its rows.
  const int64_t j_end = p.causal ? std::min<int64_t>(p.S, i0 + Br) : p.S;
  for (int64_t j0 = 0; j0 < j_end; j0 += Bc) {
    __syncthreads();  // the previous tile is consumed
    load_tile(ks, D + 1, k, p.k, j0, p.S, Bc, D);
    load_tile(vs, Dv, v, p.v, j0, p.S, Bc, Dv);
    __syncthreads();
    // Scores: lane owns keys lane + 32 t.
    Acc s[R][KPL] = {};
    warp_dot(s, qs, D, warp * R, ks, D + 1, lane, D);
// Online softmax, row by row (every lane holds the row's m and l).
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = i0 + warp * R + r;
      Acc mx = -kInf;
#pragma unroll
      for (int t = 0; t < KPL; ++t) {
        s[r][t] = masked_score(p, mask_off, i, j0 + lane + 32 * t, s[r][t] * scale);
        mx = fmax(mx, s[r][t]);
      }
      const Acc m_new = fmax(m[r], warp_max(mx));
      Acc alpha = 1, sum = 0;
#pragma unroll
      for (int t = 0; t < KPL; ++t) {
        // Every key so far masked: P = 0, nothing changes.
        const Acc pt = m_new == -kInf ? Acc(0) : math::exp(s[r][t] - m_new);
        ps[(warp * R + r) * Bc + lane + 32 * t] = pt;
        sum += pt;
      }
      if (m_new != -kInf) alpha = math::exp(m[r] - m_new);  // 0 when m was -inf
      l[r] = l[r] * alpha + warp_sum(sum);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < DCH; ++c) o[r][c] *= alpha;
    }
    __syncwarp();
    // O += P V: lane owns head-dim columns lane + 32 c.
    const int bc = int(std::min<int64_t>(Bc, p.S - j0));
    warp_axpy(o, ps, Bc, warp * R, vs, Dv, Dv, lane, bc);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + warp * R + r;
    if (i >= p.L) continue;
    const bool seen = l[r] > Acc(0);  // else fully masked (or no keys): output 0, LSE +inf
    const Acc inv = seen ? Acc(1) / l[r] : Acc(0);
    T* orow = out + (bh * p.L + i) * Dv;
#pragma unroll
    for (int c = 0; c < DCH; ++c)
      if (lane + 32 * c < Dv) orow[lane + 32 * c] = convert<T>(o[r][c] * inv);
    if (lane == 0) lse[bh * p.L + i] = seen ? m[r] + log(l[r]) : kInf;
  }
}

// ---- backward -------------------------------------------------------------------------------

// delta[bh·L + i] = sum_c dO[i, c] O[i, c], summed in float64 by one warp per row.
template <typename T>
__global__ void delta_kernel(const Problem p, acc_t<T>* delta) {
  const int64_t row = (int64_t(blockIdx.x) * kThreadsPerBlock + threadIdx.x) / 32;
  const int lane = int(threadIdx.x) % 32;
  if (row >= p.bh * p.L) return;
  const int64_t bh = row / p.L, i = row % p.L;
  const T* dout = head_slice<T>(p, p.dout, bh) + i * p.dout.rs;
  const T* out = head_slice<T>(p, p.out, bh) + i * p.out.rs;
  double s = 0;
  for (int c = lane; c < p.Dv; c += 32)
    s += convert<double>(dout[c * p.dout.cs]) * convert<double>(out[c * p.out.cs]);
  s = warp_sum(s);
  if (lane == 0) delta[row] = acc_t<T>(s);
}

template <typename T, int DCH>
size_t dq_smem(int D, int Dv) {
  constexpr int Br = kWarps * rows_per_warp(DCH), Bc = 32 * cols_per_lane<T>(DCH);
  return sizeof(acc_t<T>) * size_t(Br * D + Br * Dv + Bc * (D + 1) + Bc * (Dv + 1) + Br * Bc);
}

// dQ_i = scale Σ_j dS_ij K_j, one block per (batch·head, tile of Br query rows), the forward's
// layout with dO beside Q and dS in place of P.
template <typename T, int DCH>
__global__ void __launch_bounds__(kThreadsPerBlock)
    dq_kernel(const Problem p, const acc_t<T>* lse, const acc_t<T>* delta, T* dq) {
  using Acc = acc_t<T>;
  constexpr int R = rows_per_warp(DCH), KPL = cols_per_lane<T>(DCH);
  constexpr int Br = kWarps * R, Bc = 32 * KPL;
  constexpr Acc kInf = std::numeric_limits<Acc>::infinity();
  const int D = p.D, Dv = p.Dv, warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const auto [bh, i0] = block_tile(p.L, Br);
  const Acc scale = Acc(p.scale);

  Acc* qs = shared_tiles<Acc>();  // [Br][D]
  Acc* dos = qs + Br * D;         // [Br][Dv]
  Acc* ks = dos + Br * Dv;        // [Bc][D + 1]
  Acc* vs = ks + Bc * (D + 1);    // [Bc][Dv + 1]
  Acc* dss = vs + Bc * (Dv + 1);  // [Br][Bc]
  const T* q = head_slice<T>(p, p.q, bh);
  const T* k = head_slice<T>(p, p.k, bh);
  const T* v = head_slice<T>(p, p.v, bh);
  const T* dout = head_slice<T>(p, p.dout, bh);
  const int64_t mask_off = mask_offset(p, bh);
  load_tile(qs, D, q, p.q, i0, p.L, Br, D);
  load_tile(dos, Dv, dout, p.dout, i0, p.L, Br, Dv);

  Acc acc[R][DCH], row_lse[R], row_delta[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + warp * R + r;
    row_lse[r] = i < p.L ? lse[bh * p.L + i] : kInf;  // +inf: P = 0
    row_delta[r] = i < p.L ? delta[bh * p.L + i] : Acc(0);
#pragma unroll
    for (int c = 0; c < DCH; ++c) acc[r][c] = 0;
  }
  const int64_t j_end = p.causal ? std::min<int64_t>(p.S, i0 + Br) : p.S;
  for (int64_t j0 = 0; j0 < j_end; j0 += Bc) {
    __syncthreads();
    load_tile(ks, D + 1, k, p.k, j0, p.S, Bc, D);
    load_tile(vs, Dv + 1, v, p.v, j0, p.S, Bc, Dv);
    __syncthreads();
    // S = Q Kᵀ and dP = dO Vᵀ: lane owns keys lane + 32 t.
    Acc s[R][KPL] = {}, dp[R][KPL] = {};
    warp_dot(s, qs, D, warp * R, ks, D + 1, lane, D);
    warp_dot(dp, dos, Dv, warp * R, vs, Dv + 1, lane, Dv);
// dS = P ∘ (dP - delta) with P = exp(S - LSE).
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = i0 + warp * R + r;
#pragma unroll
      for (int t = 0; t < KPL; ++t) {
        const Acc sc = masked_score(p, mask_off, i, j0 + lane + 32 * t, s[r][t] * scale);
        const Acc pr = math::exp(sc - row_lse[r]);
        dss[(warp * R + r) * Bc + lane + 32 * t] = pr * (dp[r][t] - row_delta[r]);
      }
    }
    __syncwarp();
    // dQ += dS K: lane owns head-dim columns lane + 32 c.
    const int bc = int(std::min<int64_t>(Bc, p.S - j0));
    warp_axpy(acc, dss, Bc, warp * R, ks, D + 1, D, lane, bc);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + warp * R + r;
    if (i >= p.L) continue;
    T* row = dq + (bh * p.L + i) * D;
#pragma unroll
    for (int c = 0; c < DCH; ++c)
      if (lane + 32 * c < D) row[lane + 32 * c] = convert<T>(acc[r][c] * scale);
  }
}

template <typename T, int DCH>
size_t dkdv_smem(int D, int Dv) {
  constexpr int Bk = kWarps * keys_per_warp(DCH), Bq = 32 * cols_per_lane<T>(DCH);
  return sizeof(acc_t<T>) *
         size_t(Bk * D + Bk * Dv + Bq * (D + 1) + Bq * (Dv + 1) + 2 * Bq + 2 * Bk * Bq);
}

// dV_j = Σ_i P_ijᵀ dO_i and dK_j = scale Σ_i dS_ijᵀ Q_i, one block per (batch·head, tile of Bk
// keys); each warp owns Rk keys, its lanes split the Bq queries of a Q/dO tile for P and dS and the
// head dim for the accumulators.
template <typename T, int DCH>
__global__ void __launch_bounds__(kThreadsPerBlock)
    dkdv_kernel(const Problem p, const acc_t<T>* lse, const acc_t<T>* delta, T* dk, T* dv) {
  using Acc = acc_t<T>;
  constexpr int Rk = keys_per_warp(DCH), QPL = cols_per_lane<T>(DCH);
  constexpr int Bk = kWarps * Rk, Bq = 32 * QPL;
  const int D = p.D, Dv = p.Dv, warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const auto [bh, j0] = block_tile(p.S, Bk);
  const Acc scale = Acc(p.scale);

  Acc* ks = shared_tiles<Acc>();     // [Bk][D]
  Acc* vs = ks + Bk * D;             // [Bk][Dv]
  Acc* qs = vs + Bk * Dv;            // [Bq][D + 1]
  Acc* dos = qs + Bq * (D + 1);      // [Bq][Dv + 1]
  Acc* lse_s = dos + Bq * (Dv + 1);  // [Bq]
  Acc* delta_s = lse_s + Bq;         // [Bq]
  Acc* ps = delta_s + Bq;            // [Bk][Bq], keys of warp w at w·Rk
  Acc* dss = ps + Bk * Bq;           // [Bk][Bq]
  const T* q = head_slice<T>(p, p.q, bh);
  const T* k = head_slice<T>(p, p.k, bh);
  const T* v = head_slice<T>(p, p.v, bh);
  const T* dout = head_slice<T>(p, p.dout, bh);
  const int64_t mask_off = mask_offset(p, bh);
  load_tile(ks, D, k, p.k, j0, p.S, Bk, D);
  load_tile(vs, Dv, v, p.v, j0, p.S, Bk, Dv);

  Acc gk[Rk][DCH], gv[Rk][DCH];
#pragma unroll
  for (int r = 0; r < Rk; ++r)
#pragma unroll
    for (int c = 0; c < DCH; ++c) gk[r][c] = gv[r][c] = 0;
  // Under causal, rows before j0 see none of these keys.
  for (int64_t i0 = p.causal ? std::min<int64_t>(j0, p.L) : 0; i0 < p.L; i0 += Bq) {
    __syncthreads();
    load_tile(qs, D + 1, q, p.q, i0, p.L, Bq, D);
    load_tile(dos, Dv + 1, dout, p.dout, i0, p.L, Bq, Dv);
    load_row_stats(lse_s, delta_s, lse, delta, p, bh, i0, Bq, kThreadsPerBlock);
    __syncthreads();
    // S = K Qᵀ and dP = V dOᵀ for the warp's keys: lane owns queries lane + 32 t.
    // (warp_dot forms fma(k, q, s): the same correctly rounded value as fma(q, k, s).)
    Acc s[Rk][QPL] = {}, dp[Rk][QPL] = {};
    warp_dot(s, ks, D, warp * Rk, qs, D + 1, lane, D);
    warp_dot(dp, vs, Dv, warp * Rk, dos, Dv + 1, lane, Dv);
#pragma unroll
    for (int r = 0; r < Rk; ++r) {
      const int64_t j = j0 + warp * Rk + r;
#pragma unroll
      for (int t = 0; t < QPL; ++t) {
        const int il = lane + 32 * t;
        const Acc sc = masked_score(p, mask_off, i0 + il, j, s[r][t] * scale);
        const Acc pr = math::exp(sc - lse_s[il]);
        ps[(warp * Rk + r) * Bq + il] = pr;
        dss[(warp * Rk + r) * Bq + il] = pr * (dp[r][t] - delta_s[il]);
      }
    }
    __syncwarp();
    // dV += Pᵀ dO and dK += dSᵀ Q: lane owns head-dim columns lane + 32 c.
    const int bq = int(std::min<int64_t>(Bq, p.L - i0));
    for (int il = 0; il < bq; ++il) {
      Acc qd[DCH], od[DCH];
#pragma unroll
      for (int c = 0; c < DCH; ++c) {
        qd[c] = lane + 32 * c < D ? qs[il * (D + 1) + lane + 32 * c] : 0;
        od[c] = lane + 32 * c < Dv ? dos[il * (Dv + 1) + lane + 32 * c] : 0;
      }
#pragma unroll
      for (int r = 0; r < Rk; ++r) {
        const Acc pr = ps[(warp * Rk + r) * Bq + il], ds = dss[(warp * Rk + r) * Bq + il];
#pragma unroll
        for (int c = 0; c < DCH; ++c) {
          gv[r][c] = fma(pr, od[c], gv[r][c]);
          gk[r][c] = fma(ds, qd[c], gk[r][c]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < Rk; ++r) {
    const int64_t j = j0 + warp * Rk + r;
    if (j >= p.S) continue;
    T* krow = dk + (bh * p.S + j) * D;
    T* vrow = dv + (bh * p.S + j) * Dv;
#pragma unroll
    for (int c = 0; c < DCH; ++c) {
      if (lane + 32 * c < D) krow[lane + 32 * c] = convert<T>(gk[r][c] * scale);
      if (lane + 32 * c < Dv) vrow[lane + 32 * c] = convert<T>(gv[r][c]);
    }
  }
}

// ---- host -----------------------------------------------------------------------------------

DType work_dtype(DType t) {
  return t == kFloat64 ? kFloat64 : kFloat32;
}

// `t` viewed as the (right-aligned, broadcast) shape `full` = batch + [rows, cols].
View view_of(const Tensor& t, const Shape& full) {
  View v;
  v.ptr = t.data_ptr();
  const int64_t nd = int64_t(full.size()), nb = nd - 2, lead = nd - t.dim();
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t td = d - lead;
    const int64_t st = td >= 0 && t.size(td) != 1 ? t.stride(td) : 0;
    if (d < nb)
      v.batch_stride[d] = st;
    else if (d == nb)
      v.rs = st;
    else
      v.cs = st;
  }
  return v;
}

Shape with_last_two(const Shape& batch, int64_t a, int64_t b) {
  Shape s = batch;
  s.push_back(a);
  s.push_back(b);
  return s;
}

// The problem of (q, k, v, mask) with `mask` already in its kernel dtype (bool or the work dtype).
Problem make_problem(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                     bool causal, double scale, const char* op) {
  Problem p;
  const Shape batch(q.sizes().begin(), q.sizes().end() - 2);
  CXR_CHECK(batch.size() <= size_t(kMaxBatchDims), op, ": the CUDA kernel takes at most ",
            kMaxBatchDims, " leading dims, got ", describe(q));
  p.nb = int(batch.size());
  for (int d = 0; d < p.nb; ++d) p.batch[d] = batch[size_t(d)];
  p.bh = shape_numel(batch);
  p.L = q.size(-2);
  p.S = k.size(-2);
  p.D = int(q.size(-1));
  p.Dv = int(v.size(-1));
  CXR_CHECK(p.D <= kMaxHeadDim && p.Dv <= kMaxHeadDim, op,
            ": the CUDA kernel takes head dims up to ", kMaxHeadDim, ", got query ", describe(q),
            " and value ", describe(v));
  p.q = view_of(q, q.sizes());
  p.k = view_of(k, k.sizes());
  p.v = view_of(v, v.sizes());
  if (mask.defined()) {
    p.mask = view_of(mask, with_last_two(batch, p.L, p.S));
    p.mask_kind = mask.dtype() == kBool ? MaskKind::Keep : MaskKind::Add;
  }
  p.causal = causal;
  p.scale = scale;
  return p;
}

// Head-dim chunks of 32 for the larger of D and Dv.
int chunks(const Problem& p) {
  const int n = (std::max(p.D, p.Dv) + 31) / 32;
  return n <= 5 ? std::max(n, 1) : 8;
}

// Calls f.template operator()<DCH>() with DCH the compile-time chunk count.
template <typename F>
void dispatch_chunks(int dch, F&& f) {
  switch (dch) {
    case 1:
      return f.template operator()<1>();
    case 2:
      return f.template operator()<2>();
    case 3:
      return f.template operator()<3>();
    case 4:
      return f.template operator()<4>();
    case 5:
      return f.template operator()<5>();
    default:
      return f.template operator()<8>();
  }
}

// Launches the forward for dtype T.
template <typename T>
void launch_forward(const Problem& p, const raw::AttentionResult& r, int device, const char* op) {
  dispatch_chunks(chunks(p), [&]<int DCH>() {
    constexpr int Br = kWarps * rows_per_warp(DCH);
    const size_t smem = forward_smem<T, DCH>(p.D, p.Dv);
    allow_smem(reinterpret_cast<const void*>(&forward_kernel<T, DCH>), smem, device, op);
    forward_kernel<T, DCH>
        <<<grid_size(p.bh, p.L, Br, op), kThreadsPerBlock, smem, stream(device)>>>(
            p, static_cast<T*>(r.out.data_ptr()), static_cast<acc_t<T>*>(r.lse.data_ptr()));
    CXR_CUDA_LAUNCH_CHECK("attention forward_kernel");
  });
}

// Launches the backward for dtype T: delta, then dK/dV and dQ (all on the device's stream).
template <typename T>
void launch_backward(const Problem& p, const Tensor& lse, const Tensor& delta,
                     const raw::AttentionGrads& g, int device, const char* op) {
  using Acc = acc_t<T>;
  const cudaStream_t s = stream(device);
  const Acc* lse_p = static_cast<const Acc*>(lse.data_ptr());
  Acc* delta_p = static_cast<Acc*>(delta.data_ptr());
  if (p.L > 0) {
    const int64_t rows_per_block = kThreadsPerBlock / 32;
    delta_kernel<T>
        <<<grid_size(1, p.bh * p.L, rows_per_block, op), kThreadsPerBlock, 0, s>>>(p, delta_p);
    CXR_CUDA_LAUNCH_CHECK("attention delta_kernel");
  }
  if constexpr (std::is_same_v<Acc, float>) {
    if (tensor_core_supported(p, dtype_of<T>::value, device)) {
      tensor_core_backward(p, dtype_of<T>::value, lse_p, delta_p, g.q.data_ptr(), g.k.data_ptr(),
                           g.v.data_ptr(), device, op);
      return;
    }
  }
  dispatch_chunks(chunks(p), [&]<int DCH>() {
    if (p.S > 0) {
      constexpr int Bk = kWarps * keys_per_warp(DCH);
      const size_t smem = dkdv_smem<T, DCH>(p.D, p.Dv);
      allow_smem(reinterpret_cast<const void*>(&dkdv_kernel<T, DCH>), smem, device, op);
      dkdv_kernel<T, DCH><<<grid_size(p.bh, p.S, Bk, op), kThreadsPerBlock, smem, s>>>(
          p, lse_p, delta_p, static_cast<T*>(g.k.data_ptr()), static_cast<T*>(g.v.data_ptr()));
      CXR_CUDA_LAUNCH_CHECK("attention dkdv_kernel");
    }
    if (p.L > 0) {
      constexpr int Br = kWarps * rows_per_warp(DCH);
      const size_t smem = dq_smem<T, DCH>(p.D, p.Dv);
      allow_smem(reinterpret_cast<const void*>(&dq_kernel<T, DCH>), smem, device, op);
      dq_kernel<T, DCH><<<grid_size(p.bh, p.L, Br, op), kThreadsPerBlock, smem, s>>>(
          p, lse_p, delta_p, static_cast<T*>(g.q.data_ptr()));
      CXR_CUDA_LAUNCH_CHECK("attention dq_kernel");
    }
  });
}

}  // namespace

raw::AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& mask_in, bool causal,
                                                  double scale) {
  const char* op = "scaled_dot_product_attention";
  DeviceGuard guard(q.device());
  const DType work = work_dtype(q.dtype());
  const Tensor mask =
      mask_in.defined() && mask_in.dtype() != kBool ? raw::to(mask_in, work) : mask_in;
  const Problem p = make_problem(q, k, v, mask, causal, scale, op);
  const Shape batch(q.sizes().begin(), q.sizes().end() - 2);
  raw::AttentionResult r;
  r.out = raw::empty(with_last_two(batch, p.L, p.Dv), q.dtype(), q.device());
  Shape lse_shape = batch;
  lse_shape.push_back(p.L);
  r.lse = raw::empty(lse_shape, work, q.device());
  if (r.out.numel() == 0) {  // nothing to attend with (as on the CPU: LSE +inf)
    if (r.lse.numel() > 0) raw::fill_(r.lse, std::numeric_limits<double>::infinity());
    return r;
  }
  if (tensor_core_supported(p, q.dtype(), q.device().index)) {
    tensor_core_forward(p, q.dtype(), r.out.data_ptr(), static_cast<float*>(r.lse.data_ptr()),
                        q.device().index, op);
    return r;
  }
  CXR_DISPATCH_FLOAT(q.dtype(), op,
                     [&]<typename T>() { launch_forward<T>(p, r, q.device().index, op); });
  return r;
}

raw::AttentionGrads scaled_dot_product_attention_backward(const Tensor& grad_out, const Tensor& q,
                                                          const Tensor& k, const Tensor& v,
                                                          const raw::AttentionResult& saved,
                                                          const Tensor& mask_in, bool causal,
                                                          double scale) {
  const char* op = "scaled_dot_product_attention_backward";
  DeviceGuard guard(q.device());
  const DType work = work_dtype(q.dtype());
  const Tensor mask =
      mask_in.defined() && mask_in.dtype() != kBool ? raw::to(mask_in, work) : mask_in;
  // dO and O are read in q's dtype (converted only when they come in another one).
  const Tensor dout = raw::to(grad_out, q.dtype()), out = raw::to(saved.out, q.dtype());
  const Tensor lse = raw::contiguous(raw::to(saved.lse, work));
  Problem p = make_problem(q, k, v, mask, causal, scale, op);
  const Shape batch(q.sizes().begin(), q.sizes().end() - 2);
  p.dout = view_of(dout, dout.sizes());
  p.out = view_of(out, out.sizes());
  raw::AttentionGrads g;
  g.q = raw::empty(with_last_two(batch, p.L, p.D), q.dtype(), q.device());
  g.k = raw::empty(with_last_two(batch, p.S, p.D), q.dtype(), q.device());
  g.v = raw::empty(with_last_two(batch, p.S, p.Dv), q.dtype(), q.device());
  if (p.bh == 0) return g;
  const Tensor delta = raw::empty({std::max<int64_t>(p.bh * p.L, 1)}, work, q.device());
  CXR_DISPATCH_FLOAT(q.dtype(), op, [&]<typename T>() {
    launch_backward<T>(p, lse, delta, g, q.device().index, op);
  });
  return g;
}

}  // namespace cxr::cuda
