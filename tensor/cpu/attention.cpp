// Scaled dot-product attention on the CPU, FlashAttention-2 style (Dao 2023, arXiv 2307.08691;
// spec/kernels.md §3). Forward: per (batch·head, block of Br query rows), loop over blocks of Bc
// keys: S = scale Q_i K_jᵀ (+ mask), online softmax (running max m and sum l, rescaling the output
// accumulator by exp(m_old - m_new)), O_i += P V_j; finally O_i /= l and LSE_i = m + log(l).
// Memory is the output, the LSE and one Br×Bc tile per thread: the L×S score matrix never exists.
// Backward recomputes P = exp(S - LSE) tile by tile with D_i = rowsum(dO_i ∘ O_i) (FA2 Alg. 2):
// dV_j += Pᵀ dO_i, dP = dO_i V_jᵀ, dS = P ∘ (dP - D_i), dK_j += scale dSᵀ Q_i,
// dQ_i += scale dS K_j. Tiles go through cxr::cpu::sgemm with general strides, so permuted
// (e.g. [B, L, H, D] viewed as [B, H, L, D]) inputs are read in place.
//
// Parallel and deterministic: the forward gives each (batch·head, query block) to one task; the
// backward gives each (batch·head, group of key blocks) to one task, where the number of groups
// depends only on the shapes, and sums the groups' partial dQ in group order. So results are
// bitwise the same for any thread count.
//
// Fully masked rows (every key masked) give output 0 and LSE = +inf (so backward's P is 0), as
// PyTorch's CPU flash kernel gives 0. Causal masking is top-left aligned (row i sees keys j <= i),
// as torch.nn.functional.scaled_dot_product_attention(is_causal=True).
//
// CUDA tensors go to tensor/cuda/attention.cu after the shared validation (check_inputs), the
// device check and the scale rule.
#include <omp.h>  // omp_get_max_threads

#include <cmath>
#include <limits>
#include <vector>

#include "tensor/backend.h"  // kCudaBuilt, common_device
#include "tensor/convert.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/loops.h"
#include "tensor/cpu/nn_clones.h"
#include "tensor/creation.h"
#include "tensor/cuda/attention.h"
#include "tensor/math.h"  // math::exp, the shared float32 exp
#include "tensor/nn_ops.h"

namespace cxr::raw {
namespace {

// Block sizes (spec/kernels.md §3, derived for a 1 MiB L2): Br query rows, Bc keys per tile.
constexpr int64_t kBr = 128;
int64_t key_block(int64_t d) {
  return d <= 128 ? 512 : 256;
}
// Backward tiles: Br query rows × Bc_bwd keys (five GEMMs per tile, all operands L2-resident).
constexpr int64_t kBrBwd = 128;
constexpr int64_t kBcBwd = 128;
// The backward splits each head's key blocks into groups until there are this many tasks.
constexpr int64_t kMinBackwardTasks = 8;

template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t rsa, int64_t csa,
          const T* b, int64_t rsb, int64_t csb, T beta, T* c, int64_t rsc, int64_t csc) {
  if constexpr (std::is_same_v<T, float>) {
    cpu::sgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
  } else {
    cpu::dgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
  }
}

template <typename T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// Online-softmax update of one tile (br rows of bc scores, leading dim ld): on return the tile
// holds P~ = exp(S - m_new), m/l are updated and alpha[r] = exp(m_old - m_new) is the factor the
// row's output accumulator must be scaled by.
template <typename T>
[[gnu::always_inline]] inline void online_softmax_tile(T* s, int64_t br, int64_t bc, int64_t ld,
                                                       T* m, T* l, T* alpha) {
  constexpr int kLanes = 16;
  for (int64_t r = 0; r < br; ++r) {
    T* row = s + r * ld;
    // max is exact, so the vectorised reduction's order does not change the result.
    T mx = m[r];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < bc; ++j) mx = row[j] > mx ? row[j] : mx;
    if (mx == kNegInf<T>) {  // every key so far masked: P = 0, nothing changes
      for (int64_t j = 0; j < bc; ++j) row[j] = T(0);
      alpha[r] = T(1);
      continue;
    }
    // exp as a plain map (vectorised including the tail), then a fixed-lane sum.
    for (int64_t j = 0; j < bc; ++j) row[j] = math::exp(row[j] - mx);
    T sum[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= bc; c += kLanes)
      for (int i = 0; i < kLanes; ++i) sum[i] += row[c + i];
    for (; c < bc; ++c) sum[0] += row[c];
    T total = 0;
    for (int i = 0; i < kLanes; ++i) total += sum[i];
    const T a = math::exp(m[r] - mx);  // 0 when m[r] = -inf
    alpha[r] = a;
    l[r] = l[r] * a + total;
    m[r] = mx;
  }
}

