// CUDA layer, group and batch normalisation (norm.h): the kernels behind tensor/cpu/norm.cpp's ops
// for tensors on a CUDA device. Work dtype T is float (float32/float16/bfloat16 inputs, converted
// by the caller) or double. Statistics are two-pass (mean, then mean squared deviation) in float64
// as on the CPU, per part of a row when the row is split (below); every reduction is a fixed tree
// over the threads of one block or warp, so results do not change from run to run. The elementwise
// expressions (normalise, scale/shift, SiLU and its derivative from tensor/math.h, the backward
// formulas) are the CPU's, in the same order; see tensor/cpu/norm.cpp for the formulas.
//
// Layout of the work: a statistic's row is split into parts when there are too few rows to fill
// the GPU (batch 1 or 2 with 32 groups gives 32 or 64 rows): each part's mean and variance come
// from one block (group/layer norm) or one warp (batch norm, per (sample, channel) plane), written
// to a float64 scratch tensor, and the parts are combined per statistic in part order by Chan et
// al.'s update, so the result does not depend on timing. Layer norm with enough rows keeps one
// block per row that reduces and normalises it. The normalisation (scale/shift, SiLU) is an
// elementwise pass whose channel/statistic indices come from multiply-high division
// (int_divider.cuh) when the tensor has fewer than 2^31 elements. The group/batch backward sums
// dz and dz * xhat per part of each (sample, channel) plane with one warp each, adds the parts in
// order, combines the sums per statistic and channel in the CPU's order (one thread each), and
// writes dx elementwise. The layer-norm parameter gradients are column sums over row chunks, then
// over the chunks.
#include <algorithm>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/int_divider.cuh"
#include "tensor/cuda/norm.h"
#include "tensor/dtype.h"
#include "tensor/math.h"  // math::SiluFn

namespace cxr::cuda {

namespace {

constexpr int kNormThreads = 256;  // a power of two (block_sum halves it)

// Sum of v over the block's kNormThreads threads by a fixed binary tree; every thread gets the
// result. All threads of the block must call it.
__device__ double block_sum(double v, double* slots) {
  const int t = int(threadIdx.x);
  slots[t] = v;
  __syncthreads();
  for (int w = kNormThreads / 2; w > 0; w /= 2) {
    if (t < w) slots[t] += slots[t + w];
    __syncthreads();
  }
  const double r = slots[0];
  __syncthreads();
  return r;
}

// Sum over the 32 lanes of a warp by a fixed shuffle tree; lane 0 holds the result.
__device__ double warp_sum(double v) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// Mean and population variance of x[0, count) in float64 (two passes), for every thread of the
// block.
template <typename T>
__device__ void block_moments(const T* x, int64_t count, double* slots, double* mean, double* var) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kNormThreads) acc += double(x[i]);
  const double total = block_sum(acc, slots);
  const double m = count > 0 ? total / double(count) : 0.0;
  acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kNormThreads) {
    const double d = double(x[i]) - m;
    acc += d * d;
  }
  const double sq = block_sum(acc, slots);
  *mean = m;
  *var = count > 0 ? sq / double(count) : 0.0;
}

// The same over the 32 lanes of a warp (lane `lane`); lane 0 gets the results.
template <typename T>
__device__ void warp_moments(const T* x, int64_t count, int lane, double* mean, double* var) {
  double acc = 0;
  for (int64_t i = lane; i < count; i += 32) acc += double(x[i]);
  const double total = __shfl_sync(0xffffffffu, warp_sum(acc), 0);
  const double m = count > 0 ? total / double(count) : 0.0;
  acc = 0;
  for (int64_t i = lane; i < count; i += 32) {
    const double d = double(x[i]) - m;
    acc += d * d;
  }
  const double sq = warp_sum(acc);
  *mean = m;
  *var = count > 0 ? sq / double(count) : 0.0;
}

// Moments combined by Chan et al.'s pairwise update (the CPU's batch-norm arithmetic,
// tensor/cpu/norm.cpp): add() merges a part of nb elements with mean mb and population variance vb.
struct Moments {
  double count = 0, mean = 0, m2 = 0;
  __device__ void add(double nb, double mb, double vb) {
    const double tot = count + nb, delta = mb - mean;
    mean += delta * nb / tot;
    m2 += vb * nb + delta * delta * count * nb / tot;
    count = tot;
  }
  __device__ double var() const { return m2 / count; }
};

