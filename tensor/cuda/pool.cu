// CUDA pooling and upsampling (pool.h). Index, window and weight formulas are those of the CPU
// kernels (tensor/cpu/pool.cpp, after PyTorch's aten/src/ATen/native/Pool.h, AdaptivePooling.h and
// UpSample.h), evaluated per element on the device. Forward kernels: one thread per output element.
// Backward kernels: one thread per input element, summing the output elements that read it in
// ascending output order and rounding to T after each addition, exactly as the CPU scatter loops
// do, so the results are deterministic and equal the CPU's.
#include <limits>

#include "tensor/creation.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/pool.h"
#include "tensor/dtype.h"
#include "tensor/upsample_geometry.h"

namespace cxr::cuda {

namespace {

using detail::linear_tap;
using detail::LinearTap;
using detail::nearest_source;

__host__ __device__ inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}
__host__ __device__ inline int64_t imax(int64_t a, int64_t b) {
  return a > b ? a : b;
}
// floor(a / b) for b > 0 and any sign of a.
__device__ inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// Pool2dParams as plain integers for the kernels.
struct PoolArgs {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;
};
PoolArgs pool_args(const Pool2dParams& p) {
  return {p.kernel[0],  p.kernel[1],   p.stride[0],   p.stride[1],        p.padding[0],
          p.padding[1], p.dilation[0], p.dilation[1], p.count_include_pad};
}

// Launches kernel<<<>>> over n items on the stream of `t`'s device.
template <typename K, typename... Args>
void launch(const Tensor& t, int64_t n, K kernel, const char* name, Args... args) {
  if (n == 0) return;
  DeviceGuard guard(t.device());
  kernel<<<blocks_for(n), kThreads, 0, stream(t.device().index)>>>(args...);
  const cudaError_t status = cudaGetLastError();  // CXR_CUDA_LAUNCH_CHECK with a run-time name
  if (status != cudaSuccess) fail_cuda(status, name, __FILE__, __LINE__);
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

#define CXR_GRID_STRIDE(i, n)                                               \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

// ---- max pool ----

template <typename T>
__global__ void max_pool_kernel(const T* x, T* out, int64_t* idx, PlaneGeometry s, PoolArgs a) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(o, s.planes * s.out_h * s.out_w) {
    const int64_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, q = o / (s.out_w * s.out_h);
    const T* plane = x + q * s.in_h * s.in_w;
    int64_t h0 = oh * a.sh - a.ph;
    const int64_t h1 = imin(h0 + (a.kh - 1) * a.dh + 1, s.in_h);
    while (h0 < 0) h0 += a.dh;
    int64_t w0 = ow * a.sw - a.pw;
    const int64_t w1 = imin(w0 + (a.kw - 1) * a.dw + 1, s.in_w);
    while (w0 < 0) w0 += a.dw;
    // The first in-bounds tap is the answer when every value is -inf; a NaN always wins.
    int64_t best = h0 * s.in_w + w0;
    C best_val = -std::numeric_limits<C>::infinity();
    for (int64_t ih = h0; ih < h1; ih += a.dh)
      for (int64_t iw = w0; iw < w1; iw += a.dw) {
        const C v = C(plane[ih * s.in_w + iw]);
        if (v > best_val || isnan(v)) {
          best_val = v;
          best = ih * s.in_w + iw;
        }
      }
    out[o] = T(best_val);
    idx[o] = best;
  }
}

// For every input row ih the smallest and largest output row oh whose index points into row ih
// (over all planes and columns), and the same for columns: min/max are order-independent, so the
// integer atomics give the same bounds on every run. `lo` holds rows then columns (in_h + in_w),
// initialised to INT_MAX; `hi` likewise, initialised to -1.
__global__ void max_pool_reach_kernel(const int64_t* idx, PlaneGeometry s, int* lo, int* hi) {
  CXR_GRID_STRIDE(o, s.planes * s.out_h * s.out_w) {
    const int ow = int(o % s.out_w), oh = int((o / s.out_w) % s.out_h);
    const int64_t k = idx[o];
    const int64_t ih = k / s.in_w, iw = s.in_h + k % s.in_w;
    // Reading first skips the atomic once the bound is reached (the common case).
    if (oh < lo[ih]) atomicMin(&lo[ih], oh);
    if (oh > hi[ih]) atomicMax(&hi[ih], oh);
    if (ow < lo[iw]) atomicMin(&lo[iw], ow);
    if (ow > hi[iw]) atomicMax(&hi[iw], ow);
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(const T* g, const int64_t* idx, T* gi, PlaneGeometry s,
                                         const int* lo, const int* hi) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(i, s.planes * s.in_h * s.in_w) {
    const int64_t iw = i % s.in_w, ih = (i / s.in_w) % s.in_h, q = i / (s.in_w * s.in_h);
    const int64_t k = ih * s.in_w + iw, base = q * s.out_h * s.out_w;
    T acc = T(C(0));
    for (int64_t oh = lo[ih]; oh <= hi[ih]; ++oh)
      for (int64_t ow = lo[s.in_h + iw]; ow <= hi[s.in_h + iw]; ++ow) {
        const int64_t o = base + oh * s.out_w + ow;
        if (idx[o] == k) acc = T(C(acc) + C(g[o]));
      }
    gi[i] = acc;
  }
}

// ---- average pool ----

// The window of output (oh, ow) clipped to the input, and its divisor as PyTorch chooses it (the
// padded window size, or the clipped one without count_include_pad; 0 for an empty window).
struct AvgWindow {
  int64_t h0, h1, w0, w1, div;
};
__device__ inline AvgWindow avg_window(const PlaneGeometry& s, const PoolArgs& a, int64_t oh,
                                       int64_t ow) {
  int64_t h0 = oh * a.sh - a.ph, w0 = ow * a.sw - a.pw;
  int64_t h1 = imin(h0 + a.kh, s.in_h + a.ph), w1 = imin(w0 + a.kw, s.in_w + a.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = imax(h0, 0), w0 = imax(w0, 0), h1 = imin(h1, s.in_h), w1 = imin(w1, s.in_w);
  if (h0 >= h1 || w0 >= w1) return {h0, h1, w0, w1, 0};
  return {h0, h1, w0, w1, a.count_include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

template <typename T>
__global__ void avg_pool_kernel(const T* x, T* out, PlaneGeometry s, PoolArgs a) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(o, s.planes * s.out_h * s.out_w) {
    const int64_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, q = o / (s.out_w * s.out_h);
    const T* plane = x + q * s.in_h * s.in_w;
    const AvgWindow w = avg_window(s, a, oh, ow);
    C sum = C(0);
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) sum += C(plane[ih * s.in_w + iw]);
    out[o] = T(w.div == 0 ? C(0) : sum / C(w.div));
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(const T* g, T* gi, PlaneGeometry s, PoolArgs a) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(i, s.planes * s.in_h * s.in_w) {
    const int64_t iw = i % s.in_w, ih = (i / s.in_w) % s.in_h, q = i / (s.in_w * s.in_h);
    // Windows [o*s - p, o*s - p + k) that contain the input cell.
    const int64_t oh0 = imax(floor_div(ih + a.ph - a.kh, a.sh) + 1, 0);
    const int64_t oh1 = imin((ih + a.ph) / a.sh, s.out_h - 1);
    const int64_t ow0 = imax(floor_div(iw + a.pw - a.kw, a.sw) + 1, 0);
    const int64_t ow1 = imin((iw + a.pw) / a.sw, s.out_w - 1);
    T acc = T(C(0));
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const AvgWindow w = avg_window(s, a, oh, ow);
        if (w.div == 0) continue;
        acc = T(C(acc) + C(g[(q * s.out_h + oh) * s.out_w + ow]) / C(w.div));
      }
    gi[i] = acc;
  }
}

// ---- adaptive average pool ----

// Bin i of `out` bins over `in` cells: [floor(i*in/out), ceil((i+1)*in/out)).
__device__ inline int64_t bin_start(int64_t i, int64_t in, int64_t out) {
  return (i * in) / out;
}
__device__ inline int64_t bin_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <typename T>
__global__ void adaptive_avg_kernel(const T* x, T* out, PlaneGeometry s) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(o, s.planes * s.out_h * s.out_w) {
    const int64_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, q = o / (s.out_w * s.out_h);
    const T* plane = x + q * s.in_h * s.in_w;
    const int64_t h0 = bin_start(oh, s.in_h, s.out_h), h1 = bin_end(oh, s.in_h, s.out_h);
    const int64_t w0 = bin_start(ow, s.in_w, s.out_w), w1 = bin_end(ow, s.in_w, s.out_w);
    C sum = C(0);
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) sum += C(plane[ih * s.in_w + iw]);
    out[o] = T(sum / C((h1 - h0) * (w1 - w0)));
  }
}

template <typename T>
__global__ void adaptive_avg_backward_kernel(const T* g, T* gi, PlaneGeometry s) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(i, s.planes * s.in_h * s.in_w) {
    const int64_t iw = i % s.in_w, ih = (i / s.in_w) % s.in_h, q = i / (s.in_w * s.in_h);
    // The bins containing cell ih are [floor(ih*out/in), ceil((ih+1)*out/in)) (the bin formula
    // with the roles of in and out swapped); each is confirmed below.
    const int64_t oh0 = bin_start(ih, s.out_h, s.in_h), oh1 = bin_end(ih, s.out_h, s.in_h);
    const int64_t ow0 = bin_start(iw, s.out_w, s.in_w), ow1 = bin_end(iw, s.out_w, s.in_w);
    T acc = T(C(0));
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t h0 = bin_start(oh, s.in_h, s.out_h), h1 = bin_end(oh, s.in_h, s.out_h);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t w0 = bin_start(ow, s.in_w, s.out_w), w1 = bin_end(ow, s.in_w, s.out_w);
        if (iw < w0 || iw >= w1) continue;
        acc = T(C(acc) + C(g[(q * s.out_h + oh) * s.out_w + ow]) / C((h1 - h0) * (w1 - w0)));
      }
    }
    gi[i] = acc;
  }
}

