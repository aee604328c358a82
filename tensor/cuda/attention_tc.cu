// Tensor-core scaled dot-product attention for float16/bfloat16 inputs (float32 accumulation), the
// fast path behind the entry points of attention.cu (attention_common.cuh declares it). Same
// algorithm and conventions as the SIMT kernels there — FlashAttention-2 (Dao 2023, arXiv
// 2307.08691, Alg. 1 and 2), masking by masked_score, fully masked rows give output 0 and LSE +inf
// — with the products on mma.sync.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16": with
// g = lane / 4 and t = lane % 4, A holds rows g, g + 8 × cols 2t, 2t + 1, 2t + 8, 2t + 9; B holds
// k rows 2t, 2t + 1, 2t + 8, 2t + 9 × col g; C holds rows g, g + 8 × cols 2t, 2t + 1).
//  - Tiles live in shared memory as raw 16-bit values, rows padded by 8 halves (conflict-free
//    fragment loads), head dims zero-padded up to a multiple of 16; rows past the problem are zero.
//  - forward: a block of 4 warps owns 64 query rows (16 per warp) and loops over K/V tiles of 64
//    keys: S = Q Kᵀ into float registers, masking and online softmax in float32 on the C fragment
//    (a row's 4 lanes combine by shuffles), P rounded to the input type becomes the A fragment of
//    O += P V directly (the C layout of two 8-key blocks is the A layout of 16 keys).
//  - backward (no atomics, the same bits on every run): dQ with one block per 64 query rows
//    looping over key tiles (dS = P ∘ (dP - delta), dQ += scale dS K), dK/dV with one block per 64
//    keys (16 per warp) looping over query tiles (Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, dV += Pᵀ dO,
//    dK += scale dSᵀ Q); delta = rowsum(dO ∘ O) comes from attention.cu.
// Accumulators are sized for a head-dim bucket (64, 128, 160, 256) and skip the unused columns.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>

#include "tensor/cuda/attention.h"
#include "tensor/cuda/attention_common.cuh"
#include "tensor/cuda/context.cuh"