// Backward: P = exp(S - lse_r) in place.
template <typename T>
[[gnu::always_inline]] inline void exp_minus_lse_tile(T* s, int64_t br, int64_t bc, int64_t ld,
                                                      const T* lse) {
  for (int64_t r = 0; r < br; ++r) {
    T* row = s + r * ld;
    const T z = lse[r];
    for (int64_t c = 0; c < bc; ++c) row[c] = math::exp(row[c] - z);
  }
}

// Backward: dS = P ∘ (dP - D_r), written over dP.
template <typename T>
[[gnu::always_inline]] inline void ds_tile(T* dp, const T* p, int64_t br, int64_t bc, int64_t ld,
                                           const T* d) {
  for (int64_t r = 0; r < br; ++r) {
    T* row = dp + r * ld;
    const T* prow = p + r * ld;
    const T dr = d[r];
    for (int64_t c = 0; c < bc; ++c) row[c] = prow[c] * (row[c] - dr);
  }
}

CXR_NN_CLONES void online_softmax_tile_f32(float* s, int64_t br, int64_t bc, int64_t ld, float* m,
                                           float* l, float* alpha) {
  online_softmax_tile(s, br, bc, ld, m, l, alpha);
}
CXR_NN_CLONES void exp_minus_lse_tile_f32(float* s, int64_t br, int64_t bc, int64_t ld,
                                          const float* lse) {
  exp_minus_lse_tile(s, br, bc, ld, lse);
}
CXR_NN_CLONES void ds_tile_f32(float* dp, const float* p, int64_t br, int64_t bc, int64_t ld,
                               const float* d) {
  ds_tile(dp, p, br, bc, ld, d);
}

template <typename T>
void k_online_softmax_tile(T* s, int64_t br, int64_t bc, int64_t ld, T* m, T* l, T* alpha) {
  if constexpr (std::is_same_v<T, float>)
    online_softmax_tile_f32(s, br, bc, ld, m, l, alpha);
  else
    online_softmax_tile(s, br, bc, ld, m, l, alpha);
}
template <typename T>
void k_exp_minus_lse_tile(T* s, int64_t br, int64_t bc, int64_t ld, const T* lse) {
  if constexpr (std::is_same_v<T, float>)
    exp_minus_lse_tile_f32(s, br, bc, ld, lse);
  else
    exp_minus_lse_tile(s, br, bc, ld, lse);
}
template <typename T>
void k_ds_tile(T* dp, const T* p, int64_t br, int64_t bc, int64_t ld, const T* d) {
  if constexpr (std::is_same_v<T, float>)
    ds_tile_f32(dp, p, br, bc, ld, d);
  else
    ds_tile(dp, p, br, bc, ld, d);
}

// Where everything lives: per batch·head element offsets and the (row, column) strides of the
// last two dims of each operand. Outputs are contiguous [BH, L, *].
struct Geometry {
  int64_t bh = 1, L = 0, S = 0, D = 0, Dv = 0;
  Shape batch;  // the leading dims
  std::vector<int64_t> q_off, k_off, v_off, m_off;
  int64_t q_rs = 0, q_cs = 0, k_rs = 0, k_cs = 0, v_rs = 0, v_cs = 0;
  int64_t m_rs = 0, m_cs = 0;
  enum class Mask { None, Keep, Add } mask = Mask::None;
  bool causal = false;
};

