// Softmax and log-softmax over any dim, and their backward kernels, on the CPU.
// The tensor is viewed as [outer, n, inner] around `dim`. With inner == 1 each row is reduced with
// 16 partial accumulators (vectorised, fixed order); otherwise whole column chunks are processed
// together so the loads stay contiguous. Every row belongs to one task, so results do not depend on
// the thread count. float16/bfloat16 are computed in float32.
#include <cmath>
#include <limits>

#include "tensor/backend.h"
#include "tensor/cpu/nn_clones.h"
#include "tensor/creation.h"
#include "tensor/cuda/softmax.h"
#include "tensor/math.h"  // math::exp, the shared float32 exp
#include "tensor/nn_ops.h"

namespace cxr::raw {
namespace {

struct Slabs {
  int64_t outer = 1, n = 1, inner = 1;
};

Slabs slabs_of(const Shape& shape, int64_t dim) {
  Slabs s;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
    if (d < dim) s.outer *= shape[size_t(d)];
    if (d == dim) s.n = shape[size_t(d)];
    if (d > dim) s.inner *= shape[size_t(d)];
  }
  return s;
}

constexpr int kLanes = 16;      // partial accumulators per row
constexpr int64_t kCols = 256;  // columns per chunk in the inner > 1 case

template <typename T>
[[gnu::always_inline]] inline T lane_sum(const T* acc) {
  T s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

template <typename T>
[[gnu::always_inline]] inline T row_max(const T* x, int64_t n) {
  // max is exact, so the vectorised reduction's order does not change the result.
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Forward, one row (inner == 1). y may receive exp(x - max) as scratch.
template <typename T>
[[gnu::always_inline]] inline void forward_row(const T* x, T* y, int64_t n, bool log) {
  const T m = row_max(x, n);
  // exp as a plain map (vectorised including the tail), then a fixed-lane sum.
  for (int64_t k = 0; k < n; ++k) y[k] = math::exp(x[k] - m);
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += y[i + l];
  for (; i < n; ++i) acc[0] += y[i];
  const T total = lane_sum(acc);
  if (log) {
    const T lt = std::log(total);
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m) - lt;
  } else {
    const T inv = T(1) / total;
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}

// Forward, one chunk of columns [0, w) of one slab with row stride `inner`.
template <typename T>
[[gnu::always_inline]] inline void forward_cols(const T* x, T* y, int64_t n, int64_t inner,
                                                int64_t w, bool log) {
  T m[kCols], s[kCols];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = -std::numeric_limits<T>::infinity();
    s[j] = 0;
  }
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < w; ++j) m[j] = x[k * inner + j] > m[j] ? x[k * inner + j] : m[j];
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < w; ++j) {
      T e = math::exp(x[k * inner + j] - m[j]);
      y[k * inner + j] = e;
      s[j] += e;
    }
  if (log) {
    for (int64_t j = 0; j < w; ++j) s[j] = std::log(s[j]);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < w; ++j) y[k * inner + j] = (x[k * inner + j] - m[j]) - s[j];
  } else {
    for (int64_t j = 0; j < w; ++j) s[j] = T(1) / s[j];
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < w; ++j) y[k * inner + j] *= s[j];
  }
}

// Backward, one row: softmax dx = y (g - sum(g y)); log_softmax dx = g - exp(y) sum(g).
template <typename T, bool log>
[[gnu::always_inline]] inline void backward_row(const T* g, const T* y, T* dx, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l)
      if constexpr (log) {
        acc[l] += g[i + l];
      } else {
        acc[l] += g[i + l] * y[i + l];
      }
  for (; i < n; ++i) acc[0] += log ? g[i] : g[i] * y[i];
  const T s = lane_sum(acc);
  if (log) {
    for (int64_t k = 0; k < n; ++k) dx[k] = g[k] - math::exp(y[k]) * s;
  } else {
    for (int64_t k = 0; k < n; ++k) dx[k] = y[k] * (g[k] - s);
  }
}

template <typename T, bool log>
[[gnu::always_inline]] inline void backward_cols(const T* g, const T* y, T* dx, int64_t n,
                                                 int64_t inner, int64_t w) {
  T s[kCols];
  for (int64_t j = 0; j < w; ++j) s[j] = 0;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < w; ++j)
      s[j] += log ? g[k * inner + j] : g[k * inner + j] * y[k * inner + j];
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < w; ++j) {
      const int64_t e = k * inner + j;
      dx[e] = log ? g[e] - math::exp(y[e]) * s[j] : y[e] * (g[e] - s[j]);
    }
}

// One task: `count` consecutive rows (inner == 1) or one column chunk of one slab.
struct Task {
  int64_t offset;  // element offset of the first element
  int64_t count;   // rows (inner == 1) or columns (inner > 1)
};

