// Tensor creation, copies and dtype/device conversion. Host-side construction (arange, linspace,
// from_vector) builds on the CPU; copies and fills run where their destination lives, and copies
// between devices go through contiguous staging on the side that has the geometry to resolve.
#include "tensor/creation.h"

#include <cmath>

#include "tensor/backend.h"
#include "tensor/convert.h"
#include "tensor/cpu/loops.h"
#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/runtime.h"

namespace cxr::raw {

Tensor empty(const Shape& shape, DType dtype, Device device) {
  return Tensor::empty(shape, dtype, device);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor scalar_tensor(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}
Tensor empty_like(const Tensor& t) {
  return empty(t.sizes(), t.dtype(), t.device());
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.sizes(), t.dtype(), t.device());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.sizes(), t.dtype(), t.device());
}
Tensor full_like(const Tensor& t, double value) {
  return full(t.sizes(), value, t.dtype(), t.device());
}

Tensor arange(double start, double end, double step, DType dtype) {
  CXR_CHECK(step != 0, "arange: step must be nonzero");
  CXR_CHECK(std::isfinite(start) && std::isfinite(end), "arange: start and end must be finite");
  int64_t n = int64_t(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  Tensor t = empty({n}, dtype);
  CXR_DISPATCH_ALL(dtype, "arange", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(start + double(i) * step);
  });
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  CXR_CHECK(steps >= 0, "linspace: steps must be >= 0, got ", steps);
  Tensor t = empty({steps}, dtype);
  // Symmetric formula (as torch): first half from start, second half from end, so both ends are
  // exact.
  double step = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
  CXR_DISPATCH_ALL(dtype, "linspace", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < steps; ++i) {
      double v = i < steps / 2 ? start + step * double(i) : end - step * double(steps - 1 - i);
      p[i] = convert<T>(v);
    }
  });
  return t;
}

namespace {
template <typename V>
Tensor from_host(const std::vector<V>& values, const Shape& shape, DType dtype) {
  CXR_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
            " values for shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor t = empty(shape, dtype);
  CXR_DISPATCH_ALL(dtype, "from_vector", [&]<typename T>() {
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = convert<T>(values[i]);
  });
  return t;
}
}  // namespace

Tensor from_vector(const std::vector<float>& v, const Shape& s, DType d) {
  return from_host(v, s, d);
}
Tensor from_vector(const std::vector<double>& v, const Shape& s, DType d) {
  return from_host(v, s, d);
}
Tensor from_vector(const std::vector<int64_t>& v, const Shape& s, DType d) {
  return from_host(v, s, d);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype) {
  size_t nbytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  auto storage = std::make_shared<Storage>(data, nbytes, Device::cpu(), nullptr);
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

namespace {

// Moves the bytes of two contiguous tensors of the same dtype and size between devices.
void transfer_bytes(const Tensor& dst, const Tensor& src) {
  const size_t nbytes = size_t(src.numel()) * src.element_size();
  if constexpr (kCudaBuilt) {
    if (dst.device().is_cuda() && src.device().is_cpu())
      return cuda::copy_host_to_device(dst.data_ptr(), src.data_ptr(), nbytes, dst.device().index);
    if (dst.device().is_cpu() && src.device().is_cuda())
      return cuda::copy_device_to_host(dst.data_ptr(), src.data_ptr(), nbytes, src.device().index);
    if (dst.device().is_cuda() && src.device().is_cuda())
      return cuda::copy_device_to_device(dst.data_ptr(), dst.device().index, src.data_ptr(),
                                         src.device().index, nbytes);
  }
  CXR_FAIL("copy_: no copy from ", src.device().str(), " to ", dst.device().str());
}

// dst <- src across devices: src is broadcast and converted on its own device into a contiguous
// tensor of dst's shape and dtype, moved as bytes, and scattered into dst's geometry on dst's side.
void copy_between_devices(const Tensor& dst, const Tensor& src) {
  Tensor staged = src;
  if (src.sizes() != dst.sizes() || src.dtype() != dst.dtype() || !src.is_contiguous()) {
    staged = empty(dst.sizes(), dst.dtype(), src.device());
    copy_(staged, src);
  }
  if (dst.is_contiguous()) {
    transfer_bytes(dst, staged);
    dst.storage()->bump_version();
    return;
  }
  Tensor landed = empty(dst.sizes(), dst.dtype(), dst.device());
  transfer_bytes(landed, staged);
  copy_(dst, landed);
}

}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  CXR_CHECK(dst.defined() && src.defined(), "copy_: undefined tensor");
  cpu::broadcast_strides(src, dst.sizes());  // validates broadcastability with a clear error
  if (dst.device() != src.device()) return copy_between_devices(dst, src);
  if constexpr (kCudaBuilt) {
    if (dst.device().is_cuda()) {
      if (dst.numel() > 0) cuda::copy_(dst, src);
      dst.storage()->bump_version();
      return;
    }
  }
  CXR_DISPATCH_ALL(dst.dtype(), "copy_", [&]<typename D>() {
    CXR_DISPATCH_ALL(src.dtype(), "copy_", [&]<typename S>() {
      cpu::for_each_row<2>(
          dst.sizes(), {&dst, &src},
          [](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
            D* d = reinterpret_cast<D*>(p[0]);
            const S* x = reinterpret_cast<const S*>(p[1]);
            if (s[0] == 1 && s[1] == 1) {
              for (int64_t i = 0; i < n; ++i) d[i] = convert<D>(x[i]);
            } else {
              for (int64_t i = 0; i < n; ++i) d[i * s[0]] = convert<D>(x[i * s[1]]);
            }
          });
    });
  });
  dst.storage()->bump_version();
}

void fill_(const Tensor& dst, double value) {
  if constexpr (kCudaBuilt) {
    if (dst.device().is_cuda()) {
      if (dst.numel() > 0) cuda::fill_(dst, value);
      dst.storage()->bump_version();
      return;
    }
  }
  CXR_DISPATCH_ALL(dst.dtype(), "fill_", [&]<typename D>() {
    const D v = convert<D>(value);
    cpu::for_each_row<1>(
        dst.sizes(), {&dst},
        [v](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s, int64_t n) {
          D* d = reinterpret_cast<D*>(p[0]);
          for (int64_t i = 0; i < n; ++i) d[i * s[0]] = v;
        });
  });
  dst.storage()->bump_version();
}

Tensor clone(const Tensor& t) {
  Tensor out = empty(t.sizes(), t.dtype(), t.device());
  copy_(out, t);
  return out;
}

Tensor contiguous(const Tensor& t) {
  return t.is_contiguous() ? t : clone(t);
}

Tensor to(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty(t.sizes(), dtype, t.device());
  copy_(out, t);
  return out;
}

Tensor to(const Tensor& t, Device device) {
  if (t.device() == device) return t;
  Tensor out = empty(t.sizes(), t.dtype(), device);  // checks that `device` is usable
  copy_(out, t);
  return out;
}

}  // namespace cxr::raw