// Element offsets of each batch·head matrix for a tensor with these (broadcast) strides.
std::vector<int64_t> batch_offsets(const Shape& batch, const Shape& strides) {
  const int64_t n = shape_numel(batch);
  std::vector<int64_t> off(size_t(n), 0);
  for (int64_t b = 0; b < n; ++b) {
    int64_t rem = b, o = 0;
    for (int64_t d = int64_t(batch.size()) - 1; d >= 0; --d) {
      o += (rem % batch[size_t(d)]) * strides[size_t(d)];
      rem /= batch[size_t(d)];
    }
    off[size_t(b)] = o;
  }
  return off;
}

// Checks shapes and dtypes; fills the geometry (offsets are filled later, for the work tensors).
Geometry check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                      bool causal, const char* op) {
  for (const Tensor* t : {&q, &k, &v})
    CXR_CHECK(t->defined(), op, ": query, key and value must be defined");
  CXR_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op,
            ": expected query [..., L, D], key [..., S, D] and value [..., S, Dv] with the same "
            "number of dims (at least 2), got ",
            describe(q), ", ", describe(k), ", ", describe(v));
  CXR_CHECK(is_floating(q.dtype()) && k.dtype() == q.dtype() && v.dtype() == q.dtype(), op,
            ": query, key and value must have the same floating dtype, got ", describe(q), ", ",
            describe(k), ", ", describe(v));
  Geometry g;
  const int64_t nd = q.dim();
  g.batch = Shape(q.sizes().begin(), q.sizes().end() - 2);
  for (int64_t d = 0; d + 2 < nd; ++d)
    CXR_CHECK(k.size(d) == q.size(d) && v.size(d) == q.size(d), op, ": batch dims of query ",
              describe(q), ", key ", describe(k), " and value ", describe(v), " must match");
  g.bh = shape_numel(g.batch);
  g.L = q.size(-2);
  g.D = q.size(-1);
  g.S = k.size(-2);
  g.Dv = v.size(-1);
  CXR_CHECK(k.size(-1) == g.D, op, ": key ", describe(k), " must have head dim ", g.D,
            " like query ", describe(q));
  CXR_CHECK(v.size(-2) == g.S, op, ": value ", describe(v), " must have ", g.S, " rows like key ",
            describe(k));
  g.causal = causal;
  if (mask.defined()) {
    CXR_CHECK(mask.dtype() == kBool || is_floating(mask.dtype()), op,
              ": mask must be bool (true = keep) or floating (added to the scores), got ",
              describe(mask));
    Shape full = g.batch;
    full.push_back(g.L);
    full.push_back(g.S);
    bool ok = mask.dim() <= int64_t(full.size());
    for (int64_t d = 0; ok && d < mask.dim(); ++d) {
      const int64_t ms = mask.size(d), fs = full[size_t(int64_t(full.size()) - mask.dim() + d)];
      ok = ms == fs || ms == 1;
    }
    CXR_CHECK(ok, op, ": mask ", describe(mask), " cannot be broadcast to the score shape ",
              shape_str(full));
    g.mask = mask.dtype() == kBool ? Geometry::Mask::Keep : Geometry::Mask::Add;
  }
  return g;
}

// Fills the strides/offsets of the work tensors (already in the work dtype).
void fill_offsets(Geometry& g, const Tensor& q, const Tensor& k, const Tensor& v,
                  const Tensor& mask) {
  auto lead = [](const Tensor& t) { return Shape(t.strides().begin(), t.strides().end() - 2); };
  g.q_off = batch_offsets(g.batch, lead(q));
  g.k_off = batch_offsets(g.batch, lead(k));
  g.v_off = batch_offsets(g.batch, lead(v));
  g.q_rs = q.stride(-2), g.q_cs = q.stride(-1);
  g.k_rs = k.stride(-2), g.k_cs = k.stride(-1);
  g.v_rs = v.stride(-2), g.v_cs = v.stride(-1);
  if (mask.defined()) {
    Shape full = g.batch;
    full.push_back(g.L);
    full.push_back(g.S);
    Shape st = cpu::broadcast_strides(mask, full);
    g.m_rs = st[st.size() - 2];
    g.m_cs = st[st.size() - 1];
    st.resize(st.size() - 2);
    g.m_off = batch_offsets(g.batch, st);
  }
}