namespace cxr::cuda {
namespace {

// THE switch of the tensor-core path: false makes Auto run the SIMT kernels everywhere.
constexpr bool kTensorCoresEnabled = true;

std::atomic<AttentionKernel> g_kernel{AttentionKernel::Auto};

}  // namespace

void set_attention_kernel(AttentionKernel kernel) {
  g_kernel.store(kernel);
}

AttentionKernel attention_kernel() {
  return g_kernel.load();
}

namespace attention_detail {
namespace {

constexpr int kTcWarps = 4;
constexpr int kTcThreads = kTcWarps * 32;
constexpr int kRows = 16 * kTcWarps;  // query rows per forward / dQ block
constexpr int kKeys = 64;             // keys per K/V tile, and per dK/dV block
constexpr int kPad = 8;               // halves of padding per shared-memory row

// Queries per Q/dO tile of the dK/dV kernel (fewer for wide heads: two accumulators per key).
constexpr int dkdv_queries(int maxd) {
  return maxd <= 128 ? 64 : 32;
}

struct TcArgs {
  Problem p;
  int dp = 0, dpv = 0;                                   // D and Dv rounded up to a multiple of 16
  bool vq = false, vk = false, vv = false, vdo = false;  // 16-byte loads possible
};

__device__ uint16_t to_bits(float x, std::true_type /*bf16*/) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}
__device__ uint16_t to_bits(float x, std::false_type /*f16*/) {
  return __half_as_ushort(__float2half_rn(x));
}

// Two floats rounded to the input type, `lo` in the low half (the lower column).
template <bool BF16>
__device__ uint32_t pack(float lo, float hi) {
  const std::bool_constant<BF16> tag;
  return uint32_t(to_bits(lo, tag)) | (uint32_t(to_bits(hi, tag)) << 16);
}

// c += a·b for one 16×8×16 block.
template <bool BF16>
__device__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (BF16)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c, (void)a, (void)b0, (void)b1;
  __trap();  // tensor_core_supported keeps devices below 8.0 away
#endif
}

// The two halves s[0], s[1] (even offset) as one 32-bit word.
__device__ uint32_t ld2(const uint16_t* s) {
  return *reinterpret_cast<const uint32_t*>(s);
}
// The halves s[0] and s[ld] packed (a column pair of a row-major tile).
__device__ uint32_t ld2t(const uint16_t* s, int ld) {
  return uint32_t(s[0]) | (uint32_t(s[ld]) << 16);
}

// A fragment: rows [0, 16) × cols [k, k + 16) of a row-major tile `s` (leading dim ld).
__device__ void load_a(uint32_t (&a)[4], const uint16_t* s, int ld, int k) {
  const int lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const uint16_t* r0 = s + g * ld + k + 2 * t;
  const uint16_t* r1 = r0 + 8 * ld;
  a[0] = ld2(r0);
  a[1] = ld2(r1);
  a[2] = ld2(r0 + 8);
  a[3] = ld2(r1 + 8);
}
// B fragment (k [k, k + 16) × n [n, n + 8)) of a tile stored n-major: s[n][k] (Bᵀ row-major).
__device__ void load_b_nk(uint32_t& b0, uint32_t& b1, const uint16_t* s, int ld, int n, int k) {
  const int lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const uint16_t* r = s + (n + g) * ld + k + 2 * t;
  b0 = ld2(r);
  b1 = ld2(r + 8);
}
// B fragment of a tile stored k-major: s[k][n] (B row-major).
__device__ void load_b_kn(uint32_t& b0, uint32_t& b1, const uint16_t* s, int ld, int n, int k) {
  const int lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const uint16_t* c = s + (k + 2 * t) * ld + n + g;
  b0 = ld2t(c, ld);
  b1 = ld2t(c + 8 * ld, ld);
}
// The A fragment of 16 columns [16 kt, 16 kt + 16) of a 16-row C-layout register tile x[n][4]
// (n-blocks 2 kt and 2 kt + 1), rounded to the input type.
template <bool BF16, int N>
__device__ void c_to_a(uint32_t (&a)[4], const float (&x)[N][4], int kt) {
  a[0] = pack<BF16>(x[2 * kt][0], x[2 * kt][1]);
  a[1] = pack<BF16>(x[2 * kt][2], x[2 * kt][3]);
  a[2] = pack<BF16>(x[2 * kt + 1][0], x[2 * kt + 1][1]);
  a[3] = pack<BF16>(x[2 * kt + 1][2], x[2 * kt + 1][3]);
}

// dst[r][c] = element (first + r, c) of `src`, the batch·head slice of operand `view`, for
// first + r < n and c < cols, 0 for the rest of rows × cols16 (rows past the problem, head-dim
// padding). With vec (cs = 1, 16-byte aligned rows, cols % 8 = 0) 8
// values move at a time. All threads of the block take part.
__device__ void load_tile(uint16_t* dst, int ld, const uint16_t* src, const View& view,
                          int64_t first, int64_t n, int rows, int cols, int cols16, bool vec) {
  src += first * view.rs;
  const int64_t rs = view.rs, cs = view.cs, valid = n - first;
  if (vec) {
    const int chunks = cols16 / 8;
    for (int e = int(threadIdx.x); e < rows * chunks; e += kTcThreads) {
      const int r = e / chunks, c = e % chunks * 8;
      uint4 x = make_uint4(0, 0, 0, 0);
      if (r < valid && c < cols) x = *reinterpret_cast<const uint4*>(src + r * rs + c);
      *reinterpret_cast<uint4*>(dst + r * ld + c) = x;
    }
  } else {
    for (int e = int(threadIdx.x); e < rows * cols16; e += kTcThreads) {
      const int r = e / cols16, c = e % cols16;
      dst[r * ld + c] = r < valid && c < cols ? src[r * rs + c * cs] : uint16_t(0);
    }
  }
}

// Whether no score of rows [i_lo, ...) × keys [j_lo, j_hi) is masked, so masked_score reduces to
// the scaling: no mask, all keys inside S, under causal the last key at or before the first row.
// Rows past L are not checked: their results are dropped (forward) or their LSE is +inf (P = 0).
__device__ bool unmasked(const Problem& p, int64_t i_lo, int64_t j_hi) {
  return p.mask_kind == MaskKind::None && j_hi <= p.S && (!p.causal || j_hi - 1 <= i_lo);
}

__device__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

__device__ uint16_t* smem_halves() {
  extern __shared__ __align__(16) unsigned char tc_smem[];
  return reinterpret_cast<uint16_t*>(tc_smem);
}

// S = A Bᵀ for a warp's 16 rows: A row-major (16 × dk, leading dim lda), B n-major (N·8 rows).
template <bool BF16, int N>
__device__ void scores(float (&s)[N][4], const uint16_t* a, int lda, const uint16_t* b, int ldb,
                       int dk) {
#pragma unroll
  for (int n = 0; n < N; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0;
  for (int k = 0; k < dk; k += 16) {
    uint32_t af[4];
    load_a(af, a, lda, k);
#pragma unroll
    for (int n = 0; n < N; ++n) {
      uint32_t b0, b1;
      load_b_nk(b0, b1, b, ldb, 8 * n, k);
      mma<BF16>(s[n], af, b0, b1);
    }
  }
}

// acc[n] += X B for the n-blocks n < used: X a C-layout register tile of 16 rows × 8·N columns,
// B k-major (8·N rows) with leading dim ldb.
template <bool BF16, int N, int M>
__device__ void accumulate(float (&acc)[M][4], const float (&x)[N][4], const uint16_t* b, int ldb,
                           int used) {
#pragma unroll
  for (int kt = 0; kt < N / 2; ++kt) {
    uint32_t af[4];
    c_to_a<BF16>(af, x, kt);
#pragma unroll
    for (int n = 0; n < M; ++n)
      if (n < used) {
        uint32_t b0, b1;
        load_b_kn(b0, b1, b, ldb, 8 * n, 16 * kt);
        mma<BF16>(acc[n], af, b0, b1);
      }
  }
}

// Stores a C-layout register tile of 16 rows (row0 + ...) × `cols` columns, times `mul`, to the
// contiguous rows of `dst` (leading dim cols) that are < rows.
template <bool BF16, int M>
__device__ void store_rows(uint16_t* dst, int64_t row0, int64_t rows, int cols,
                           const float (&x)[M][4], float mul) {
  const int lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t r = row0 + g + 8 * h;
    if (r >= rows) continue;
#pragma unroll
    for (int n = 0; n < M; ++n) {
      const int c = 8 * n + 2 * t;
      if (c < cols)
        *reinterpret_cast<uint32_t*>(dst + r * cols + c) =
            pack<BF16>(x[n][2 * h] * mul, x[n][2 * h + 1] * mul);
    }
  }
}

// ---- forward --------------------------------------------------------------------------------

size_t forward_smem(const TcArgs& a) {
  return 2 * size_t(kRows * (a.dp + kPad) + kKeys * (a.dp + kPad) + kKeys * (a.dpv + kPad));
}

template <bool BF16, int MAXD>
__global__ void __launch_bounds__(kTcThreads)
    tc_forward_kernel(const TcArgs a, uint16_t* out, float* lse) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr int NS = kKeys / 8, NO = MAXD / 8;
  const Problem& p = a.p;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int ldq = a.dp + kPad, ldv = a.dpv + kPad;
  const auto [bh, i0] = block_tile(p.L, kRows);
  const float scale = float(p.scale);

