// Layer, group and batch normalisation on the CPU: forward (group norm optionally fused with SiLU,
// batch norm with the running-statistics update) and backward kernels giving input, weight and
// bias gradients. Statistics are two-pass (mean, then mean squared deviation) and accumulated in
// float64 with a fixed number of partial sums, so float32 inputs keep their precision and results
// do not depend on the thread count (every reduction belongs to one task and runs in a fixed
// order). float16/bfloat16 are computed in float32.
//
// Backward formulas (with xhat = (x - mean) * rstd, gy = dL/d(xhat) = g * w, M = elements per
// statistic; e.g. Ioffe & Szegedy 2015, §3): dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat)),
// dw = sum(g * xhat), db = sum(g). With the fused SiLU, y = z sigmoid(z) where z = xhat w + b, and
// g is first multiplied by silu'(z) = s (1 + z (1 - s)), s = sigmoid(z).
//
// Tensors on a CUDA device take the same validation and conversions (to the work dtype,
// contiguous) and run the kernels of tensor/cuda/norm.cu in place of the CPU loops; the saved
// statistics have the same dtypes and shapes on both.
#include <cmath>
#include <vector>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/cpu/nn_clones.h"
#include "tensor/creation.h"
#include "tensor/cuda/norm.h"
#include "tensor/math.h"  // math::SiluFn, the shared SiLU and its derivative
#include "tensor/nn_ops.h"

namespace cxr::raw {
namespace {

// Reductions run over blocks of kBlock elements: a branch-free map loop fills float64 buffers,
// then sum_block adds a buffer with kLanes partial sums. Both loops vectorise, and the summation
// order is fixed by the block and lane structure alone.
constexpr int kLanes = 16;
constexpr int64_t kBlock = 256;

[[gnu::always_inline]] inline double sum_block(const double* v, int64_t m) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= m; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += v[i + l];
  for (; i < m; ++i) acc[0] += v[i];
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// mean and population variance of x[0..n) in float64 (two passes).
template <typename T>
[[gnu::always_inline]] inline void moments(const T* x, int64_t n, double* out) {
  double buf[kBlock];
  double s = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    for (int64_t k = 0; k < m; ++k) buf[k] = double(x[i0 + k]);
    s += sum_block(buf, m);
  }
  const double mean = n > 0 ? s / double(n) : 0.0;
  double v = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    for (int64_t k = 0; k < m; ++k) {
      const double d = double(x[i0 + k]) - mean;
      buf[k] = d * d;
    }
    v += sum_block(buf, m);
  }
  out[0] = mean;
  out[1] = n > 0 ? v / double(n) : 0.0;
}

// y = act(x * scale + shift) for one channel (group and batch norm).
template <typename T>
[[gnu::always_inline]] inline void scale_shift(const T* x, T* y, int64_t n, T scale, T shift,
                                               bool silu) {
  if (silu) {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = math::SiluFn{}(x[i] * scale + shift);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
  }
}

// y = (x - mean) * rstd * w + b over one layer-norm row (w, b may be null).
template <typename T>
[[gnu::always_inline]] inline void layer_row(const T* x, T* y, int64_t n, T mean, T rstd,
                                             const T* w, const T* b) {
  if (w && b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * w[i];
  } else if (b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd + b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd;
  }
}

// One channel of group/batch-norm backward, pass 1: sums of dz and dz * xhat, where dz is g times
// the SiLU derivative at z = xhat w + b when `silu`.
template <typename T, bool silu>
[[gnu::always_inline]] inline void channel_sums_t(const T* g, const T* x, int64_t n, T mean, T rstd,
                                                  T w, T b, double* out) {
  double bdz[kBlock], bdzx[kBlock];
  double a = 0, c = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    for (int64_t k = 0; k < m; ++k) {
      T xh = (x[i0 + k] - mean) * rstd;
      T dz = g[i0 + k];
      if constexpr (silu) dz = math::SiluFn{}.backward(dz, xh * w + b);
      bdz[k] = double(dz);
      bdzx[k] = double(dz * xh);
    }
    a += sum_block(bdz, m);
    c += sum_block(bdzx, m);
  }
  out[0] = a;
  out[1] = c;
}
// `silu` (and below `has_w`) become template parameters so the inner loops have no branches and
// vectorise.
template <typename T>
[[gnu::always_inline]] inline void channel_sums(const T* g, const T* x, int64_t n, T mean, T rstd,
                                                T w, T b, bool silu, double* out) {
  if (silu) {
    channel_sums_t<T, true>(g, x, n, mean, rstd, w, b, out);
  } else {
    channel_sums_t<T, false>(g, x, n, mean, rstd, w, b, out);
  }
}