// A row of `len` elements split into `count` parts of `per` elements (the last may be shorter,
// none is empty), so that small batches still give the GPU enough blocks or warps.
struct Parts {
  int64_t count, per;
  __device__ int64_t begin(int64_t p) const { return p * per; }
  __device__ int64_t size(int64_t p, int64_t len) const {
    return p * per + per < len ? per : len - p * per;
  }
};

// ---------------------------------------------------------------------------------------------
// forward

// (x - mean) rstd, times w[j] and plus b[j] where given (the CPU's k_layer_row expressions).
template <typename T>
__device__ T layer_value(T x, T mt, T rt, const T* w, const T* b, int64_t j) {
  if (w && b) return (x - mt) * rt * w[j] + b[j];
  if (w) return (x - mt) * rt * w[j];
  if (b) return (x - mt) * rt + b[j];
  return (x - mt) * rt;
}

// One block per row (enough rows for the GPU): statistics, then the normalised row.
template <typename T>
__global__ void layer_norm_kernel(const T* x, T* y, T* mean, T* rstd, int64_t n, const T* w,
                                  const T* b, double eps) {
  __shared__ double slots[kNormThreads];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * n;
  T* yr = y + r * n;
  double m, v;
  block_moments(xr, n, slots, &m, &v);
  const T mt = T(m), rt = T(1.0 / sqrt(v + eps));
  if (threadIdx.x == 0) {
    mean[r] = mt;
    rstd[r] = rt;
  }
  for (int64_t j = threadIdx.x; j < n; j += kNormThreads)
    yr[j] = layer_value(xr[j], mt, rt, w, b, j);
}

// The normalised rows from saved statistics (few long rows, after part_moments_kernel and
// row_moments_kernel): element e of row e / n, column e % n.
template <typename T, typename I>
__global__ void layer_apply_kernel(const T* __restrict__ x, T* __restrict__ y, I total,
                                   Divider<I> n, const T* mean, const T* rstd, const T* w,
                                   const T* b) {
  for (I e = I(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += I(gridDim.x) * blockDim.x) {
    const I r = n.div(e);
    y[e] = layer_value(x[e], mean[r], rstd[r], w, b, int64_t(e - r * n.divisor));
  }
}

// Block b = (row r, part p) of `rows` rows of len contiguous elements: mean and population
// variance (two passes over the part) into mv[2b], mv[2b + 1].
template <typename T>
__global__ void part_moments_kernel(const T* x, int64_t len, Parts parts, double* mv) {
  __shared__ double slots[kNormThreads];
  const int64_t blk = blockIdx.x, r = blk / parts.count, p = blk % parts.count;
  double mu, v;
  block_moments(x + r * len + parts.begin(p), parts.size(p, len), slots, &mu, &v);
  if (threadIdx.x == 0) {
    mv[2 * blk] = mu;
    mv[2 * blk + 1] = v;
  }
}

// Per row: the parts' moments combined in part order; mean/rstd in T.
template <typename T>
__global__ void row_moments_kernel(const double* mv, int64_t rows, int64_t len, Parts parts,
                                   double eps, T* mean, T* rstd) {
  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += int64_t(gridDim.x) * blockDim.x) {
    Moments acc;
    for (int64_t p = 0; p < parts.count; ++p) {
      const int64_t k = r * parts.count + p;
      acc.add(double(parts.size(p, len)), mv[2 * k], mv[2 * k + 1]);
    }
    mean[r] = T(acc.mean);
    rstd[r] = T(1.0 / sqrt(acc.var() + eps));
  }
}

// The index math of the [N, C, HW] channel kernels: element e lies in plane t = e / hw
// (= n C + c), channel c = t % C, and uses statistic t / cpg per sample (group norm: n groups +
// c / cpg, since C = groups cpg) or c (batch norm: per_sample false).
template <typename I>
struct ChannelIndex {
  Divider<I> hw, channels, cpg;
  bool per_sample;
  // Channel c and statistic k of plane t.
  __device__ void plane(I t, I* c, I* k) const {
    *c = t - channels.div(t) * channels.divisor;
    *k = per_sample ? cpg.div(t) : *c;
  }
  // Channel c and statistic k of element e.
  __device__ void operator()(I e, I* c, I* k) const { plane(hw.div(e), c, k); }
};