// Applies mask and causal masking to a score tile of rows [i0, i0+br) and keys [j0, j0+bc).
template <typename T>
void mask_tile(T* s, int64_t br, int64_t bc, int64_t ld, const Geometry& g, const void* mask_base,
               int64_t bh, int64_t i0, int64_t j0) {
  if (g.mask != Geometry::Mask::None) {
    for (int64_t r = 0; r < br; ++r) {
      T* row = s + r * ld;
      const int64_t base = g.m_off[size_t(bh)] + (i0 + r) * g.m_rs + j0 * g.m_cs;
      if (g.mask == Geometry::Mask::Keep) {
        const bool* mr = static_cast<const bool*>(mask_base) + base;
        for (int64_t c = 0; c < bc; ++c) row[c] = mr[c * g.m_cs] ? row[c] : kNegInf<T>;
      } else {
        const T* mr = static_cast<const T*>(mask_base) + base;
        if (g.m_cs == 1) {
          for (int64_t c = 0; c < bc; ++c) row[c] += mr[c];
        } else {
          for (int64_t c = 0; c < bc; ++c) row[c] += mr[c * g.m_cs];
        }
      }
    }
  }
  if (g.causal && j0 + bc - 1 > i0) {
    for (int64_t r = 0; r < br; ++r) {
      T* row = s + r * ld;
      for (int64_t c = std::max<int64_t>(0, i0 + r + 1 - j0); c < bc; ++c) row[c] = kNegInf<T>;
    }
  }
}

template <typename T>
void forward_kernel(const Geometry& g, const T* q, const T* k, const T* v, const void* mask,
                    T scale, T* out, T* lse) {
  const int64_t bc_max = std::min(key_block(g.D), std::max<int64_t>(g.S, 1));
  const int64_t nI = (g.L + kBr - 1) / kBr;
  const int64_t tasks = g.bh * nI;
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> tile(size_t(kBr * bc_max)), m(kBr), l(kBr), alpha(kBr);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t bh = t / nI, i0 = (t % nI) * kBr, br = std::min(kBr, g.L - i0);
      const T* qi = q + g.q_off[size_t(bh)] + i0 * g.q_rs;
      T* oi = out + (bh * g.L + i0) * g.Dv;
      for (int64_t r = 0; r < br; ++r) {
        m[size_t(r)] = kNegInf<T>;
        l[size_t(r)] = T(0);
      }
      // Keys past the last row's diagonal are all masked under causal: skip those blocks.
      const int64_t j_end = g.causal ? std::min(g.S, i0 + br) : g.S;
      for (int64_t j0 = 0; j0 < j_end; j0 += bc_max) {
        const int64_t bc = std::min(bc_max, j_end - j0);
        gemm<T>(br, bc, g.D, scale, qi, g.q_rs, g.q_cs, k + g.k_off[size_t(bh)] + j0 * g.k_rs,
                g.k_cs, g.k_rs, T(0), tile.data(), bc_max, 1);
        mask_tile(tile.data(), br, bc, bc_max, g, mask, bh, i0, j0);
        k_online_softmax_tile(tile.data(), br, bc, bc_max, m.data(), l.data(), alpha.data());
        if (j0 > 0) {
          for (int64_t r = 0; r < br; ++r) {
            const T a = alpha[size_t(r)];
            if (a != T(1))
              for (int64_t c = 0; c < g.Dv; ++c) oi[r * g.Dv + c] *= a;
          }
        }
        gemm<T>(br, g.Dv, bc, T(1), tile.data(), bc_max, 1, v + g.v_off[size_t(bh)] + j0 * g.v_rs,
                g.v_rs, g.v_cs, j0 > 0 ? T(1) : T(0), oi, g.Dv, 1);
      }
      for (int64_t r = 0; r < br; ++r) {
        const T lr = l[size_t(r)];
        T* orow = oi + r * g.Dv;
        if (lr > T(0) && j_end > 0) {
          const T inv = T(1) / lr;
          for (int64_t c = 0; c < g.Dv; ++c) orow[c] *= inv;
          lse[bh * g.L + i0 + r] = m[size_t(r)] + std::log(lr);
        } else {  // fully masked row (or no keys): output 0, no probability mass
          for (int64_t c = 0; c < g.Dv; ++c) orow[c] = T(0);
          lse[bh * g.L + i0 + r] = std::numeric_limits<T>::infinity();
        }
      }
    }
  }
}