  uint16_t* qs = smem_halves();     // [kRows][ldq]
  uint16_t* ks = qs + kRows * ldq;  // [kKeys][ldq]
  uint16_t* vs = ks + kKeys * ldq;  // [kKeys][ldv]
  const uint16_t* q = head_slice<uint16_t>(p, p.q, bh);
  const uint16_t* k = head_slice<uint16_t>(p, p.k, bh);
  const uint16_t* v = head_slice<uint16_t>(p, p.v, bh);
  const int64_t mask_off = mask_offset(p, bh);
  load_tile(qs, ldq, q, p.q, i0, p.L, kRows, p.D, a.dp, a.vq);

  float o[NO][4] = {}, m[2] = {-kInf, -kInf}, l[2] = {0, 0};
  const int64_t row0 = i0 + 16 * warp;  // the warp's first row
  // Under causal, keys past the block's last row are masked for all its rows.
  const int64_t j_end = p.causal ? std::min<int64_t>(p.S, i0 + kRows) : p.S;
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys) {
    __syncthreads();  // the previous tile is consumed
    load_tile(ks, ldq, k, p.k, j0, p.S, kKeys, p.D, a.dp, a.vk);
    load_tile(vs, ldv, v, p.v, j0, p.S, kKeys, p.Dv, a.dpv, a.vv);
    __syncthreads();
    float s[NS][4];
    scores<BF16>(s, qs + 16 * warp * ldq, ldq, ks, ldq, a.dp);
    // Online softmax; element e of block n is (row g + 8 (e / 2), key 8 n + 2 t + e % 2).
    float mx[2] = {-kInf, -kInf};
    const bool plain = unmasked(p, row0, j0 + kKeys);
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e / 2;
        const float x = s[n][e] * scale;
        s[n][e] =
            plain ? x : masked_score(p, mask_off, row0 + g + 8 * h, j0 + 8 * n + 2 * t + e % 2, x);
        mx[h] = fmaxf(mx[h], s[n][e]);
      }
    float alpha[2], sum[2] = {0, 0};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float m_new = fmaxf(m[h], quad_max(mx[h]));
      // Every key so far masked: P = 0, nothing changes.
      alpha[h] = m_new == -kInf ? 1.0f : __expf(m[h] - m_new);  // 0 when m was -inf
      mx[h] = m_new;
    }
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e / 2;
        s[n][e] = mx[h] == -kInf ? 0.0f : __expf(s[n][e] - mx[h]);
        sum[h] += s[n][e];
      }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l[h] = l[h] * alpha[h] + quad_sum(sum[h]);
      m[h] = mx[h];
    }