// ---- upsampling ----

// The output range [first, last] whose sources may be `i` (mapping i back through out/in, with a
// margin of two for float rounding); the callers confirm each candidate with the exact formula.
__device__ inline void nearest_candidates(int64_t i, int64_t in, int64_t out, int64_t& first,
                                          int64_t& last) {
  first = imax((i * out) / in - 2, 0);
  last = imin(((i + 1) * out + in - 1) / in + 2, out - 1);
  if (i == in - 1) last = out - 1;  // the clamp to in - 1
}

template <typename T>
__global__ void nearest_kernel(const T* x, T* out, PlaneGeometry s) {
  CXR_GRID_STRIDE(o, s.planes * s.out_h * s.out_w) {
    const int64_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, q = o / (s.out_w * s.out_h);
    out[o] = x[(q * s.in_h + nearest_source(oh, s.in_h, s.out_h)) * s.in_w +
               nearest_source(ow, s.in_w, s.out_w)];
  }
}

template <typename T>
__global__ void nearest_backward_kernel(const T* g, T* gi, PlaneGeometry s) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(i, s.planes * s.in_h * s.in_w) {
    const int64_t iw = i % s.in_w, ih = (i / s.in_w) % s.in_h, q = i / (s.in_w * s.in_h);
    int64_t oh0, oh1, ow0, ow1;
    nearest_candidates(ih, s.in_h, s.out_h, oh0, oh1);
    nearest_candidates(iw, s.in_w, s.out_w, ow0, ow1);
    T acc = T(C(0));
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      if (nearest_source(oh, s.in_h, s.out_h) != ih) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        if (nearest_source(ow, s.in_w, s.out_w) == iw)
          acc = T(C(acc) + C(g[(q * s.out_h + oh) * s.out_w + ow]));
    }
    gi[i] = acc;
  }
}