template <typename T>
void backward_kernel(const Geometry& g, const T* q, const T* k, const T* v, const void* mask,
                     T scale, const T* dout, int64_t do_rs, int64_t do_cs,
                     const std::vector<int64_t>& do_off, const T* out, int64_t o_rs, int64_t o_cs,
                     const std::vector<int64_t>& o_off, const T* lse, T* dq, T* dk, T* dv) {
  // D_i = rowsum(dO_i ∘ O_i), accumulated in float64.
  std::vector<T> dvec(size_t(g.bh * g.L));
#pragma omp parallel for schedule(static) if (g.bh * g.L * g.Dv >= 32768)
  for (int64_t t = 0; t < g.bh * g.L; ++t) {
    const int64_t bh = t / g.L, i = t % g.L;
    const T* dor = dout + do_off[size_t(bh)] + i * do_rs;
    const T* orow = out + o_off[size_t(bh)] + i * o_rs;
    double s = 0;
    for (int64_t c = 0; c < g.Dv; ++c) s += double(dor[c * do_cs]) * double(orow[c * o_cs]);
    dvec[size_t(t)] = T(s);
  }

  const int64_t bc_max = std::min(kBcBwd, std::max<int64_t>(g.S, 1));
  const int64_t nJ = (g.S + bc_max - 1) / bc_max;
  const int64_t nI = (g.L + kBrBwd - 1) / kBrBwd;
  // Groups of key blocks per head: fixed by the shapes, never by the thread count.
  int64_t groups =
      std::clamp<int64_t>((kMinBackwardTasks + g.bh - 1) / g.bh, 1, std::max<int64_t>(nJ, 1));
  const int64_t per_group = std::max<int64_t>(1, (nJ + groups - 1) / groups);
  groups = std::max<int64_t>(1, (nJ + per_group - 1) / per_group);
  std::vector<T> partial;
  if (groups > 1) partial.assign(size_t(g.bh * groups * g.L * g.D), T(0));
  for (int64_t e = 0; e < g.bh * g.L * g.D; ++e) dq[e] = T(0);

  const int64_t tasks = g.bh * groups;
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> p(size_t(kBrBwd * bc_max)), ds(size_t(kBrBwd * bc_max));
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t bh = t / groups, grp = t % groups;
      T* dq_target =
          groups > 1 ? partial.data() + (bh * groups + grp) * g.L * g.D : dq + bh * g.L * g.D;
      const T* qb = q + g.q_off[size_t(bh)];
      const T* kb = k + g.k_off[size_t(bh)];
      const T* vb = v + g.v_off[size_t(bh)];
      const T* dob = dout + do_off[size_t(bh)];
      const T* lseb = lse + bh * g.L;
      const T* db = dvec.data() + bh * g.L;
      for (int64_t jb = grp * per_group; jb < std::min(nJ, (grp + 1) * per_group); ++jb) {
        const int64_t j0 = jb * bc_max, bc = std::min(bc_max, g.S - j0);
        T* dkj = dk + (bh * g.S + j0) * g.D;
        T* dvj = dv + (bh * g.S + j0) * g.Dv;
        for (int64_t e = 0; e < bc * g.D; ++e) dkj[e] = T(0);
        for (int64_t e = 0; e < bc * g.Dv; ++e) dvj[e] = T(0);
        // Under causal, query rows before j0 see none of these keys.
        const int64_t i_first = g.causal ? j0 / kBrBwd : 0;
        for (int64_t ib = i_first; ib < nI; ++ib) {
          const int64_t i0 = ib * kBrBwd, br = std::min(kBrBwd, g.L - i0);
          const T* qi = qb + i0 * g.q_rs;
          const T* doi = dob + i0 * do_rs;
          gemm<T>(br, bc, g.D, scale, qi, g.q_rs, g.q_cs, kb + j0 * g.k_rs, g.k_cs, g.k_rs, T(0),
                  p.data(), bc_max, 1);
          mask_tile(p.data(), br, bc, bc_max, g, mask, bh, i0, j0);
          k_exp_minus_lse_tile(p.data(), br, bc, bc_max, lseb + i0);
          // dV_j += Pᵀ dO_i
          gemm<T>(bc, g.Dv, br, T(1), p.data(), 1, bc_max, doi, do_rs, do_cs, T(1), dvj, g.Dv, 1);
          // dP = dO_i V_jᵀ, then dS = P ∘ (dP - D_i)
          gemm<T>(br, bc, g.Dv, T(1), doi, do_rs, do_cs, vb + j0 * g.v_rs, g.v_cs, g.v_rs, T(0),
                  ds.data(), bc_max, 1);
          k_ds_tile(ds.data(), p.data(), br, bc, bc_max, db + i0);
          // dK_j += scale dSᵀ Q_i; dQ_i += scale dS K_j
          gemm<T>(bc, g.D, br, scale, ds.data(), 1, bc_max, qi, g.q_rs, g.q_cs, T(1), dkj, g.D, 1);
          gemm<T>(br, g.D, bc, scale, ds.data(), bc_max, 1, kb + j0 * g.k_rs, g.k_rs, g.k_cs, T(1),
                  dq_target + i0 * g.D, g.D, 1);
        }
      }
    }
  }
  if (groups > 1) {
    const int64_t per_head = g.L * g.D;
#pragma omp parallel for schedule(static) if (g.bh * per_head >= 32768)
    for (int64_t e = 0; e < g.bh * per_head; ++e) {
      const int64_t bh = e / per_head, o = e % per_head;
      T s = T(0);
      for (int64_t grp = 0; grp < groups; ++grp)
        s += partial[size_t((bh * groups + grp) * per_head + o)];
      dq[e] = s;
    }
  }
}