#pragma unroll
    for (int n = 0; n < NO; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e / 2];
    accumulate<BF16>(o, s, vs, ldv, a.dpv / 8);
  }
  // Rows past L are dropped by store_rows; a fully masked row (l = 0) gets 0 and LSE +inf.
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row0 + g + 8 * h;
    inv[h] = l[h] > 0 ? 1.0f / l[h] : 0.0f;
    if (t == 0 && i < p.L) lse[bh * p.L + i] = l[h] > 0 ? m[h] + logf(l[h]) : kInf;
  }
#pragma unroll
  for (int n = 0; n < NO; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] *= inv[e / 2];
  store_rows<BF16>(out + bh * p.L * p.Dv, row0, p.L, p.Dv, o, 1.0f);
}

// ---- backward -------------------------------------------------------------------------------

size_t dq_smem(const TcArgs& a) {
  return 2 * size_t((kRows + kKeys) * (a.dp + kPad) + (kRows + kKeys) * (a.dpv + kPad));
}

// dQ_i = scale Σ_j dS_ij K_j for the block's 64 query rows.
template <bool BF16, int MAXD>
__global__ void __launch_bounds__(kTcThreads)
    tc_dq_kernel(const TcArgs a, const float* lse, const float* delta, uint16_t* dq) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr int NS = kKeys / 8, NQ = MAXD / 8;
  const Problem& p = a.p;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int ldq = a.dp + kPad, ldv = a.dpv + kPad;
  const auto [bh, i0] = block_tile(p.L, kRows);
  const float scale = float(p.scale);

  uint16_t* qs = smem_halves();      // [kRows][ldq]
  uint16_t* dos = qs + kRows * ldq;  // [kRows][ldv]
  uint16_t* ks = dos + kRows * ldv;  // [kKeys][ldq]
  uint16_t* vs = ks + kKeys * ldq;   // [kKeys][ldv]
  const uint16_t* q = head_slice<uint16_t>(p, p.q, bh);
  const uint16_t* k = head_slice<uint16_t>(p, p.k, bh);
  const uint16_t* v = head_slice<uint16_t>(p, p.v, bh);
  const uint16_t* dout = head_slice<uint16_t>(p, p.dout, bh);
  const int64_t mask_off = mask_offset(p, bh);
  load_tile(qs, ldq, q, p.q, i0, p.L, kRows, p.D, a.dp, a.vq);
  load_tile(dos, ldv, dout, p.dout, i0, p.L, kRows, p.Dv, a.dpv, a.vdo);

  const int64_t row0 = i0 + 16 * warp;
  float row_lse[2], row_delta[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = row0 + g + 8 * h;
    row_lse[h] = i < p.L ? lse[bh * p.L + i] : kInf;  // +inf: P = 0
    row_delta[h] = i < p.L ? delta[bh * p.L + i] : 0.0f;
  }
  float acc[NQ][4] = {};
  const int64_t j_end = p.causal ? std::min<int64_t>(p.S, i0 + kRows) : p.S;
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys) {
    __syncthreads();
    load_tile(ks, ldq, k, p.k, j0, p.S, kKeys, p.D, a.dp, a.vk);
    load_tile(vs, ldv, v, p.v, j0, p.S, kKeys, p.Dv, a.dpv, a.vv);
    __syncthreads();
    float s[NS][4], dp[NS][4];
    scores<BF16>(s, qs + 16 * warp * ldq, ldq, ks, ldq, a.dp);
    scores<BF16>(dp, dos + 16 * warp * ldv, ldv, vs, ldv, a.dpv);
    // dS = P ∘ (dP - delta) with P = exp(S - LSE), into s.
    const bool plain = unmasked(p, row0, j0 + kKeys);
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e / 2;
        const float x = s[n][e] * scale;
        const float sc =
            plain ? x : masked_score(p, mask_off, row0 + g + 8 * h, j0 + 8 * n + 2 * t + e % 2, x);
        s[n][e] = __expf(sc - row_lse[h]) * (dp[n][e] - row_delta[h]);
      }
    accumulate<BF16>(acc, s, ks, ldq, a.dp / 8);
  }
  store_rows<BF16>(dq + bh * p.L * p.D, row0, p.L, p.D, acc, scale);
}

