// CUDA layer, group and batch normalisation (norm.h): the kernels behind tensor/cpu/norm.cpp's ops
// for tensors on a CUDA device. Work dtype T is float (float32/float16/bfloat16 inputs, converted
// by the caller) or double. Statistics are two-pass (mean, then mean squared deviation) in float64
// as on the CPU; every reduction is a fixed tree over the threads of one block or warp, so results
// do not change from run to run. The elementwise expressions (normalise, scale/shift, SiLU and its
// derivative from tensor/math.h, the backward formulas) are the CPU's, in the same order; see
// tensor/cpu/norm.cpp for the formulas.
//
// Layout of the work: layer norm and group norm forward run one block per statistic (row, or
// (sample, group)) that reduces and then normalises its elements; batch norm computes the moments
// of every (sample, channel) with one warp each, combines them per channel in sample order (Chan
// et al., as the CPU) and normalises in an elementwise pass. The
// group/batch backward sums dz and dz * xhat per (sample, channel) with one warp each, combines
// them per statistic and channel in the CPU's order (one thread each), and writes dx elementwise.
// The layer-norm parameter gradients are column sums over row chunks, then over the chunks.
#include <algorithm>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/context.cuh"
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

// Which statistic channel c of sample n uses: n * groups + c / cpg per sample (group norm), or c
// (batch norm: per_sample false, cpg 1).
struct StatIndex {
  int64_t groups, cpg;
  bool per_sample;
  __device__ int64_t operator()(int64_t n, int64_t c) const {
    return (per_sample ? n * groups : 0) + c / cpg;
  }
};

// ---------------------------------------------------------------------------------------------
// forward

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
  for (int64_t j = threadIdx.x; j < n; j += kNormThreads) {
    if (w && b) {
      yr[j] = (xr[j] - mt) * rt * w[j] + b[j];
    } else if (w) {
      yr[j] = (xr[j] - mt) * rt * w[j];
    } else if (b) {
      yr[j] = (xr[j] - mt) * rt + b[j];
    } else {
      yr[j] = (xr[j] - mt) * rt;
    }
  }
}

// One block per (sample, group) = statistic t; its cpg channels of hw elements are contiguous.
template <typename T>
__global__ void group_norm_kernel(const T* x, T* y, T* mean, T* rstd, int64_t groups, int64_t cpg,
                                  int64_t hw, const T* w, const T* b, double eps, bool silu) {
  __shared__ double slots[kNormThreads];
  const int64_t t = blockIdx.x, m = cpg * hw;
  const T* xt = x + t * m;
  T* yt = y + t * m;
  double mu, v;
  block_moments(xt, m, slots, &mu, &v);
  const T mt = T(mu), rt = T(1.0 / sqrt(v + eps));
  if (threadIdx.x == 0) {
    mean[t] = mt;
    rstd[t] = rt;
  }
  const int64_t c0 = (t % groups) * cpg;
  for (int64_t i = threadIdx.x; i < m; i += kNormThreads) {
    const int64_t c = c0 + i / hw;
    const T scale = rt * (w ? w[c] : T(1));
    const T shift = (b ? b[c] : T(0)) - mt * scale;
    const T z = xt[i] * scale + shift;
    yt[i] = silu ? math::SiluFn{}(z) : z;
  }
}

// One warp per (sample, channel) task t: mean and population variance of its hw elements into
// mv[2t], mv[2t + 1].
template <typename T>
__global__ void sample_moments_kernel(const T* x, int64_t tasks, int64_t hw, double* mv) {
  const int lane = int(threadIdx.x % 32);
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32;
  for (int64_t t = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; t < tasks; t += warps) {
    double m, v;
    warp_moments(x + t * hw, hw, lane, &m, &v);
    if (lane == 0) {
      mv[2 * t] = m;
      mv[2 * t + 1] = v;
    }
  }
}