// Pass 2: dx = rstd * (dz * w - c1 - xhat * c2).
template <typename T, bool silu>
[[gnu::always_inline]] inline void channel_dx_t(const T* g, const T* x, T* dx, int64_t n, T mean,
                                                T rstd, T w, T b, T c1, T c2) {
  for (int64_t k = 0; k < n; ++k) {
    T xh = (x[k] - mean) * rstd;
    T dz = g[k];
    if constexpr (silu) dz = math::SiluFn{}.backward(dz, xh * w + b);
    dx[k] = rstd * (dz * w - c1 - xh * c2);
  }
}
template <typename T>
[[gnu::always_inline]] inline void channel_dx(const T* g, const T* x, T* dx, int64_t n, T mean,
                                              T rstd, T w, T b, bool silu, T c1, T c2) {
  if (silu) {
    channel_dx_t<T, true>(g, x, dx, n, mean, rstd, w, b, c1, c2);
  } else {
    channel_dx_t<T, false>(g, x, dx, n, mean, rstd, w, b, c1, c2);
  }
}

// Layer-norm backward for one row: writes dx.
template <typename T, bool has_w>
[[gnu::always_inline]] inline void layer_row_backward_t(const T* g, const T* x, T* dx, int64_t n,
                                                        T mean, T rstd, const T* w) {
  double ba[kBlock], bb[kBlock];
  double a = 0, b = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    for (int64_t k = 0; k < m; ++k) {
      T xh = (x[i0 + k] - mean) * rstd;
      T gy = has_w ? g[i0 + k] * w[i0 + k] : g[i0 + k];
      ba[k] = double(gy);
      bb[k] = double(gy * xh);
    }
    a += sum_block(ba, m);
    b += sum_block(bb, m);
  }
  const T c1 = T(a / double(n)), c2 = T(b / double(n));
  for (int64_t k = 0; k < n; ++k) {
    T xh = (x[k] - mean) * rstd;
    T gy = has_w ? g[k] * w[k] : g[k];
    dx[k] = rstd * (gy - c1 - xh * c2);
  }
}
template <typename T>
[[gnu::always_inline]] inline void layer_row_backward(const T* g, const T* x, T* dx, int64_t n,
                                                      T mean, T rstd, const T* w) {
  if (w) {
    layer_row_backward_t<T, true>(g, x, dx, n, mean, rstd, w);
  } else {
    layer_row_backward_t<T, false>(g, x, dx, n, mean, rstd, w);
  }
}

// Layer-norm weight/bias gradients for columns [0, w) of `rows` rows of length n: column sums in
// row order, so the result does not depend on the thread count.
template <typename T>
[[gnu::always_inline]] inline void layer_param_grads(const T* g, const T* x, int64_t rows,
                                                     int64_t n, int64_t w, const T* mean,
                                                     const T* rstd, double* dw, double* db) {
  for (int64_t j = 0; j < w; ++j) dw[j] = db[j] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * n;
    const T* xr = x + r * n;
    for (int64_t j = 0; j < w; ++j) {
      dw[j] += double(gr[j] * ((xr[j] - mean[r]) * rstd[r]));
      db[j] += double(gr[j]);
    }
  }
}

// float32 instantiations compiled per instruction set.
CXR_NN_CLONES void moments_f32(const float* x, int64_t n, double* out) {
  moments(x, n, out);
}
CXR_NN_CLONES void scale_shift_f32(const float* x, float* y, int64_t n, float scale, float shift,
                                   bool silu) {
  scale_shift(x, y, n, scale, shift, silu);
}
CXR_NN_CLONES void layer_row_f32(const float* x, float* y, int64_t n, float mean, float rstd,
                                 const float* w, const float* b) {
  layer_row(x, y, n, mean, rstd, w, b);
}
CXR_NN_CLONES void channel_sums_f32(const float* g, const float* x, int64_t n, float mean,
                                    float rstd, float w, float b, bool silu, double* out) {
  channel_sums(g, x, n, mean, rstd, w, b, silu, out);
}
CXR_NN_CLONES void channel_dx_f32(const float* g, const float* x, float* dx, int64_t n, float mean,
                                  float rstd, float w, float b, bool silu, float c1, float c2) {
  channel_dx(g, x, dx, n, mean, rstd, w, b, silu, c1, c2);
}
CXR_NN_CLONES void layer_row_backward_f32(const float* g, const float* x, float* dx, int64_t n,
                                          float mean, float rstd, const float* w) {
  layer_row_backward(g, x, dx, n, mean, rstd, w);
}
CXR_NN_CLONES void layer_param_grads_f32(const float* g, const float* x, int64_t rows, int64_t n,
                                         int64_t w, const float* mean, const float* rstd,
                                         double* dw, double* db) {
  layer_param_grads(g, x, rows, n, w, mean, rstd, dw, db);
}