DType work_dtype(DType t) {
  return t == kFloat64 ? kFloat64 : kFloat32;
}

// scale <= 0 means 1/sqrt(D).
double resolved_scale(double scale, int64_t D) {
  return scale > 0 ? scale : 1.0 / std::sqrt(double(std::max<int64_t>(D, 1)));
}

Shape with_last_two(const Shape& batch, int64_t a, int64_t b) {
  Shape s = batch;
  s.push_back(a);
  s.push_back(b);
  return s;
}

// The mask ready for the kernel: bool as is, floating converted to the work dtype.
Tensor work_mask(const Tensor& mask, DType work) {
  if (!mask.defined() || mask.dtype() == kBool) return mask;
  return to(mask, work);
}

}  // namespace

int64_t scaled_dot_product_attention_workspace_bytes(const Tensor& q, const Tensor& k,
                                                     const Tensor& v, int threads) {
  // The CUDA kernels keep their tiles in shared memory and read every dtype in place: the forward
  // allocates no scratch beyond its results.
  if (q.device().is_cuda()) return 0;
  const DType work = work_dtype(q.dtype());
  const int64_t es = int64_t(dtype_size(work));
  const int64_t D = q.size(-1), S = k.size(-2);
  const int64_t bc = std::min(key_block(D), std::max<int64_t>(S, 1));
  int64_t bytes = int64_t(threads) * (kBr * bc + 3 * kBr) * es;
  if (work != q.dtype()) {  // converted copies of the inputs and of the output
    const int64_t out_numel = q.numel() / std::max<int64_t>(D, 1) * v.size(-1);
    bytes += (q.numel() + k.numel() + v.numel() + out_numel) * es;
  }
  return bytes;
}