template <int MAXD>
size_t dkdv_smem(const TcArgs& a) {
  constexpr int BQ = dkdv_queries(MAXD);
  return 2 * size_t((kKeys + BQ) * (a.dp + kPad) + (kKeys + BQ) * (a.dpv + kPad)) +
         sizeof(float) * 2 * BQ;
}

// dV_j = Σ_i P_ijᵀ dO_i and dK_j = scale Σ_i dS_ijᵀ Q_i for the block's 64 keys (16 per warp).
template <bool BF16, int MAXD>
__global__ void __launch_bounds__(kTcThreads)
    tc_dkdv_kernel(const TcArgs a, const float* lse, const float* delta, uint16_t* dk,
                   uint16_t* dv) {
  constexpr int BQ = dkdv_queries(MAXD), NS = BQ / 8, NK = MAXD / 8;
  const Problem& p = a.p;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int ldq = a.dp + kPad, ldv = a.dpv + kPad;
  const auto [bh, j0] = block_tile(p.S, kKeys);
  const float scale = float(p.scale);

  uint16_t* ks = smem_halves();                             // [kKeys][ldq]
  uint16_t* vs = ks + kKeys * ldq;                          // [kKeys][ldv]
  uint16_t* qs = vs + kKeys * ldv;                          // [BQ][ldq]
  uint16_t* dos = qs + BQ * ldq;                            // [BQ][ldv]
  float* lse_s = reinterpret_cast<float*>(dos + BQ * ldv);  // [BQ]
  float* delta_s = lse_s + BQ;                              // [BQ]
  const uint16_t* q = head_slice<uint16_t>(p, p.q, bh);
  const uint16_t* k = head_slice<uint16_t>(p, p.k, bh);
  const uint16_t* v = head_slice<uint16_t>(p, p.v, bh);
  const uint16_t* dout = head_slice<uint16_t>(p, p.dout, bh);
  const int64_t mask_off = mask_offset(p, bh);
  load_tile(ks, ldq, k, p.k, j0, p.S, kKeys, p.D, a.dp, a.vk);
  load_tile(vs, ldv, v, p.v, j0, p.S, kKeys, p.Dv, a.dpv, a.vv);

  const int64_t key0 = j0 + 16 * warp;  // the warp's first key
  float gk[NK][4] = {}, gv[NK][4] = {};
  // Under causal, rows before j0 see none of these keys.
  for (int64_t i0 = p.causal ? std::min<int64_t>(j0, p.L) : 0; i0 < p.L; i0 += BQ) {
    __syncthreads();
    load_tile(qs, ldq, q, p.q, i0, p.L, BQ, p.D, a.dp, a.vq);
    load_tile(dos, ldv, dout, p.dout, i0, p.L, BQ, p.Dv, a.dpv, a.vdo);
    load_row_stats(lse_s, delta_s, lse, delta, p, bh, i0, BQ, kTcThreads);
    __syncthreads();
    // Sᵀ = K Qᵀ and dPᵀ = V dOᵀ; element e of block n is (key g + 8 (e / 2), query 8 n + 2 t + e %
    // 2).
    float st[NS][4], dpt[NS][4];
    scores<BF16>(st, ks + 16 * warp * ldq, ldq, qs, ldq, a.dp);
    scores<BF16>(dpt, vs + 16 * warp * ldv, ldv, dos, ldv, a.dpv);
    const bool plain = unmasked(p, i0, key0 + 16);
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int il = 8 * n + 2 * t + e % 2;
        const float x = st[n][e] * scale;
        const float sc = plain ? x : masked_score(p, mask_off, i0 + il, key0 + g + 8 * (e / 2), x);
        st[n][e] = __expf(sc - lse_s[il]);                 // Pᵀ
        dpt[n][e] = st[n][e] * (dpt[n][e] - delta_s[il]);  // dSᵀ
      }
    accumulate<BF16>(gv, st, dos, ldv, a.dpv / 8);
    accumulate<BF16>(gk, dpt, qs, ldq, a.dp / 8);
  }
  store_rows<BF16>(dk + bh * p.S * p.D, key0, p.S, p.D, gk, scale);
  store_rows<BF16>(dv + bh * p.S * p.Dv, key0, p.S, p.Dv, gv, 1.0f);
}