// y = act(x scale + shift), scale = rstd[k] w[c], shift = b[c] - mean[k] scale; act = SiLU when
// `silu` (group norm; the CPU's apply_channels).
template <typename T, typename I>
__global__ void channel_apply_kernel(const T* __restrict__ x, T* __restrict__ y, I total,
                                     ChannelIndex<I> at, const T* mean, const T* rstd, const T* w,
                                     const T* b, bool silu) {
  for (I e = I(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += I(gridDim.x) * blockDim.x) {
    I c, k;
    at(e, &c, &k);
    const T scale = rstd[k] * (w ? w[c] : T(1));
    const T shift = (b ? b[c] : T(0)) - mean[k] * scale;
    const T z = x[e] * scale + shift;
    y[e] = silu ? math::SiluFn{}(z) : z;
  }
}

// One warp per (sample, channel) task t and part p of its hw elements, item i = t parts + p:
// mean and population variance of the part into mv[2i], mv[2i + 1].
template <typename T>
__global__ void sample_moments_kernel(const T* x, int64_t tasks, int64_t hw, Parts parts,
                                      double* mv) {
  const int lane = int(threadIdx.x % 32);
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32, items = tasks * parts.count;
  // i is the same for the 32 lanes of a warp, so whole warps leave the loop together.
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; i < items; i += warps) {
    const int64_t t = i / parts.count, p = i % parts.count;
    double m, v;
    warp_moments(x + t * hw + parts.begin(p), parts.size(p, hw), lane, &m, &v);
    if (lane == 0) {
      mv[2 * i] = m;
      mv[2 * i + 1] = v;
    }
  }
}

// Per channel: the moments of the samples' parts combined in (sample, part) order by Chan et al.'s
// pairwise update, the CPU's arithmetic; mean/rstd in T, the population variance in float64.
template <typename T>
__global__ void batch_combine_kernel(const double* mv, int64_t n, int64_t channels, int64_t hw,
                                     Parts parts, double eps, T* mean_out, T* rstd_out,
                                     double* var_out) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x) {
    Moments acc;
    for (int64_t s = 0; s < n; ++s)
      for (int64_t p = 0; p < parts.count; ++p) {
        const int64_t i = (s * channels + c) * parts.count + p;
        acc.add(double(parts.size(p, hw)), mv[2 * i], mv[2 * i + 1]);
      }
    const double v = acc.var();
    var_out[c] = v;
    mean_out[c] = T(acc.mean);
    rstd_out[c] = T(1.0 / sqrt(v + eps));
  }
}

template <typename T>
__global__ void batch_rstd_kernel(const double* var, int64_t channels, double eps, T* rstd) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x)
    rstd[c] = T(1.0 / sqrt(var[c] + eps));
}

template <typename R>
__global__ void running_update_kernel(R* run, int64_t stride, const double* batch, int64_t channels,
                                      double momentum, double scale) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x) {
    const double old = double(compute_t<R>(run[c * stride]));
    run[c * stride] = convert<R>((1 - momentum) * old + momentum * (batch[c] * scale));
  }
}

// ---------------------------------------------------------------------------------------------
// backward

// dz = g, times the SiLU derivative at z = xhat w + b when `silu`.
template <typename T>
__device__ T upstream(T g, T xh, T w, T b, bool silu) {
  return silu ? math::SiluFn{}.backward(g, xh * w + b) : g;
}

// One warp per (sample, channel) task t and part p of its hw elements, item i = t parts + p:
// sums[2i] = sum(dz), sums[2i + 1] = sum(dz * xhat) over the part.
template <typename T>
__global__ void channel_sums_kernel(const T* g, const T* x, int64_t tasks, int64_t hw, Parts parts,
                                    ChannelIndex<uint64_t> at, const T* mean, const T* rstd,
                                    const T* w, const T* b, bool silu, double* sums) {
  const int lane = int(threadIdx.x % 32);
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32, items = tasks * parts.count;
  // i is the same for the 32 lanes of a warp, so whole warps leave the loop together.
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; i < items; i += warps) {
    const int64_t t = i / parts.count, p = i % parts.count;
    uint64_t c, k;
    at.plane(uint64_t(t), &c, &k);
    const T m = mean[k], rs = rstd[k], wc = w ? w[c] : T(1), bc = b ? b[c] : T(0);
    const T *xt = x + t * hw + parts.begin(p), *gt = g + t * hw + parts.begin(p);
    const int64_t len = parts.size(p, hw);
    double a = 0, e = 0;
    for (int64_t j = lane; j < len; j += 32) {
      const T xh = (xt[j] - m) * rs;
      const T dz = upstream(gt[j], xh, wc, bc, silu);
      a += double(dz);
      e += double(dz * xh);
    }
    a = warp_sum(a);
    e = warp_sum(e);
    if (lane == 0) {
      sums[2 * i] = a;
      sums[2 * i + 1] = e;
    }
  }
}

