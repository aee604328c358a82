// Pooling and upsampling on [N, C, H, W] (or [C, H, W]) tensors with their backward passes. Index
// and weight formulas follow PyTorch's CPU kernels (aten/src/ATen/native/Pool.h pooling output
// size, AdaptivePooling.h bins, UpSample.h source indices), re-derived here. Every (n, c) plane is
// handled by one thread, so backward scatter-adds run in a fixed order for any thread count.
// CUDA tensors take the same validation and run the kernels of tensor/cuda/pool.cu.
#include <algorithm>  // std::min, std::max
#include <cmath>      // std::floor, std::isnan
#include <limits>
#include <string>
#include <vector>

#include "tensor/backend.h"
#include "tensor/conv.h"
#include "tensor/convert.h"
#include "tensor/creation.h"
#include "tensor/cuda/indexing.h"
#include "tensor/cuda/pool.h"
#include "tensor/upsample_geometry.h"

namespace cxr::raw {
namespace {

using detail::linear_tap;
using detail::LinearTap;
using detail::nearest_source;

// Geometry of a pooling or upsampling: planes of in_h x in_w become planes of out_h x out_w (the
// struct the CUDA kernels take too).
using PlaneShape = cuda::PlaneGeometry;

std::string int2_str(Int2 v) {
  return detail::cat("(", v[0], ", ", v[1], ")");
}

// Checks a 3-D/4-D floating input and returns its leading dims (the plane dims).
Shape plane_dims(const char* op, const Tensor& x) {
  CXR_CHECK(x.defined(), op, ": input is undefined");
  CXR_CHECK(is_floating(x.dtype()), op, ": expected a floating input, got ", describe(x));
  CXR_CHECK(x.dim() == 3 || x.dim() == 4, op,
            ": expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got ", describe(x));
  CXR_CHECK(x.size(-1) > 0 && x.size(-2) > 0, op,
            ": input has an empty spatial dim: ", describe(x));
  return Shape(x.sizes().begin(), x.sizes().end() - 2);
}

// The same checks for a shape passed to a backward function.
void check_input_shape(const char* op, const Shape& s) {
  CXR_CHECK(s.size() == 3 || s.size() == 4, op, ": expected a 3-D or 4-D input shape, got ",
            shape_str(s));
  CXR_CHECK(s[s.size() - 1] > 0 && s[s.size() - 2] > 0, op,
            ": input shape has an empty spatial dim: ", shape_str(s));
}

Shape with_spatial(const Shape& lead, int64_t h, int64_t w) {
  Shape s = lead;
  s.push_back(h);
  s.push_back(w);
  return s;
}

// Output length of a pooling window sweep (PyTorch pooling_output_shape): with ceil_mode the last
// window may hang over the end but must start inside the input or its left padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

PlaneShape pool_shape(const char* op, const Shape& in, const Pool2dParams& p, bool use_dilation) {
  const Int2 d = use_dilation ? p.dilation : Int2{1, 1};
  CXR_CHECK(p.kernel[0] > 0 && p.kernel[1] > 0, op, ": kernel size must be positive, got ",
            int2_str(p.kernel));
  CXR_CHECK(p.stride[0] > 0 && p.stride[1] > 0, op, ": stride must be positive, got ",
            int2_str(p.stride));
  CXR_CHECK(d[0] > 0 && d[1] > 0, op, ": dilation must be positive, got ", int2_str(d));
  CXR_CHECK(p.padding[0] >= 0 && p.padding[1] >= 0 && p.padding[0] <= p.kernel[0] / 2 &&
                p.padding[1] <= p.kernel[1] / 2,
            op, ": padding ", int2_str(p.padding),
            " must be non-negative and at most half the kernel size ", int2_str(p.kernel));
  const int64_t h = in[in.size() - 2], w = in[in.size() - 1];
  PlaneShape s{shape_numel(in) / (h * w), h, w,
               pooled_size(h, p.kernel[0], p.stride[0], p.padding[0], d[0], p.ceil_mode),
               pooled_size(w, p.kernel[1], p.stride[1], p.padding[1], d[1], p.ceil_mode)};
  CXR_CHECK(s.out_h >= 1 && s.out_w >= 1, op, ": input shape ", shape_str(in), " with kernel ",
            int2_str(p.kernel), ", stride ", int2_str(p.stride), ", padding ", int2_str(p.padding),
            " and dilation ", int2_str(d), " gives an empty output (", s.out_h, " x ", s.out_w,
            ")");
  return s;
}

void check_grad(const char* op, const Tensor& grad, const Shape& expected) {
  CXR_CHECK(grad.defined(), op, ": grad_out is undefined");
  CXR_CHECK(is_floating(grad.dtype()), op, ": grad_out must be floating, got ", describe(grad));
  CXR_CHECK(grad.sizes() == expected, op, ": grad_out ", describe(grad),
            " does not match the output shape ", shape_str(expected));
}

// The gradient of the input: on CUDA left uninitialised (the gather kernels write every element),
// on the CPU zeros for the scatter-add kernels.
Tensor grad_input(const Shape& input_shape, const Tensor& g) {
  if (g.device().is_cuda()) return empty(input_shape, g.dtype(), g.device());
  return zeros(input_shape, g.dtype());
}

// Indices come from max_pool2d, but a bad one must not write out of bounds. On CUDA a device check
// runs first; only when it fails are the indices copied to the host to name the bad value.
void check_plane_indices(const Tensor& idx, int64_t in_plane) {
  Tensor host = idx;
  if constexpr (kCudaBuilt)
    if (idx.device().is_cuda()) {
      if (cuda::index_in_range(idx, in_plane)) return;
      host = to(idx, Device::cpu());
    }
  const int64_t* ip = host.data<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i)
    CXR_CHECK(ip[i] >= 0 && ip[i] < in_plane, "max_pool2d_backward: index ", ip[i],
              " is outside the input plane of ", in_plane, " elements");
}

// Planes below this many output elements in total stay on one thread.
constexpr int64_t kGrain = 16384;

// ---- max pool ----

template <typename T>
void max_pool_kernel(const T* x, T* out, int64_t* idx, const PlaneShape& s, const Pool2dParams& p) {
  using C = compute_t<T>;
  const int64_t kh = p.kernel[0], kw = p.kernel[1], sh = p.stride[0], sw = p.stride[1];
  const int64_t ph = p.padding[0], pw = p.padding[1], dh = p.dilation[0], dw = p.dilation[1];
#pragma omp parallel for schedule(static) if (s.planes * s.out_h * s.out_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    const T* plane = x + q * s.in_h * s.in_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      int64_t h0 = oh * sh - ph;
      const int64_t h1 = std::min(h0 + (kh - 1) * dh + 1, s.in_h);
      while (h0 < 0) h0 += dh;
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        int64_t w0 = ow * sw - pw;
        const int64_t w1 = std::min(w0 + (kw - 1) * dw + 1, s.in_w);
        while (w0 < 0) w0 += dw;
        // The first in-bounds tap is the answer when every value is -inf; a NaN always wins.
        int64_t best = h0 * s.in_w + w0;
        C best_val = -std::numeric_limits<C>::infinity();
        for (int64_t ih = h0; ih < h1; ih += dh)
          for (int64_t iw = w0; iw < w1; iw += dw) {
            const C v = C(plane[ih * s.in_w + iw]);
            if (v > best_val || std::isnan(v)) {
              best_val = v;
              best = ih * s.in_w + iw;
            }
          }
        const int64_t o = (q * s.out_h + oh) * s.out_w + ow;
        out[o] = T(best_val);
        idx[o] = best;
      }
    }
  }
}