// Dispatch to the cloned float32 kernel or the generic template.
template <typename T>
void k_moments(const T* x, int64_t n, double* out) {
  if constexpr (std::is_same_v<T, float>)
    moments_f32(x, n, out);
  else
    moments(x, n, out);
}
template <typename T>
void k_scale_shift(const T* x, T* y, int64_t n, T scale, T shift, bool silu) {
  if constexpr (std::is_same_v<T, float>)
    scale_shift_f32(x, y, n, scale, shift, silu);
  else
    scale_shift(x, y, n, scale, shift, silu);
}
template <typename T>
void k_layer_row(const T* x, T* y, int64_t n, T mean, T rstd, const T* w, const T* b) {
  if constexpr (std::is_same_v<T, float>)
    layer_row_f32(x, y, n, mean, rstd, w, b);
  else
    layer_row(x, y, n, mean, rstd, w, b);
}
template <typename T>
void k_channel_sums(const T* g, const T* x, int64_t n, T mean, T rstd, T w, T b, bool silu,
                    double* out) {
  if constexpr (std::is_same_v<T, float>)
    channel_sums_f32(g, x, n, mean, rstd, w, b, silu, out);
  else
    channel_sums(g, x, n, mean, rstd, w, b, silu, out);
}
template <typename T>
void k_channel_dx(const T* g, const T* x, T* dx, int64_t n, T mean, T rstd, T w, T b, bool silu,
                  T c1, T c2) {
  if constexpr (std::is_same_v<T, float>)
    channel_dx_f32(g, x, dx, n, mean, rstd, w, b, silu, c1, c2);
  else
    channel_dx(g, x, dx, n, mean, rstd, w, b, silu, c1, c2);
}
template <typename T>
void k_layer_row_backward(const T* g, const T* x, T* dx, int64_t n, T mean, T rstd, const T* w) {
  if constexpr (std::is_same_v<T, float>)
    layer_row_backward_f32(g, x, dx, n, mean, rstd, w);
  else
    layer_row_backward(g, x, dx, n, mean, rstd, w);
}
template <typename T>
void k_layer_param_grads(const T* g, const T* x, int64_t rows, int64_t n, int64_t w, const T* mean,
                         const T* rstd, double* dw, double* db) {
  if constexpr (std::is_same_v<T, float>)
    layer_param_grads_f32(g, x, rows, n, w, mean, rstd, dw, db);
  else
    layer_param_grads(g, x, rows, n, w, mean, rstd, dw, db);
}

// Calls fn.template operator()<T>() with T = float or double for the work dtype (a function, not
// the CXR_DISPATCH macro, because the kernels contain OpenMP pragmas).
template <typename Fn>
void dispatch_work(DType work, Fn&& fn) {
  if (work == kFloat64) {
    fn.template operator()<double>();
  } else {
    fn.template operator()<float>();
  }
}

// The dtype kernels run in: float64 for float64 input, float32 otherwise.
DType work_dtype(const Tensor& x) {
  return x.dtype() == kFloat64 ? kFloat64 : kFloat32;
}

void check_floating(const Tensor& x, const char* op) {
  CXR_CHECK(x.defined(), op, ": input is undefined");
  CXR_CHECK(is_floating(x.dtype()), op, ": expected a floating input, got ", describe(x));
}

// An optional parameter as a contiguous tensor of the work dtype (undefined stays undefined),
// after checking its shape.
Tensor param(const Tensor& p, const Shape& expected, DType work, const char* op, const char* name) {
  if (!p.defined()) return p;
  CXR_CHECK(is_floating(p.dtype()), op, ": ", name, " must be floating, got ", describe(p));
  CXR_CHECK(p.sizes() == expected, op, ": ", name, " has shape ", describe(p), ", expected ",
            shape_str(expected));
  return contiguous(to(p, work));
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Sizes of x [N, C, *] as (N, C, HW).
struct NCHW {
  int64_t n, c, hw;
};
NCHW nchw_of(const Tensor& x, const char* op) {
  CXR_CHECK(x.dim() >= 2, op, ": expected an input [N, C, *] with at least 2 dims, got ",
            describe(x));
  NCHW s{x.size(0), x.size(1), 1};
  for (int64_t d = 2; d < x.dim(); ++d) s.hw *= x.size(d);
  return s;
}

// Per-(n, c) scale/shift application shared by group and batch norm. stat(n, c) gives the index
// into mean/rstd of the statistic that channel c of sample n uses.
template <typename T, typename StatIndex>
void apply_channels(const T* x, T* y, NCHW s, const T* mean, const T* rstd, const T* w, const T* b,
                    bool silu, StatIndex stat) {
  const int64_t tasks = s.n * s.c;
#pragma omp parallel for schedule(static) if (tasks * s.hw >= 32768 && tasks > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / s.c, c = t % s.c, k = stat(n, c);
    const T scale = rstd[k] * (w ? w[c] : T(1));
    const T shift = (b ? b[c] : T(0)) - mean[k] * scale;
    k_scale_shift(x + t * s.hw, y + t * s.hw, s.hw, scale, shift, silu);
  }
}