// Per task t: sums[2t + j] = the parts' sums part[2 (t parts + p) + j] added in part order.
__global__ void sum_parts_kernel(const double* part, int64_t tasks, int64_t parts, double* sums) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < tasks;
       t += int64_t(gridDim.x) * blockDim.x) {
    double a = 0, e = 0;
    for (int64_t p = 0; p < parts; ++p) {
      a += part[2 * (t * parts + p)];
      e += part[2 * (t * parts + p) + 1];
    }
    sums[2 * t] = a;
    sums[2 * t + 1] = e;
  }
}

// Per (sample, group) k: c1 = mean(dz w), c2 = mean(dz w xhat), adding channels in order.
template <typename T>
__global__ void group_coeffs_kernel(const double* sums, int64_t n, int64_t channels, int64_t groups,
                                    int64_t hw, const T* w, T* c1, T* c2) {
  const int64_t cpg = channels / groups;
  const double m = double(cpg * hw);
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n * groups;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = k / groups, gi = k % groups;
    double a = 0, e = 0;
    for (int64_t c = gi * cpg; c < (gi + 1) * cpg; ++c) {
      const double wc = w ? double(w[c]) : 1.0;
      a += wc * sums[size_t((s * channels + c) * 2)];
      e += wc * sums[size_t((s * channels + c) * 2 + 1)];
    }
    c1[k] = T(a / m);
    c2[k] = T(e / m);
  }
}

// Per channel: db = sum_n sum(dz), dw = sum_n sum(dz xhat) in sample order; with c1/c2 given
// (batch norm training), also c1 = w mean(g) and c2 = w mean(g xhat).
template <typename T>
__global__ void channel_param_kernel(const double* sums, int64_t n, int64_t channels, int64_t hw,
                                     const T* w, double* dw, double* db, T* c1, T* c2) {
  const double m = double(n * hw);
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x) {
    double a = 0, e = 0;
    for (int64_t s = 0; s < n; ++s) {
      a += sums[size_t((s * channels + c) * 2)];
      e += sums[size_t((s * channels + c) * 2 + 1)];
    }
    db[c] = a;
    dw[c] = e;
    if (c1) {
      const double wc = w ? double(w[c]) : 1.0;
      c1[c] = T(wc * a / m);
      c2[c] = T(wc * e / m);
    }
  }
}

// dx = rstd (dz w - c1 - xhat c2) elementwise; c1/c2 per statistic (null: zero, batch-norm eval).
template <typename T, typename I>
__global__ void channel_dx_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                  T* __restrict__ dx, I total, ChannelIndex<I> at, const T* mean,
                                  const T* rstd, const T* w, const T* b, bool silu, const T* c1,
                                  const T* c2) {
  for (I e = I(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += I(gridDim.x) * blockDim.x) {
    I c, k;
    at(e, &c, &k);
    const T rs = rstd[k], wc = w ? w[c] : T(1), bc = b ? b[c] : T(0);
    const T xh = (x[e] - mean[k]) * rs;
    const T dz = upstream(g[e], xh, wc, bc, silu);
    dx[e] = rs * (dz * wc - (c1 ? c1[k] : T(0)) - xh * (c2 ? c2[k] : T(0)));
  }
}

// One block per row: dx = rstd (gy - mean(gy) - xhat mean(gy xhat)), gy = g w.
template <typename T>
__global__ void layer_backward_kernel(const T* g, const T* x, T* dx, const T* mean, const T* rstd,
                                      const T* w, int64_t n) {
  __shared__ double slots[kNormThreads];
  const int64_t r = blockIdx.x;
  const T *gr = g + r * n, *xr = x + r * n;
  T* dr = dx + r * n;
  const T m = mean[r], rs = rstd[r];
  double a = 0, b = 0;
  for (int64_t j = threadIdx.x; j < n; j += kNormThreads) {
    const T xh = (xr[j] - m) * rs;
    const T gy = w ? gr[j] * w[j] : gr[j];
    a += double(gy);
    b += double(gy * xh);
  }
  const T c1 = T(block_sum(a, slots) / double(n));
  const T c2 = T(block_sum(b, slots) / double(n));
  for (int64_t j = threadIdx.x; j < n; j += kNormThreads) {
    const T xh = (xr[j] - m) * rs;
    const T gy = w ? gr[j] * w[j] : gr[j];
    dr[j] = rs * (gy - c1 - xh * c2);
  }
}

// Column sums of g * xhat and g over the rows [chunk * per_chunk, ...) of one chunk: block (32, 8),
// column blockIdx.x * 32 + threadIdx.x, rows split over threadIdx.y and added in y order.
constexpr int kColTile = 32, kRowLanes = 8;
template <typename T>
__global__ void layer_param_partial_kernel(const T* g, const T* x, const T* mean, const T* rstd,
                                           int64_t rows, int64_t n, int64_t per_chunk,
                                           double* part_w, double* part_b) {
  __shared__ double sw[kRowLanes][kColTile], sb[kRowLanes][kColTile];
  const int64_t j = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * per_chunk;
  const int64_t r1 = r0 + per_chunk < rows ? r0 + per_chunk : rows;
  double aw = 0, ab = 0;
  if (j < n)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const T gv = g[r * n + j];
      aw += double(gv * ((x[r * n + j] - mean[r]) * rstd[r]));
      ab += double(gv);
    }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && j < n) {
    for (int l = 1; l < kRowLanes; ++l) {
      aw += sw[l][threadIdx.x];
      ab += sb[l][threadIdx.x];
    }
    part_w[int64_t(blockIdx.y) * n + j] = aw;
    part_b[int64_t(blockIdx.y) * n + j] = ab;
  }
}