// The outputs whose taps may include input cell i: source coordinates in [i - 1, i + 1) mapped back
// to output coordinates, widened by two for rounding, extended to the ends where the source clamps
// (everything below 0 reads cell 0 and 1, everything past in - 1 reads cell in - 1).
__device__ inline void linear_candidates(int64_t i, int64_t in, int64_t out, bool align_corners,
                                         int64_t& first, int64_t& last) {
  // dst as a function of src: the inverse of linear_tap's source formula.
  auto dst_of = [&](double src) {
    if (align_corners) return in > 1 ? src * double(out - 1) / double(in - 1) : 0.0;
    return (src + 0.5) * double(out) / double(in) - 0.5;
  };
  first = i <= 1 ? 0 : imax(int64_t(floor(dst_of(double(i - 1)))) - 2, 0);
  last = i >= in - 1 ? out - 1 : imin(int64_t(ceil(dst_of(double(i + 1)))) + 2, out - 1);
}

template <typename T>
__global__ void bilinear_kernel(const T* x, T* out, PlaneGeometry s, bool align_corners) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(o, s.planes * s.out_h * s.out_w) {
    const int64_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, q = o / (s.out_w * s.out_h);
    const LinearTap<C> h = linear_tap<C>(oh, s.in_h, s.out_h, align_corners);
    const LinearTap<C> w = linear_tap<C>(ow, s.in_w, s.out_w, align_corners);
    const T* r0 = x + (q * s.in_h + h.i[0]) * s.in_w;
    const T* r1 = x + (q * s.in_h + h.i[1]) * s.in_w;
    out[o] = T(h.l[0] * (w.l[0] * C(r0[w.i[0]]) + w.l[1] * C(r0[w.i[1]])) +
               h.l[1] * (w.l[0] * C(r1[w.i[0]]) + w.l[1] * C(r1[w.i[1]])));
  }
}