template <typename T>
void max_pool_backward_kernel(const T* g, const int64_t* idx, T* gi, int64_t planes,
                              int64_t out_plane, int64_t in_plane) {
  using C = compute_t<T>;
#pragma omp parallel for schedule(static) if (planes * out_plane >= kGrain)
  for (int64_t q = 0; q < planes; ++q) {
    T* dst = gi + q * in_plane;
    for (int64_t i = 0; i < out_plane; ++i) {
      const int64_t k = idx[q * out_plane + i];
      dst[k] = T(C(dst[k]) + C(g[q * out_plane + i]));
    }
  }
}

// ---- average pool ----

// Calls f(h0, h1, w0, w1, divisor) for each output of an average pool plane, with the window
// clipped to the input and the divisor chosen as PyTorch does (the padded window size, or the
// clipped one when count_include_pad is false); an empty window gets divisor 0.
template <typename F>
void avg_windows(const PlaneShape& s, const Pool2dParams& p, int64_t oh, int64_t ow, F&& f) {
  int64_t h0 = oh * p.stride[0] - p.padding[0], w0 = ow * p.stride[1] - p.padding[1];
  int64_t h1 = std::min(h0 + p.kernel[0], s.in_h + p.padding[0]);
  int64_t w1 = std::min(w0 + p.kernel[1], s.in_w + p.padding[1]);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, s.in_h), w1 = std::min(w1, s.in_w);
  if (h0 >= h1 || w0 >= w1) return f(h0, h1, w0, w1, int64_t(0));
  f(h0, h1, w0, w1, p.count_include_pad ? padded : (h1 - h0) * (w1 - w0));
}