__global__ void layer_param_final_kernel(const double* part_w, const double* part_b, int64_t chunks,
                                         int64_t n, double* dw, double* db) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n;
       j += int64_t(gridDim.x) * blockDim.x) {
    double aw = 0, ab = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      aw += part_w[ch * n + j];
      ab += part_b[ch * n + j];
    }
    dw[j] = aw;
    db[j] = ab;
  }
}

// ---------------------------------------------------------------------------------------------
// host helpers

template <typename T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// Calls fn.template operator()<T>() with T the work type of x (float or double).
template <typename Fn>
void dispatch_work(const Tensor& x, Fn&& fn) {
  if (x.dtype() == kFloat64) {
    fn.template operator()<double>();
  } else {
    CXR_CHECK(x.dtype() == kFloat32,
              "CUDA normalisation: work tensors must be float32 or float64, "
              "got ",
              describe(x));
    fn.template operator()<float>();
  }
}

// A float64 scratch tensor of n elements on x's device.
Tensor scratch_f64(const Tensor& x, int64_t n) {
  return raw::empty({n}, kFloat64, x.device());
}

// The grid of a grid-stride loop over n items.
unsigned grid(int64_t n) {
  return blocks_for(n);
}

// Block count for a one-block-per-item launch (rows, statistics, channels; at most 2^31 - 1).
unsigned per_item(int64_t n, const char* op) {
  CXR_CHECK(n <= 0x7fffffff, op, ": ", n, " rows exceed the CUDA grid limit");
  return unsigned(n);
}

// Splits each of `rows` rows of len elements into parts so that rows x parts reaches `target`
// blocks or warps where the rows allow, each part at least min_per elements (one part for long
// batches; many for batch 1 or 2 with large maps). Every part is non-empty.
Parts split(int64_t rows, int64_t len, int64_t target, int64_t min_per) {
  const int64_t wanted = (target + rows - 1) / rows, most = (len + min_per - 1) / min_per;
  const int64_t count = std::max<int64_t>(1, std::min(wanted, most));
  const int64_t per = std::max<int64_t>(1, (len + count - 1) / count);
  return Parts{std::max<int64_t>(1, (len + per - 1) / per), per};
}
// Per-block parts (kNormThreads threads, >= 16 elements each) and per-warp parts (>= 16 each).
constexpr int64_t kTargetBlocks = 1024, kTargetWarps = 8192;
constexpr int64_t kMinPerBlock = 16 * kNormThreads, kMinPerWarp = 16 * 32;

// Calls fn(ChannelIndex<I>, I total) for the [n, c, hw] elements with cpg channels per statistic
// (per_sample) or one statistic per channel, with I = uint32_t (fast division) when every index
// is below 2^31.
template <typename Fn>
void with_channel_index(int64_t n, int64_t c, int64_t hw, int64_t cpg, bool per_sample, Fn&& fn) {
  const int64_t total = n * c * hw;
  auto run = [&]<typename I>() {
    fn(ChannelIndex<I>{Divider<I>(I(hw)), Divider<I>(I(c)), Divider<I>(I(cpg)), per_sample},
       I(total));
  };
  if (fits_fast_divider(total))
    run.template operator()<uint32_t>();
  else
    run.template operator()<uint64_t>();
}

