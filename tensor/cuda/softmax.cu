// CUDA softmax and log-softmax with their backward kernels (tensor/nn_ops.h). The tensor is read
// as a contiguous [rows, n] matrix with the softmax dim last (a permuted copy when the dim is not
// last already); a group of G threads handles one row: the max, the sum of exp(x - max) as a fixed
// tree (deterministic), then the outputs. float16/bfloat16 are computed in float32 and exp is
// math::exp, as in tensor/cpu/softmax.cpp.
#include <cmath>
#include <limits>

#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/block_reduce.cuh"
#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/softmax.h"
#include "tensor/math.h"

namespace cxr::cuda {
namespace {

// Rows up to this length are handled by one warp (8 rows per block), longer ones by a block.
constexpr int64_t kWarpRowMax = 1024;

// max that skips NaN, as the CPU's `x > m ? x : m` from -inf (a NaN row still ends up NaN through
// the sum of exp).
template <typename C>
struct MaxCombine {
  __device__ C operator()(C a, C b) const { return b > a ? b : a; }
};

// Calls body(row, active, lane) for each row that this thread's group of G lanes handles (groups
// stride over the rows of the grid). Every thread of the block makes the same number of calls;
// active is false past the last row, where the body must still join the group reductions.
template <int G, typename Body>
__device__ __forceinline__ void for_each_group_row(int64_t rows, Body&& body) {
  constexpr int kGroups = kThreads / G;
  const int lane = int(threadIdx.x) % G;
  for (int64_t base = int64_t(blockIdx.x) * kGroups; base < rows;
       base += int64_t(gridDim.x) * kGroups) {
    const int64_t row = base + int64_t(threadIdx.x) / G;
    body(row, row < rows, lane);
  }
}

template <int G, typename T, bool kLog>
__global__ void softmax_kernel(const T* x, T* y, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  C* slots = shared_slots<C>();
  for_each_group_row<G>(rows, [&](int64_t row, bool active, int lane) {
    const T* xr = x + (active ? row : 0) * n;
    C m = -std::numeric_limits<C>::infinity();
    if (active)
      for (int64_t i = lane; i < n; i += G) {
        const C v = C(xr[i]);
        m = v > m ? v : m;
      }
    m = group_reduce<G>(m, slots, MaxCombine<C>{});
    C s = 0;
    if (active)
      for (int64_t i = lane; i < n; i += G) s += math::exp(C(xr[i]) - m);
    s = group_reduce<G>(s, slots, SumCombine<C>{});
    if (!active) return;
    T* yr = y + row * n;
    if constexpr (kLog) {
      const C ls = std::log(s);
      for (int64_t i = lane; i < n; i += G) yr[i] = convert<T>((C(xr[i]) - m) - ls);
    } else {
      const C inv = C(1) / s;
      for (int64_t i = lane; i < n; i += G) yr[i] = convert<T>(math::exp(C(xr[i]) - m) * inv);
    }
  });
}

// softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
template <int G, typename T, bool kLog>
__global__ void softmax_backward_kernel(const T* g, const T* y, T* dx, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  C* slots = shared_slots<C>();
  for_each_group_row<G>(rows, [&](int64_t row, bool active, int lane) {
    const int64_t off = (active ? row : 0) * n;
    C s = 0;
    if (active)
      for (int64_t i = lane; i < n; i += G)
        s += kLog ? C(g[off + i]) : C(g[off + i]) * C(y[off + i]);
    s = group_reduce<G>(s, slots, SumCombine<C>{});
    if (!active) return;
    for (int64_t i = lane; i < n; i += G) {
      const C gi = C(g[off + i]), yi = C(y[off + i]);
      dx[off + i] = convert<T>(kLog ? gi - math::exp(yi) * s : yi * (gi - s));
    }
  });
}

// The [rows, n] geometry around `dim` and the views that put `dim` last.
struct RowGeometry {
  std::vector<bool> last;
  int64_t rows = 0, n = 1;
};
RowGeometry row_geometry(const Tensor& t, int64_t dim) {
  RowGeometry r;
  r.last.assign(size_t(t.dim()), false);
  if (t.dim() > 0) {
    r.last[size_t(dim)] = true;
    r.n = t.size(dim);
  }
  r.rows = r.n == 0 ? 0 : t.numel() / r.n;
  return r;
}

template <typename T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}

// Runs `launch(G, out_rows)` writing the [rows, n] result, then places it into a new contiguous
// tensor of `like`'s shape and dtype (directly when `dim` is last already).
template <typename Launch>
Tensor with_rows_output(const Tensor& like, const RowGeometry& r, Launch&& launch) {
  Tensor out = raw::empty(like.sizes(), like.dtype(), like.device());
  if (out.numel() == 0) return out;
  const Tensor view = move_to_end(out, r.last);
  const bool direct = view.is_contiguous();
  const Tensor rows_out = direct ? view : raw::empty(view.sizes(), out.dtype(), out.device());
  launch(rows_out);
  if (!direct) copy_(view, rows_out);
  return out;
}

template <typename T, bool kLog>
void launch_forward(const Tensor& x, const Tensor& y, const RowGeometry& r, int device) {
  const cudaStream_t s = stream(device);
  T* yp = static_cast<T*>(y.data_ptr());
  if (r.n <= kWarpRowMax) {
    softmax_kernel<32, T, kLog>
        <<<blocks_for(r.rows, kThreads / 32), kThreads, 0, s>>>(cptr<T>(x), yp, r.rows, r.n);
  } else {
    softmax_kernel<kThreads, T, kLog>
        <<<blocks_for(r.rows, 1), kThreads, 0, s>>>(cptr<T>(x), yp, r.rows, r.n);
  }
  CXR_CUDA_LAUNCH_CHECK("softmax_kernel");
}

template <typename T, bool kLog>
void launch_backward(const Tensor& g, const Tensor& y, const Tensor& dx, const RowGeometry& r,
                     int device) {
  const cudaStream_t s = stream(device);
  T* dp = static_cast<T*>(dx.data_ptr());
  if (r.n <= kWarpRowMax) {
    softmax_backward_kernel<32, T, kLog><<<blocks_for(r.rows, kThreads / 32), kThreads, 0, s>>>(
        cptr<T>(g), cptr<T>(y), dp, r.rows, r.n);
  } else {
    softmax_backward_kernel<kThreads, T, kLog>
        <<<blocks_for(r.rows, 1), kThreads, 0, s>>>(cptr<T>(g), cptr<T>(y), dp, r.rows, r.n);
  }
  CXR_CUDA_LAUNCH_CHECK("softmax_backward_kernel");
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  DeviceGuard guard(x.device());
  const RowGeometry r = row_geometry(x, dim);
  return with_rows_output(x, r, [&](const Tensor& y) {
    const Tensor xr = raw::contiguous(move_to_end(x, r.last));
    CXR_DISPATCH_FLOAT(x.dtype(), log ? "log_softmax" : "softmax", ([&]<typename T>() {
                         if (log)
                           launch_forward<T, true>(xr, y, r, x.device().index);
                         else
                           launch_forward<T, false>(xr, y, r, x.device().index);
                       }));
  });
}

Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim, bool log) {
  DeviceGuard guard(y.device());
  if (grad.dtype() != y.dtype()) {
    // As on the CPU: both in the working dtype (float64 when y is, else float32), the result in
    // y's dtype.
    const DType work = y.dtype() == kFloat64 ? kFloat64 : kFloat32;
    return raw::to(softmax_backward(raw::to(grad, work), raw::to(y, work), dim, log), y.dtype());
  }
  const RowGeometry r = row_geometry(y, dim);
  return with_rows_output(y, r, [&](const Tensor& dx) {
    const Tensor gr = raw::contiguous(move_to_end(grad, r.last));
    const Tensor yr = raw::contiguous(move_to_end(y, r.last));
    const char* op = log ? "log_softmax_backward" : "softmax_backward";
    CXR_DISPATCH_FLOAT(y.dtype(), op, ([&]<typename T>() {
                         if (log)
                           launch_backward<T, true>(gr, yr, dx, r, y.device().index);
                         else
                           launch_backward<T, false>(gr, yr, dx, r, y.device().index);
                       }));
  });
}

}  // namespace cxr::cuda