// Per-(n, c) sums of dz and dz * xhat (pass 1 of group/batch-norm backward) into sums[t * 2].
template <typename T, typename StatIndex>
std::vector<double> channel_sums_all(const T* g, const T* x, NCHW s, const T* mean, const T* rstd,
                                     const T* w, const T* b, bool silu, StatIndex stat) {
  const int64_t tasks = s.n * s.c;
  std::vector<double> sums(size_t(tasks * 2));
#pragma omp parallel for schedule(static) if (tasks * s.hw >= 32768 && tasks > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / s.c, c = t % s.c, k = stat(n, c);
    k_channel_sums(g + t * s.hw, x + t * s.hw, s.hw, mean[k], rstd[k], w ? w[c] : T(1),
                   b ? b[c] : T(0), silu, &sums[size_t(t * 2)]);
  }
  return sums;
}

// dw[c] = sum_n sum(dz * xhat), db[c] = sum_n sum(dz), summed over n in order (float64 [C]).
void param_sums(const std::vector<double>& sums, NCHW s, Tensor& dw, Tensor& db) {
  double* pw = dw.data<double>();
  double* pb = db.data<double>();
  for (int64_t c = 0; c < s.c; ++c) {
    double a = 0, e = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      a += sums[size_t((n * s.c + c) * 2)];
      e += sums[size_t((n * s.c + c) * 2 + 1)];
    }
    pb[c] = a;
    pw[c] = e;
  }
}

// The float64 parameter-gradient sums as the work dtype (weight only when wanted).
NormGrads param_grads(const Tensor& dw, const Tensor& db, DType work, bool want_w) {
  NormGrads r;
  if (want_w) r.weight = to(dw, work);
  r.bias = to(db, work);
  return r;
}

// ------------------------------------------------------------------------------------------------
// layer norm

template <typename T>
void layer_norm_kernel(const Tensor& x, Tensor& y, Tensor& mean, Tensor& rstd, int64_t rows,
                       int64_t n, const Tensor& w, const Tensor& b, double eps) {
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  T* mp = mean.data<T>();
  T* rp = rstd.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* bp = ptr_or_null<T>(b);
#pragma omp parallel for schedule(static) if (rows * n >= 32768 && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    double mv[2];
    k_moments(xp + r * n, n, mv);
    mp[r] = T(mv[0]);
    rp[r] = T(1.0 / std::sqrt(mv[1] + eps));
    k_layer_row(xp + r * n, yp + r * n, n, mp[r], rp[r], wp, bp);
  }
}

template <typename T>
void layer_norm_backward_kernel(const Tensor& g, const Tensor& x, Tensor& dx, const Tensor& mean,
                                const Tensor& rstd, const Tensor& w, int64_t rows, int64_t n,
                                double* dw, double* db) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  T* dp = dx.data<T>();
  const T* mp = mean.data<T>();
  const T* rp = rstd.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const bool parallel = rows * n >= 32768;
#pragma omp parallel for schedule(static) if (parallel && rows > 1)
  for (int64_t r = 0; r < rows; ++r)
    k_layer_row_backward(gp + r * n, xp + r * n, dp + r * n, n, mp[r], rp[r], wp);
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (parallel && chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t j0 = ch * kChunk;
    k_layer_param_grads(gp + j0, xp + j0, rows, n, std::min(kChunk, n - j0), mp, rp, dw + j0,
                        db + j0);
  }
}

}  // namespace

NormResult layer_norm(const Tensor& x_in, int64_t normalized_ndim, const Tensor& weight,
                      const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_floating(x_in, op);
  const Device dev = common_device(op, {x_in, weight, bias});
  CXR_CHECK(normalized_ndim >= 1 && normalized_ndim <= x_in.dim(), op, ": normalized_ndim ",
            normalized_ndim, " must be in [1, ", x_in.dim(), "] for input ", describe(x_in));
  CXR_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const DType work = work_dtype(x_in);
  const Shape norm_shape(x_in.sizes().end() - normalized_ndim, x_in.sizes().end());
  Tensor w = param(weight, norm_shape, work, op, "weight");
  Tensor b = param(bias, norm_shape, work, op, "bias");
  Tensor x = contiguous(to(x_in, work));
  const int64_t n = shape_numel(norm_shape);
  const int64_t rows = n > 0 ? x.numel() / n : 0;
  NormResult r;
  Tensor y = empty(x.sizes(), work, dev);
  r.mean = empty({rows}, work, dev);
  r.rstd = empty({rows}, work, dev);
  if constexpr (kCudaBuilt)
    if (dev.is_cuda()) cuda::layer_norm(x, y, r.mean, r.rstd, rows, n, w, b, eps);
  if (dev.is_cpu() && x.numel() > 0) {
    dispatch_work(work, [&]<typename T>() {
      layer_norm_kernel<T>(x, y, r.mean, r.rstd, rows, n, w, b, eps);
    });
  }
  r.out = to(y, x_in.dtype());
  return r;
}