// Per (sample, channel) plane t of x [n, c, hw]: sums[2t] = sum(dz), sums[2t + 1] = sum(dz xhat)
// (float64 [2 n c]), each plane split over several warps at small batch and its parts added in
// part order. w/b/silu as in channel_sums_kernel.
template <typename T>
Tensor channel_sums(const Tensor& g, const Tensor& x, int64_t n, int64_t c, int64_t hw, int64_t cpg,
                    bool per_sample, const Tensor& mean, const Tensor& rstd, const T* w, const T* b,
                    bool silu, cudaStream_t s) {
  const int64_t tasks = n * c;
  const Parts parts = split(tasks, hw, kTargetWarps, kMinPerWarp);
  const ChannelIndex<uint64_t> at{Divider<uint64_t>(uint64_t(hw)), Divider<uint64_t>(uint64_t(c)),
                                  Divider<uint64_t>(uint64_t(cpg)), per_sample};
  Tensor part = scratch_f64(x, tasks * parts.count * 2);
  channel_sums_kernel<T><<<blocks_for(tasks * parts.count * 32), kThreads, 0, s>>>(
      ptr<T>(g), ptr<T>(x), tasks, hw, parts, at, ptr<T>(mean), ptr<T>(rstd), w, b, silu,
      ptr<double>(part));
  CXR_CUDA_LAUNCH_CHECK("channel_sums_kernel");
  if (parts.count == 1) return part;
  Tensor sums = scratch_f64(x, tasks * 2);
  sum_parts_kernel<<<grid(tasks), kThreads, 0, s>>>(ptr<double>(part), tasks, parts.count,
                                                    ptr<double>(sums));
  CXR_CUDA_LAUNCH_CHECK("sum_parts_kernel");
  return sums;
}

template <typename R>
void launch_running_update(const Tensor& run, const Tensor& batch, double momentum, double scale) {
  const int64_t c = run.numel();
  running_update_kernel<R><<<grid(c), kThreads, 0, stream(run.device().index)>>>(
      ptr<R>(run), run.stride(0), ptr<double>(batch), c, momentum, scale);
  CXR_CUDA_LAUNCH_CHECK("running_update_kernel");
}

}  // namespace

void layer_norm(const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& rstd,
                int64_t rows, int64_t n, const Tensor& w, const Tensor& b, double eps) {
  if (rows == 0 || n == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const Parts parts = split(rows, n, kTargetBlocks, kMinPerBlock);
  dispatch_work(x, [&]<typename T>() {
    if (parts.count == 1) {
      layer_norm_kernel<T><<<per_item(rows, "layer_norm"), kNormThreads, 0, s>>>(
          ptr<T>(x), ptr<T>(y), ptr<T>(mean), ptr<T>(rstd), n, ptr<T>(w), ptr<T>(b), eps);
      CXR_CUDA_LAUNCH_CHECK("layer_norm_kernel");
      return;
    }
    // Few long rows: each row's statistics over several blocks, then an elementwise pass.
    Tensor mv = scratch_f64(x, rows * parts.count * 2);
    part_moments_kernel<T><<<per_item(rows * parts.count, "layer_norm"), kNormThreads, 0, s>>>(
        ptr<T>(x), n, parts, ptr<double>(mv));
    CXR_CUDA_LAUNCH_CHECK("part_moments_kernel");
    row_moments_kernel<T><<<grid(rows), kThreads, 0, s>>>(ptr<double>(mv), rows, n, parts, eps,
                                                          ptr<T>(mean), ptr<T>(rstd));
    CXR_CUDA_LAUNCH_CHECK("row_moments_kernel");
    auto apply = [&]<typename I>() {
      layer_apply_kernel<T, I>
          <<<grid(rows * n), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(y), I(rows * n), Divider<I>(I(n)),
                                               ptr<T>(mean), ptr<T>(rstd), ptr<T>(w), ptr<T>(b));
      CXR_CUDA_LAUNCH_CHECK("layer_apply_kernel");
    };
    if (fits_fast_divider(rows * n))
      apply.template operator()<uint32_t>();
    else
      apply.template operator()<uint64_t>();
  });
}