template <typename T>
void avg_pool_kernel(const T* x, T* out, const PlaneShape& s, const Pool2dParams& p) {
  using C = compute_t<T>;
#pragma omp parallel for schedule(static) if (s.planes * s.out_h * s.out_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    const T* plane = x + q * s.in_h * s.in_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        avg_windows(s, p, oh, ow, [&](int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t div) {
          C sum = C(0);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) sum += C(plane[ih * s.in_w + iw]);
          out[(q * s.out_h + oh) * s.out_w + ow] = T(div == 0 ? C(0) : sum / C(div));
        });
  }
}

template <typename T>
void avg_pool_backward_kernel(const T* g, T* gi, const PlaneShape& s, const Pool2dParams& p) {
  using C = compute_t<T>;
#pragma omp parallel for schedule(static) if (s.planes * s.out_h * s.out_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    T* plane = gi + q * s.in_h * s.in_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        avg_windows(s, p, oh, ow, [&](int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t div) {
          if (div == 0) return;
          const C v = C(g[(q * s.out_h + oh) * s.out_w + ow]) / C(div);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw)
              plane[ih * s.in_w + iw] = T(C(plane[ih * s.in_w + iw]) + v);
        });
  }
}

// ---- adaptive average pool ----

// Bin i of `out` bins over `in` cells: [floor(i*in/out), ceil((i+1)*in/out)).
int64_t bin_start(int64_t i, int64_t in, int64_t out) {
  return (i * in) / out;
}
int64_t bin_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <typename T>
void adaptive_avg_kernel(const T* x, T* out, const PlaneShape& s) {
  using C = compute_t<T>;
#pragma omp parallel for schedule(static) if (s.planes * s.in_h * s.in_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    const T* plane = x + q * s.in_h * s.in_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const int64_t h0 = bin_start(oh, s.in_h, s.out_h), h1 = bin_end(oh, s.in_h, s.out_h);
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t w0 = bin_start(ow, s.in_w, s.out_w), w1 = bin_end(ow, s.in_w, s.out_w);
        C sum = C(0);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) sum += C(plane[ih * s.in_w + iw]);
        out[(q * s.out_h + oh) * s.out_w + ow] = T(sum / C((h1 - h0) * (w1 - w0)));
      }
    }
  }
}

template <typename T>
void adaptive_avg_backward_kernel(const T* g, T* gi, const PlaneShape& s) {
  using C = compute_t<T>;
#pragma omp parallel for schedule(static) if (s.planes * s.in_h * s.in_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    T* plane = gi + q * s.in_h * s.in_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const int64_t h0 = bin_start(oh, s.in_h, s.out_h), h1 = bin_end(oh, s.in_h, s.out_h);
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t w0 = bin_start(ow, s.in_w, s.out_w), w1 = bin_end(ow, s.in_w, s.out_w);
        const C v = C(g[(q * s.out_h + oh) * s.out_w + ow]) / C((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw)
            plane[ih * s.in_w + iw] = T(C(plane[ih * s.in_w + iw]) + v);
      }
    }
  }
}

// ---- upsampling ----

template <typename T>
void nearest_kernel(const T* x, T* out, const PlaneShape& s, bool backward) {
  using C = compute_t<T>;
  std::vector<int64_t> src_h(size_t(s.out_h)), src_w(size_t(s.out_w));
  for (int64_t i = 0; i < s.out_h; ++i) src_h[size_t(i)] = nearest_source(i, s.in_h, s.out_h);
  for (int64_t i = 0; i < s.out_w; ++i) src_w[size_t(i)] = nearest_source(i, s.in_w, s.out_w);
#pragma omp parallel for schedule(static) if (s.planes * s.out_h * s.out_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    const int64_t in_off = q * s.in_h * s.in_w, out_off = q * s.out_h * s.out_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t i = in_off + src_h[size_t(oh)] * s.in_w + src_w[size_t(ow)];
        const int64_t o = out_off + oh * s.out_w + ow;
        if (backward)  // x is grad_out, out is grad_in
          out[i] = T(C(out[i]) + C(x[o]));
        else
          out[o] = x[i];
      }
  }
}