// Per channel: the samples' moments combined in sample order by Chan et al.'s pairwise update,
// the CPU's arithmetic; mean/rstd in T, the population variance in float64.
template <typename T>
__global__ void batch_combine_kernel(const double* mv, int64_t n, int64_t channels, int64_t hw,
                                     double eps, T* mean_out, T* rstd_out, double* var_out) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x) {
    double mean = 0, m2 = 0, count = 0;
    for (int64_t s = 0; s < n; ++s) {
      const double sm = mv[2 * (s * channels + c)], sv = mv[2 * (s * channels + c) + 1];
      const double nb = double(hw), tot = count + nb, delta = sm - mean;
      mean += delta * nb / tot;
      m2 += sv * nb + delta * delta * count * nb / tot;
      count = tot;
    }
    const double v = m2 / count;
    var_out[c] = v;
    mean_out[c] = T(mean);
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

template <typename T>
__global__ void batch_apply_kernel(const T* x, T* y, int64_t total, int64_t channels, int64_t hw,
                                   const T* mean, const T* rstd, const T* w, const T* b) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (e / hw) % channels;
    const T scale = rstd[c] * (w ? w[c] : T(1));
    const T shift = (b ? b[c] : T(0)) - mean[c] * scale;
    y[e] = x[e] * scale + shift;
  }
}

// ---------------------------------------------------------------------------------------------
// backward

// dz = g, times the SiLU derivative at z = xhat w + b when `silu`.
template <typename T>
__device__ T upstream(T g, T xh, T w, T b, bool silu) {
  return silu ? math::SiluFn{}.backward(g, xh * w + b) : g;
}