template <typename T>
[[gnu::always_inline]] inline void run_forward(const T* x, T* y, const Slabs& s, Task t, bool log) {
  if (s.inner == 1) {
    for (int64_t r = 0; r < t.count; ++r)
      forward_row(x + t.offset + r * s.n, y + t.offset + r * s.n, s.n, log);
  } else {
    forward_cols(x + t.offset, y + t.offset, s.n, s.inner, t.count, log);
  }
}
template <typename T, bool log>
[[gnu::always_inline]] inline void run_backward_t(const T* g, const T* y, T* dx, const Slabs& s,
                                                  Task t) {
  if (s.inner == 1) {
    for (int64_t r = 0; r < t.count; ++r) {
      const int64_t o = t.offset + r * s.n;
      backward_row<T, log>(g + o, y + o, dx + o, s.n);
    }
  } else {
    backward_cols<T, log>(g + t.offset, y + t.offset, dx + t.offset, s.n, s.inner, t.count);
  }
}
// `log` as a template parameter keeps the inner loops branch-free (vectorisable).
template <typename T>
[[gnu::always_inline]] inline void run_backward(const T* g, const T* y, T* dx, const Slabs& s,
                                                Task t, bool log) {
  if (log) {
    run_backward_t<T, true>(g, y, dx, s, t);
  } else {
    run_backward_t<T, false>(g, y, dx, s, t);
  }
}

// The float32 instantiations are compiled for AVX-512 / AVX2 / baseline and picked at load time.
CXR_NN_CLONES void forward_f32(const float* x, float* y, const Slabs& s, Task t, bool log) {
  run_forward(x, y, s, t, log);
}
CXR_NN_CLONES void backward_f32(const float* g, const float* y, float* dx, const Slabs& s, Task t,
                                bool log) {
  run_backward(g, y, dx, s, t, log);
}

// Splits the [outer, n, inner] problem into independent tasks of roughly 16k elements.
template <typename Fn>
void for_each_task(const Slabs& s, Fn&& fn) {
  int64_t ntasks, per;
  if (s.inner == 1) {
    per = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, s.n));  // rows per task
    ntasks = (s.outer + per - 1) / per;
  } else {
    per = (s.inner + kCols - 1) / kCols;  // column chunks per slab
    ntasks = s.outer * per;
  }
  const bool parallel = s.outer * s.n * s.inner >= 32768 && ntasks > 1;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t i = 0; i < ntasks; ++i) {
    if (s.inner == 1) {
      const int64_t r0 = i * per;
      fn(Task{r0 * s.n, std::min(per, s.outer - r0)});
    } else {
      const int64_t o = i / per, j0 = (i % per) * kCols;
      fn(Task{o * s.n * s.inner + j0, std::min(kCols, s.inner - j0)});
    }
  }
}

Tensor softmax_impl(const Tensor& x_in, int64_t dim_in, bool log, const char* op) {
  CXR_CHECK(is_floating(x_in.dtype()), op, ": expected a floating tensor, got ", describe(x_in));
  const int64_t dim = normalize_dim(dim_in, std::max<int64_t>(x_in.dim(), 1), op);
  if constexpr (kCudaBuilt)
    if (x_in.device().is_cuda()) return cuda::softmax(x_in, dim, log);
  const DType work = x_in.dtype() == kFloat64 ? kFloat64 : kFloat32;
  Tensor x = contiguous(to(x_in, work));
  Tensor y = empty(x.sizes(), work);
  const Slabs s = slabs_of(x.sizes(), dim);
  if (x.numel() > 0) {
    if (work == kFloat32) {
      const float* xp = x.data<float>();
      float* yp = y.data<float>();
      for_each_task(s, [&](Task t) { forward_f32(xp, yp, s, t, log); });
    } else {
      const double* xp = x.data<double>();
      double* yp = y.data<double>();
      for_each_task(s, [&](Task t) { run_forward(xp, yp, s, t, log); });
    }
  }
  return to(y, x_in.dtype());
}

Tensor backward_impl(const Tensor& grad_in, const Tensor& y_in, int64_t dim_in, bool log,
                     const char* op) {
  CXR_CHECK(grad_in.sizes() == y_in.sizes(), op, ": grad ", describe(grad_in), " and output ",
            describe(y_in), " must have the same shape");
  CXR_CHECK(is_floating(y_in.dtype()) && is_floating(grad_in.dtype()), op,
            ": expected floating tensors, got grad ", describe(grad_in), " and output ",
            describe(y_in));
  const int64_t dim = normalize_dim(dim_in, std::max<int64_t>(y_in.dim(), 1), op);
  if (common_device(op, {grad_in, y_in}).is_cuda()) {
    if constexpr (kCudaBuilt) return cuda::softmax_backward(grad_in, y_in, dim, log);
  }
  const DType work = y_in.dtype() == kFloat64 ? kFloat64 : kFloat32;
  Tensor g = contiguous(to(grad_in, work));
  Tensor y = contiguous(to(y_in, work));
  Tensor dx = empty(y.sizes(), work);
  const Slabs s = slabs_of(y.sizes(), dim);
  if (y.numel() > 0) {
    if (work == kFloat32) {
      const float *gp = g.data<float>(), *yp = y.data<float>();
      float* dp = dx.data<float>();
      for_each_task(s, [&](Task t) { backward_f32(gp, yp, dp, s, t, log); });
    } else {
      const double *gp = g.data<double>(), *yp = y.data<double>();
      double* dp = dx.data<double>();
      for_each_task(s, [&](Task t) { run_backward(gp, yp, dp, s, t, log); });
    }
  }
  return to(dx, y_in.dtype());
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, false, "softmax");
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, true, "log_softmax");
}
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim) {
  return backward_impl(grad, y, dim, false, "softmax_backward");
}
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim) {
  return backward_impl(grad, y, dim, true, "log_softmax_backward");
}

}  // namespace cxr::raw