template <typename T>
void bilinear_kernel(const T* x, T* out, const PlaneShape& s, bool align_corners, bool backward) {
  using C = compute_t<T>;
  std::vector<LinearTap<C>> th(size_t(s.out_h)), tw(size_t(s.out_w));
  for (int64_t i = 0; i < s.out_h; ++i)
    th[size_t(i)] = linear_tap<C>(i, s.in_h, s.out_h, align_corners);
  for (int64_t i = 0; i < s.out_w; ++i)
    tw[size_t(i)] = linear_tap<C>(i, s.in_w, s.out_w, align_corners);
#pragma omp parallel for schedule(static) if (s.planes * s.out_h * s.out_w >= kGrain)
  for (int64_t q = 0; q < s.planes; ++q) {
    const int64_t in_off = q * s.in_h * s.in_w, out_off = q * s.out_h * s.out_w;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const LinearTap<C>& h = th[size_t(oh)];
      const int64_t r0 = in_off + h.i[0] * s.in_w, r1 = in_off + h.i[1] * s.in_w;
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const LinearTap<C>& w = tw[size_t(ow)];
        const int64_t o = out_off + oh * s.out_w + ow;
        if (backward) {  // x is grad_out, out is grad_in
          const C g = C(x[o]);
          out[r0 + w.i[0]] = T(C(out[r0 + w.i[0]]) + h.l[0] * w.l[0] * g);
          out[r0 + w.i[1]] = T(C(out[r0 + w.i[1]]) + h.l[0] * w.l[1] * g);
          out[r1 + w.i[0]] = T(C(out[r1 + w.i[0]]) + h.l[1] * w.l[0] * g);
          out[r1 + w.i[1]] = T(C(out[r1 + w.i[1]]) + h.l[1] * w.l[1] * g);
        } else {
          out[o] = T(h.l[0] * (w.l[0] * C(x[r0 + w.i[0]]) + w.l[1] * C(x[r0 + w.i[1]])) +
                     h.l[1] * (w.l[0] * C(x[r1 + w.i[0]]) + w.l[1] * C(x[r1 + w.i[1]])));
        }
      }
    }
  }
}

PlaneShape resize_shape(const char* op, const Shape& in, Int2 out) {
  CXR_CHECK(out[0] > 0 && out[1] > 0, op, ": output size must be positive, got ", int2_str(out));
  const int64_t h = in[in.size() - 2], w = in[in.size() - 1];
  return {shape_numel(in) / (h * w), h, w, out[0], out[1]};
}

}  // namespace