template <typename T>
__global__ void bilinear_backward_kernel(const T* g, T* gi, PlaneGeometry s, bool align_corners) {
  using C = compute_t<T>;
  CXR_GRID_STRIDE(i, s.planes * s.in_h * s.in_w) {
    const int64_t iw = i % s.in_w, ih = (i / s.in_w) % s.in_h, q = i / (s.in_w * s.in_h);
    int64_t oh0, oh1, ow0, ow1;
    linear_candidates(ih, s.in_h, s.out_h, align_corners, oh0, oh1);
    linear_candidates(iw, s.in_w, s.out_w, align_corners, ow0, ow1);
    T acc = T(C(0));
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const LinearTap<C> h = linear_tap<C>(oh, s.in_h, s.out_h, align_corners);
      if (h.i[0] != ih && h.i[1] != ih) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const LinearTap<C> w = linear_tap<C>(ow, s.in_w, s.out_w, align_corners);
        const C go = C(g[(q * s.out_h + oh) * s.out_w + ow]);
        // The CPU's four additions of this output in its order: (h0,w0) (h0,w1) (h1,w0) (h1,w1).
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b)
            if (h.i[a] == ih && w.i[b] == iw) acc = T(C(acc) + h.l[a] * w.l[b] * go);
      }
    }
    gi[i] = acc;
  }
}

#undef CXR_GRID_STRIDE

int64_t outputs(const PlaneGeometry& s) {
  return s.planes * s.out_h * s.out_w;
}
int64_t inputs(const PlaneGeometry& s) {
  return s.planes * s.in_h * s.in_w;
}

}  // namespace

void max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const PlaneGeometry& s,
                const Pool2dParams& p) {
  CXR_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&]<typename T>() {
    launch(x, outputs(s), max_pool_kernel<T>, "max_pool2d", ptr<const T>(x), ptr<T>(out),
           ptr<int64_t>(indices), s, pool_args(p));
  });
}