void layer_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, int64_t rows, int64_t n,
                         const Tensor& dw, const Tensor& db) {
  if (rows == 0 || n == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  // Rows per chunk of the column sums: at least 32, at most 256 chunks.
  const int64_t per_chunk = std::max<int64_t>(32, (rows + 255) / 256);
  const int64_t chunks = (rows + per_chunk - 1) / per_chunk;
  Tensor part_w = scratch_f64(x, chunks * n), part_b = scratch_f64(x, chunks * n);
  dispatch_work(x, [&]<typename T>() {
    layer_backward_kernel<T><<<per_item(rows, "layer_norm_backward"), kNormThreads, 0, s>>>(
        ptr<T>(g), ptr<T>(x), ptr<T>(dx), ptr<T>(mean), ptr<T>(rstd), ptr<T>(w), n);
    CXR_CUDA_LAUNCH_CHECK("layer_backward_kernel");
    const dim3 tiles(unsigned((n + kColTile - 1) / kColTile), unsigned(chunks));
    layer_param_partial_kernel<T><<<tiles, dim3(kColTile, kRowLanes), 0, s>>>(
        ptr<T>(g), ptr<T>(x), ptr<T>(mean), ptr<T>(rstd), rows, n, per_chunk, ptr<double>(part_w),
        ptr<double>(part_b));
    CXR_CUDA_LAUNCH_CHECK("layer_param_partial_kernel");
  });
  layer_param_final_kernel<<<grid(n), kThreads, 0, s>>>(
      ptr<double>(part_w), ptr<double>(part_b), chunks, n, ptr<double>(dw), ptr<double>(db));
  CXR_CUDA_LAUNCH_CHECK("layer_param_final_kernel");
}

void group_norm(const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& rstd, int64_t n,
                int64_t c, int64_t hw, int64_t groups, const Tensor& w, const Tensor& b, double eps,
                bool silu) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const int64_t rows = n * groups, cpg = c / groups, len = cpg * hw;
  const Parts parts = split(rows, len, kTargetBlocks, kMinPerBlock);
  Tensor mv = scratch_f64(x, rows * parts.count * 2);
  dispatch_work(x, [&]<typename T>() {
    part_moments_kernel<T><<<per_item(rows * parts.count, "group_norm"), kNormThreads, 0, s>>>(
        ptr<T>(x), len, parts, ptr<double>(mv));
    CXR_CUDA_LAUNCH_CHECK("part_moments_kernel");
    row_moments_kernel<T><<<grid(rows), kThreads, 0, s>>>(ptr<double>(mv), rows, len, parts, eps,
                                                          ptr<T>(mean), ptr<T>(rstd));
    CXR_CUDA_LAUNCH_CHECK("row_moments_kernel");
    with_channel_index(n, c, hw, cpg, true, [&]<typename I>(ChannelIndex<I> at, I total) {
      channel_apply_kernel<T, I><<<grid(int64_t(total)), kThreads, 0, s>>>(
          ptr<T>(x), ptr<T>(y), total, at, ptr<T>(mean), ptr<T>(rstd), ptr<T>(w), ptr<T>(b), silu);
      CXR_CUDA_LAUNCH_CHECK("channel_apply_kernel");
    });
  });
}

void group_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, const Tensor& b, int64_t n, int64_t c,
                         int64_t hw, int64_t groups, bool silu, const Tensor& dw,
                         const Tensor& db) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const int64_t cpg = c / groups;
  dispatch_work(x, [&]<typename T>() {
    Tensor sums =
        channel_sums<T>(g, x, n, c, hw, cpg, true, mean, rstd, ptr<T>(w), ptr<T>(b), silu, s);
    Tensor c1 = raw::empty({n * groups}, x.dtype(), x.device());
    Tensor c2 = raw::empty({n * groups}, x.dtype(), x.device());
    group_coeffs_kernel<T><<<grid(n * groups), kThreads, 0, s>>>(
        ptr<double>(sums), n, c, groups, hw, ptr<T>(w), ptr<T>(c1), ptr<T>(c2));
    CXR_CUDA_LAUNCH_CHECK("group_coeffs_kernel");
    channel_param_kernel<T><<<grid(c), kThreads, 0, s>>>(
        ptr<double>(sums), n, c, hw, ptr<T>(w), ptr<double>(dw), ptr<double>(db), nullptr, nullptr);
    CXR_CUDA_LAUNCH_CHECK("channel_param_kernel");
    with_channel_index(n, c, hw, cpg, true, [&]<typename I>(ChannelIndex<I> at, I total) {
      channel_dx_kernel<T, I><<<grid(int64_t(total)), kThreads, 0, s>>>(
          ptr<T>(g), ptr<T>(x), ptr<T>(dx), total, at, ptr<T>(mean), ptr<T>(rstd), ptr<T>(w),
          ptr<T>(b), silu, ptr<T>(c1), ptr<T>(c2));
      CXR_CUDA_LAUNCH_CHECK("channel_dx_kernel");
    });
  });
}