PoolResult max_pool2d(const Tensor& x, const Pool2dParams& p) {
  const Shape lead = plane_dims("max_pool2d", x);
  const PlaneShape s = pool_shape("max_pool2d", x.sizes(), p, true);
  const Tensor xc = contiguous(x);
  PoolResult r{empty(with_spatial(lead, s.out_h, s.out_w), x.dtype(), x.device()),
               empty(with_spatial(lead, s.out_h, s.out_w), kInt64, x.device())};
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) {
      cuda::max_pool2d(xc, r.out, r.indices, s, p);
      return r;
    }
  CXR_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&]<typename T>() {
    max_pool_kernel<T>(xc.data<T>(), r.out.data<T>(), r.indices.data<int64_t>(), s, p);
  });
  return r;
}

Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices,
                           const Shape& input_shape) {
  check_input_shape("max_pool2d_backward", input_shape);
  CXR_CHECK(grad_out.defined() && indices.defined(),
            "max_pool2d_backward: undefined grad_out or indices");
  CXR_CHECK(indices.dtype() == kInt64, "max_pool2d_backward: indices must be int64, got ",
            describe(indices));
  CXR_CHECK(grad_out.dim() == int64_t(input_shape.size()) &&
                std::equal(input_shape.begin(), input_shape.end() - 2, grad_out.sizes().begin()),
            "max_pool2d_backward: grad_out ", describe(grad_out), " does not match input shape ",
            shape_str(input_shape));
  check_grad("max_pool2d_backward", grad_out, indices.sizes());
  common_device("max_pool2d_backward", {grad_out, indices});
  const Tensor g = contiguous(grad_out), idx = contiguous(indices);
  const int64_t in_h = input_shape[input_shape.size() - 2], in_w = input_shape.back();
  const int64_t in_plane = in_h * in_w, out_plane = g.size(-2) * g.size(-1);
  const int64_t planes = shape_numel(input_shape) / in_plane;
  check_plane_indices(idx, in_plane);
  Tensor gi = grad_input(input_shape, g);
  if constexpr (kCudaBuilt)
    if (g.device().is_cuda()) {
      cuda::max_pool2d_backward(g, idx, gi, {planes, in_h, in_w, g.size(-2), g.size(-1)});
      return gi;
    }
  CXR_DISPATCH_FLOAT(g.dtype(), "max_pool2d_backward", [&]<typename T>() {
    max_pool_backward_kernel<T>(g.data<T>(), idx.data<int64_t>(), gi.data<T>(), planes, out_plane,
                                in_plane);
  });
  return gi;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  const Shape lead = plane_dims("avg_pool2d", x);
  const PlaneShape s = pool_shape("avg_pool2d", x.sizes(), p, false);
  const Tensor xc = contiguous(x);
  Tensor out = empty(with_spatial(lead, s.out_h, s.out_w), x.dtype(), x.device());
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) {
      cuda::avg_pool2d(xc, out, s, p);
      return out;
    }
  CXR_DISPATCH_FLOAT(x.dtype(), "avg_pool2d",
                     [&]<typename T>() { avg_pool_kernel<T>(xc.data<T>(), out.data<T>(), s, p); });
  return out;
}

Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& input_shape,
                           const Pool2dParams& p) {
  check_input_shape("avg_pool2d_backward", input_shape);
  const PlaneShape s = pool_shape("avg_pool2d_backward", input_shape, p, false);
  const Shape lead(input_shape.begin(), input_shape.end() - 2);
  check_grad("avg_pool2d_backward", grad_out, with_spatial(lead, s.out_h, s.out_w));
  const Tensor g = contiguous(grad_out);
  Tensor gi = grad_input(input_shape, g);
  if constexpr (kCudaBuilt)
    if (g.device().is_cuda()) {
      cuda::avg_pool2d_backward(g, gi, s, p);
      return gi;
    }
  CXR_DISPATCH_FLOAT(g.dtype(), "avg_pool2d_backward", [&]<typename T>() {
    avg_pool_backward_kernel<T>(g.data<T>(), gi.data<T>(), s, p);
  });
  return gi;
}

Tensor adaptive_avg_pool2d(const Tensor& x, Int2 output_size) {
  const Shape lead = plane_dims("adaptive_avg_pool2d", x);
  const PlaneShape s = resize_shape("adaptive_avg_pool2d", x.sizes(), output_size);
  const Tensor xc = contiguous(x);
  Tensor out = empty(with_spatial(lead, s.out_h, s.out_w), x.dtype(), x.device());
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) {
      cuda::adaptive_avg_pool2d(xc, out, s);
      return out;
    }
  CXR_DISPATCH_FLOAT(x.dtype(), "adaptive_avg_pool2d",
                     [&]<typename T>() { adaptive_avg_kernel<T>(xc.data<T>(), out.data<T>(), s); });
  return out;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& input_shape) {
  check_input_shape("adaptive_avg_pool2d_backward", input_shape);
  CXR_CHECK(grad_out.defined() && grad_out.dim() == int64_t(input_shape.size()),
            "adaptive_avg_pool2d_backward: grad_out must have as many dims as input shape ",
            shape_str(input_shape));
  const PlaneShape s = resize_shape("adaptive_avg_pool2d_backward", input_shape,
                                    {grad_out.size(-2), grad_out.size(-1)});
  const Shape lead(input_shape.begin(), input_shape.end() - 2);
  check_grad("adaptive_avg_pool2d_backward", grad_out, with_spatial(lead, s.out_h, s.out_w));
  const Tensor g = contiguous(grad_out);
  Tensor gi = grad_input(input_shape, g);
  if constexpr (kCudaBuilt)
    if (g.device().is_cuda()) {
      cuda::adaptive_avg_pool2d_backward(g, gi, s);
      return gi;
    }
  CXR_DISPATCH_FLOAT(g.dtype(), "adaptive_avg_pool2d_backward", [&]<typename T>() {
    adaptive_avg_backward_kernel<T>(g.data<T>(), gi.data<T>(), s);
  });
  return gi;
}