NormGrads layer_norm_backward(const Tensor& grad, const Tensor& x_in, const NormResult& saved,
                              const Tensor& weight, int64_t normalized_ndim) {
  const char* op = "layer_norm_backward";
  check_floating(x_in, op);
  const Device dev = common_device(op, {grad, x_in, saved.mean, saved.rstd, weight});
  CXR_CHECK(grad.sizes() == x_in.sizes(), op, ": grad ", describe(grad), " and input ",
            describe(x_in), " must have the same shape");
  CXR_CHECK(normalized_ndim >= 1 && normalized_ndim <= x_in.dim(), op, ": normalized_ndim ",
            normalized_ndim, " must be in [1, ", x_in.dim(), "]");
  const DType work = work_dtype(x_in);
  const Shape norm_shape(x_in.sizes().end() - normalized_ndim, x_in.sizes().end());
  const int64_t n = shape_numel(norm_shape);
  const int64_t rows = n > 0 ? x_in.numel() / n : 0;
  CXR_CHECK(saved.mean.defined() && saved.rstd.defined() && saved.mean.numel() == rows &&
                saved.rstd.numel() == rows,
            op, ": saved statistics do not match the input ", describe(x_in));
  Tensor w = param(weight, norm_shape, work, op, "weight");
  Tensor x = contiguous(to(x_in, work));
  Tensor g = contiguous(to(grad, work));
  Tensor mean = contiguous(to(saved.mean, work));
  Tensor rstd = contiguous(to(saved.rstd, work));
  Tensor dx = empty(x.sizes(), work, dev);
  Tensor dw = zeros(norm_shape, kFloat64, dev), db = zeros(norm_shape, kFloat64, dev);
  if constexpr (kCudaBuilt)
    if (dev.is_cuda()) cuda::layer_norm_backward(g, x, dx, mean, rstd, w, rows, n, dw, db);
  if (dev.is_cpu() && x.numel() > 0) {
    dispatch_work(work, [&]<typename T>() {
      layer_norm_backward_kernel<T>(g, x, dx, mean, rstd, w, rows, n, dw.data<double>(),
                                    db.data<double>());
    });
  }
  NormGrads r;
  r.input = to(dx, x_in.dtype());
  if (weight.defined()) r.weight = to(dw, weight.dtype());
  r.bias = to(db, weight.defined() ? weight.dtype() : x_in.dtype());
  return r;
}

// ------------------------------------------------------------------------------------------------
// group norm

NormResult group_norm(const Tensor& x_in, int64_t groups, const Tensor& weight, const Tensor& bias,
                      double eps, bool silu) {
  const char* op = "group_norm";
  check_floating(x_in, op);
  const Device dev = common_device(op, {x_in, weight, bias});
  const NCHW s = nchw_of(x_in, op);
  CXR_CHECK(groups >= 1 && s.c % groups == 0, op, ": the ", s.c, " channels of input ",
            describe(x_in), " cannot be split into ", groups, " groups");
  CXR_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const DType work = work_dtype(x_in);
  Tensor w = param(weight, {s.c}, work, op, "weight");
  Tensor b = param(bias, {s.c}, work, op, "bias");
  Tensor x = contiguous(to(x_in, work));
  Tensor y = empty(x.sizes(), work, dev);
  NormResult r;
  r.mean = empty({s.n, groups}, work, dev);
  r.rstd = empty({s.n, groups}, work, dev);
  const int64_t cpg = s.c / groups, m = cpg * s.hw;
  if constexpr (kCudaBuilt)
    if (dev.is_cuda())
      cuda::group_norm(x, y, r.mean, r.rstd, s.n, s.c, s.hw, groups, w, b, eps, silu);
  if (dev.is_cpu() && x.numel() > 0) {
    dispatch_work(work, [&]<typename T>() {
      const T* xp = x.data<T>();
      T* mp = r.mean.data<T>();
      T* rp = r.rstd.data<T>();
      const int64_t tasks = s.n * groups;
#pragma omp parallel for schedule(static) if (x.numel() >= 32768 && tasks > 1)
      for (int64_t t = 0; t < tasks; ++t) {
        double mv[2];
        k_moments(xp + t * m, m, mv);
        mp[t] = T(mv[0]);
        rp[t] = T(1.0 / std::sqrt(mv[1] + eps));
      }
      apply_channels<T>(xp, y.data<T>(), s, mp, rp, ptr_or_null<T>(w), ptr_or_null<T>(b), silu,
                        [&](int64_t n, int64_t c) { return n * groups + c / cpg; });
    });
  }
  r.out = to(y, x_in.dtype());
  return r;
}