// ---- host -----------------------------------------------------------------------------------

// 16-byte tile loads: unit column stride, rows and batch offsets multiples of 8 halves, aligned
// base.
bool vectorizable(const View& v, int nb, int cols) {
  if (v.cs != 1 || v.rs % 8 != 0 || cols % 8 != 0 || reinterpret_cast<uintptr_t>(v.ptr) % 16 != 0)
    return false;
  for (int d = 0; d < nb; ++d)
    if (v.batch_stride[d] % 8 != 0) return false;
  return true;
}

TcArgs make_args(const Problem& p, bool backward) {
  TcArgs a;
  a.p = p;
  a.dp = (p.D + 15) / 16 * 16;
  a.dpv = (p.Dv + 15) / 16 * 16;
  a.vq = vectorizable(p.q, p.nb, p.D);
  a.vk = vectorizable(p.k, p.nb, p.D);
  a.vv = vectorizable(p.v, p.nb, p.Dv);
  a.vdo = backward && vectorizable(p.dout, p.nb, p.Dv);
  return a;
}

// Calls f.template operator()<BF16, MAXD>() with MAXD the head-dim bucket of max(D, Dv).
template <typename F>
void dispatch(DType dtype, const TcArgs& a, F&& f) {
  const int d = std::max(a.dp, a.dpv);
  auto bucket = [&]<bool BF16>() {
    if (d <= 64)
      f.template operator()<BF16, 64>();
    else if (d <= 128)
      f.template operator()<BF16, 128>();
    else if (d <= 160)
      f.template operator()<BF16, 160>();
    else
      f.template operator()<BF16, 256>();
  };
  if (dtype == kBFloat16)
    bucket.template operator()<true>();
  else
    bucket.template operator()<false>();
}

}  // namespace