// One warp per (sample, channel) task t: sums[2t] = sum(dz), sums[2t + 1] = sum(dz * xhat).
template <typename T>
__global__ void channel_sums_kernel(const T* g, const T* x, int64_t tasks, int64_t channels,
                                    int64_t hw, StatIndex stat, const T* mean, const T* rstd,
                                    const T* w, const T* b, bool silu, double* sums) {
  const int lane = int(threadIdx.x % 32);
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32;
  // t is the same for the 32 lanes of a warp, so whole warps leave the loop together.
  for (int64_t t = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; t < tasks; t += warps) {
    const int64_t c = t % channels, k = stat(t / channels, c);
    const T m = mean[k], rs = rstd[k], wc = w ? w[c] : T(1), bc = b ? b[c] : T(0);
    double a = 0, e = 0;
    for (int64_t j = lane; j < hw; j += 32) {
      const T xh = (x[t * hw + j] - m) * rs;
      const T dz = upstream(g[t * hw + j], xh, wc, bc, silu);
      a += double(dz);
      e += double(dz * xh);
    }
    a = warp_sum(a);
    e = warp_sum(e);
    if (lane == 0) {
      sums[2 * t] = a;
      sums[2 * t + 1] = e;
    }
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
template <typename T>
__global__ void channel_dx_kernel(const T* g, const T* x, T* dx, int64_t total, int64_t channels,
                                  int64_t hw, StatIndex stat, const T* mean, const T* rstd,
                                  const T* w, const T* b, bool silu, const T* c1, const T* c2) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = e / hw, c = t % channels, k = stat(t / channels, c);
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
  dispatch_work(x, [&]<typename T>() {
    layer_norm_kernel<T><<<per_item(rows, "layer_norm"), kNormThreads, 0, s>>>(
        ptr<T>(x), ptr<T>(y), ptr<T>(mean), ptr<T>(rstd), n, ptr<T>(w), ptr<T>(b), eps);
    CXR_CUDA_LAUNCH_CHECK("layer_norm_kernel");
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
  dispatch_work(x, [&]<typename T>() {
    group_norm_kernel<T><<<per_item(n * groups, "group_norm"), kNormThreads, 0, s>>>(
        ptr<T>(x), ptr<T>(y), ptr<T>(mean), ptr<T>(rstd), groups, c / groups, hw, ptr<T>(w),
        ptr<T>(b), eps, silu);
    CXR_CUDA_LAUNCH_CHECK("group_norm_kernel");
  });
}

void group_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, const Tensor& b, int64_t n, int64_t c,
                         int64_t hw, int64_t groups, bool silu, const Tensor& dw,
                         const Tensor& db) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const int64_t tasks = n * c;
  const StatIndex stat{groups, c / groups, true};
  Tensor sums = scratch_f64(x, tasks * 2);
  dispatch_work(x, [&]<typename T>() {
    Tensor c1 = raw::empty({n * groups}, x.dtype(), x.device());
    Tensor c2 = raw::empty({n * groups}, x.dtype(), x.device());
    channel_sums_kernel<T><<<blocks_for(tasks * 32), kThreads, 0, s>>>(
        ptr<T>(g), ptr<T>(x), tasks, c, hw, stat, ptr<T>(mean), ptr<T>(rstd), ptr<T>(w), ptr<T>(b),
        silu, ptr<double>(sums));
    CXR_CUDA_LAUNCH_CHECK("channel_sums_kernel");
    group_coeffs_kernel<T><<<grid(n * groups), kThreads, 0, s>>>(
        ptr<double>(sums), n, c, groups, hw, ptr<T>(w), ptr<T>(c1), ptr<T>(c2));
    CXR_CUDA_LAUNCH_CHECK("group_coeffs_kernel");
    channel_param_kernel<T><<<grid(c), kThreads, 0, s>>>(
        ptr<double>(sums), n, c, hw, ptr<T>(w), ptr<double>(dw), ptr<double>(db), nullptr, nullptr);
    CXR_CUDA_LAUNCH_CHECK("channel_param_kernel");
    channel_dx_kernel<T><<<grid(x.numel()), kThreads, 0, s>>>(
        ptr<T>(g), ptr<T>(x), ptr<T>(dx), x.numel(), c, hw, stat, ptr<T>(mean), ptr<T>(rstd),
        ptr<T>(w), ptr<T>(b), silu, ptr<T>(c1), ptr<T>(c2));
    CXR_CUDA_LAUNCH_CHECK("channel_dx_kernel");
  });
}

void batch_norm_stats(const Tensor& x, int64_t n, int64_t c, int64_t hw, double eps,
                      const Tensor& mean, const Tensor& rstd, const Tensor& var) {
  if (x.numel() == 0) return;  // training needs n * hw > 1, so only c == 0 gets here
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const int64_t tasks = n * c;
  Tensor mv = scratch_f64(x, tasks * 2);
  dispatch_work(x, [&]<typename T>() {
    sample_moments_kernel<T>
        <<<blocks_for(tasks * 32), kThreads, 0, s>>>(ptr<T>(x), tasks, hw, ptr<double>(mv));
    CXR_CUDA_LAUNCH_CHECK("sample_moments_kernel");
    batch_combine_kernel<T><<<grid(c), kThreads, 0, s>>>(
        ptr<double>(mv), n, c, hw, eps, ptr<T>(mean), ptr<T>(rstd), ptr<double>(var));
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
  (void)n;
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  dispatch_work(x, [&]<typename T>() {
    batch_apply_kernel<T><<<grid(x.numel()), kThreads, 0, s>>>(
        ptr<T>(x), ptr<T>(y), x.numel(), c, hw, ptr<T>(mean), ptr<T>(rstd), ptr<T>(w), ptr<T>(b));
    CXR_CUDA_LAUNCH_CHECK("batch_apply_kernel");
  });
}

void batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, int64_t n, int64_t c, int64_t hw,
                         bool training, const Tensor& dw, const Tensor& db) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t s = stream(x.device().index);
  const int64_t tasks = n * c;
  const StatIndex stat{c, 1, false};
  Tensor sums = scratch_f64(x, tasks * 2);
  dispatch_work(x, [&]<typename T>() {
    Tensor c1, c2;
    if (training) {
      c1 = raw::empty({c}, x.dtype(), x.device());
      c2 = raw::empty({c}, x.dtype(), x.device());
    }
    channel_sums_kernel<T><<<blocks_for(tasks * 32), kThreads, 0, s>>>(
        ptr<T>(g), ptr<T>(x), tasks, c, hw, stat, ptr<T>(mean), ptr<T>(rstd), nullptr, nullptr,
        false, ptr<double>(sums));
    CXR_CUDA_LAUNCH_CHECK("channel_sums_kernel");
    channel_param_kernel<T><<<grid(c), kThreads, 0, s>>>(ptr<double>(sums), n, c, hw, ptr<T>(w),
                                                         ptr<double>(dw), ptr<double>(db),
                                                         ptr<T>(c1), ptr<T>(c2));
    CXR_CUDA_LAUNCH_CHECK("channel_param_kernel");
    channel_dx_kernel<T><<<grid(x.numel()), kThreads, 0, s>>>(
        ptr<T>(g), ptr<T>(x), ptr<T>(dx), x.numel(), c, hw, stat, ptr<T>(mean), ptr<T>(rstd),
        ptr<T>(w), nullptr, false, ptr<T>(c1), ptr<T>(c2));
    CXR_CUDA_LAUNCH_CHECK("channel_dx_kernel");
  });
}

}  // namespace cxr::cuda