NormGrads group_norm_backward(const Tensor& grad, const Tensor& x_in, const NormResult& saved,
                              const Tensor& weight, const Tensor& bias, int64_t groups, bool silu) {
  const char* op = "group_norm_backward";
  check_floating(x_in, op);
  const Device dev = common_device(op, {grad, x_in, saved.mean, saved.rstd, weight, bias});
  CXR_CHECK(grad.sizes() == x_in.sizes(), op, ": grad ", describe(grad), " and input ",
            describe(x_in), " must have the same shape");
  const NCHW s = nchw_of(x_in, op);
  CXR_CHECK(groups >= 1 && s.c % groups == 0, op, ": ", s.c, " channels cannot be split into ",
            groups, " groups");
  CXR_CHECK(saved.mean.defined() && saved.mean.numel() == s.n * groups && saved.rstd.defined() &&
                saved.rstd.numel() == s.n * groups,
            op, ": saved statistics do not match the input ", describe(x_in));
  const DType work = work_dtype(x_in);
  Tensor w = param(weight, {s.c}, work, op, "weight");
  Tensor b = param(bias, {s.c}, work, op, "bias");
  Tensor x = contiguous(to(x_in, work));
  Tensor g = contiguous(to(grad, work));
  Tensor mean = contiguous(to(saved.mean, work));
  Tensor rstd = contiguous(to(saved.rstd, work));
  Tensor dx = empty(x.sizes(), work, dev);
  Tensor dw = zeros({s.c}, kFloat64, dev), db = zeros({s.c}, kFloat64, dev);
  const int64_t cpg = s.c / groups;
  const double m = double(cpg * s.hw);
  if constexpr (kCudaBuilt)
    if (dev.is_cuda())
      cuda::group_norm_backward(g, x, dx, mean, rstd, w, b, s.n, s.c, s.hw, groups, silu, dw, db);
  std::vector<double> sums(size_t(s.n * s.c * 2), 0.0);
  if (dev.is_cpu() && x.numel() > 0) {
    dispatch_work(work, [&]<typename T>() {
      const T *gp = g.data<T>(), *xp = x.data<T>(), *mp = mean.data<T>(), *rp = rstd.data<T>();
      const T* wp = ptr_or_null<T>(w);
      const T* bp = ptr_or_null<T>(b);
      auto stat = [&](int64_t n, int64_t c) { return n * groups + c / cpg; };
      sums = channel_sums_all<T>(gp, xp, s, mp, rp, wp, bp, silu, stat);
      // Per (n, group): c1 = mean(gy), c2 = mean(gy * xhat) with gy = dz * w.
      std::vector<T> c1(size_t(s.n * groups)), c2(size_t(s.n * groups));
      for (int64_t n = 0; n < s.n; ++n)
        for (int64_t gi = 0; gi < groups; ++gi) {
          double a = 0, e = 0;
          for (int64_t c = gi * cpg; c < (gi + 1) * cpg; ++c) {
            const double wc = wp ? double(wp[c]) : 1.0;
            a += wc * sums[size_t((n * s.c + c) * 2)];
            e += wc * sums[size_t((n * s.c + c) * 2 + 1)];
          }
          c1[size_t(n * groups + gi)] = T(a / m);
          c2[size_t(n * groups + gi)] = T(e / m);
        }
      T* dp = dx.data<T>();
      const int64_t tasks = s.n * s.c;
#pragma omp parallel for schedule(static) if (x.numel() >= 32768 && tasks > 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t n = t / s.c, c = t % s.c, k = stat(n, c);
        k_channel_dx(gp + t * s.hw, xp + t * s.hw, dp + t * s.hw, s.hw, mp[k], rp[k],
                     wp ? wp[c] : T(1), bp ? bp[c] : T(0), silu, c1[size_t(k)], c2[size_t(k)]);
      }
    });
  }
  if (dev.is_cpu()) param_sums(sums, s, dw, db);
  NormGrads r = param_grads(dw, db, work, weight.defined());
  if (r.weight.defined()) r.weight = to(r.weight, weight.dtype());
  r.bias = to(r.bias, bias.defined() ? bias.dtype() : x_in.dtype());
  r.input = to(dx, x_in.dtype());
  return r;
}