void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in,
                         const PlaneGeometry& s) {
  // Reach bounds: int32 lo[in_h + in_w] (memset 0x7f: a large positive value) and hi (-1).
  const int64_t n = s.in_h + s.in_w;
  Tensor scratch = raw::empty({2 * n * int64_t(sizeof(int))}, kUInt8, grad_out.device());
  int* lo = static_cast<int*>(scratch.data_ptr());
  int* hi = lo + n;
  {
    DeviceGuard guard(grad_out.device());
    cudaStream_t st = stream(grad_out.device().index);
    CXR_CUDA_CHECK(cudaMemsetAsync(lo, 0x7f, size_t(n) * sizeof(int), st));
    CXR_CUDA_CHECK(cudaMemsetAsync(hi, 0xff, size_t(n) * sizeof(int), st));
  }
  launch(grad_out, outputs(s), max_pool_reach_kernel, "max_pool2d_backward reach",
         ptr<const int64_t>(indices), s, lo, hi);
  CXR_DISPATCH_FLOAT(grad_out.dtype(), "max_pool2d_backward", [&]<typename T>() {
    launch(grad_out, inputs(s), max_pool_backward_kernel<T>, "max_pool2d_backward",
           ptr<const T>(grad_out), ptr<const int64_t>(indices), ptr<T>(grad_in), s,
           static_cast<const int*>(lo), static_cast<const int*>(hi));
  });
}

void avg_pool2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s, const Pool2dParams& p) {
  CXR_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&]<typename T>() {
    launch(x, outputs(s), avg_pool_kernel<T>, "avg_pool2d", ptr<const T>(x), ptr<T>(out), s,
           pool_args(p));
  });
}

void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in, const PlaneGeometry& s,
                         const Pool2dParams& p) {
  CXR_DISPATCH_FLOAT(grad_out.dtype(), "avg_pool2d_backward", [&]<typename T>() {
    launch(grad_out, inputs(s), avg_pool_backward_kernel<T>, "avg_pool2d_backward",
           ptr<const T>(grad_out), ptr<T>(grad_in), s, pool_args(p));
  });
}

void adaptive_avg_pool2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s) {
  CXR_DISPATCH_FLOAT(x.dtype(), "adaptive_avg_pool2d", [&]<typename T>() {
    launch(x, outputs(s), adaptive_avg_kernel<T>, "adaptive_avg_pool2d", ptr<const T>(x),
           ptr<T>(out), s);
  });
}

void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in,
                                  const PlaneGeometry& s) {
  CXR_DISPATCH_FLOAT(grad_out.dtype(), "adaptive_avg_pool2d_backward", [&]<typename T>() {
    launch(grad_out, inputs(s), adaptive_avg_backward_kernel<T>, "adaptive_avg_pool2d_backward",
           ptr<const T>(grad_out), ptr<T>(grad_in), s);
  });
}

void upsample_nearest2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s) {
  CXR_DISPATCH_FLOAT(x.dtype(), "upsample_nearest2d", [&]<typename T>() {
    launch(x, outputs(s), nearest_kernel<T>, "upsample_nearest2d", ptr<const T>(x), ptr<T>(out), s);
  });
}

void upsample_nearest2d_backward(const Tensor& grad_out, const Tensor& grad_in,
                                 const PlaneGeometry& s) {
  CXR_DISPATCH_FLOAT(grad_out.dtype(), "upsample_nearest2d_backward", [&]<typename T>() {
    launch(grad_out, inputs(s), nearest_backward_kernel<T>, "upsample_nearest2d_backward",
           ptr<const T>(grad_out), ptr<T>(grad_in), s);
  });
}

void upsample_bilinear2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s,
                         bool align_corners) {
  CXR_DISPATCH_FLOAT(x.dtype(), "upsample_bilinear2d", [&]<typename T>() {
    launch(x, outputs(s), bilinear_kernel<T>, "upsample_bilinear2d", ptr<const T>(x), ptr<T>(out),
           s, align_corners);
  });
}

void upsample_bilinear2d_backward(const Tensor& grad_out, const Tensor& grad_in,
                                  const PlaneGeometry& s, bool align_corners) {
  CXR_DISPATCH_FLOAT(grad_out.dtype(), "upsample_bilinear2d_backward", [&]<typename T>() {
    launch(grad_out, inputs(s), bilinear_backward_kernel<T>, "upsample_bilinear2d_backward",
           ptr<const T>(grad_out), ptr<T>(grad_in), s, align_corners);
  });
}

}  // namespace cxr::cuda