AttentionResult scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in,
                                             const Tensor& v_in, const Tensor& mask_in, bool causal,
                                             double scale) {
  const char* op = "scaled_dot_product_attention";
  Geometry g = check_inputs(q_in, k_in, v_in, mask_in, causal, op);
  const double sc = resolved_scale(scale, g.D);
  const Device device = common_device(op, {q_in, k_in, v_in, mask_in});
  if constexpr (kCudaBuilt)
    if (device.is_cuda())
      return cuda::scaled_dot_product_attention(q_in, k_in, v_in, mask_in, causal, sc);
  const DType work = work_dtype(q_in.dtype());
  Tensor q = to(q_in, work), k = to(k_in, work), v = to(v_in, work);
  Tensor mask = work_mask(mask_in, work);
  fill_offsets(g, q, k, v, mask);
  AttentionResult r;
  Tensor out = empty(with_last_two(g.batch, g.L, g.Dv), work);
  r.lse = empty(Shape(out.sizes().begin(), out.sizes().end() - 1), work);
  if (out.numel() > 0) {
    const void* mp = mask.defined() ? mask.data_ptr() : nullptr;
    if (work == kFloat32)
      forward_kernel<float>(g, q.data<float>(), k.data<float>(), v.data<float>(), mp, float(sc),
                            out.data<float>(), r.lse.data<float>());
    else
      forward_kernel<double>(g, q.data<double>(), k.data<double>(), v.data<double>(), mp, sc,
                             out.data<double>(), r.lse.data<double>());
  } else if (r.lse.numel() > 0) {
    fill_(r.lse, std::numeric_limits<double>::infinity());
  }
  r.out = to(out, q_in.dtype());
  return r;
}

AttentionGrads scaled_dot_product_attention_backward(const Tensor& grad_out, const Tensor& q_in,
                                                     const Tensor& k_in, const Tensor& v_in,
                                                     const AttentionResult& saved,
                                                     const Tensor& mask_in, bool causal,
                                                     double scale) {
  const char* op = "scaled_dot_product_attention_backward";
  Geometry g = check_inputs(q_in, k_in, v_in, mask_in, causal, op);
  const Shape out_shape = with_last_two(g.batch, g.L, g.Dv);
  CXR_CHECK(grad_out.defined() && grad_out.sizes() == out_shape && is_floating(grad_out.dtype()),
            op, ": grad_out must be floating with shape ", shape_str(out_shape), ", got ",
            grad_out.defined() ? describe(grad_out) : std::string("undefined"));
  CXR_CHECK(saved.out.defined() && saved.out.sizes() == out_shape && saved.lse.defined() &&
                saved.lse.numel() == g.bh * g.L,
            op, ": saved forward results do not match the inputs");
  const double sc = resolved_scale(scale, g.D);
  const Device device =
      common_device(op, {grad_out, q_in, k_in, v_in, mask_in, saved.out, saved.lse});
  if constexpr (kCudaBuilt)
    if (device.is_cuda())
      return cuda::scaled_dot_product_attention_backward(grad_out, q_in, k_in, v_in, saved, mask_in,
                                                         causal, sc);
  const DType work = work_dtype(q_in.dtype());
  Tensor q = to(q_in, work), k = to(k_in, work), v = to(v_in, work);
  Tensor mask = work_mask(mask_in, work);
  Tensor dout = to(grad_out, work), out = to(saved.out, work);
  Tensor lse = contiguous(to(saved.lse, work));
  fill_offsets(g, q, k, v, mask);
  AttentionGrads r;
  Tensor dq = empty(with_last_two(g.batch, g.L, g.D), work);
  Tensor dk = empty(with_last_two(g.batch, g.S, g.D), work);
  Tensor dv = empty(with_last_two(g.batch, g.S, g.Dv), work);
  auto lead = [](const Tensor& t) { return Shape(t.strides().begin(), t.strides().end() - 2); };
  if (g.bh > 0 && (g.L > 0 || g.S > 0)) {
    const std::vector<int64_t> do_off = batch_offsets(g.batch, lead(dout));
    const std::vector<int64_t> o_off = batch_offsets(g.batch, lead(out));
    const void* mp = mask.defined() ? mask.data_ptr() : nullptr;
    auto run = [&]<typename T>() {
      backward_kernel<T>(g, q.data<T>(), k.data<T>(), v.data<T>(), mp, T(sc), dout.data<T>(),
                         dout.stride(-2), dout.stride(-1), do_off, out.data<T>(), out.stride(-2),
                         out.stride(-1), o_off, lse.data<T>(), dq.data<T>(), dk.data<T>(),
                         dv.data<T>());
    };
    if (work == kFloat32)
      run.template operator()<float>();
    else
      run.template operator()<double>();
  }
  r.q = to(dq, q_in.dtype());
  r.k = to(dk, k_in.dtype());
  r.v = to(dv, v_in.dtype());
  return r;
}

}  // namespace cxr::raw