// ------------------------------------------------------------------------------------------------
// batch norm

NormResult batch_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps) {
  const char* op = "batch_norm";
  check_floating(x_in, op);
  const Device dev = common_device(op, {x_in, weight, bias, running_mean, running_var});
  const NCHW s = nchw_of(x_in, op);
  CXR_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const DType work = work_dtype(x_in);
  Tensor w = param(weight, {s.c}, work, op, "weight");
  Tensor b = param(bias, {s.c}, work, op, "bias");
  CXR_CHECK(running_mean.defined() == running_var.defined(), op,
            ": running_mean and running_var must be both given or both undefined");
  if (running_mean.defined()) {
    for (const Tensor* t : {&running_mean, &running_var})
      CXR_CHECK(is_floating(t->dtype()) && t->sizes() == Shape{s.c}, op,
                ": running statistics must be floating [", s.c, "], got ", describe(*t));
  }
  CXR_CHECK(training || running_mean.defined(), op,
            ": evaluation mode needs running_mean and running_var");
  const int64_t per_channel = s.n * s.hw;
  CXR_CHECK(!training || per_channel > 1, op,
            ": expected more than 1 value per channel when training, got input ", describe(x_in));
  Tensor x = contiguous(to(x_in, work));
  Tensor y = empty(x.sizes(), work, dev);
  NormResult r;
  if (training && dev.is_cuda()) {
    if constexpr (kCudaBuilt) {
      r.mean = empty({s.c}, work, dev);
      r.rstd = empty({s.c}, work, dev);
      Tensor var = empty({s.c}, kFloat64, dev);
      cuda::batch_norm_stats(x, s.n, s.c, s.hw, eps, r.mean, r.rstd, var);
      if (running_mean.defined()) {
        // As on the CPU below: the batch mean as rounded to the work dtype, the unbiased variance.
        const double unbias = double(per_channel) / double(per_channel - 1);
        cuda::batch_norm_update_running(running_mean, to(r.mean, kFloat64), momentum, 1.0);
        cuda::batch_norm_update_running(running_var, var, momentum, unbias);
        running_mean.storage()->bump_version();
        running_var.storage()->bump_version();
      }
    }
  } else if (training) {
    r.mean = empty({s.c}, work);
    r.rstd = empty({s.c}, work);
    std::vector<double> var(size_t(s.c), 0.0);
    dispatch_work(work, [&]<typename T>() {
      const T* xp = x.data<T>();
      T* mp = r.mean.data<T>();
      T* rp = r.rstd.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() >= 32768 && s.c > 1)
      for (int64_t c = 0; c < s.c; ++c) {
        // Chan et al. pairwise combination of per-sample (mean, M2) in sample order.
        double mean = 0, m2 = 0, count = 0;
        for (int64_t n = 0; n < s.n; ++n) {
          double mv[2];
          k_moments(xp + (n * s.c + c) * s.hw, s.hw, mv);
          const double nb = double(s.hw), tot = count + nb, delta = mv[0] - mean;
          mean += delta * nb / tot;
          m2 += mv[1] * nb + delta * delta * count * nb / tot;
          count = tot;
        }
        const double v = m2 / count;
        var[size_t(c)] = v;
        mp[c] = T(mean);
        rp[c] = T(1.0 / std::sqrt(v + eps));
      }
    });
    if (running_mean.defined()) {
      // running = (1 - momentum) running + momentum batch, with the unbiased batch variance.
      const double unbias = double(per_channel) / double(per_channel - 1);
      Tensor bm = to(r.mean, kFloat64);
      auto update = [&](const Tensor& run, auto&& batch_value) {
        CXR_DISPATCH_FLOAT(run.dtype(), op, [&]<typename R>() {
          R* p = static_cast<R*>(run.data_ptr());
          for (int64_t c = 0; c < s.c; ++c) {
            const double old = double(compute_t<R>(p[c * run.stride(0)]));
            p[c * run.stride(0)] = convert<R>((1 - momentum) * old + momentum * batch_value(c));
          }
        });
        run.storage()->bump_version();
      };
      update(running_mean, [&](int64_t c) { return bm.data<double>()[c]; });
      update(running_var, [&](int64_t c) { return var[size_t(c)] * unbias; });
    }
  } else if (dev.is_cuda()) {
    if constexpr (kCudaBuilt) {
      r.mean = contiguous(clone(to(running_mean, work)));
      r.rstd = empty({s.c}, work, dev);
      cuda::batch_norm_rstd(contiguous(to(running_var, kFloat64)), eps, r.rstd);
    }
  } else {
    r.mean = clone(to(running_mean, work));
    Tensor rv = to(running_var, kFloat64);
    Tensor rs = empty({s.c}, kFloat64);
    for (int64_t c = 0; c < s.c; ++c) rs.data<double>()[c] = 1.0 / std::sqrt(rv.at({c}) + eps);
    r.rstd = to(rs, work);
    r.mean = contiguous(r.mean);
  }
  if constexpr (kCudaBuilt)
    if (dev.is_cuda()) cuda::batch_norm_apply(x, y, r.mean, r.rstd, s.n, s.c, s.hw, w, b);
  if (dev.is_cpu() && x.numel() > 0) {
    dispatch_work(work, [&]<typename T>() {
      apply_channels<T>(x.data<T>(), y.data<T>(), s, r.mean.data<T>(), r.rstd.data<T>(),
                        ptr_or_null<T>(w), ptr_or_null<T>(b), false,
                        [](int64_t, int64_t c) { return c; });
    });
  }
  r.out = to(y, x_in.dtype());
  return r;
}