void batch_norm_stats(const Tensor& x, int64_t n, int64_t c, int64_t hw, double eps,
                      const Tensor& mean, const Tensor& rstd, const Tensor& var) {
  if (x.numel() == 0) return;  // training needs n * hw > 1, so only c == 0 gets here
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const int64_t tasks = n * c;
  const Parts parts = split(tasks, hw, kTargetWarps, kMinPerWarp);
  Tensor mv = scratch_f64(x, tasks * parts.count * 2);
  dispatch_work(x, [&]<typename T>() {
    sample_moments_kernel<T><<<blocks_for(tasks * parts.count * 32), kThreads, 0, s>>>(
        ptr<T>(x), tasks, hw, parts, ptr<double>(mv));
    CXR_CUDA_LAUNCH_CHECK("sample_moments_kernel");
    batch_combine_kernel<T><<<grid(c), kThreads, 0, s>>>(
        ptr<double>(mv), n, c, hw, parts, eps, ptr<T>(mean), ptr<T>(rstd), ptr<double>(var));
    CXR_CUDA_LAUNCH_CHECK("batch_combine_kernel");
  });
}

void batch_norm_rstd(const Tensor& var, double eps, const Tensor& rstd) {
  const int64_t c = var.numel();
  if (c == 0) return;
  DeviceGuard guard(var.device());
  cudaStream_t s = stream(var.device().index);
  dispatch_work(rstd, [&]<typename T>() {
    batch_rstd_kernel<T><<<grid(c), kThreads, 0, s>>>(ptr<double>(var), c, eps, ptr<T>(rstd));
    CXR_CUDA_LAUNCH_CHECK("batch_rstd_kernel");
  });
}

void batch_norm_update_running(const Tensor& run, const Tensor& batch, double momentum,
                               double scale) {
  const int64_t c = run.numel();
  if (c == 0) return;
  DeviceGuard guard(run.device());
  CXR_DISPATCH_FLOAT(run.dtype(), "batch_norm",
                     [&]<typename R>() { launch_running_update<R>(run, batch, momentum, scale); });
}

void batch_norm_apply(const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& rstd,
                      int64_t n, int64_t c, int64_t hw, const Tensor& w, const Tensor& b) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  dispatch_work(x, [&]<typename T>() {
    with_channel_index(n, c, hw, 1, false, [&]<typename I>(ChannelIndex<I> at, I total) {
      channel_apply_kernel<T, I><<<grid(int64_t(total)), kThreads, 0, s>>>(
          ptr<T>(x), ptr<T>(y), total, at, ptr<T>(mean), ptr<T>(rstd), ptr<T>(w), ptr<T>(b), false);
      CXR_CUDA_LAUNCH_CHECK("channel_apply_kernel");
    });
  });
}

void batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, int64_t n, int64_t c, int64_t hw,
                         bool training, const Tensor& dw, const Tensor& db) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  dispatch_work(x, [&]<typename T>() {
    Tensor c1, c2;
    if (training) {
      c1 = raw::empty({c}, x.dtype(), x.device());
      c2 = raw::empty({c}, x.dtype(), x.device());
    }
    Tensor sums = channel_sums<T>(g, x, n, c, hw, 1, false, mean, rstd, nullptr, nullptr, false, s);
    channel_param_kernel<T><<<grid(c), kThreads, 0, s>>>(ptr<double>(sums), n, c, hw, ptr<T>(w),
                                                         ptr<double>(dw), ptr<double>(db),
                                                         ptr<T>(c1), ptr<T>(c2));
    CXR_CUDA_LAUNCH_CHECK("channel_param_kernel");
    with_channel_index(n, c, hw, 1, false, [&]<typename I>(ChannelIndex<I> at, I total) {
      channel_dx_kernel<T, I><<<grid(int64_t(total)), kThreads, 0, s>>>(
          ptr<T>(g), ptr<T>(x), ptr<T>(dx), total, at, ptr<T>(mean), ptr<T>(rstd), ptr<T>(w),
          nullptr, false, ptr<T>(c1), ptr<T>(c2));
      CXR_CUDA_LAUNCH_CHECK("channel_dx_kernel");
    });
  });
}

}  // namespace cxr::cuda