Tensor upsample_nearest2d(const Tensor& x, Int2 output_size) {
  const Shape lead = plane_dims("upsample_nearest2d", x);
  const PlaneShape s = resize_shape("upsample_nearest2d", x.sizes(), output_size);
  const Tensor xc = contiguous(x);
  Tensor out = empty(with_spatial(lead, s.out_h, s.out_w), x.dtype(), x.device());
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) {
      cuda::upsample_nearest2d(xc, out, s);
      return out;
    }
  CXR_DISPATCH_FLOAT(x.dtype(), "upsample_nearest2d", [&]<typename T>() {
    nearest_kernel<T>(xc.data<T>(), out.data<T>(), s, false);
  });
  return out;
}

Tensor upsample_nearest2d_backward(const Tensor& grad_out, const Shape& input_shape) {
  check_input_shape("upsample_nearest2d_backward", input_shape);
  CXR_CHECK(grad_out.defined() && grad_out.dim() == int64_t(input_shape.size()),
            "upsample_nearest2d_backward: grad_out must have as many dims as input shape ",
            shape_str(input_shape));
  const PlaneShape s = resize_shape("upsample_nearest2d_backward", input_shape,
                                    {grad_out.size(-2), grad_out.size(-1)});
  const Shape lead(input_shape.begin(), input_shape.end() - 2);
  check_grad("upsample_nearest2d_backward", grad_out, with_spatial(lead, s.out_h, s.out_w));
  const Tensor g = contiguous(grad_out);
  Tensor gi = grad_input(input_shape, g);
  if constexpr (kCudaBuilt)
    if (g.device().is_cuda()) {
      cuda::upsample_nearest2d_backward(g, gi, s);
      return gi;
    }
  CXR_DISPATCH_FLOAT(g.dtype(), "upsample_nearest2d_backward",
                     [&]<typename T>() { nearest_kernel<T>(g.data<T>(), gi.data<T>(), s, true); });
  return gi;
}

Tensor upsample_bilinear2d(const Tensor& x, Int2 output_size, bool align_corners) {
  const Shape lead = plane_dims("upsample_bilinear2d", x);
  const PlaneShape s = resize_shape("upsample_bilinear2d", x.sizes(), output_size);
  const Tensor xc = contiguous(x);
  Tensor out = empty(with_spatial(lead, s.out_h, s.out_w), x.dtype(), x.device());
  if constexpr (kCudaBuilt)
    if (x.device().is_cuda()) {
      cuda::upsample_bilinear2d(xc, out, s, align_corners);
      return out;
    }
  CXR_DISPATCH_FLOAT(x.dtype(), "upsample_bilinear2d", [&]<typename T>() {
    bilinear_kernel<T>(xc.data<T>(), out.data<T>(), s, align_corners, false);
  });
  return out;
}

Tensor upsample_bilinear2d_backward(const Tensor& grad_out, const Shape& input_shape,
                                    bool align_corners) {
  check_input_shape("upsample_bilinear2d_backward", input_shape);
  CXR_CHECK(grad_out.defined() && grad_out.dim() == int64_t(input_shape.size()),
            "upsample_bilinear2d_backward: grad_out must have as many dims as input shape ",
            shape_str(input_shape));
  const PlaneShape s = resize_shape("upsample_bilinear2d_backward", input_shape,
                                    {grad_out.size(-2), grad_out.size(-1)});
  const Shape lead(input_shape.begin(), input_shape.end() - 2);
  check_grad("upsample_bilinear2d_backward", grad_out, with_spatial(lead, s.out_h, s.out_w));
  const Tensor g = contiguous(grad_out);
  Tensor gi = grad_input(input_shape, g);
  if constexpr (kCudaBuilt)
    if (g.device().is_cuda()) {
      cuda::upsample_bilinear2d_backward(g, gi, s, align_corners);
      return gi;
    }
  CXR_DISPATCH_FLOAT(g.dtype(), "upsample_bilinear2d_backward", [&]<typename T>() {
    bilinear_kernel<T>(g.data<T>(), gi.data<T>(), s, align_corners, true);
  });
  return gi;
}

}  // namespace cxr::raw