NormGrads batch_norm_backward(const Tensor& grad, const Tensor& x_in, const NormResult& saved,
                              const Tensor& weight, bool training) {
  const char* op = "batch_norm_backward";
  check_floating(x_in, op);
  const Device dev = common_device(op, {grad, x_in, saved.mean, saved.rstd, weight});
  CXR_CHECK(grad.sizes() == x_in.sizes(), op, ": grad ", describe(grad), " and input ",
            describe(x_in), " must have the same shape");
  const NCHW s = nchw_of(x_in, op);
  CXR_CHECK(saved.mean.defined() && saved.mean.numel() == s.c && saved.rstd.defined() &&
                saved.rstd.numel() == s.c,
            op, ": saved statistics do not match the input ", describe(x_in));
  const DType work = work_dtype(x_in);
  Tensor w = param(weight, {s.c}, work, op, "weight");
  Tensor x = contiguous(to(x_in, work));
  Tensor g = contiguous(to(grad, work));
  Tensor mean = contiguous(to(saved.mean, work));
  Tensor rstd = contiguous(to(saved.rstd, work));
  Tensor dx = empty(x.sizes(), work, dev);
  Tensor dw = zeros({s.c}, kFloat64, dev), db = zeros({s.c}, kFloat64, dev);
  const double m = double(s.n * s.hw);
  if constexpr (kCudaBuilt)
    if (dev.is_cuda())
      cuda::batch_norm_backward(g, x, dx, mean, rstd, w, s.n, s.c, s.hw, training, dw, db);
  std::vector<double> sums(size_t(s.n * s.c * 2), 0.0);
  if (dev.is_cpu() && x.numel() > 0) {
    dispatch_work(work, [&]<typename T>() {
      const T *gp = g.data<T>(), *xp = x.data<T>(), *mp = mean.data<T>(), *rp = rstd.data<T>();
      const T* wp = ptr_or_null<T>(w);
      auto stat = [](int64_t, int64_t c) { return c; };
      sums = channel_sums_all<T>(gp, xp, s, mp, rp, nullptr, nullptr, false, stat);
      // Training: c1 = w mean(g), c2 = w mean(g xhat) per channel; eval: statistics are
      // constants, so dx = g w rstd.
      std::vector<T> c1(size_t(s.c), T(0)), c2(size_t(s.c), T(0));
      if (training) {
        for (int64_t c = 0; c < s.c; ++c) {
          double a = 0, e = 0;
          for (int64_t n = 0; n < s.n; ++n) {
            a += sums[size_t((n * s.c + c) * 2)];
            e += sums[size_t((n * s.c + c) * 2 + 1)];
          }
          const double wc = wp ? double(wp[c]) : 1.0;
          c1[size_t(c)] = T(wc * a / m);
          c2[size_t(c)] = T(wc * e / m);
        }
      }
      T* dp = dx.data<T>();
      const int64_t tasks = s.n * s.c;
#pragma omp parallel for schedule(static) if (x.numel() >= 32768 && tasks > 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t c = t % s.c;
        k_channel_dx(gp + t * s.hw, xp + t * s.hw, dp + t * s.hw, s.hw, mp[c], rp[c],
                     wp ? wp[c] : T(1), T(0), false, c1[size_t(c)], c2[size_t(c)]);
      }
    });
  }
  if (dev.is_cpu()) param_sums(sums, s, dw, db);
  NormGrads r = param_grads(dw, db, work, weight.defined());
  if (r.weight.defined()) r.weight = to(r.weight, weight.dtype());
  r.bias = to(r.bias, weight.defined() ? weight.dtype() : x_in.dtype());
  r.input = to(dx, x_in.dtype());
  return r;
}

}  // namespace cxr::raw