bool tensor_core_supported(const Problem& p, DType dtype, int device) {
  if (!kTensorCoresEnabled || attention_kernel() != AttentionKernel::Auto) return false;
  if (dtype != kFloat16 && dtype != kBFloat16) return false;
  if (p.D <= 0 || p.Dv <= 0 || p.D % 8 != 0 || p.Dv % 8 != 0 || p.D > kMaxHeadDim ||
      p.Dv > kMaxHeadDim)
    return false;
  int major = 0;
  CXR_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 8;
}

void tensor_core_forward(const Problem& p, DType dtype, void* out, float* lse, int device,
                         const char* op) {
  const TcArgs a = make_args(p, false);
  dispatch(dtype, a, [&]<bool BF16, int MAXD>() {
    const size_t smem = forward_smem(a);
    allow_smem(reinterpret_cast<const void*>(&tc_forward_kernel<BF16, MAXD>), smem, device, op);
    tc_forward_kernel<BF16, MAXD>
        <<<grid_size(p.bh, p.L, kRows, op), kTcThreads, smem, stream(device)>>>(
            a, static_cast<uint16_t*>(out), lse);
    CXR_CUDA_LAUNCH_CHECK("attention tc_forward_kernel");
  });
}

void tensor_core_backward(const Problem& p, DType dtype, const float* lse, const float* delta,
                          void* dq, void* dk, void* dv, int device, const char* op) {
  const TcArgs a = make_args(p, true);
  const cudaStream_t s = stream(device);
  dispatch(dtype, a, [&]<bool BF16, int MAXD>() {
    if (p.S > 0) {
      const size_t smem = dkdv_smem<MAXD>(a);
      allow_smem(reinterpret_cast<const void*>(&tc_dkdv_kernel<BF16, MAXD>), smem, device, op);
      tc_dkdv_kernel<BF16, MAXD><<<grid_size(p.bh, p.S, kKeys, op), kTcThreads, smem, s>>>(
          a, lse, delta, static_cast<uint16_t*>(dk), static_cast<uint16_t*>(dv));
      CXR_CUDA_LAUNCH_CHECK("attention tc_dkdv_kernel");
    }
    if (p.L > 0) {
      const size_t smem = dq_smem(a);
      allow_smem(reinterpret_cast<const void*>(&tc_dq_kernel<BF16, MAXD>), smem, device, op);
      tc_dq_kernel<BF16, MAXD><<<grid_size(p.bh, p.L, kRows, op), kTcThreads, smem, s>>>(
          a, lse, delta, static_cast<uint16_t*>(dq));
      CXR_CUDA_LAUNCH_CHECK("attention tc_dq_kernel");
    }
  });
}

}  // namespace attention_detail
}  // namespace cxr::cuda
